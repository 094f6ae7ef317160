"""A local stand-in for an OpenAI-compatible chat-completions endpoint: a real HTTP
server on 127.0.0.1, in a thread, answering ``POST /v1/chat/completions`` with the
API's JSON shape, or with whatever failure a test sets."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.servers import loopback_http


def completion(content: str, model: str = "test-model") -> dict[str, Any]:
    return {
        "id": "chatcmpl-abc123",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 900, "completion_tokens": 120, "total_tokens": 1020},
    }


@dataclass
class FakeOpenAI:
    url: str = ""
    status: int = 200
    body: Any = None  # JSON answer; a str is sent as is (malformed JSON)
    requests: list[dict[str, Any]] = field(default_factory=list)


@contextmanager
def fake_openai() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            fake.requests.append(
                {
                    "path": self.path,
                    "authorization": self.headers.get("Authorization", ""),
                    "json": json.loads(self.rfile.read(length)),
                }
            )
            body = fake.body
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            self.send_response(fake.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    with loopback_http(Handler) as port:
        fake.url = f"http://127.0.0.1:{port}/v1"
        yield fake
