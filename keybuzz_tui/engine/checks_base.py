"""The vocabulary of validation: a named check, what one run of it found, and the record a report
keeps.

Why a separate module: the check implementations (checks_kube, checks_node, checks_cloud), the
trace, the scheduler (validate) and the doctor all speak these types; keeping them here avoids
import cycles and lets the doctor define its own checks with the same shape, skippable by the same
ids on the command line (as kubeadm's preflight checks are).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from .checks_state import ValidationState
    from .context import Context

CheckStatus = Literal["ok", "warn", "fail", "skip"]
STATUS_ORDER = {"ok": 0, "skip": 1, "warn": 2, "fail": 3}

LAYERS = ("kubernetes", "node", "ingress", "loadbalancer", "dns", "https")
LAYER_TITLES = {
    "kubernetes": "Kubernetes",
    "node": "Workers (hostPort, NodePort)",
    "ingress": "Ingress",
    "loadbalancer": "Hetzner Load Balancer",
    "dns": "DNS",
    "https": "Public HTTPS",
}


@dataclass(frozen=True)
class CheckOutcome:
    """What one run of a check found. `detail` says what is wrong (or right) with the evidence in
    words; `remediation` says what the operator can do about it; `evidence` is the raw material
    (per worker, per app) for JSON reports and the board's detail pane."""

    status: CheckStatus
    detail: str = ""
    remediation: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)


def ok(detail: str = "", evidence: dict[str, Any] | None = None) -> CheckOutcome:
    return CheckOutcome("ok", detail, "", evidence or {})


def warn(detail: str, remediation: str = "", evidence: dict[str, Any] | None = None) -> CheckOutcome:
    return CheckOutcome("warn", detail, remediation, evidence or {})


def fail(detail: str, remediation: str = "", evidence: dict[str, Any] | None = None) -> CheckOutcome:
    return CheckOutcome("fail", detail, remediation, evidence or {})


def skip(detail: str, remediation: str = "", evidence: dict[str, Any] | None = None) -> CheckOutcome:
    return CheckOutcome("skip", detail, remediation, evidence or {})


def worst(statuses: list[str] | tuple[str, ...]) -> str:
    """The status a group of items adds up to (fail > warn > skip > ok); ok for none."""
    return max(statuses, key=lambda s: STATUS_ORDER.get(s, 0), default="ok")


@dataclass(frozen=True)
class Check:
    """A named check. `id` is stable (`--only k8s.pods-ready`, `--skip dns.resolver`).

    `requires`: checks whose failure makes this one meaningless: it is skipped, saying why.
    `after`: checks whose findings this one reads from the shared state when they ran (ordering
    only, never a skip). `source`: "kube" when everything it reads lives in the Kubernetes API
    (re-run on watch events), "net" when it probes the network or a cloud API (re-run on an
    interval). `timeout`: seconds before the scheduler gives up on it (None: the run's default).
    """

    id: str
    layer: str
    title: str
    run: Callable[[Context, ValidationState], CheckOutcome]
    requires: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    source: Literal["kube", "net"] = "kube"
    timeout: float | None = None


@dataclass
class CheckRecord:
    """One check's result in a report: the check's identity plus its outcome and how long it took.
    Field names follow events.CheckResult (`check` is the id)."""

    check: str
    layer: str
    title: str
    status: CheckStatus
    detail: str = ""
    remediation: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)
    duration: float = 0.0
    source: str = "kube"
    finished_at: float = 0.0

    @property
    def id(self) -> str:
        return self.check

    @property
    def failed(self) -> bool:
        return self.status == "fail"


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"


def join_names(names: list[str] | tuple[str, ...], limit: int = 6) -> str:
    """'a, b and c' (with '... and N more' past `limit`), for details an operator reads."""
    names = list(names)
    if not names:
        return ""
    if len(names) > limit:
        return ", ".join(names[:limit]) + f" and {len(names) - limit} more"
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def compact(items: list[tuple[str, str]], limit: int = 12) -> list[str]:
    """Merge per-worker details that say the same thing: [("w2", "504 via w2"), ("w3", "504 via
    w3")] -> ["504 via w2 and w3"]. The worker's first mention becomes the list of workers, later
    mentions "each of them". Keeps the order of first appearance; at most `limit` lines."""
    groups: dict[str, list[str]] = {}
    for worker, detail in items:
        key = detail.replace(worker, "\0") if worker else detail
        groups.setdefault(key, []).append(worker)
    out: list[str] = []
    for key, workers in groups.items():
        if "\0" not in key or len(workers) == 1:
            out.append(key.replace("\0", workers[0]) if "\0" in key else key)
            continue
        first, _, rest = key.partition("\0")
        out.append(first + join_names(workers) + rest.replace("\0", "each of them"))
    if len(out) > limit:
        out = out[:limit] + [f"and {len(out) - limit} more"]
    return out
