"""HTTP/1.1 as bytes on a socket, for the tests of what a served process reads from a
connection's bytes (ether_site.wire, ether_site.loadshed.refuse_raw, ether_site.direct):
requests written by hand (pipelined, malformed) and every answer read back in order."""

from __future__ import annotations

import socket


def request(
    method: str = "POST",
    path: str = "/api/harness/tasks/task_1/steps",
    body: bytes = b'{"run_id": "run_1"}',
    version: str = "HTTP/1.1",
    fields: tuple[str, ...] = (),
) -> bytes:
    head = [f"{method} {path} {version}", "Host: 127.0.0.1", "Content-Type: application/json"]
    bodiless = method in ("GET", "HEAD")
    if not bodiless:
        head.append(f"Content-Length: {len(body)}")
    head += fields
    return ("\r\n".join(head) + "\r\n\r\n").encode() + (b"" if bodiless else body)


def parse_answers(data: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """Every answer in ``data``, in order: status, fields (names lowercased), body."""
    answers = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        status_line, *lines = head.decode().split("\r\n")
        fields = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
        if fields.get("transfer-encoding") == "chunked":
            body = b""
            while True:
                size, _, rest = rest.partition(b"\r\n")
                chunk, rest = rest[: int(size, 16)], rest[int(size, 16) + 2 :]
                if not chunk:
                    break
                body += chunk
        else:
            length = int(fields.get("content-length", "0"))
            body, rest = rest[:length], rest[length:]
        answers.append((int(status_line.split(" ")[1]), fields, body))
        data = rest
    return answers


def read_until_closed(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def exchange(port: int, data: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """Sends ``data`` at once on a new connection and reads every answer until the
    server closes it (so the last request should ask to close)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(data)
        return parse_answers(read_until_closed(sock))
