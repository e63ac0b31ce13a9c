"""The doctor's report as Markdown, for people: the diagnosis first (ranked causes, their evidence
verbatim, the fix and the next command), then every check grouped by layer, what was skipped on
purpose, the first broken hop of each request path, and what happened to the probe pods.

Works from the report's redacted dict and redacts its output once more, like report.py.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ..redact import REDACTOR
from .trace import HOP_TITLES

ICONS = {"ok": "✅", "warn": "⚠️", "fail": "❌", "skip": "⏭️"}
SEVERITY = {"critical": "🔴 critical", "major": "🟠 major", "minor": "🟡 minor", "info": "ℹ️ info"}


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", "<br>")


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if ts else ""


def to_markdown(report: Any) -> str:
    d = report.to_dict() if hasattr(report, "to_dict") else dict(report)
    info = d.get("info") or {}
    diag = d.get("diagnosis") or {}
    out = [f"# KeyBuzz doctor: {str(d.get('status', '?')).upper()}", ""]
    meta = [f"**{d.get('summary', '')}**"]
    if info.get("context"):
        meta.append(f"context `{info['context']}`")
    if info.get("namespace"):
        meta.append(f"namespace `{info['namespace']}`")
    if d.get("started_at"):
        meta.append(_when(d["started_at"]))
    if d.get("cancelled"):
        meta.append("**cancelled before the end**")
    out += [" · ".join(meta), ""]
    out += ["## Diagnosis", ""]
    causes = diag.get("causes") or []
    if not causes:
        out += [diag.get("summary") or "No problem found.", ""]
    for i, c in enumerate(causes, 1):
        out += [f"### {i}. {c['title']} ({SEVERITY.get(c['severity'], c['severity'])})", "", c["explanation"], ""]
        ev = [e for e in c.get("evidence") or [] if e]
        if ev:
            out += ["Evidence:", "", "```"] + [str(e) for e in ev] + ["```", ""]
        if c.get("fix"):
            out.append(f"**Fix:** {c['fix']}")
            out.append("")
        if c.get("next_command"):
            out += [f"**Next:** `{c['next_command']}`", ""]
    topo, overlay = diag.get("topology"), diag.get("overlay")
    if topo or overlay:
        dep = diag.get("platform_depends_on_overlay")
        words = "" if dep is None else (" — the platform depends on the overlay" if dep else " — the platform does not depend on the overlay")
        out += [f"Overlay: **{overlay}**; topology: **{topo or 'unknown'}**{words}.", ""]
    checks = d.get("checks") or []
    for layer, title in (d.get("layers") or {}).items():
        rows = [c for c in checks if c["layer"] == layer]
        if not rows:
            continue
        out += [f"## {title}", "", "| | Check | Result |", "|---|---|---|"]
        for c in rows:
            out.append(f"| {ICONS.get(c['status'], c['status'])} | `{c['check']}` {_md(c['title'])} | {_md(c['detail'])} |")
        out.append("")
    skipped = d.get("skipped_on_request") or []
    if skipped or not d.get("probes", True):
        out += ["## Skipped on purpose", ""]
        for s in skipped:
            out.append(f"- `{s}` (--skip): not checked, deliberately")
        if not d.get("probes", True):
            out.append("- the overlay probe pods (--no-probes): the overlay was not tested")
        out.append("")
    first = d.get("first_broken") or {}
    traces = d.get("traces") or {}
    if first:
        out += ["## Request path per worker", "", "DNS → Load Balancer → NodePort → ingress-nginx → Service → pod: the first broken hop.", "",
                "| Host | Worker | First broken hop | Detail |", "|---|---|---|---|"]
        for host, rows in first.items():
            for node, hop in rows.items():
                detail = ""
                if hop:
                    detail = next((h["detail"] for h in (traces.get(host) or {}).get(node) or [] if h["hop"] == hop), "")
                out.append(f"| {host} | {node} | {('**' + HOP_TITLES.get(hop, hop) + '**') if hop else '—'} | {_md(detail)} |")
        out.append("")
    todo = [c for c in checks if c["status"] in ("fail", "warn") and c.get("remediation")]
    if todo:
        out += ["## What to do, check by check", ""]
        for c in todo:
            out += [f"### {ICONS.get(c['status'], '')} `{c['check']}`", "", _md(c["detail"]).replace("<br>", "\n"), ""]
            out += [f"- {line}" for line in str(c["remediation"]).splitlines()]
            out.append("")
    probe = d.get("probe") or {}
    if probe.get("pods"):
        clean = probe.get("cleanup")
        state = "all deleted" if clean == "ok" else f"cleanup problems: {clean}"
        out += ["## Probe pods", "", f"{len(probe['pods'])} pod(s) in `{probe.get('namespace')}` (run `{probe.get('run')}`, "
                f"`-l {probe.get('selector')}`): {', '.join(probe['pods'])}; {state}.", ""]
    return REDACTOR.redact("\n".join(out).rstrip() + "\n")
