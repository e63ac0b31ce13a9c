"""The whole runbook as one facade: what the wizard screens and the CLI commands call.

Each method is one step of the runbook with the plan -> confirm -> apply life cycle; they are
synchronous and meant to run in a worker thread (the TUI) or the main thread (the CLI), report
progress through ctx.emit, honour ctx.cancel, and journal what they change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..cancel import Cancelled
from ..events import Info, Warning_
from ..redact import safe_error
from . import kubeio
from .context import Context, merged_kubeconfig
from .plan import Plan


@dataclass
class Detected:
    """What the Welcome screen shows: where we are and whether KeyBuzz is already there."""

    context: str = ""
    server: str = ""
    version: str = ""
    reachable: bool = False
    error: str = ""
    nodes: int = 0
    workers: int = 0
    installed: bool = False  # the namespace and at least one of our DaemonSets exist
    topology: str = ""  # "hostnetwork" | "classic" | ""
    hetzner: str = ""  # "valid" | "read-only" | "wrong" | "no token" | ...
    hetzner_detail: str = ""
    load_balancer: str = ""


@dataclass
class FullPlan:
    plan: Plan = field(default_factory=Plan)
    port_checks: list[Any] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # plan-time errors (e.g. 422 from the allocator)
    remediations: list[str] = field(default_factory=list)

    @property
    def conflicts(self) -> list[Any]:
        return [c for c in self.port_checks if getattr(c, "failed", False)]


def _current_context(ctx: Context) -> str:
    """The name of the kubeconfig's current context (KUBECONFIG's list merged), so that Welcome
    shows which cluster it is about to change rather than a placeholder."""
    try:
        merger = merged_kubeconfig(ctx.endpoints.kubeconfig or ctx.config.cluster.kubeconfig)
        name = merger.config.value.get("current-context")
    except Exception:  # the kubeconfig's own problem is reported by the connection attempt
        name = None
    return f"{name} (current context)" if name else "(current context)"


class Platform:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    @property
    def config(self) -> Any:
        return self.ctx.config

    # --- 0. where are we ---------------------------------------------------------------------

    def detect(self) -> Detected:
        ctx, d = self.ctx, Detected()
        d.context = ctx.endpoints.context or _current_context(ctx)
        try:
            d.server = ctx.kube().configuration.host
            d.version = kubeio.get(ctx, "/version").get("gitVersion", "")
            d.reachable = True
            nodes = kubeio.get(ctx, "/api/v1/nodes").get("items") or []
            d.nodes = len(nodes)
            d.workers = sum(1 for n in nodes if not any(k.startswith("node-role.kubernetes.io/control-plane") for k in (n["metadata"].get("labels") or {})))
            ns = ctx.config.namespace
            if kubeio.get_or_none(ctx, f"/api/v1/namespaces/{ns}") is not None:
                ds = kubeio.get(ctx, f"/apis/apps/v1/namespaces/{ns}/daemonsets").get("items") or []
                deps = kubeio.get(ctx, f"/apis/apps/v1/namespaces/{ns}/deployments").get("items") or []
                names = {a.name for a in ctx.config.apps}
                if any(x["metadata"]["name"] in names for x in ds):
                    d.installed, d.topology = True, "hostnetwork"
                elif any(x["metadata"]["name"] in names for x in deps):
                    d.installed, d.topology = True, "classic"
        except (kubeio.Unreachable, kubeio.KubeError) as e:
            d.error = safe_error(e)
        except Exception as e:  # a broken kubeconfig is an answer too, not a crash
            d.error = f"cannot load the kubeconfig: {safe_error(e)}"
        try:
            from ..credentials import check_hcloud_token

            token = ctx.endpoints.hcloud_token_env or ctx.secrets.hcloud_token()
            if not token:
                d.hetzner = "no token"
                d.hetzner_detail = "no Hetzner API token yet: the Credentials step stores one in the keyring"
            else:
                res = check_hcloud_token(ctx, token)
                d.hetzner, d.hetzner_detail = res.status, res.message
                if res.status in ("valid", "read-only"):
                    lb = ctx.hcloud().load_balancers.get_by_name(ctx.config.load_balancer.name)
                    d.load_balancer = lb.name if lb else ""
        except Exception as e:
            d.hetzner, d.hetzner_detail = "error", safe_error(e)
        return d

    def preflight(self) -> Any:
        from . import preflight

        return preflight.run(self.ctx)

    # --- 2. ports ----------------------------------------------------------------------------

    def scan_ports(self, *, probe: bool = False) -> list[Any]:
        """The ports step (with the optional node probe); returns the PortChecks."""
        from . import ports

        return list(ports.run(self.ctx, probe=probe).checks)

    # --- 3. Kubernetes -----------------------------------------------------------------------

    def render(self, *, reveal: bool = False) -> list[dict[str, Any]]:
        from . import render

        return render.render(self.config, self.ctx.secrets, include_secret_values=reveal)

    def plan_kubernetes(self) -> Plan:
        """A plan must not change anything, not even the keyring: a generated secret that does not
        exist yet is planned with a stand-in value (the Secret shows as created/changed, masked)
        and generated for real by apply."""
        from . import kube, render

        objects = render.render(self.config, _PlanSecrets(self.ctx.secrets, self.config), include_secret_values=True)
        return kube.plan(self.ctx, objects)

    def apply_kubernetes(self, plan: Plan) -> Any:
        from . import kube

        return kube.apply(self.ctx, plan)

    def rollout(self, timeout: float | None = None) -> Any:
        from . import rollout

        return rollout.watch_rollout(self.ctx, [a.name for a in self.config.apps], timeout or self.config.rollout.timeout)

    # --- 4-6. Hetzner ------------------------------------------------------------------------

    def plan_lb(self) -> Plan:
        from . import lb

        return lb.plan(self.ctx, target_mode=self.config.load_balancer.target_mode)

    def apply_lb(self, plan: Plan, *, allow_destructive: bool = False) -> Any:
        """allow_destructive only after the operator confirmed what the plan says it destroys."""
        from . import lb

        return lb.apply(self.ctx, plan, target_mode=self.config.load_balancer.target_mode, allow_destructive=allow_destructive)

    def wait_lb_healthy(self, timeout: float = 120) -> Any:
        from . import lb

        return lb.wait_healthy(self.ctx, timeout)

    def lb_status(self) -> Any:
        from . import lb

        return lb.status(self.ctx)

    def lb_ips(self) -> list[str]:
        from . import lb

        if self.ctx.hcloud() is None:
            return []
        return list(lb.addresses(self.ctx))

    def plan_dns(self) -> Plan:
        from . import dns

        return dns.plan(self.ctx, self.lb_ips())

    def apply_dns(self, plan: Plan) -> Any:
        from . import dns

        return dns.apply(self.ctx, plan)

    def plan_firewall(self, *, mode: str | None = None) -> Plan:
        """Empty unless firewall.mode (or `mode`) is manage."""
        from . import firewall

        return firewall.plan(self.ctx, mode=mode)

    def apply_firewall(self, plan: Plan, *, allow_destructive: bool = False) -> Any:
        from . import firewall

        return firewall.apply(self.ctx, plan, allow_destructive=allow_destructive)

    def check_firewall(self) -> Any:
        from . import firewall

        return firewall.check(self.ctx)

    def review_firewall(self) -> Any:
        """Step 6 in check mode, as a step of its own: the check, what is missing, the fix, the
        UFW rules (firewall.FirewallReview; warnings only)."""
        from . import firewall

        return firewall.review(self.ctx)

    def check_dns(self) -> Any:
        from . import dns

        return dns.check(self.ctx, self.lb_ips())

    # --- 7. validation -----------------------------------------------------------------------

    def validate(self, *, only: set[str] | None = None, skip: set[str] | None = None) -> Any:
        from . import validate

        return validate.validate(self.ctx, only=only, skip=skip or set())

    def doctor(self, **kw: Any) -> Any:
        """Why is the platform down? (engine.doctor; probe pods are always cleaned up)."""
        from . import doctor

        kw.setdefault("expected_workers", self.config.cluster.workers)
        return doctor.run(self.ctx, **kw)

    def drift(self) -> Any:
        from . import recovery

        return recovery.drift(self.ctx)

    # --- the whole runbook -------------------------------------------------------------------

    def plan(self, *, probe: bool = False) -> FullPlan:
        fp = FullPlan()
        ctx = self.ctx
        for name, fn in (
            ("ports", lambda: fp.port_checks.extend(self.scan_ports(probe=probe))),
            ("kubernetes", lambda: fp.plan.extend(self.plan_kubernetes())),
            ("load balancer", lambda: fp.plan.extend(self.plan_lb())),
            ("dns", lambda: fp.plan.extend(self.plan_dns())),
            ("firewall", lambda: fp.plan.extend(self.plan_firewall()) if self.config.firewall.mode != "off" else None),
        ):
            ctx.cancel.check()
            try:
                fn()
            except Cancelled:
                raise
            except Exception as e:  # every step error carries the server's text and, mostly, a remediation
                remediation = str(getattr(e, "remediation", "") or "")
                fp.errors.append(f"{name}: {safe_error(e)}")
                if remediation:
                    fp.remediations.append(remediation)
                partial = getattr(e, "plan", None)
                if isinstance(partial, Plan):
                    fp.plan.extend(partial)
                ctx.emit(Warning_(step=name, message=safe_error(e), remediation=remediation))
        ctx.emit(Info(step="plan", message=fp.plan.summary()))
        return fp


class _PlanSecrets:
    """The real secrets, plus stand-ins for `generate: true` keys apply will create."""

    STAND_IN = "(generated by apply)"

    def __init__(self, inner: Any, config: Any) -> None:
        self.inner = inner
        self.generated = {(a.name, s.key) for a in config.apps for s in a.secrets if s.generate}

    def hcloud_token(self) -> str | None:
        return self.inner.hcloud_token()

    def get(self, name: str) -> str | None:
        return self.inner.get(name)

    def app_secret(self, app: str, key: str) -> str | None:
        value = self.inner.app_secret(app, key)
        if value is None and (app, key) in self.generated:
            return self.STAND_IN
        return value
