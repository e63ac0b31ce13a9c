"""Per-kind validation (the apiserver's 422 texts) and defaulting (minimal first version)."""

from __future__ import annotations

import copy
from typing import Any

from . import errors
from .errors import FieldError
from .registry import ResourceType


def default(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    """Return a defaulted deep copy of `obj` (never mutates the input)."""
    return copy.deepcopy(obj)


def validate(rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None, *, namespace: str | None) -> None:
    """Raise the 422 Invalid the apiserver would answer for `obj`, or return None."""
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    name = meta.get("name") if isinstance(meta, dict) else None
    if not isinstance(name, str) or not name:
        raise errors.invalid(
            rt.kind, rt.group, "", [FieldError("Required", "metadata.name", "name or generateName is required")]
        )
