"""The wizard's Load Balancer flow, driven by the real hcloud client against the sandbox."""

from __future__ import annotations

import hcloud
from hcloud.certificates import Certificate
from hcloud.load_balancer_types import LoadBalancerType
from hcloud.load_balancers import (
    LoadBalancerHealthCheck,
    LoadBalancerService,
    LoadBalancerServiceHttp,
    LoadBalancerTarget,
    LoadBalancerTargetLabelSelector,
)
from hcloud.locations import Location
from hcloud.networks import Network
from hcloud.servers import Server
from support.hetzner_flows import NODEPORT, WORKERS, create_lb, health_check, upload_cert
from support.hetzner_world import HetznerWorld


def test_find_workers_by_label_selector(client: hcloud.Client) -> None:
    workers = client.servers.get_all(label_selector=WORKERS)
    assert [s.name for s in workers] == [f"k3s-worker-{i}" for i in range(1, 6)]
    w = workers[0]
    assert w.private_net[0].ip == "127.0.10.110"
    assert w.private_net[0].network.id == 1
    assert w.public_net.ipv4.ip == "127.0.20.110"
    assert w.status == "running"
    assert client.servers.get_by_name("k3s-server-1").labels["role"] == "k3s-server"
    assert len(client.servers.get_all(label_selector="role notin (k3s-worker)")) == 3
    assert len(client.servers.get_all(label_selector="!role")) == 0
    assert len(client.servers.get_all(status=["off"])) == 0


def test_server_labels_can_be_changed(world: HetznerWorld, client: hcloud.Client) -> None:
    server = client.servers.get_by_id(100)
    server.update(labels={**server.labels, "ingress": "yes"})
    assert [s.id for s in client.servers.get_all(label_selector="ingress=yes")] == [100]
    assert ("updated", "server", 100) in world.events


def test_pagination_follows_next_page(world: HetznerWorld, client: hcloud.Client) -> None:
    page = client.servers.get_list(page=2, per_page=3)
    p = page.meta.pagination
    assert (p.page, p.per_page, p.previous_page, p.next_page, p.last_page, p.total_entries) == (
        2,
        3,
        1,
        3,
        3,
        8,
    )
    assert len(page.servers) == 3
    client.servers.max_per_page = 3  # force several pages through _iter_pages
    assert len(client.servers.get_all()) == 8


def test_full_lb_flow(world: HetznerWorld, client: hcloud.Client) -> None:
    cert = upload_cert(client)
    assert sorted(cert.domain_names) == ["platform-api.keybuzz.io", "platform.keybuzz.io"]

    lb = create_lb(client)
    assert lb.private_net[0].network.id == 1
    assert lb.private_net[0].ip.startswith("127.0.10.")
    assert lb.public_net.ipv4.ip.startswith("127.0.30.")
    assert lb.load_balancer_type.name == "lb11" and lb.location.name == "fsn1"

    http80 = LoadBalancerService(
        protocol="http",
        listen_port=80,
        destination_port=NODEPORT,
        proxyprotocol=False,
        health_check=health_check(),
    )
    lb.add_service(http80).wait_until_finished()
    https443 = LoadBalancerService(
        protocol="https",
        listen_port=443,
        destination_port=NODEPORT,
        proxyprotocol=False,
        http=LoadBalancerServiceHttp(certificates=[Certificate(id=cert.id)], redirect_http=False),
        health_check=health_check(),
    )
    lb.add_service(https443).wait_until_finished()
    target = LoadBalancerTarget(
        type="label_selector",
        use_private_ip=True,
        label_selector=LoadBalancerTargetLabelSelector(selector=WORKERS),
    )
    lb.add_target(target).wait_until_finished()

    lb = client.load_balancers.get_by_id(lb.id)
    by_port = {s.listen_port: s for s in lb.services}
    assert set(by_port) == {80, 443}
    assert by_port[80].http.redirect_http is False and by_port[80].http.certificates == []
    assert [c.id for c in by_port[443].http.certificates] == [cert.id]
    assert by_port[443].health_check.http.path == "/healthz"
    assert by_port[443].health_check.port == NODEPORT
    assert by_port[443].health_check.http.domain is None
    (t,) = lb.targets
    assert t.type == "label_selector" and t.use_private_ip is True
    assert [n.server.id for n in t.targets] == [110, 111, 112, 113, 114]
    assert all(h.status == "unknown" for n in t.targets for h in n.health_status)

    # the data plane reports health; GET shows it
    world.call(world.state.set_target_health, lb.id, 443, ("server", 110), "healthy")
    world.call(
        lambda: world.state.set_target_health(
            lb.id, 80, ("server", 111), "unhealthy", detail="unexpected_http_status", http_status_code=503
        )
    )
    lb = client.load_balancers.get_by_id(lb.id)
    nested = {n.server.id: {h.listen_port: h for h in n.health_status} for n in lb.targets[0].targets}
    assert nested[110][443].status == "healthy"
    assert nested[111][80].status == "unhealthy" and nested[111][80].http_status_code == 503

    # the data-plane view is resolved
    view = world.call(world.state.load_balancer, lb.id)
    assert [t.address for t in view.targets] == [f"127.0.10.{i}" for i in range(110, 115)]
    assert view.services[1].certificate_ids == (cert.id,)
    assert world.call(world.state.certificate_material, cert.id).key_pem.startswith("-----BEGIN")

    # update a service (CCM reconcile: existing ports always get update_service)
    updated = LoadBalancerService(listen_port=80, health_check=LoadBalancerHealthCheck(interval=5))
    lb.update_service(updated).wait_until_finished()
    lb = client.load_balancers.get_by_id(lb.id)
    svc80 = next(s for s in lb.services if s.listen_port == 80)
    assert svc80.health_check.interval == 5 and svc80.health_check.http.path == "/healthz"
    assert svc80.destination_port == NODEPORT

    # find by label, then name (CCM lookup order)
    assert client.load_balancers.get_all(label_selector="app=keybuzz")[0].id == lb.id
    assert client.load_balancers.get_by_name("keybuzz-lb").id == lb.id

    # 2.27 delete returns an action
    resp = lb.delete()
    resp.action.wait_until_finished()
    assert resp.action.command == "delete_load_balancer"
    assert client.load_balancers.get_by_name("keybuzz-lb") is None


def test_server_targets_private_ip(world: HetznerWorld, client: hcloud.Client) -> None:
    lb = create_lb(client)
    for s in client.servers.get_all(label_selector=WORKERS):
        lb.add_target(
            LoadBalancerTarget(type="server", server=Server(id=s.id), use_private_ip=True)
        ).wait_until_finished()
    lb = client.load_balancers.get_by_id(lb.id)
    assert sorted(t.server.id for t in lb.targets) == [110, 111, 112, 113, 114]
    assert all(t.use_private_ip for t in lb.targets)
    assert client.request("GET", "/servers/110")["server"]["load_balancers"] == [lb.id]
    lb.remove_target(LoadBalancerTarget(type="server", server=Server(id=110))).wait_until_finished()
    lb = client.load_balancers.get_by_id(lb.id)
    assert sorted(t.server.id for t in lb.targets) == [111, 112, 113, 114]


def test_create_with_services_and_targets_in_one_request(client: hcloud.Client) -> None:
    cert = upload_cert(client)
    resp = client.load_balancers.create(
        name="one-shot",
        load_balancer_type=LoadBalancerType(name="lb11"),
        network_zone="eu-central",
        network=Network(id=1),
        services=[
            LoadBalancerService(
                protocol="http",
                listen_port=80,
                destination_port=NODEPORT,
                proxyprotocol=False,
                health_check=health_check(),
            ),
            LoadBalancerService(
                protocol="https",
                listen_port=443,
                destination_port=NODEPORT,
                proxyprotocol=False,
                http=LoadBalancerServiceHttp(certificates=[Certificate(id=cert.id)]),
                health_check=health_check(),
            ),
        ],
        targets=[
            LoadBalancerTarget(
                type="label_selector",
                use_private_ip=True,
                label_selector=LoadBalancerTargetLabelSelector(selector=WORKERS),
            )
        ],
    )
    resp.action.wait_until_finished()
    lb = client.load_balancers.get_by_id(resp.load_balancer.id)
    assert len(lb.services) == 2 and len(lb.targets[0].targets) == 5
    assert lb.location.network_zone == "eu-central"
    raw = client.request("GET", f"/certificates/{cert.id}")["certificate"]
    assert raw["used_by"] == [{"id": lb.id, "type": "load_balancer"}]


def test_other_lb_actions(world: HetznerWorld, client: hcloud.Client) -> None:
    from hcloud.load_balancers import LoadBalancerAlgorithm

    lb = create_lb(client, network=False)
    lb.attach_to_network(Network(id=1), ip="127.0.10.50").wait_until_finished()
    lb.change_algorithm(LoadBalancerAlgorithm(type="least_connections")).wait_until_finished()
    lb.change_type(LoadBalancerType(name="lb21")).wait_until_finished()
    lb.add_target(
        LoadBalancerTarget(
            type="label_selector",
            use_private_ip=True,
            label_selector=LoadBalancerTargetLabelSelector(selector=WORKERS),
        )
    ).wait_until_finished()
    lb.disable_public_interface().wait_until_finished()
    lb.change_protection(delete=True).wait_until_finished()
    lb = client.load_balancers.get_by_id(lb.id)
    assert lb.private_net[0].ip == "127.0.10.50"
    assert lb.algorithm.type == "least_connections"
    assert lb.load_balancer_type.name == "lb21"
    assert lb.public_net.enabled is False
    assert lb.protection["delete"] is True
    lb.enable_public_interface().wait_until_finished()
    lb.change_protection(delete=False).wait_until_finished()
    lb.update(name="renamed", labels={"x": "y"})
    assert client.load_balancers.get_by_id(lb.id).name == "renamed"
    lb.detach_from_network(Network(id=1)).wait_until_finished()
    assert client.load_balancers.get_by_id(lb.id).private_net == []
    commands = [a.command for a in lb.get_actions()]
    assert commands[:3] == ["create_load_balancer", "attach_to_network", "change_algorithm"]
    assert "change_load_balancer_type" in commands
    net = client.networks.get_by_id(1)
    assert net.name == "keybuzz-net"


def test_action_lifecycle_progress_and_lock() -> None:
    from hcloud import APIException

    from keybuzz_tui.sandbox.hetzner.seeds import HetznerSettings

    world = HetznerWorld(settings=HetznerSettings(action_duration=16.0), speed=4.0).start()  # 4 s actions
    try:
        client = world.client()
        resp = client.load_balancers.create(
            name="slow", load_balancer_type=LoadBalancerType(name="lb11"), location=Location(name="nbg1")
        )
        assert resp.action.status == "running" and resp.action.progress < 50
        try:
            client.load_balancers.add_service(
                resp.load_balancer, LoadBalancerService(protocol="tcp", listen_port=22, destination_port=22)
            )
        except APIException as exc:
            assert exc.code == "locked"
        else:
            raise AssertionError("expected locked")
        import time

        deadline = time.monotonic() + 3.0  # a quarter of the way: 1 s on an idle machine
        while (mid := client.actions.get_by_id(resp.action.id)).status == "running" and mid.progress < 25 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert mid.status == "running" and 25 <= mid.progress < 100, (mid.status, mid.progress)
        resp.action.wait_until_finished()
        done = client.actions.get_by_id(resp.action.id)
        assert done.status == "success" and done.progress == 100 and done.finished is not None
        listed = client.load_balancers.actions.get_all()
        assert [a.id for a in listed] == [resp.action.id]
        events = world.events
        assert ("created", "load_balancer", resp.load_balancer.id) in events
        assert ("succeeded", "action", resp.action.id) in events
    finally:
        world.stop()


def test_replace_server_re_resolves_targets(world: HetznerWorld, client: hcloud.Client) -> None:
    from keybuzz_tui.sandbox.hetzner.seeds import ServerSeed

    lb = create_lb(client)
    lb.add_target(
        LoadBalancerTarget(
            type="label_selector",
            use_private_ip=True,
            label_selector=LoadBalancerTargetLabelSelector(selector=WORKERS),
        )
    ).wait_until_finished()
    lb.add_target(
        LoadBalancerTarget(type="server", server=Server(id=114), use_private_ip=True)
    ).wait_until_finished()
    new = ServerSeed(
        120, "k3s-worker-5b", "127.0.10.120", "127.0.20.120", {"cluster": "keybuzz", "role": "k3s-worker"}
    )
    world.call(world.state.replace_server, 114, new)
    lb = client.load_balancers.get_by_id(lb.id)
    assert len(lb.targets) == 1  # the server target of the deleted server went away
    assert [n.server.id for n in lb.targets[0].targets] == [110, 111, 112, 113, 120]
    view = world.call(world.state.load_balancer, lb.id)
    assert "127.0.10.120" in [t.address for t in view.targets]
    world.call(world.state.set_server_status, 120, "off")
    assert client.servers.get_by_id(120).status == "off"
