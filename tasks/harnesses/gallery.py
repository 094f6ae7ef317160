"""The harness examples gallery (``GET /v1/harness-examples``): starting definitions
shipped as data, one TOML file each in ``tasks/harnesses/examples/`` (the file name is the
example's name), importable into an org (``POST /v1/harnesses/import?from-example=``).

Each file holds Everruns' ``HarnessExample`` fields (``display_name``, ``description``,
``tags``, ``capabilities``, ``parent_name``, ``dev_only``) and the definition fields an
import copies (``system_prompt``, ``initial_files``, ``network_access``, ...). They pass
the same checks as ``POST /v1/harnesses`` (tests/tasks/test_harness_authoring.py).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
# Fields of the gallery entry itself; everything else in a file is the definition.
ENTRY_FIELDS = ("display_name", "description", "tags", "parent_name", "dev_only")


@dataclass(frozen=True)
class Example:
    name: str
    display_name: str
    description: str
    tags: list[str]
    parent_name: str | None
    dev_only: bool
    # What an import creates, as ``POST /v1/harnesses`` would take it (without name,
    # display name, description and tags, which are the entry's own, and the parent).
    definition: dict[str, Any]

    @property
    def capabilities(self) -> list[dict[str, Any]]:
        return self.definition.get("capabilities", [])

    def create_body(self, name: str) -> dict[str, Any]:
        return {
            **self.definition,
            "name": name,
            "display_name": self.display_name,
            "description": self.description,
            "tags": list(self.tags),
        }


@cache
def examples() -> tuple[Example, ...]:
    """Every example, in name order; read once per process."""
    found = []
    for path in sorted(EXAMPLES_DIR.glob("*.toml")):
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        found.append(
            Example(
                name=path.stem,
                display_name=data["display_name"],
                description=data["description"],
                tags=list(data.get("tags", [])),
                parent_name=data.get("parent_name"),
                dev_only=bool(data.get("dev_only", False)),
                definition={k: v for k, v in data.items() if k not in ENTRY_FIELDS},
            )
        )
    return tuple(found)


def example_get(name: str) -> Example | None:
    return next((e for e in examples() if e.name == name), None)
