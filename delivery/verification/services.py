"""Running the PR check: scheduled in the result's transaction, asked after commit."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from api.background import after_commit
from delivery.compose import with_checks
from delivery.models import Delivery, PrCheck
from delivery.verification.blocks import (
    not_found_block,
    unavailable_block,
    verified_block,
)
from delivery.verification.github import GitHub, GitHubUnavailable
from tasks import events
from tasks.models import Result, Task


def verification_schedule(delivery: Delivery) -> PrCheck:
    """Inside the result's transaction: the check's row (so a crash before or during the
    check leaves it for the sweeper) and a worker thread started once the result commits,
    so the harness's request never waits for GitHub."""
    check = PrCheck.objects.create(delivery=delivery)
    # A failure in the thread leaves the row running; the sweeper takes it once stale.
    after_commit(f"pr-check-{check.pk}", verification_run, check.pk)
    return check


def _ask(pr: dict[str, Any], task: Task, now: datetime) -> tuple[dict[str, Any], datetime | None]:
    """The ``checks`` block from GitHub's answers, and when to ask again if it could not
    answer. The repository asked is the task's (the judge already matched the PR URL)."""
    repository = task.repo.full_name
    try:
        with GitHub(
            api_url=settings.ETHER_GITHUB_API_URL, token=settings.ETHER_GITHUB_TOKEN
        ) as github:
            found = github.pull_request(repository, pr["number"])
            if found is None:
                return not_found_block(repository, pr["number"], at=now), None
            runs = github.check_runs(repository, found.head_sha) if found.head_sha else []
    except GitHubUnavailable as exc:
        retry_at = exc.retry_at or now + timedelta(seconds=settings.ETHER_VERIFY_RETRY_SECONDS)
        return unavailable_block(str(exc), at=now, retry_at=retry_at), retry_at
    block = verified_block(
        expected_repository=repository,
        expected_branch=pr["branch"],
        expected_sha=pr.get("head_sha"),
        pr=found,
        check_runs=runs,
        at=now,
    )
    return block, None


def verification_run(check_pk: int, *, now: datetime | None = None) -> PrCheck | None:
    """Asks GitHub about the delivered PR and stores the answer as the delivery's next
    version (announced like the first). None when the check is not due or another
    worker has it.

    The claim is one conditional UPDATE (pending and due, or running but stale), so two
    workers never ask twice at once; GitHub is asked with no transaction open; the
    answer is stored under the task row lock, where the next version number is taken.
    """
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.ETHER_VERIFY_RETRY_SECONDS)
    claimed = (
        PrCheck.objects.filter(pk=check_pk)
        .filter(
            Q(state="pending", next_attempt_at__lte=now) | Q(state="running", claimed_at__lt=stale)
        )
        .update(state="running", claimed_at=now, attempts=F("attempts") + 1, updated_at=now)
    )
    if not claimed:
        return None
    check = PrCheck.objects.select_related("delivery__run", "delivery__task__repo").get(pk=check_pk)
    delivery = check.delivery
    result = Result.objects.select_related("task__repo", "run").get(run=delivery.run)
    pr = (result.artifact or {}).get("pr") or {}
    block, retry_at = _ask(pr, delivery.task, now)
    with transaction.atomic():
        task = Task.objects.select_for_update().get(pk=delivery.task_id)
        check = PrCheck.objects.select_for_update().get(pk=check_pk)
        if check.state != "running" or check.claimed_at != now:
            return None  # the sweeper took it over meanwhile: its answer wins
        retry = retry_at is not None and check.attempts < settings.ETHER_VERIFY_MAX_ATTEMPTS
        check.state = "pending" if retry else "done"
        check.next_attempt_at = retry_at if retry else check.next_attempt_at
        check.block = block
        check.updated_at = timezone.now()
        check.save()
        _deliver(task=task, result=result, block=block)
    return check


def _deliver(*, task: Task, result: Result, block: dict[str, Any]) -> Delivery | None:
    """The newest delivery again with the ``checks`` block and the verdict it changes, as
    the next version. Only while the newest delivery is this result's: a later run's
    delivery is never covered by an older run's check."""
    latest = Delivery.objects.filter(task=task).order_by("-version").first()
    if latest is None or latest.run_id != result.run_id:
        return None
    blocks = with_checks(latest.blocks, result, block)
    delivery = Delivery.objects.create(
        task=task,
        run=result.run,
        status=result.status,
        version=latest.version + 1,
        blocks=blocks,
        source="verification",
        created_at=timezone.now(),
    )
    events.delivered(
        task=task,
        status=result.status,
        run_id=result.run.public_id,
        version=delivery.version,
        blocks=blocks,
    )
    return delivery


def verifications_sweep(*, now: datetime | None = None) -> int:
    """Runs every check that is due (a rate limit's reset passed) or that a crashed
    worker left running; the number run."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.ETHER_VERIFY_RETRY_SECONDS)
    due = PrCheck.objects.filter(
        Q(state="pending", next_attempt_at__lte=now) | Q(state="running", claimed_at__lt=stale)
    ).values_list("pk", flat=True)
    return sum(1 for pk in list(due) if verification_run(pk, now=now) is not None)
