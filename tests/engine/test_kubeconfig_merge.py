"""KUBECONFIG with several files (os.pathsep-separated), merged as kubectl merges them: files that do
not exist are skipped, the first definition of a name wins, current-context comes from the first
file that sets one. The kubernetes library's KubeConfigMerger does the merge; it lets the LAST file
set current-context, which engine.context corrects."""

from __future__ import annotations

import os

import pytest
import yaml
from support import sandboxes

from keybuzz_tui.cli import build_parser, make_context
from keybuzz_tui.config import Config
from keybuzz_tui.engine import kubeio
from keybuzz_tui.engine.context import Context, Endpoints, merged_kubeconfig


@pytest.fixture(scope="module")
def sb(tmp_path_factory):
    s = sandboxes.start(tmp_path_factory.mktemp("kubeconfig-merge"))
    yield s
    s.stop()


def two_files(sb, tmp_path):
    """first.yaml: only `current-context: keybuzz-sandbox` and a context `elsewhere` of its own;
    second.yaml: the sandbox's kubeconfig (which defines keybuzz-sandbox), plus a context `broken`
    (a closed port) that it makes current, and its own `elsewhere` pointing at the sandbox."""
    kc = yaml.safe_load((sb.state_dir / "kubeconfig").read_text())
    user = kc["users"][0]["name"]
    cluster = kc["clusters"][0]["name"]
    second = dict(kc)
    second["clusters"] = [*kc["clusters"], {"name": "broken", "cluster": {"server": "https://127.0.0.1:9"}}]
    second["contexts"] = [*kc["contexts"], {"name": "broken", "context": {"cluster": "broken", "user": user}},
                          {"name": "elsewhere", "context": {"cluster": cluster, "user": user}}]
    second["current-context"] = "broken"
    first = {"apiVersion": "v1", "kind": "Config", "current-context": "keybuzz-sandbox", "preferences": {},
             "clusters": [{"name": "nowhere", "cluster": {"server": "https://127.0.0.1:9"}}],
             "contexts": [{"name": "elsewhere", "context": {"cluster": "nowhere", "user": user}}], "users": []}
    a, b = tmp_path / "first.yaml", tmp_path / "second.yaml"
    a.write_text(yaml.safe_dump(first))
    b.write_text(yaml.safe_dump(second))
    return a, b


def test_two_files_the_context_in_the_second_current_context_from_the_first(sb, tmp_path):
    a, b = two_files(sb, tmp_path)
    paths = os.pathsep.join([str(tmp_path / "missing.yaml"), str(a), str(b)])
    merged = merged_kubeconfig(paths).config.value
    assert merged["current-context"] == "keybuzz-sandbox"  # the first file that sets it (the library alone: "broken")
    names = [c["name"] for c in merged["contexts"]]
    assert names.count("elsewhere") == 1 and {"keybuzz-sandbox", "broken"} <= set(names)
    (elsewhere,) = [c for c in merged["contexts"] if c["name"] == "elsewhere"]
    assert elsewhere["context"]["cluster"] == "nowhere"  # first definition of a name wins

    ctx = Context(Config(), Endpoints(kubeconfig=paths))
    assert kubeio.get(ctx, "/version")["gitVersion"].startswith("v1.")  # keybuzz-sandbox, defined in the second file
    ctx.close()
    # an explicit context still wins over current-context
    bad = Context(Config(), Endpoints(kubeconfig=paths, context="broken"))
    assert bad.kube().configuration.host == "https://127.0.0.1:9"
    bad.close()


def test_the_cli_passes_every_file_of_KUBECONFIG(sb, tmp_path, monkeypatch):
    a, b = two_files(sb, tmp_path)
    monkeypatch.setenv("KUBECONFIG", f"{a}{os.pathsep}{b}")
    monkeypatch.setenv("KEYBUZZ_STATE_DIR", str(tmp_path / "state"))
    args = build_parser().parse_args(["validate", "--config", str(tmp_path / "none.yaml")])
    ctx = make_context(args, Config(), lambda e: None)
    try:
        assert ctx.endpoints.kubeconfig == f"{a}{os.pathsep}{b}"
        assert ctx.kube().configuration.host == sb.kube_url
    finally:
        ctx.close()


def test_no_file_at_all_is_a_clear_error(tmp_path):
    from kubernetes.config.config_exception import ConfigException

    with pytest.raises(ConfigException, match="no kubeconfig file found"):
        merged_kubeconfig(f"{tmp_path / 'a.yaml'}{os.pathsep}{tmp_path / 'b.yaml'}")
