"""The headless CLI's gaps closed after the audit, at the level of the INSTALLED `keybuzz-tui`:

- plan / apply / validate driven by KUBECONFIG (two files, merged as kubectl does), HCLOUD_TOKEN and
  HCLOUD_ENDPOINT instead of --sandbox; `plan --junit`, `--yes` accepted by plan and validate;
- `validate --watch`: one line (JSON line) per check whose status changes, until Ctrl-C (exit 130);
- a failed rollout names `keybuzz-tui rollback APP` for the apps, and the named command works;
- firewall.mode: check: plan and apply report a Firewall step (what passes, what is missing, the
  fix, the UFW rules) without blocking; `keybuzz-tui firewall check | advice | apply`;
- credential changes (`credentials set / rotate / forget`) are journaled, never their values.

Same rules as test_cli_e2e.py: a sandbox per test, a keybuzz.yaml of its own, a private Secret
Service, and after every test neither the canary nor the sandbox's token anywhere.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.cli_support import (
    EXE,
    CliRun,
    assert_nowhere,
    db_canary,
    forget_profile,
    json_lines,
    new_profile,
    result_of,
)
from support.engine_fixtures import install_keybuzz_directly

pytestmark = pytest.mark.keyring

WORKERS = [f"k3s-worker-0{i}" for i in range(1, 6)]


def text(r: Any) -> str:
    return r.stdout + r.stderr


def edit_config(cli: CliRun, fn: Any) -> None:
    data = yaml.safe_load(cli.config.read_text())
    fn(data)
    cli.config.write_text(yaml.safe_dump(data, sort_keys=False))


def target(cli: CliRun) -> list[str]:
    """--sandbox and --config for the commands CliRun does not add them to (firewall, rollback)."""
    return ["--sandbox", str(cli.sandbox_dir), "--config", str(cli.config)]


def daemonset_images(sb: Any) -> dict[str, str]:
    from kubernetes import client

    api = sb.kube_client()
    try:
        return {d.metadata.name: d.spec.template.spec.containers[0].image
                for d in client.AppsV1Api(api).list_namespaced_daemon_set("keybuzz").items}
    finally:
        api.close()


def hc(sb: Any) -> Any:
    c = sb.hcloud_client()
    c._client._session.trust_env = False  # loopback only
    return c


# --- the environment instead of --sandbox ------------------------------------------------------------


def _kubeconfigs(sb: Any, where: Path) -> str:
    """KUBECONFIG as an operator may have it: a file that does not exist, a first file that only
    says which context is current, and the file that defines it (whose own current-context is
    another, broken one: kubectl, and keybuzz-tui, take current-context from the first file)."""
    kc = yaml.safe_load((sb.state_dir / "kubeconfig").read_text())
    user = kc["users"][0]["name"]
    second = {**kc, "current-context": "broken",
              "clusters": [*kc["clusters"], {"name": "broken", "cluster": {"server": "https://127.0.0.1:9"}}],
              "contexts": [*kc["contexts"], {"name": "broken", "context": {"cluster": "broken", "user": user}}]}
    first = {"apiVersion": "v1", "kind": "Config", "current-context": kc["current-context"], "clusters": [], "contexts": [], "users": []}
    (where / "first.yaml").write_text(yaml.safe_dump(first))
    (where / "second.yaml").write_text(yaml.safe_dump(second))
    return os.pathsep.join(str(where / f) for f in ("missing.yaml", "first.yaml", "second.yaml"))


def test_plan_apply_validate_from_KUBECONFIG_HCLOUD_TOKEN_and_HCLOUD_ENDPOINT(world):
    cli, sb = world("healthy")
    info = json.loads((sb.state_dir / "sandbox.json").read_text())
    # nothing but --sandbox knows the sandbox's DNS server: the resolver to compare answers with
    # is keybuzz.yaml's dns.resolver (it keeps every DNS question on loopback)
    edit_config(cli, lambda d: d["dns"].update(resolver=f"{info['dns']['server']}:{info['dns']['port']}"))
    hcloud = dict(line.split("=", 1) for line in (sb.state_dir / "hcloud.env").read_text().split() if "=" in line)
    env = {"KUBECONFIG": _kubeconfigs(sb, cli.work), "HCLOUD_TOKEN": hcloud["HCLOUD_TOKEN"], "HCLOUD_ENDPOINT": hcloud["HCLOUD_ENDPOINT"]}
    junit = cli.work / "plan.xml"

    r = cli.run("plan", "--yes", "--json", "--junit", str(junit), sandbox=False, env=env)
    assert r.returncode == 0, text(r)[-4000:]
    res = result_of(r.stdout)
    assert res["changes"] is True and res["conflicts"] == [] and res["errors"] == []
    assert res["firewall"]["mode"] == "check" and res["firewall"]["status"] == "ok"
    planned = {(d["kind"], d["name"]) for d in json_lines(r.stdout) if d["type"] == "ObjectPlanned"}
    assert {("DaemonSet", "keybuzz-api"), ("LoadBalancer", "keybuzz-lb")} <= planned
    suites = ET.parse(junit).getroot()
    assert [c.get("name") for c in suites.find("testsuite[@name='keybuzz.plan']")] == ["ports", "kubernetes", "load balancer", "dns", "firewall"]
    assert len(suites.findall("testsuite[@name='keybuzz.ports']/testcase")) == 8 and suites.findall(".//failure") == []

    r = cli.run("apply", "--yes", "--json", sandbox=False, env=env)
    res = result_of(r.stdout)
    # everything reached through the environment works; only what the sandbox's private CA and its
    # authoritative DNS server (known to --sandbox only) would prove cannot pass
    assert set(res["failed_checks"]) <= {"dns.authoritative", "https.platform", "https.platform-api"}, text(r)[-4000:]
    assert r.returncode == (1 if res["failed_checks"] else 0), text(r)[-3000:]
    assert sorted(daemonset_images(sb)) == ["keybuzz-api", "keybuzz-front"]
    assert [lb.name for lb in hc(sb).load_balancers.get_all()] == ["keybuzz-lb"]
    assert res["firewall"]["status"] == "ok"
    titles = [d.get("title") for d in json_lines(r.stdout) if d["type"] == "StepStarted"]
    assert titles.index("Firewall (check mode: keybuzz-tui changes no firewall)") < titles.index("Validation")

    r = cli.run("validate", "--yes", "--only", "k8s,lb,node,ingress,dns.resolver", sandbox=False, env=env)
    assert r.returncode == 0, text(r)[-3000:]
    assert "validation passes" in r.stdout


# --- validate --watch ----------------------------------------------------------------------------------


def _read_json_until(p: Any, pred: Any, seen: list[str], timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    assert p.stdout is not None
    while time.monotonic() < end:
        line = p.stdout.readline()
        if not line:
            break
        seen.append(line)
        if pred([json.loads(x) for x in seen if x.strip()]):
            return
    raise AssertionError("never saw the expected lines; got:\n" + "".join(seen[-40:]))


def _interrupt(p: Any) -> tuple[str, str]:
    """Ctrl-C, then the rest of stdout and stderr, read through the same file objects as the
    readline()s before (communicate() would read the pipes under them and lose what they buffered)."""
    import threading

    watchdog = threading.Timer(60, p.kill)
    watchdog.start()
    try:
        p.send_signal(signal.SIGINT)
        out, err = p.stdout.read(), p.stderr.read()
        p.wait(timeout=30)
    finally:
        watchdog.cancel()
    return out, err


def test_validate_watch_prints_each_change_once_until_ctrl_c(world):
    cli, sb = world("healthy")
    install_keybuzz_directly(sb)

    p = cli.popen("validate", "--watch", "--interval", "1")
    try:
        lines: list[str] = []
        end = time.monotonic() + 60
        while time.monotonic() < end and sum(1 for x in lines if x[:2].isdigit()) < 18:  # the first refresh: every check
            line = p.stdout.readline()
            if not line:
                break
            lines.append(line)
        time.sleep(2.5)  # two more timed refreshes: nothing changes, nothing is printed
        out, err = _interrupt(p)
    finally:
        if p.poll() is None:
            p.kill()
    out = "".join(lines) + out
    cli.keep(out, err, ("validate", "--watch"))
    assert p.returncode == 130, err[-3000:]
    assert "✓ k8s.daemonsets: ok — 2 hostNetwork DaemonSets" in out
    printed: dict[str, list[str]] = {}
    for line in out.splitlines():
        if line[:2].isdigit():  # "07:43:16 ✓ k8s.api: ok — ..." or "... k8s.api: ok → fail — ..."
            check, _, rest = line.split(" ", 2)[2].partition(": ")
            printed.setdefault(check, []).append(rest.split(" — ", 1)[0])
    assert len(printed) == 18 and all("→" not in statuses[0] for statuses in printed.values()), printed
    # changes only, never a refresh's unchanged statuses (3+ refreshes ran)
    for check, statuses in printed.items():
        for before, now in zip(statuses, statuses[1:], strict=False):
            prev, _, new = now.partition(" → ")
            assert new and prev == before.split(" → ")[-1] and prev != new, (check, statuses)
    assert printed["k8s.daemonsets"][0] == "ok" and printed["https.platform"][0] == "ok", printed
    assert "▶ Validation (continuous)" in out and "validation watch stopped after" in err and "(exit 130)" in err

    junit = cli.work / "watch.xml"
    p = cli.popen("validate", "--watch", "--interval", "1", "--json", "--junit", str(junit))
    try:
        seen: list[str] = []
        _read_json_until(p, lambda docs: len([d for d in docs if d["type"] == "CheckChanged"]) == 18, seen)
        first = [json.loads(x) for x in seen if '"CheckChanged"' in x]
        assert len({d["check"] for d in first}) == 18 and {d["previous"] for d in first} == {None}
        assert next(d for d in first if d["check"] == "k8s.daemonsets")["status"] == "ok"
        from kubernetes import client

        api = sb.kube_client()
        try:
            client.AppsV1Api(api).delete_namespaced_daemon_set("keybuzz-front", "keybuzz")
        finally:
            api.close()
        _read_json_until(p, lambda docs: any(d.get("check") == "k8s.daemonsets" and d.get("previous") == "ok" for d in docs), seen)
        out, err = _interrupt(p)
    finally:
        if p.poll() is None:
            p.kill()
    out = "".join(seen) + out
    cli.keep(out, err, ("validate", "--watch", "--json"))
    assert p.returncode == 130, err[-3000:]
    docs = json_lines(out)
    (change,) = [d for d in docs if d.get("check") == "k8s.daemonsets" and d.get("previous") == "ok"]
    assert change["status"] == "fail" and "keybuzz-front" in change["detail"] and change["remediation"]
    assert change["refresh"] >= 1 and change["trigger"] in ("kube", "net")
    res = result_of(out)
    assert res["exit_code"] == 130 and res["interrupted"] is True and res["refreshes"] >= 2
    assert "k8s.daemonsets" in res["failed"]
    # the last report is written on the way out
    failures = [c.get("name") for c in ET.parse(junit).getroot().iter("testcase") if c.find("failure") is not None]
    assert "k8s.daemonsets" in failures

    r = cli.run("validate", "--watch", "--only", "no.such-check")
    assert r.returncode == 2 and "no.such-check" in r.stderr


# --- a failed rollout names the rollback ----------------------------------------------------------------


def test_a_failed_rollout_names_keybuzz_tui_rollback_for_each_app_and_the_command_works(world):
    cli, sb = world("image-pull-failure")  # the registry lacks ghcr.io/keybuzz/*

    def images(prefix: str) -> Any:
        def fn(d: dict[str, Any]) -> None:
            for app, name in zip(d["apps"], ("api", "front"), strict=True):
                app["image"] = f"{prefix}/keybuzz/{name}:1.4.2"
        return fn

    edit_config(cli, images("docker.io"))  # a release the registry has: the first rollout completes
    r = cli.run("apply", "--yes", "--steps", "kubernetes")
    assert "rollout did not complete" not in text(r), text(r)[-4000:]
    assert daemonset_images(sb) == {"keybuzz-api": "docker.io/keybuzz/api:1.4.2", "keybuzz-front": "docker.io/keybuzz/front:1.4.2"}

    edit_config(cli, images("ghcr.io"))  # a release that was never pushed
    r = cli.run("apply", "--yes", "--steps", "kubernetes", "--timeout", "4", "--json")
    assert r.returncode == 1, text(r)[-4000:]
    res = result_of(r.stdout)
    assert res["failed"] == "rollout"
    flags = f" --config {cli.config} --sandbox {cli.sandbox_dir}"
    assert res["rollback"]["keybuzz-api"]["command"] == f"keybuzz-tui rollback keybuzz-api{flags}"
    assert res["rollback"]["keybuzz-api"]["to_revision"] == 1
    assert res["rollback"]["keybuzz-api"]["images"] == ["docker.io/keybuzz/api:1.4.2"]
    (advice,) = [d for d in json_lines(r.stdout) if d["type"] == "Warning_" and "did not complete" in d["message"]]
    for app in ("keybuzz-api", "keybuzz-front"):
        if res["rollback"].get(app):
            assert f"`keybuzz-tui rollback {app}{flags}`" in advice["remediation"]
    assert "wizard" not in advice["remediation"]

    argv = shlex.split(res["rollback"]["keybuzz-api"]["command"])
    assert argv[0] == "keybuzz-tui"
    r = cli.run(*argv[1:], "--yes")
    assert r.returncode == 0, text(r)[-3000:]
    assert daemonset_images(sb)["keybuzz-api"] == "docker.io/keybuzz/api:1.4.2"


# --- the firewall: check mode in plan and apply, and `keybuzz-tui firewall` ------------------------------


def test_firewall_check_mode_warns_in_plan_and_apply_and_the_firewall_command_fixes_it(world):
    cli, sb = world("healthy")
    from hcloud.firewalls import FirewallResource, FirewallRule
    from hcloud.servers import Server

    client = hc(sb)
    w1 = client.servers.get_by_name("k3s-worker-01")
    ssh = FirewallRule(direction="in", protocol="tcp", port="22", source_ips=["0.0.0.0/0"], description="ssh")
    made = client.firewalls.create(name="ops-ssh", rules=[ssh], resources=[FirewallResource(type="server", server=Server(id=w1.id))])
    for a in made.actions:
        a.wait_until_finished(max_retries=500)

    def public(d: dict[str, Any]) -> None:  # the LB reaches the workers on their public IPs
        d["load_balancer"]["use_private_ip"] = False
        d["firewall"]["allow_from"] = ["198.51.100.0/24"]

    edit_config(cli, public)

    r = cli.run("firewall", "advice", *target(cli))
    assert r.returncode == 0, text(r)
    assert f"# workers (servers matching role=worker): {', '.join(WORKERS)}" in r.stdout
    assert "sudo ufw allow 31695/tcp comment 'keybuzz: LB health check and traffic'" in r.stdout
    assert "sudo ufw allow from 198.51.100.0/24 to any port 30080 proto tcp" in r.stdout
    r = cli.run("firewall", "advice", "--config", str(cli.config), "--json")  # offline: no token, still the advice
    assert r.returncode == 0 and result_of(r.stdout)["exit_code"] == 0
    (adv,) = [d for d in json_lines(r.stdout) if d["type"] == "UfwAdvice"]
    assert adv["workers"] == [] and adv["workers_error"] and "sudo ufw reload" in adv["commands"]
    r = cli.run("firewall", "check", "--config", str(cli.config))  # no token anywhere: said, exit 4, nothing asked of the API
    assert r.returncode == 4 and "no Hetzner Cloud API token" in text(r), text(r)[-2000:]

    r = cli.run("firewall", "check", *target(cli))
    assert r.returncode == 1, text(r)[-3000:]
    assert "✗ firewall-nodeport-31695" in r.stdout and "k3s-worker-01 (ops-ssh)" in r.stdout
    assert "keybuzz-tui firewall apply" in r.stderr and "(exit 1)" in r.stderr

    junit = cli.work / "plan.xml"
    r = cli.run("plan", "--json", "--junit", str(junit))
    assert r.returncode == 0, text(r)[-3000:]  # a warning, never a plan failure
    res = result_of(r.stdout)
    assert res["firewall"]["status"] == "missing" and res["firewall"]["fix_command"] == "keybuzz-tui firewall apply"
    assert [m["check"] for m in res["firewall"]["missing"]] == ["firewall-nodeport-31695"]
    assert "firewall (warning)" in res["verdict"]
    fw_case = ET.parse(junit).getroot().find("testsuite[@name='keybuzz.plan']/testcase[@name='firewall']")
    assert fw_case.find("failure") is None and "WARNING: firewall (check mode)" in fw_case.find("system-out").text

    r = cli.run("apply", "--yes")
    out = text(r)
    # the Firewall step warns and the apply goes on: the validation decides the exit code (here 1:
    # the sandbox serves the NodePorts on the workers' private addresses only, so public targets
    # stay unhealthy; no firewall check is among the failed ones)
    fw = r.stdout[r.stdout.index("▶ Firewall (check mode"):r.stdout.index("▶ Validation")]
    assert "✗ firewall-nodeport-31695" in fw and "missing Hetzner firewall rule" in fw
    assert "set firewall.mode: manage" in fw and "does not stop plan or apply" in fw
    assert "sudo ufw allow 31695/tcp" in fw
    assert "validate: 18 checks" in r.stdout  # the apply went on to the validation
    assert r.returncode in (0, 1), out[-4000:]
    verdict = (r.stderr if r.returncode else r.stdout).strip().splitlines()[-1]
    assert "firewall (warning): 1 missing" in verdict, verdict
    assert "firewall" not in verdict.split("firewall (warning)")[0]  # no failed check is a firewall one
    assert client.firewalls.get_by_name("keybuzz-workers") is None  # check mode changes no firewall

    r = cli.run("firewall", "apply", *target(cli), "--yes")
    assert r.returncode == 2 and "--allow-destructive" in r.stderr, text(r)[-3000:]
    assert client.firewalls.get_by_name("keybuzz-workers") is None
    r = cli.run("firewall", "apply", *target(cli), "--yes", "--allow-destructive", "--json")
    assert r.returncode == 0, text(r)[-3000:]
    res = result_of(r.stdout)
    assert res["applied"] is True and res["firewall"]["status"] == "ok"
    fw = client.firewalls.get_by_name("keybuzz-workers")
    assert fw is not None and sorted(r.port for r in fw.rules) == ["30000", "30080", "31695", "32720"]
    (run,) = [x for x in cli.runs_of_journal() if any(e.get("command") == "firewall-apply" for e in x)]
    assert [e["event"] for e in run if e["event"] in ("run-started", "change", "run-finished")] == ["run-started", "change", "run-finished"]
    assert next(e for e in run if e["event"] == "run-finished")["status"] == "ok"

    r = cli.run("firewall", "check", *target(cli))
    assert r.returncode == 0, text(r)[-3000:]
    r = cli.run("firewall", "apply", *target(cli), "--yes")
    assert r.returncode == 0 and "nothing to change" in r.stdout, text(r)[-3000:]


# --- credential changes in the journal ---------------------------------------------------------------------


def test_credentials_set_rotate_forget_are_journaled_without_their_values(tmp_path, ring):
    work = tmp_path / "work"
    work.mkdir()
    cli = CliRun(work, None, new_profile(), db_canary())
    service = f"keybuzz-tui:{cli.profile}"
    try:
        assert cli.run("config", "init", "--config", str(cli.config), "--profile", cli.profile).returncode == 0

        def credentials(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
            r = subprocess.run([EXE, "credentials", *args, "--config", str(cli.config)], input=stdin, capture_output=True, text=True,
                               timeout=60, cwd=work, env=cli.env(canary=False), stdin=None if stdin is not None else subprocess.DEVNULL)
            cli.runs.append(r)
            assert "Traceback" not in r.stderr, r.stderr
            return r

        r = credentials("set", "app/keybuzz-api/DATABASE_URL", stdin=cli.canary + "\n")
        assert r.returncode == 0, r.stderr
        r = credentials("rotate", "--all")
        assert r.returncode == 0, r.stderr
        generated = {n: ring.get_password(service, n) for n in ("app/keybuzz-api/JWT_SECRET", "app/keybuzz-api/API_ENCRYPTION_KEY",
                                                                 "app/keybuzz-front/SESSION_SECRET")}
        assert all(generated.values())
        r = credentials("forget", "app/keybuzz-api/DATABASE_URL", "--yes")
        assert r.returncode == 0 and "deleted" in r.stdout, r.stderr

        entries = [e for e in cli.journal() if e["event"] == "credential"]
        assert [(e["name"], e["action"], e["source"]) for e in entries] == [
            ("app/keybuzz-api/DATABASE_URL", "set", "entered (stdin)"),
            *((n, "rotate", "generated") for n in generated),
            ("app/keybuzz-api/DATABASE_URL", "forget", "keyring"),
        ]
        assert all(e["store"] == f"keyring ({service})" for e in entries)
        journal = cli.journal_path.read_text()
        for value in (cli.canary, *generated.values()):
            assert value not in journal
        assert_nowhere(cli.canary, cli.outputs(), [tmp_path])
    finally:
        forget_profile(ring, cli.profile)
