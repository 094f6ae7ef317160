"""The admin's writes go through services, like the API's: ``ServiceAdmin`` routes a
model admin's save and delete (one object or a selection) to the functions it names,
and ``service_errors`` shows a service's refusal on the form instead of a 500."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django import forms
from django.db.models import QuerySet
from django.http import HttpRequest
from unfold.admin import ModelAdmin

from api.errors import DomainError, ValidationFailed


class ServiceAdmin(ModelAdmin):
    """Subclasses write ``save_with(obj, cleaned)`` and ``delete_with(obj)``: each calls
    one service, which keeps the rules and opens the transaction."""

    def save_with(self, obj: Any, cleaned: dict[str, Any]) -> Any:
        raise NotImplementedError

    def delete_with(self, obj: Any) -> None:
        raise NotImplementedError

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        self.save_with(obj, form.cleaned_data)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        self.delete_with(obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for obj in queryset:
            self.delete_with(obj)


@contextmanager
def service_errors(form: forms.BaseForm) -> Iterator[None]:
    """Runs a service's check in a form's ``clean``: its refusal becomes the form's
    errors, on the fields it names when the form has them."""
    try:
        yield
    except ValidationFailed as exc:
        for name, messages in exc.errors.items():
            form.add_error(name if name in form.fields else None, messages)
    except DomainError as exc:
        form.add_error(None, exc.detail)
