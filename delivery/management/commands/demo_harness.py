"""A demo harness: drives one task over HTTP exactly as an external harness would.

It only speaks the public harness API (``/api/harness/*``) with the standard library's
``urllib``, so what it does works from any process, against any running Ether server.
With ``--next`` it finds its work as a real harness loop does: it long-polls
``POST /api/harness/claim-next`` until a task it may take is ready (one created in the
browser after it started, say), works it, and waits for the next one, instead of reading
a task id from var/demo.json.
"""

from __future__ import annotations

import json
import math
import re
import time
import uuid
from collections.abc import Callable
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit
from urllib.request import Request, urlopen

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tasks.management.commands.seed_demo import default_secrets_file

DEFAULT_BASE_URL = "http://127.0.0.1:8080"
ASK_QUESTION = "Should the endpoint also report the database status, or only the build version?"
ASK_CHOICES = ["Only the build version", "Also the database status"]
# Seconds each claim-next call waits on the server (its maximum is 30).
NEXT_POLL_SECONDS = 25


class HarnessCallFailed(Exception):
    """A problem document from the server, kept whole so the command can explain it."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status, self.code, self.detail = status, code, detail


class EtherClient:
    """JSON over HTTP with the harness key; every POST carries an Idempotency-Key."""

    def __init__(self, base_url: str, key: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.key = key
        self.timeout = timeout

    def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
    ) -> Any:
        headers = {"Authorization": f"Bearer {self.key}", "Accept": "application/json"}
        data = None
        if method == "POST":
            data = json.dumps(body or {}).encode("utf-8")
            headers["Content-Type"] = "application/json"
            headers["Idempotency-Key"] = f"demo-{uuid.uuid4()}"
        url = path if path.startswith("http") else self.base_url + path
        request = Request(url, data=data, headers=headers, method=method)
        try:
            with urlopen(request, timeout=timeout or self.timeout) as response:
                raw = response.read()
        except HTTPError as error:
            raise problem_of(error) from None
        except (URLError, ConnectionError, TimeoutError) as error:
            reason = getattr(error, "reason", error)
            raise CommandError(
                f"Cannot reach Ether at {self.base_url} ({reason}). Is the server running? "
                "Start it with `make run`, or pass --base-url."
            ) from None
        try:
            return json.loads(raw or b"null")
        except ValueError:
            raise CommandError(f"{url} did not answer JSON: is {self.base_url} Ether?") from None


def problem_of(error: HTTPError) -> HarnessCallFailed:
    try:
        body = json.loads(error.read() or b"{}")
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    return HarnessCallFailed(
        error.code, str(body.get("code", "http_error")), str(body.get("detail", error.reason))
    )


def branch_for(scope: str, topic: str) -> str:
    """A branch name inside the ``branch_scope`` glob: wildcards become the topic."""
    branch = re.sub(r"\[!?([^\]]*)\]", lambda m: (m.group(1) or "x")[0], scope)
    branch = branch.replace("**", "*").replace("*", topic).replace("?", "x")
    if not fnmatchcase(branch, scope):
        raise CommandError(f"Cannot make a branch name inside branch_scope {scope!r}.")
    return branch


def pr_number(task_id: str) -> int:
    """A stable, plausible PR number per task (the demo opens no real pull request)."""
    return int(task_id[-4:], 16) % 900 + 100


def working_summary(bundle: dict[str, Any], branch: str, answer: str | None) -> str:
    """Markdown that mentions every definition-of-done item on its own line, which is what
    the judge's mention check looks for (docs/delivery.md)."""
    lines = [f"## {bundle['title']}", "", f"Work is on branch `{branch}`.", ""]
    if answer:
        lines += [f"You answered: *{answer}*.", ""]
    lines += ["### Definition of done", ""]
    lines += [f"- Done: {item}" for item in bundle.get("definition_of_done", [])]
    lines += ["", "### Notes", "", "- Small change, one concern; tests first."]
    return "\n".join(lines) + "\n"


class Command(BaseCommand):
    help = (
        "Act as an external harness over HTTP: claim a task, narrate steps, optionally ask "
        "a question and wait for the answer, then submit a result with a pull request."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--task", help="task id (default: the task in var/demo.json)")
        parser.add_argument(
            "--next",
            action="store_true",
            help="no task id: long-poll claim-next for the oldest ready task this app may "
            "take, work it, and wait for the next one (Ctrl-C to stop)",
        )
        parser.add_argument(
            "--give-up",
            type=float,
            default=0,
            help="with --next: stop after this many idle seconds (default: never)",
        )
        parser.add_argument("--base-url", help=f"server URL (default: {DEFAULT_BASE_URL})")
        parser.add_argument("--key", help="harness app key (default: from var/demo.json)")
        parser.add_argument("--app-id", help="harness app id (default: from var/demo.json)")
        parser.add_argument("--ask", action="store_true", help="ask a question, wait for it")
        parser.add_argument("--pause", type=float, default=1.5, help="seconds between steps")
        parser.add_argument(
            "--status", choices=["submitted", "no_changes", "blocked"], default="submitted"
        )
        parser.add_argument("--wait", type=float, default=600, help="seconds to wait for --ask")
        parser.add_argument("--secrets-file", type=Path, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        demo = self.demo_secrets(options["secrets_file"])
        if options["next"] and options["task"]:
            raise CommandError("Pass --task or --next, not both.")
        task_id = "next" if options["next"] else options["task"] or demo.get("task_id")
        key = options["key"] or demo.get("harness_key")
        app_id = options["app_id"] or demo.get("app_id")
        base_url = (options["base_url"] or demo.get("base_url") or DEFAULT_BASE_URL).rstrip("/")
        missing = [
            n for n, v in (("--task", task_id), ("--key", key), ("--app-id", app_id)) if not v
        ]
        if missing:
            raise CommandError(
                f"Missing {', '.join(missing)}: pass them, or run `make run` (seed_demo) first "
                "so var/demo.json holds the demo's task, key and app id."
            )
        if urlsplit(base_url).scheme not in {"http", "https"}:
            raise CommandError(f"--base-url must be an http(s) URL, not {base_url!r}.")
        self.pause = max(0.0, options["pause"])
        self.client = EtherClient(base_url, key)
        self.base_url = base_url
        try:
            if options["next"]:
                self.work_loop(app_id, options)
                return
            self.task_page = f"{base_url}/tasks/{task_id}"
            self.run_task(task_id, app_id, options)
        except HarnessCallFailed as failed:
            raise CommandError(explain(failed, task_id, app_id)) from None

    def work_loop(self, app_id: str, options: dict[str, Any]) -> None:
        """Task after task, as claim-next hands them out; ``--give-up`` idle seconds end
        it (an error if no task came at all)."""
        done = 0
        while True:
            claim = self.claim_next(app_id, options["give_up"])
            if claim is None:
                if not done:
                    raise CommandError(f"No task became ready within {options['give_up']:g} s.")
                self.say(f"No new task for {options['give_up']:g} s; stopping after {done}.")
                return
            task_id = claim["bundle"]["task_id"]
            self.task_page = f"{self.base_url}/tasks/{task_id}"
            try:
                self.run_task(task_id, app_id, options, claim)
            except HarnessCallFailed as failed:
                # One task refused (its lease lost meanwhile, say): say so, take the next.
                self.say(explain(failed, task_id, app_id))
            done += 1

    def demo_secrets(self, path: Path | None) -> dict[str, Any]:
        path = path or default_secrets_file()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as error:
            raise CommandError(f"Cannot read {path}: {error}") from None
        return data if isinstance(data, dict) else {}

    def say(self, text: str) -> None:
        self.stdout.write(text)
        self.stdout.flush()

    def claim_next(self, app_id: str, give_up: float) -> dict[str, Any] | None:
        """Long-polls claim-next until a task is granted (None after ``give_up`` idle
        seconds): each call waits on the server, holding nothing there, and answers 204
        when nothing became ready meanwhile."""
        self.say(f"Waiting for a ready task for {app_id} (POST /api/tasks makes one)")
        deadline = time.monotonic() + give_up if give_up > 0 else None
        while True:
            wait = NEXT_POLL_SECONDS
            if deadline is not None:
                wait = max(0, min(wait, math.ceil(deadline - time.monotonic())))
            body = {"app_id": app_id, "wait": wait}
            claim = self.client.call("POST", "/api/harness/claim-next", body, timeout=wait + 30)
            if claim is not None:
                task_id = claim["bundle"]["task_id"]
                self.say(f"Task {task_id}: {claim['bundle']['title']}")
                return claim
            if deadline is not None and time.monotonic() >= deadline:
                return None

    def run_task(
        self,
        task_id: str,
        app_id: str,
        options: dict[str, Any],
        claim: dict[str, Any] | None = None,
    ) -> None:
        if claim is None:
            base = f"/api/harness/tasks/{task_id}"
            preview = self.client.call("GET", f"{base}/execution")
            self.say(f"Task {task_id}: {preview['title']} ({preview['status']})")
            self.say(f"Watch it live: {self.task_page}")
            claim = self.client.call("POST", f"{base}/claim", {"app_id": app_id})
        else:
            self.say(f"Watch it live: {self.task_page}")
        run_id, epoch, bundle = claim["run_id"], claim["lease_epoch"], claim["bundle"]
        self.say(f"Claimed as {app_id}: run {run_id}, lease until {claim['lease_expires_at']}")
        scope = bundle["scope"]
        branch = branch_for(scope["branch_scope"], f"demo-{task_id[-6:]}")
        calls = bundle["callbacks"]

        def beat(note: str) -> dict[str, Any]:
            checkpoint = {"branch": branch, "note": note}
            body = {"run_id": run_id, "lease_epoch": epoch, "checkpoint": checkpoint}
            answer = self.client.call("POST", calls["heartbeat_url"], body)
            if answer["cancel_requested"] or answer["task_status"] == "cancelled":
                raise CommandError("The task was cancelled; the demo harness stops here.")
            return answer

        def step(n: int, phase: str, message: str) -> None:
            body = {
                "run_id": run_id,
                "lease_epoch": epoch,
                "phase": phase,
                "user_message": message,
                "internal_label": f"demo.{phase}",
                "client_step_id": f"demo-{run_id}-{n}",
            }
            self.client.call("POST", calls["report_step_url"], body)
            self.say(f"  [{phase}] {message}")
            beat(message)
            time.sleep(self.pause)

        dod = bundle.get("definition_of_done") or []
        docs = len(bundle.get("context", {}).get("doc_ids", []))
        step(1, "context", f"Reading the task and {docs} context documents")
        step(2, "planning", f"Planning the change against {len(dod)} definition-of-done items")
        answer = None
        if options["ask"]:
            answer = self.ask(calls, run_id, epoch, beat, options["wait"])
            step(3, "planning", f"Got your answer: {answer}")
        step(4, "coding_agent", f"Making the changes on branch {branch}")
        step(5, "testing", "Running the test suite: all green")
        self.submit(calls, run_id, epoch, bundle, branch, answer, options["status"], step)

    def ask(
        self,
        calls: dict[str, str],
        run_id: str,
        epoch: int,
        beat: Callable[[str], dict[str, Any]],
        wait: float,
    ) -> str:
        body = {"run_id": run_id, "lease_epoch": epoch, "question": ASK_QUESTION}
        asked = self.client.call("POST", calls["interrupt_url"], {**body, "choices": ASK_CHOICES})
        interrupt_id = asked["interrupt_id"]
        self.say(f"  [question] {ASK_QUESTION}")
        self.say(f"  Waiting for your answer on {self.task_page}")
        deadline = time.monotonic() + wait
        # Heartbeats both keep the lease alive while we wait and bring the answer back.
        while time.monotonic() < deadline:
            state = beat("waiting for an answer")
            for item in state["answers"]:
                if item["interrupt_id"] == interrupt_id:
                    self.say(f"  [answer] {item['answer']}")
                    return item["answer"]
            time.sleep(max(self.pause, 0.2))
        raise CommandError(f"No answer within {wait:g} s; the task stays paused.")

    def submit(
        self,
        calls: dict[str, str],
        run_id: str,
        epoch: int,
        bundle: dict[str, Any],
        branch: str,
        answer: str | None,
        status: str,
        step: Callable[[int, str, str], None],
    ) -> None:
        body: dict[str, Any] = {
            "run_id": run_id,
            "lease_epoch": epoch,
            "status": status,
            "working_summary": working_summary(bundle, branch, answer),
        }
        if status == "submitted":
            number = pr_number(bundle["task_id"])
            repo_url = bundle["scope"]["repo"]["url"].rstrip("/")
            pr = {
                "number": number,
                "branch": branch,
                "url": f"{repo_url}/pull/{number}",
                "title": bundle["title"],
            }
            step(6, "review", f"Opened pull request #{number}")
            body |= {"agent_status": f"PR #{number} opened, tests green", "artifact": {"pr": pr}}
        elif status == "no_changes":
            body |= {"agent_status": "Nothing to change", "no_changes_reason": "Already done."}
        else:
            body |= {"agent_status": "Blocked", "question": "Which branch should I target?"}
        result = self.client.call("POST", calls["result_url"], body)
        self.say(f"Result {status}: task is now {result['task_status']}.")
        self.say(f"See the delivery on {self.task_page}")


def explain(failed: HarnessCallFailed, task_id: str, app_id: str) -> str:
    """A sentence a new user can act on, for the refusals the demo is likely to meet."""
    hints = {
        "not_authenticated": "The server refused the harness key. Pass --key, or run "
        "`make run` again: every seed_demo makes a fresh key (saved in var/demo.json).",
        "forbidden": f"The key does not belong to app {app_id!r}; check --app-id.",
        "not_found": f"No task {task_id} for this harness app's org (wrong --task or server?).",
        "task_closed": "The task is already finished or cancelled; reopen it on its page or "
        "run `make run` for a fresh one.",
        "task_paused": "The task is paused on a question: answer it on its page first.",
        "lease_held": "Another harness holds the task's lease; try again when it expires.",
        "out_of_scope": "The server refused the pull request as out of scope.",
    }
    hint = hints.get(failed.code, "The server refused the request.")
    return f"{hint}\n  ({failed.status} {failed.code}: {failed.detail})"
