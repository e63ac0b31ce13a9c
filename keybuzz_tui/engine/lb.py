"""Step 4: the Hetzner Cloud Load Balancer, reconciled the way hcloud-cloud-controller-manager does.

Why it looks like the CCM (reference/hetzner.md 3.1): a Load Balancer is found by our labels
(`managed-by=keybuzz-tui` + `keybuzz-tui/profile=<profile>`) and only then by name, so renaming it
in keybuzz.yaml renames it instead of creating a second one; services are keyed by listen port
(update what exists, add what is missing, delete leftovers); targets are keyed by label selector
or server id and re-added when `use_private_ip` differs; the LB is attached to the private network
before any private-IP target is added; every action is waited for; nothing that can be updated is
recreated (only a location / network zone change needs a new LB, which changes its IPs).

The runbook's design, with the trap of reference section 4 resolved deliberately: services 80
(http) and 443 (https, TLS ends on the LB) both forward plain HTTP to ingress-nginx's HTTP NodePort
31695, `redirect_http` stays false on 443 (it would take port 80: `source_port_already_used`) and
the ingress redirects instead; `proxyprotocol` false (ingress-nginx does not expect it); the HTTP
health check asks `/healthz` on 31695 with a null domain, because ingress-nginx's default server
answers /healthz only when the Host matches no vhost (reference 3.3 #1).

The Hetzner helpers this step shares with dns.py and firewall.py (the client with a rate-limit
observer, operator-facing error translation, the call wrapper and the action waiter) live in
hcloudio.py.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..cancel import Cancelled
from ..events import (
    CheckResult,
    Info,
    ObjectPlanned,
    StepFinished,
    StepStarted,
    TargetHealth,
    Warning_,
)
from ..redact import REDACTOR
from .context import Context
from .hcloudio import (
    DEFAULT_ACTION_TIMEOUT,
    CloudError,
    applied,
    call,
    explain,
    finishing_on_failure,
    hcloud_client,
    poll_interval,
    wait_action,
)
from .plan import Change, FieldDiff, Plan, diff_objects

STEP = "load_balancer"
LAYER = "hetzner"
MANAGED_BY = ("managed-by", "keybuzz-tui")
PROFILE_LABEL = "keybuzz-tui/profile"
CERT_KEY_SECRET = "certificate-key"  # SecretSource name of an uploaded certificate's private key

# --- what keybuzz.yaml asks for --------------------------------------------------------------


def identity_labels(ctx: Context) -> dict[str, str]:
    """The labels that find our Load Balancer again whatever its name."""
    return {MANAGED_BY[0]: MANAGED_BY[1], PROFILE_LABEL: ctx.config.profile}


def desired_labels(ctx: Context) -> dict[str, str]:
    return {**ctx.config.load_balancer.labels, **identity_labels(ctx)}


def _selector(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def desired_health_check(ctx: Context) -> dict[str, Any]:
    hc = ctx.config.load_balancer.health_check
    out: dict[str, Any] = {
        "protocol": "tcp" if hc.protocol == "tcp" else "http",
        "port": hc.port,
        "interval": hc.interval,
        "timeout": hc.timeout,
        "retries": hc.retries,
    }
    if hc.protocol != "tcp":
        # domain null: ingress-nginx's default server answers /healthz only when no vhost matches
        out["http"] = {"domain": None, "path": hc.path, "response": "", "status_codes": list(hc.status_codes), "tls": hc.protocol == "https"}
    return out


def desired_service(ctx: Context, protocol: str, destination_port: int, redirect_http: bool, cert_name: str | None) -> dict[str, Any]:
    svc: dict[str, Any] = {
        "protocol": protocol,
        "destination_port": destination_port,
        "proxyprotocol": False,  # ingress-nginx's use-proxy-protocol is off (reference 3.3 #3)
        "health_check": desired_health_check(ctx),
    }
    if protocol == "https":
        svc["http"] = {"redirect_http": redirect_http, "certificates": [cert_name] if cert_name else []}
    return svc


def live_service(svc: Any, cert_names: dict[int, str]) -> dict[str, Any]:
    """A service as read from the API, in the shape of desired_service (the fields we own)."""
    hc = svc.health_check
    out: dict[str, Any] = {
        "protocol": svc.protocol,
        "destination_port": svc.destination_port,
        "proxyprotocol": bool(svc.proxyprotocol),
        "health_check": {"protocol": hc.protocol, "port": hc.port, "interval": hc.interval, "timeout": hc.timeout, "retries": hc.retries},
    }
    if hc.protocol != "tcp" and hc.http is not None:
        out["health_check"]["http"] = {
            "domain": hc.http.domain,
            "path": hc.http.path,
            "response": hc.http.response or "",
            "status_codes": list(hc.http.status_codes or []),
            "tls": bool(hc.http.tls),
        }
    if svc.protocol == "https" and svc.http is not None:
        ids = [c.id for c in (svc.http.certificates or [])]
        out["http"] = {"redirect_http": bool(svc.http.redirect_http), "certificates": sorted(cert_names.get(i, f"#{i}") for i in ids)}
    return out


def pem_fingerprint(pem: str) -> str:
    """SHA-256 of the first certificate of a PEM chain, colon-separated, as Hetzner shows it."""
    m = re.search(r"-----BEGIN CERTIFICATE-----(.+?)-----END CERTIFICATE-----", pem, re.S)
    if not m:
        raise ValueError("no PEM certificate found")
    der = base64.b64decode("".join(m.group(1).split()))
    return ":".join(f"{b:02x}" for b in hashlib.sha256(der).digest())


# --- reconcile -------------------------------------------------------------------------------


@dataclass
class _Op:
    change: Change
    run: Callable[[], dict[str, Any] | None]  # returns extra journal fields


class _Reconciler:
    """Reads the live project once, computes the changes, and keeps the closures that make them.

    plan() returns only the Changes; apply() rebuilds a reconciler, checks the fresh plan is the
    one the operator confirmed, and runs its closures in order."""

    def __init__(self, ctx: Context, *, target_mode: str = "label_selector", timeout: float = DEFAULT_ACTION_TIMEOUT) -> None:
        if target_mode not in ("label_selector", "servers"):
            raise ValueError("target_mode is label_selector or servers")
        self.ctx = ctx
        self.cfg = ctx.config.load_balancer
        self.client = hcloud_client(ctx)
        self.target_mode = target_mode
        self.timeout = timeout
        self.plan = Plan()
        self.ops: list[_Op] = []
        self.lb: Any = None
        self.lb_id: int | None = None
        self.found_by = ""
        self.network: Any = None
        self.servers: list[Any] = []
        self.certs: dict[str, Any] = {}
        self.cert_names: dict[int, str] = {}
        self.cert_name: str | None = None
        self.cert_id: int | None = None
        self._cert_pem: str | None = None

    # --- helpers ------------------------------------------------------------------------------

    def _call(self, doing: str, fn: Callable[[], Any]) -> Any:
        return call(self.ctx, self.client, doing, fn, lb_id=self.lb_id)

    def _wait(self, action: Any, what: str, timeout: float | None = None) -> None:
        wait_action(self.ctx, self.client, action, what=what, step=STEP, timeout=timeout or self.timeout)

    def _add(self, change: Change, run: Callable[[], dict[str, Any] | None] | None = None) -> None:
        self.plan.add(change)
        self.ops.append(_Op(change, run or (lambda: None)))

    def _lb_ref(self) -> Any:
        from hcloud.load_balancers import LoadBalancer

        if self.lb_id is None:
            raise CloudError("internal: the Load Balancer id is unknown", "run plan and apply again")
        return LoadBalancer(id=self.lb_id)

    # --- reading ------------------------------------------------------------------------------

    def read(self) -> None:
        c, cfg = self.client, self.cfg
        labels = identity_labels(self.ctx)
        found = self._call("looking up the Load Balancer by label", lambda: c.load_balancers.get_all(label_selector=_selector(labels)))
        if len(found) > 1:
            names = ", ".join(sorted(lb.name for lb in found))
            raise CloudError(
                f"several Load Balancers carry the labels {_selector(labels)}: {names}",
                "keep one: delete the others or remove the label from them, then plan again",
                "ambiguous",
            )
        if found:
            self.lb, self.found_by = found[0], "label"
        else:
            lb = self._call(f"looking up Load Balancer {cfg.name}", lambda: c.load_balancers.get_by_name(cfg.name))
            if lb is not None:
                self.lb, self.found_by = lb, "name"
        self.lb_id = self.lb.id if self.lb is not None else None
        if cfg.network:
            self.network = self._call(f"looking up network {cfg.network}", lambda: c.networks.get_by_name(cfg.network))
            if self.network is None:
                raise CloudError(
                    f"the private network {cfg.network!r} (load_balancer.network) does not exist in this Hetzner project",
                    "set load_balancer.network to the network the K3s servers are attached to (hcloud network list)",
                    "not_found",
                )
        elif cfg.use_private_ip:
            raise CloudError(
                "load_balancer.use_private_ip is true but load_balancer.network is empty",
                "name the private network of the cluster in load_balancer.network",
                "config",
            )
        self.servers = self._call(
            f"listing servers matching {cfg.target_selector}", lambda: c.servers.get_all(label_selector=cfg.target_selector)
        )
        if cfg.certificate.type != "none":
            certs = self._call("listing certificates", lambda: c.certificates.get_all())
            self.certs = {x.name: x for x in certs}
            self.cert_names = {x.id: x.name for x in certs}

    # --- the certificate ----------------------------------------------------------------------

    def certificate(self) -> None:
        cert = self.cfg.certificate
        if cert.type == "none" or not any(s.protocol == "https" for s in self.cfg.services):
            return
        if cert.type == "managed":
            domains = sorted({d.lower() for d in cert.domains})

            def matches(x: Any) -> bool:
                return x.type == "managed" and sorted(d.lower() for d in (x.domain_names or [])) == domains

            digest = hashlib.sha256(",".join(domains).encode()).hexdigest()[:8]
        else:
            path = Path(cert.cert_file).expanduser()
            try:
                self._cert_pem = path.read_text()
                fingerprint = pem_fingerprint(self._cert_pem)
            except OSError as e:
                raise CloudError(
                    f"cannot read load_balancer.certificate.cert_file {str(path)!r}: {e.strerror}",
                    "point cert_file at the PEM file of the certificate chain (the private key stays in the keyring)",
                    "config",
                ) from None
            except ValueError:
                raise CloudError(
                    f"load_balancer.certificate.cert_file {str(path)!r} holds no PEM certificate",
                    "use the PEM chain (-----BEGIN CERTIFICATE----- ...), leaf first",
                    "config",
                ) from None

            def matches(x: Any) -> bool:
                return x.type == "uploaded" and (x.fingerprint or "").lower() == fingerprint

            digest = fingerprint.replace(":", "")[:8]
        name = cert.name
        existing = self.certs.get(name)
        note = ""
        if existing is not None and not matches(existing):
            # certificates cannot be changed in place: use a new name, leave the old one alone
            if existing.type != cert.type:
                why = f"is an {existing.type} certificate and keybuzz.yaml wants a {cert.type} one"
            else:
                why = "has other domains" if cert.type == "managed" else "holds another certificate (fingerprint)"
            note = f"certificate {name} {why}: it cannot change in place, so it is left untouched and not used"
            name = f"{cert.name}-{digest}"
            existing = self.certs.get(name)
            if existing is not None and not matches(existing):
                raise CloudError(
                    f"certificates {cert.name} and {name} both exist and neither matches keybuzz.yaml",
                    "delete the unused one in the Hetzner Console or choose another load_balancer.certificate.name",
                    "conflict",
                )
        self.cert_name = name
        if existing is None:
            desired: dict[str, Any] = {"type": cert.type, "name": name, "labels": desired_labels(self.ctx)}
            if cert.type == "managed":
                desired["domain_names"] = domains
                self._check_managed_domains(domains)
            else:
                desired["certificate_fingerprint"] = fingerprint
                key = self.ctx.secrets.get(CERT_KEY_SECRET)
                REDACTOR.add(key)
                if not key:
                    self.plan.warnings.append(
                        f"the private key of the uploaded certificate is not in the keyring ({CERT_KEY_SECRET}): "
                        "store it with keybuzz-tui credentials before apply"
                    )
            self._add(
                Change(LAYER, "create", "Certificate", name, desired=desired, note=note or f"{cert.type} certificate for the https service"),
                self._create_certificate,
            )
            return
        self.cert_id = existing.id
        status = existing.status
        if existing.type == "managed" and status is not None and status.issuance == "failed":
            err = status.error
            reason = f"{err.message} ({err.code})" if err is not None else "no error given"
            self.plan.warnings.append(
                f"the managed certificate {name} failed to issue: {reason}. Let's Encrypt validates the domains through the "
                f"Hetzner DNS zone: check the domains are in that zone and that no CAA record forbids letsencrypt.org; apply retries the issuance"
            )
            self._add(
                Change(
                    LAYER, "update", "Certificate", name,
                    diff=[FieldDiff(".status.issuance", "failed", "completed")],
                    desired={"type": "managed", "name": name, "retry_issuance": True},
                    note=f"issuance failed: {reason}; apply retries it",
                ),
                self._retry_certificate,
            )
            return
        if existing.type == "managed" and status is not None and status.issuance == "pending":
            note = "issuance pending (Let's Encrypt validation in progress)"
        self._add(Change(LAYER, "unchanged", "Certificate", name, desired={"type": existing.type, "name": name}, note=note))

    def _check_managed_domains(self, domains: list[str]) -> None:
        zone = self.ctx.config.dns.zone.rstrip(".")
        outside = [d for d in domains if not (d.removeprefix("*.") == zone or d.removeprefix("*.").endswith("." + zone))]
        if outside:
            self.plan.warnings.append(
                f"managed certificate domains outside dns.zone {zone}: {', '.join(outside)}; Hetzner can only issue managed "
                "certificates for domains in a Hetzner DNS zone of the project (issuance fails with dns_zone_not_found)"
            )
            return
        from hcloud import APIException

        try:
            self.client.zones.get(zone)
        except APIException as exc:
            if exc.code == "not_found":
                self.plan.warnings.append(
                    f"the zone {zone} is not a Hetzner DNS zone of this project: a managed certificate cannot be issued for "
                    f"{', '.join(domains)}; use an uploaded certificate (load_balancer.certificate.type: uploaded)"
                )
            else:
                raise explain(exc, f"reading DNS zone {zone}", self.client) from None
        except Exception as exc:
            raise explain(exc, f"reading DNS zone {zone}", self.client) from None

    def _create_certificate(self) -> dict[str, Any]:
        cert, c = self.cfg.certificate, self.client
        name = self.cert_name or cert.name
        labels = desired_labels(self.ctx)
        if cert.type == "managed":
            domains = sorted({d.lower() for d in cert.domains})
            resp = self._call(f"creating managed certificate {name}", lambda: c.certificates.create_managed(name=name, domain_names=domains, labels=labels))
            self.cert_id = resp.certificate.id
            self._wait_issuance(resp.action, name)
            return {"id": self.cert_id}
        key = self.ctx.secrets.get(CERT_KEY_SECRET)
        if not key:
            raise CloudError(
                f"the private key of certificate {name} is not in the keyring ({CERT_KEY_SECRET})",
                "store it with keybuzz-tui credentials (it never goes into keybuzz.yaml), then apply again",
                "no_key",
            )
        REDACTOR.add(key)
        pem = self._cert_pem or ""
        created = self._call(
            f"uploading certificate {name}", lambda: c.certificates.create(name=name, certificate=pem, private_key=key, labels=labels)
        )
        self.cert_id = created.id
        return {"id": self.cert_id}

    def _wait_issuance(self, action: Any, name: str) -> None:
        try:
            self._wait(action, f"issuing certificate {name}", timeout=max(self.timeout, DEFAULT_ACTION_TIMEOUT))
        except CloudError as e:
            if e.code in ("action_timeout", "timeout", "unreachable", "rate_limit_exceeded"):
                raise
            raise CloudError(
                f"the managed certificate {name} could not be issued: {e.message.split('failed: ', 1)[-1]}",
                "Let's Encrypt validates the domains through the Hetzner DNS zone: check that every domain is in a zone of "
                "this project, delegated to Hetzner's nameservers, and that no CAA record forbids letsencrypt.org; then apply "
                "again (it retries the issuance), or use an uploaded certificate",
                e.code,
            ) from None

    def _retry_certificate(self) -> dict[str, Any]:
        from hcloud.certificates import Certificate

        cid = self.cert_id
        name = self.cert_name or ""
        action = self._call(f"retrying the issuance of certificate {name}", lambda: self.client.certificates.retry_issuance(Certificate(id=cid)))
        self._wait_issuance(action, name)
        return {"id": cid}

    # --- the load balancer itself -------------------------------------------------------------

    def load_balancer(self) -> None:
        cfg, lb = self.cfg, self.lb
        want_labels = desired_labels(self.ctx)
        create_desired = {
            "name": cfg.name,
            "load_balancer_type": cfg.type,
            **({"location": cfg.location} if cfg.location else {"network_zone": cfg.network_zone}),
            "network": cfg.network or None,
            "algorithm": cfg.algorithm,
            "labels": want_labels,
            "public_interface": True,
        }
        if lb is not None:
            loc = lb.location
            moved = (cfg.location and loc.name != cfg.location) or (cfg.network_zone and loc.network_zone != cfg.network_zone)
            if moved:
                wanted = cfg.location or cfg.network_zone
                if (lb.protection or {}).get("delete"):
                    raise CloudError(
                        f"Load Balancer {lb.name} is in {loc.name}, keybuzz.yaml wants {wanted}, and it is protected against deletion",
                        "a location cannot change in place: remove the delete protection to let apply recreate it, or set "
                        f"load_balancer.location back to {loc.name}",
                        "protected",
                    )
                ips = ", ".join(x for x in (lb.public_net.ipv4.ip, lb.public_net.ipv6.ip) if x)
                old_id = lb.id
                self._add(
                    Change(
                        LAYER, "delete", "LoadBalancer", lb.name,
                        diff=[FieldDiff(".location", loc.name, wanted)],
                        note=f"a location / network zone cannot change in place: the LB is deleted and recreated in {wanted}; "
                        f"the LB gets new IPs (now {ips}); DNS records must follow",
                        destructive=True,
                    ),
                    lambda: self._delete_lb(old_id),
                )
                self.lb = None
                self.lb_id = None
                lb = None
        if lb is None:
            self._add(
                Change(LAYER, "create", "LoadBalancer", cfg.name, desired=create_desired, note=f"{cfg.type} in {cfg.location or cfg.network_zone}, attached to {cfg.network}"),
                self._create_lb,
            )
            self.network_attachment()
            return
        diff: list[FieldDiff] = []
        if lb.name != cfg.name:
            diff.append(FieldDiff(".name", lb.name, cfg.name))
        merged = {**(lb.labels or {}), **want_labels}  # never drop labels someone else set
        if merged != (lb.labels or {}):
            diff.extend(diff_objects(lb.labels or {}, merged, ".labels"))
        if lb.algorithm.type != cfg.algorithm:
            diff.append(FieldDiff(".algorithm.type", lb.algorithm.type, cfg.algorithm))
        if lb.load_balancer_type.name != cfg.type:
            diff.append(FieldDiff(".load_balancer_type", lb.load_balancer_type.name, cfg.type))
        note = "found by name: keybuzz-tui labels will be added (adopted)" if self.found_by == "name" and merged != (lb.labels or {}) else ""
        self.network_attachment()  # an existing LB is attached to the network before anything else changes
        if diff:
            self._add(Change(LAYER, "update", "LoadBalancer", cfg.name, diff=diff, desired=create_desired, note=note), lambda: self._update_lb(lb, merged))
        else:
            self._add(Change(LAYER, "unchanged", "LoadBalancer", cfg.name, desired=create_desired))

    def _create_lb(self) -> dict[str, Any]:
        from hcloud.load_balancer_types import LoadBalancerType
        from hcloud.load_balancers import LoadBalancerAlgorithm
        from hcloud.locations import Location
        from hcloud.networks import Network

        cfg, c = self.cfg, self.client
        network = Network(id=self.network.id) if self.network is not None else None
        labels = desired_labels(self.ctx)
        resp = self._call(
            f"creating Load Balancer {cfg.name}",
            lambda: c.load_balancers.create(
                name=cfg.name,
                load_balancer_type=LoadBalancerType(name=cfg.type),
                algorithm=LoadBalancerAlgorithm(type=cfg.algorithm),
                labels=labels,
                location=Location(name=cfg.location) if cfg.location else None,
                network_zone=cfg.network_zone or None,
                public_interface=True,
                network=network,  # attached from the start: private targets need it first
            ),
        )
        self.lb_id = resp.load_balancer.id
        self._wait(resp.action, f"creating Load Balancer {cfg.name}")
        return {"id": self.lb_id, "ipv4": resp.load_balancer.public_net.ipv4.ip}

    def _delete_lb(self, lb_id: int) -> dict[str, Any]:
        from hcloud.load_balancers import LoadBalancer

        resp = self._call(f"deleting Load Balancer {lb_id}", lambda: self.client.load_balancers.delete(LoadBalancer(id=lb_id)))
        if getattr(resp, "action", None) is not None:
            self._wait(resp.action, f"deleting Load Balancer {lb_id}")
        self.lb_id = None
        return {"id": lb_id}

    def _update_lb(self, lb: Any, labels: dict[str, str]) -> dict[str, Any]:
        from hcloud.load_balancer_types import LoadBalancerType
        from hcloud.load_balancers import LoadBalancerAlgorithm

        cfg, c, ref = self.cfg, self.client, self._lb_ref()
        if lb.name != cfg.name or labels != (lb.labels or {}):
            self._call(f"updating Load Balancer {cfg.name} (name, labels)", lambda: c.load_balancers.update(ref, name=cfg.name, labels=labels))
        if lb.algorithm.type != cfg.algorithm:
            action = self._call("changing the algorithm", lambda: c.load_balancers.change_algorithm(ref, LoadBalancerAlgorithm(type=cfg.algorithm)))
            self._wait(action, f"changing the algorithm of {cfg.name}")
        if lb.load_balancer_type.name != cfg.type:
            action = self._call("changing the Load Balancer type", lambda: c.load_balancers.change_type(ref, LoadBalancerType(name=cfg.type)))
            self._wait(action, f"changing the type of {cfg.name} to {cfg.type}")
        return {"id": self.lb_id}

    # --- network ------------------------------------------------------------------------------

    def network_attachment(self) -> None:
        if self.network is None:
            return
        name = f"{self.cfg.name}/{self.network.name}"
        if self.lb is None:
            # not "unchanged": the attachment is new, it just comes with the LB's creation call
            self._add(Change(LAYER, "create", "LoadBalancerNetwork", name, desired={"network": self.network.name},
                             note="attached when the LB is created"))
            return
        attached = [pn.network.id for pn in (self.lb.private_net or [])]
        if self.network.id in attached:
            self._add(Change(LAYER, "unchanged", "LoadBalancerNetwork", name))
            return
        diff = [FieldDiff(".private_net[].network", attached[0] if attached else None, self.network.id)]
        note = "attached before any target or service change (private-IP targets need it)"
        if attached:
            note = f"detached from network {attached[0]} and attached to {self.network.name}: {note}"
        self._add(
            Change(LAYER, "update" if attached else "create", "LoadBalancerNetwork", name, diff=diff, note=note),
            lambda: self._attach(attached),
        )

    def _attach(self, attached: list[int]) -> dict[str, Any]:
        from hcloud.networks import Network

        c, ref = self.client, self._lb_ref()
        for nid in attached:
            action = self._call(f"detaching from network {nid}", lambda nid=nid: c.load_balancers.detach_from_network(ref, Network(id=nid)))
            self._wait(action, f"detaching {self.cfg.name} from network {nid}")
        action = self._call(f"attaching to network {self.network.name}", lambda: c.load_balancers.attach_to_network(ref, Network(id=self.network.id)))
        self._wait(action, f"attaching {self.cfg.name} to network {self.network.name}")
        return {"network": self.network.id}

    # --- targets ------------------------------------------------------------------------------

    def targets(self) -> None:
        cfg = self.cfg
        names = {s.id: s.name for s in self.servers}
        desired: dict[tuple[str, Any], str] = {}
        if self.target_mode == "label_selector":
            desired[("label_selector", cfg.target_selector)] = f"label_selector:{cfg.target_selector}"
        else:
            for s in self.servers:
                desired[("server", s.id)] = f"server:{s.name}"
        if not self.servers:
            self.plan.warnings.append(
                f"no server matches load_balancer.target_selector {cfg.target_selector!r}: the Load Balancer would have no "
                "targets; check the labels of the worker servers (hcloud server list -o columns=name,labels)"
            )
        live: dict[tuple[str, Any], Any] = {}
        for t in (self.lb.targets or []) if self.lb is not None else []:
            if t.type == "label_selector":
                live[("label_selector", t.label_selector.selector)] = t
            elif t.type == "server":
                live[("server", t.server.id)] = t
            else:
                live[("ip", t.ip.ip)] = t
        for key, name in desired.items():
            t = live.get(key)
            want = {"type": key[0], key[0]: key[1], "use_private_ip": cfg.use_private_ip}
            if t is None:
                self._add(Change(LAYER, "create", "LoadBalancerTarget", name, desired=want), lambda key=key: self._add_target(key))
            elif bool(t.use_private_ip) != cfg.use_private_ip:
                self._add(
                    Change(
                        LAYER, "update", "LoadBalancerTarget", name,
                        diff=[FieldDiff(".use_private_ip", bool(t.use_private_ip), cfg.use_private_ip)],
                        desired=want,
                        note="use_private_ip cannot change in place: the target is removed and added again",
                    ),
                    lambda key=key: self._readd_target(key),
                )
            else:
                self._add(Change(LAYER, "unchanged", "LoadBalancerTarget", name, desired=want))
        for key in live:
            if key in desired:
                continue
            label = f"{key[0]}:{names.get(key[1], key[1])}" if key[0] == "server" else f"{key[0]}:{key[1]}"
            self._add(
                Change(LAYER, "delete", "LoadBalancerTarget", label, note="not wanted by keybuzz.yaml (target_selector / target mode)"),
                lambda key=key: self._remove_target(key),
            )

    def _target(self, key: tuple[str, Any], with_private: bool = True) -> Any:
        from hcloud.load_balancers import (
            LoadBalancerTarget,
            LoadBalancerTargetIP,
            LoadBalancerTargetLabelSelector,
        )
        from hcloud.servers import Server

        upi = self.cfg.use_private_ip if with_private else None
        if key[0] == "label_selector":
            return LoadBalancerTarget(type="label_selector", label_selector=LoadBalancerTargetLabelSelector(selector=key[1]), use_private_ip=upi)
        if key[0] == "server":
            return LoadBalancerTarget(type="server", server=Server(id=key[1]), use_private_ip=upi)
        return LoadBalancerTarget(type="ip", ip=LoadBalancerTargetIP(ip=key[1]))

    def _add_target(self, key: tuple[str, Any]) -> dict[str, Any]:
        ref, target = self._lb_ref(), self._target(key)
        action = self._call(f"adding target {key[0]} {key[1]}", lambda: self.client.load_balancers.add_target(ref, target))
        self._wait(action, f"adding target {key[0]} {key[1]}")
        return {"target": f"{key[0]}:{key[1]}", "use_private_ip": self.cfg.use_private_ip}

    def _remove_target(self, key: tuple[str, Any]) -> dict[str, Any]:
        ref, target = self._lb_ref(), self._target(key, with_private=False)
        action = self._call(f"removing target {key[0]} {key[1]}", lambda: self.client.load_balancers.remove_target(ref, target))
        self._wait(action, f"removing target {key[0]} {key[1]}")
        return {"target": f"{key[0]}:{key[1]}"}

    def _readd_target(self, key: tuple[str, Any]) -> dict[str, Any]:
        self._remove_target(key)
        return self._add_target(key)

    # --- services -----------------------------------------------------------------------------

    def services(self) -> None:
        cfg = self.cfg
        live = {s.listen_port: s for s in (self.lb.services or [])} if self.lb is not None else {}
        wanted = {s.listen_port: s for s in cfg.services}
        # order matters for listen ports: leftovers go first (a leftover redirect_http service
        # holds port 80), then updates, then new services
        for port in sorted(set(live) - set(wanted)):
            self._add(
                Change(LAYER, "delete", "LoadBalancerService", f"{cfg.name}:{port}", note="not in load_balancer.services"),
                lambda port=port: self._delete_service(port),
            )
        for port in sorted(wanted):
            s = wanted[port]
            want = desired_service(self.ctx, s.protocol, s.destination_port, s.redirect_http, self.cert_name if s.protocol == "https" else None)
            name = f"{cfg.name}:{port}"
            if port not in live:
                self._add(
                    Change(LAYER, "create", "LoadBalancerService", name, desired={"listen_port": port, **want}, note=f"{s.protocol} {port} -> {s.destination_port}"),
                    lambda s=s: self._put_service(s, "add"),
                )
                continue
            have = live_service(live[port], self.cert_names)
            diff = diff_objects(have, want)
            if not diff:
                self._add(Change(LAYER, "unchanged", "LoadBalancerService", name, desired={"listen_port": port, **want}))
                continue
            notes = []
            domain = (have.get("health_check", {}).get("http") or {}).get("domain")
            if domain:
                notes.append("health check domain reset to null: ingress-nginx answers /healthz only when the Host matches no vhost")
            if have.get("proxyprotocol"):
                notes.append("proxyprotocol off: ingress-nginx does not expect the PROXY protocol (broken header / 400)")
            if (have.get("http") or {}).get("redirect_http") and not s.redirect_http:
                notes.append("redirect_http off: it holds port 80; the ingress redirects to https instead")
            self._add(
                Change(LAYER, "update", "LoadBalancerService", name, diff=diff, desired={"listen_port": port, **want}, note="; ".join(notes)),
                lambda s=s, reset=bool(domain): self._put_service(s, "update", reset_domain=reset),
            )

    def _service_obj(self, s: Any) -> Any:
        from hcloud.certificates import Certificate
        from hcloud.load_balancers import (
            LoadBalancerHealthCheck,
            LoadBalancerHealthCheckHttp,
            LoadBalancerService,
            LoadBalancerServiceHttp,
        )

        hc = desired_health_check(self.ctx)
        http_hc = None
        if "http" in hc:
            h = hc["http"]
            http_hc = LoadBalancerHealthCheckHttp(domain=None, path=h["path"], response=h["response"], status_codes=h["status_codes"], tls=h["tls"])
        health = LoadBalancerHealthCheck(protocol=hc["protocol"], port=hc["port"], interval=hc["interval"], timeout=hc["timeout"], retries=hc["retries"], http=http_hc)
        http = None
        if s.protocol == "https":
            if self.cert_id is None:
                raise CloudError(f"the https service {s.listen_port} needs a certificate and none is known", "check load_balancer.certificate, plan and apply again")
            http = LoadBalancerServiceHttp(redirect_http=s.redirect_http, certificates=[Certificate(id=self.cert_id)])
        elif s.protocol == "http":
            http = LoadBalancerServiceHttp()
        return LoadBalancerService(
            protocol=s.protocol, listen_port=s.listen_port, destination_port=s.destination_port, proxyprotocol=False, health_check=health, http=http
        )

    def _put_service(self, s: Any, how: str, reset_domain: bool = False) -> dict[str, Any]:
        from hcloud.actions import BoundAction

        c, ref, svc = self.client, self._lb_ref(), self._service_obj(s)
        what = f"{'adding' if how == 'add' else 'updating'} service {s.listen_port} of {self.cfg.name}"
        if how == "add":
            action = self._call(what, lambda: c.load_balancers.add_service(ref, svc))
        elif reset_domain:
            # hcloud leaves None fields out of the payload: send the null domain ourselves
            payload = svc.to_payload()
            payload.setdefault("health_check", {}).setdefault("http", {})["domain"] = None
            resp = self._call(what, lambda: c.request(method="POST", url=f"/load_balancers/{self.lb_id}/actions/update_service", json=payload))
            action = BoundAction(c.actions, resp["action"])
        else:
            action = self._call(what, lambda: c.load_balancers.update_service(ref, svc))
        self._wait(action, what)
        return {"listen_port": s.listen_port}

    def _delete_service(self, port: int) -> dict[str, Any]:
        from hcloud.load_balancers import LoadBalancerService

        ref = self._lb_ref()
        what = f"deleting service {port} of {self.cfg.name}"
        action = self._call(what, lambda: self.client.load_balancers.delete_service(ref, LoadBalancerService(listen_port=port)))
        self._wait(action, what)
        return {"listen_port": port}

    # --- known traps (reference 3.3 and 4) ----------------------------------------------------

    def traps(self) -> None:
        cfg, ing, w = self.cfg, self.ctx.config.ingress, self.plan.warnings
        for s in cfg.services:
            if s.destination_port == ing.https_node_port:
                w.append(
                    f"service {s.listen_port} forwards to ingress-nginx's HTTPS NodePort {ing.https_node_port}: the LB sends plain "
                    f"HTTP there and nginx answers 400 'plain HTTP request was sent to HTTPS port'; forward to {ing.http_node_port} (the runbook)"
                )
            elif s.destination_port != ing.http_node_port:
                w.append(f"service {s.listen_port} forwards to {s.destination_port}, not ingress-nginx's HTTP NodePort {ing.http_node_port} (the runbook's setting)")
            if s.redirect_http:
                w.append(
                    f"service {s.listen_port} has redirect_http: the LB then takes port 80 itself, so no port-80 service may exist; "
                    "keybuzz-tui's default keeps redirect_http false and lets the ingress redirect"
                )
        if cfg.health_check.port != ing.http_node_port:
            w.append(f"the health check asks port {cfg.health_check.port}, not ingress-nginx's HTTP NodePort {ing.http_node_port}: targets may look healthy while traffic fails, or the reverse")
        if not cfg.use_private_ip:
            w.append(
                f"targets use public IPs: NodePort {ing.http_node_port} must be open to the LB in the Hetzner firewall and UFW of every "
                "worker; with use_private_ip: true the traffic stays on the private network (not filtered by Hetzner firewalls)"
            )
        if cfg.certificate.type != "none" and not any(s.protocol == "https" for s in cfg.services):
            w.append("a certificate is configured but no https service uses it")

    def compute(self) -> _Reconciler:
        self.read()
        self.certificate()
        self.load_balancer()  # with the network attachment, first for an existing LB
        self.targets()
        self.services()
        self.traps()
        return self


def _signature(changes: Iterable[Change]) -> list[tuple[str, str, str, tuple[str, ...], bool]]:
    return sorted((c.kind, c.name, c.action, tuple(c.lines()), c.destructive) for c in changes if c.layer == LAYER)


# --- the public API --------------------------------------------------------------------------


def plan(ctx: Context, *, target_mode: str = "label_selector") -> Plan:
    """What apply would change on the Hetzner Load Balancer, read from the live project.

    target_mode: "label_selector" (one target for load_balancer.target_selector, as kube-hetzner
    does) or "servers" (one server target per matching server, keyed by id, as the CCM does)."""
    r = _Reconciler(ctx, target_mode=target_mode).compute()
    for c in r.plan.changes:
        ctx.emit(ObjectPlanned(step=STEP, action=c.action, kind=c.kind, name=c.name, diff=tuple(c.lines())))
    for w in r.plan.warnings:
        ctx.emit(Warning_(step=STEP, message=w))
    return r.plan


def apply(
    ctx: Context,
    plan: Plan,
    *,
    target_mode: str = "label_selector",
    allow_destructive: bool = False,
    timeout: float = DEFAULT_ACTION_TIMEOUT,
) -> Plan:
    """Make the confirmed plan true, in order: certificate, LB (network attached first), targets,
    services; each action waited for. Refuses a plan that no longer matches the project (someone
    changed it meanwhile) and destructive changes unless `allow_destructive` (the operator
    confirmed them). Returns the plan that was applied."""
    mine = [c for c in plan.changes if c.layer == LAYER]
    if any(c.destructive for c in mine) and not allow_destructive:
        notes = "; ".join(c.note for c in mine if c.destructive)
        raise CloudError(f"the plan contains a destructive change: {notes}", "confirm it explicitly (allow_destructive / --yes after review)", "destructive")
    ctx.emit(StepStarted(step=STEP, title="Load balancer"))
    with finishing_on_failure(ctx, STEP):
        r = _Reconciler(ctx, target_mode=target_mode, timeout=timeout).compute()
        if _signature(r.plan.changes) != _signature(mine):
            raise CloudError(
                "the Load Balancer changed since the plan was made (or the plan is from another configuration)",
                "run plan again, review the new changes, and apply that plan",
                "stale_plan",
            )
        done = 0
        for op in r.ops:
            ctx.cancel.check()
            ch = op.change
            if ch.action in ("unchanged", "manual"):
                continue
            extra = op.run() or {}
            done += 1
            applied(ctx, STEP, ch, **extra)
    ctx.emit(StepFinished(step=STEP, status="ok", summary=f"{done} change(s) applied" if done else "nothing to change"))
    return r.plan


def find(ctx: Context) -> Any:
    """Our Load Balancer (by label, then by name), or None."""
    c = hcloud_client(ctx)
    labels = identity_labels(ctx)
    found = call(ctx, c, "looking up the Load Balancer by label", lambda: c.load_balancers.get_all(label_selector=_selector(labels)))
    if found:
        return found[0]
    return call(ctx, c, f"looking up Load Balancer {ctx.config.load_balancer.name}", lambda: c.load_balancers.get_by_name(ctx.config.load_balancer.name))


def public_ips(lb: Any) -> list[str]:
    """The LB's public addresses (IPv4 first), what DNS must point at."""
    out = []
    pn = getattr(lb, "public_net", None)
    if pn is not None:
        for fam in (pn.ipv4, pn.ipv6):
            if fam is not None and fam.ip:
                out.append(fam.ip.split("/")[0])
    return out


def addresses(ctx: Context) -> list[str]:
    """The public IPs of our Load Balancer ([] when it does not exist yet)."""
    lb = find(ctx)
    return public_ips(lb) if lb is not None else []


@dataclass(frozen=True)
class TargetState:
    listen_port: int
    target: str  # the server's name (or "server <id>", or the ip)
    server_id: int | None
    status: str  # healthy | unhealthy | unknown
    detail: str = ""
    http_status_code: int | None = None


def _health(lb: Any, names: dict[int, str]) -> list[TargetState]:
    out: list[TargetState] = []
    seen: set[tuple[int, str]] = set()
    for t in lb.targets or []:
        nested = (t.targets or []) if t.type == "label_selector" else [t]
        for n in nested:
            if n.type == "server":
                sid = n.server.id
                name, ident = names.get(sid, f"server {sid}"), sid
            else:
                name, ident = n.ip.ip if n.ip else "ip", None
            for h in n.health_status or []:
                key = (h.listen_port, name)
                if key in seen:
                    continue
                seen.add(key)
                out.append(TargetState(h.listen_port, name, ident, h.status, h.detail or "", h.http_status_code))
    return sorted(out, key=lambda s: (s.listen_port, s.target))


def _target_event(lb_name: str, s: TargetState) -> TargetHealth:
    kw: dict[str, Any] = {"step": STEP, "lb": lb_name, "listen_port": s.listen_port, "target": s.target, "status": s.status}
    if "detail" in getattr(TargetHealth, "__dataclass_fields__", {}):
        kw["detail"] = s.detail
    return TargetHealth(**kw)


def _server_names(ctx: Context, client: Any) -> dict[int, str]:
    selector = ctx.config.load_balancer.target_selector
    servers = call(ctx, client, f"listing servers matching {selector}", lambda: client.servers.get_all(label_selector=selector))
    return {s.id: s.name for s in servers}


def wait_healthy(ctx: Context, timeout: float = 120.0, *, until: str = "healthy") -> dict[tuple[int, str], str]:
    """Follow target health per service until every target is healthy (until="healthy") or has a
    verdict (until="settled": none `unknown`), or `timeout` passes. Emits TargetHealth on every
    change, and a Warning_ with the detail for an unhealthy target. Returns
    {(listen_port, target name): status}."""
    if until not in ("healthy", "settled"):
        raise ValueError("until is healthy or settled")
    client = hcloud_client(ctx)
    lb = find(ctx)
    if lb is None:
        raise CloudError(f"Load Balancer {ctx.config.load_balancer.name} does not exist", "run plan and apply first", "not_found")
    names = _server_names(ctx, client)
    last: dict[tuple[int, str], tuple[str, str]] = {}
    deadline = time.monotonic() + timeout
    n = 0
    states: list[TargetState] = []
    while True:
        if n:
            lb = call(ctx, client, f"reading Load Balancer {lb.name}", lambda lb_id=lb.id: client.load_balancers.get_by_id(lb_id))
        states = _health(lb, names)
        for s in states:
            key = (s.listen_port, s.target)
            if last.get(key) == (s.status, s.detail):
                continue
            last[key] = (s.status, s.detail)
            ctx.emit(_target_event(lb.name, s))
            if s.status == "unhealthy":
                ctx.emit(
                    Warning_(
                        step=STEP,
                        message=f"{lb.name}: target {s.target} is unhealthy on service {s.listen_port}: {s.detail or 'no detail'}",
                        remediation=f"on {s.target}, check that ingress-nginx answers /healthz on NodePort "
                        f"{ctx.config.load_balancer.health_check.port} (curl http://<worker-ip>:{ctx.config.load_balancer.health_check.port}/healthz "
                        "from another node) and that no UFW or Hetzner firewall rule drops that port (sudo ufw status numbered)",
                    )
                )
        statuses = [s.status for s in states]
        if statuses and all(x == "healthy" for x in statuses):
            break
        if until == "settled" and statuses and all(x != "unknown" for x in statuses):
            break
        if not states and not (lb.targets and lb.services):
            ctx.emit(Warning_(step=STEP, message=f"{lb.name} has no services or no targets: nothing to be healthy", remediation="run plan and apply"))
            break
        if time.monotonic() >= deadline:
            break
        n += 1
        if ctx.cancel.wait(min(poll_interval(client, n), max(0.0, deadline - time.monotonic()))):
            raise Cancelled(ctx.cancel.reason)
    result = {(s.listen_port, s.target): s.status for s in states}
    healthy = sum(1 for v in result.values() if v == "healthy")
    ctx.emit(Info(step=STEP, message=f"{lb.name}: {healthy}/{len(result)} service targets healthy"))
    return result


@dataclass
class CertificateState:
    name: str
    type: str
    issuance: str = ""  # managed: pending | completed | failed
    error: str = ""
    domains: list[str] = field(default_factory=list)
    not_valid_after: str = ""


@dataclass
class LBStatus:
    """What the validation board shows about the Load Balancer."""

    exists: bool
    name: str
    id: int | None = None
    ipv4: str = ""
    ipv6: str = ""
    private_ip: str = ""
    location: str = ""
    services: list[dict[str, Any]] = field(default_factory=list)
    targets: list[TargetState] = field(default_factory=list)
    certificates: list[CertificateState] = field(default_factory=list)

    @property
    def ips(self) -> list[str]:
        return [x for x in (self.ipv4, self.ipv6) if x]

    def checks(self) -> list[CheckResult]:
        """Named checks: lb-exists, lb-services, lb-targets (every target healthy), lb-certificate."""
        out: list[CheckResult] = []
        if not self.exists:
            return [CheckResult(step=STEP, check="lb-exists", layer=LAYER, status="fail", title="Load Balancer exists",
                                detail=f"no Load Balancer {self.name}", remediation="run keybuzz-tui apply")]
        out.append(CheckResult(step=STEP, check="lb-exists", layer=LAYER, status="ok", title="Load Balancer exists",
                               detail=f"{self.name} ({self.location}) {', '.join(self.ips)} private {self.private_ip or '-'}"))
        svc = ", ".join(f"{s['protocol']} {s['listen_port']}->{s['destination_port']}" for s in self.services)
        out.append(CheckResult(step=STEP, check="lb-services", layer=LAYER, status="ok" if self.services else "fail",
                               title="Load Balancer services", detail=svc or "no service", remediation="" if self.services else "run keybuzz-tui apply"))
        bad = [t for t in self.targets if t.status != "healthy"]
        if not self.targets:
            status, detail = "fail", "no target"
        elif any(t.status == "unhealthy" for t in bad):
            status = "fail"
            detail = "; ".join(f"{t.target} on {t.listen_port}: {t.status}{' (' + t.detail + ')' if t.detail else ''}" for t in bad)
        elif bad:
            status, detail = "pending", f"{len(bad)} target(s) not checked yet"
        else:
            status, detail = "ok", f"{len(self.targets)} service targets healthy"
        out.append(CheckResult(step=STEP, check="lb-targets", layer=LAYER, status=status, title="every LB target healthy", detail=detail,
                               remediation="" if status == "ok" else "check ingress-nginx /healthz on NodePort 31695 of the named workers and their UFW rules"))
        for c in self.certificates:
            if c.type == "managed" and c.issuance != "completed":
                st = "fail" if c.issuance == "failed" else "pending"
                out.append(CheckResult(step=STEP, check="lb-certificate", layer=LAYER, status=st, title=f"certificate {c.name}",
                                       detail=f"issuance {c.issuance}{': ' + c.error if c.error else ''}",
                                       remediation="check the domains are in the Hetzner zone and CAA allows letsencrypt.org; apply retries the issuance"))
            else:
                out.append(CheckResult(step=STEP, check="lb-certificate", layer=LAYER, status="ok", title=f"certificate {c.name}",
                                       detail=f"{c.type}, {', '.join(c.domains)}{', valid until ' + c.not_valid_after if c.not_valid_after else ''}"))
        return out


def status(ctx: Context) -> LBStatus:
    """The Load Balancer as it is now: addresses, services, target health, certificates."""
    client = hcloud_client(ctx)
    lb = find(ctx)
    name = ctx.config.load_balancer.name
    if lb is None:
        return LBStatus(False, name)
    names = _server_names(ctx, client)
    cert_ids = sorted({c.id for s in (lb.services or []) if s.http is not None for c in (s.http.certificates or [])})
    certs = []
    for cid in cert_ids:
        c = call(ctx, client, f"reading certificate {cid}", lambda cid=cid: client.certificates.get_by_id(cid))
        st = c.status
        err = f"{st.error.message} ({st.error.code})" if st is not None and st.error is not None else ""
        certs.append(
            CertificateState(
                c.name, c.type, st.issuance if st is not None else "completed", err, list(c.domain_names or []),
                c.not_valid_after.strftime("%Y-%m-%d") if c.not_valid_after else "",
            )
        )
    services = [{"protocol": s.protocol, "listen_port": s.listen_port, "destination_port": s.destination_port} for s in lb.services or []]
    pn = lb.public_net
    return LBStatus(
        True,
        lb.name,
        lb.id,
        ipv4=(pn.ipv4.ip or "") if pn and pn.ipv4 else "",
        ipv6=(pn.ipv6.ip or "").split("/")[0] if pn and pn.ipv6 else "",
        private_ip=next((p.ip for p in (lb.private_net or [])), ""),
        location=lb.location.name if lb.location else "",
        services=services,
        targets=_health(lb, names),
        certificates=certs,
    )
