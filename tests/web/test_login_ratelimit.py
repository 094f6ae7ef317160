"""``POST /login/`` behind ``ETHER_RATE_LOGIN``: failed sign-ins are counted per client
address and per username; past the limit the page answers 429 with ``Retry-After`` and
signs nobody in, not even with the right password; successful sign-ins are not counted.

The counters outlive a test (in Redis with ``REDIS_URL``, in memory otherwise) and
clearing them would flush a shared Redis, so each test uses addresses and usernames of
its own.
"""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import pytest
from django.contrib.sessions.models import Session
from django.test import Client

from tests import factories
from tests.helpers import World, room_in_rate_window

PASSWORD = "a long enough password"
WINDOW = 3600  # seconds; see login_limit
_addresses = itertools.count(1)


def fresh_address() -> str:
    """A client address no other test (or earlier run within the window) has used."""
    n = next(_addresses)
    return f"10.{uuid.uuid4().int % 250}.{n // 250 % 250}.{n % 250 + 1}"


# The sign-in pages, and what each says to a wrong password.
PAGES = {"/login/": b"did not match", "/admin/login/": b"Please enter the correct username"}


@pytest.fixture(params=list(PAGES), ids=["product", "admin"])
def page(request: Any) -> str:
    return request.param


def member(world: World) -> Any:
    # Staff, so that the admin's sign-in accepts the right password too.
    user = factories.make_user(world.org, f"u{uuid.uuid4().hex[:12]}")
    user.set_password(PASSWORD)
    user.is_staff = True
    user.save()
    return user


def sign_in(client: Client, page: str, username: str, password: str, address: str) -> Any:
    return client.post(page, {"username": username, "password": password}, REMOTE_ADDR=address)


def refused(response: Any) -> None:
    assert response.status_code == 200, response.status_code
    assert any(marker in response.content for marker in PAGES.values()), response.content[:300]


def throttled(response: Any) -> None:
    assert response.status_code == 429, response.status_code
    assert response["Content-Type"].startswith("text/html")
    assert 1 <= int(response["Retry-After"]) <= WINDOW
    assert b"Too many sign-in attempts" in response.content
    assert "Content-Security-Policy" in response


def sessions_of(user: Any) -> int:
    """Stored sessions signed in as ``user``. (Not ``Client.session``: reading it saves
    an empty session of its own.)"""
    rows = Session.objects.all()
    return sum(1 for row in rows if row.get_decoded().get("_auth_user_id") == str(user.pk))


def signed_in(client: Client, user: Any) -> bool:
    cookie = client.cookies.get("sessionid")
    if cookie is None or not cookie.value:
        return False
    row = Session.objects.filter(session_key=cookie.value).first()
    return row is not None and row.get_decoded().get("_auth_user_id") == str(user.pk)


@pytest.fixture
def login_limit(settings: Any) -> tuple[int, int]:
    """Three failures an hour. The windows are fixed, so a test that crossed into the next
    one would find its counts gone (each sign-in hashes a password: seconds in all); an
    hour's window, entered at least a minute before its end, holds the whole test."""
    room_in_rate_window(WINDOW, need=60)
    settings.ETHER_RATE_LIMITS = {**settings.ETHER_RATE_LIMITS, "login": (3, WINDOW)}
    return 3, WINDOW


def test_failures_past_the_limit_are_a_429_page_and_even_the_right_password_is_refused(
    page, world, login_limit
):
    user, address, client = member(world), fresh_address(), Client()
    for _ in range(3):
        refused(sign_in(client, page, user.username, "wrong", address))
    response = sign_in(client, page, user.username, PASSWORD, address)
    throttled(response)
    assert f'href="{page}"'.encode() in response.content  # back to the page it came from
    # Nothing stored: no session, no sign-in recorded on the user.
    assert "sessionid" not in response.cookies
    assert not signed_in(client, user) and sessions_of(user) == 0
    assert Session.objects.count() == 0
    user.refresh_from_db()
    assert user.last_login is None
    assert client.get("/tasks/").status_code == 302
    assert client.get("/admin/").status_code == 302


def test_successful_sign_ins_are_not_counted(page, world, login_limit):
    user, address = member(world), fresh_address()
    for _ in range(5):
        client = Client()
        response = sign_in(client, page, user.username, PASSWORD, address)
        assert response.status_code == 302 and signed_in(client, user)
        assert client.post("/logout/").status_code == 302
    # The five sign-ins left the whole allowance of failures.
    client = Client()
    for _ in range(3):
        refused(sign_in(client, page, user.username, "wrong", address))
    throttled(sign_in(client, page, user.username, PASSWORD, address))
    assert not signed_in(client, user) and sessions_of(user) == 0


def test_one_username_is_counted_across_addresses_and_case(page, world, login_limit):
    user = member(world)
    client = Client()
    for name in (user.username, user.username.upper(), user.username):
        refused(sign_in(client, page, name, "wrong", fresh_address()))
    throttled(sign_in(client, page, user.username, PASSWORD, fresh_address()))
    assert sessions_of(user) == 0
    # Another member is not locked out by it.
    other = member(world)
    assert sign_in(client, page, other.username, PASSWORD, fresh_address()).status_code == 302


def test_one_address_is_counted_across_usernames(page, world, login_limit):
    address, client = fresh_address(), Client()
    for _ in range(3):
        refused(sign_in(client, page, f"nobody{uuid.uuid4().hex[:8]}", "guess", address))
    user = member(world)
    throttled(sign_in(client, page, user.username, PASSWORD, address))
    assert sessions_of(user) == 0
    # The same member from another address signs in.
    assert sign_in(Client(), page, user.username, PASSWORD, fresh_address()).status_code == 302
    assert sessions_of(user) == 1


def test_the_sign_in_page_still_shows_while_throttled(page, world, login_limit):
    user, address, client = member(world), fresh_address(), Client()
    for _ in range(4):
        sign_in(client, page, user.username, "wrong", address)
    form = client.get(page, REMOTE_ADDR=address)
    assert form.status_code == 200 and b'name="password"' in form.content


def test_off_means_no_limit(page, world, settings):
    settings.ETHER_RATE_LIMITS = {**settings.ETHER_RATE_LIMITS, "login": None}
    user, address, client = member(world), fresh_address(), Client()
    for _ in range(15):
        refused(sign_in(client, page, user.username, "wrong", address))
    assert sign_in(client, page, user.username, PASSWORD, address).status_code == 302
    assert signed_in(client, user)


def test_the_two_pages_share_one_count(world, login_limit):
    """Failures on the product page lock the admin's too, and the other way round."""
    user, address, client = member(world), fresh_address(), Client()
    refused(sign_in(client, "/login/", user.username, "wrong", address))
    refused(sign_in(client, "/admin/login/", user.username, "wrong", address))
    refused(sign_in(client, "/login/", user.username, "wrong", address))
    throttled(sign_in(client, "/admin/login/", user.username, PASSWORD, address))
    throttled(sign_in(client, "/login/", user.username, PASSWORD, address))
    assert sessions_of(user) == 0


def test_the_default_is_ten_a_minute() -> None:
    from django.conf import settings

    assert settings.ETHER_RATE_LIMITS["login"] == (10, 60)
