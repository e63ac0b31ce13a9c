"""Kubernetes Status errors with the apiserver's own wording (apimachinery pkg/api/errors).

Handlers raise ApiError; the HTTP layer turns it into the Status body and code. The message
formats are the ones clients and operators grep for, so they are copied exactly.
"""

from __future__ import annotations

from typing import Any

from .registry import ResourceType


class ApiError(Exception):
    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
        }
        if self.reason:  # internal errors from raw Go errors carry no reason
            body["reason"] = self.reason
        body["code"] = self.code
        if self.details is not None:
            body["details"] = self.details
        return body


def _details(rt: ResourceType, name: str | None, **extra: Any) -> dict[str, Any]:
    d: dict[str, Any] = {}
    if name:
        d["name"] = name
    if rt.group:
        d["group"] = rt.group
    d["kind"] = rt.plural
    d.update(extra)
    return d


def not_found(rt: ResourceType, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{rt.group_resource} "{name}" not found', _details(rt, name))


def already_exists(rt: ResourceType, name: str) -> ApiError:
    return ApiError(409, "AlreadyExists", f'{rt.group_resource} "{name}" already exists', _details(rt, name))


def conflict(rt: ResourceType, name: str, why: str) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {rt.group_resource} "{name}": {why}',
        _details(rt, name),
    )


def stale_update(rt: ResourceType, name: str) -> ApiError:
    return conflict(
        rt, name, "the object has been modified; please apply your changes to the latest version and try again"
    )


def fmt_value(value: Any) -> str:
    """field.Invalid prints ints with %v and strings with %q."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if value is None:
        return "null"
    if isinstance(value, str):
        import json

        return json.dumps(value)
    return str(value)


class FieldError:
    """One entry of a field.ErrorList."""

    def __init__(self, kind: str, field: str, detail: str = "", value: Any = None) -> None:
        self.kind = kind  # Invalid, Required, NotSupported, Duplicate, Forbidden, TooLong
        self.field = field
        self.detail = detail
        self.value = value

    @property
    def reason(self) -> str:
        return {
            "Invalid": "FieldValueInvalid",
            "Required": "FieldValueRequired",
            "NotSupported": "FieldValueNotSupported",
            "Duplicate": "FieldValueDuplicate",
            "Forbidden": "FieldValueForbidden",
            "TooLong": "FieldValueTooLong",
            "TypeInvalid": "FieldValueTypeInvalid",
        }[self.kind]

    def body(self) -> str:
        if self.kind == "Invalid":
            s = f"Invalid value: {fmt_value(self.value)}"
        elif self.kind == "Required":
            s = "Required value"
        elif self.kind == "NotSupported":
            s = f"Unsupported value: {fmt_value(self.value)}"
        elif self.kind == "Duplicate":
            s = f"Duplicate value: {fmt_value(self.value)}"
        elif self.kind == "Forbidden":
            s = "Forbidden"
        elif self.kind == "TooLong":
            s = "Too long"
        else:
            s = f"Invalid value: {fmt_value(self.value)}"
        if self.detail:
            s += f": {self.detail}"
        return s

    def __str__(self) -> str:
        return f"{self.field}: {self.body()}"


def invalid(kind: str, group: str, name: str, errors: list[FieldError]) -> ApiError:
    """422 Invalid: `DaemonSet.apps "api" is invalid: <e>` or `... is invalid: [e1, e2]`."""
    qualified = f"{kind}.{group}" if group else kind
    joined = str(errors[0]) if len(errors) == 1 else "[" + ", ".join(str(e) for e in errors) + "]"
    details: dict[str, Any] = {"name": name, "kind": kind}
    if group:
        details = {"name": name, "group": group, "kind": kind}
    details["causes"] = [{"reason": e.reason, "message": e.body(), "field": e.field} for e in errors]
    return ApiError(422, "Invalid", f'{qualified} "{name}" is invalid: {joined}', details)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def forbidden(rt: ResourceType, name: str | None, user: str, verb: str, namespace: str | None) -> ApiError:
    what = f'{rt.group_resource} "{name}"' if name else rt.group_resource
    scope = f' in the namespace "{namespace}"' if namespace and rt.namespaced else " at the cluster scope"
    grp = f'"{rt.group}"' if rt.group else '""'
    msg = f'{what} is forbidden: User "{user}" cannot {verb} resource "{rt.plural}" in API group {grp}{scope}'
    return ApiError(403, "Forbidden", msg, _details(rt, name))


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


def method_not_allowed(method: str) -> ApiError:
    return ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")


def not_acceptable(accept: str) -> ApiError:
    return ApiError(406, "NotAcceptable", "only the following media types are accepted: application/json, application/yaml")


def unsupported_media(ctype: str, allowed: list[str]) -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        f'the body of the request was in an unknown format - accepted media types include: {", ".join(allowed)}',
    )


def too_large(limit: int) -> ApiError:
    return ApiError(413, "RequestEntityTooLarge", f"Request entity too large: limit is {limit}")


def expired(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


def internal(message: str) -> ApiError:
    return ApiError(500, "InternalError", f"Internal error occurred: {message}")


def timeout(message: str = "the server was unable to return a response in the time allotted, but may still be processing the request") -> ApiError:
    return ApiError(504, "Timeout", message)


def unavailable(message: str = "the server is currently unable to handle the request") -> ApiError:
    return ApiError(503, "ServiceUnavailable", message)
