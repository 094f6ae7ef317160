"""A hypothesis state machine over the whole lease protocol, driven through the HTTP API.

Two apps claim, heartbeat, narrate, ask, answer, submit and get released while the clock
jumps. Before each harness write the machine decides from the stored state whether the
write is allowed (the run is the task's live run, its lease unexpired, the task open);
afterwards it checks the server agreed, and that a refused write stored nothing.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from tasks.models import Interrupt, Result, Run, RunStatus, Step, Task, TaskStatus
from tests import factories
from tests.helpers import Caller, Harness

_orgs = itertools.count()
APPS = st.sampled_from(["a", "b"])
ALLOWED = {
    TaskStatus.READY,
    TaskStatus.IN_PROGRESS,
    TaskStatus.PAUSED,
    TaskStatus.COMPLETED,
    TaskStatus.NO_CHANGES,
    TaskStatus.CANCELLED,
}


class LeaseMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = time_machine.travel(datetime(2026, 11, 25, 9, 0, tzinfo=UTC), tick=False)
        self.traveller = self.clock.start()
        org = factories.make_org(f"sm{next(_orgs)}")
        user = factories.make_user(org)
        self.person = Caller(factories.make_token(user))
        self.task = factories.make_task(org, owner=user)
        self.harness = {}
        for name in ("a", "b"):
            app, key = factories.make_app(org, f"app-{name}")
            self.harness[name] = Harness(key, app.app_id)
        self.run_of: dict[str, str] = {}
        self.max_epoch = 0

    def teardown(self) -> None:
        self.clock.stop()

    # --- the model's view of the stored state ------------------------------------
    def counts(self) -> tuple[int, int, int]:
        return (
            Step.objects.filter(task=self.task).count(),
            Interrupt.objects.filter(task=self.task).count(),
            Result.objects.filter(task=self.task).count(),
        )

    def may_write(self, name: str) -> bool:
        run_id = self.run_of.get(name)
        task = Task.objects.get(pk=self.task.pk)
        run = Run.objects.filter(public_id=run_id).first()
        return (
            run is not None
            and run.status == RunStatus.LIVE
            and run.lease_expires_at > timezone.now()
            and task.status
            not in (TaskStatus.COMPLETED, TaskStatus.NO_CHANGES, TaskStatus.CANCELLED)
        )

    def check_write(self, name: str, send, *, extra_ok: bool = True) -> None:
        if name not in self.run_of:
            return
        allowed = self.may_write(name) and extra_ok
        before = self.counts()
        response = send(self.run_of[name])
        if allowed:
            assert response.status_code in (200, 201), response.content
        else:
            assert response.status_code == 409, response.content
            assert response.json()["code"] in {"lease_lost", "task_closed", "task_paused"}
            assert self.counts() == before, "a refused write stored something"

    # --- rules -------------------------------------------------------------------
    @rule(name=APPS)
    def claim(self, name: str) -> None:
        response = self.harness[name].claim(self.task.public_id)
        if response.status_code == 200:
            body = response.json()
            assert body["lease_epoch"] > self.max_epoch
            self.max_epoch = body["lease_epoch"]
            self.run_of[name] = body["run_id"]
        else:
            assert response.status_code == 409
            assert response.json()["code"] in {"lease_held", "task_paused", "task_closed"}

    @rule(name=APPS)
    def heartbeat(self, name: str) -> None:
        self.check_write(
            name, lambda run_id: self.harness[name].heartbeat(self.task.public_id, run_id)
        )

    @rule(name=APPS)
    def step(self, name: str) -> None:
        self.check_write(name, lambda run_id: self.harness[name].step(self.task.public_id, run_id))

    @rule(name=APPS)
    def interrupt(self, name: str) -> None:
        paused = Task.objects.get(pk=self.task.pk).status == TaskStatus.PAUSED
        self.check_write(
            name,
            lambda run_id: self.harness[name].interrupt(self.task.public_id, run_id),
            extra_ok=not paused,
        )

    @rule(name=APPS, status=st.sampled_from(["submitted", "blocked", "no_changes"]))
    def result(self, name: str, status: str) -> None:
        run_id = self.run_of.get(name)
        if run_id is None or Result.objects.filter(run__public_id=run_id).exists():
            return  # a finished run's retry has its own test
        self.check_write(
            name, lambda rid: self.harness[name].result(self.task.public_id, rid, status=status)
        )

    @rule()
    def answer(self) -> None:
        response = self.person.post(f"/api/tasks/{self.task.public_id}/answer", {"answer": "ok"})
        assert response.status_code in (200, 409)

    @rule()
    def release(self) -> None:
        response = self.person.post(f"/api/tasks/{self.task.public_id}/release")
        assert response.status_code in (200, 409)

    @rule()
    def reopen(self) -> None:
        response = self.person.post(f"/api/tasks/{self.task.public_id}/reopen")
        assert response.status_code in (200, 409)

    @rule(seconds=st.sampled_from([1, 120, 299, 300, 301, 900]))
    def advance_clock(self, seconds: int) -> None:
        self.traveller.shift(timedelta(seconds=seconds))

    # --- invariants --------------------------------------------------------------
    @invariant()
    def at_most_one_live_run(self) -> None:
        assert Run.objects.filter(task=self.task, status=RunStatus.LIVE).count() <= 1

    @invariant()
    def status_is_one_the_contract_allows(self) -> None:
        task = Task.objects.get(pk=self.task.pk)
        assert task.status in ALLOWED
        live = Run.objects.filter(task=task, status=RunStatus.LIVE).first()
        open_questions = Interrupt.objects.filter(task=task).open().count()
        if task.status == TaskStatus.IN_PROGRESS:
            assert live is not None
        if task.status == TaskStatus.READY:
            assert live is None or live.lease_expires_at <= timezone.now()
        if task.status == TaskStatus.PAUSED:
            assert open_questions == 1
        else:
            assert open_questions == 0
        if task.status in (TaskStatus.COMPLETED, TaskStatus.NO_CHANGES):
            assert live is None

    @invariant()
    def epoch_never_goes_back(self) -> None:
        assert Task.objects.get(pk=self.task.pk).lease_epoch == self.max_epoch or (
            Task.objects.get(pk=self.task.pk).lease_epoch >= self.max_epoch
        )


@pytest.mark.django_db
def test_lease_protocol_state_machine():
    run_state_machine_as_test(
        LeaseMachine,
        settings=settings(
            max_examples=30,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
