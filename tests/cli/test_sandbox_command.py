"""`keybuzz-tui sandbox`: serves until a signal, writes what clients need, exits 0."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from keybuzz_tui.sandbox.runtime import free_net

EXE = str(Path(sys.executable).with_name("keybuzz-tui"))


def start(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen[str], str]:
    # `--net auto`: the child reserves a free network itself (picking one here and handing it over
    # would race with the other xdist worker doing the same)
    p = subprocess.Popen(
        [EXE, "sandbox", "--state-dir", str(tmp_path), "--net", "auto", "--speed", "20", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 60
    assert p.stdout is not None
    first = p.stdout.readline()
    assert "ready" in first, (first, p.stderr.read() if p.poll() is not None else "")
    assert time.monotonic() < deadline
    return p, first


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serves_writes_files_and_exits_zero_on_signal(tmp_path, sig):
    p, first = start(tmp_path)
    try:
        kc = yaml.safe_load((tmp_path / "kubeconfig").read_text())
        assert (tmp_path / "kubeconfig").stat().st_mode & 0o777 == 0o600
        cluster = kc["clusters"][0]["cluster"]
        assert cluster["server"].startswith("https://127.") and cluster["certificate-authority-data"]
        assert kc["users"][0]["user"]["token"]
        assert (tmp_path / "ca.pem").read_text().startswith("-----BEGIN CERTIFICATE-----")
        info = json.loads((tmp_path / "sandbox.json").read_text())
        assert info["kubernetes"]["url"] == cluster["server"]
        assert [n["name"] for n in info["nodes"]][:1] == ["k3s-master-01"]
        assert cluster["server"] in first
    finally:
        p.send_signal(sig)
        out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    assert "sandbox stopped" in out


def test_the_written_kubeconfig_works_with_the_official_client(tmp_path):
    p, _ = start(tmp_path, "--scenario", "node-notready")
    try:
        from kubernetes import client, config

        api = config.new_client_from_config(str(tmp_path / "kubeconfig"))
        nodes = {n.metadata.name: n for n in client.CoreV1Api(api).list_node().items}
        ready = next(c for c in nodes["k3s-worker-04"].status.conditions if c.type == "Ready")
        assert ready.status == "Unknown" and ready.message == "Kubelet stopped posting node status."
    finally:
        p.terminate()
        p.communicate(timeout=30)
    assert p.returncode == 0


def test_unknown_scenario_is_a_usage_error(tmp_path):
    r = subprocess.run([EXE, "sandbox", "--state-dir", str(tmp_path), "--scenario", "nope"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "unknown scenario 'nope'" in r.stderr and "healthy" in r.stderr


def test_list_scenarios(tmp_path):
    r = subprocess.run([EXE, "sandbox", "--list"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0
    for name in ("healthy", "port-taken", "nodeport-taken", "image-pull-failure", "node-notready", "restricted-rbac", "flaky-api", "scale"):
        assert name in r.stdout


def test_a_second_sandbox_on_the_same_net_is_refused_clearly(tmp_path):
    from keybuzz_tui.sandbox.runtime import Sandbox, SandboxError

    net = free_net(180)
    with Sandbox(tmp_path / "a", "healthy", net=net, speed=20):
        with pytest.raises(SandboxError, match=f"127.{net}.x.x is in use by another sandbox"):
            Sandbox(tmp_path / "b", "healthy", net=net)
        r = subprocess.run([EXE, "sandbox", "--state-dir", str(tmp_path / "c"), "--net", str(net)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and "in use by another sandbox" in r.stderr


def test_net_is_a_number_or_auto(tmp_path: Path):
    for bad, why in (("300", "outside 0-254"), ("x", "neither a number")):
        r = subprocess.run([EXE, "sandbox", "--state-dir", str(tmp_path), "--net", bad], capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and why in r.stderr, r.stderr
