"""One K3s-like cluster: store, API verbs, event recorder and every controller, wired together.

The runtime serves it over HTTPS; tests may also build it directly on their own event loop and
drive it through KubeApi, which is how the controllers are unit-tested without sockets.
"""

from __future__ import annotations

from typing import Any

from ..addresses import Addresses
from ..clock import Clock
from ..scenarios import Scenario
from . import world
from .api import KubeApi
from .controllers.events import Recorder
from .controllers.manager import ControllerManager
from .store import Store


class KubeCluster:
    def __init__(self, scenario: Scenario, addresses: Addresses, clock: Clock | None = None) -> None:
        self.scenario = scenario
        self.addresses = addresses
        self.clock = clock or Clock(scenario.timing.speed)
        self.store = Store()
        self.api = KubeApi(self.store, self.clock, nodeport_range=scenario.nodeport_range)
        self.recorder = Recorder(self.api)
        self.manager = ControllerManager(self.api, self.clock)
        # set by the data plane (issue: sandbox data plane); the kubelet asks it to bind ports
        self.host_network: Any = None
        self._install_controllers()

    def _install_controllers(self) -> None:
        from .controllers import (
            daemonset,
            deployment,
            endpoints,
            gc,
            kubelet,
            namespace,
            nodes,
            scheduler,
            statefulset,
        )

        for mod in (nodes, scheduler, kubelet, daemonset, deployment, statefulset, endpoints, namespace, gc):
            for c in mod.controllers(self):
                self.manager.add(c)
        self.kubelet = self.manager.controllers["kubelet"]

    def bootstrap(self) -> None:
        """Create the world: nodes, system namespaces, CoreDNS, ingress-nginx, scenario objects."""
        self.api.bootstrapping = True
        try:
            world.install_nodes(self.api, self.scenario, self.addresses)
            world.create_all(self.api, world.base_objects(self.scenario, self.addresses))
            world.create_all(self.api, list(self.scenario.objects))
            self.manager.drain()
            if self.scenario.scale:
                from . import scale

                sc = self.scenario.scale
                nodes = [(n.name, n.private_ip) for n in self.addresses.nodes() if n.role == "worker"]
                self.scale_counts = scale.populate(
                    self.api, nodes, namespaces=int(sc.get("namespaces", 50)), pods=int(sc.get("pods", 20000)), services=int(sc.get("services", 5000))
                )
        finally:
            self.api.bootstrapping = False

    def start(self) -> None:
        """Start reconciling; call on the loop that will run the cluster."""
        self.manager.start()

    async def stop(self) -> None:
        await self.manager.stop()
