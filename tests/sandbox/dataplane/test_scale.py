"""Above 50 nodes the data plane opens no per-node socket and says so in sandbox.json."""

from __future__ import annotations

import json

from sandbox.dataplane import harness as h


def test_large_cluster_disables_the_dataplane(tmp_path):
    sb = h.start(tmp_path / "big", workers=60)
    try:
        info = json.loads(sb.info_path.read_text())
        assert info["dataplane"] == "disabled (63 nodes)"
        assert sb.dataplane.enabled is False and not sb.dataplane.kube_proxy.listeners
        ip = h.node_ip(sb, "k3s-worker-01")
        assert h.port_free(ip, 31695)  # nobody holds the ingress NodePort on the node address
        # bookkeeping still works: a hostNetwork DaemonSet runs, `ss` sees it, no socket is opened
        h.create(sb, [h.namespace("keybuzz"), h.hostnet_daemonset("keybuzz-api", h.API_IMAGE, 8080)])
        h.wait_ready(sb, "keybuzz", "app=keybuzz-api", 60, timeout=60)
        rows = sb.call(sb.dataplane.listening, "k3s-worker-07")
        assert any(port == 8080 for _ip, port, _p, _h in rows)
        assert h.port_free(ip, 8080)
    finally:
        sb.stop()
