"""A small HTTP/1.1 keep-alive client with no dependency, for the load generators."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from typing import Any


class HttpError(Exception):
    pass


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Http:
    """One keep-alive HTTP/1.1 connection. No dependency: Content-Length and chunked
    bodies are all daphne sends."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
            self.writer = self.reader = None

    def _head(self, method: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
        lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if body or method in {"POST", "PUT"}:
            lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    async def send(
        self, method: str, path: str, headers: dict[str, str] | None = None, body: Any = None
    ) -> None:
        if self.writer is None:
            await self.open()
        assert self.writer is not None
        payload = b"" if body is None else json.dumps(body).encode()
        head = dict(headers or {})
        if body is not None:
            head.setdefault("Content-Type", "application/json")
        self.writer.write(self._head(method, path, head, payload))
        await self.writer.drain()

    async def read_head(self) -> tuple[int, dict[str, str]]:
        assert self.reader is not None
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        return status, headers

    async def read_body(self, headers: dict[str, str]) -> bytes:
        assert self.reader is not None
        if "content-length" in headers:
            return await self.reader.readexactly(int(headers["content-length"]))
        if headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await self.reader.readuntil(b"\r\n")
                    return b"".join(chunks)
                chunks.append(await self.reader.readexactly(size))
                await self.reader.readexactly(2)
        body = await self.reader.read()  # no length: until the server closes
        await self.close()
        return body

    async def request(
        self, method: str, path: str, headers: dict[str, str] | None = None, body: Any = None
    ) -> Response:
        for attempt in (1, 2):
            reused = self.writer is not None
            try:
                await self.send(method, path, headers, body)
                status, head = await self.read_head()
                content = await self.read_body(head)
                break
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as error:
                await self.close()
                # A kept-alive connection the server closed while idle: once more on a new one.
                nothing = isinstance(error, asyncio.IncompleteReadError) and not error.partial
                if not (reused and nothing and attempt == 1):
                    raise HttpError(str(error)) from error
        if head.get("connection", "").lower() == "close":
            await self.close()
        return Response(status, head, content)
