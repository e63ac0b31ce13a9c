"""Typed readers for JSON request bodies that record `invalid_input` field errors instead of raising.

Every body value may be anything a fuzzer sends (null, a list, a float, a huge int, a bool where an
int belongs); readers check type and range and return a fallback, so handlers can finish reading
the whole body, report every bad field at once, and never reach a 500. JSON booleans are not
accepted as integers (Python's bool is an int subclass; Go's decoder, which the real API uses,
rejects them).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from .errors import FieldErrors

MISSING: Any = object()
INT64_MAX = 9007199254740991  # the spec's maximum for ids


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def read_obj(body: Any, key: str, errors: FieldErrors, field: str, *, required: bool = False) -> dict | None:
    value = body.get(key, MISSING) if isinstance(body, dict) else MISSING
    if value is MISSING or value is None:
        if required:
            errors.add(field, "is required")
        return None
    if not isinstance(value, dict):
        errors.add(field, "must be an object")
        return None
    return value


def read_int(
    body: Any,
    key: str,
    errors: FieldErrors,
    field: str,
    *,
    required: bool = False,
    lo: int | None = None,
    hi: int | None = None,
    default: Any = None,
) -> Any:
    value = body.get(key, MISSING) if isinstance(body, dict) else MISSING
    if value is MISSING or value is None:
        if required:
            errors.add(field, "is required")
        return default
    if not is_int(value):
        errors.add(field, "must be an integer")
        return default
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        if lo is not None and hi is not None:
            errors.add(field, f"must be between {lo} and {hi}")
        elif lo is not None:
            errors.add(field, f"must be at least {lo}")
        else:
            errors.add(field, f"must be at most {hi}")
        return default
    return value


def read_bool(
    body: Any, key: str, errors: FieldErrors, field: str, *, required: bool = False, default: Any = None
) -> Any:
    value = body.get(key, MISSING) if isinstance(body, dict) else MISSING
    if value is MISSING or value is None:
        if required:
            errors.add(field, "is required")
        return default
    if not isinstance(value, bool):
        errors.add(field, "must be a boolean")
        return default
    return value


def read_str(
    body: Any,
    key: str,
    errors: FieldErrors,
    field: str,
    *,
    required: bool = False,
    min_len: int = 0,
    max_len: int | None = None,
    pattern: re.Pattern[str] | None = None,
    choices: tuple[str, ...] | None = None,
    default: Any = None,
) -> Any:
    value = body.get(key, MISSING) if isinstance(body, dict) else MISSING
    if value is MISSING or value is None:
        if required:
            errors.add(field, "is required")
        return default
    if not isinstance(value, str):
        errors.add(field, "must be a string")
        return default
    if choices is not None and value not in choices:
        errors.add(field, f"must be one of {', '.join(choices)}")
        return default
    if len(value) < min_len:
        errors.add(field, "is too short" if min_len > 1 else "must not be empty")
        return default
    if max_len is not None and len(value) > max_len:
        errors.add(field, "is too long")
        return default
    if pattern is not None and not pattern.match(value):
        errors.add(field, "is invalid")
        return default
    return value


def read_list(
    body: Any,
    key: str,
    errors: FieldErrors,
    field: str,
    *,
    required: bool = False,
    max_items: int | None = None,
) -> list | None:
    value = body.get(key, MISSING) if isinstance(body, dict) else MISSING
    if value is MISSING or value is None:
        if required:
            errors.add(field, "is required")
        return None
    if not isinstance(value, list):
        errors.add(field, "must be an array")
        return None
    if max_items is not None and len(value) > max_items:
        errors.add(field, f"must not have more than {max_items} items")
        return None
    return value


def read_id_list(body: Any, key: str, errors: FieldErrors, field: str) -> list[int] | None:
    items = read_list(body, key, errors, field)
    if items is None:
        return None
    if not all(is_int(i) and 1 <= i <= INT64_MAX for i in items):
        errors.add(field, "must be an array of IDs")
        return None
    return list(items)


def read_str_list(
    body: Any,
    key: str,
    errors: FieldErrors,
    field: str,
    *,
    required: bool = False,
    max_items: int | None = None,
) -> list[str] | None:
    items = read_list(body, key, errors, field, required=required, max_items=max_items)
    if items is None:
        return None
    if not all(isinstance(i, str) for i in items):
        errors.add(field, "must be an array of strings")
        return None
    return list(items)


def valid_ip(text: str, version: int | None = None) -> bool:
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return False
    return version is None or addr.version == version


def valid_cidr(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


NAME_RE = re.compile(r"^\S(.*\S)?$", re.DOTALL)
_HOST_LABEL = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
DOMAIN_RE = re.compile(rf"^(\*\.)?({_HOST_LABEL}\.)+{_HOST_LABEL}$")
