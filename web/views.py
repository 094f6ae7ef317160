"""Server-rendered pages for people: the task grid, a task (live narration, its question,
its delivery card), the replay of a task's event log and its compaction history.

Who may see them: any signed-in member of an org (staff or not), for their own org's
tasks only. Another org's task is a 404, as on the API. A signed-in user without an org
gets a 403 page. The pages read through ``web.selectors``; the only writes a
page makes go through the product API from the browser (answer, reopen), with the
session and its CSRF token.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView, LogoutView
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.auth import org_of_user
from accounts.models import Org
from api import ratelimit
from api.errors import NotFound
from api.rfc3339 import iso
from tasks import selectors, services
from tasks.events import activity_topic, task_topic
from tasks.models import Task
from tasks.serializers.outputs import TaskOut
from web import selectors as page_selectors

View = Callable[..., HttpResponse]

# The realtime hub's path (ether_site/asgi.py routes it; it is no Django URL to reverse).
REALTIME_PATH = "/api/realtime"

STATUS_LABELS = {
    "ready": "Ready",
    "in_progress": "Working",
    "paused": "Needs your answer",
    "completed": "Delivered",
    "no_changes": "No changes",
    "cancelled": "Cancelled",
}


def short_time(stamp: str | None) -> str:
    """``2026-11-25T22:29:51.123Z`` → ``2026-11-25 22:29:51 UTC`` (web/static/web/time.js too)."""
    return f"{stamp[:19].replace('T', ' ')} UTC" if stamp else ""


def relative_time(stamp: str | None, now: datetime) -> str:
    """``3 min ago``, as ``relative`` in web/static/web/time.js words it (which keeps it
    current in the browser); the absolute time is the element's title."""
    if not stamp:
        return ""
    seconds = (now - parse_datetime(stamp)).total_seconds()
    if seconds < 45:
        return "just now"
    if seconds < 45 * 60:
        return f"{max(1, round(seconds / 60))} min ago"
    if seconds < 22 * 3600:
        return f"{round(seconds / 3600)} h ago"
    if seconds < 30 * 86400:
        return f"{max(1, round(seconds / 86400))} d ago"
    return stamp[:10]


def human_time(stamp: str | None) -> str:
    """``2026-12-04T08:31:05.123Z`` → ``4 Dec 2026, 08:31 UTC`` (the replay's version picker)."""
    if not stamp:
        return ""
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(UTC)
    return f"{moment.day} {moment:%b %Y, %H:%M} UTC"


def member_required(view: View) -> View:
    """Signed in (else the sign-in page) and a member of an org (else 403).

    The pages have their own sign-in page rather than ``LOGIN_URL`` (the admin's): the
    admin's form refuses anyone who is not staff, and most members are not."""

    @login_required(login_url="login")
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        org = org_of_user(request.user)
        if org is None:
            return render(request, "web/no_org.html", status=403)
        return view(request, org, *args, **kwargs)

    return wrapper


def _task(org: Org, task_id: str) -> Task:
    """The org's task with any lapsed lease recorded, so the page shows the true status."""
    try:
        task = selectors.task_get(org=org, task_id=task_id)
    except NotFound:
        raise Http404("No such task.") from None
    services.lease_settle(task_pk=task.pk)
    return task


def sign_in_throttled(view: View) -> View:
    """A sign-in view behind ``ETHER_RATE_LOGIN`` (api/ratelimit.py): the product's
    ``/login/`` and the admin's ``/admin/login/`` alike, so neither is a way around the other.

    Every POST is counted before its password is checked, per client address and per
    username. Over the limit the password is not even checked: the answer is a 429 page
    with ``Retry-After`` (a page, not a problem document: a person reads it) and no
    session. A successful sign-in is taken back out of the counts, so only failures lock
    out. Success is read from the answer: Django's ``LoginView`` answers a POST with a
    redirect only from ``form_valid``, after ``login()`` has set ``request.user``.
    """

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method != "POST":
            return view(request, *args, **kwargs)
        # REMOTE_ADDR is the client's address, or the proxy's unless daphne runs with
        # --proxy-headers (X-Forwarded-For is only trusted when the proxy overwrites it).
        attempt = ratelimit.login_attempt(
            client_ip=request.META.get("REMOTE_ADDR") or "unknown",
            username=request.POST.get("username", ""),
        )
        if attempt.wait is not None:
            seconds = math.ceil(attempt.wait)
            response = render(
                request,
                "web/login_throttled.html",
                {"retry_after": seconds, "back_url": request.path},
                status=429,
            )
            response["Retry-After"] = str(seconds)
            return response
        response = view(request, *args, **kwargs)
        if response.status_code == 302 and request.user.is_authenticated:
            ratelimit.login_forgive(attempt)
        return response

    return wrapper


class SignInView(LoginView):
    """Django's sign-in form; ``sign_in`` puts it behind the sign-in rate limit."""

    template_name = "web/login.html"
    next_page = "pages:grid"
    redirect_authenticated_user = True


sign_in = sign_in_throttled(SignInView.as_view())
sign_out = LogoutView.as_view(next_page="login")


def home(request: HttpRequest) -> HttpResponse:
    """People land on their task grid; a visitor who is not signed in on the product's own
    sign-in page (which links the API docs), not on Swagger UI's loading spinner."""
    if request.user.is_authenticated:
        return redirect("pages:grid")
    return redirect("login")


def _transport(sse: dict[str, str]) -> dict[str, Any]:
    """How the page goes live (web/static/web/realtime.js): the WebSocket first unless
    ``ETHER_REALTIME_PREFER_WEBSOCKET`` is off, and each topic's SSE stream to fall back on
    (``/api/config`` says the same to other clients)."""
    return {"preferWebsocket": settings.ETHER_REALTIME_PREFER_WEBSOCKET, "sse": sse}


def _urls(task_id: str) -> dict[str, str]:
    return {
        "page": reverse("pages:task", args=[task_id]),
        "replay": reverse("pages:replay", args=[task_id]),
        "compaction": reverse("pages:compaction", args=[task_id]),
        "answer": reverse("task-answer", args=[task_id]),
        "reopen": reverse("task-reopen", args=[task_id]),
        "messages": reverse("task-messages", args=[task_id]),
        "detail": reverse("task-detail", args=[task_id]),
        "feedback": reverse("task-feedback", args=[task_id]),
    }


def _render_task(
    request: HttpRequest,
    org: Org,
    task: Task,
    template: str,
    context: dict[str, Any],
    *,
    detail: dict[str, Any] | None = None,
) -> HttpResponse:
    """A page of one task (task, replay, compaction): the shared task header, then the
    page's own context. ``detail`` is the task as the page read it (``TaskOut``)."""
    detail = detail if detail is not None else TaskOut(task).data
    header = {
        "org": org,
        "task": detail,
        "status_label": STATUS_LABELS.get(detail["status"], detail["status"]),
        "urls": _urls(detail["id"]),
    }
    return render(request, template, {**header, **context})


@member_required
def grid(request: HttpRequest, org: Org) -> HttpResponse:
    query = page_selectors.GridQuery.parse(request.GET)
    page = page_selectors.grid_page(org=org, query=query)
    config = {
        "positions": {page.topic: page.position},
        "ticketUrl": reverse("realtime-tickets"),
        "socketPath": REALTIME_PATH,
        "transport": _transport({page.topic: reverse("activity-events")}),
        # The JS fills in the id; "task_" keeps the placeholder a valid path segment.
        "taskUrl": reverse("pages:task", args=["task_ID"]),
        "createUrl": reverse("task-list"),
        "statusLabels": STATUS_LABELS,
        # What the page shows, so live rows that do not match are left out.
        "filter": {"status": query.status, "q": query.q},
        "firstPage": query.after is None and query.before is None,
        "waiting": page.waiting,
    }
    now = timezone.now()
    rows = [
        {
            **row,
            "status_label": STATUS_LABELS.get(row["status"], row["status"]),
            "updated_display": relative_time(row["updated_at"], now),
            "updated_title": short_time(row["updated_at"]),
        }
        for row in page.rows
    ]
    return render(
        request,
        "web/grid.html",
        {
            "org": org,
            "rows": rows,
            "page": page,
            "query": query,
            "statuses": list(STATUS_LABELS.items()),
            "filtered": bool(query.status or query.q),
            "filter_label": STATUS_LABELS.get(query.status, ""),
            "choices": page_selectors.create_choices(org=org),
            "config": config,
            "position": page.position,
        },
    )


@member_required
def task_page(request: HttpRequest, org: Org, task_id: str) -> HttpResponse:
    task = _task(org, task_id)
    page = page_selectors.task_page(org=org, task=task, username=request.user.get_username())
    detail = page.detail
    config = {
        "taskId": task.public_id,
        "org": org.slug,
        "positions": page.positions,
        "ticketUrl": reverse("realtime-tickets"),
        "socketPath": REALTIME_PATH,
        "transport": _transport(
            {
                task_topic(task): reverse("task-events", args=[task.public_id]),
                activity_topic(org): reverse("activity-events"),
            }
        ),
        "urls": _urls(task.public_id),
        "status": detail["status"],
        "statusLabels": STATUS_LABELS,
        "delivered": page.delivered,
        "deliveryRunId": page.delivery["run_id"] if page.delivery else None,
        "openQuestion": detail["open_question"],
        "run": page.run,
        "rating": page.rating,
        # The server's clock, so elapsed time and lease left do not depend on the viewer's.
        "now": iso(timezone.now()),
    }
    return _render_task(
        request,
        org,
        task,
        "web/task.html",
        {
            "steps": page.steps,
            "run": page.run,
            "run_live": bool(page.run and page.run["status"] == "live")
            and detail["status"] in ("in_progress", "paused"),
            "steps_total": page.steps_total,
            "question": detail["open_question"],
            "delivery": page.delivery if page.delivered else None,
            "previous_delivery": page.delivery if not page.delivered else None,
            "created_at": task.created_at,
            "config": config,
        },
        detail=detail,
    )


@member_required
def replay(request: HttpRequest, org: Org, task_id: str) -> HttpResponse:
    task = _task(org, task_id)
    page = page_selectors.replay_page(org=org, task=task)
    deliveries = [{**d, "created_display": human_time(d["created_at"])} for d in page.deliveries]
    return _render_task(
        request,
        org,
        task,
        "web/replay.html",
        {
            "replay_data": {
                "events": page.events,
                "deliveries": deliveries,
                "runs": page.runs,
                "taskId": task.public_id,
            },
            "event_count": len(page.events),
            "truncated": page.truncated,
            "deliveries": deliveries,
        },
    )


@member_required
def compaction(request: HttpRequest, org: Org, task_id: str) -> HttpResponse:
    task = _task(org, task_id)
    page = page_selectors.compaction_page(org=org, task=task)
    return _render_task(
        request,
        org,
        task,
        "web/compaction.html",
        {
            "working": page.working,
            "memory": page.memory,
            "compactions": page.compactions,
            "raw_bytes": page.raw_bytes,
            "budget_bytes": page.budget_bytes,
            "slice_bytes": page.slice_bytes,
            "slice_docs": page.slice_docs,
            # Promoting into the repository's memory is for org admins (staff).
            "can_promote": request.user.is_staff,
            "repo_name": task.repo.full_name,
            "config": {"promoteUrl": reverse("task-memory-promote", args=[task.public_id])},
        },
    )
