"""Small formatting filters of the pages (``{% load pages %}``)."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def nbytes(value: int | str | None) -> str:
    """``6120`` → ``6,120 B``: exact, because the page compares sizes with a budget."""
    try:
        return f"{int(value):,} B"  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "—"


@register.filter
def percent(part: int | str | None, whole: int | str | None) -> str:
    """``part`` as a whole percentage of ``whole`` (``37%``); empty when there is no whole."""
    try:
        return f"{round(100 * int(part) / int(whole))}%"  # type: ignore[arg-type]
    except (TypeError, ValueError, ZeroDivisionError):
        return ""
