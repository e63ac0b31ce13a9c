"""List endpoints: filters, `sort`, and pagination exactly as hcloud reads it.

hcloud builds `Pagination(**meta["pagination"])`, so the object carries exactly the six keys
page, per_page, previous_page, next_page, last_page, total_entries (reference 2.3; one extra key
raises TypeError in the client). `per_page` defaults to 25 and is capped at the endpoint's maximum
(50, or 100 for rrsets) rather than rejected: clients asking for more just get fewer per page.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from multidict import MultiMapping

from .errors import FieldErrors, invalid_input
from .labels import parse_selector

T = TypeVar("T")


def _int_param(query: MultiMapping[str], name: str, default: int, errors: FieldErrors) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        errors.add(name, "must be an integer")
        return default
    if value < 1:
        errors.add(name, "must be at least 1")
        return default
    return value


def page_params(query: MultiMapping[str], max_per_page: int = 50) -> tuple[int, int]:
    errors = FieldErrors()
    page = _int_param(query, "page", 1, errors)
    per_page = _int_param(query, "per_page", 25, errors)
    errors.raise_if_any()
    return page, min(per_page, max_per_page)


def paginate(
    items: list[T],
    query: MultiMapping[str],
    key: str,
    render: Callable[[T], dict[str, Any]],
    max_per_page: int = 50,
) -> dict[str, Any]:
    page, per_page = page_params(query, max_per_page)
    total = len(items)
    last_page = max(1, (total + per_page - 1) // per_page)
    start = (page - 1) * per_page
    chunk = items[start : start + per_page]
    return {
        key: [render(i) for i in chunk],
        "meta": {
            "pagination": {
                "page": page,
                "per_page": per_page,
                "previous_page": page - 1 if page > 1 else None,
                "next_page": page + 1 if page < last_page else None,
                "last_page": last_page,
                "total_entries": total,
            }
        },
    }


def link_header(base_url: str, meta: Mapping[str, Any]) -> str | None:
    """The `Link` header the spec describes (hcloud ignores it; curl users read it)."""
    p = meta.get("pagination") if isinstance(meta, Mapping) else None
    if not p:
        return None
    parts = []
    sep = "&" if "?" in base_url else "?"
    for rel, page in (("prev", p["previous_page"]), ("next", p["next_page"]), ("last", p["last_page"])):
        if page:
            parts.append(f'<{base_url}{sep}page={page}&per_page={p["per_page"]}>; rel="{rel}"')
    return ", ".join(parts) or None


def sort_items(
    items: Iterable[T],
    query: MultiMapping[str],
    fields: Mapping[str, Callable[[T], Any]],
) -> list[T]:
    """Apply `sort=field[:asc|:desc]` (repeatable, first is primary); default: by id ascending."""
    out = list(items)
    specs = query.getall("sort", [])
    bad = [
        s
        for s in specs
        if s.partition(":")[0] not in fields or s.partition(":")[2] not in ("", "asc", "desc")
    ]
    if bad:
        raise invalid_input("sort", f"invalid sort value {bad[0]!r}")
    for spec in reversed(specs):
        name, _, direction = spec.partition(":")
        out.sort(key=fields[name], reverse=direction == "desc")
    return out


def filter_common(
    items: Iterable[T],
    query: MultiMapping[str],
    name_of: Callable[[T], str] | None,
    labels_of: Callable[[T], Mapping[str, str]] | None,
) -> list[T]:
    """`name` (exact match) and `label_selector` filters, shared by every labelled resource."""
    out = list(items)
    name = query.get("name")
    if name is not None and name_of is not None:
        out = [i for i in out if name_of(i) == name]
    selector_text = query.get("label_selector")
    if selector_text is not None and selector_text.strip() and labels_of is not None:
        selector = parse_selector(selector_text)
        out = [i for i in out if selector.matches(dict(labels_of(i)))]
    return out
