"""The port-conflict scan under the scale scenario, against kubectl on the same world in one run.

Issue 4 asks the scan to be no slower than `kubectl get pods,svc,ds,deploy,sts -A -o json` (what
an operator would run to look for taken ports by hand) and to report its API requests per scan.
Both are timed on the same sandbox (1,000 nodes, 20,000 pods, 5,000 services), as the median of a
few runs; the request counts come from the sandbox server's own counter, not from the client.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import tempfile
import time
from typing import Any

from keybuzz_tui.config import Config
from keybuzz_tui.engine import ports
from keybuzz_tui.engine.context import Context, Endpoints
from keybuzz_tui.sandbox.kube import registry
from keybuzz_tui.sandbox.runtime import Sandbox, free_net

KUBECTL_KINDS = "pods,svc,ds,deploy,sts"


def _median(fn: Any, repeat: int) -> tuple[float, list[float]]:
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples), samples


def run(scenario: str = "scale", repeat: int = 3) -> dict[str, Any]:
    out: dict[str, Any] = {"scenario": scenario, "repeat": repeat}
    with tempfile.TemporaryDirectory() as d, Sandbox(d, scenario, net=free_net(170), speed=50) as sb:
        store = sb.cluster.store
        out["nodes"] = store.count(registry.core("nodes"))
        out["pods"] = store.count(registry.core("pods"))
        out["services"] = store.count(registry.core("services"))
        stats = sb.kube_server.stats
        ctx = Context(Config(), Endpoints.from_sandbox(d))
        try:
            ports.scan(ctx)  # warm-up: client construction, TLS session, imports
            stats.reset()
            results: list[ports.PortInventory] = []
            out["scan_s"], samples = _median(lambda: results.append(ports.scan(ctx)), repeat)
            out["scan_samples_s"] = [round(s, 3) for s in samples]
            out["scan_requests_server"] = stats.requests / repeat
            out["scan_requests_client"] = results[-1].requests
            out["scan_server_list_s"] = round(sum(stats.samples.get("LIST", ())) / repeat, 3)
            inv = results[-1]
            out["taken_ports"] = len(inv.taken)
            out["holders_with_host_ports"] = sum(1 for t in inv.taken if t.space == "node" and t.category in ("workload", "ingress"))
            out["nodeport_holders"] = sum(1 for t in inv.taken if t.space == "nodeport")
            t = time.perf_counter()
            checks = ports.check(ctx.config, inv)
            out["check_s"] = round(time.perf_counter() - t, 4)
            out["check_statuses"] = {c.name: c.status for c in checks}
        finally:
            ctx.close()
        if shutil.which("kubectl"):
            kc = ["kubectl", f"--kubeconfig={sb.kubeconfig_path}", f"--cache-dir={d}/kc"]
            cmd = [*kc, "get", KUBECTL_KINDS, "-A", "-o", "json"]
            subprocess.run(cmd, capture_output=True, check=True)  # warm-up: discovery cache
            stats.reset()
            out["kubectl_s"], samples = _median(lambda: subprocess.run(cmd, capture_output=True, check=True), repeat)
            out["kubectl_samples_s"] = [round(s, 3) for s in samples]
            out["kubectl_requests_server"] = stats.requests / repeat
            out["scan_vs_kubectl"] = round(out["scan_s"] / out["kubectl_s"], 3)
            out["goal_no_slower_than_kubectl"] = out["scan_s"] <= out["kubectl_s"]
        else:
            out["kubectl_s"] = None
            out["note"] = "kubectl not found: no baseline"
        out["scan_s"] = round(out["scan_s"], 3)
        if out.get("kubectl_s"):
            out["kubectl_s"] = round(out["kubectl_s"], 3)
    return out


def main() -> None:
    print(json.dumps({"ports_scan": run()}, indent=2))


if __name__ == "__main__":
    main()
