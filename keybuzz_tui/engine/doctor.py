"""The doctor: find why the platform is down, say it in plain words, and say what to do.

`run(ctx)` runs named checks across five layers, each with a status, the evidence it rests on
(what was measured, verbatim: the probe pod's output, the HTTP answer, the node condition...) and
a remediation, then combines them into a ranked `Diagnosis`:

  kubernetes  k8s.api, k8s.permissions, k8s.nodes, k8s.nodeport-range, k8s.collisions
  overlay     overlay.backend, overlay.pod-to-pod, overlay.clusterip, overlay.coredns
  hetzner     hetzner.token, hetzner.lb, hetzner.targets, hetzner.firewall, hetzner.quotas
  dns         dns.records
  platform    platform.topology, platform.objects, platform.interrupted, platform.lock,
              platform.request-path, https.<record> per public host

platform.objects, hetzner.targets, platform.interrupted and platform.lock look at what recovery
repairs (doctor_recovery.py): the drift against keybuzz.yaml and the keyring, the LB's targets
against the current workers, an apply stopped halfway in the journal, and the platform lock.

Every check can be skipped by name on purpose, as kubeadm's preflight checks are
(`skip={"overlay.pod-to-pod"}`, prefixes such as `hetzner` too); the report says it was skipped
deliberately. `probes=False` creates no pod at all (the three overlay tests then say so).

The checks run on the validation's scheduler (checks_run.run_checks: dependencies, a thread pool,
a timeout per check, a cancel honoured at once) over a DoctorState (the validation's shared state
plus the doctor's facts). Progress is a stream of CheckResult events with step "doctor" and the
layer names above (and the trace's HopResult cells). A cancel returns the partial report; the
overlay probe's pods are deleted before `run` returns, whatever happened.

The Doctor screen draws its rows from `catalogue(config)` before the run and fills them from the
events; the Recovery screen reads `DoctorReport.diagnosis.causes` (each names the repair steps
that fix it).
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..cancel import Cancelled
from ..config import Config
from ..events import StepFinished, StepStarted
from ..redact import REDACTOR
from . import checks_cloud, doctor_cloud, doctor_kube, doctor_overlay, doctor_platform, doctor_recovery
from .checks_base import STATUS_ORDER, Check, CheckOutcome, CheckRecord
from .checks_counter import ApiCounter
from .checks_registry import UnknownCheck, https_check_id, select_checks
from .checks_run import info_for, run_checks
from .context import Context
from .doctor_diagnosis import Cause, Diagnosis, diagnose
from .doctor_state import DEFAULT_EXPECTED_WORKERS, STEP, DoctorState, doctor_ctx, prime
from .trace import Hop, first_broken

__all__ = [
    "LAYERS", "LAYER_TITLES", "DEFAULT_EXPECTED_WORKERS", "PROBE_CHECKS", "Cause", "Diagnosis", "DoctorReport", "UnknownCheck",
    "build_checks", "catalogue", "check_ids", "run",
]

LAYERS = ("kubernetes", "overlay", "hetzner", "dns", "platform")
LAYER_TITLES = {"kubernetes": "Kubernetes", "overlay": "The overlay network (Flannel)", "hetzner": "Hetzner Cloud",
                "dns": "DNS", "platform": "The platform"}
PROBE_CHECKS = ("overlay.pod-to-pod", "overlay.clusterip", "overlay.coredns")

DRIFT_TIMEOUT = 90.0  # the drift plans every object by server-side dry run, and the LB, DNS and firewall

# exit codes, the CLI's conventions (cli.py)
OK, FAILED, USAGE, CREDENTIALS, UNREACHABLE, INTERRUPTED = 0, 1, 2, 4, 5, 130


def build_checks(cfg: Config, *, probe_timeout: float = doctor_overlay.PROBE_TIMEOUT) -> list[Check]:
    """Every doctor check for this configuration, in report order."""
    k = ("k8s.api",)
    probe_t = probe_timeout + doctor_overlay.CLEANUP_WAIT + 20
    checks = [
        Check("k8s.api", "kubernetes", "Kubernetes API reachable, and its version", doctor_kube.check_api),  # type: ignore[arg-type]
        Check("k8s.permissions", "kubernetes", "Permissions the wizard needs (SelfSubjectAccessReview)", doctor_kube.check_permissions,  # type: ignore[arg-type]
              requires=k),
        Check("k8s.nodes", "kubernetes", "Nodes Ready, roles, taints, number of workers", doctor_kube.check_nodes, requires=k),  # type: ignore[arg-type]
        Check("k8s.nodeport-range", "kubernetes", "The chosen NodePorts are in the cluster's NodePort range", doctor_kube.check_nodeport_range,  # type: ignore[arg-type]
              requires=k),
        Check("k8s.collisions", "kubernetes", "Nothing existing collides with the platform's objects and ports", doctor_kube.check_collisions,  # type: ignore[arg-type]
              requires=k, after=("k8s.nodeport-range",)),
        Check("overlay.backend", "overlay", "The Flannel backend and what it needs between the nodes", doctor_overlay.check_backend,  # type: ignore[arg-type]
              requires=k),
        Check("overlay.pod-to-pod", "overlay", "A pod reaches a pod on another node (wget over the overlay)", doctor_overlay.check_pod_to_pod,  # type: ignore[arg-type]
              requires=k, after=("overlay.backend",), source="net", timeout=probe_t),
        Check("overlay.clusterip", "overlay", "A pod reaches the kube-dns ClusterIP (nc -z ... 53)", doctor_overlay.check_clusterip,  # type: ignore[arg-type]
              requires=k, after=("overlay.backend",), source="net", timeout=probe_t),
        Check("overlay.coredns", "overlay", "A pod resolves a name through CoreDNS (nslookup)", doctor_overlay.check_coredns,  # type: ignore[arg-type]
              requires=k, after=("overlay.backend",), source="net", timeout=probe_t),
        Check("hetzner.token", "hetzner", "Hetzner API token valid and writable", doctor_cloud.check_token, source="net"),  # type: ignore[arg-type]
        Check("hetzner.lb", "hetzner", "Load Balancer: exists, on the network, services, targets healthy", doctor_cloud.check_lb,  # type: ignore[arg-type]
              after=("hetzner.token",), source="net"),
        Check("hetzner.targets", "hetzner", "Load Balancer targets are the cluster's current workers (a replaced worker)", doctor_recovery.check_targets,  # type: ignore[arg-type]
              after=("hetzner.lb",), source="net", timeout=DRIFT_TIMEOUT),
        Check("hetzner.firewall", "hetzner", "Hetzner firewalls let the NodePorts through", doctor_cloud.check_firewall,  # type: ignore[arg-type]
              after=("hetzner.token",), source="net"),
        Check("hetzner.quotas", "hetzner", "Load Balancer type limits and API budget", doctor_cloud.check_quotas,  # type: ignore[arg-type]
              after=("hetzner.lb",), source="net"),
        Check("dns.records", "dns", "DNS (authoritative and resolver) answers the Load Balancer's IPs", doctor_cloud.check_dns_records,  # type: ignore[arg-type]
              after=("hetzner.lb",), source="net"),
        Check("platform.topology", "platform", "Topology: hostNetwork DaemonSets or classic Deployments", doctor_platform.check_topology,  # type: ignore[arg-type]
              requires=k, after=PROBE_CHECKS),
        Check("platform.objects", "platform", "The platform's objects match keybuzz.yaml and the keyring (Secrets, images)", doctor_recovery.check_objects,  # type: ignore[arg-type]
              requires=k, after=("platform.topology",), timeout=DRIFT_TIMEOUT),
        Check("platform.interrupted", "platform", "No apply or repair stopped halfway (the journal)", doctor_recovery.check_interrupted,  # type: ignore[arg-type]
              after=("platform.objects", "hetzner.targets"), timeout=DRIFT_TIMEOUT),
        Check("platform.lock", "platform", "The platform lock: free, or who holds it", doctor_recovery.check_lock,  # type: ignore[arg-type]
              requires=k),
        Check("platform.request-path", "platform", "Request path per worker: the first broken hop", doctor_platform.check_request_path,  # type: ignore[arg-type]
              after=("k8s.api", "hetzner.lb", "dns.records"), source="net"),
    ]
    for app in cfg.apps:
        if app.host:
            checks.append(Check(https_check_id(cfg, app.host), "platform", f"https://{app.host} answers 200 with a valid certificate",
                                checks_cloud.make_https_check(app), after=("dns.records", "hetzner.lb"), source="net"))
    return [dataclasses.replace(c, run=_translated(c.run)) for c in checks]


# the validation's check ids that reused texts mention, as the doctor's ids (others, such as
# k8s.pods-ready, stay: `keybuzz-tui validate --only k8s.pods-ready` runs them)
_VALIDATION_IDS = {"ingress.routing": "platform.request-path", "dns.resolver": "dns.records", "dns.authoritative": "dns.records",
                   "lb.services": "hetzner.lb", "lb.targets-healthy": "hetzner.lb", "lb.certificate": "hetzner.lb"}
_ID_RE = re.compile(r"\b(" + "|".join(re.escape(k) for k in _VALIDATION_IDS) + r")\b")
_DUP_RE = re.compile(r"\b([a-z0-9]+\.[a-z0-9.-]+)((?: / | and |, )\1\b)+")


def doctor_words(text: str) -> str:
    """A reused validation text with the doctor's check ids ("see dns.resolver" -> "see dns.records")."""
    if not text:
        return text
    return _DUP_RE.sub(r"\1", _ID_RE.sub(lambda m: _VALIDATION_IDS[m.group(1)], text))


def _translated(fn: Any) -> Any:
    def run(ctx: Context, state: Any) -> CheckOutcome:
        out = fn(ctx, state)
        if not isinstance(out, CheckOutcome):
            return out
        return dataclasses.replace(out, detail=doctor_words(out.detail), remediation=doctor_words(out.remediation))

    return run


def check_ids(cfg: Config | None = None) -> list[str]:
    return [c.id for c in build_checks(cfg or Config())]


def catalogue(cfg: Config | None = None) -> list[dict[str, str]]:
    """[{id, layer, title}] in report order: the Doctor screen's rows before a run."""
    return [{"id": c.id, "layer": c.layer, "title": c.title} for c in build_checks(cfg or Config())]


def select(checks: list[Check], only: Iterable[str] | None, skip: Iterable[str]) -> tuple[list[Check], set[str]]:
    """(the checks to run, the ids skipped on purpose). Names are ids or prefixes (`overlay`,
    `hetzner.*`); unknown names raise UnknownCheck listing the doctor's ids."""
    names = [s for s in list(only or []) + list(skip or []) if s]
    known = [c.id for c in checks]
    if "trace" in names:  # a validation pseudo id, not a doctor check
        raise UnknownCheck(f"unknown check(s): trace; known: {', '.join(known)}")
    try:
        return select_checks(checks, only, skip)
    except UnknownCheck as e:
        raise UnknownCheck(str(e).split("; known:")[0] + f"; known: {', '.join(known)}") from None


# --- the report ----------------------------------------------------------------------------------


@dataclass
class DoctorReport:
    results: list[CheckRecord]
    diagnosis: Diagnosis
    traces: dict[str, dict[str, list[Hop]]] = field(default_factory=dict)
    skipped_on_request: list[str] = field(default_factory=list)
    probes: bool = True
    probe: dict[str, Any] = field(default_factory=dict)  # namespace, run id, pods created, cleanup problems
    started_at: float = 0.0
    duration: float = 0.0
    api_requests: int = 0
    cancelled: bool = False
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        """The worst status of the checks that ran: a skipped check says why itself and does not
        make the report's status ("skip" only when every check was skipped)."""
        ran = [r.status for r in self.results if r.status != "skip"]
        if self.results and not ran:
            return "skip"
        return max(ran, key=lambda s: STATUS_ORDER.get(s, 0), default="ok")

    @property
    def failed(self) -> list[CheckRecord]:
        return [r for r in self.results if r.status == "fail"]

    @property
    def ok(self) -> bool:
        return not self.failed and not self.cancelled

    def result(self, check_id: str) -> CheckRecord | None:
        return next((r for r in self.results if r.check == check_id), None)

    def counts(self) -> dict[str, int]:
        out = {"ok": 0, "warn": 0, "fail": 0, "skip": 0}
        for r in self.results:
            out[r.status] = out.get(r.status, 0) + 1
        return out

    def by_layer(self) -> list[tuple[str, list[CheckRecord]]]:
        layers = list(LAYERS) + sorted({r.layer for r in self.results} - set(LAYERS))
        return [(ly, [r for r in self.results if r.layer == ly]) for ly in layers if any(r.layer == ly for r in self.results)]

    def summary(self) -> str:
        c = self.counts()
        parts = [f"{c['ok']} ok"] + [f"{c[k]} {k}" for k in ("warn", "fail", "skip") if c[k]]
        extra = f"; skipped on purpose: {', '.join(self.skipped_on_request)}" if self.skipped_on_request else ""
        return f"{len(self.results)} checks: " + ", ".join(parts) + extra + (" (cancelled)" if self.cancelled else "")

    def first_broken(self) -> dict[str, dict[str, str | None]]:
        return {host: {node: (fb.hop if (fb := first_broken(hops)) else None) for node, hops in rows.items()}
                for host, rows in self.traces.items()}

    def exit_code(self) -> int:
        """The CLI's code: 0 nothing failed, 1 problems found, 2 the kubeconfig cannot be used (a
        configuration error), 4 the credentials or permissions stopped the cluster side from being
        checked at all, 5 the cluster cannot be reached, 130 cancelled."""
        if self.cancelled:
            return INTERRUPTED
        api = self.result("k8s.api")
        kind = (api.evidence or {}).get("failure") if api is not None and api.status == "fail" else None
        if kind == "unreachable":
            return UNREACHABLE
        if kind in ("unauthorized", "forbidden"):
            return CREDENTIALS
        if kind == "kubeconfig":
            return USAGE
        if self.failed and not any(r.status in ("ok", "warn") for r in self.results):
            # nothing could be checked at all: say whether the token or the network stopped it
            tok = self.result("hetzner.token")
            st = (tok.evidence or {}).get("status") if tok is not None and tok.status == "fail" else None
            if st == "unreachable":
                return UNREACHABLE
            if st in ("missing", "wrong"):
                return CREDENTIALS
        return FAILED if self.failed else OK

    def to_dict(self) -> dict[str, Any]:
        d = {
            "kind": "doctor",
            "status": self.status,
            "summary": self.summary(),
            "diagnosis": self.diagnosis.to_dict(),
            "started_at": self.started_at,
            "duration": round(self.duration, 3),
            "cancelled": self.cancelled,
            "api_requests": self.api_requests,
            "probes": self.probes,
            "probe": self.probe,
            "skipped_on_request": list(self.skipped_on_request),
            "info": self.info,
            "checks": [dataclasses.asdict(r) for r in self.results],
            "layers": {ly: LAYER_TITLES.get(ly, ly) for ly, _ in self.by_layer()},
            "traces": {host: {node: [h.to_dict() for h in hops] for node, hops in rows.items()} for host, rows in self.traces.items()},
            "first_broken": self.first_broken(),
            "exit_code": self.exit_code(),
        }
        return REDACTOR.redact_obj(d)  # type: ignore[no-any-return]

    def to_json(self, indent: int | None = 2) -> str:
        import json

        return REDACTOR.redact(json.dumps(self.to_dict(), indent=indent, default=str, ensure_ascii=False))

    def to_markdown(self) -> str:
        from .doctor_report import to_markdown

        return to_markdown(self)

    markdown = to_markdown


# --- run -------------------------------------------------------------------------------------------


def run(
    ctx: Context,
    *,
    skip: Iterable[str] = frozenset(),
    only: Iterable[str] | None = None,
    probes: bool = True,
    expected_workers: int = DEFAULT_EXPECTED_WORKERS,
    http_timeout: float | None = None,
    probe_timeout: float = doctor_overlay.PROBE_TIMEOUT,
    client_image: str = doctor_overlay.CLIENT_IMAGE,
    server_image: str = doctor_overlay.SERVER_IMAGE,
) -> DoctorReport:
    """Run the doctor (see the module docstring). `skip`/`only`: check ids or prefixes; unknown
    names raise UnknownCheck (a ValueError listing the ids). Returns the report; with
    `cancelled=True` after ctx.cancel, with the checks done so far and no probe pod left."""
    only_set = {s for s in (only or []) if s} or None
    skip_set = {s for s in skip if s}
    checks, skipped = select(build_checks(ctx.config, probe_timeout=probe_timeout), only_set, skip_set)
    prime(ctx)
    dctx = doctor_ctx(ctx)
    counter = ApiCounter.for_context(ctx)
    scope = counter.scope()
    wanted = tuple(c.id.split(".", 1)[1] for c in checks if c.id in PROBE_CHECKS and c.id not in skipped)
    probe = (doctor_overlay.OverlayProbe(dctx, timeout=probe_timeout, client_image=client_image, server_image=server_image, tests=wanted)
             if probes and wanted else None)
    state = DoctorState(dctx, http_timeout=http_timeout, probes=probes, expected_workers=expected_workers, probe=probe,
                        counter=counter, scope=scope)
    started, t0 = time.time(), time.monotonic()
    ctx.emit(StepStarted(step=STEP, title="Doctor"))
    cancelled = False
    records: dict[str, CheckRecord] = {}
    try:
        records, cancelled = counter.bind(scope, lambda: run_checks(dctx, checks, state, skipped=skipped))()
    except Cancelled:
        cancelled = True
    finally:
        cleanup = probe.cleanup() if probe is not None else []
        try:
            info = info_for(dctx, None if cancelled else state)
        finally:
            state.close()
    ordered = [_deliberate(records[c.id], skipped, probes) for c in checks if c.id in records]
    diag = diagnose({r.check: r for r in ordered}, ctx.config)
    probe_info: dict[str, Any] = {"namespace": doctor_overlay.PROBE_NAMESPACE, "selector": doctor_overlay.PROBE_SELECTOR}
    if probe is not None:
        probe_info.update(run=probe.run_id, pods=list(probe.all_pods), cleanup="ok" if not cleanup else cleanup)
    report = DoctorReport(ordered, diag, dict(state.traces), sorted(skipped), probes, probe_info, started,
                          time.monotonic() - t0, scope.count, cancelled, info)
    ctx.emit(StepFinished(step=STEP, status="skip" if cancelled else ("fail" if report.failed else ("warn" if report.status == "warn" else "ok")),  # type: ignore[arg-type]
                          summary=report.summary() + ("" if cancelled else f". {diag.summary}")))
    return report


def _deliberate(rec: CheckRecord, skipped: set[str], probes: bool) -> CheckRecord:
    """A check skipped on request says so, and that it was deliberate."""
    if rec.check in skipped and rec.status == "skip":
        return dataclasses.replace(rec, detail=f"skipped on purpose (--skip {rec.check}): not checked",
                                   evidence={**(rec.evidence or {}), "skipped_on_request": True})
    return rec
