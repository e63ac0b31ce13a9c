"""Hetzner Cloud API errors: `{"error": {"code", "message", "details"}}` with the catalogue's status.

Handlers and the state raise HetznerError; the HTTP layer turns it into the JSON body. hcloud
compares `APIException.code` (the string), so the code is the contract; the message is for the
operator and follows the spec's wording (`invalid input in field 'x': ...`) where it has one.
"""

from __future__ import annotations

from typing import Any


class HetznerError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}

    def __repr__(self) -> str:
        return f"HetznerError({self.status}, {self.code!r}, {self.message!r})"


class FieldErrors:
    """Collects per-field messages so one reply lists every bad field, as the real API does."""

    def __init__(self) -> None:
        self._fields: dict[str, list[str]] = {}

    def add(self, name: str, message: str) -> None:
        self._fields.setdefault(name, []).append(message)

    def __bool__(self) -> bool:
        return bool(self._fields)

    def raise_if_any(self) -> None:
        if self._fields:
            raise invalid_input(self._fields)


def invalid_input(fields: dict[str, list[str]] | str, message: str | None = None) -> HetznerError:
    """422 invalid_input with details.fields; `fields` may be a single field name plus `message`."""
    if isinstance(fields, str):
        fields = {fields: [message or "is invalid"]}
    items = [{"name": name, "messages": list(msgs)} for name, msgs in fields.items()]
    if len(items) == 1:
        name, msgs = next(iter(fields.items()))
        text = f"invalid input in field '{name}'" + (f": {msgs[0]}" if msgs else "")
    else:
        text = "invalid input in fields " + ", ".join(f"'{i['name']}'" for i in items)
    return HetznerError(422, "invalid_input", text, {"fields": items})


def json_error(message: str = "invalid JSON input in your request") -> HetznerError:
    return HetznerError(400, "json_error", message)


def unauthorized() -> HetznerError:
    return HetznerError(401, "unauthorized", "unable to authenticate")


def token_readonly() -> HetznerError:
    # The spec's catalogue lists token_readonly under 401 (not 403).
    return HetznerError(401, "token_readonly", "the token is only allowed to perform GET requests")


def not_found(what: str = "resource", ident: object | None = None) -> HetznerError:
    msg = f"{what} with ID '{ident}' not found" if ident is not None else f"{what} not found"
    return HetznerError(404, "not_found", msg)


def route_not_found() -> HetznerError:
    return HetznerError(404, "not_found", "the requested resource was not found")


def method_not_allowed(method: str) -> HetznerError:
    return HetznerError(405, "method_not_allowed", f"the request method {method} is not allowed")


def uniqueness_error(field: str, message: str) -> HetznerError:
    return HetznerError(409, "uniqueness_error", message, {"fields": [{"name": field}]})


def locked(what: str, action_id: int, command: str) -> HetznerError:
    return HetznerError(423, "locked", f"{what} is locked: action {action_id} ({command}) is still running")


def protected(what: str) -> HetznerError:
    return HetznerError(423, "protected", f"{what} is protected against deletion")


def resource_limit_exceeded(limit: str, message: str) -> HetznerError:
    return HetznerError(403, "resource_limit_exceeded", message, {"limits": [{"name": limit}]})


def unprocessable(code: str, message: str) -> HetznerError:
    """Operation-specific 422 errors (target_already_defined, load_balancer_not_attached_to_network...)."""
    return HetznerError(422, code, message)


def rate_limit_exceeded() -> HetznerError:
    return HetznerError(429, "rate_limit_exceeded", "limit of requests per hour reached")
