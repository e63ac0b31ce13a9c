"""Guided disaster recovery against the sandbox, with the real clients: drift, repair, resume,
rollback and the lock, one broken world per scenario, each test ending on a green validation.

Worlds are installed by the engine's own apply (apply_flow.run_apply) from the default
keybuzz.yaml, then broken the way production breaks (an LB deleted, a Secret deleted, an image
changed by hand, a worker replaced, DNS pointing at an old address, an apply killed halfway),
except the outage, which is production's own starting point (scenario `outage`).
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import ssl
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support import sandboxes
from support.engine_fixtures import (
    APP_SECRET_VALUES,
    app_secrets,
    engine_context,
    lb_target_health,
    set_dns_a,
    wait_for,
)
from support.lb_world import http_request

from keybuzz_tui.apply_flow import run_apply
from keybuzz_tui.config import Config
from keybuzz_tui.engine import kubeio, recovery, validate
from keybuzz_tui.engine.lock import LEASE_NAME, LockHeld, PlatformLock
from keybuzz_tui.events import ObjectApplied, Recorder

pytestmark = pytest.mark.timeout(240)

NS = "keybuzz"
HOSTS = ("platform.keybuzz.io", "platform-api.keybuzz.io")
API_HOST, FRONT_HOST = "platform-api.keybuzz.io", "platform.keybuzz.io"
OUTAGE_PLACEHOLDERS = ("postgres://keybuzz:sandbox@postgres.keybuzz.internal:5432/keybuzz", "sandbox-jwt-secret-not-for-production")
ALL_STEPS = {"kubernetes", "lb", "dns", "firewall"}


# --- helpers -------------------------------------------------------------------------------------


def _secret_forms() -> list[str]:
    out = []
    for v in APP_SECRET_VALUES.values():
        b64 = base64.b64encode(v.encode()).decode()
        out += [v, b64, b64.rstrip("=")]
    return out


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for form in _secret_forms():
            assert form not in text, "a secret value (or its base64) leaked"


def everything_said(rec: Recorder, ctx, *objs) -> str:
    """Every event, the journal and the given report objects, as text (what a canary must never be in)."""
    parts = [json.dumps([e.to_dict() for e in rec.events], default=str)]
    if ctx.journal.path is not None and ctx.journal.path.exists():
        parts.append(ctx.journal.path.read_text())
    for o in objs:
        parts.append(json.dumps(o.to_dict() if hasattr(o, "to_dict") else o, default=str))
        if hasattr(o, "lines"):
            parts.append("\n".join(o.lines()))
    return "\n".join(parts)


def start(tmp_path: Path, scenario: str = "healthy", cfg: Config | None = None, *, install: bool = True):
    sb = sandboxes.start(tmp_path / "sb", scenario)
    ctx, rec = engine_context(sb, tmp_path / "journal.jsonl", cfg or Config(), secrets=app_secrets())
    if install:
        code, res = run_apply(ctx, argparse.Namespace(yes=True, probe=False, timeout=60, junit=None, allow_destructive=False), set(ALL_STEPS))
        assert code in (0, 1) and "error" not in res and "failed" not in res, res  # installed (a slow check is retried below)
        assert_green(ctx)
    return sb, ctx, rec


def journal(ctx) -> list[dict]:
    if not ctx.journal.path.exists():
        return []
    return [json.loads(line) for line in ctx.journal.path.read_text().splitlines() if line.strip()]


def assert_green(ctx) -> validate.ValidationReport:
    """Every check ok (https through the LB with the sandbox CA included)."""
    def run():
        rep = validate.validate(ctx, http_timeout=3.0)
        return rep if all(r.status == "ok" for r in rep.results) else None

    try:
        return wait_for(run, 30, 0.5, "a green validation")
    except AssertionError:
        rep = validate.validate(ctx, http_timeout=3.0)
        raise AssertionError({r.check: r.detail for r in rep.results if r.status != "ok"}) from None


def assert_nothing_left_behind(ctx) -> None:
    """No lock, no probe pod, nothing of ours the desired state does not have."""
    for ns in (NS, "kube-system"):
        assert kubeio.get_or_none(ctx, kubeio.resource_path("coordination.k8s.io/v1", "leases", ns, LEASE_NAME)) is None
    probes = kubeio.get(ctx, "/api/v1/pods", labelSelector="keybuzz.io/probe").get("items") or []
    assert probes == []
    again = recovery.drift(ctx)
    assert again.ok, again.lines()
    assert again.interrupted == []


def do_repair(ctx, *, allow_destructive: bool = False, **kw):
    report = recovery.drift(ctx)
    plan = recovery.repair_plan(ctx, report)
    result = recovery.repair(ctx, plan, allow_destructive=allow_destructive, **kw)
    assert result.ok, (result.message, result.remediation, [s.__dict__ for s in result.steps])
    return report, plan, result


def lb_address(sb, host: str) -> tuple[str, dict[int, int]]:
    """Where `host` leads, as a browser finds it: the sandbox DNS, then the LB's ports."""
    ip = sb.resolver().resolve(host, "A")[0].address
    info = json.loads(sb.info_path.read_text())
    entry = next(e for e in info["load_balancers"]["load_balancers"] if e["public_ipv4"] == ip)
    return ip, {int(k): int(v) for k, v in entry["ports"].items()}


def https_through_lb(sb, host: str) -> int:
    ip, ports = lb_address(sb, host)
    tls = ssl.create_default_context(cafile=str(sb.ca_path))
    return http_request(ip, ports[443], "/", host=host, tls=tls, timeout=5).status


class Prober(threading.Thread):
    """Requests through the LB for one host, as fast as they come back, while something runs."""

    def __init__(self, sb, host: str) -> None:
        super().__init__(daemon=True)
        self.ip, self.ports = lb_address(sb, host)
        self.host = host
        self.stop = threading.Event()
        self.seen: list[int | str] = []

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.seen.append(http_request(self.ip, self.ports[80], "/", host=self.host, timeout=5).status)
            except Exception as e:  # a refused or reset connection counts as down
                self.seen.append(type(e).__name__)

    def longest_failure_streak(self) -> int:
        best = cur = 0
        for s in self.seen:
            cur = 0 if s == 200 else cur + 1
            best = max(best, cur)
        return best


# --- the outage: production's starting point ----------------------------------------------------------


def test_outage_moves_to_hostnetwork_deleting_the_classic_objects_last_and_only_when_allowed(tmp_path):
    sb, ctx, rec = start(tmp_path, "outage", install=False)
    try:
        report = recovery.drift(ctx)
        assert report.topology == "classic"
        states = {d.ref: d.state for d in report.items}
        assert states["DaemonSet keybuzz/keybuzz-api"] == "missing" and states["DaemonSet keybuzz/keybuzz-front"] == "missing"
        assert states["Service keybuzz/keybuzz-api"] == "changed"
        assert states["Deployment keybuzz/keybuzz-api"] == "extra" and states["Deployment keybuzz/keybuzz-front"] == "extra"
        svc = next(d for d in report.items if d.ref == "Service keybuzz/keybuzz-api")
        assert "~ .spec.type: ClusterIP -> NodePort" in svc.lines()
        secret = next(d for d in report.items if d.ref == "Secret keybuzz/keybuzz-api-credentials")
        assert "~ .data.DATABASE_URL: (secret, masked) -> (changed, masked)" in secret.lines()  # key names only
        (dep,) = [d for d in report.items if d.ref == "Deployment keybuzz/keybuzz-api"]
        assert dep.destructive
        assert dep.note == ("deletes Deployment keybuzz/keybuzz-api and its 1 pod: the classic install; "
                            "traffic moves to the hostNetwork DaemonSet keybuzz-api")
        plan = recovery.repair_plan(ctx, report)
        assert [c.ref for c in plan.destructive] == ["Deployment keybuzz/keybuzz-api", "Deployment keybuzz/keybuzz-front"]
        assert plan.destructive_lines()[0] == dep.note
        assert [s.name for s in plan.steps] == ["kubernetes", "rollout", "switch", "cleanup", "load_balancer", "dns", "firewall"]
        assert {c.ref for c in plan.step("switch").changes} == {"Service keybuzz/keybuzz-api", "Service keybuzz/keybuzz-front", "Ingress keybuzz/keybuzz"}

        # without the operator's (second) confirmation nothing at all happens
        with pytest.raises(recovery.DestructiveNotAllowed) as refused:
            recovery.repair(ctx, plan)
        assert "deletes Deployment keybuzz/keybuzz-api and its 1 pod" in str(refused.value)
        assert not [e for e in journal(ctx) if e.get("event") == "run-started"]
        assert recovery.drift(ctx).counts() == report.counts()

        prober = Prober(sb, API_HOST)
        prober.start()
        wait_for(lambda: len(prober.seen) >= 10, 20, 0.05, "requests through the LB before the repair")
        assert 504 in prober.seen  # mostly 504: the outage as production had it
        try:
            result = recovery.repair(ctx, plan, allow_destructive=True)
            wait_for(lambda: prober.seen[-5:] == [200] * 5, 20, 0.05, "200s through the LB after the repair")
        finally:
            prober.stop.set()
            prober.join(10)
        assert result.ok, (result.message, result.remediation)
        assert result.deleted == ["Deployment keybuzz/keybuzz-api", "Deployment keybuzz/keybuzz-front"]
        # never worse than "mostly 504" on the way (round robin over 5 workers: at most 4 in a row),
        # never "all down" while the new pods start
        assert prober.longest_failure_streak() <= 8, prober.seen

        # the order: DaemonSets applied and rolled out, Services/Ingress switched, then the deletions
        lines = journal(ctx)
        run = [e for e in lines if e.get("run") == result.run]
        events = [e["event"] for e in run]
        assert events[:2] == ["lock-acquired", "run-started"] and run[1]["command"] == "repair"
        assert events[-2:] == ["run-finished", "lock-released"] and run[-2]["status"] == "ok"
        order = [(e["event"], e.get("kind"), e.get("name")) for e in run if e["event"] in ("object-applied", "object-deleted")]
        first_delete = next(i for i, o in enumerate(order) if o[0] == "object-deleted")
        applied_before = {(k, n) for ev, k, n in order[:first_delete] if ev == "object-applied"}
        assert {("DaemonSet", "keybuzz-api"), ("DaemonSet", "keybuzz-front"), ("Service", "keybuzz-api"), ("Ingress", "keybuzz")} <= applied_before
        assert kubeio.get_or_none(ctx, kubeio.resource_path("apps/v1", "deployments", NS, "keybuzz-api")) is None
        assert any(e.get("event") == "lock-acquired" and e.get("run") == result.run for e in lines)

        for host in HOSTS:
            assert https_through_lb(sb, host) == 200
        assert_green(ctx)
        assert_nothing_left_behind(ctx)
        assert_no_secret(everything_said(rec, ctx, report, plan, result))
        text = everything_said(rec, ctx, report, plan, result)
        assert not any(p in text for p in OUTAGE_PLACEHOLDERS)  # the cluster's old values never shown either
    finally:
        sb.stop()


def test_a_cancelled_repair_leaves_a_state_the_next_run_finishes(tmp_path):
    sb, ctx, rec = start(tmp_path, "outage", install=False)
    try:
        plan = recovery.repair_plan(ctx, recovery.drift(ctx))

        def cancel_after_first_daemonset(event):
            if isinstance(event, ObjectApplied) and event.kind == "DaemonSet":
                ctx.cancel.cancel("operator pressed Ctrl-C")

        rec._forward = cancel_after_first_daemonset
        result = recovery.repair(ctx, plan, allow_destructive=True)
        rec._forward = None
        assert result.status == "cancelled" and "Ctrl-C" in result.message
        assert result.deleted == []  # the classic install still serves
        assert kubeio.get_or_none(ctx, kubeio.resource_path("apps/v1", "deployments", NS, "keybuzz-api")) is not None
        assert kubeio.get_or_none(ctx, kubeio.resource_path("coordination.k8s.io/v1", "leases", NS, LEASE_NAME)) is None
        end = [e for e in journal(ctx) if e.get("run") == result.run and e["event"] == "run-finished"]
        assert end and end[0]["status"] == "interrupted"

        ctx.cancel = type(ctx.cancel)()  # the next run, a fresh token
        (stopped,) = recovery.interrupted(ctx)
        assert stopped.command == "repair" and stopped.how == "interrupted"
        assert stopped.last == "DaemonSet keybuzz/keybuzz-api" and stopped.stopped_at == "DaemonSet keybuzz/keybuzz-front"
        report = recovery.drift(ctx)
        assert stopped.remaining == len(report.items) > 0
        assert "DaemonSet keybuzz/keybuzz-front" in {d.ref for d in report.of("missing")}
        assert "DaemonSet keybuzz/keybuzz-api" not in {d.ref for d in report.items}
        do_repair(ctx, allow_destructive=True)
        assert recovery.interrupted(ctx) == []
        assert_green(ctx)
        assert_nothing_left_behind(ctx)
    finally:
        sb.stop()


# --- broken worlds -------------------------------------------------------------------------------------


def test_a_deleted_lb_is_recreated_and_dns_follows_its_new_address(tmp_path):
    sb, ctx, rec = start(tmp_path)
    try:
        hc = ctx.hcloud()
        old = hc.load_balancers.get_by_name("keybuzz-lb")
        old_ip = old.public_net.ipv4.ip
        hc.load_balancers.delete(old)
        report = recovery.drift(ctx)
        by_ref = {d.ref: d for d in report.items}
        assert by_ref["LoadBalancer keybuzz-lb"].state == "missing"
        assert by_ref["LoadBalancerService keybuzz-lb:443"].state == "missing"
        assert by_ref["LoadBalancerTarget label_selector:role=worker"].state == "missing"
        for host in HOSTS:
            d = by_ref[f"A {host}"]
            assert d.state == "pending" and d.diff[0].old == [old_ip]
        assert not [d for d in report.items if d.layer == "kubernetes"]
        _, plan, result = do_repair(ctx)
        new_ip = hc.load_balancers.get_by_name("keybuzz-lb").public_net.ipv4.ip
        assert new_ip != old_ip
        for host in HOSTS:
            assert sorted(r.address for r in sb.resolver().resolve(host, "A")) == [new_ip]
            assert https_through_lb(sb, host) == 200
        assert f"A {API_HOST}" in result.changed
        assert_green(ctx)
        assert_nothing_left_behind(ctx)
    finally:
        sb.stop()


def test_a_deleted_secret_is_recreated_from_the_keyring_with_the_same_values(tmp_path):
    sb, ctx, rec = start(tmp_path)
    try:
        path = kubeio.resource_path("v1", "secrets", NS, "keybuzz-api-credentials")
        before = kubeio.get(ctx, path)
        kubeio.delete(ctx, path)
        report = recovery.drift(ctx)
        assert [(d.state, d.ref) for d in report.items] == [("missing", "Secret keybuzz/keybuzz-api-credentials")]
        assert_no_secret(everything_said(rec, ctx, report))
        _, plan, result = do_repair(ctx)
        after = kubeio.get(ctx, path)
        values = {k: base64.b64decode(v).decode() for k, v in after["data"].items()}
        assert values == {k.split("/")[1]: v for k, v in APP_SECRET_VALUES.items() if k.startswith("keybuzz-api/")}
        assert after["data"] == before["data"]
        assert after["metadata"]["annotations"] == before["metadata"]["annotations"]  # same fingerprint: no rollout
        assert result.changed == ["Secret keybuzz/keybuzz-api-credentials"]
        assert_green(ctx)
        assert_nothing_left_behind(ctx)
        assert_no_secret(everything_said(rec, ctx, report, plan, result))
    finally:
        sb.stop()


def test_an_image_changed_by_hand_is_restored_and_revisions_allow_a_rollback(tmp_path):
    sb, ctx, rec = start(tmp_path)
    try:
        path = kubeio.resource_path("apps/v1", "daemonsets", NS, "keybuzz-api")
        patch = {"spec": {"template": {"spec": {"containers": [{"name": "keybuzz-api", "image": "ghcr.io/keybuzz/api:1.4.1-hotfix"}]}}}}
        kubeio.request(ctx, "PATCH", path, query={"fieldManager": "kubectl-set"}, body=patch, content_type="application/strategic-merge-patch+json")
        report = recovery.drift(ctx)
        (d,) = report.items
        assert (d.state, d.ref) == ("changed", "DaemonSet keybuzz/keybuzz-api")
        assert d.lines() == ["~ .spec.template.spec.containers[name=keybuzz-api].image: ghcr.io/keybuzz/api:1.4.1-hotfix -> ghcr.io/keybuzz/api:1.4.2"]
        _, plan, result = do_repair(ctx)
        assert result.rollout is not None and result.rollout.ok
        live = kubeio.get(ctx, path)
        assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "ghcr.io/keybuzz/api:1.4.2"
        assert_green(ctx)

        # rollback: the revisions list what each one changes; going back is journaled, and drifts
        revs = recovery.revisions(ctx, "keybuzz-api")
        hotfix = next(r for r in revs if "ghcr.io/keybuzz/api:1.4.1-hotfix" in r.images)
        assert not hotfix.current and any("1.4.1-hotfix" in line for line in hotfix.lines())
        assert [r.current for r in revs][-1] is True
        back = recovery.rollback(ctx, "keybuzz-api", hotfix.revision, timeout=60)
        assert back.ok and back.to_revision == hotfix.revision
        assert [e["command"] for e in journal(ctx) if e["event"] == "run-started"][-1] == "rollback"
        assert [e["status"] for e in journal(ctx) if e["event"] == "run-finished"][-1] == "ok"
        (d,) = recovery.drift(ctx).items
        assert d.ref == "DaemonSet keybuzz/keybuzz-api" and "1.4.1-hotfix -> ghcr.io/keybuzz/api:1.4.2" in d.lines()[0]
        do_repair(ctx)
        assert_green(ctx)
        assert_nothing_left_behind(ctx)
    finally:
        sb.stop()


def test_a_worker_replaced_by_a_new_server_is_picked_up_by_server_targets(tmp_path):
    cfg = Config()
    cfg.load_balancer.target_mode = "servers"
    sb, ctx, rec = start(tmp_path, cfg=cfg)
    try:
        new = sb.replace_worker("k3s-worker-03")
        assert new.name == "k3s-worker-06" and new.private_ip.endswith(".10.115")
        report = recovery.drift(ctx)
        assert [(d.state, d.ref) for d in report.items] == [("missing", "LoadBalancerTarget server:k3s-worker-06")]
        _, plan, result = do_repair(ctx)
        assert result.changed == ["LoadBalancerTarget server:k3s-worker-06"]
        lb = ctx.hcloud().load_balancers.get_by_name("keybuzz-lb")
        health = lb_target_health(sb, lb.id)
        assert set(health) == {"k3s-worker-01", "k3s-worker-02", "k3s-worker-04", "k3s-worker-05", "k3s-worker-06"}
        rep = assert_green(ctx)
        assert new.private_ip in rep.result("k8s.endpoints").detail or "5 endpoints" in rep.result("k8s.endpoints").detail
        assert_nothing_left_behind(ctx)
    finally:
        sb.stop()


def test_a_worker_replaced_under_label_selector_targets_needs_no_lb_change(tmp_path):
    sb, ctx, rec = start(tmp_path)
    try:
        sb.replace_worker("k3s-worker-03")
        report = recovery.drift(ctx)
        assert report.ok, report.lines()  # the label selector follows the labels by itself
        plan = recovery.repair_plan(ctx, report)
        assert not plan.has_changes
        result = recovery.repair(ctx, plan)  # still waits for the new worker's pods and LB health
        assert result.ok and result.rollout.ok
        assert "k3s-worker-06" in result.rollout.apps["keybuzz-api"].nodes
        assert_green(ctx)
    finally:
        sb.stop()


def test_dns_records_pointing_at_an_old_ip_are_restored(tmp_path):
    sb, ctx, rec = start(tmp_path)
    try:
        old_ip = f"127.{sb.net}.20.250"
        set_dns_a(sb, API_HOST, old_ip)
        report = recovery.drift(ctx)
        (d,) = report.items
        assert (d.state, d.layer, d.ref) == ("changed", "dns", f"A {API_HOST}")
        assert old_ip in d.note and "stale" in d.note
        do_repair(ctx)
        lb_ip = ctx.hcloud().load_balancers.get_by_name("keybuzz-lb").public_net.ipv4.ip
        assert [r.address for r in sb.resolver().resolve(API_HOST, "A")] == [lb_ip]
        assert_green(ctx)
        assert_nothing_left_behind(ctx)
    finally:
        sb.stop()


# --- resume --------------------------------------------------------------------------------------------


class Crash(BaseException):
    """The process dying between two calls: nothing catches it, no run-finished is written."""


def test_an_apply_killed_halfway_is_detected_and_the_next_run_resumes(tmp_path):
    sb, ctx, rec = start(tmp_path, install=False)
    try:
        def die_after_first_daemonset(event):
            if isinstance(event, ObjectApplied) and event.kind == "DaemonSet":
                raise Crash()

        rec._forward = die_after_first_daemonset
        args = argparse.Namespace(yes=True, probe=False, timeout=60, junit=None, allow_destructive=False)
        worker = threading.Thread(target=lambda: pytest.raises(Crash, run_apply, ctx, args, set(ALL_STEPS)))
        worker.start()
        worker.join(60)
        rec._forward = None
        entries = journal(ctx)
        applied = [e for e in entries if e["event"] == "object-applied"]
        assert (applied[-1]["kind"], applied[-1]["name"]) == ("DaemonSet", "keybuzz-api")
        # the process died: no end line, or (apply_flow catching even a BaseException on its way
        # out) "interrupted"; a real SIGKILL is tested in tests/cli/test_recover_cli.py
        assert [e["status"] for e in entries if e["event"] == "run-finished"] in ([], ["interrupted"])

        runs = recovery.interrupted(ctx)
        (stopped,) = runs
        assert stopped.command == "apply" and stopped.how in ("crashed", "interrupted") and not stopped.still_running
        assert stopped.last == "DaemonSet keybuzz/keybuzz-api"
        report = recovery.drift(ctx)
        assert report.interrupted[0].run == stopped.run
        assert stopped.remaining == len(report.items) > 0
        when = stopped.started.replace("T", " ")[:16]
        assert stopped.describe().startswith(f"the apply of {when} stopped after DaemonSet keybuzz/keybuzz-api; {len(report.items)} changes remain (")
        # the plan against the live state holds only what remains
        plan = recovery.repair_plan(ctx, report)
        todo_kube = {c.ref for c in plan.changes if c.layer == "kubernetes" and c.action != "unchanged"}
        assert todo_kube == {"DaemonSet keybuzz/keybuzz-front", "Ingress keybuzz/keybuzz"}
        done_kube = {c.ref for c in plan.changes if c.layer == "kubernetes" and c.action == "unchanged"}
        assert {"Namespace keybuzz", "Secret keybuzz/keybuzz-api-credentials", "DaemonSet keybuzz/keybuzz-api", "Service keybuzz/keybuzz-front"} <= done_kube
        assert {c.kind for c in plan.changes if c.layer == "hetzner" and c.action == "create"} >= {"LoadBalancer", "LoadBalancerService"}
        result = recovery.repair(ctx, plan)
        assert result.ok, result.message
        assert recovery.interrupted(ctx) == []
        assert_green(ctx)
        assert_nothing_left_behind(ctx)
        assert_no_secret(everything_said(rec, ctx, report, plan, result))
    finally:
        sb.stop()


# --- the lock ------------------------------------------------------------------------------------------


def test_two_wizards_at_once_the_second_is_told_who_holds_the_platform(tmp_path):
    sb, ctx, rec = start(tmp_path)
    try:
        other_ctx, _ = engine_context(sb, tmp_path / "other-journal.jsonl", Config(), secrets=app_secrets())
        other = PlatformLock(other_ctx)
        other.me = "alice@laptop pid 4242"
        other.acquire()
        try:
            assert recovery.lock_status(ctx).holder == "alice@laptop pid 4242"
            set_dns_a(sb, API_HOST, f"127.{sb.net}.20.251")
            plan = recovery.repair_plan(ctx, recovery.drift(ctx))
            with pytest.raises(LockHeld) as held:
                recovery.repair(ctx, plan)
            assert "alice@laptop pid 4242" in str(held.value) and "since" in str(held.value) and not held.value.info.stale
            with pytest.raises(LockHeld):
                recovery.repair(ctx, plan, take_over=True)  # a live lock is never taken over
            with pytest.raises(LockHeld):
                recovery.rollback(ctx, "keybuzz-api")
            assert [d.ref for d in recovery.drift(ctx).items] == [f"A {API_HOST}"]  # nothing changed
        finally:
            other.release()
        do_repair(ctx)
        assert_green(ctx)
    finally:
        sb.stop()


def test_a_stale_lock_is_taken_over_only_on_request_and_journaled(tmp_path):
    sb, ctx, rec = start(tmp_path)
    try:
        old = (datetime.now(UTC) - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        lease = {
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": LEASE_NAME, "namespace": NS},
            "spec": {"holderIdentity": "bob@crashed-laptop pid 99", "acquireTime": old, "renewTime": old, "leaseDurationSeconds": 120},
        }
        kubeio.request(ctx, "POST", kubeio.resource_path("coordination.k8s.io/v1", "leases", NS), body=lease)
        kubeio.delete(ctx, kubeio.resource_path("v1", "secrets", NS, "keybuzz-front-credentials"))
        plan = recovery.repair_plan(ctx, recovery.drift(ctx))
        with pytest.raises(LockHeld) as held:
            recovery.repair(ctx, plan)
        assert held.value.info.stale and "stale" in str(held.value) and "bob@crashed-laptop pid 99" in str(held.value)
        result = recovery.repair(ctx, plan, take_over=True)
        assert result.ok
        taken = [e for e in journal(ctx) if e["event"] == "lock-taken-over"]
        assert taken and taken[0]["previous"] == "bob@crashed-laptop pid 99"
        assert_green(ctx)
        assert_nothing_left_behind(ctx)
    finally:
        sb.stop()


# --- what cannot be compared is said, never guessed ----------------------------------------------------


def test_no_token_is_a_layer_problem_and_repair_refuses_to_run_blind(tmp_path):
    sb, ctx, rec = start(tmp_path, install=False)
    try:
        blind, _ = engine_context(sb, tmp_path / "blind.jsonl", Config(), secrets=app_secrets(), token="")
        blind.endpoints.hcloud_token_env = None
        report = recovery.drift(blind)
        assert {p.layer for p in report.problems} == {"hetzner", "dns"}
        assert report.problems[0].kind == "credentials" and "keybuzz-tui credentials" in report.problems[0].remediation
        assert report.of("missing")  # Kubernetes was still compared
        with pytest.raises(recovery.RepairRefused) as refused:
            recovery.repair(blind, recovery.repair_plan(blind, report))
        assert "no Hetzner Cloud API token" in str(refused.value)
        assert kubeio.get_or_none(ctx, f"/api/v1/namespaces/{NS}") is None  # nothing changed
    finally:
        sb.stop()


def test_a_generated_secret_missing_from_the_keyring_is_never_silently_replaced(tmp_path):
    sb, ctx, rec = start(tmp_path)
    try:
        lost = app_secrets()
        del lost.values["keybuzz-api/JWT_SECRET"]  # generate: true in the default keybuzz.yaml
        forgetful, _ = engine_context(sb, tmp_path / "forgetful.jsonl", Config(), secrets=lost)
        report = recovery.drift(forgetful)
        (p,) = report.problems
        assert p.kind == "credentials" and "keybuzz-api/JWT_SECRET" in p.message and "credentials set" in p.remediation
        blocked = next(d for d in report.items if d.ref == "Secret keybuzz/keybuzz-api-credentials")
        assert blocked.state == "blocked"
        with pytest.raises(recovery.RepairRefused):
            recovery.repair(forgetful, recovery.repair_plan(forgetful, report))
        assert_green(ctx)
    finally:
        sb.stop()


def test_drift_report_and_plan_render_for_screens_and_json(tmp_path):
    sb, ctx, rec = start(tmp_path, "outage", install=False)
    try:
        t0 = time.monotonic()
        report = recovery.drift(ctx)
        assert time.monotonic() - t0 < 10
        data = json.loads(json.dumps(report.to_dict()))
        assert data["has_drift"] and data["topology"] == "classic" and data["counts"]["extra"] == 2
        assert any(i["ref"] == "Deployment keybuzz/keybuzz-api" and i["destructive"] for i in data["items"])
        lines = report.lines()
        assert lines[0].startswith("drift: ") and any("extra    Deployment keybuzz/keybuzz-api [destructive]" in x for x in lines)
        plan = recovery.repair_plan(ctx, report, include_destructive=False)
        assert not plan.destructive and not plan.step("cleanup").changes
        assert any(x.strip().startswith("rollout:") for x in plan.lines())
        assert_no_secret(everything_said(rec, ctx, report, plan))
    finally:
        sb.stop()


# --- the sandbox's worker replacement (keybuzz_tui/sandbox/replace.py) ----------------------------------


def test_sandbox_replace_worker_moves_node_server_and_address(tmp_path):
    sb = sandboxes.start(tmp_path / "sb")
    try:
        ctx, _ = engine_context(sb, None)
        hc = ctx.hcloud()
        old = hc.servers.get_by_name("k3s-worker-03")
        old_ip = old.private_net[0].ip

        def healthz(ip: str) -> int:
            return http_request(ip, 31695, "/healthz", host=ip, timeout=3).status

        def answers(ip: str) -> bool:
            try:
                return healthz(ip) == 200
            except (OSError, http.client.HTTPException):
                return False  # not listening yet, or no ready ingress pod behind the NodePort yet

        assert wait_for(lambda: answers(old_ip), 20, 0.1, "ingress-nginx on the old worker")
        new = sb.replace_worker("k3s-worker-03")
        assert (new.name, new.role) == ("k3s-worker-06", "worker") and new.private_ip != old_ip
        nodes = {n["metadata"]["name"]: n for n in kubeio.get(ctx, "/api/v1/nodes")["items"]}
        assert "k3s-worker-03" not in nodes
        addresses = {a["type"]: a["address"] for a in nodes["k3s-worker-06"]["status"]["addresses"]}
        assert addresses["InternalIP"] == new.private_ip
        assert not [p for p in kubeio.get(ctx, "/api/v1/pods")["items"] if p["spec"].get("nodeName") == "k3s-worker-03"]
        servers = {s.name: s for s in hc.servers.get_all(label_selector="role=worker")}
        assert "k3s-worker-03" not in servers
        assert servers["k3s-worker-06"].id != old.id and servers["k3s-worker-06"].private_net[0].ip == new.private_ip
        # the new address serves (ingress-nginx's DaemonSet started there by itself), the old one is gone
        assert wait_for(lambda: answers(new.private_ip), 30, 0.1, "ingress-nginx on the new worker")
        with pytest.raises(OSError):
            healthz(old_ip)
        listed = {n["name"]: n["internal_ip"] for n in json.loads(sb.info_path.read_text())["nodes"]}
        assert listed["k3s-worker-06"] == new.private_ip and "k3s-worker-03" not in listed
        with pytest.raises(KeyError):
            sb.replace_worker("k3s-worker-03")
        with pytest.raises(ValueError, match="control-plane"):
            sb.replace_worker("k3s-master-01")
    finally:
        sb.stop()


# --- the journal's side of resume (pure logic) ------------------------------------------------------


def _write(path: Path, *entries: dict) -> None:
    with path.open("a") as f:
        for e in entries:
            f.write(json.dumps({"ts": "2026-11-26T03:12:05Z", **e}) + "\n")


def test_stopped_runs_reads_where_each_run_stopped_and_forgets_what_a_completed_run_redid(tmp_path):
    from keybuzz_tui.journal import Journal

    path = tmp_path / "journal.jsonl"
    j = Journal(path)
    _write(path,
           {"run": "a", "event": "run-started", "command": "apply", "host": "vm"},
           {"run": "a", "event": "object-applied", "kind": "Namespace", "namespace": None, "name": "keybuzz", "action": "create"})
    assert [r.run for r in recovery.stopped_runs(j)] == ["a"]
    _write(path,
           {"run": "b", "event": "run-started", "command": "repair", "host": "vm"},
           {"run": "b", "event": "run-finished", "status": "ok"})
    assert recovery.stopped_runs(j) == []  # b went over everything again
    _write(path,
           {"run": "c", "event": "run-started", "command": "apply", "host": "vm"},
           {"run": "c", "event": "object-applied", "kind": "Secret", "namespace": "keybuzz", "name": "s", "action": "unchanged"},
           {"run": "c", "event": "object-applied", "kind": "DaemonSet", "namespace": "keybuzz", "name": "keybuzz-api", "action": "create"},
           {"run": "c", "event": "kube-apply-cancelled", "next": "DaemonSet keybuzz/keybuzz-front"},
           {"run": "c", "event": "run-finished", "status": "interrupted", "reason": "interrupted (Ctrl-C)"},
           {"run": "d", "event": "run-started", "command": "rollback"},
           {"run": "e", "event": "run-started", "command": "repair", "host": "vm"},
           {"run": "e", "event": "change", "layer": "hetzner", "action": "create", "kind": "LoadBalancer", "name": "keybuzz-lb"},
           {"run": "e", "event": "run-finished", "status": "failed", "error": "cannot reach the Hetzner API"})
    c, e = recovery.stopped_runs(j)
    assert (c.how, c.done, c.stopped_at) == ("interrupted", ["DaemonSet keybuzz/keybuzz-api"], "DaemonSet keybuzz/keybuzz-front")
    c.remaining = 3
    assert c.describe() == ("the apply of 2026-11-26 03:12 stopped after DaemonSet keybuzz/keybuzz-api, while applying "
                            "DaemonSet keybuzz/keybuzz-front; 3 changes remain (interrupted: interrupted (Ctrl-C); on vm)")
    assert (e.command, e.how, e.last) == ("repair", "failed", "LoadBalancer keybuzz-lb")
    e.remaining = 0
    assert "nothing remains: the platform matches keybuzz.yaml" in e.describe() and "failed: cannot reach the Hetzner API" in e.describe()


# --- extras: what the desired state does not have -----------------------------------------------------


def test_extras_are_the_classic_objects_under_other_names_and_our_leftovers_nothing_else(tmp_path):
    sb, ctx, rec = start(tmp_path)
    try:
        ours = {"app.kubernetes.io/managed-by": "keybuzz-tui", "app.kubernetes.io/part-of": "keybuzz"}
        objects = [
            ("v1", "services", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "keybuzz-api-classic", "namespace": NS},
                                "spec": {"selector": {"app": "keybuzz-api"}, "ports": [{"name": "http", "port": 8080, "targetPort": 8080}]}}),
            ("networking.k8s.io/v1", "ingresses", {
                "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "keybuzz-old", "namespace": NS},
                "spec": {"ingressClassName": "nginx", "rules": [{"host": "platform-api.keybuzz.io", "http": {"paths": [
                    {"path": "/old", "pathType": "Prefix", "backend": {"service": {"name": "keybuzz-api-classic", "port": {"number": 8080}}}}]}}]}}),
            ("v1", "configmaps", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "keybuzz-admin-nginx", "namespace": NS, "labels": ours},
                                  "data": {"default.conf": "server {}"}}),
            ("apps/v1", "replicasets", {
                "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "keybuzz-front-7d9f", "namespace": NS},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "keybuzz-front", "generation": "old"}},
                         "template": {"metadata": {"labels": {"app": "keybuzz-front", "generation": "old"}},
                                      "spec": {"nodeSelector": {"kubernetes.io/hostname": "k3s-worker-01"},
                                               "containers": [{"name": "front", "image": "ghcr.io/keybuzz/front:1.3.0", "ports": [{"containerPort": 3000}]}]}}}}),
            ("v1", "services", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "keybuzz-api-metrics", "namespace": NS},
                                "spec": {"selector": {"app.kubernetes.io/name": "keybuzz-api"}, "ports": [{"port": 9090}]}}),
            ("v1", "secrets", {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "keybuzz-api-old-credentials", "namespace": NS,
                                                                              "labels": {"app.kubernetes.io/name": "keybuzz-api"}},
                               "stringData": {"TOKEN": "not ours to delete"}}),
        ]
        for api_version, plural, obj in objects:
            kubeio.request(ctx, "POST", kubeio.resource_path(api_version, plural, NS), body=obj)
        wait_for(lambda: [p for p in kubeio.get(ctx, f"/api/v1/namespaces/{NS}/pods")["items"] if p["metadata"]["name"].startswith("keybuzz-front-7d9f")],
                 20, 0.05, "the orphan ReplicaSet's pod")
        report = recovery.drift(ctx)
        extra = {d.ref: d.note for d in report.of("extra")}
        assert set(extra) == {"Service keybuzz/keybuzz-api-classic", "Ingress keybuzz/keybuzz-old", "ConfigMap keybuzz/keybuzz-admin-nginx",
                              "ReplicaSet keybuzz/keybuzz-front-7d9f"}
        assert extra["Service keybuzz/keybuzz-api-classic"].startswith("deletes Service keybuzz/keybuzz-api-classic (ClusterIP 10.43.")
        assert "the Ingress routes to keybuzz-api, keybuzz-front instead" in extra["Service keybuzz/keybuzz-api-classic"]
        assert "also routes platform-api.keybuzz.io" in extra["Ingress keybuzz/keybuzz-old"]
        assert extra["ReplicaSet keybuzz/keybuzz-front-7d9f"].startswith("deletes ReplicaSet keybuzz/keybuzz-front-7d9f and its 1 pod:")
        assert "created by keybuzz-tui but not in keybuzz.yaml any more" in extra["ConfigMap keybuzz/keybuzz-admin-nginx"]
        assert any("keybuzz-api-metrics also selects keybuzz-api" in w for w in report.warnings)  # someone else's: left alone
        assert all(d.destructive for d in report.of("extra"))
        _, plan, result = do_repair(ctx, allow_destructive=True)
        assert sorted(result.deleted) == sorted(extra)
        for path in (kubeio.resource_path("v1", "services", NS, "keybuzz-api-metrics"), kubeio.resource_path("v1", "secrets", NS, "keybuzz-api-old-credentials")):
            assert kubeio.get_or_none(ctx, path) is not None
        assert not [p for p in kubeio.get(ctx, f"/api/v1/namespaces/{NS}/pods")["items"] if p["metadata"]["name"].startswith("keybuzz-front-7d9f")]
        assert_green(ctx)
    finally:
        sb.stop()


class GeneratingSecrets:
    """A SecretSource that can generate (as the keyring-backed CredentialStore does)."""

    def __init__(self, values: dict[str, str]) -> None:
        self.inner = app_secrets()
        self.inner.values = dict(values)
        self.generated: list[str] = []

    def hcloud_token(self):
        return None

    def get(self, name):
        return self.inner.get(name)

    def app_secret(self, app, key):
        return self.inner.app_secret(app, key)

    def ensure_app_secrets(self, config):
        import secrets as pysecrets

        from keybuzz_tui.redact import REDACTOR

        out = []
        for a in config.apps:
            for s in a.secrets:
                if s.generate and f"{a.name}/{s.key}" not in self.inner.values:
                    value = pysecrets.token_urlsafe(s.length)
                    REDACTOR.add(value)
                    self.inner.values[f"{a.name}/{s.key}"] = value
                    out.append(f"app/{a.name}/{s.key}")
        self.generated += out
        return out


def test_generated_secrets_missing_everywhere_are_generated_by_the_repair_only(tmp_path):
    sb = sandboxes.start(tmp_path / "sb")
    try:
        source = GeneratingSecrets({"keybuzz-api/DATABASE_URL": APP_SECRET_VALUES["keybuzz-api/DATABASE_URL"]})
        ctx, rec = engine_context(sb, tmp_path / "journal.jsonl", Config(), secrets=source)
        report = recovery.drift(ctx)
        assert not report.problems
        assert sorted(report.needs_generation) == ["app/keybuzz-api/API_ENCRYPTION_KEY", "app/keybuzz-api/JWT_SECRET", "app/keybuzz-front/SESSION_SECRET"]
        assert source.generated == []  # a drift changes nothing, not even the keyring
        plan = recovery.repair_plan(ctx, report)
        result = recovery.repair(ctx, plan)
        assert result.ok, result.message
        assert sorted(source.generated) == sorted(report.needs_generation)
        live = kubeio.get(ctx, kubeio.resource_path("v1", "secrets", NS, "keybuzz-api-credentials"))
        assert base64.b64decode(live["data"]["JWT_SECRET"]).decode() == source.inner.values["keybuzz-api/JWT_SECRET"]
        assert recovery.drift(ctx).ok
        assert_green(ctx)
    finally:
        sb.stop()
