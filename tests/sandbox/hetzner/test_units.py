"""Pure pieces of the Hetzner sandbox: selectors, labels, the rate limiter, pagination, errors."""

from __future__ import annotations

import pytest
from multidict import MultiDict

from keybuzz_tui.sandbox.hetzner import labels
from keybuzz_tui.sandbox.hetzner.errors import FieldErrors, HetznerError, invalid_input
from keybuzz_tui.sandbox.hetzner.pagination import paginate, sort_items
from keybuzz_tui.sandbox.hetzner.ratelimit import RateLimiter

LABELS = {"cluster": "keybuzz", "role": "k3s-worker", "example.com/zone": "a"}
CASES = [
    ("role=k3s-worker", True),
    ("role==k3s-worker", True),
    ("role!=k3s-worker", False),
    ("role", True),
    ("!role", False),
    ("!missing", True),
    ("role in (k3s-worker,k3s-server)", True),
    ("role notin (k3s-worker)", False),
    ("cluster=keybuzz,role=k3s-worker", True),
    ("cluster=keybuzz,!role", False),
    ("example.com/zone=a", True),
    ("missing!=x", True),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_selector_grammar_both_parsers(text: str, expected: bool) -> None:
    assert labels.parse_selector(text).matches(dict(LABELS)) is expected
    assert labels._FallbackSelector(text).matches(dict(LABELS)) is expected


@pytest.mark.parametrize("text", ["role in (a", "a b c", "=x", "role=(x)", ",x"])
def test_bad_selectors_are_invalid_input(text: str) -> None:
    with pytest.raises(HetznerError) as e:
        labels.parse_selector(text, field="label_selector")
    assert e.value.status == 422 and e.value.code == "invalid_input"
    assert e.value.details["fields"][0]["name"] == "label_selector"
    with pytest.raises(ValueError):
        labels._FallbackSelector(text)


def test_label_validation() -> None:
    errors = FieldErrors()
    assert labels.check_labels({"app": "keybuzz", "example.com/x": "", "k": "v.1_2-3"}, errors) is not None
    assert not errors
    for bad in ({"hetzner.cloud/x": "y"}, {"bad key": "v"}, {"k": "-v"}, {"k": 1}, {"k": "x" * 64}, ["a"]):
        errors = FieldErrors()
        labels.check_labels(bad, errors)
        assert errors, bad


def test_rate_limiter_bucket_and_headers() -> None:
    now = [1000.0]
    rl = RateLimiter(3, refill_per_second=1.0, monotonic=lambda: now[0], wall=lambda: 5000.0 + now[0])
    assert [rl.take() for _ in range(4)] == [True, True, True, False]
    h = rl.headers()
    assert h == {"RateLimit-Limit": "3", "RateLimit-Remaining": "0", "RateLimit-Reset": str(6000 + 3)}
    now[0] += 1.5
    assert rl.take() and not rl.take()
    now[0] += 3600
    assert rl.remaining == 3  # never above the limit
    assert RateLimiter(3600).refill == 1.0  # the spec's 1 per second at 3600/h


def test_paginate_meta_has_exactly_six_keys() -> None:
    items = list(range(7))
    out = paginate(items, MultiDict(page="2", per_page="3"), "things", lambda i: {"id": i})
    assert out["things"] == [{"id": 3}, {"id": 4}, {"id": 5}]
    assert out["meta"]["pagination"] == {
        "page": 2,
        "per_page": 3,
        "previous_page": 1,
        "next_page": 3,
        "last_page": 3,
        "total_entries": 7,
    }
    empty = paginate([], MultiDict(), "things", lambda i: {})
    assert empty["meta"]["pagination"]["last_page"] == 1 and empty["meta"]["pagination"]["next_page"] is None
    capped = paginate(items, MultiDict(per_page="500"), "things", lambda i: {"id": i})
    assert capped["meta"]["pagination"]["per_page"] == 50
    with pytest.raises(HetznerError):
        paginate(items, MultiDict(page="0"), "things", lambda i: {})


def test_sort_items() -> None:
    class Obj:
        def __init__(self, id: int, name: str) -> None:
            self.id, self.name = id, name

    objs = [Obj(1, "b"), Obj(2, "a"), Obj(3, "c")]
    fields = {"id": lambda o: o.id, "name": lambda o: o.name}
    assert [o.id for o in sort_items(objs, MultiDict([("sort", "name:desc")]), fields)] == [3, 1, 2]
    assert [o.id for o in sort_items(objs, MultiDict([("sort", "id:desc")]), fields)] == [3, 2, 1]
    with pytest.raises(HetznerError):
        sort_items(objs, MultiDict([("sort", "colour")]), fields)


def test_invalid_input_message_and_details() -> None:
    err = invalid_input({"a": ["is too long"]})
    assert err.body() == {
        "error": {
            "code": "invalid_input",
            "message": "invalid input in field 'a': is too long",
            "details": {"fields": [{"name": "a", "messages": ["is too long"]}]},
        }
    }
    err = invalid_input({"a": ["x"], "b": ["y"]})
    assert err.message == "invalid input in fields 'a', 'b'"
