"""The doctor's checks of what recovery repairs: the platform's objects against keybuzz.yaml and
the keyring, the Load Balancer's targets against the current workers, an apply or repair stopped
halfway (the journal), and the platform lock.

  platform.objects      a Secret deleted, a DaemonSet image changed by hand, an object missing or
                        changed, objects keybuzz.yaml does not want (recovery.drift, Kubernetes layer)
  hetzner.targets       a worker replaced by a new server: the new one not a target, an old one still
                        a target (the cluster's workers against the LB's resolved targets, plus the
                        target changes recovery.drift would make)
  platform.interrupted  an apply or repair that stopped before its end (recovery_runs: the journal,
                        and the live drift for what remains), which `keybuzz-tui repair` resumes
  platform.lock         who holds the platform lock (lock.py): holder, host, since when, stale or alive

Nothing here computes drift or reads the journal in its own way: the recovery engine's functions
do it (the same ones `keybuzz-tui recover` and the Recovery screen call), gathered once per run in
the DoctorState. All of it is read-only: server-side dry runs and GETs; the keyring is read, never
written (no secret is generated), the lock is read, never taken.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from ..cancel import Cancelled
from ..redact import safe_error
from .checks_base import CheckOutcome, fail, join_names, ok, plural, skip, warn
from .context import Context
from .doctor_state import DoctorState, quiet

REPAIR = "keybuzz-tui repair"
MAX_FINDINGS = 8  # in a check's detail; the evidence has them all
_HOLDER = re.compile(r"^(?P<user>[^@\s]*)@(?P<host>\S+) pid (?P<pid>\d+)$")  # lock.identity()'s shape


def _app_of_secret(ctx: Context, name: str) -> Any:
    from .render import secret_name

    return next((a for a in ctx.config.apps if a.secrets and secret_name(a) == name), None)


def _container(path: str) -> str:
    m = re.search(r"containers\[name=([^\]]+)\]", path)
    return m.group(1) if m else ""


def _changed_by(ctx: Context, namespace: str | None, name: str, container: str) -> str:
    """Who wrote the container's image last, from the DaemonSet's managedFields ("" when unknown)."""
    from . import kubeio

    try:
        live = kubeio.get_or_none(ctx, kubeio.resource_path("apps/v1", "daemonsets", namespace, name))
    except Exception:  # noqa: BLE001 - a courtesy: the drift already says what differs
        return ""
    key = f'k:{{"name":"{container}"}}'
    for mf in reversed(((live or {}).get("metadata") or {}).get("managedFields") or []):
        if mf.get("manager") in ("keybuzz-tui", None):
            continue
        spec = (((mf.get("fieldsV1") or {}).get("f:spec") or {}).get("f:template") or {}).get("f:spec") or {}
        entry = (spec.get("f:containers") or {}).get(key) or {}
        if "f:image" in entry:
            when = f" at {mf['time']}" if mf.get("time") else ""
            return f"{mf['manager']} ({str(mf.get('operation') or 'Update').lower()}{when})"
    return ""


# --- platform.objects ------------------------------------------------------------------------------


def check_objects(ctx: Context, state: DoctorState) -> CheckOutcome:
    from ..credentials import CredentialError

    try:
        rep = state.drift("kubernetes")
    except CredentialError as e:  # the keyring itself cannot be read (locked, no backend)
        first, _, rest = safe_error(e).partition("\n")
        return skip(f"not compared with keybuzz.yaml and the keyring: {first}",
                    rest.strip() or "fix the keyring (`keybuzz-tui credentials status`) or set KEYBUZZ_SECRET_* for this run")
    ns = ctx.config.namespace
    problems = [p for p in rep.problems if p.layer == "kubernetes"]
    ev: dict[str, Any] = {"topology": rep.topology, "problems": [p.to_dict() for p in problems]}
    if "kubernetes" not in rep.checked:
        p = problems[0] if problems else None
        msg = p.message if p is not None else "the Kubernetes objects could not be compared"
        if p is not None and p.kind == "credentials":  # the keyring lacks a value: keybuzz.yaml cannot be rendered
            return skip(f"not compared with keybuzz.yaml and the keyring: {msg}", p.remediation, ev)
        return warn(f"the platform's objects could not be compared with keybuzz.yaml: {msg}", p.remediation if p else "", ev)
    items = [d for d in rep.items if d.layer == "kubernetes"]
    in_sync = [c.ref for c in rep.plan.changes if c.layer == "kubernetes" and c.action == "unchanged"]
    ev["in_sync"] = in_sync
    ev["images"] = {a.name: a.image for a in ctx.config.apps}
    fails: list[str] = []
    warns: list[str] = []
    fixes: list[str] = []
    secrets_missing: dict[str, list[str]] = {}
    images: list[dict[str, str]] = []
    missing: list[str] = []
    changed: dict[str, list[str]] = {}
    extra: dict[str, str] = {}
    blocked: dict[str, str] = {}
    for d in items:
        if d.state == "missing" and d.kind == "Secret":
            app = _app_of_secret(ctx, d.name)
            keys = [s.key for s in app.secrets] if app is not None else []
            secrets_missing[d.ref] = keys
            who = f"{app.name}'s pods read {join_names(keys, 4)} from it (envFrom)" if app is not None else "the apps read it"
            fails.append(f"{d.ref} is missing: {who}; the running pods keep the values they started with, but a pod that "
                         "restarts or starts on another node fails (CreateContainerConfigError)")
        elif d.state == "missing":
            missing.append(d.ref)
        elif d.state == "changed" and d.kind == "DaemonSet" and any(x.path.endswith(".image") for x in d.diff):
            for x in d.diff:
                if not x.path.endswith(".image"):
                    continue
                c = _container(x.path)
                by = _changed_by(ctx, d.namespace, d.name, c)
                images.append({"ref": d.ref, "container": c, "live": str(x.old), "desired": str(x.new), "changed_by": by})
                fails.append(f"{d.ref} runs image {x.old} (container {c}), keybuzz.yaml says {x.new}: changed outside "
                             f"keybuzz-tui{' by ' + by if by else ''}")
            others = [x.render() for x in d.diff if not x.path.endswith(".image")]
            if others:
                changed[d.ref] = others
        elif d.state == "changed":
            changed[d.ref] = d.lines()
        elif d.state == "extra":
            extra[d.ref] = d.note
        elif d.state == "blocked":
            blocked[d.ref] = d.note
    if missing:
        fails.append(f"missing: {join_names(missing, 8)}")
    for ref, lines in changed.items():
        if ref.startswith("Secret "):
            keys = sorted({ln.split(":", 1)[0].rsplit(".", 1)[-1] for ln in lines if ".data." in ln})
            warns.append(f"{ref}: {join_names(keys) or 'its values'} differ{'s' if len(keys) == 1 else ''} from the keyring's (values not shown)")
        else:
            warns.append(f"{ref} differs from keybuzz.yaml: {'; '.join(lines[:4])}" + (f" (+{len(lines) - 4} more)" if len(lines) > 4 else ""))
    for ref in extra:
        warns.append(f"{ref} is not in keybuzz.yaml")
    for ref, note in blocked.items():
        warns.append(f"{ref} cannot be repaired automatically: {note.splitlines()[0] if note else 'see keybuzz-tui recover'}")
    if not blocked:  # a blocked object is the problem's own finding (refused, or a generated secret lost)
        warns += [f"not everything could be compared: {p.message.splitlines()[0]}" for p in problems]
    ev.update(secrets_missing=secrets_missing, image_drift=images, missing=missing, changed=changed, extra=extra, blocked=blocked)
    if secrets_missing:
        fixes.append(f"`{REPAIR}` recreates {join_names(list(secrets_missing))} from the keyring, with the keyring's values "
                     "(in the wizard: Recovery)")
    for im in images:
        app = next((a.name for a in ctx.config.apps if im["ref"].endswith(f"/{a.name}")), im["ref"].rsplit("/", 1)[-1])
        fixes.append(f"`{REPAIR}` puts back keybuzz.yaml's image {im['desired']} (a rolling update); if {im['live']} is meant to stay, "
                     f"set it as the image of {app} in keybuzz.yaml first; to go back to an earlier revision: `keybuzz-tui rollback {app}`")
    if missing:
        fixes.append(f"`{REPAIR}` creates {join_names(missing, 4)}")
    if changed:
        fixes.append(f"`{REPAIR}` re-applies keybuzz.yaml and the keyring (`keybuzz-tui recover` shows each diff)")
    if extra:
        fixes.append("`keybuzz-tui recover` says what deleting each one takes; `keybuzz-tui repair --allow-destructive` deletes "
                     "them after your confirmation")
    fixes += [p.remediation for p in problems if p.remediation]
    tail = f" ({plural(len(in_sync), 'object')} in sync)" if in_sync else ""
    found = fails + warns
    text = "; ".join(found[:MAX_FINDINGS]) + (f"; and {len(found) - MAX_FINDINGS} more (see the evidence)" if len(found) > MAX_FINDINGS else "")
    if fails:
        return fail(text + tail, "\n".join(dict.fromkeys(fixes)), ev)
    if warns:
        return warn(text + tail, "\n".join(dict.fromkeys(fixes)), ev)
    kinds: dict[str, int] = {}
    for ref in in_sync:
        kinds[ref.split(" ", 1)[0]] = kinds.get(ref.split(" ", 1)[0], 0) + 1
    what = ", ".join(plural(n, k) if n > 1 else k for k, n in kinds.items())
    imgs = ", ".join(f"{a.name} {a.image}" for a in ctx.config.apps)
    return ok(f"{plural(len(in_sync), 'object')} in namespace {ns} match keybuzz.yaml and the keyring ({what}); images: {imgs}", ev)


# --- hetzner.targets -----------------------------------------------------------------------------------


def _former_targets(ctx: Context, servers: set[str]) -> list[dict[str, str]]:
    """Server targets an apply or repair of this journal added and that are no longer servers of the
    project (a worker replaced by a new server): [{server, run, when}]."""
    j = ctx.journal
    if j is None or j.path is None:
        return []
    added: dict[str, dict[str, str]] = {}
    try:
        for e in j.entries():
            if e.get("event") != "change" or e.get("kind") != "LoadBalancerTarget" or not str(e.get("name") or "").startswith("server:"):
                continue
            name = str(e["name"]).split(":", 1)[1]
            if e.get("action") == "delete":
                added.pop(name, None)
            else:
                added[name] = {"server": name, "run": str(e.get("run") or ""), "when": str(e.get("ts") or "").replace("T", " ")[:16]}
    except (OSError, ValueError):
        return []
    return [v for k, v in added.items() if k not in servers]


def check_targets(ctx: Context, state: DoctorState) -> CheckOutcome:
    from .doctor_cloud import token_unusable

    why = token_unusable(state)
    if why:
        return skip(f"not checked: the Hetzner token is {why}", "see hetzner.token")
    cloud = state.cloud()
    lbc = ctx.config.load_balancer
    if cloud.error:
        return skip(f"not checked: {cloud.error}", "see hetzner.lb")
    if cloud.lb is None:
        return skip(f"no Load Balancer {lbc.name} to compare with the workers (see hetzner.lb)")
    lb = cloud.lb.name
    workers = state.workers()
    targets = cloud.targets()
    t_names = {t.server for t in targets}
    t_ips = {t.ip for t in targets if t.ip}
    w_names = {w.name for w in workers}
    w_ips = {w.ip for w in workers if w.ip}
    missing = [w for w in workers if w.name not in t_names and not (w.ip and w.ip in t_ips)]
    stale = [t for t in targets if t.server not in w_names and not (t.ip and t.ip in w_ips)]
    former = _former_targets(ctx, {s.name for s in cloud.servers.values()})
    try:
        hd = state.drift("hetzner")
    except Cancelled:
        raise
    except Exception as e:  # noqa: BLE001 - only says what the repair would do: the comparison above stands
        from .recovery import DriftReport, LayerProblem

        hd = DriftReport(problems=[LayerProblem("hetzner", safe_error(e))])
    repair = [d for d in hd.items if d.kind == "LoadBalancerTarget"]
    adds = [d.name for d in repair if d.state == "missing"]
    removes = [d.name for d in repair if d.state == "extra"]
    mode = f"label selector {lbc.target_selector}" if lbc.target_mode == "label_selector" else f"one server target per server matching {lbc.target_selector}"
    ev: dict[str, Any] = {
        "lb": lb, "target_mode": lbc.target_mode, "target_selector": lbc.target_selector,
        "workers": {w.name: w.ip for w in workers},
        "targets": {t.server: {"ip": t.ip, "via": t.via, "server_id": t.server_id} for t in targets},
        "missing": [{"worker": w.name, "ip": w.ip} for w in missing],
        "stale": [{"server": t.server, "ip": t.ip, "via": t.via} for t in stale],
        "former": former,
        "repair": [d.describe() for d in repair],
        "problems": [p.to_dict() for p in hd.problems if p.layer == "hetzner"],
    }
    gone = f"; {join_names([f['server'] for f in former])}, a target added by an earlier apply, is no longer a server of the project" if former else ""
    if not missing and not stale:
        names = join_names(sorted(t_names), 5)
        return ok(f"{lb} targets the {plural(len(workers), 'worker')} of the cluster ({mode}): {names}" + (
            f" ({'private' if all(t.use_private_ip for t in targets) else 'public'} IPs)" if targets else "") + gone, ev)
    parts = [f"{w.name} ({w.ip or 'no address'}) is a worker of the cluster but not a target of {lb}: the LB sends it no traffic"
             for w in missing]
    parts += [f"target {t.server} ({t.ip or 'no address'}, {t.via}) is not a worker of the cluster" for t in stale]
    head = f"{len(workers) - len(missing)}/{plural(len(workers), 'worker')} are targets of {lb} ({mode})"
    if missing and former:
        head += f"; {join_names([w.name for w in missing])} looks like the replacement of {join_names([f['server'] for f in former])}"
    fixes: list[str] = []
    if adds or removes:
        what = " and ".join(x for x in (f"adds {join_names(adds)}" if adds else "", f"removes {join_names(removes)}" if removes else "") if x)
        fixes.append(f"`{REPAIR}` {what} (in the wizard: Recovery, Load balancer step)"
                     + (": server targets are fixed server ids, so a replaced worker is not picked up by itself" if lbc.target_mode == "servers" else ""))
    uncovered = [w.name for w in missing if not any(a.endswith(f":{w.name}") for a in adds)]
    if uncovered:
        fixes.append(f"give {join_names(uncovered)} the label {lbc.target_selector} in Hetzner (`hcloud server add-label "
                     f"{uncovered[0]} {lbc.target_selector}`): the Load Balancer's {mode} then includes it")
    left = [t.server for t in stale if not any(r.endswith(f":{t.server}") for r in removes)]
    if left:
        fixes.append(f"remove the label {lbc.target_selector} from {join_names(left)} (or the server target), or join it to the cluster again")
    return fail(head + ". " + "; ".join(parts) + gone, "\n".join(fixes), ev)


# --- platform.interrupted ------------------------------------------------------------------------------


def check_interrupted(ctx: Context, state: DoctorState) -> CheckOutcome:
    from .recovery import DriftReport
    from .recovery_runs import RESUMABLE, interrupted, stopped_runs

    j = ctx.journal
    if j is None or j.path is None:
        return skip("no journal to read (this run keeps none): an interrupted apply cannot be looked for")
    ev: dict[str, Any] = {"journal": str(j.path)}
    runs = stopped_runs(j)
    if not runs:
        last = None
        for e in j.entries():
            if e.get("event") == "run-started" and e.get("command") in RESUMABLE:
                last = e
        if last is None:
            return ok(f"no apply or repair in the journal ({j.path}): nothing was interrupted", ev)
        ev["last_run"] = {"run": last.get("run"), "command": last.get("command"), "started": last.get("ts")}
        when = str(last.get("ts") or "").replace("T", " ")[:16]
        return ok(f"no apply or repair stopped halfway: the last one (the {last.get('command')} of {when}, run {last.get('run')}) "
                  "went to its end", ev)
    try:
        k, h = state.drift("kubernetes"), state.drift("hetzner")
        combined = DriftReport(items=k.items + h.items, problems=k.problems + h.problems)
    except Cancelled:
        raise
    except Exception as e:  # noqa: BLE001 - what remains is unknown; the journal still says where the run stopped
        from .recovery import LayerProblem

        combined = DriftReport(problems=[LayerProblem("drift", safe_error(e))])
    found = interrupted(quiet(ctx), report=combined)
    remaining = [d.ref for d in combined.items]
    ev.update(runs=[r.to_dict() for r in found], remaining=remaining if not combined.problems else None)
    stopped = [r for r in found if not r.still_running]
    lines = [f"run {r.run}: {r.describe()}" for r in found]
    if stopped and remaining and not combined.problems:
        lines.append(f"what remains: {join_names(remaining, 6)}")
    if not stopped:
        return warn("; ".join(lines), "wait for it to finish (see platform.lock)", ev)
    r = stopped[-1]
    where = f" (it stopped at {r.stopped_at})" if r.stopped_at else ""
    return fail("; ".join(lines),
                f"`{REPAIR}` resumes the {r.command} of run {r.run}{where}: it plans against the live state, so only what remains is "
                "applied (in the wizard: Recovery, Resume)", ev)


# --- platform.lock ---------------------------------------------------------------------------------------


def check_lock(ctx: Context, state: DoctorState) -> CheckOutcome:
    from . import kubeio
    from .lock import LEASE_NAME, holder_alive

    try:
        info, ns = state.lock()
    except (kubeio.Unreachable, kubeio.KubeError) as e:
        return warn(f"the platform lock (Lease {LEASE_NAME}) could not be read: {safe_error(e)}",
                    "grant get on leases (coordination.k8s.io) in the platform namespace and kube-system")
    lease = f"Lease {ns}/{LEASE_NAME}"
    if info is None:
        return ok(f"free: no wizard is changing the platform (no holder on {lease})", {"lease": lease, "held": False})
    m = _HOLDER.match(info.holder or "")
    user, host, pid = (m["user"], m["host"], int(m["pid"])) if m else ("", "", None)
    alive = holder_alive(info.holder)
    now = dt.datetime.now(dt.UTC)
    age = int((now - info.renewed).total_seconds()) if info.renewed else None
    since = f"{info.acquired:%Y-%m-%d %H:%M:%S} UTC" if info.acquired else "an unknown time"
    ev = {"lease": lease, "held": True, "holder": info.holder, "user": user, "host": host, "pid": pid,
          "acquired": info.acquired.isoformat() if info.acquired else None, "renewed": info.renewed.isoformat() if info.renewed else None,
          "renewed_seconds_ago": age, "duration": info.duration, "stale": info.stale, "holder_alive": alive}
    who = f"{info.holder}" + (f" (user {user} on host {host})" if m else "")
    renewed = f", last renewed {age} s ago" if age is not None else ", never renewed"
    head = f"the platform lock ({lease}) is held by {who} since {since}{renewed}"
    if info.stale:
        why = (f"its process, pid {pid}, is gone from this host" if alive is False
               else f"not renewed for more than its {info.duration} s" if info.renewed else "it was never renewed")
        return fail(f"{head}: stale ({why}): the run that took it probably crashed; an apply or repair refuses to start until "
                    "it is taken over",
                    f"`{REPAIR} --take-over-stale-lock` takes it over (in the wizard: Recovery, Take over…); the takeover is "
                    f"journaled. Make sure first that nobody is changing the platform from {host or 'its host'}", ev)
    how = f"its process, pid {pid}, runs on this host" if alive else f"renewed within its {info.duration} s"
    return fail(f"{head}: alive ({how}): another wizard is changing the platform right now; an apply or repair from here is "
                "refused, and what the doctor sees may change under it",
                f"wait for it to finish (the lock is released at its end), or ask {user or 'its holder'} on {host or 'its host'}; "
                "a live lock is never taken over", ev)
