"""The benchmarks in bench/ still run and still measure what they claim (tiny sizes, no timing
assertions: the numbers themselves are only meaningful from `make bench` on a quiet machine)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

pytestmark = pytest.mark.slow


def test_lb_path_compares_the_lb_with_the_hostport_in_one_run():
    from bench import lb_path

    out = lb_path.run(requests=20, rounds=1, threads=2, warmup=5, serial=10)
    assert out["direct_errors"] == 0 and out["lb_errors"] == 0
    assert out["direct_rps"] > 0 and out["lb_rps"] > 0
    assert out["ratio_rps_lb_over_direct"] is not None and out["ratio_serial_p50_lb_over_direct"] > 0


def test_ports_scan_counts_requests_and_checks_the_default_ports():
    from bench import ports_scan

    out = ports_scan.run("healthy", repeat=1)
    assert out["scan_requests_client"] == out["scan_requests_server"] > 0
    assert out["nodes"] == 8 and out["taken_ports"] > 0
    # the runbook's ports are free on the default world; the ingress NodePorts are ingress-nginx's own
    assert out["check_statuses"]["hostPort/keybuzz-api"] == out["check_statuses"]["nodePort/keybuzz-front"] == "ok"
    assert out["check_statuses"]["nodePort/ingress-http"] == "info"
    if out.get("kubectl_s"):
        assert out["kubectl_requests_server"] > 0 and out["scan_vs_kubectl"] > 0


def test_cli_validate_counts_requests_per_run_and_per_refresh():
    from bench import cli_validate

    out = cli_validate.run(repeat=1, kube_changes=1)
    assert "error" not in out, out.get("error")
    assert out["validate_status"] == ["ok"]
    assert out["validate_requests_client"] == out["validate_requests_server"] > 0
    assert all(r["exit"] == 0 for r in out["cli_validate_requests"])
    assert out["continuous"], out


def test_tui_board_measures_both_kinds_of_change_and_the_first_paint():
    from bench import tui_board

    out = tui_board.board_latency(rounds=1)
    for kind in ("kube_node_notready", "net_ufw_drop", "kube_while_net_slow"):
        assert out[f"{kind}_n"] == 2 and out[f"{kind}_max_s"] >= out[f"{kind}_median_s"] > 0, kind
    assert out["fast_lane"]["api_requests"] == 0 and out["fast_lane"]["changes"] >= 2
    paint = tui_board.first_paint(runs=1)
    assert paint["first_paint_minimal_s"] > 0 and paint["first_paint_keybuzz_s"] > 0 and paint["first_paint_runs"] == 1
