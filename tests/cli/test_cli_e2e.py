"""Issue 4's "What must hold", at the level of the INSTALLED `keybuzz-tui` command.

Every test runs the real entry point (Path(sys.executable).with_name("keybuzz-tui")) as a
subprocess against a sandbox started in this process, with a private Secret Service (the suite
runs inside scripts/with-keyring), a keybuzz.yaml written by `keybuzz-tui config init` with a
profile of its own (no two tests share keyring entries), the state directory under tmp_path, and
a canary DATABASE_URL given the way automation gives it (KEYBUZZ_SECRET_KEYBUZZ_API_DATABASE_URL).

After every test the fixture checks that neither the canary nor the sandbox's Hetzner token (nor
their base64 forms) appear in any stdout or stderr of the test or any file it left under tmp_path
(journal, keybuzz.yaml, reports); no run may print a traceback (CliRun.run checks each one).
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import signal
import socket
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from support.cli_support import (
    DB_ENV,
    CliRun,
    assert_nowhere,
    db_canary,
    hcloud_token_of,
    json_lines,
    new_profile,
    result_of,
)
from support.engine_fixtures import install_keybuzz_directly, wait_for

pytestmark = pytest.mark.keyring

NS = "keybuzz"
HOSTS = ("platform.keybuzz.io", "platform-api.keybuzz.io")


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def bare(tmp_path):
    """A CliRun with no sandbox (unreachable clusters, bad answers files)."""
    work = tmp_path / "work"
    work.mkdir()
    cli = CliRun(work, None, new_profile(), db_canary())
    yield cli
    assert_nowhere(cli.canary, cli.outputs(), [tmp_path])


# --- cluster and project facts, read with the official clients -------------------------------------


def _core(sb: Any) -> tuple[Any, Any]:
    from kubernetes import client

    api = sb.kube_client()
    return api, client


def namespace_exists(sb: Any, ns: str = NS) -> bool:
    api, client = _core(sb)
    try:
        return any(n.metadata.name == ns for n in client.CoreV1Api(api).list_namespace().items)
    finally:
        api.close()


def daemonsets(sb: Any) -> list[str]:
    api, client = _core(sb)
    try:
        return [f"{d.metadata.namespace}/{d.metadata.name}" for d in client.AppsV1Api(api).list_daemon_set_for_all_namespaces().items
                if d.metadata.name.startswith("keybuzz")]
    finally:
        api.close()


def secret_value(sb: Any, name: str, key: str) -> str:
    api, client = _core(sb)
    try:
        s = client.CoreV1Api(api).read_namespaced_secret(name, NS)
        return base64.b64decode(s.data[key]).decode()
    finally:
        api.close()


def load_balancers(sb: Any) -> list[str]:
    hc = sb.hcloud_client()
    hc._client._session.trust_env = False  # loopback only
    try:
        return [lb.name for lb in hc.load_balancers.get_all()]
    finally:
        hc._client._session.close()


def leases(sb: Any) -> list[str]:
    api, client = _core(sb)
    try:
        return [f"{x.metadata.namespace}/{x.metadata.name}" for x in client.CoordinationV1Api(api).list_lease_for_all_namespaces().items
                if x.metadata.name == "keybuzz-tui-lock"]
    finally:
        api.close()


def nothing_changed(sb: Any) -> None:
    assert not namespace_exists(sb), "the namespace was created"
    assert daemonsets(sb) == []
    assert load_balancers(sb) == []
    assert leases(sb) == [], "the platform lock was left behind"


def finished(run: list[dict[str, Any]]) -> str | None:
    """The status of a journaled run's run-finished line (None: it has none, it was cut short)."""
    return next((e.get("status") for e in run if e["event"] == "run-finished"), None)


def text(r: Any) -> str:
    return r.stdout + r.stderr


def last_line(r: Any) -> str:
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()] if r.returncode else [ln for ln in r.stdout.splitlines() if ln.strip()]
    return lines[-1] if lines else ""


# --- the healthy path --------------------------------------------------------------------------------


def test_apply_then_validate_all_green_then_plan_shows_no_changes(world):
    cli, sb = world("healthy")
    junit = cli.work / "apply-junit.xml"
    r = cli.run("apply", "--yes", "--junit", str(junit))
    assert r.returncode == 0, text(r)[-4000:]
    assert last_line(r).startswith("✓ apply complete") and "18 ok" in last_line(r), last_line(r)
    assert "▶ Rollout of keybuzz-api, keybuzz-front" in r.stdout and "✓ validate: 18 checks: 18 ok" in r.stdout
    # a readable run: every section once, new objects by name only (no manifest dumps)
    assert r.stdout.count("▶ Load balancer") == 1 and r.stdout.count("▶ Validation") == 1
    assert ".apiVersion" not in r.stdout
    assert ET.parse(junit).getroot().tag in ("testsuites", "testsuite")
    # the canary went where it belongs: into the cluster Secret (only)
    assert secret_value(sb, "keybuzz-api-credentials", "DATABASE_URL") == cli.canary

    r = cli.run("validate")
    assert r.returncode == 0, text(r)[-3000:]
    assert "✓ validate: 18 checks: 18 ok" in r.stdout and last_line(r).startswith("✓ validation passes")

    r = cli.run("plan", "--json")
    assert r.returncode == 0, text(r)[-3000:]
    res = result_of(r.stdout)
    changed = [d for d in json_lines(r.stdout) if d.get("type") == "ObjectPlanned" and d.get("action") != "unchanged"]
    assert res["exit_code"] == 0 and res["changes"] is False, changed
    assert res["counts"]["create"] == res["counts"]["update"] == res["counts"]["delete"] == 0
    assert res["counts"]["unchanged"] >= 10 and res["conflicts"] == [] and res["errors"] == []

    runs = cli.runs_of_journal()
    assert len(runs) == 1 and finished(runs[0]) == "ok"
    assert {"lock-acquired", "lock-released"} <= {e["event"] for e in cli.journal()}
    assert leases(sb) == []  # released at the end


def test_json_junit_and_reports_are_well_formed_and_carry_no_secret(world):
    """The canary run: --json everywhere, --verbose (diffs shown), every report format."""
    cli, sb = world("healthy")
    r = cli.run("apply", "--yes", "--json", "--verbose", "--junit", str(cli.work / "apply.xml"))
    assert r.returncode == 0, text(r)[-4000:]
    docs = json_lines(r.stdout)
    assert all("type" in d for d in docs)
    types = {d["type"] for d in docs}
    assert {"StepStarted", "ObjectApplied", "RolloutProgress", "CheckResult", "Result"} <= types
    res = result_of(r.stdout)
    assert res["exit_code"] == 0 and res["failed_checks"] == [] and res["verdict"].startswith("apply complete")
    assert r.stderr.strip() == "", r.stderr  # success with --json: stdout only
    secret_plans = [d for d in docs if d["type"] == "ObjectPlanned" and d["kind"] == "Secret"]
    assert secret_plans and all("masked" in " ".join(d["diff"]) for d in secret_plans)

    for args in (("--junit", str(cli.work / "v.xml"), "--report", str(cli.work / "v.md")), ("--report", str(cli.work / "v.json"))):
        r = cli.run("validate", "--json", *args)
        assert r.returncode == 0, text(r)[-3000:]
        res = result_of(r.stdout)
        assert res["exit_code"] == 0 and res["failed"] == []
    suites = ET.parse(cli.work / "v.xml").getroot()
    cases = suites.findall(".//testcase")
    assert len(cases) >= 18 and not suites.findall(".//failure")
    assert ET.parse(cli.work / "apply.xml").getroot() is not None
    assert json.loads((cli.work / "v.json").read_text())["status"] == "ok"
    assert "# KeyBuzz validation: OK" in (cli.work / "v.md").read_text()
    assert secret_value(sb, "keybuzz-api-credentials", "DATABASE_URL") == cli.canary
    # the files the leak check (fixture teardown) reads include all of these
    for f in ("apply.xml", "v.xml", "v.md", "v.json", "keybuzz.yaml"):
        assert (cli.work / f).exists()
    assert cli.journal_path.exists() and cli.canary not in cli.journal_path.read_text()


# --- conflicts found before anything changes -------------------------------------------------------


def test_port_taken_probe_stops_before_the_rollout_and_without_probe_the_rollout_says_why(world):
    cli, sb = world("port-taken")
    r = cli.run("apply", "--yes", "--probe", "--json")
    assert r.returncode == 3, text(r)[-4000:]
    res = result_of(r.stdout)
    assert res["exit_code"] == 3
    (conflict,) = res["conflicts"]
    assert conflict["name"] == "hostPort/keybuzz-api" and conflict["port"] == 8080
    assert "k3s-worker-03" in conflict["nodes"] and "nginx" in conflict["detail"]
    assert 8081 in conflict["suggestions"] and "8081" in conflict["remediation"]
    assert "host process" in r.stderr and "(exit 3)" in r.stderr
    assert not namespace_exists(sb) and daemonsets(sb) == []
    assert cli.runs_of_journal() == []  # no run started: nothing to journal

    r = cli.run("apply", "--yes", "--timeout", "5")  # without --probe: Kubernetes cannot see the host process
    out = text(r)
    assert r.returncode == 1, out[-4000:]
    assert "CrashLoopBackOff" in out and "address already in use" in out
    diag = [ln for ln in r.stdout.splitlines() if ln.startswith("  ! keybuzz-api on k3s-worker-03")]
    assert diag and "CrashLoopBackOff" in diag[0] and "address already in use" in diag[0], r.stdout[-3000:]
    follow = r.stdout.splitlines()[r.stdout.splitlines().index(diag[0]) + 1]
    assert follow.strip().startswith("→") and "8080" in follow, follow
    assert "keybuzz-api: CrashLoopBackOff on k3s-worker-03" in r.stderr
    # every distinct line once: the BackOff event is counted up many times while we wait
    assert r.stdout.count("Warning BackOff") <= 1
    (run,) = cli.runs_of_journal()
    assert finished(run) == "failed"
    assert leases(sb) == []


def test_nodeport_taken_exits_3_naming_the_holder_before_anything_is_created(world):
    cli, sb = world("nodeport-taken")
    r = cli.run("apply", "--yes")
    out = text(r)
    assert r.returncode == 3, out[-4000:]
    assert "provided port is already allocated" in out and "monitoring/grafana" in out
    assert "30081" in out  # the nearest free NodePort is suggested
    assert "nothing was changed" in r.stderr
    nothing_changed(sb)


# --- rollouts that do not complete ---------------------------------------------------------------------


def test_image_pull_failure_names_image_pull_backoff_and_the_pull_error(world):
    cli, sb = world("image-pull-failure")
    r = cli.run("apply", "--yes", "--timeout", "4")
    out = text(r)
    assert r.returncode == 1, out[-4000:]
    assert "ImagePullBackOff" in out, out[-4000:]
    assert 'Failed to pull image "ghcr.io/keybuzz/api:1.4.2"' in out and "not found" in out
    assert "apps[].image" in out  # the remediation
    # the kubelet alternates ErrImagePull (a pull just failed) and ImagePullBackOff (waiting to retry):
    # the verdict names the states the timeout caught, as one cause
    assert re.search(r"keybuzz-api: (ErrImagePull/ImagePullBackOff|ImagePullBackOff|ErrImagePull) on k3s-worker-01", r.stderr), r.stderr
    # one diagnosis per app and cause, not one per worker
    assert sum(1 for ln in r.stdout.splitlines() if ln.startswith("  ! keybuzz-api on ")) == 1
    assert load_balancers(sb) == []  # stopped at the rollout


def test_node_notready_gives_a_degraded_rollout_and_failed_checks_naming_the_worker(world):
    cli, sb = world("node-notready")
    r = cli.run("apply", "--yes", "--json", "--timeout", "20")
    assert r.returncode == 1, r.stdout[-4000:]
    res = result_of(r.stdout)
    assert res["exit_code"] == 1 and res.get("rollout") == "degraded"
    assert "k8s.nodes" in res["failed_checks"]
    assert "k3s-worker-04" in res["verdict"] or any("k3s-worker-04" in json.dumps(d) for d in json_lines(r.stdout)
                                                     if d.get("check") == "k8s.nodes" and d.get("status") == "fail")
    nodes = [d for d in json_lines(r.stdout) if d.get("type") == "CheckResult" and d.get("check") == "k8s.nodes" and d["status"] == "fail"]
    assert nodes and "k3s-worker-04" in nodes[0]["detail"] and nodes[0]["remediation"]


# --- validation diagnoses ---------------------------------------------------------------------------


def test_vxlan_blocked_classic_install_validate_names_504_and_the_service_hop(world):
    cli, sb = world("vxlan-blocked")
    install_keybuzz_directly(sb, topology="classic")
    r = cli.run("validate", "--json")
    assert r.returncode == 1, r.stdout[-4000:]
    res = result_of(r.stdout)
    assert "ingress.routing" in res["failed"]
    routing = [d for d in json_lines(r.stdout) if d.get("type") == "CheckResult" and d.get("check") == "ingress.routing" and d["status"] == "fail"]
    assert routing and "504" in routing[0]["detail"] and routing[0]["remediation"]
    firsts = [hop for host in HOSTS for hop in res["first_broken"][host].values()]
    assert "service" in firsts, res["first_broken"]

    r = cli.run("validate")
    assert r.returncode == 1
    trace = [ln for ln in r.stdout.splitlines() if "first broken hop service from" in ln]
    assert trace and any(h in trace[0] for h in HOSTS), r.stdout[-3000:]
    assert "ingress.routing" in r.stderr and "(exit 1)" in r.stderr


def test_lb_target_unhealthy_validate_names_the_worker(world):
    cli, sb = world("lb-target-unhealthy")
    r = cli.run("apply", "--yes")
    assert r.returncode == 1, text(r)[-4000:]
    assert "lb.targets-healthy" in r.stderr
    r = cli.run("validate")
    assert r.returncode == 1, text(r)[-3000:]
    line = next(ln for ln in r.stdout.splitlines() if "lb.targets-healthy" in ln)
    assert line.lstrip().startswith("✗") and "k3s-worker-02" in line
    after = r.stdout.splitlines()[r.stdout.splitlines().index(line) + 1]
    assert after.strip().startswith("→") and "31695" in after  # the remediation, right below


# --- credentials and permissions: refused before anything changes -------------------------------------


def test_a_wrong_hetzner_token_exits_4_before_anything_is_changed(world, tmp_path):
    cli, sb = world("healthy")
    wrong = tmp_path / "work" / "sb-wrong-token"
    shutil.copytree(sb.state_dir, wrong)
    bad_token = "hc_wrong" + "x7" * 30
    env_file = wrong / "hcloud.env"
    env_file.write_text(env_file.read_text().replace(hcloud_token_of(sb.state_dir), bad_token))
    r = cli.run("apply", "--yes", sandbox=wrong)
    out = text(r)
    assert r.returncode == 4, out[-3000:]
    assert "wrong" in out and "401 unauthorized" in out and "Read & Write" in out
    assert bad_token not in out
    nothing_changed(sb)
    env_file.unlink()  # the leak check: only the sandbox's own hcloud.env may hold a token


def test_a_read_only_hetzner_token_exits_4_before_anything_is_changed(world):
    cli, sb = world("hetzner-readonly-token")
    r = cli.run("apply", "--yes", "--json")
    assert r.returncode == 4, r.stdout[-3000:]
    res = result_of(r.stdout)
    assert res["token_status"] == "read-only" and "read-only" in res["verdict"] and "Read & Write" in res["remediation"]
    nothing_changed(sb)


def test_a_restricted_kube_user_exits_4_listing_the_missing_permissions(world):
    cli, sb = world("restricted-rbac")
    r = cli.run("apply", "--yes", "--json", "--context", "keybuzz-sandbox-keybuzz-viewer")
    assert r.returncode == 4, r.stdout[-3000:]
    res = result_of(r.stdout)
    assert "create namespaces (core) cluster-wide" in res["missing"]
    assert "create daemonsets (apps) in namespace keybuzz" in res["missing"]
    assert "create daemonsets (apps) in namespace keybuzz" in r.stderr
    perms = [d for d in json_lines(r.stdout) if d.get("check") == "k8s.permissions"]
    assert perms and perms[0]["status"] == "fail" and "cluster-admin" in perms[0]["remediation"]
    nothing_changed(sb)


def test_a_missing_entered_secret_exits_4_with_the_fix(world):
    cli, sb = world("healthy")
    for cmd in (("apply", "--yes"), ("plan",)):
        r = cli.run(*cmd, canary=False)
        out = text(r)
        assert r.returncode == 4, out[-3000:]
        assert "credentials set app/keybuzz-api/DATABASE_URL" in out and DB_ENV in out
    nothing_changed(sb)


# --- unreachable clusters and bad answers files -----------------------------------------------------


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_an_unreachable_cluster_exits_5_with_a_clear_message(bare):
    kc = bare.work / "kubeconfig"
    kc.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: gone\n"
        f"clusters: [{{name: gone, cluster: {{server: 'https://127.0.0.1:{_closed_port()}', insecure-skip-tls-verify: true}}}}]\n"
        "users: [{name: u, user: {token: nothing}}]\n"
        "contexts: [{name: gone, context: {cluster: gone, user: u}}]\n"
    )
    r = bare.run("config", "init", "--config", str(bare.config), "--profile", bare.profile)
    assert r.returncode == 0
    for cmd in (("apply", "--yes"), ("plan",), ("apply", "--yes", "--json")):
        t0 = time.monotonic()
        r = bare.run(*cmd, env={"KUBECONFIG": str(kc)}, timeout=60)
        assert r.returncode == 5, text(r)[-2000:]
        assert "cannot reach the Kubernetes API" in r.stderr and "nothing was changed" in r.stderr
        assert time.monotonic() - t0 < 30
    assert result_of(r.stdout)["exit_code"] == 5
    r = bare.run("validate", env={"KUBECONFIG": str(kc)}, timeout=60)
    assert r.returncode == 5 and "cannot reach the Kubernetes API" in r.stderr, text(r)[-2000:]


def test_an_invalid_answers_file_exits_2_with_file_line_field_message(bare):
    bad = bare.work / "bad.yaml"
    bad.write_text("profile: fine\nnamespace: Bad_NS\napps: 3\n")
    for cmd in (("apply", "--yes"), ("plan",), ("validate",)):
        r = bare.run(*cmd, "--config", str(bad), config=False)
        assert r.returncode == 2, text(r)
        assert "bad.yaml:2: namespace:" in r.stderr and "bad.yaml:3: apps:" in r.stderr, r.stderr
    r = bare.run("plan", "--json", "--config", str(bad), config=False)
    assert r.returncode == 2 and result_of(r.stdout)["exit_code"] == 2 and "bad.yaml:2: namespace:" in r.stderr
    bad.write_text("namespace: [unclosed\n")
    r = bare.run("apply", "--yes", "--config", str(bad), config=False)
    assert r.returncode == 2 and "bad.yaml:" in r.stderr, r.stderr


# --- Ctrl-C and the platform lock ---------------------------------------------------------------------


def _read_until(p: Any, pred: Any, timeout: float = 60.0) -> list[str]:
    """stdout lines of `p` until one satisfies pred (or the process ends / the deadline passes)."""
    lines: list[str] = []
    end = time.monotonic() + timeout
    assert p.stdout is not None
    while time.monotonic() < end:
        line = p.stdout.readline()
        if not line:
            break
        lines.append(line)
        if pred(line):
            return lines
    raise AssertionError("never saw the expected line; got:\n" + "".join(lines[-40:]))


def test_ctrl_c_during_the_rollout_exits_130_and_a_rerun_converges(world):
    cli, sb = world("healthy", speed=6)  # a slower world: the rollout lasts long enough to interrupt
    p = cli.popen("apply", "--yes", "--json")
    try:
        seen = _read_until(p, lambda ln: '"type": "PodProgress"' in ln)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    out = "".join(seen) + out
    cli.keep(out, err, ("apply", "--yes", "--json"))
    assert p.returncode == 130, err[-3000:]
    res = result_of(out)
    assert res["exit_code"] == 130 and res["interrupted"] is True
    (run,) = cli.runs_of_journal()
    assert finished(run) == "interrupted"
    assert any(e["event"] == "object-applied" for e in run)
    assert leases(sb) == []  # the lock is released on cancel too

    r = cli.run("apply", "--yes")
    assert r.returncode == 0, text(r)[-4000:]
    assert "✓ validate: 18 checks: 18 ok" in r.stdout
    assert finished(cli.runs_of_journal()[-1]) == "ok"


def test_two_concurrent_applies_one_holds_the_lock_the_other_exits_3_naming_it(world):
    cli, sb = world("healthy", speed=10)
    a = cli.popen("apply", "--yes")
    try:
        seen = _read_until(a, lambda ln: "platform lock held" in ln)
        b = cli.run("apply", "--yes")
        out_a, err_a = a.communicate(timeout=120)
    finally:
        if a.poll() is None:
            a.kill()
    cli.keep("".join(seen) + out_a, err_a, ("apply", "--yes"))
    assert b.returncode == 3, text(b)[-3000:]
    assert f"the platform lock is held by {_user_host()}" in text(b) and f"pid {a.pid}" in text(b)
    assert "wait until it finishes" in text(b)
    assert a.returncode == 0, (out_a + err_a)[-4000:]
    assert [finished(r) for r in cli.runs_of_journal()] == ["ok"]  # B never started a run
    assert leases(sb) == []


def _user_host() -> str:
    import getpass

    return f"{getpass.getuser()}@{socket.gethostname()}"


def _set_lease(sb: Any, holder: str, renewed_ago: float) -> None:
    from kubernetes import client

    when = (datetime.now(UTC) - timedelta(seconds=renewed_ago)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    body = {
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "keybuzz-tui-lock", "namespace": "kube-system", "labels": {"app.kubernetes.io/managed-by": "keybuzz-tui"}},
        "spec": {"holderIdentity": holder, "acquireTime": when, "renewTime": when, "leaseDurationSeconds": 120, "leaseTransitions": 0},
    }
    api = sb.kube_client()
    try:
        coord = client.CoordinationV1Api(api)
        try:
            coord.delete_namespaced_lease("keybuzz-tui-lock", "kube-system")
        except client.ApiException as e:
            if e.status != 404:
                raise
        coord.create_namespaced_lease("kube-system", body)
    finally:
        api.close()


def test_a_live_lock_is_never_taken_over_and_a_stale_one_only_on_request(world):
    cli, sb = world("healthy")
    ghost = "ghost@old-host pid 4242"
    _set_lease(sb, ghost, renewed_ago=5)
    r = cli.run("apply", "--yes", "--take-over-stale-lock")
    assert r.returncode == 3, text(r)[-3000:]
    assert f"the platform lock is held by {ghost}" in text(r)
    assert not namespace_exists(sb)

    _set_lease(sb, ghost, renewed_ago=600)  # its run crashed ten minutes ago
    r = cli.run("apply", "--yes")
    assert r.returncode == 3, text(r)[-3000:]
    assert f"the platform lock was held by {ghost}" in text(r) and "stale" in text(r)
    assert "--take-over-stale-lock" in text(r)
    r = cli.run("apply", "--take-over-stale-lock")  # no --yes and no terminal to ask: not taken over
    assert r.returncode == 3, text(r)[-3000:]
    assert not namespace_exists(sb)

    r = cli.run("apply", "--yes", "--take-over-stale-lock")
    assert r.returncode == 0, text(r)[-4000:]
    assert f"took over the stale platform lock of {ghost}" in r.stdout
    taken = [e for e in cli.journal() if e["event"] == "lock-taken-over"]
    assert taken and taken[0]["previous"] == ghost
    wait_for(lambda: leases(sb) == [], 5, what="the lock released")
