"""Harness definitions: the rules for their fields, and inheritance (docs/contract.md §4).

Pure functions, no database: the serializers call the checks, the selectors call
``resolve`` with a chain of layers (root first) that they read.

Merge rules, parent first, child last:
- ``system_prompt``: stacked, joined by a blank line; empty prompts add nothing.
- ``capabilities``: merged by ``ref``; a child's entry replaces its parent's in place,
  new refs are appended.
- ``mcpServers``: merged by key; a child's server replaces its parent's.
- ``initial_files``: merged by normalized path; a child's file replaces its parent's.
- ``network_access.blocked``: the union. ``allowed``: the intersection: a child may only
  narrow. A layer without ``network_access``, or with an empty or absent ``allowed``,
  has no allow-list and restricts nothing (Everruns' reading: its clients send
  ``allowed: []`` by default); an entry survives when the other side's list covers it
  (same entry, or a glob such as ``*.example.com`` that matches its host and a URL
  prefix that its path starts with). Both lists are always arrays: ``allowed: []`` in
  the result means no allow-list, everything not blocked. Layers whose allow-lists have
  nothing in common allow nothing: the result is ``[ALLOW_NOTHING]``, a host that never
  resolves, so that a reader of the lists fails closed.
- ``default_model_id``: the nearest layer that sets one.
Name, display name, description, tags and status are the definition's own.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import urlsplit

NAME_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
NAME_MAX = 64
# ``default`` names the org's default; the others are routes beside ``{harness_id}``
# (``/v1/harnesses/config``, …) or of Everruns' API, so no definition may take them.
ROUTE_NAMES = frozenset({"check-name", "config", "import", "preview", "stats", "harness-examples"})
RESERVED_NAMES = frozenset({"default"}) | ROUTE_NAMES
MAX_DEPTH = 8  # layers in a chain, the definition itself included
MAX_FILES = 100
MAX_FILES_BYTES = 5 * 1024 * 1024
WORKSPACE = "/workspace"
CAPABILITY_REF_RE = re.compile(r"^[a-z0-9][a-z0-9_.:/-]{0,127}$")
MCP_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
HEADER_NAME_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$")
# The one-entry allow-list that allows nothing (RFC 6761: .invalid never resolves).
ALLOW_NOTHING = "allow-nothing.invalid"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
HOST_PATTERN_RE = re.compile(rf"^(?:\*\.)?(?:{_LABEL}\.)*{_LABEL}$")


# --- field checks: each returns an error message, or None -----------------------------
def name_error(name: str) -> str | None:
    if len(name) > NAME_MAX:
        return f"At most {NAME_MAX} characters."
    if not NAME_RE.match(name):
        return "Lowercase letters and digits, in groups joined by single hyphens."
    if name == "default":
        return f"{name!r} is reserved: it names the org's default harness."
    if name in RESERVED_NAMES:
        return f"{name!r} is reserved: /v1/harnesses/{name} is a route of the API."
    return None


def normalize_path(path: str) -> str:
    """The workspace path of a starter file, without the ``/workspace`` prefix.

    Raises ``ValueError`` for a path that is not absolute, climbs (``..``), has empty or
    ``.`` segments, backslashes or control characters, or names the workspace itself.
    """
    if not path.startswith("/"):
        raise ValueError("Must be an absolute path within the workspace, like /src/app.py.")
    if any(ord(ch) < 32 or ch == "\\" for ch in path):
        raise ValueError("Control characters and backslashes are not allowed.")
    if path == WORKSPACE or path.startswith(WORKSPACE + "/"):
        path = path[len(WORKSPACE) :]
    segments = path.split("/")[1:]
    if not segments or segments == [""]:
        raise ValueError("Must name a file, not the workspace.")
    if any(s in ("", ".", "..") for s in segments):
        raise ValueError("Empty, '.' and '..' segments are not allowed: stay within the workspace.")
    if len(path) > 1024:
        raise ValueError("At most 1024 characters.")
    return path


def decoded_size(content: str, encoding: str) -> int:
    """Bytes the file will occupy; raises ``ValueError`` for base64 that does not decode."""
    if encoding == "base64":
        try:
            return len(base64.b64decode(content, validate=True))
        except (binascii.Error, ValueError):
            raise ValueError("Not valid base64.") from None
    return len(content.encode("utf-8"))


def url_error(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a bad port only raises when read
    except ValueError:
        return "Not a URL."
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        return "Must be an http(s) URL with a host."
    if parts.username or parts.password:
        return "Credentials do not belong in the URL: use headers."
    return None


def network_pattern_error(entry: str) -> str | None:
    """A host pattern (``api.acme.com``, ``*.example.com``), an IP address or network,
    or an http(s) URL prefix (``https://api.acme.com/v1/``)."""
    if "://" in entry:
        return url_error(entry)
    try:
        ipaddress.ip_network(entry, strict=False)
        return None
    except ValueError:
        pass
    if not HOST_PATTERN_RE.match(entry):
        return f"{entry!r} is not a host pattern, an IP address or an http(s) URL."
    return None


# --- inheritance ---------------------------------------------------------------------
@dataclass(frozen=True)
class Layer:
    """One definition of a chain, as ``resolve`` needs it."""

    id: str
    name: str
    system_prompt: str
    capabilities: list[dict[str, Any]]
    mcp_servers: dict[str, dict[str, Any]]
    network_access: dict[str, Any] | None
    initial_files: list[dict[str, Any]]
    default_model_id: str | None


@dataclass
class Resolved:
    system_prompt: str
    capabilities: list[dict[str, Any]]
    mcp_servers: dict[str, dict[str, Any]]
    network_access: dict[str, Any] | None
    initial_files: list[dict[str, Any]]
    default_model_id: str | None
    # Which layer (by id) each value came from, for people reading the result.
    origins: dict[str, Any] = field(default_factory=dict)


def _host_and_path(entry: str) -> tuple[str, str]:
    if "://" in entry:
        parts = urlsplit(entry)
        return (parts.hostname or "").lower(), parts.path or "/"
    return entry.lower(), "/"


def covered(entry: str, patterns: list[str]) -> bool:
    """Whether ``entry`` allows nothing that ``patterns`` do not."""
    host, path = _host_and_path(entry)
    for pattern in patterns:
        if entry == pattern:
            return True
        p_host, p_path = _host_and_path(pattern)
        if fnmatchcase(host, p_host) and path.startswith(p_path):
            return True
    return False


def narrow(outer: list[str] | None, inner: list[str] | None) -> list[str] | None:
    """The intersection of two allow-lists; None is "no allow-list". Lists with nothing
    in common give ``[ALLOW_NOTHING]``, never ``[]`` (which would read as no list)."""
    if outer is None:
        return inner
    if inner is None:
        return outer
    kept = [e for e in inner if covered(e, outer)]
    kept += [e for e in outer if e not in kept and covered(e, inner)]
    return kept or [ALLOW_NOTHING]


def network_out(value: dict[str, Any] | None) -> dict[str, list[str]] | None:
    """A stored or resolved ``network_access`` as it is served: both lists arrays."""
    if value is None:
        return None
    return {
        "allowed": list(value.get("allowed") or []),
        "blocked": list(value.get("blocked") or []),
    }


def resolve(chain: list[Layer]) -> Resolved:
    """The effective definition of the last layer of ``chain`` (root first)."""
    prompts: list[str] = []
    prompt_layers: list[str] = []
    capabilities: dict[str, dict[str, Any]] = {}
    servers: dict[str, dict[str, Any]] = {}
    files: dict[str, dict[str, Any]] = {}
    allowed: list[str] | None = None
    blocked: list[str] = []
    any_network = False
    model: str | None = None
    origins: dict[str, Any] = {
        "system_prompt": prompt_layers,
        "capabilities": {},
        "mcpServers": {},
        "initial_files": {},
        "network_access": {"allowed": None, "blocked": {}},
        "default_model_id": None,
    }
    for layer in chain:
        if layer.system_prompt.strip():
            prompts.append(layer.system_prompt)
            prompt_layers.append(layer.id)
        for capability in layer.capabilities:
            capabilities[capability["ref"]] = capability
            origins["capabilities"][capability["ref"]] = layer.id
        for key, server in layer.mcp_servers.items():
            servers[key] = server
            origins["mcpServers"][key] = layer.id
        for item in layer.initial_files:
            files[item["path"]] = item
            origins["initial_files"][item["path"]] = layer.id
        if layer.network_access is not None:
            any_network = True
            layer_allowed = layer.network_access.get("allowed")
            if layer_allowed:
                allowed = narrow(allowed, list(layer_allowed))
                origins["network_access"]["allowed"] = layer.id
            for entry in layer.network_access.get("blocked") or []:
                if entry not in blocked:
                    blocked.append(entry)
                origins["network_access"]["blocked"].setdefault(entry, []).append(layer.id)
        if layer.default_model_id:
            model = layer.default_model_id
            origins["default_model_id"] = layer.id
    return Resolved(
        system_prompt="\n\n".join(prompts),
        capabilities=list(capabilities.values()),
        mcp_servers=servers,
        network_access={"allowed": allowed or [], "blocked": blocked} if any_network else None,
        initial_files=list(files.values()),
        default_model_id=model,
        origins=origins,
    )
