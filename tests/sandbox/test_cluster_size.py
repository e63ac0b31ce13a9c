"""`keybuzz-tui sandbox --workers N --servers N`, driven as a subprocess like an operator would,
and scenarios that name a node the chosen cluster size does not have (refused, exit 2)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from keybuzz_tui.sandbox import scenarios
from keybuzz_tui.sandbox.runtime import free_net, release_net

EXE = str(Path(sys.executable).with_name("keybuzz-tui"))


def command(state_dir: Path, *extra: str) -> list[str]:
    net = free_net(180)
    release_net(net)  # the child process reserves it for itself
    return [EXE, "sandbox", "--state-dir", str(state_dir), "--net", str(net), "--speed", "20", *extra]


def test_workers_and_servers_size_the_whole_world(tmp_path):
    p = subprocess.Popen(command(tmp_path, "--workers", "2", "--servers", "1"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout is not None
        first = p.stdout.readline()
        assert "sandbox ready: scenario healthy" in first, (first, p.stderr.read() if p.poll() is not None else "")
        info = json.loads((tmp_path / "sandbox.json").read_text())
        assert [(n["name"], n["role"]) for n in info["nodes"]] == [
            ("k3s-master-01", "server"), ("k3s-worker-01", "worker"), ("k3s-worker-02", "worker"),
        ]
        assert info["node_count"] == 3

        from kubernetes import client, config

        api = config.new_client_from_config(str(tmp_path / "kubeconfig"))
        core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
        nodes = {n.metadata.name: n for n in core.list_node().items}
        assert sorted(nodes) == ["k3s-master-01", "k3s-worker-01", "k3s-worker-02"]
        assert "node-role.kubernetes.io/control-plane" in nodes["k3s-master-01"].metadata.labels
        # ingress-nginx runs on the two workers only
        deadline = time.monotonic() + 30
        while (ds := apps.read_namespaced_daemon_set("ingress-nginx-controller", "ingress-nginx")).status.number_ready != 2:
            assert time.monotonic() < deadline, ds.status
            time.sleep(0.1)
        assert ds.status.desired_number_scheduled == 2
        api.close()

        env = dict(line.split("=", 1) for line in (tmp_path / "hcloud.env").read_text().splitlines() if "=" in line and not line.startswith("#"))
        import hcloud

        hc = hcloud.Client(env["HCLOUD_TOKEN"], api_endpoint=env["HCLOUD_ENDPOINT"], timeout=10)
        hc._client._session.trust_env = False
        servers = {s.name: s for s in hc.servers.get_all()}
        assert sorted(servers) == ["k3s-master-01", "k3s-worker-01", "k3s-worker-02"]
        assert servers["k3s-worker-02"].private_net[0].ip == next(n["internal_ip"] for n in info["nodes"] if n["name"] == "k3s-worker-02")
    finally:
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--scenario", "port-taken", "--workers", "2"),
         "scenario port-taken: host_processes[0].node is k3s-worker-03, which a cluster of 3 server(s) and 2 worker(s) does not have; start it with --workers 3 or more"),
        (("--scenario", "node-notready", "--workers", "3"), "not_ready_nodes[0] is k3s-worker-04"),
        (("--servers", "0"), "--servers must be between 1 and 50, got 0"),
    ],
)
def test_a_scenario_the_cluster_size_breaks_is_refused(tmp_path, args, fragment):
    r = subprocess.run(command(tmp_path, *args), capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stderr.startswith("keybuzz-tui: sandbox: ") and fragment in r.stderr
    assert "ready" not in r.stdout and not (tmp_path / "kubeconfig").exists()


@pytest.mark.parametrize(
    ("name", "workers", "servers", "fragment"),
    [
        ("port-taken", 3, None, None),
        ("port-taken", 2, None, "--workers 3 or more"),
        ("node-notready", 4, None, None),
        ("node-notready", 1, None, "not_ready_nodes[0] is k3s-worker-04"),
        ("lb-target-unhealthy", 1, None, "dataplane.ufw_deny[0].node is k3s-worker-02"),
        ("healthy", 0, 1, None),
        ("healthy", -1, None, "--workers must be between 0 and 5000, got -1"),
    ],
)
def test_scenario_node_references_are_checked_against_the_cluster_size(name, workers, servers, fragment):
    if fragment is None:
        sc = scenarios.load(name, workers=workers, servers=servers)
        assert sc.workers == workers
    else:
        with pytest.raises(scenarios.ScenarioError) as e:
            scenarios.load(name, workers=workers, servers=servers)
        assert fragment in str(e.value)


def test_a_misspelt_node_is_named_with_the_naming_scheme(tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text("extends: healthy\nhost_processes:\n  - {node: worker-3, port: 8080}\n")
    with pytest.raises(scenarios.ScenarioError, match=r"host_processes\[0\]\.node is worker-3, .* nodes are named like k3s-master-01, k3s-worker-01"):
        scenarios.load(str(path))


def test_preinstalled_load_balancer_targets_are_checked_too(tmp_path):
    path = tmp_path / "outage-07.yaml"
    path.write_text(
        "extends: outage\n"
        "install:\n"
        "  load_balancer:\n"
        "    targets:\n"
        "      - {server: k3s-worker-07, use_private_ip: true}\n"
    )
    with pytest.raises(scenarios.ScenarioError, match=r"install\.load_balancer\.targets\[0\]\.server is k3s-worker-07, .*--workers 7 or more"):
        scenarios.load(str(path))
    assert scenarios.load(str(path), workers=7).workers == 7
