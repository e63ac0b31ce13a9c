"""start_dataplane() exactly as runtime.py calls it: after KubeCluster(), before bootstrap()."""

from __future__ import annotations

from types import SimpleNamespace

import aiohttp
from sandbox.dataplane import harness as h

from keybuzz_tui.sandbox.addresses import Addresses
from keybuzz_tui.sandbox.clock import Clock
from keybuzz_tui.sandbox.dataplane import DataPlane, start_dataplane
from keybuzz_tui.sandbox.kube.cluster import KubeCluster
from keybuzz_tui.sandbox.runtime import free_net
from keybuzz_tui.sandbox.scenarios import load
from keybuzz_tui.sandbox.tls import SandboxCA


async def test_start_dataplane_before_bootstrap_and_stop():
    addrs = Addresses(net=free_net(h.sandboxes._start_net()))
    cluster = KubeCluster(load("port-taken"), addrs, Clock(h.sandboxes.TEST_SPEED))
    fake_sandbox = SimpleNamespace(cluster=cluster, ca=SandboxCA(), extras={})
    dp = await start_dataplane(fake_sandbox)
    try:
        assert isinstance(cluster.host_network, DataPlane) and cluster.kubelet.exec_hook is dp.toolbox
        assert fake_sandbox.extras == {"dataplane": "enabled (8 nodes)"}
        cluster.bootstrap()
        cluster.start()
        w1, w3 = addrs.worker_ip(1), addrs.worker_ip(3)
        async with aiohttp.ClientSession() as s:
            async with s.get(f"http://{w1}:31695/healthz") as r:
                assert r.status == 200 and r.headers["Server"] == "nginx"
            async with s.get(f"http://{w3}:8080/") as r:  # the scenario's old nginx, bound for real
                assert r.status == 404 and r.headers["Server"] == "nginx/1.18.0 (Ubuntu)"
    finally:
        await dp.stop()
        await cluster.stop()
    assert h.port_free(w1, 31695) and h.port_free(w3, 8080)
