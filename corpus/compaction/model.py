"""The ``openai`` summariser: any OpenAI-compatible chat-completions endpoint.

Plain httpx, one POST to ``{ETHER_SUMMARISER_URL}/chat/completions``: OpenAI itself, a
local server (llama.cpp, vLLM, Ollama's OpenAI API) or a gateway answer the same shape.
Every way the model can fail (no answer, an error status, a malformed or empty answer,
an answer past the budget) is ``SummariserFailed``, so the service falls back to
``outline`` and records why.
"""

from __future__ import annotations

from typing import Any

import httpx

from corpus.compaction.base import SummariserFailed, Summary, WorkingNote, utf8_size

SYSTEM_PROMPT = (
    "You fold a coding agent's working notes (one per run, oldest first) into a compact "
    "markdown memory that the agent's next run reads instead of them. Keep every decision "
    "and every open item, word for word where you can; then what changed and which files "
    "were touched; then other findings, newest first. Drop narrative that names nothing "
    "concrete. Name each note you leave content out of on its own line as "
    "'omitted: <path>, <what>'. Answer with the memory only, at most {budget} bytes of "
    "UTF-8."
)


def _endpoint(url: str) -> str:
    url = url.rstrip("/")
    return url if url.endswith("/chat/completions") else f"{url}/chat/completions"


class OpenAISummariser:
    def __init__(self, *, url: str, model: str, api_key: str = "", timeout: float = 30.0) -> None:
        self.url = _endpoint(url)
        self.model = model
        self.api_key = api_key
        self.timeout = timeout
        self.name = f"openai:{model}"[:64]

    def request_body(self, inputs: list[WorkingNote], budget_bytes: int) -> dict[str, Any]:
        notes = "\n\n".join(f"## {note.path}\n\n{note.body.strip()}" for note in inputs)
        return {
            "model": self.model,
            "temperature": 0,
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT.format(budget=budget_bytes)},
                {"role": "user", "content": notes},
            ],
        }

    def summarise(self, inputs: list[WorkingNote], budget_bytes: int) -> Summary:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        try:
            response = httpx.post(
                self.url,
                json=self.request_body(inputs, budget_bytes),
                headers=headers,
                timeout=self.timeout,
            )
        except httpx.HTTPError as exc:
            raise SummariserFailed(f"no answer from {self.url} ({exc.__class__.__name__})") from exc
        if response.status_code != 200:
            raise SummariserFailed(f"{self.url} answered {response.status_code}")
        try:
            content = response.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise SummariserFailed(f"{self.url} answered no chat completion") from None
        if not isinstance(content, str) or not content.strip():
            raise SummariserFailed("the model answered an empty memory")
        text = content.strip() + "\n"
        if utf8_size(text) > budget_bytes:
            raise SummariserFailed(
                f"the model's memory is {utf8_size(text)} bytes, past the budget of {budget_bytes}"
            )
        # A model's summary cannot be accounted block by block: nothing measured.
        return Summary(text=text, kept_bytes=None, dropped_bytes=None, dropped=[])
