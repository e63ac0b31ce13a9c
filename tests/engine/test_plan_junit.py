"""`keybuzz-tui plan --junit FILE`: the plan as JUnit XML (engine.report.plan_to_junit), for CI gates."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from keybuzz_tui.engine import firewall
from keybuzz_tui.engine.plan import Change, FieldDiff, Plan
from keybuzz_tui.engine.platform import FullPlan
from keybuzz_tui.engine.ports import PortCheck
from keybuzz_tui.engine.report import plan_to_junit
from keybuzz_tui.events import CheckResult


def port(name: str, number: int, status: str, **kw) -> PortCheck:
    return PortCheck(name=name, kind=name.split("/")[0], app=name.split("/")[1], port=number, status=status, field="apps[0].port",
                     title=f"{name} {number}", detail=kw.pop("detail", "free"), **kw)


def test_one_testcase_per_step_and_per_port_conflicts_and_errors_fail():
    plan = Plan([
        Change("kubernetes", "create", "DaemonSet", "keybuzz-api", "keybuzz"),
        Change("kubernetes", "update", "Service", "keybuzz-api", "keybuzz", diff=[FieldDiff(".spec.ports[0].nodePort", 30081, 30080)]),
        Change("hetzner", "unchanged", "LoadBalancer", "keybuzz-lb"),
    ])
    fp = FullPlan(plan=plan, port_checks=[
        port("hostPort/keybuzz-api", 8080, "conflict", detail="8080/TCP is taken on k3s-worker-03",
             holders=("host process nginx",), nodes=("k3s-worker-03",), suggestions=(8081, 8082), remediation="use 8081"),
        port("nodePort/keybuzz-api", 30080, "ok"),
    ], errors=["dns: the zone keybuzz.io refused us"])
    review = firewall.FirewallReview("check", results=[
        CheckResult(check="firewall-nodeport-31695", status="fail", title="NodePort 31695 reachable", detail="dropped on k3s-worker-01")])
    root = ET.fromstring(plan_to_junit(fp, firewall=review))
    plan_suite, port_suite = root.findall("testsuite")
    assert plan_suite.get("name") == "keybuzz.plan" and port_suite.get("name") == "keybuzz.ports"
    cases = {c.get("name"): c for c in plan_suite.findall("testcase")}
    assert list(cases) == ["ports", "kubernetes", "load balancer", "dns", "firewall"]
    assert plan_suite.get("tests") == "5" and plan_suite.get("failures") == "1"
    assert cases["dns"].find("failure").get("type") == "PlanError" and "refused" in cases["dns"].find("failure").get("message")
    k8s = cases["kubernetes"].find("system-out").text
    assert "1 to create, 1 to update" in k8s and "DaemonSet keybuzz/keybuzz-api" in k8s and "30081 -> 30080" in k8s
    assert "1 unchanged" in cases["load balancer"].find("system-out").text
    fw = cases["firewall"].find("system-out").text
    assert cases["firewall"].find("failure") is None  # the firewall check is a warning, never a failure
    assert fw.startswith("nothing planned") and "WARNING: firewall (check mode)" in fw and "keybuzz-tui firewall apply" in fw
    assert "1 conflict(s)" in cases["ports"].find("system-out").text
    ports_cases = {c.get("name"): c for c in port_suite.findall("testcase")}
    assert port_suite.get("tests") == "2" and port_suite.get("failures") == "1"
    failure = ports_cases["hostPort/keybuzz-api"].find("failure")
    assert failure.get("type") == "PortConflict" and "hostPort/keybuzz-api 8080" in failure.get("message")
    assert "host process nginx on k3s-worker-03" in failure.text and "8081, 8082" in failure.text
    assert ports_cases["nodePort/keybuzz-api"].find("failure") is None


def test_a_clean_plan_has_no_failure():
    root = ET.fromstring(plan_to_junit(FullPlan(port_checks=[port("hostPort/keybuzz-api", 8080, "ok")])))
    assert root.findall(".//failure") == [] and len(root.findall(".//testcase")) == 6
