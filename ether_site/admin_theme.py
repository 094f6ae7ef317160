"""The admin's theme: django-unfold's settings (``UNFOLD``), imported by the settings.

Every admin page is unfold's. Two things keep the Content-Security-Policy strict
(``script-src 'self'``): unfold's standard Alpine.js, which evaluates its expressions with
``new Function`` (needing ``'unsafe-eval'``), is replaced by Alpine's CSP build served at
the same static path (``static/unfold/js/alpine/alpine.js``, from ``frontend/build.mjs``;
our ``static/`` directory is found before the apps'), and nothing here adds an inline
script. The browser tests load admin pages and fail on any CSP violation or console error.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.templatetags.static import static


def _favicon(request: HttpRequest) -> str:
    return static("favicon.svg")


def _styles(request: HttpRequest) -> str:
    return static("ether/admin.css")


UNFOLD: dict[str, Any] = {
    "SITE_TITLE": "Ether admin",
    "SITE_HEADER": "Ether",
    "SITE_SUBHEADER": "Administration",
    # "View site" leads to the people's pages, not the API docs.
    "SITE_URL": "/tasks/",
    "SITE_FAVICONS": [{"rel": "icon", "type": "image/svg+xml", "href": _favicon}],
    "STYLES": [_styles],
    "SIDEBAR": {"show_search": True, "show_all_applications": True},
}
