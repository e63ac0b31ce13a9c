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
from keybuzz_tui.engine.checks_fix import fix_for
from keybuzz_tui.engine.checks_watch import Stamp
from keybuzz_tui.engine.context import Context, Endpoints
from keybuzz_tui.events import CheckResult, HopResult, Recorder
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


# --- the matrix agrees with the checks; the fast lane ----------------------------------------------

UFW_NODE = "k3s-worker-02"
NODEPORT = 31695


def agreement_problems(r: V.ValidationReport) -> list[str]:
    """What a report's worker x hop matrix says that its checks do not (or the reverse), for the
    two hops the checks observe per worker: the NodePort (node.nodeport) and the LB
    (lb.services + lb.targets-healthy). Empty when they agree."""
    out: list[str] = []
    nodeport, targets, services = r.result("node.nodeport"), r.result("lb.targets-healthy"), r.result("lb.services")
    for host, rows in r.traces.items():
        for node, hops in rows.items():
            cells = {h.hop: h for h in hops}
            seen = (nodeport.evidence.get(node) or {}).get(f"ingress {NODEPORT}") or {}
            if (cells["nodeport"].status == "fail") != (seen.get("status") == "fail"):
                out.append(f"{host} {node}: NodePort cell {cells['nodeport'].status} but node.nodeport says {seen.get('status')}: "
                           f"{cells['nodeport'].detail!r} vs {seen.get('detail')!r}")
            health = ((targets.evidence.get(node) or {}).get("health") or {}).values()
            target_ok = services.status != "fail" and bool(health) and all(h.get("status") == "healthy" for h in health)
            if (cells["lb"].status == "ok") != target_ok:
                out.append(f"{host} {node}: LB cell {cells['lb'].status} ({cells['lb'].detail!r}) but lb.targets-healthy says "
                           f"{[h.get('status') for h in health]} and lb.services {services.status}")
    return out


def test_matrix_and_checks_agree_in_every_report_through_a_ufw_drop_and_back(world):
    """The board shows a report's checks and matrix together: they must never disagree. Through a
    UFW drop of 31695 on one worker (the fast lane's provisional verdict, the full check, the LB's
    health check taking the worker out of rotation) and its repair, every report agrees; the LB
    hop of a worker never turns because another worker's NodePort is dropped (no request through
    the round-robin LB), and once the LB has taken the worker out of rotation its LB hop says so
    (`warn`: a consequence) with the NodePort hop as the first broken one."""
    sb = world
    sequence: list[tuple[str, Any]] = []  # the events and the reports, in the order a consumer gets them
    lock = threading.Lock()

    def sink(e: Any) -> None:
        with lock:
            sequence.append(("event", e))

    def on_report(r: V.ValidationReport) -> None:
        with lock:
            sequence.append(("report", r))
        stream.q.put(r)

    ctx = Context(Config(), Endpoints.from_sandbox(sb.state_dir), sink=sink)
    stream = Stream()
    t = threading.Thread(target=V.watch, args=(ctx, 1.0, on_report), kwargs={"http_timeout": 3.0, "fast_interval": 0.3}, daemon=True)
    t.start()
    try:
        stream.next(lambda r: r.status == "ok" and bool(r.traces), 40, "an all-green report")
        sb.call(sb.dataplane.set_firewall, UFW_NODE, NODEPORT, True)
        first = stream.next(lambda r: status(r, "node.nodeport") == "fail", 20, "the dropped NodePort in a report")
        assert first.traces, "the NodePort check failed in a report without its matrix"
        # the matrix of the same report already names the NodePort as the first broken hop there
        for host, rows in first.traces.items():
            assert V.first_broken(rows[UFW_NODE]).hop == "nodeport", (host, [(h.hop, h.status) for h in rows[UFW_NODE]])
            assert all(V.first_broken(hops) is None for n, hops in rows.items() if n != UFW_NODE)
        settled = stream.next(lambda r: status(r, "lb.targets-healthy") == "fail" and status(r, "node.nodeport") == "fail", 40,
                              "the LB taking the worker out of rotation")
        for rows in settled.traces.values():
            lb, np_ = rows[UFW_NODE][1], rows[UFW_NODE][2]
            assert lb.status == "warn" and "out of rotation" in lb.detail and f"NodePort {NODEPORT} does not answer" in lb.detail, lb
            assert np_.status == "fail" and V.first_broken(rows[UFW_NODE]).hop == "nodeport"
            assert all(hops[1].status == "ok" for n, hops in rows.items() if n != UFW_NODE)
        assert UFW_NODE in settled.result("lb.targets-healthy").detail
        fix = fix_for(settled.result("lb.targets-healthy"))  # the LB is right: the fix is on the node
        assert fix is not None and fix.place == "commands" and fix.nodes == (UFW_NODE,)
        sb.call(sb.dataplane.set_firewall, UFW_NODE, NODEPORT, False)
        stream.next(lambda r: r.status == "ok" and all(V.first_broken(h) is None for rows in r.traces.values() for h in rows.values()),
                    60, "the world green again")
    finally:
        sb.call(sb.dataplane.set_firewall, UFW_NODE, NODEPORT, False)
        ctx.cancel.cancel()
        t.join(5)
        ctx.close()
    assert not t.is_alive()
    bad = {(r.refresh, r.trigger): p for r in stream.seen if r.traces and (p := agreement_problems(r))}
    assert not bad, bad
    # a consumer applying the events as they come (as the board did) never shows the NodePort
    # check failing over a green matrix: the verdicts of a refresh come together, after its trace
    with lock:
        seq = list(sequence)
    first = next(i for i, (k, e) in enumerate(seq) if k == "event" and isinstance(e, CheckResult) and e.check == "node.nodeport" and e.status == "fail")
    cell = next(i for i, (k, e) in enumerate(seq) if k == "event" and isinstance(e, HopResult) and e.node == UFW_NODE and e.hop == "nodeport"
                and e.status == "fail")
    between = seq[first:cell]
    assert cell > first and all(k == "event" and isinstance(e, (CheckResult, HopResult)) and e.status not in ("running", "pending")
                                for k, e in between), [(k, type(e).__name__, getattr(e, "check", ""), getattr(e, "status", "")) for k, e in between]
    # after the first report, refreshes publish verdicts, never progress
    start = next(i for i, (k, _) in enumerate(seq) if k == "report")
    assert not [e for k, e in seq[start:] if k == "event" and isinstance(e, CheckResult) and e.status in ("running", "pending")]


def test_a_refresh_whose_matrix_is_older_than_the_one_shown_holds_its_verdicts_until_the_kube_refresh(world, slow_net, monkeypatch):
    """A timed refresh whose watch snapshot predates the matrix on screen cannot publish its own
    matrix; publishing its NodePort verdict alone would put a failing node.nodeport next to a green
    matrix. It publishes no verdict; the Kubernetes refresh that follows judges the network checks
    again on its observations (no new probe) and publishes them with their matrix."""
    from keybuzz_tui.engine import checks_state

    sb = world
    started, release = slow_net
    reports: list[V.ValidationReport] = []
    ctx = Context(Config(), Endpoints.from_sandbox(sb.state_dir))
    w = checks_watch.Watcher(ctx, 1.0, reports.append, only=None, skip=(), http_timeout=3.0, debounce=0.05, watch_timeout=5,
                             fast_interval=None)
    net: threading.Thread | None = None
    try:
        w._run("full")
        assert reports[-1].status == "ok" and reports[-1].traces
        sb.call(sb.dataplane.set_firewall, UFW_NODE, NODEPORT, True)
        net = threading.Thread(target=w._run, args=("net",), daemon=True)
        net.start()  # its watch snapshot is taken now; the slow check holds it before it publishes
        assert started.wait(20), "the timed refresh never started"
        w.informer._mark()  # a watch event: the Kubernetes refresh's matrix is newer on the watch side
        w._run("kube")
        shown = reports[-1]
        assert shown.trigger == "kube" and status(shown, "node.nodeport") == "ok" and shown.traces
        release.set()
        net.join(30)
        held = reports[-1]
        assert held.trigger == "net" and held.traces == shown.traces  # its own matrix is behind the one shown
        assert not agreement_problems(held), agreement_problems(held)
        assert status(held, "node.nodeport") == "ok", "the held refresh published its NodePort verdict without its matrix"
        assert w._force_kube and w._rejudge_net
        dials: list[tuple[str, int]] = []
        real = checks_state.http_get
        monkeypatch.setattr(checks_state, "http_get", lambda ip, port, *a, **kw: dials.append((ip, port)) or real(ip, port, *a, **kw))
        w._take_force()
        w._run("kube")
        joined = reports[-1]
        assert joined.trigger == "kube" and "node.nodeport" in joined.rerun and SLOW in joined.rerun
        assert status(joined, "node.nodeport") == "fail" and UFW_NODE in joined.result("node.nodeport").detail
        assert not agreement_problems(joined), agreement_problems(joined)
        assert all(V.first_broken(rows[UFW_NODE]).hop == "nodeport" for rows in joined.traces.values())
        assert dials == [] and joined.api_requests == 0  # the held observations, judged again: nothing new asked
        assert not w._rejudge_net
    finally:
        release.set()
        sb.call(sb.dataplane.set_firewall, UFW_NODE, NODEPORT, False)
        ctx.cancel.cancel()
        if net is not None:
            net.join(5)
        w.informer.stop()
        with w._lock:
            w._stopped = True
            if w.net_state is not None:
                w.net_state.close()
        ctx.close()


def test_the_trace_after_the_checks_dials_nothing(world):
    """The matrix is the checks' own observations judged per worker: tracing after the checks
    makes no new probe (in particular no request through the LB, which would reach whichever
    target the round robin picks and mark every worker for one broken target)."""
    from keybuzz_tui.engine.checks_run import run_checks, traces_for
    from keybuzz_tui.engine.checks_state import ValidationState

    sb = world
    ctx = Context(Config(), Endpoints.from_sandbox(sb.state_dir))
    state = ValidationState(ctx, http_timeout=3.0)
    try:
        records, cancelled = run_checks(ctx, V.build_checks(ctx.config), state)
        assert not cancelled and {r.status for r in records.values()} == {"ok"}, {c: r.detail for c, r in records.items() if r.status != "ok"}
        probes = {k for k in state._flights if k[0] in ("http", "https", "dns")}
        rows = traces_for(ctx, state)
        assert set(rows) == {"platform-api.keybuzz.io", "platform.keybuzz.io"}
        assert {k for k in state._flights if k[0] in ("http", "https", "dns")} == probes
    finally:
        state.close()
        ctx.close()


def test_fast_lane_turns_a_dropped_port_provisionally_then_the_full_check_confirms(world):
    """With a timed refresh only every 30 s, only the fast lane can see the change in time: it
    publishes a provisional refresh (no API request; checks and matrix alike say "confirming")
    and starts the full network refresh at once, which confirms it; the repair is seen the same
    way (re-probed for real: the port answers)."""
    sb = world
    ctx = Context(Config(), Endpoints.from_sandbox(sb.state_dir))
    stream = Stream()
    t = threading.Thread(target=V.watch, args=(ctx, 30.0, stream.q.put), kwargs={"http_timeout": 3.0, "fast_interval": 0.3}, daemon=True)
    t.start()
    try:
        first = stream.next(lambda r: True, 40, "the first report")
        assert first.status == "ok", [(c.check, c.detail) for c in first.results if c.status != "ok"]
        time.sleep(1.0)  # a few fast rounds: the baseline
        sb.call(sb.dataplane.set_firewall, UFW_NODE, NODEPORT, True)
        fast = stream.next(lambda r: status(r, "node.nodeport") == "fail", 15, "the provisional verdict")
        assert fast.trigger == "fast" and fast.api_requests == 0
        assert set(fast.rerun) == {c.id for c in V.build_checks(ctx.config) if c.source == "net"}
        np_ = fast.result("node.nodeport")
        assert f"{NODEPORT} does not answer on {UFW_NODE}" in np_.detail and "confirming" in np_.detail, np_.detail
        assert f"ufw allow {NODEPORT}/tcp" in np_.remediation
        fix = fix_for(np_, config=ctx.config)  # `f` on the board: the commands, on that node
        assert fix is not None and fix.place == "commands" and fix.nodes == (UFW_NODE,)
        cell = fast.traces["platform-api.keybuzz.io"][UFW_NODE][2]
        assert cell.status == "fail" and "confirming" in cell.detail
        lane = fast.fast_lane
        assert lane["api_requests"] == 0 and lane["targets"] >= 5 * 3 and lane["probes"] >= lane["targets"] and lane["changes"] >= 1
        confirmed = stream.next(lambda r: r.trigger == "net" and "confirming" not in r.result("node.nodeport").detail, 15,
                                "the full check's confirmation")
        assert status(confirmed, "node.nodeport") == "fail" and confirmed.api_requests > 0
        assert confirmed.traces["platform-api.keybuzz.io"][UFW_NODE][2].status == "fail"

        sb.call(sb.dataplane.set_firewall, UFW_NODE, NODEPORT, False)
        back = stream.next(lambda r: status(r, "node.nodeport") == "ok", 15, "the port answering again")
        assert back.trigger in ("fast", "net")
        assert back.traces["platform-api.keybuzz.io"][UFW_NODE][2].status == "ok"
    finally:
        sb.call(sb.dataplane.set_firewall, UFW_NODE, NODEPORT, False)
        ctx.cancel.cancel()
        t.join(5)
        ctx.close()
    assert not t.is_alive()
    bad = {(r.refresh, r.trigger): p for r in stream.seen if r.traces and (p := agreement_problems(r))}
    assert not bad, bad


class _Lanes:
    """A stand-in for the Watcher behind a FastLane: records what the lane asks for."""

    def __init__(self) -> None:
        self.fast: list[dict[Any, Any]] = []
        self.confirms = 0

    def fast_refresh(self, seen: dict[Any, Any]) -> None:
        self.fast.append(dict(seen))

    def confirm_now(self) -> None:
        self.confirms += 1


def test_fast_lane_acts_only_on_a_change_the_published_observations_do_not_show():
    from keybuzz_tui.engine.checks_probe import QuickAnswer

    w = _Lanes()
    lane = checks_watch.FastLane(w, 0.3, 0.4)  # type: ignore[arg-type]
    port = checks_watch.FastTarget("127.9.10.111", NODEPORT, "/healthz", None, UFW_NODE)
    listener = checks_watch.FastTarget("127.9.20.10", 20080, None)
    lane.targets, lane.published = [port, listener], {port.key: "http 200"}
    ok, dropped, refused, open_ = QuickAnswer("answer", 200), QuickAnswer("read-timeout", None, 0.4, 0.4), QuickAnswer("refused"), QuickAnswer("open")

    def round_(a: Any, b: Any = open_) -> None:
        lane.observe([port, listener], [a, b])

    round_(dropped)  # the first round is the baseline, even when it differs from the published view
    round_(dropped)
    assert w.fast == [] and w.confirms == 0
    round_(ok)  # a change, but the published observations already say 200: nothing to publish
    assert w.fast == []
    round_(dropped)  # a change the published view does not show: a provisional refresh
    assert w.fast == [{port.key: dropped}]
    round_(dropped)  # still dropped: once is enough
    assert len(w.fast) == 1
    lane.published = {port.key: "dropped"}  # the provisional refresh was published
    round_(refused)  # dropped -> refused: another kind of fault, published again
    assert w.fast[-1] == {port.key: refused}
    round_(ok)
    assert w.fast[-1] == {port.key: ok} and len(w.fast) == 3
    round_(ok, refused)  # an LB listener stops accepting: the full refresh (no provisional verdict)
    assert w.confirms == 1 and len(w.fast) == 3
    assert lane.info()["api_requests"] == 0 and lane.info()["rounds"] == 8 and lane.info()["probes"] == 16



def test_fast_lane_holds_a_round_in_which_every_worker_port_misses_at_once():
    """Every worker port missing in the same round is what a stall of this machine looks like
    (the answers are late): held for one round, no provisional verdict; a stall that passes
    publishes nothing, a miss that lasts is acted on one round later, and a drop on one worker
    is never held."""
    from keybuzz_tui.engine.checks_probe import QuickAnswer

    w = _Lanes()
    lane = checks_watch.FastLane(w, 0.3, 0.4)  # type: ignore[arg-type]
    ports = [checks_watch.FastTarget(f"127.9.10.11{i}", NODEPORT, "/healthz", None, f"k3s-worker-0{i}") for i in (1, 2, 3)]
    lane.targets, lane.published = ports, {p.key: "http 200" for p in ports}
    ok, late = QuickAnswer("answer", 200), QuickAnswer("read-timeout", None, 0.4, 0.4)

    def round_(*answers: Any) -> None:
        lane.observe(ports, list(answers))

    round_(ok, ok, ok)
    round_(late, late, late)  # a stall: held
    assert w.fast == [] and lane.info()["held"] == 1
    round_(ok, ok, ok)  # it passed: nothing was ever published
    assert w.fast == [] and w.confirms == 0
    round_(late, late, late)
    round_(late, late, late)  # it lasts: acted on, every port
    assert w.fast == [{p.key: late for p in ports}] and lane.info()["held"] == 2
    round_(ok, ok, ok)
    round_(ok, late, ok)  # one worker: at once
    assert w.fast[-1] == {ports[1].key: late} and lane.info()["held"] == 2

def test_quick_probes_tell_an_answer_from_a_silent_port_and_a_closed_one():
    import socket as sk

    from keybuzz_tui.engine.checks_probe import quick_probe, quick_probes

    held: list[sk.socket] = []  # the accepted connections stay open (a silent server, not a reset)
    servers: list[sk.socket] = []

    def server(reply: bytes | None) -> int:
        srv = sk.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(8)
        servers.append(srv)

        def serve() -> None:
            while True:
                try:
                    conn, _ = srv.accept()
                except OSError:
                    return
                held.append(conn)
                if reply is not None:
                    conn.recv(1024)
                    conn.sendall(reply)
                    conn.close()

        threading.Thread(target=serve, daemon=True).start()
        return int(srv.getsockname()[1])

    answering = server(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    silent = server(None)  # accepts, never answers: what a drop after the handshake looks like
    probe = sk.socket()
    probe.bind(("127.0.0.1", 0))
    closed = probe.getsockname()[1]
    probe.close()
    try:
        a = quick_probe("127.0.0.1", answering, "/healthz", timeout=2.0)
        assert (a.kind, a.status, a.klass) == ("answer", 200, "http 200")
        a = quick_probe("127.0.0.1", silent, "/healthz", timeout=0.3)
        assert (a.kind, a.klass) == ("read-timeout", "dropped") and a.elapsed < 2
        assert quick_probe("127.0.0.1", silent, None, timeout=0.3).kind == "open"  # connect only
        assert quick_probe("127.0.0.1", closed, "/", timeout=0.3).klass == "refused"
        # the fast lane's round: all at once, on one thread, the same verdicts
        many = quick_probes([("127.0.0.1", answering, "/healthz", None), ("127.0.0.1", silent, "/healthz", None),
                             ("127.0.0.1", silent, None, None), ("127.0.0.1", closed, "/", None)], timeout=0.5)
        assert [(m.kind, m.klass) for m in many] == [("answer", "http 200"), ("read-timeout", "dropped"), ("open", "open"),
                                                      ("refused", "refused")]
        assert all(m.elapsed < 2 for m in many)
    finally:
        for c in held + servers:
            c.close()
