"""One run of a task: the lease a claim granted, and everything a harness does under it.

A background thread heartbeats the lease and surfaces what comes back: ``cancelled``
(an Event), answers to questions (``wait_for_answer``), and people's messages
(``messages``, a queue, each message once). Steps get a ``client_step_id`` and an
``Idempotency-Key`` of their own, so a retried step is stored once; the result is sent
with a key per run, so a retried result is answered as the first.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from ether_client.client import EtherClient, EtherError

log = logging.getLogger("ether_client")

# Seconds between beats while an answer is awaited (``Run.wait_for_answer``).
ANSWER_POLL = 1.0


class Cancelled(Exception):
    """The task was cancelled: the run has ended; stop working."""


class LeaseLost(Exception):
    """The run can no longer write (its lease expired or was taken); claim again."""


class Run:
    """What ``EtherClient.claim`` / ``claim_next`` return. Use it as a context manager to
    keep the lease alive while the block runs: ``with client.claim(task_id) as run: …``."""

    def __init__(self, client: EtherClient, claim: dict[str, Any]) -> None:
        self.client = client
        self.run_id: str = claim["run_id"]
        self.lease_epoch: int = claim["lease_epoch"]
        self.lease_expires_at: str = claim["lease_expires_at"]
        self.bundle: dict[str, Any] = claim["bundle"]
        self.task_id: str = self.bundle["task_id"]
        self.callbacks: dict[str, str] = self.bundle["callbacks"]
        self.cancelled = threading.Event()
        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()
        self.on_message: Callable[[dict[str, Any]], None] | None = None
        self.lost: Exception | None = None
        self.checkpoint: dict[str, str] | None = None
        self.lease_seconds_left: float | None = None
        # Seconds between background heartbeats (None: a quarter of the lease left, 1-30 s).
        # Shorter means answers and messages arrive sooner, at a request each time.
        self.heartbeat_interval: float | None = None
        self._answers: dict[str, dict[str, Any]] = {}
        self._changed = threading.Condition()
        self._steps = 0
        self._steps_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    # --- the bundle -----------------------------------------------------------------------

    @property
    def title(self) -> str:
        return self.bundle["title"]

    @property
    def feedback(self) -> list[dict[str, Any]]:
        """Feedback people gave on reopening the task, oldest first."""
        return list(self.bundle.get("feedback") or [])

    def context_pack(self, budget_bytes: int | None = None) -> dict[str, Any]:
        return self.client.context_pack(self.task_id, budget_bytes)

    # --- writes ---------------------------------------------------------------------------

    def _guard(self) -> None:
        if self.cancelled.is_set():
            raise Cancelled(f"{self.task_id} was cancelled.")
        if self.lost is not None:
            raise LeaseLost(str(self.lost))

    def _post(self, url: str, body: dict[str, Any], key: str) -> Any:
        payload = {"run_id": self.run_id, "lease_epoch": self.lease_epoch, **body}
        try:
            return self.client.post_json(url, payload, idempotency_key=key)
        except EtherError as error:
            if error.code == "lease_lost":
                self.lost = error
                raise LeaseLost(error.detail) from error
            if error.code == "task_closed" and not self.cancelled.is_set():
                self.cancelled.set()
                raise Cancelled(error.detail) from error
            raise

    def step(self, phase: str, message: str, *, internal_label: str = "") -> dict[str, Any]:
        """Narrates one step to the task page (``os.harness.step``)."""
        self._guard()
        with self._steps_lock:
            self._steps += 1
            n = self._steps
        body = {
            "phase": phase,
            "user_message": message,
            "internal_label": internal_label,
            "client_step_id": f"{self.run_id}:{n}",
        }
        return self._post(self.callbacks["report_step_url"], body, f"step:{self.run_id}:{n}")

    def heartbeat(self, checkpoint: dict[str, str] | None = None) -> dict[str, Any]:
        """Extends the lease once. A retry of a lost answer sends the same key, so the
        messages it carried come back rather than being lost (docs/api.md)."""
        if checkpoint is not None:
            self.checkpoint = checkpoint
        body: dict[str, Any] = {}
        if self.checkpoint:
            body["checkpoint"] = self.checkpoint
        beat = self._post(self.callbacks["heartbeat_url"], body, f"beat:{uuid.uuid4()}")
        self._absorb(beat)
        return beat

    def _absorb(self, beat: dict[str, Any]) -> None:
        self.lease_expires_at = beat["lease_expires_at"]
        self.lease_seconds_left = float(beat["lease_seconds_left"])
        for message in beat.get("messages") or []:
            self.messages.put(message)
            if self.on_message is not None:
                self.on_message(message)
        with self._changed:
            for answer in beat.get("answers") or []:
                self._answers[answer["interrupt_id"]] = answer
            if beat["cancel_requested"] or beat["task_status"] == "cancelled":
                self.cancelled.set()
            self._changed.notify_all()

    def take_messages(self) -> list[dict[str, Any]]:
        """The messages heartbeats brought since the last call, oldest first."""
        taken = []
        while True:
            try:
                taken.append(self.messages.get_nowait())
            except queue.Empty:
                return taken

    def interrupt(
        self, question: str, choices: list[str] | None = None, *, allow_free_text: bool = False
    ) -> str:
        """Pauses the task on a question; returns its ``interrupt_id``."""
        self._guard()
        body: dict[str, Any] = {"question": question, "allow_free_text": allow_free_text}
        if choices:
            body["choices"] = choices
        key = f"interrupt:{self.run_id}:{uuid.uuid4()}"
        return self._post(self.callbacks["interrupt_url"], body, key)["interrupt_id"]

    def wait_for_answer(self, interrupt_id: str, timeout: float | None = None) -> str:
        """Blocks until the question is answered. Heartbeats bring answers; while one is
        awaited a beat goes every ``ANSWER_POLL`` seconds, so the answer comes about a
        second after the person gives it rather than at the background heartbeat's next
        beat (up to 30 s later), and the lease is kept with or without that thread."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._changed:
                answer = self._answers.get(interrupt_id)
                if answer is not None:
                    return answer["answer"]
                self._guard()
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError(f"No answer to {interrupt_id} within {timeout:g} s.")
                # The background heartbeat's beat may bring it first.
                self._changed.wait(timeout=ANSWER_POLL if left is None else min(ANSWER_POLL, left))
                if interrupt_id in self._answers:
                    continue
                beating = self._thread is not None and self._thread.is_alive()
            try:
                self.heartbeat()
            except (Cancelled, LeaseLost):
                raise
            except Exception as error:
                if not beating:
                    raise
                # The background heartbeat still keeps the lease: a failed extra beat
                # only means the answer comes with a later one.
                log.warning("heartbeat of %s failed: %s", self.run_id, error)

    def ask(
        self,
        question: str,
        choices: list[str] | None = None,
        *,
        allow_free_text: bool = False,
        timeout: float | None = None,
    ) -> str:
        """Interrupt and wait: the user's answer."""
        return self.wait_for_answer(
            self.interrupt(question, choices, allow_free_text=allow_free_text), timeout
        )

    def result(self, status: str, agent_status: str, **fields: Any) -> dict[str, Any]:
        """Ends the run: ``submitted`` (with ``artifact``), ``no_changes`` (with
        ``no_changes_reason``) or ``blocked`` (with ``question``); optional
        ``working_summary`` becomes the run's working notes."""
        self.stop_heartbeat()
        body = {"status": status, "agent_status": agent_status, **fields}
        return self._post(self.callbacks["result_url"], body, f"result:{self.run_id}")

    # --- the background heartbeat -----------------------------------------------------------

    def start_heartbeat(self, interval: float | None = None) -> None:
        """Heartbeats every ``interval`` seconds (default: ``heartbeat_interval``, else a
        quarter of the lease left, 1 to 30 s) until the result, a cancel, a lost lease or
        ``stop_heartbeat``."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        if interval is None:
            interval = self.heartbeat_interval

        def loop() -> None:
            while not self._stop.is_set():
                try:
                    self.heartbeat()
                except (Cancelled, LeaseLost):
                    break
                except Exception as error:  # the next beat may get through; say so
                    log.warning("heartbeat of %s failed: %s", self.run_id, error)
                if self.cancelled.is_set():
                    break
                pause = interval
                if pause is None:
                    pause = max(1.0, min(30.0, (self.lease_seconds_left or 60.0) / 4))
                self._stop.wait(pause)
            with self._changed:
                self._changed.notify_all()  # waiters see cancel or a lost lease

        self._thread = threading.Thread(target=loop, name=f"heartbeat-{self.run_id}", daemon=True)
        self._thread.start()

    def stop_heartbeat(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=60)
        self._thread = None

    def __enter__(self) -> Run:
        self.start_heartbeat()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_heartbeat()
