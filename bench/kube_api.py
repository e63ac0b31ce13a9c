"""The sandbox Kubernetes API under the scale scenario (1,000 nodes, 20,000 pods, 5,000 services).

Reports, in one run: how long the official client and kubectl take to list every pod and every
service, how much of that is the sandbox's own server time (the share must stay small: the
sandbox must never be the bottleneck of a later benchmark), and server-side latency p50/p99 for
GET, LIST and WATCH set-up.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import tempfile
import time
from typing import Any

from keybuzz_tui.sandbox.kube import registry
from keybuzz_tui.sandbox.runtime import Sandbox, free_net


def _timed(fn: Any, repeat: int = 3) -> float:
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def run(scenario: str = "scale") -> dict[str, Any]:
    from kubernetes import client

    out: dict[str, Any] = {"scenario": scenario}
    with tempfile.TemporaryDirectory() as d, Sandbox(d, scenario, net=free_net(150), speed=50) as sb:
        stats = sb.kube_server.stats
        core = client.CoreV1Api(sb.kube_client())
        out["pods"] = sb.cluster.store.count(registry.core("pods"))
        out["services"] = sb.cluster.store.count(registry.core("services"))
        out["nodes"] = sb.cluster.store.count(registry.core("nodes"))
        # the official client, typed (pydantic) and raw
        stats.reset()
        out["client_list_pods_typed_s"] = _timed(lambda: core.list_pod_for_all_namespaces(), 2)
        typed_server = sum(stats.samples["LIST"])
        out["server_share_of_typed_list"] = typed_server / (out["client_list_pods_typed_s"] * 2)
        stats.reset()
        out["client_list_pods_raw_s"] = _timed(lambda: core.list_pod_for_all_namespaces(_preload_content=False).data)
        out["server_list_pods_s"] = statistics.median(stats.samples["LIST"])
        out["client_list_services_s"] = _timed(lambda: core.list_service_for_all_namespaces())
        # kubectl, as an operator would run it
        if shutil.which("kubectl"):
            kc = ["kubectl", f"--kubeconfig={sb.kubeconfig_path}", f"--cache-dir={d}/kc"]
            stats.reset()
            out["kubectl_get_pods_json_s"] = _timed(lambda: subprocess.run([*kc, "get", "pods", "-A", "-o", "json"], capture_output=True, check=True), 2)
            out["server_share_of_kubectl"] = sum(stats.samples["LIST"]) / (out["kubectl_get_pods_json_s"] * 2)
            out["kubectl_get_pods_table_s"] = _timed(lambda: subprocess.run([*kc, "get", "pods", "-A"], capture_output=True, check=True), 2)
            out["kubectl_get_svc_table_s"] = _timed(lambda: subprocess.run([*kc, "get", "svc", "-A"], capture_output=True, check=True), 2)
        # server-side latency per verb on a realistic mix
        stats.reset()
        pods = core.list_namespaced_pod("team-001", limit=200).items
        for p in pods:
            core.read_namespaced_pod(p.metadata.name, "team-001")
        for i in range(50):
            core.list_namespaced_pod(f"team-{i:03d}")
            core.list_namespaced_service(f"team-{i:03d}", label_selector="app=app-000")
        import urllib3

        http = urllib3.PoolManager(ca_certs=str(sb.ca_path))
        rv = core.list_namespaced_config_map("default").metadata.resource_version
        for i in range(50):
            # the server times a watch's set-up (auth, selectors, backlog, headers); close at once
            r = http.request(
                "GET", f"{sb.kube_url}/api/v1/namespaces/team-{i:03d}/pods?watch=1&resourceVersion={rv}",
                headers={"Authorization": f"Bearer {sb.admin_token}"}, preload_content=False, retries=False,
            )
            r.close()
        for verb in ("GET", "LIST", "WATCH"):
            out[f"server_{verb.lower()}_p50_ms"] = round(1000 * (stats.quantile(verb, 0.5) or 0), 3)
            out[f"server_{verb.lower()}_p99_ms"] = round(1000 * (stats.quantile(verb, 0.99) or 0), 3)
            out[f"server_{verb.lower()}_n"] = len(stats.samples.get(verb, ()))
    return out


def main() -> None:
    res = run()
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
