"""The commented default keybuzz.yaml written by `keybuzz-tui config init`.

The values come from the Config dataclasses themselves (so the file can never drift from the
defaults: `config.loads(render_default()) == Config()`), the comments from COMMENTS below, one per
field: what it is, the runbook's value, what is allowed. A test checks that every field has one.
No secret is ever written here: the file only names the secret keys; their values live in the OS
keyring (`keybuzz-tui credentials`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import yaml

from .config import DNS_LABEL, LB_TYPES, LOCATIONS, NETWORK_ZONES, Config

INDENT = "  "

PREAMBLE = """\
# keybuzz.yaml: the answers keybuzz-tui works from (`keybuzz-tui apply --config keybuzz.yaml`).
#
# Everything but secrets. The Hetzner API token, the apps' secret values and an uploaded
# certificate's private key live in the OS keyring (`keybuzz-tui credentials status|set`), or in
# HCLOUD_TOKEN / KEYBUZZ_SECRET_<APP>_<KEY> environment variables for automation. Never put them here.
#
# The defaults reproduce the production runbook (keybuzz-hostnetwork-solution): the API and the
# Front as hostNetwork DaemonSets (8080/NodePort 30080 and 3000/NodePort 30000), ingress-nginx on
# NodePorts 31695 (http) and 32720 (https), a Hetzner lb11 Load Balancer listening on 80 and 443
# that forwards both to 31695 on every worker with an HTTP /healthz check, and A/AAAA records for
# platform.keybuzz.io and platform-api.keybuzz.io.
#
# Check this file with `keybuzz-tui config check`; errors name the line, the field and what is allowed.
"""

COMMENTS: dict[str, str] = {
    "profile": "Cluster profile: names the keyring entries (service keybuzz-tui:<profile>) and the state\n"
    "directory (journal). One per cluster, e.g. production, staging. A DNS label.",
    "cluster": "How to reach the K3s cluster.",
    "cluster.kubeconfig": "kubeconfig file (KUBECONFIG is honoured too).",
    "cluster.context": "kubeconfig context; empty: the file's current context. `--context` overrides it.",
    "cluster.request_timeout": "Timeout of every Kubernetes and Hetzner API call, in seconds (more than 0, at most 600).",
    "cluster.workers": "How many K3s workers the platform expects (production: 5, 10.0.0.110-114); the doctor flags fewer Ready ones.",
    "namespace": "Namespace of the KeyBuzz apps (DaemonSets, Services, Secrets, ConfigMaps, Ingress).",
    "apps": "The apps, each a hostNetwork DaemonSet (one pod per worker) with a NodePort Service.\n"
    "Runbook: keybuzz-api 8080/30080 and keybuzz-front 3000/30000.",
    "apps[].name": "DaemonSet and Service name: a DNS label of at most 52 characters.",
    "apps[].image": "Container image reference (registry/repository:tag or @sha256:digest).",
    "apps[].port": "containerPort == hostPort (hostNetwork: the pod listens on the worker itself), 1-65535.\n"
    "Must be free on every worker (`keybuzz-tui ports` checks it).",
    "apps[].node_port": "NodePort of the app's Service, in the cluster's NodePort range (30000-32767).",
    "apps[].health_path": "HTTP path of the readiness probe and of the validation checks (starts with /).",
    "apps[].host": "Public hostname the Ingress routes to this app (inside dns.zone); empty: not exposed.",
    "apps[].env": "Plain environment variables (NAME: value). Secrets go under `secrets`, never here.",
    "apps[].secrets": "Keys of the app's Kubernetes Secret. Only the key names live here: the values are in the\n"
    "keyring (`keybuzz-tui credentials set app/<app>/<KEY>`) or in KEYBUZZ_SECRET_<APP>_<KEY>.",
    "apps[].secrets[].key": "Environment variable name the secret is exposed as (letters, digits, _).",
    "apps[].secrets[].generate": "true: generated with Python's `secrets` when missing (rotate with\n"
    "`keybuzz-tui credentials rotate`); false: you enter it.",
    "apps[].secrets[].length": "Length in characters of a generated secret (16-256).",
    "apps[].secrets[].description": "What the secret is, shown when you are asked for it.",
    "apps[].nginx_config": "true: an NGINX ConfigMap listening on `port` with /healthz, as the runbook's pods have.",
    "ingress": "The existing ingress-nginx controller (installed with K3s, runbook module 9).",
    "ingress.namespace": "Namespace of the ingress-nginx controller.",
    "ingress.service": "Its Service, whose NodePorts the Load Balancer forwards to.",
    "ingress.class_name": "IngressClass of the KeyBuzz Ingress.",
    "ingress.http_node_port": "HTTP NodePort of ingress-nginx (runbook: 31695), 30000-32767.",
    "ingress.https_node_port": "HTTPS NodePort of ingress-nginx (runbook: 32720), 30000-32767.",
    "load_balancer": "The Hetzner Cloud Load Balancer in front of the workers (TLS terminated on the LB).",
    "load_balancer.name": "Its name; it is found by its labels first, then by this name.",
    "load_balancer.type": f"Load Balancer type: {', '.join(LB_TYPES)}.",
    "load_balancer.location": f"Location: {', '.join(LOCATIONS)}. Set this or network_zone.",
    "load_balancer.network_zone": f"Network zone instead of a location: {', '.join(NETWORK_ZONES)}; empty: use location.",
    "load_balancer.network": "Private network of the workers; the LB is attached to it first.",
    "load_balancer.target_selector": "Label selector of the worker servers to target (Hetzner server labels).",
    "load_balancer.target_mode": "label_selector: one target that follows the labels (new workers join by themselves); servers: one target per matching server.",
    "load_balancer.use_private_ip": "true: reach the targets over the private network (runbook: 10.0.0.110-114).",
    "load_balancer.algorithm": "round_robin or least_connections.",
    "load_balancer.services": "Listeners, keyed by listen port. Runbook: http 80 and https 443, both to NodePort 31695.\n"
    "protocol: http, https or tcp. redirect_http (https only) takes port 80 for itself, so it\n"
    "cannot be combined with an http service on 80 (Hetzner answers source_port_already_used).",
    "load_balancer.services[].protocol": "http, https or tcp.",
    "load_balancer.services[].listen_port": "Port the LB listens on (1-65535).",
    "load_balancer.services[].destination_port": "Port on the workers (the ingress http NodePort).",
    "load_balancer.services[].redirect_http": "https only: answer port 80 with a redirect to https.",
    "load_balancer.health_check": "Target health check (runbook: HTTP 31695 /healthz).",
    "load_balancer.health_check.protocol": "http, https or tcp.",
    "load_balancer.health_check.port": "Port checked on each worker.",
    "load_balancer.health_check.path": "HTTP path checked (starts with /).",
    "load_balancer.health_check.interval": "Seconds between checks (3-60).",
    "load_balancer.health_check.timeout": "Seconds before a check fails (1-60).",
    "load_balancer.health_check.retries": "Failed checks before a target is unhealthy (1-5).",
    "load_balancer.health_check.status_codes": "Healthy answers: codes or patterns such as 200, 2??, 3?? (at most 20).",
    "load_balancer.certificate": "TLS certificate of the https service.",
    "load_balancer.certificate.type": "managed (issued by Hetzner for domains in a Hetzner DNS zone), uploaded, or none.",
    "load_balancer.certificate.name": "Certificate name at Hetzner.",
    "load_balancer.certificate.domains": "managed: the domain names it covers (every app host).",
    "load_balancer.certificate.cert_file": "uploaded: PEM file of the certificate chain. Its private key is NOT a file\n"
    "setting: store it with `keybuzz-tui credentials set certificate-key`.",
    "load_balancer.labels": "Labels put on the LB (Hetzner label rules: [prefix/]name, values of at most 63 characters).",
    "dns": "DNS records of the apps' hosts, pointing at the Load Balancer.",
    "dns.mode": "hetzner: A/AAAA records managed in the Hetzner DNS zone; manual: printed for you to create.",
    "dns.zone": "The DNS zone the hosts belong to.",
    "dns.ttl": "TTL of the records, in seconds (60 or more).",
    "dns.ipv6": "true: AAAA records too.",
    "dns.resolver": "host[:port] of a resolver to check the answers with; empty: the system's.",
    "firewall": "Hetzner firewall of the workers: the NodePorts must reach them.",
    "firewall.mode": "check (report what is missing), manage (apply the rules), or off.",
    "firewall.name": "Name of the Hetzner firewall applied to the workers.",
    "firewall.allow_from": "Source networks allowed to the NodePorts (CIDRs; the LB's private network).",
    "rollout": "DaemonSet rollout.",
    "rollout.timeout": "Seconds to wait for every pod to be Ready before reporting why not (10-3600).",
    "rollout.max_unavailable": "RollingUpdate maxUnavailable: workers updated at a time (1-100).",
}


def _scalar(v: Any) -> str:
    """One YAML scalar (or an empty/flow collection), quoted exactly when YAML needs it."""
    if isinstance(v, (list, dict)) and not v:
        return "[]" if isinstance(v, list) else "{}"
    text = yaml.safe_dump(v, default_flow_style=True, width=10_000, allow_unicode=True).strip()
    return text.removesuffix("...").strip()


def _comment(key: str, indent: str) -> list[str]:
    text = COMMENTS.get(key)
    if not text:
        return []
    return [f"{indent}# {line}" if line else f"{indent}#" for line in text.splitlines()]


def _generic(path: str) -> str:
    """apps[1].secrets[0].key -> apps[].secrets[].key (comment keys)."""
    out, depth = [], 0
    for ch in path:
        if ch == "[":
            depth += 1
            out.append("[]")
        elif ch == "]":
            depth -= 1
        elif depth == 0:
            out.append(ch)
    return "".join(out)


def _render_obj(obj: Any, path: str, indent: str, lines: list[str], *, commented: bool, first_line_prefix: str = "") -> None:
    """A dataclass as a block mapping. `first_line_prefix` is "- " for list items."""
    first = True
    for f in dataclasses.fields(obj):
        p = f"{path}.{f.name}" if path else f.name
        value = getattr(obj, f.name)
        lead = indent + (first_line_prefix if first else " " * len(first_line_prefix))
        inner = indent + " " * len(first_line_prefix)
        if commented:  # the first field of a list item is commented at the dash's indent
            lines.extend(_comment(_generic(p), indent if first else inner))
        _render_value(f.name, value, p, lead, inner, lines, commented=commented)
        first = False


def _render_value(name: str, value: Any, path: str, lead: str, inner: str, lines: list[str], *, commented: bool) -> None:
    if dataclasses.is_dataclass(value):
        lines.append(f"{lead}{name}:")
        _render_obj(value, path, inner + INDENT, lines, commented=commented)
    elif isinstance(value, list) and value and dataclasses.is_dataclass(value[0]):
        lines.append(f"{lead}{name}:")
        for i, item in enumerate(value):
            # only the first item carries the field comments: the others have the same fields
            _render_obj(item, f"{path}[{i}]", inner + INDENT, lines, commented=commented and i == 0, first_line_prefix="- ")
    elif isinstance(value, dict) and value:
        lines.append(f"{lead}{name}:")
        for k, v in value.items():
            lines.append(f"{inner}{INDENT}{_scalar(k)}: {_scalar(v)}")
    else:
        lines.append(f"{lead}{name}: {_scalar(value)}")


def render_default(profile: str = "production") -> str:
    """The commented default keybuzz.yaml; `config.loads(render_default(p)) == Config(profile=p)`."""
    if not DNS_LABEL.match(profile or "") or len(profile) > 63:
        raise ValueError(f"profile {profile!r} must be a DNS label (lowercase letters, digits, '-')")
    cfg = Config(profile=profile)
    lines: list[str] = [PREAMBLE.rstrip("\n"), ""]
    for f in dataclasses.fields(cfg):
        lines.extend(_comment(f.name, ""))
        _render_value(f.name, getattr(cfg, f.name), f.name, "", "", lines, commented=True)
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def field_paths(cls: type = Config, prefix: str = "") -> list[str]:
    """Every field path of the model, lists written `[]` (what COMMENTS must cover)."""
    from typing import get_args, get_origin, get_type_hints

    out: list[str] = []
    hints = get_type_hints(cls)
    for f in dataclasses.fields(cls):
        p = f"{prefix}.{f.name}" if prefix else f.name
        out.append(p)
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            out.extend(field_paths(tp, p))  # type: ignore[arg-type]
        elif get_origin(tp) is list and dataclasses.is_dataclass(get_args(tp)[0]):
            out.extend(field_paths(get_args(tp)[0], p + "[]"))
    return out
