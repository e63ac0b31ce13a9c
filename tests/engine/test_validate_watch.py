"""Continuous validation's concurrency (engine/checks_watch.py): a timed (network) refresh runs in
its own thread, so a Kubernetes-side change reaches the report stream while a network refresh
hangs, and nothing older is ever published over something newer (events and reports alike).

The slow network refresh is made deterministic with one extra network-source check that blocks
until the test releases it: the test knows exactly when a timed refresh is in flight and that
its Kubernetes snapshot was taken before the change.
"""

from __future__ import annotations

import queue
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from support import engine_fixtures as ef
from support import sandboxes

from keybuzz_tui.config import Config
from keybuzz_tui.engine import checks_watch
from keybuzz_tui.engine import validate as V
from keybuzz_tui.engine.checks_base import Check, ok
from keybuzz_tui.engine.checks_watch import Stamp
from keybuzz_tui.engine.context import Context, Endpoints
from keybuzz_tui.events import CheckResult, Recorder
from keybuzz_tui.sandbox.runtime import Sandbox, free_net

SLOW = "test.slow-network"
NODE = "k3s-worker-04"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    net = free_net(random.SystemRandom().randint(2, 250))
    sb = Sandbox(tmp_path_factory.mktemp("watch"), "healthy", net=net, speed=sandboxes.TEST_SPEED).start()
    try:
        ef.install_keybuzz_directly(sb)
        yield sb
    finally:
        sb.stop()


@pytest.fixture
def slow_net(monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, threading.Event]:
    """(started, release): from the second refresh on, the extra network check blocks until
    `release` is set; `started` says a timed refresh is in flight, held by it."""
    started, release = threading.Event(), threading.Event()
    calls: list[float] = []

    def run(ctx: Any, state: Any) -> Any:
        calls.append(time.monotonic())
        if len(calls) > 1:
            started.set()
            while not release.wait(0.05):
                ctx.cancel.check()
        return ok("the slow network check answered")

    original = checks_watch.build_checks
    monkeypatch.setattr(
        checks_watch, "build_checks",
        lambda cfg: [*original(cfg), Check(SLOW, "dns", "A slow network check", run, source="net", timeout=120)],
    )
    return started, release


class Stream:
    """The reports of one watch(), read with deadlines."""

    def __init__(self) -> None:
        self.q: queue.Queue[V.ValidationReport] = queue.Queue()
        self.seen: list[V.ValidationReport] = []

    def next(self, pred: Callable[[V.ValidationReport], bool], timeout: float, what: str) -> V.ValidationReport:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                r = self.q.get(timeout=0.05)
            except queue.Empty:
                continue
            self.seen.append(r)
            if pred(r):
                return r
        raise AssertionError(f"no {what} within {timeout}s; got {[(r.trigger, r.refresh) for r in self.seen]}")


def status(r: V.ValidationReport, check: str) -> str | None:
    rec = r.result(check)
    return rec.status if rec is not None else None


def test_stamps_compare_each_side():
    a, b = Stamp(3, 1, 1), Stamp(2, 2, 2)
    assert a.kube_covers(b) and not b.kube_covers(a)  # the newer watch snapshot wins over the newer LIST
    assert not a.covers(b) and not b.covers(a)  # the trace needs both sides at least as recent
    assert Stamp(3, 2, 1).kube_covers(b) and not Stamp(3, 2, 1).covers(b)  # older network side
    assert Stamp(3, 2, 2).covers(b) and b.covers(None)


def test_kube_change_is_published_while_a_network_refresh_hangs_and_never_overwritten(world, slow_net):
    sb = world
    started, release = slow_net
    rec = Recorder()
    ctx = Context(Config(), Endpoints.from_sandbox(sb.state_dir), sink=rec)
    stream = Stream()
    lifecycle = sb.cluster.manager.controllers["node-lifecycle"]
    t = threading.Thread(target=V.watch, args=(ctx, 1.0, stream.q.put), kwargs={"http_timeout": 3.0}, daemon=True)
    t.start()
    try:
        first = stream.next(lambda r: True, 30, "the first report")
        assert first.trigger == "full" and status(first, "k8s.nodes") == "ok" and status(first, SLOW) == "ok"
        assert started.wait(20), "the timed refresh never started"
        # a timed refresh is in flight (its snapshot predates what follows) and will not end before `release`
        t0 = time.monotonic()
        sb.call(lifecycle.set_ready, NODE, False)
        shown = stream.next(lambda r: status(r, "k8s.nodes") == "fail", 15, "the NotReady worker in a report")
        took = time.monotonic() - t0
        assert shown.trigger == "kube" and not release.is_set()
        assert NODE in shown.result("k8s.nodes").detail
        # the sandbox's node-lifecycle grace period is part of `took`; the refresh itself did not
        # wait for the hung network refresh (that one is still held)
        assert took < 10, took

        # the timed refresh ends now: it computed k8s.nodes from a snapshot taken before the change
        release.set()
        net = stream.next(lambda r: r.trigger == "net" and status(r, SLOW) == "ok", 30, "the held timed refresh")
        assert status(net, "k8s.nodes") == "fail", "a stale result was published over a newer one"
        # and it is followed at once by a Kubernetes refresh that joins its network observations
        # with the newest watch-fed objects
        stream.next(lambda r: r.trigger == "kube", 5, "the follow-up Kubernetes refresh")

        # nothing said "ok" for k8s.nodes after the first "fail": neither a report nor an event
        after = stream.seen[stream.seen.index(shown):]
        assert all(status(r, "k8s.nodes") == "fail" for r in after), [(r.trigger, status(r, "k8s.nodes")) for r in after]
        verdicts = [e.status for e in rec.of(CheckResult) if e.check == "k8s.nodes" and e.status not in ("running", "pending")]
        assert "fail" in verdicts and "ok" not in verdicts[verdicts.index("fail"):], verdicts
        assert [r.refresh for r in stream.seen] == list(range(len(stream.seen)))

        # repaired: the next watch event turns it green again
        sb.call(lifecycle.set_ready, NODE, True)
        stream.next(lambda r: status(r, "k8s.nodes") == "ok", 20, "the Ready worker again")
    finally:
        release.set()
        sb.call(lifecycle.set_ready, NODE, True)
        t1 = time.monotonic()
        ctx.cancel.cancel()
        t.join(5)
        ctx.close()
    assert not t.is_alive() and time.monotonic() - t1 < 3.5


def test_kube_refreshes_keep_coming_while_network_refreshes_are_slow(world, slow_net):
    """Several watch events while one timed refresh is held: each is published on its own, in
    order, without waiting for the network side."""
    sb = world
    started, release = slow_net
    ctx = Context(Config(), Endpoints.from_sandbox(sb.state_dir))
    stream = Stream()
    lifecycle = sb.cluster.manager.controllers["node-lifecycle"]
    t = threading.Thread(target=V.watch, args=(ctx, 1.0, stream.q.put), kwargs={"http_timeout": 3.0}, daemon=True)
    t.start()
    try:
        stream.next(lambda r: True, 30, "the first report")
        assert started.wait(20)
        for ready, want in ((False, "fail"), (True, "ok"), (False, "fail")):
            sb.call(lifecycle.set_ready, NODE, ready)
            r = stream.next(lambda r, w=want: status(r, "k8s.nodes") == w, 15, f"k8s.nodes {want}")
            assert r.trigger == "kube" and not release.is_set()
        assert not any(r.trigger == "net" for r in stream.seen[1:])  # the held refresh never published
    finally:
        release.set()
        sb.call(lifecycle.set_ready, NODE, True)
        ctx.cancel.cancel()
        t.join(5)
        ctx.close()
    assert not t.is_alive()
