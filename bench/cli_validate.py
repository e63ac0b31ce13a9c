"""`keybuzz-tui validate` on a fully installed, healthy sandbox: what one validation costs.

Issue 4 asks for "the number of API requests per scan and per validation refresh". Measured here,
in one run, on the same world (installed by the real `keybuzz-tui apply`):

- one `validate` run, in process (validate.validate): its time (median of a few runs) and its
  Kubernetes API requests, counted on the client (the report's ApiCounter figure) and on the
  sandbox server (its request counter, which sees everything the client really sent);
- one `keybuzz-tui validate --json` run of the installed command: its wall time (interpreter
  start-up included) and the requests its Result reports;
- the continuous mode (validate.watch, what the board runs): the requests of the first full
  refresh, of each refresh triggered by a Kubernetes watch event (a pod annotated on purpose), of
  each timed network refresh, and the WATCH connections it keeps open.

Reported, not asserted: `python -m bench.cli_validate` prints one JSON object.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

EXE = str(Path(sys.executable).with_name("keybuzz-tui"))
SECRETS = {  # bench-only values, given the way automation gives them
    "KEYBUZZ_SECRET_KEYBUZZ_API_DATABASE_URL": "postgres://bench:bench-not-a-secret@db.internal:5432/keybuzz",
    "KEYBUZZ_SECRET_KEYBUZZ_API_JWT_SECRET": "bench-jwt-not-a-secret-0123456789abcdef0123456789abcdef",
    "KEYBUZZ_SECRET_KEYBUZZ_API_API_ENCRYPTION_KEY": "bench-enc-not-a-secret-0123",
    "KEYBUZZ_SECRET_KEYBUZZ_FRONT_SESSION_SECRET": "bench-session-not-a-secret-0123456789",
}


def _env(state: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HCLOUD_", "KEYBUZZ_", "PYTHON_KEYRING")) and k != "KUBECONFIG"}
    # no keyring needed (every secret comes from the environment), and none touched
    env.update(SECRETS, KEYBUZZ_STATE_DIR=state, PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    return env


def _cli(args: list[str], sb_dir: str, state: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EXE, *args, "--sandbox", sb_dir], capture_output=True, text=True, timeout=timeout,
                          env=_env(state), cwd=state, stdin=subprocess.DEVNULL)


def _result(stdout: str) -> dict[str, Any]:
    for line in reversed(stdout.splitlines()):
        if line.strip():
            doc = json.loads(line)
            if doc.get("type") == "Result":
                return doc  # type: ignore[no-any-return]
    return {}


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 3) if values else 0.0


def _continuous(sb: Any, ctx_factory: Any, *, interval: float, kube_changes: int) -> dict[str, Any]:
    """validate.watch for one full refresh, `kube_changes` watch-triggered ones and at least one timed one."""
    from kubernetes import client

    from keybuzz_tui.engine import validate

    ctx = ctx_factory()
    reports: list[Any] = []
    arrived = threading.Condition()

    def on_report(rep: Any) -> None:
        with arrived:
            reports.append(rep)
            arrived.notify_all()

    def wait(pred: Any, timeout: float) -> Any:
        end = time.monotonic() + timeout
        with arrived:
            while time.monotonic() < end:
                hit = next((r for r in reports if pred(r)), None)
                if hit is not None:
                    return hit
                arrived.wait(max(0.0, end - time.monotonic()))
        return None

    stats = sb.kube_server.stats
    api = sb.kube_client()
    core = client.CoreV1Api(api)
    pods = [p.metadata.name for p in core.list_namespaced_pod("keybuzz").items]
    stats.reset()
    t = threading.Thread(target=validate.watch, args=(ctx, interval, on_report), kwargs={"debounce": 0.2}, daemon=True)
    t0 = time.monotonic()
    t.start()
    out: dict[str, Any] = {"interval_s": interval}
    try:
        first = wait(lambda r: True, 120)
        out["first_refresh_requests"] = first.api_requests if first else None
        out["first_refresh_s"] = round(first.duration, 3) if first else None
        patches = 0
        for i in range(kube_changes):
            seen = len(reports)
            core.patch_namespaced_pod(pods[i % len(pods)], "keybuzz", {"metadata": {"annotations": {"bench.keybuzz.io/touch": str(i)}}})
            patches += 1
            wait(lambda r, n=seen: reports.index(r) >= n and r.trigger == "kube", 30)
        wait(lambda r: r.trigger not in ("kube", "full") and reports.index(r) > 0, interval * 4 + 30)
        elapsed = time.monotonic() - t0
    finally:
        ctx.cancel.cancel("bench done")
        t.join(15)
        api.close()
        ctx.close()
    by: dict[str, list[int]] = {}
    for r in reports[1:]:
        by.setdefault(r.trigger, []).append(r.api_requests)
    out["refreshes"] = {k: {"count": len(v), "requests_median": statistics.median(v), "requests_max": max(v)} for k, v in by.items()}
    out["kube_refresh_requests"] = by.get("kube", [])
    out["watch_connections"] = reports[-1].watch_requests if reports else None
    out["server_requests_during_watch"] = stats.requests - patches
    out["server_requests_by_verb"] = {verb: len(samples) for verb, samples in sorted(stats.samples.items())}
    out["watch_period_s"] = round(elapsed, 2)
    return out


def run(*, repeat: int = 5, speed: float = 25.0, interval: float = 2.0, kube_changes: int = 5) -> dict[str, Any]:
    from keybuzz_tui.config import Config
    from keybuzz_tui.engine import validate
    from keybuzz_tui.engine.context import Context, Endpoints
    from keybuzz_tui.sandbox.runtime import Sandbox, free_net

    out: dict[str, Any] = {"scenario": "healthy", "repeat": repeat, "speed": speed}
    with tempfile.TemporaryDirectory() as d:
        sb_dir, state = str(Path(d) / "sb"), str(Path(d) / "state")
        Path(state).mkdir()
        with Sandbox(sb_dir, "healthy", net=free_net(160), speed=speed) as sb:
            t = time.perf_counter()
            r = _cli(["apply", "--yes", "--json"], sb_dir, state)
            out["install_s"] = round(time.perf_counter() - t, 2)
            res = _result(r.stdout)
            if r.returncode != 0:
                out["error"] = f"apply exited {r.returncode}: {res.get('verdict') or r.stderr[-500:]}"
                return out

            def ctx_factory() -> Context:
                return Context(Config(), Endpoints.from_sandbox(sb_dir))

            stats = sb.kube_server.stats
            ctx = ctx_factory()
            try:
                validate.validate(ctx)  # warm-up: clients, TLS sessions, imports
                times, client_reqs, server_reqs, statuses = [], [], [], []
                for _ in range(repeat):
                    stats.reset()
                    t = time.perf_counter()
                    rep = validate.validate(ctx)
                    times.append(time.perf_counter() - t)
                    client_reqs.append(rep.api_requests)
                    server_reqs.append(stats.requests)
                    statuses.append(rep.status)
                out["validate_s_median"] = _median(times)
                out["validate_s_samples"] = [round(x, 3) for x in times]
                out["validate_requests_client"] = statistics.median(client_reqs)
                out["validate_requests_server"] = statistics.median(server_reqs)
                out["validate_status"] = sorted(set(statuses))
                out["validate_checks"] = len(rep.results)
            finally:
                ctx.close()

            walls, cli_reqs = [], []
            for _ in range(3):
                stats.reset()
                t = time.perf_counter()
                r = _cli(["validate", "--json"], sb_dir, state)
                walls.append(time.perf_counter() - t)
                cli_reqs.append((_result(r.stdout).get("api_requests"), stats.requests, r.returncode))
            out["cli_validate_wall_s_median"] = _median(walls)
            out["cli_validate_requests"] = [{"client": c, "server": s, "exit": e} for c, s, e in cli_reqs]

            out["continuous"] = _continuous(sb, ctx_factory, interval=interval, kube_changes=kube_changes)
    return out


def main() -> None:
    print(json.dumps({"cli_validate": run()}, indent=2))


if __name__ == "__main__":
    main()
