"""The firewall step: what reaches the workers (Hetzner Cloud Firewalls through the sandbox API),
the managed firewall (rules merged, never dropped), and the UFW advice of the runbook."""

from __future__ import annotations

import json

import pytest
from hcloud.firewalls import FirewallResource, FirewallRule
from hcloud.servers import Server
from support import sandboxes
from support.engine_fixtures import engine_context

from keybuzz_tui.config import Config
from keybuzz_tui.engine import firewall, lb
from keybuzz_tui.engine.hcloudio import CloudError
from keybuzz_tui.events import ActionProgress, CheckResult, Info, StepFinished, StepStarted, Warning_


@pytest.fixture
def world(tmp_path):
    sb = sandboxes.start(tmp_path / "sb")
    ctx, _ = engine_context(sb, None)
    lb.apply(ctx, lb.plan(ctx))
    yield sb
    sb.stop()


def hc(sb):
    client = sb.hcloud_client(poll_interval=0.02)
    client._client._session.trust_env = False
    return client


def public_config(mode: str = "check") -> Config:
    cfg = Config()
    cfg.load_balancer.use_private_ip = False
    cfg.firewall.mode = mode
    cfg.firewall.allow_from = ["198.51.100.0/24"]
    return cfg


def by_check(results):
    return {r.check: r for r in results}


def test_private_targets_need_no_hetzner_rule_and_the_check_says_why(world):
    ctx, rec = engine_context(world, None)
    results = by_check(firewall.check(ctx))
    assert results["firewall-workers"].status == "info"
    assert results["firewall-workers"].detail.count(": none") == 5
    lb_port = results["firewall-nodeport-31695"]
    assert lb_port.status == "ok" and "do not filter private-network traffic" in lb_port.detail
    assert "UFW" in lb_port.detail
    assert {r.check for r in rec.of(CheckResult)} == set(results)
    assert set(results) == {"firewall-workers", "firewall-nodeport-31695", "firewall-nodeport-32720",
                            "firewall-nodeport-30080", "firewall-nodeport-30000"}
    assert firewall.plan(ctx).changes == []  # firewall.mode is check: nothing to manage


def test_public_targets_blocked_by_a_firewall_are_named_and_fixed_in_manage_mode(world, tmp_path):
    client = hc(world)
    w1 = client.servers.get_by_name("k3s-worker-01")
    ssh = FirewallRule(direction="in", protocol="tcp", port="22", source_ips=["0.0.0.0/0"], description="ssh")
    made = client.firewalls.create(name="ops-ssh", rules=[ssh], resources=[FirewallResource(type="server", server=Server(id=w1.id))])
    for a in made.actions:
        a.wait_until_finished(max_retries=500)

    ctx, _ = engine_context(world, None, public_config())
    results = by_check(firewall.check(ctx))
    assert "k3s-worker-01: ops-ssh (direct)" in results["firewall-workers"].detail
    blocked = results["firewall-nodeport-31695"]
    assert blocked.status == "fail" and "k3s-worker-01 (ops-ssh)" in blocked.detail
    assert "k3s-worker-02" not in blocked.detail  # no firewall there: open at the Hetzner level
    assert "firewall.mode: manage" in blocked.remediation
    assert results["firewall-nodeport-30080"].status == "info"  # only for direct access

    journal = tmp_path / "j.jsonl"
    ctx, rec = engine_context(world, journal, public_config("manage"))
    p = firewall.plan(ctx)
    create = [c for c in p.changes if c.action == "create"]
    assert [(c.kind, c.name, c.destructive) for c in create] == [("Firewall", "keybuzz-workers", True)]
    assert "drops every inbound public connection" in create[0].note and "k3s-worker-02" in create[0].note
    assert any("SSH (TCP 22)" in w for w in p.warnings)
    rules = {r["port"]: r for r in create[0].desired["rules"]}
    assert sorted(rules) == ["30000", "30080", "31695", "32720"]
    lb_ip = lb.addresses(ctx)[0]
    assert rules["31695"]["source_ips"] == sorted(["198.51.100.0/24", f"{lb_ip}/32"])
    with pytest.raises(CloudError) as e:
        firewall.apply(ctx, p)
    assert e.value.code == "destructive"
    assert client.firewalls.get_by_name("keybuzz-workers") is None
    firewall.apply(ctx, p, allow_destructive=True)
    assert {e.command for e in rec.of(ActionProgress) if e.status == "success"} >= {"set_firewall_rules", "apply_firewall"}
    fw = client.firewalls.get_by_name("keybuzz-workers")
    assert [(r.type, r.label_selector.selector) for r in fw.applied_to] == [("label_selector", "role=worker")]

    after = by_check(firewall.check(ctx))
    assert after["firewall-nodeport-31695"].status == "ok"
    assert "keybuzz-workers (label selector role=worker)" in after["firewall-workers"].detail
    assert not firewall.plan(ctx).has_changes
    lines = [json.loads(x) for x in journal.read_text().splitlines()]
    assert [(x["kind"], x["action"]) for x in lines if x["event"] == "change"] == [("Firewall", "create")]
    assert world.hcloud_token not in journal.read_text()


def test_set_rules_keeps_every_rule_keybuzz_tui_did_not_create(world, tmp_path):
    client = hc(world)
    ctx, _ = engine_context(world, None, public_config("manage"))
    firewall.apply(ctx, None, allow_destructive=True)
    fw = client.firewalls.get_by_name("keybuzz-workers")
    admin = FirewallRule(direction="in", protocol="tcp", port="22", source_ips=["192.0.2.0/24"], description="admin ssh")
    for a in client.firewalls.set_rules(fw, list(fw.rules) + [admin]):
        a.wait_until_finished(max_retries=500)
    assert not firewall.plan(ctx).has_changes  # a foreign rule is not drift

    cfg = public_config("manage")
    cfg.firewall.allow_from = ["203.0.113.0/24"]
    ctx2, _ = engine_context(world, tmp_path / "j.jsonl", cfg)
    p = firewall.plan(ctx2)
    upd = [c for c in p.changes if c.action == "update"]
    assert len(upd) == 1 and "1 rule(s) keybuzz-tui did not create are kept" in upd[0].note
    assert len(upd[0].diff) == 4 and all("203.0.113.0/24" in str(d.new) for d in upd[0].diff)
    assert not any("SSH" in w for w in p.warnings)  # the admin rule allows 22
    firewall.apply(ctx2, p)
    fw = client.firewalls.get_by_name("keybuzz-workers")
    descriptions = [r.description for r in fw.rules]
    assert "admin ssh" in descriptions
    assert all("198.51.100.0/24" not in r.source_ips for r in fw.rules)
    assert not firewall.plan(ctx2).has_changes


def test_rule_matching_understands_ranges_and_cidrs():
    rule = FirewallRule(direction="in", protocol="tcp", port="30000-32767", source_ips=["10.0.0.0/16", "::/0"])
    assert firewall.rule_allows(rule, 31695, "10.0.3.4/32")
    assert firewall.rule_allows(rule, 31695, "10.0.0.0/24")
    assert not firewall.rule_allows(rule, 31695, "10.1.0.1/32")
    assert not firewall.rule_allows(rule, 29999, "10.0.0.1")
    assert firewall.rule_allows(rule, 30000, "2001:db8::1/128")
    udp = FirewallRule(direction="in", protocol="udp", port="31695", source_ips=["0.0.0.0/0"])
    assert not firewall.rule_allows(udp, 31695, "10.0.0.1")


def test_ufw_advice_is_the_runbook_commands_for_every_worker():
    cfg = Config()
    lines = firewall.ufw_advice(cfg)
    commands = [x for x in lines if not x.startswith("#")]
    for port in (31695, 32720, 30080, 30000, 8080, 3000):
        assert any(c.startswith(f"sudo ufw allow from 10.0.0.0/16 to any port {port} proto tcp") for c in commands), port
    assert "sudo ufw delete deny 31695/tcp" in commands and commands[-1] == "sudo ufw reload"
    assert "Les ports NodePort doivent être ouverts sur tous les workers" in lines[0]
    assert not any(c == "sudo ufw allow 31695/tcp comment 'keybuzz: LB health check and traffic'" for c in commands)
    public = firewall.ufw_advice(public_config())
    assert "sudo ufw allow 31695/tcp comment 'keybuzz: LB health check and traffic'" in public
    assert any("from 198.51.100.0/24 to any port 30080" in c for c in public)


# --- check mode as a step of plan and apply (firewall.review) ----------------------------------------


def _ops_ssh_on_worker_01(sb):
    client = hc(sb)
    w1 = client.servers.get_by_name("k3s-worker-01")
    ssh = FirewallRule(direction="in", protocol="tcp", port="22", source_ips=["0.0.0.0/0"], description="ssh")
    made = client.firewalls.create(name="ops-ssh", rules=[ssh], resources=[FirewallResource(type="server", server=Server(id=w1.id))])
    for a in made.actions:
        a.wait_until_finished(max_retries=500)
    return client


def test_review_in_check_mode_says_what_passes_what_is_missing_the_fix_and_the_ufw_rules(world):
    ctx, rec = engine_context(world, None)  # the default: check mode, private targets
    rv = firewall.review(ctx)
    assert rv.status == "ok" and rv.missing == [] and not rv.error
    assert {r.check for r in rv.passed} == {"firewall-nodeport-31695", "firewall-nodeport-32720",
                                            "firewall-nodeport-30080", "firewall-nodeport-30000"}
    assert [e.title for e in rec.of(StepStarted)] == ["Firewall (check mode: keybuzz-tui changes no firewall)"]
    assert rec.of(StepFinished)[-1].status == "ok" and rec.of(Warning_) == []
    (ufw,) = [e for e in rec.of(Info) if e.step == "firewall"]
    assert "sudo ufw allow from 10.0.0.0/16 to any port 31695 proto tcp" in ufw.message
    assert "keybuzz-tui firewall advice" in ufw.message
    d = rv.to_dict()
    assert d["status"] == "ok" and d["fix"] == "" and d["ufw"] == firewall.ufw_advice(ctx.config)

    _ops_ssh_on_worker_01(world)
    ctx, rec = engine_context(world, None, public_config())
    rv = firewall.review(ctx)
    assert rv.status == "missing"
    (missing,) = rv.missing
    assert missing.check == "firewall-nodeport-31695" and "k3s-worker-01 (ops-ssh)" in missing.detail
    assert {r.check for r in rv.notes} == {"firewall-nodeport-32720", "firewall-nodeport-30080", "firewall-nodeport-30000"}
    assert "firewall.mode: manage" in rv.fix() and "`keybuzz-tui firewall apply`" in rv.fix()
    assert "keybuzz-tui firewall apply" in missing.remediation
    (warn,) = rec.of(Warning_)
    assert "missing Hetzner firewall rule" in warn.message and "does not stop plan or apply" in warn.remediation
    assert rec.of(StepFinished)[-1].status == "warn"
    assert rv.to_dict()["missing"][0]["check"] == "firewall-nodeport-31695" and rv.to_dict()["fix_command"] == "keybuzz-tui firewall apply"
    # check mode plans nothing; the explicit fix plans as manage would
    assert firewall.plan(ctx).changes == []
    fix = firewall.plan(ctx, mode="manage")
    assert [(c.kind, c.action) for c in fix.changes] == [("Firewall", "create")]
    assert firewall.worker_names(ctx) == [f"k3s-worker-0{i}" for i in range(1, 6)]


def test_review_never_raises_when_the_check_cannot_run(world):
    from keybuzz_tui.engine.context import Context, Endpoints
    from keybuzz_tui.events import Recorder

    ep = Endpoints.from_sandbox(world.state_dir)
    ep.hcloud_token_env = None  # and no secret source: no token at all
    rec = Recorder()
    rv = firewall.review(Context(Config(), ep, sink=rec))
    assert rv.status == "error" and "no Hetzner Cloud API token" in rv.error
    assert isinstance(rv.exception, CloudError) and rv.exception.code == "no_token"
    assert "HCLOUD_TOKEN" in rv.fix()
    assert rec.of(StepFinished)[-1].status == "warn"
    assert any("could not run" in w.message for w in rec.of(Warning_))


def test_the_commands_the_firewall_texts_name_exist():
    from keybuzz_tui.cli import build_parser

    texts = " ".join(firewall.ufw_advice(public_config())) + firewall.FirewallReview("check", results=[
        CheckResult(check="firewall-nodeport-31695", status="fail", title="t")]).fix()
    assert "keybuzz-tui firewall apply" in texts
    for cmd in (firewall.ADVICE_COMMAND, firewall.FIX_COMMAND, "keybuzz-tui firewall check"):
        args = build_parser().parse_args(cmd.split()[1:])
        assert callable(args.run), cmd
