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
