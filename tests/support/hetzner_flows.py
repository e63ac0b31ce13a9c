"""Building blocks of the wizard's Hetzner flow, shared by the sandbox Hetzner tests."""

from __future__ import annotations

import hcloud
from hcloud.load_balancer_types import LoadBalancerType
from hcloud.load_balancers import BoundLoadBalancer, LoadBalancerHealthCheck, LoadBalancerHealthCheckHttp
from hcloud.locations import Location
from hcloud.networks import Network

from support.hetzner_world import shared_ca

NODEPORT = 31695
WORKERS = "cluster=keybuzz,role=k3s-worker"


def health_check() -> LoadBalancerHealthCheck:
    """HTTP /healthz on the ingress NodePort, as the runbook's LB does."""
    return LoadBalancerHealthCheck(
        protocol="http",
        port=NODEPORT,
        interval=15,
        timeout=10,
        retries=3,
        http=LoadBalancerHealthCheckHttp(path="/healthz", status_codes=["2??", "3??"], tls=False),
    )


def upload_cert(client: hcloud.Client, name: str = "keybuzz-cert"):
    issued = shared_ca().issue("platform.keybuzz.io", "platform-api.keybuzz.io")
    return client.certificates.create(name=name, certificate=issued.chain_pem, private_key=issued.key_pem)


def create_lb(client: hcloud.Client, name: str = "keybuzz-lb", network: bool = True) -> BoundLoadBalancer:
    resp = client.load_balancers.create(
        name=name,
        load_balancer_type=LoadBalancerType(name="lb11"),
        location=Location(name="fsn1"),
        network=Network(id=1) if network else None,
        labels={"app": "keybuzz"},
    )
    resp.action.wait_until_finished()
    return client.load_balancers.get_by_id(resp.load_balancer.id)
