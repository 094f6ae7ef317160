"""A minimal WebSocket client for the load generators: one asyncio protocol per socket, no
dependency, a few microseconds a frame.

The ``websockets`` library costs tens of microseconds per received message in Python;
with 1,000 subscribers and 40,000 frames a second in one generator process that is the
whole core, and the samples would measure the client. This one reads the server's
unmasked frames straight out of the byte stream and hands each text frame, with the
time it arrived, to a callback. It speaks only what the servers here send: text, close,
ping (answered), unfragmented frames.
"""

from __future__ import annotations

import asyncio
import base64
import os
import struct
import time
from collections.abc import Callable
from typing import Any

OnText = Callable[[bytes, float], None]


class Socket(asyncio.Protocol):
    def __init__(self, on_text: OnText) -> None:
        self.on_text = on_text
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.open = asyncio.get_running_loop().create_future()
        self.closed = asyncio.get_running_loop().create_future()
        self.close_code: int | None = None
        self.upgraded = False

    # --- asyncio.Protocol -------------------------------------------------------------
    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.open.done():
            self.open.set_exception(ConnectionError("closed before the upgrade"))
        if not self.closed.done():
            self.closed.set_result(self.close_code)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.upgraded:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end])
            del self.buffer[: end + 4]
            if not head.startswith(b"HTTP/1.1 101"):
                self.open.set_exception(ConnectionError(head.split(b"\r\n")[0].decode()))
                return
            self.upgraded = True
            self.open.set_result(None)
        self._frames(time.perf_counter())

    def _frames(self, at: float) -> None:
        buf = self.buffer
        pos = 0
        size = len(buf)
        while size - pos >= 2:
            opcode = buf[pos] & 0x0F
            length = buf[pos + 1] & 0x7F
            head = 2
            if length == 126:
                if size - pos < 4:
                    break
                length = struct.unpack_from("!H", buf, pos + 2)[0]
                head = 4
            elif length == 127:
                if size - pos < 10:
                    break
                length = struct.unpack_from("!Q", buf, pos + 2)[0]
                head = 10
            if size - pos < head + length:
                break
            payload = bytes(buf[pos + head : pos + head + length])
            pos += head + length
            if opcode == 1:
                self.on_text(payload, at)
            elif opcode == 8:
                self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                if self.transport is not None:
                    self.transport.close()
            elif opcode == 9:
                self._write(10, payload)
        del buf[:pos]

    # --- sending ----------------------------------------------------------------------
    def _write(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        length = len(payload)
        if length < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
        elif length < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(head + mask + masked)

    def send_text(self, text: str) -> None:
        self._write(1, text.encode())

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self._write(8, struct.pack("!H", 1000))
            self.transport.close()


async def connect(port: int, path: str, on_text: OnText, timeout: float = 120) -> Socket:
    """Opens ``ws://127.0.0.1:PORT/PATH`` and returns once the server answered 101."""
    loop = asyncio.get_running_loop()
    _, sock = await asyncio.wait_for(
        loop.create_connection(lambda: Socket(on_text), "127.0.0.1", port), timeout
    )
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    assert sock.transport is not None
    sock.transport.write(request.encode())
    await asyncio.wait_for(sock.open, timeout)
    return sock
