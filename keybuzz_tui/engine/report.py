"""Validation reports as files: JSON (machines, the board's export), Markdown (people: grouped by
layer, the worker x hop matrix, the remediations) and JUnit XML (CI: `--junit FILE`, one testcase
per check).

Every writer works from the report's redacted dict form and redacts its output once more, so no
secret value can reach a file even if a check put one in a detail by mistake.
"""

from __future__ import annotations

import datetime as dt
import json
import xml.etree.ElementTree as ET
from typing import Any

from ..redact import REDACTOR
from .checks_base import LAYER_TITLES
from .trace import HOP_TITLES, HOPS

ICONS = {"ok": "✅", "warn": "⚠️", "fail": "❌", "skip": "⏭️"}
CELL = {"ok": "ok", "warn": "warn", "fail": "FAIL", "skip": "skip"}


def _dict(report: Any) -> dict[str, Any]:
    return report.to_dict() if hasattr(report, "to_dict") else dict(report)


def to_json(report: Any, *, indent: int | None = 2) -> str:
    """The whole report (checks with evidence, traces, first broken hops, API request counts)."""
    return REDACTOR.redact(json.dumps(_dict(report), indent=indent, sort_keys=False, default=str, ensure_ascii=False))


def _md_escape(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", "<br>")


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if ts else ""


def to_markdown(report: Any) -> str:
    """A readable report: summary, checks grouped by layer, one worker x hop matrix per host (the
    first broken hop in bold), then what to do for each failing check."""
    d = _dict(report)
    info = d.get("info") or {}
    out = [f"# KeyBuzz validation: {d['status'].upper()}", ""]
    meta = [f"**{d['summary']}**"]
    if info.get("context"):
        meta.append(f"context `{info['context']}`")
    if info.get("namespace"):
        meta.append(f"namespace `{info['namespace']}`")
    if d.get("started_at"):
        meta.append(_when(d["started_at"]))
    meta.append(f"{d.get('api_requests', 0)} Kubernetes API requests")
    out += [" · ".join(meta), ""]
    checks = d.get("checks") or []
    layers = d.get("layers") or {}
    for layer, title in layers.items():
        rows = [c for c in checks if c["layer"] == layer]
        if not rows:
            continue
        out += [f"## {title or LAYER_TITLES.get(layer, layer)}", "", "| | Check | Result |", "|---|---|---|"]
        for c in rows:
            out.append(f"| {ICONS.get(c['status'], c['status'])} | `{c['check']}` {_md_escape(c['title'])} | {_md_escape(c['detail'])} |")
        out.append("")
    traces = d.get("traces") or {}
    if traces:
        out += ["## Request path per worker", "",
                "DNS → Load Balancer → NodePort → ingress-nginx → Service → pod; the first broken hop of each worker is in **bold**.", ""]
        first = d.get("first_broken") or {}
        for host, rows in traces.items():
            out += [f"### {host}", "", "| Worker | " + " | ".join(HOP_TITLES[h] for h in HOPS) + " | First broken |",
                    "|---|" + "---|" * (len(HOPS) + 1)]
            for node, hops in rows.items():
                fb = (first.get(host) or {}).get(node)
                cells = []
                for h in hops:
                    cell = f"{ICONS.get(h['status'], '')} {CELL.get(h['status'], h['status'])}"
                    cells.append(f"**{cell}**" if h["hop"] == fb else cell)
                out.append(f"| {node} | " + " | ".join(cells) + f" | {HOP_TITLES.get(fb, '—') if fb else '—'} |")
            out.append("")
            broken = [(node, next(h for h in hops if h["hop"] == first[host][node]))
                      for node, hops in rows.items() if (first.get(host) or {}).get(node)]
            for node, h in broken:
                out.append(f"- **{node}**, {HOP_TITLES[h['hop']]}: {_md_escape(h['detail'])}")
            if broken:
                out.append("")
    todo = [c for c in checks if c["status"] in ("fail", "warn") and c.get("remediation")]
    if todo:
        out += ["## What to do", ""]
        for c in todo:
            out.append(f"### {ICONS.get(c['status'], '')} `{c['check']}`")
            out.append("")
            out.append(_md_escape(c["detail"]).replace("<br>", "\n"))
            out.append("")
            for line in str(c["remediation"]).splitlines():
                out.append(f"- {line}")
            out.append("")
    return REDACTOR.redact("\n".join(out).rstrip() + "\n")


def to_junit(report: Any) -> str:
    """JUnit XML: a testsuite of checks (fail -> <failure>, skip -> <skipped>, warn passes with the
    warning in <system-out>) and a testsuite of traced paths (one testcase per host and worker,
    failing on its first broken hop)."""
    d = _dict(report)
    checks = d.get("checks") or []
    root = ET.Element("testsuites", name="keybuzz-validation")
    suite = ET.SubElement(root, "testsuite", name="keybuzz.checks", tests=str(len(checks)),
                          failures=str(sum(c["status"] == "fail" for c in checks)), errors="0",
                          skipped=str(sum(c["status"] == "skip" for c in checks)),
                          time=f"{sum(float(c.get('duration') or 0) for c in checks):.3f}",
                          timestamp=_when(d.get("started_at") or 0) or "")
    for c in checks:
        case = ET.SubElement(suite, "testcase", classname=f"keybuzz.{c['layer']}", name=c["check"], time=f"{float(c.get('duration') or 0):.3f}")
        body = c["detail"] + (f"\n\nRemediation:\n{c['remediation']}" if c.get("remediation") else "")
        if c["status"] == "fail":
            f = ET.SubElement(case, "failure", message=c["detail"][:500], type="CheckFailed")
            f.text = body + "\n\nEvidence:\n" + json.dumps(c.get("evidence") or {}, indent=2, default=str)
        elif c["status"] == "skip":
            ET.SubElement(case, "skipped", message=c["detail"][:500])
        elif c["status"] == "warn":
            so = ET.SubElement(case, "system-out")
            so.text = "WARNING: " + body
        else:
            so = ET.SubElement(case, "system-out")
            so.text = c["detail"]
    traces = d.get("traces") or {}
    if traces:
        cases = [(host, node, hops) for host, rows in traces.items() for node, hops in rows.items()]
        first = d.get("first_broken") or {}
        tsuite = ET.SubElement(root, "testsuite", name="keybuzz.trace", tests=str(len(cases)),
                               failures=str(sum(1 for h, n, _ in cases if (first.get(h) or {}).get(n))), errors="0", skipped="0", time="0")
        for host, node, hops in cases:
            case = ET.SubElement(tsuite, "testcase", classname=f"keybuzz.trace.{host}", name=node, time="0")
            fb = (first.get(host) or {}).get(node)
            lines = "\n".join(f"{h['hop']:9} {h['status']:5} {h['detail']}" for h in hops)
            if fb:
                hop = next(h for h in hops if h["hop"] == fb)
                f = ET.SubElement(case, "failure", message=f"first broken hop: {fb}: {hop['detail']}"[:500], type="BrokenHop")
                f.text = lines
            else:
                so = ET.SubElement(case, "system-out")
                so.text = lines
    ET.indent(root)
    return REDACTOR.redact('<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n")


# --- the plan as JUnit (`keybuzz-tui plan --junit FILE`) -------------------------------------------

PLAN_STEPS = ("ports", "kubernetes", "load balancer", "dns", "firewall")
_LAYER_STEP = {"kubernetes": "kubernetes", "hetzner": "load balancer", "dns": "dns", "firewall": "firewall"}


def plan_to_junit(full_plan: Any, *, firewall: Any = None, started_at: float = 0.0) -> str:
    """JUnit XML of a plan, for CI gates before an apply: a testsuite `keybuzz.plan` with one
    testcase per step (its planned changes in <system-out>; a <failure> when the step could not be
    planned), and a testsuite `keybuzz.ports` with one testcase per port the install needs (a
    <failure> for each conflict or invalid choice, with the holders and the free alternatives).
    `firewall` (a firewall.FirewallReview, check mode) adds what is missing as a warning: the
    Firewall step never fails a plan."""
    fp = full_plan
    errors: dict[str, list[str]] = {}
    for text in fp.errors:
        step, sep, msg = str(text).partition(": ")
        errors.setdefault(step if sep and step in PLAN_STEPS else "plan", []).append(msg if sep else str(text))
    steps = list(PLAN_STEPS) + (["plan"] if "plan" in errors else [])
    root = ET.Element("testsuites", name="keybuzz-plan")
    suite = ET.SubElement(root, "testsuite", name="keybuzz.plan", tests=str(len(steps)),
                          failures=str(sum(1 for s in steps if errors.get(s))), errors="0", skipped="0", time="0",
                          timestamp=_when(started_at) or "")
    for step in steps:
        case = ET.SubElement(suite, "testcase", classname="keybuzz.plan", name=step, time="0")
        changes = [c for c in fp.plan.changes if _LAYER_STEP.get(c.layer, c.layer) == step]
        lines = []
        for c in changes:
            lines.append(f"{c.action:9} {c.ref}" + (" (DESTRUCTIVE)" if c.destructive else "") + (f" — {c.note}" if c.note else ""))
            lines.extend(f"            {d}" for d in c.lines()[:20])
        if step == "ports":
            bad = [c for c in fp.port_checks if c.failed]
            lines = [f"{len(fp.port_checks)} port(s) checked, {len(bad)} conflict(s) (testsuite keybuzz.ports)",
                     *(f"  {c.name} {c.port}: {c.status}" for c in bad)]
        if step == "firewall" and firewall is not None:
            fw = firewall.to_dict()
            head = ("WARNING: " if fw["status"] != "ok" else "") + f"firewall ({fw['mode']} mode): {fw['summary']}"
            lines = [head, *(f"  missing: {m['title']}: {m['detail']}" for m in fw["missing"]),
                     *([f"  fix: {fw['fix']}"] if fw["fix"] else []), *lines]
        if errors.get(step):
            f = ET.SubElement(case, "failure", message=errors[step][0][:500], type="PlanError")
            f.text = "\n".join(errors[step]) + ("\n\n" + "\n".join(lines) if lines else "")
        else:
            counts = {a: sum(1 for c in changes if c.action == a) for a in ("create", "update", "delete", "unchanged", "manual")}
            so = ET.SubElement(case, "system-out")
            summary = ", ".join(f"{n} to {a}" if a not in ("unchanged", "manual") else f"{n} {a}" for a, n in counts.items() if n) or "nothing planned"
            so.text = "\n".join(lines if step == "ports" else [summary, *lines])
    checks = list(fp.port_checks)
    psuite = ET.SubElement(root, "testsuite", name="keybuzz.ports", tests=str(len(checks)),
                           failures=str(sum(1 for c in checks if c.failed)), errors="0", skipped="0", time="0")
    for c in checks:
        case = ET.SubElement(psuite, "testcase", classname=f"keybuzz.ports.{c.kind}", name=c.name, time="0")
        body = [f"{c.title}: {c.status}", c.detail]
        if c.holders:
            body.append("held by: " + "; ".join(c.holders) + (f" on {', '.join(c.nodes)}" if c.nodes else ""))
        if c.suggestions:
            body.append("free alternatives: " + ", ".join(map(str, c.suggestions)))
        if c.remediation:
            body.append(f"Remediation:\n{c.remediation}")
        if c.failed:
            f = ET.SubElement(case, "failure", message=f"{c.name} {c.port}: {c.detail}"[:500], type="PortConflict" if c.status == "conflict" else "PortInvalid")
            f.text = "\n".join(b for b in body if b)
        else:
            so = ET.SubElement(case, "system-out")
            so.text = "\n".join(b for b in body if b)
    ET.indent(root)
    return REDACTOR.redact('<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n")
