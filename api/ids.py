"""Public ids: ``{prefix}_{32 lowercase hex}`` from a time-ordered UUIDv7 (RFC 9562).

Python 3.11 has no ``uuid.uuid7``; this is the RFC's method 1: a 48-bit millisecond
timestamp, then a 12-bit counter that keeps ids from one process strictly increasing
within the same millisecond, then 62 random bits.
"""

from __future__ import annotations

import os
import re
import threading
import time
import uuid

PREFIXES = frozenset(
    {"task", "run", "step", "doc", "harness", "dlv", "int", "res", "evt", "msg", "note"}
)

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def uuid7() -> uuid.UUID:
    global _last_ms, _counter
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms > _last_ms:
            _last_ms = ms
            _counter = int.from_bytes(os.urandom(2), "big") & 0x3FF  # room to count up
        else:
            _counter += 1
            if _counter > 0xFFF:  # counter exhausted: borrow the next millisecond
                _last_ms += 1
                _counter = 0
        ms, counter = _last_ms, _counter
    rand = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= counter << 64
    value |= 0b10 << 62
    value |= rand
    return uuid.UUID(int=value)


def new_public_id(prefix: str) -> str:
    if prefix not in PREFIXES:
        raise ValueError(f"unknown id prefix {prefix!r}")
    return f"{prefix}_{uuid7().hex}"


def is_public_id(value: object, prefix: str) -> bool:
    return isinstance(value, str) and re.fullmatch(rf"{prefix}_[0-9a-f]{{32}}", value) is not None


# Module-level defaults for model fields: migrations reference them by import path.
def new_task_id() -> str:
    return new_public_id("task")


def new_run_id() -> str:
    return new_public_id("run")


def new_harness_id() -> str:
    return new_public_id("harness")


def new_step_id() -> str:
    return new_public_id("step")


def new_int_id() -> str:
    return new_public_id("int")


def new_doc_id() -> str:
    return new_public_id("doc")


def new_dlv_id() -> str:
    return new_public_id("dlv")


def new_msg_id() -> str:
    """A webhook message: its ``webhook-id`` header, the same on every retry."""
    return new_public_id("msg")


def new_note_id() -> str:
    """Feedback or a message a person gives the harness (tasks.TaskMessage)."""
    return new_public_id("note")
