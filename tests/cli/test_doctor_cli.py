"""`keybuzz-tui doctor`: the installed command against running sandboxes, its output and its exit
codes (0 no problem, 1 problems found, 2 usage, 4 credentials, 5 unreachable, 130 interrupted),
and nothing secret in what it prints."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from support import engine_fixtures as ef
from support import sandboxes

from keybuzz_tui.engine.doctor_overlay import PROBE_NAMESPACE, PROBE_SELECTOR
from keybuzz_tui.sandbox.runtime import Sandbox, free_net

EXE = str(Path(sys.executable).with_name("keybuzz-tui"))
CANARY = "canary-cli-doctor-" + secrets.token_hex(10)


def start_world(tmp_path_factory, scenario: str, name: str) -> Sandbox:
    net = free_net(random.SystemRandom().randint(2, 250))
    return Sandbox(tmp_path_factory.mktemp(name), scenario, net=net, speed=sandboxes.TEST_SPEED).start()


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HCLOUD_", "KEYBUZZ_SECRET_", "KUBECONFIG"))}
    env.update(KEYBUZZ_STATE_DIR=str(tmp_path / "state"), PYTHONUNBUFFERED="1")
    return env


def doctor(tmp_path: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EXE, "doctor", *args], capture_output=True, text=True, timeout=timeout, cwd=tmp_path, env=_env(tmp_path))


def probe_pods(sb: Sandbox) -> list[str]:
    api = sb.kube_client()
    try:
        return [p.metadata.name for p in client.CoreV1Api(api).list_namespaced_pod(PROBE_NAMESPACE, label_selector=PROBE_SELECTOR).items]
    finally:
        api.close()


def result_line(stdout: str) -> dict:
    lines = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    assert lines and lines[-1]["type"] == "Result", stdout[-2000:]
    return lines[-1]


def copy_sandbox_dir(sb: Sandbox, dest: Path, *, server: str | None = None, token: str | None = None) -> Path:
    """The sandbox's client files with a broken kubeconfig (another server address, another token)."""
    dest.mkdir(parents=True)
    for name in ("sandbox.json", "hcloud.env", "ca.pem"):
        shutil.copy(sb.state_dir / name, dest / name)
    kc = yaml.safe_load((sb.state_dir / "kubeconfig").read_text())
    if server is not None:
        kc["clusters"][0]["cluster"]["server"] = server
    if token is not None:
        kc["users"][0]["user"]["token"] = token
    (dest / "kubeconfig").write_text(yaml.safe_dump(kc))
    return dest


@pytest.fixture(scope="module")
def outage(tmp_path_factory):
    sb = start_world(tmp_path_factory, "outage", "cli-doctor-outage")
    try:
        ef.wait_pods_ready(sb, 2)
        yield sb
    finally:
        sb.stop()


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    sb = start_world(tmp_path_factory, "healthy", "cli-doctor-healthy")
    try:
        ef.install_keybuzz_directly(sb)
        api = sb.kube_client()
        try:
            client.CoreV1Api(api).create_namespaced_secret("keybuzz", {
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "keybuzz-api-credentials", "namespace": "keybuzz", "labels": dict(ef.PART_OF)},
                "data": {"JWT_SECRET": base64.b64encode(CANARY.encode()).decode()}})
        finally:
            api.close()
        yield sb
    finally:
        sb.stop()


def test_outage_exits_1_with_the_diagnosis_and_writes_the_report(outage, tmp_path):
    r = doctor(tmp_path, "--sandbox", str(outage.state_dir), "--report", str(tmp_path / "doctor.md"))
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr
    out = r.stdout
    assert "✗ overlay.pod-to-pod" in out and "wget: download timed out" in out
    assert "Diagnosis (1 cause, most important first):" in out
    assert ("Cause: the overlay network is broken and KeyBuzz still runs in the classic topology (Deployments behind ClusterIP "
            "Services): ingress-nginx cannot reach the pods on other nodes → 504 Gateway Time-out. Fix: move the apps to "
            "hostNetwork DaemonSets (keybuzz-tui repair).") in out
    assert "Next: keybuzz-tui repair" in out
    assert "Traceback" not in r.stderr
    md = (tmp_path / "doctor.md").read_text()
    assert md.startswith("# KeyBuzz doctor: FAIL") and "nc: timed out" in md and "## Probe pods" in md and "all deleted" in md
    assert probe_pods(outage) == []


def test_json_lines_end_with_the_result(outage, tmp_path):
    r = doctor(tmp_path, "--sandbox", str(outage.state_dir), "--json", "--skip", "hetzner.quotas", "--report", str(tmp_path / "r.json"))
    assert r.returncode == 1, r.stderr
    events = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    checks = {e["check"]: e for e in events if e.get("type") == "CheckResult" and e["status"] not in ("running", "pending")}
    assert checks["overlay.coredns"]["status"] == "fail" and checks["overlay.coredns"]["layer"] == "overlay"
    assert checks["hetzner.quotas"]["status"] == "skip"
    assert {e["step"] for e in events if e.get("type") == "CheckResult"} == {"doctor"}
    res = result_line(r.stdout)
    assert res["exit_code"] == 1 and res["diagnosis"]["causes"][0]["id"] == "overlay-classic"
    assert res["skipped_on_request"] == ["hetzner.quotas"] and "overlay.pod-to-pod" in res["failed"]
    assert res["probe"]["cleanup"] == "ok" and len(res["probe"]["pods"]) == 2
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["kind"] == "doctor" and rep["diagnosis"]["topology"] == "classic"
    skipped = next(c for c in rep["checks"] if c["check"] == "hetzner.quotas")
    assert skipped["detail"] == "skipped on purpose (--skip hetzner.quotas): not checked"


def test_a_healthy_install_exits_0_and_leaks_nothing(installed, tmp_path):
    token = installed.hcloud_token
    r = doctor(tmp_path, "--sandbox", str(installed.state_dir))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    assert "Diagnosis: no problem found, every check passed." in r.stdout
    r2 = doctor(tmp_path, "--sandbox", str(installed.state_dir), "--json", "--report", str(tmp_path / "r.md"))
    assert r2.returncode == 0 and result_line(r2.stdout)["exit_code"] == 0
    journal = (tmp_path / "state").rglob("*.jsonl")
    texts = [r.stdout, r.stderr, r2.stdout, r2.stderr, (tmp_path / "r.md").read_text()] + [p.read_text() for p in journal]
    for text in texts:
        assert token not in text
        assert CANARY not in text and base64.b64encode(CANARY.encode()).decode() not in text
    assert probe_pods(installed) == []


def test_no_probes_and_list(installed, tmp_path):
    r = doctor(tmp_path, "--sandbox", str(installed.state_dir), "--no-probes", "--only", "k8s.api,overlay")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "--no-probes" in r.stdout and "The overlay was not tested (--no-probes)." in r.stdout
    r = doctor(tmp_path, "--list")
    assert r.returncode == 0
    for cid in ("k8s.permissions", "overlay.pod-to-pod", "hetzner.quotas", "dns.records", "platform.request-path"):
        assert cid in r.stdout


def test_usage_errors_exit_2(tmp_path):
    r = doctor(tmp_path, "--skip", "overlay.nope")
    assert r.returncode == 2 and "unknown check(s): overlay.nope" in r.stderr and "overlay.pod-to-pod" in r.stderr
    r = doctor(tmp_path, "--sandbox", str(tmp_path / "nowhere"))
    assert r.returncode == 2 and "--sandbox" in r.stderr and "Traceback" not in r.stderr
    r = doctor(tmp_path, "--expected-workers", "0")
    assert r.returncode == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("namespace: Bad_NS\n")
    r = doctor(tmp_path, "--config", str(bad))
    assert r.returncode == 2 and "bad.yaml:1: namespace" in r.stderr


def test_unreachable_cluster_exits_5(installed, tmp_path):
    host = yaml.safe_load((installed.state_dir / "kubeconfig").read_text())["clusters"][0]["cluster"]["server"].split("//")[1].split(":")[0]
    d = copy_sandbox_dir(installed, tmp_path / "sb", server=f"https://{host}:1")
    r = doctor(tmp_path, "--sandbox", str(d), "--no-probes")
    assert r.returncode == 5, r.stdout[-3000:] + r.stderr
    assert "✗ k8s.api" in r.stdout and "cannot be reached" in r.stdout
    assert "The Kubernetes API cannot be reached" in r.stdout  # the diagnosis
    assert "✓ hetzner.lb" in r.stdout  # what could be checked was


def test_refused_credentials_exit_4(installed, tmp_path):
    d = copy_sandbox_dir(installed, tmp_path / "sb", token="wrong-" + secrets.token_hex(8))
    r = doctor(tmp_path, "--sandbox", str(d), "--no-probes")
    assert r.returncode == 4, r.stdout[-3000:] + r.stderr
    assert "401" in r.stdout and "refuses the kubeconfig's credentials" in r.stdout


def test_an_unusable_kubeconfig_exits_2(tmp_path):
    env = _env(tmp_path)
    env["KUBECONFIG"] = str(tmp_path / "no-such-kubeconfig")
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"  # no keyring either: said, not crashed
    r = subprocess.run([EXE, "doctor", "--no-probes", "--only", "k8s,hetzner.token"], capture_output=True, text=True, timeout=60,
                       cwd=tmp_path, env=env)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "✗ k8s.api" in r.stdout and "cannot use the kubeconfig" in r.stdout and "The kubeconfig cannot be used" in r.stdout
    assert "✗ hetzner.token" in r.stdout and "Traceback" not in r.stderr
    # only the Hetzner side asked, and no token to ask with: nothing could be checked -> 4
    r = subprocess.run([EXE, "doctor", "--no-probes", "--only", "hetzner"], capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env)
    assert r.returncode == 4, r.stdout + r.stderr
    assert "The Hetzner API token is missing" in r.stdout and "no usable OS keyring" in r.stdout


def test_ctrl_c_in_the_middle_of_the_probe_exits_130_and_leaves_no_pod(tmp_path_factory, tmp_path):
    sb = start_world(tmp_path_factory, "healthy", "cli-doctor-sigint")
    try:
        kubelet = sb.cluster.manager.controllers["kubelet"]

        def slow() -> None:  # image pulls take ~40 s (real) from now: the probe waits for its server pod
            kubelet.t = dataclasses.replace(kubelet.t, pull_seconds=1000.0)

        sb.call(slow)
        p = subprocess.Popen([EXE, "doctor", "--sandbox", str(sb.state_dir)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, cwd=tmp_path, env=_env(tmp_path))
        try:
            ef.wait_for(lambda: probe_pods(sb), 60, 0.05, "a probe pod")
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=30)
        finally:
            if p.poll() is None:
                p.kill()
                p.communicate()
        assert p.returncode == 130, out[-3000:] + err
        assert "Doctor interrupted" in out and "Traceback" not in err
        assert probe_pods(sb) == []
    finally:
        sb.stop()
