"""The remediation of a failed headless rollout names `keybuzz-tui rollback APP` for each app that
has an earlier revision, with the options that point it at the same platform (pure functions; the
end-to-end run is in test_cli_headless.py)."""

from __future__ import annotations

import argparse

from keybuzz_tui.apply_flow import rollback_advice, target_flags
from keybuzz_tui.engine.rollout import Revision


def rev(n: int, image: str) -> Revision:
    return Revision(revision=n, name=f"keybuzz-api-{n}", images=(image,), change_cause="", created="", current=False, config_hash="", diff=())


def test_names_the_command_per_app_and_says_when_there_is_nothing_to_roll_back_to():
    flags = target_flags(argparse.Namespace(config="/srv/k b/keybuzz.yaml", context=None, sandbox="/tmp/sb"))
    assert flags == " --config '/srv/k b/keybuzz.yaml' --sandbox /tmp/sb"
    text = rollback_advice({"keybuzz-api": rev(1, "ghcr.io/keybuzz/api:1.4.1"), "keybuzz-front": None}, flags)
    assert text.startswith("fix the cause above, then run apply again (it resumes)")
    assert "`keybuzz-tui rollback keybuzz-api --config '/srv/k b/keybuzz.yaml' --sandbox /tmp/sb` (to revision 1: ghcr.io/keybuzz/api:1.4.1)" in text
    assert "keybuzz-front: nothing to roll back to, this was the first rollout" in text
    assert "wizard" not in text
    first = rollback_advice({"keybuzz-api": None, "keybuzz-front": None})
    assert "go back" not in first and "keybuzz-api, keybuzz-front: nothing to roll back to" in first


def test_workers_caught_in_errimagepull_and_imagepullbackoff_are_one_diagnosis():
    """The kubelet alternates the two for one failed pull: workers caught at different moments are
    one cause (one warning, one brief group), and the states are named as seen."""
    from keybuzz_tui.apply_flow import rollout_brief, rollout_diagnosis
    from keybuzz_tui.engine.rollout import AppRollout, NodeRollout, RolloutResult

    fix = "Check apps[].image for keybuzz-api in keybuzz.yaml (registry, name, tag)."
    pull = 'Failed to pull image "ghcr.io/keybuzz/api:1.4.2": not found'
    nodes = {
        f"k3s-worker-0{i}": NodeRollout(f"k3s-worker-0{i}", pod=f"p{i}", phase=r, reason=r, message=pull, remediation=fix)
        for i, r in enumerate(["ErrImagePull", "ImagePullBackOff", "ImagePullBackOff"], start=1)
    }
    crash = NodeRollout("k3s-worker-04", pod="p4", phase="CrashLoopBackOff", reason="CrashLoopBackOff", message="exit code 1", remediation="read the log")
    res = RolloutResult("timeout", {"keybuzz-api": AppRollout("keybuzz-api", nodes={**nodes, "k3s-worker-04": crash})}, 4.0, "")
    warnings = rollout_diagnosis(res)
    assert len(warnings) == 2, [w.message for w in warnings]
    assert warnings[0].message.startswith("keybuzz-api on k3s-worker-01, k3s-worker-02, k3s-worker-03: ErrImagePull/ImagePullBackOff")
    assert pull in warnings[0].message and warnings[0].remediation == fix
    assert warnings[1].message.startswith("keybuzz-api on k3s-worker-04: CrashLoopBackOff")
    assert rollout_brief(res) == (
        "keybuzz-api: ErrImagePull/ImagePullBackOff on k3s-worker-01, k3s-worker-02, k3s-worker-03; keybuzz-api: CrashLoopBackOff on k3s-worker-04"
    )
