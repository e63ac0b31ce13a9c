"""Scenarios: YAML files in assets/scenarios that say how the sandbox world starts (and breaks).

A scenario may `extends:` another; maps merge key by key and lists replace, so `port-taken` is the
healthy world plus one host process. Everything is validated on load, with errors that name the
file and the field, because a scenario is also how a new team member learns the failure modes.

That includes the cluster size: `--workers 2` with `port-taken` (whose host process sits on
k3s-worker-03) is refused, naming the node and the --workers/--servers that would bring it back,
rather than starting a healthy world under the scenario's name.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml


class ScenarioError(ValueError):
    pass


@dataclass(frozen=True)
class HostProcess:
    """A process on a node's host network that Kubernetes does not know about."""

    node: str
    port: int
    command: str = "nginx: master process /usr/sbin/nginx -g daemon off;"
    answers: str = "404"  # what it serves on the port: an HTTP status, or "silent"


@dataclass(frozen=True)
class Timing:
    speed: float = 1.0
    schedule_seconds: float = 0.2
    pull_seconds: float = 1.5
    start_seconds: float = 0.5
    ready_seconds: float = 1.0
    terminate_seconds: float = 1.0
    crash_backoff_seconds: float = 10.0  # the kubelet's first CrashLoopBackOff delay (doubles, max 300)


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    servers: int = 3
    workers: int = 5
    k8s_version: str = "v1.31.6+k3s1"
    nodeport_range: tuple[int, int] = (30000, 32767)
    flannel_backend: str = "vxlan"
    overlay: str = "ok"  # "ok" | "blocked" (UDP 8472 dropped between nodes)
    timing: Timing = field(default_factory=Timing)
    missing_images: tuple[str, ...] = ()  # fnmatch patterns the registry does not have
    pull_error: str = "not found"
    host_processes: tuple[HostProcess, ...] = ()
    not_ready_nodes: tuple[str, ...] = ()
    objects: tuple[dict[str, Any], ...] = ()  # extra manifests present at start
    users: tuple[dict[str, Any], ...] = ()  # extra tokens with RBAC rules
    faults: dict[str, Any] = field(default_factory=dict)
    scale: dict[str, int] = field(default_factory=dict)
    hetzner: dict[str, Any] = field(default_factory=dict)
    dataplane: dict[str, Any] = field(default_factory=dict)
    install: dict[str, Any] = field(default_factory=dict)  # a pre-installed KeyBuzz (e.g. the outage)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


_KNOWN = {
    "name", "description", "extends", "cluster", "timing", "registry", "host_processes",
    "not_ready_nodes", "objects", "users", "faults", "scale", "hetzner", "dataplane", "install",
}


def scenario_dir() -> Path:
    return Path(str(files("keybuzz_tui.assets.scenarios")))


def available() -> list[str]:
    return sorted(p.stem for p in scenario_dir().glob("*.yaml"))


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ScenarioError(f"{path.name}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{path.name}: a scenario is a mapping at the top level")
    unknown = set(data) - _KNOWN
    if unknown:
        raise ScenarioError(f"{path.name}: unknown field(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(_KNOWN))}")
    return data


def resolve(name_or_path: str, _seen: tuple[str, ...] = ()) -> dict[str, Any]:
    path = Path(name_or_path)
    if not path.suffix:
        path = scenario_dir() / f"{name_or_path}.yaml"
    if not path.exists():
        raise ScenarioError(f"unknown scenario {name_or_path!r}; available: {', '.join(available())}")
    if path.stem in _seen:
        raise ScenarioError(f"scenario {path.stem}: extends loop through {' -> '.join(_seen)}")
    data = _read(path)
    parent = data.get("extends")
    if parent:
        base = resolve(str(parent), (*_seen, path.stem))
        base.pop("description", None)
        data = _deep_merge(base, {k: v for k, v in data.items() if k != "extends"})
    data.setdefault("name", path.stem)
    return data


def _int(d: dict[str, Any], key: str, default: int, where: str, lo: int = 0, hi: int = 10**6) -> int:
    v = d.get(key, default)
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise ScenarioError(f"{where}.{key}: expected an integer in {lo}..{hi}, got {v!r}")
    return v


# the NodePorts of the world's ingress-nginx Service (kube/world.py), fixed by the runbook
INGRESS_NODEPORTS = (31695, 32720)
_NODE_NAME = re.compile(r"^k3s-(master|worker)-(\d+)$")


def _node_refs(sc: Scenario) -> list[tuple[str, str]]:
    """(field, node name) for every place a scenario names a node."""
    refs = [(f"host_processes[{i}].node", hp.node) for i, hp in enumerate(sc.host_processes)]
    refs += [(f"not_ready_nodes[{i}]", str(n)) for i, n in enumerate(sc.not_ready_nodes)]
    for i, rule in enumerate(sc.dataplane.get("ufw_deny") or []):
        if isinstance(rule, dict) and "node" in rule:
            refs.append((f"dataplane.ufw_deny[{i}].node", str(rule["node"])))
    lb = sc.install.get("load_balancer")
    targets = lb.get("targets") if isinstance(lb, dict) else None
    for i, t in enumerate(targets if isinstance(targets, list) else []):
        if isinstance(t, dict) and t.get("server") is not None:  # a Hetzner server, named like its node
            refs.append((f"install.load_balancer.targets[{i}].server", str(t["server"])))
    return refs


def check_cluster(sc: Scenario) -> None:
    """Refuse a scenario whose nodes or NodePorts the chosen cluster cannot have."""
    from .addresses import Addresses

    addrs = Addresses(0, sc.servers, sc.workers)
    names = {n.name for n in addrs.nodes()}
    for where, node in _node_refs(sc):
        if node in names:
            continue
        size = f"{sc.servers} server(s) and {sc.workers} worker(s)"
        m = _NODE_NAME.match(node)
        if m and m.group(1) == "worker" and int(m.group(2)) > sc.workers:
            hint = f"; start it with --workers {int(m.group(2))} or more"
        elif m and m.group(1) == "master" and int(m.group(2)) > sc.servers:
            hint = f"; start it with --servers {int(m.group(2))} or more"
        else:
            examples = [addrs.server_name(1)] + ([addrs.worker_name(1)] if sc.workers else [])
            hint = f"; nodes are named like {', '.join(examples)}"
        raise ScenarioError(f"scenario {sc.name}: {where} is {node}, which a cluster of {size} does not have{hint}")
    low, high = sc.nodeport_range
    outside = [p for p in INGRESS_NODEPORTS if not low <= p <= high]
    if outside:
        raise ScenarioError(
            f"scenario {sc.name}: cluster.nodeport_range {low}-{high} must include the ingress-nginx "
            f"NodePorts {' and '.join(map(str, INGRESS_NODEPORTS))} (the runbook's world)"
        )


def load(name_or_path: str, *, workers: int | None = None, servers: int | None = None) -> Scenario:
    data = resolve(name_or_path)
    name = str(data.get("name"))
    cluster = data.get("cluster") or {}
    if not isinstance(cluster, dict):
        raise ScenarioError(f"{name}: cluster must be a mapping")
    rng = cluster.get("nodeport_range", [30000, 32767])
    if not (isinstance(rng, list) and len(rng) == 2 and all(isinstance(x, int) for x in rng) and 1 <= rng[0] < rng[1] <= 65535):
        raise ScenarioError(f"{name}: cluster.nodeport_range must be [low, high], got {rng!r}")
    overlay = cluster.get("overlay", "ok")
    if overlay not in ("ok", "blocked"):
        raise ScenarioError(f"{name}: cluster.overlay must be 'ok' or 'blocked', got {overlay!r}")
    t = data.get("timing") or {}
    timing = Timing(**{k: float(v) for k, v in t.items() if k in Timing.__dataclass_fields__})
    reg = data.get("registry") or {}
    hps = []
    for i, hp in enumerate(data.get("host_processes") or []):
        if not isinstance(hp, dict) or "node" not in hp or "port" not in hp:
            raise ScenarioError(f"{name}: host_processes[{i}] needs node and port")
        hps.append(HostProcess(node=str(hp["node"]), port=int(hp["port"]), command=str(hp.get("command", HostProcess.command)), answers=str(hp.get("answers", "404"))))
    for flag, value, lo, hi in (("--servers", servers, 1, 50), ("--workers", workers, 0, 5000)):
        if value is not None and not lo <= value <= hi:
            raise ScenarioError(f"{flag} must be between {lo} and {hi}, got {value}")
    sc = Scenario(
        name=name,
        description=str(data.get("description", "")).strip(),
        servers=servers if servers is not None else _int(cluster, "servers", 3, f"{name}: cluster", 1, 50),
        workers=workers if workers is not None else _int(cluster, "workers", 5, f"{name}: cluster", 0, 5000),
        k8s_version=str(cluster.get("version", "v1.31.6+k3s1")),
        nodeport_range=(int(rng[0]), int(rng[1])),
        flannel_backend=str(cluster.get("flannel_backend", "vxlan")),
        overlay=overlay,
        timing=timing,
        missing_images=tuple(reg.get("missing") or ()),
        pull_error=str(reg.get("pull_error", "not found")),
        host_processes=tuple(hps),
        not_ready_nodes=tuple(data.get("not_ready_nodes") or ()),
        objects=tuple(data.get("objects") or ()),
        users=tuple(data.get("users") or ()),
        faults=dict(data.get("faults") or {}),
        scale=dict(data.get("scale") or {}),
        hetzner=dict(data.get("hetzner") or {}),
        dataplane=dict(data.get("dataplane") or {}),
        install=dict(data.get("install") or {}),
        raw=data,
    )
    check_cluster(sc)
    return sc
