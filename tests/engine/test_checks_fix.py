"""Where a failing check gets fixed (engine/checks_fix.py): the wizard step that can repair it, the
Doctor, or the exact commands to run on a node, read from the fault kinds the judges put in the
evidence (and the check's usual place when there is none)."""

from __future__ import annotations

from typing import Any

from keybuzz_tui.config import Config
from keybuzz_tui.engine.checks_base import CheckRecord
from keybuzz_tui.engine.checks_fix import fix_for
from keybuzz_tui.engine.checks_registry import build_checks


def rec(check: str, status: str = "fail", evidence: dict[str, Any] | None = None) -> CheckRecord:
    layer = next(c.layer for c in build_checks(Config()) if c.id == check)
    return CheckRecord(check, layer, check, status, "detail", "remediation", evidence or {})  # type: ignore[arg-type]


def nodeport_evidence(**per_worker: dict[str, Any]) -> dict[str, Any]:
    return {w: {"ingress 31695": v} for w, v in per_worker.items()}


UFW = {"status": "fail", "fix": "host-firewall", "node": "k3s-worker-02", "port": 31695}
NOTREADY = {"status": "fail", "fix": "node", "node": "k3s-worker-04"}


def test_a_dropped_nodeport_is_fixed_on_the_node_with_the_exact_commands():
    fix = fix_for(rec("node.nodeport", evidence=nodeport_evidence(**{"k3s-worker-01": {"status": "ok"}, "k3s-worker-02": UFW})),
                  config=Config())
    assert fix is not None and fix.place == "commands" and fix.nodes == ("k3s-worker-02",)
    assert "31695/tcp dropped on k3s-worker-02" in fix.why and "no wizard step" in fix.why
    text = "\n".join(fix.commands)
    # the LB reaches the workers on their private IPs (the default): allow the private network
    assert fix.commands[0] == "sudo ufw status numbered" and "sudo ufw reload" in text
    assert "sudo ufw allow from 10.0.0.0/16 to any port 31695 proto tcp" in text and "sudo ufw delete deny 31695/tcp" in text
    public = Config()
    public.load_balancer.use_private_ip = False
    assert "sudo ufw allow 31695/tcp" in fix_for(rec("node.nodeport", evidence=nodeport_evidence(**{"k3s-worker-02": UFW})), config=public).commands


def test_the_lb_check_failing_because_of_a_dropped_nodeport_is_fixed_on_the_node_not_in_the_lb_step():
    ev = {"k3s-worker-02": {"ip": "10.0.0.111", "health": {"80": {"status": "unhealthy"}}, "fix": "host-firewall",
                            "node": "k3s-worker-02", "port": 31695}}
    assert fix_for(rec("lb.targets-healthy", evidence=ev)).place == "commands"  # type: ignore[union-attr]
    ev["k3s-worker-02"]["fix"] = "lb-config"
    assert fix_for(rec("lb.targets-healthy", evidence=ev)).place == "lb"  # type: ignore[union-attr]
    assert fix_for(rec("lb.targets-healthy")).place == "lb"  # type: ignore[union-attr]


def test_each_fault_goes_where_it_can_be_fixed():
    pods = {"apps": {"keybuzz-api": {"workers": {"k3s-worker-03": {"status": "fail", "fix": "port-in-use"}}}}}
    cases = [
        (rec("k8s.pods-ready", evidence=pods), "ports"),
        (rec("k8s.pods-ready", evidence={"apps": {"keybuzz-front": {"workers": {"k3s-worker-05": {"status": "fail", "fix": "pod"}}}}}), "rollout"),
        (rec("k8s.pods-ready"), "rollout"),
        (rec("k8s.nodes"), "doctor"),
        (rec("k8s.api"), "doctor"),
        (rec("k8s.ingress"), "review"),
        (rec("k8s.services"), "review"),
        (rec("k8s.daemonsets"), "review"),
        (rec("k8s.ingress-controller"), "doctor"),
        (rec("ingress.routing", evidence={"k3s-worker-03": {"keybuzz-api": {"status": "fail", "at": "service", "fix": "overlay"}}}), "doctor"),
        (rec("ingress.routing", evidence={"k3s-worker-03": {"keybuzz-api": {"status": "fail", "at": "ingress", "fix": "ingress-object"}}}), "review"),
        (rec("lb.services"), "lb"),
        (rec("lb.certificate"), "lb"),
        (rec("dns.resolver"), "dns"),
        (rec("dns.authoritative"), "dns"),
        (rec("https.platform"), "lb"),
    ]
    for r, place in cases:
        fix = fix_for(r)
        assert fix is not None and fix.place == place, (r.check, r.evidence, fix)
    # a NotReady worker explains its dropped ports: the node first (the Doctor), not UFW
    both = nodeport_evidence(**{"k3s-worker-02": UFW, "k3s-worker-04": {"status": "fail", "fix": "node", "node": "k3s-worker-04"}})
    assert fix_for(rec("node.nodeport", evidence=both)).place == "doctor"  # type: ignore[union-attr]
    # ... unless the operator asks about one worker (a matrix cell)
    assert fix_for(rec("node.nodeport", evidence=both), node="k3s-worker-02").place == "commands"  # type: ignore[union-attr]
    assert fix_for(rec("node.nodeport", "ok")) is None and fix_for(rec("node.nodeport", "skip")) is None
