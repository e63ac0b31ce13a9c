"""keybuzz.yaml: `config init` round trip, precise errors (file:line: field: message) for every kind
of bad input, and property tests: nothing but ConfigError ever escapes the loader, and every
problem names a field path or a line."""

from __future__ import annotations

import dataclasses
import os
import stat
import string

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keybuzz_tui import cli_config
from keybuzz_tui import config as cfgmod
from keybuzz_tui.config import Config, ConfigError
from keybuzz_tui.config_template import COMMENTS, field_paths, render_default

DEFAULT = render_default()


def problems(text: str) -> list[tuple[str, int | None, str]]:
    with pytest.raises(ConfigError) as exc:
        cfgmod.loads(text)
    return exc.value.problems


def line_of(text: str, needle: str, nth: int = 1) -> int:
    """The line number of the nth line that starts with `needle` (indentation and "- " aside)."""
    seen = 0
    for i, line in enumerate(text.splitlines(), 1):
        if line.strip().removeprefix("- ").startswith(needle):
            seen += 1
            if seen == nth:
                return i
    raise AssertionError(f"{needle!r} not in the text")


def replace_line(text: str, needle: str, new: str) -> str:
    lines = text.splitlines()
    i = line_of(text, needle) - 1
    stripped = lines[i].lstrip()
    indent = lines[i][: len(lines[i]) - len(stripped)] + ("- " if stripped.startswith("- ") else "")
    lines[i] = indent + new
    return "\n".join(lines) + "\n"


# --- config init ------------------------------------------------------------------------------------


def test_the_default_file_round_trips_to_the_defaults():
    assert cfgmod.loads(DEFAULT) == Config()
    assert cfgmod.loads(render_default("staging")) == Config(profile="staging")
    assert cfgmod.check(Config()) == []
    assert cfgmod.loads(cfgmod.dumps(Config())) == Config()
    assert cfgmod.loads(cfgmod.HEADER + cfgmod.dumps(Config())) == Config()


def test_the_default_file_reproduces_the_runbook():
    cfg = cfgmod.loads(DEFAULT)
    assert [(a.name, a.port, a.node_port) for a in cfg.apps] == [("keybuzz-api", 8080, 30080), ("keybuzz-front", 3000, 30000)]
    assert (cfg.ingress.http_node_port, cfg.ingress.https_node_port) == (31695, 32720)
    assert [(s.listen_port, s.destination_port) for s in cfg.load_balancer.services] == [(80, 31695), (443, 31695)]
    hc = cfg.load_balancer.health_check
    assert (hc.protocol, hc.port, hc.path) == ("http", 31695, "/healthz")
    assert cfg.hosts() == {"platform-api.keybuzz.io": "keybuzz-api", "platform.keybuzz.io": "keybuzz-front"}


def test_every_field_is_commented():
    assert set(field_paths()) == set(COMMENTS)
    lines = DEFAULT.splitlines()
    for top in (f.name for f in dataclasses.fields(Config)):
        i = next(n for n, line in enumerate(lines) if line.startswith(f"{top}:"))
        assert lines[i - 1].startswith("# "), f"{top} has no comment above it"
    for word in ("lb11, lb21, lb31", "fsn1, nbg1", "managed", "30000-32767", "31695", "/healthz", "keyring"):
        assert word in DEFAULT


def test_the_default_file_holds_no_secret_values():
    data = yaml.safe_load(DEFAULT)
    for app in data["apps"]:
        for s in app["secrets"]:
            assert set(s) == {"key", "generate", "length", "description"}
    assert "value:" not in DEFAULT and "password:" not in DEFAULT and "token:" not in DEFAULT


def test_render_default_refuses_a_bad_profile():
    with pytest.raises(ValueError, match="DNS label"):
        render_default("Prod_1")


def test_config_init_writes_0644_atomically_and_refuses_to_overwrite(tmp_path, capsys):
    target = tmp_path / "sub" / "keybuzz.yaml"
    old = os.umask(0o077)  # even with a strict umask the answers file is 0644 (it holds no secret)
    try:
        assert cli_config.main(["init", "--config", str(target)]) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert target.read_text() == DEFAULT
    assert "wrote" in capsys.readouterr().out
    target.write_text("# edited by the operator\nnamespace: mine\n")
    assert cli_config.main(["init", "--config", str(target)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert target.read_text().startswith("# edited by the operator")
    assert cli_config.main(["init", "--config", str(target), "--force", "--profile", "staging"]) == 0
    assert cfgmod.load(target) == Config(profile="staging")
    assert sorted(p.name for p in target.parent.iterdir()) == ["keybuzz.yaml"]  # no temp file left behind
    assert cli_config.main(["init", "--config", str(tmp_path)]) == 2  # a directory


def test_config_check_ok_prints_one_summary_line(tmp_path, capsys):
    target = tmp_path / "keybuzz.yaml"
    target.write_text(DEFAULT)
    assert cli_config.main(["check", "--config", str(target)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("ok: ")
    assert "keybuzz-api 8080/30080" in out[0] and "80,443 -> 31695" in out[0]


def test_config_check_prints_every_problem_with_file_line_field(tmp_path, capsys):
    target = tmp_path / "keybuzz.yaml"
    text = replace_line(DEFAULT, "node_port: 30080", "node_port: 40000")
    text = replace_line(text, "type: lb11", "type: lb99")
    target.write_text(text)
    assert cli_config.main(["check", "--config", str(target)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert f"{target}:{line_of(text, 'node_port: 40000')}: apps[0].node_port: 40000 is not a valid port: allowed 30000-32767" in err
    assert f"{target}:{line_of(text, 'type: lb99')}: load_balancer.type: 'lb99': allowed lb11, lb21, lb31" in err
    assert err[-1].endswith("2 problems in " + str(target))
    assert cli_config.main(["check", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert "config init" in capsys.readouterr().err
    assert cli_config.main([]) == 2


# --- precise errors --------------------------------------------------------------------------------


def test_invalid_yaml_points_at_the_line():
    text = "profile: production\nnamespace: keybuzz\ncluster:\n  context: a\n   kubeconfig: b\n"
    [(path, line, msg)] = problems(text)
    assert path == "" and line == 5 and msg.startswith("not valid YAML")
    [(_, line, msg)] = problems("profile: production\napps:\n\t- name: x\n")
    assert line == 3 and "not valid YAML" in msg
    [(_, line, msg)] = problems("a: [1, 2\nb: 3\n")
    assert line is not None and "not valid YAML" in msg
    [(_, line, msg)] = problems("profile: x\n---\nprofile: y\n")
    assert line == 2 and "single document" in msg


def test_unreadable_scalars_and_control_characters_are_config_errors():
    [(_, line, msg)] = problems("profile: production\nnamespace: 2024-13-45\n")
    assert line == 2 and "2024-13-45" in msg and "quote it" in msg
    [(_, line, msg)] = problems("rollout:\n  timeout: !!int ten\n")
    assert line == 2 and "quote it" in msg
    [(_, line, msg)] = problems("profile: production\nnamespace: a\x00b\n")
    assert line == 2 and "U+0000" in msg


def test_wrong_types_name_the_field_and_the_line():
    text = replace_line(DEFAULT, "port: 8080", 'port: "8080"')
    text = replace_line(text, "use_private_ip: true", "use_private_ip: yes please")
    text = replace_line(text, "request_timeout: 15.0", "request_timeout: [15]")
    got = {p: (line, msg) for p, line, msg in problems(text)}
    assert got["apps[0].port"] == (line_of(text, 'port: "8080"'), "expected an integer, got '8080' (a string)")
    assert got["load_balancer.use_private_ip"][0] == line_of(text, "use_private_ip:")
    assert "expected true or false" in got["load_balancer.use_private_ip"][1]
    assert got["cluster.request_timeout"] == (line_of(text, "request_timeout:"), "expected a number, got a list")
    assert len(got) == 3  # no knock-on noise from the defaults standing in for bad values


def test_yaml_booleans_where_a_string_is_expected_suggest_quoting():
    [(path, _, msg)] = problems("namespace: no\n")
    assert path == "namespace" and "false (a boolean)" in msg and "quote it" in msg


def test_out_of_range_and_duplicate_ports():
    text = DEFAULT
    text = replace_line(text, "port: 3000", "port: 8080")  # the front on the API's hostPort
    text = replace_line(text, "node_port: 30000", "node_port: 31695")  # ingress-nginx's http NodePort
    text = replace_line(text, "listen_port: 443", "listen_port: 80")
    text = replace_line(text, "port: 31695", "port: 70000")  # health_check.port
    got = {p: (line, msg) for p, line, msg in problems(text)}
    assert got["apps[1].port"] == (line_of(text, "port: 8080", 2), "8080 is already used by apps[0].port")
    assert got["ingress.http_node_port"][1] == "31695 is already used by apps[1].node_port"
    assert got["load_balancer.services[1].listen_port"] == (
        line_of(text, "listen_port: 80", 2), "80 is already used by load_balancer.services[0]"
    )
    assert got["load_balancer.health_check.port"] == (line_of(text, "port: 70000"), "70000 is not a valid port: allowed 1-65535")


def test_bad_hostnames():
    cases = {
        "Platform.KeyBuzz.io": "lowercase",
        "platform.keybuzz.io.": "trailing dot",
        "plat_form.keybuzz.io": "not a valid hostname",
        "-platform.keybuzz.io": "not a valid hostname",
        "platform": "not a valid hostname",
    }
    for host, words in cases.items():
        text = replace_line(DEFAULT, "host: platform.keybuzz.io", f"host: {host!r}")
        got = {p: (line, msg) for p, line, msg in problems(text)}
        assert "apps[1].host" in got, (host, got)
        assert got["apps[1].host"][0] == line_of(text, "host: '")
        assert words in got["apps[1].host"][1], (host, got)
    text = replace_line(DEFAULT, "host: platform.keybuzz.io", "host: platform.example.org")
    [(path, _, msg)] = [p for p in problems(text) if p[0] == "apps[1].host"]
    assert "not inside dns.zone 'keybuzz.io'" in msg
    got = {p for p, _, _ in problems(text)}
    assert "load_balancer.certificate.domains" in got  # the managed certificate would not cover it


def test_bad_labels_and_selectors():
    text = replace_line(DEFAULT, "managed-by: keybuzz-tui", "managed by: keybuzz tui")
    text = replace_line(text, "app: keybuzz", "hetzner.cloud/app: keybuzz")
    text = replace_line(text, "target_selector: role=worker", "target_selector: role in workers")
    got = {p: (line, msg) for p, line, msg in problems(text)}
    assert got["load_balancer.labels.managed by"][0] == line_of(text, "managed by:")
    assert "label key" in got["load_balancer.labels.managed by"][1]
    assert "reserved" in got["load_balancer.labels.hetzner.cloud/app"][1]
    assert got["load_balancer.target_selector"][0] == line_of(text, "target_selector:")
    text = replace_line(DEFAULT, "app: keybuzz", "app: " + "v" * 64)
    [(path, _, msg)] = problems(text)
    assert path == "load_balancer.labels.app" and "label value" in msg
    [(path, line, msg)] = problems("namespace: KeyBuzz\n")
    assert (path, line) == ("namespace", 1) and "lowercase" in msg


def test_unknown_fields_say_what_is_allowed_and_suggest():
    text = replace_line(DEFAULT, "image: ghcr.io/keybuzz/front:1.4.2", "imagee: ghcr.io/keybuzz/front:1.4.2")
    got = {p: (line, msg) for p, line, msg in problems(text)}
    assert got["apps[1].imagee"][0] == line_of(text, "imagee:")
    assert "did you mean 'image'?" in got["apps[1].imagee"][1] and "allowed here:" in got["apps[1].imagee"][1]
    assert "required" in got["apps[1].image"][1]  # and the missing image is named too
    [(path, line, msg)] = problems("profile: production\nloadbalancer: {}\n")
    assert (path, line) == ("loadbalancer", 2) and "load_balancer" in msg


def test_duplicate_keys_point_at_the_second_one():
    [(path, line, msg)] = problems("namespace: a\nprofile: p\nnamespace: b\n")
    assert line == 3 and "duplicate key 'namespace'" in msg


def test_merge_keys_work_and_explicit_keys_override_them():
    text = (
        "x-app: &app {image: 'ghcr.io/k/x:1', health_path: /healthz}\n"
    )
    assert "x-app" in problems(text)[0][0]  # an unknown top-level field, even as an anchor holder
    cfg = cfgmod.loads(
        "apps:\n"
        "- &api {name: keybuzz-api, image: 'ghcr.io/k/api:1', port: 8080, node_port: 30080, host: platform-api.keybuzz.io}\n"
        "- <<: *api\n  name: keybuzz-front\n  port: 3000\n  node_port: 30000\n  host: platform.keybuzz.io\n"
    )
    assert [(a.name, a.image, a.port) for a in cfg.apps] == [("keybuzz-api", "ghcr.io/k/api:1", 8080), ("keybuzz-front", "ghcr.io/k/api:1", 3000)]


def test_list_items_are_located_item_by_item():
    text = "load_balancer:\n  certificate:\n    domains:\n    - platform.keybuzz.io\n    - [nested]\n    - platform-api.keybuzz.io\n"
    [(path, line, msg)] = problems(text)
    assert (path, line) == ("load_balancer.certificate.domains[1]", 5) and "expected a string" in msg
    text = "firewall:\n  allow_from:\n  - 10.0.0.0/16\n  - 10.0.0.0/33\n"
    [(path, line, msg)] = problems(text)
    assert (path, line) == ("firewall.allow_from[1]", 4) and "CIDR" in msg


def test_non_finite_numbers_and_huge_documents():
    [(path, _, msg)] = problems("cluster:\n  request_timeout: .nan\n")
    assert path == "cluster.request_timeout" and "finite" in msg
    [(path, _, msg)] = problems("cluster:\n  request_timeout: .inf\n")
    assert path == "cluster.request_timeout"
    [(path, line, msg)] = problems("profile: " + "[" * 5000 + "]" * 5000 + "\n")
    assert line == 1 and "nested" in msg
    laughs = "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
        f"{n}: &{n} [{', '.join(['*' + p] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi")
    )
    assert all("unknown field" in m for _, _, m in problems(laughs))  # fast: aliases are never expanded


def test_semantic_rules_of_the_load_balancer():
    text = replace_line(DEFAULT, "redirect_http: false", "redirect_http: true")  # on the http service
    assert ("load_balancer.services[0].redirect_http", "only an https service can redirect http") in [(p, m) for p, _, m in problems(text)]
    text = replace_line(DEFAULT, "type: managed", "type: none")
    [(path, _, msg)] = problems(text)
    assert path == "load_balancer.services[1].protocol" and "needs load_balancer.certificate" in msg
    text = replace_line(DEFAULT, "type: managed", "type: uploaded")
    [(path, _, msg)] = problems(text)
    assert path == "load_balancer.certificate.cert_file" and "keyring" in msg
    text = replace_line(DEFAULT, "network_zone: ''", "network_zone: eu-central")
    [(path, _, msg)] = problems(text)
    assert path == "load_balancer.network_zone" and "not both" in msg
    text = replace_line(DEFAULT, "- '2??'" if "- '2??'" in DEFAULT else "status_codes:", "status_codes: ['2??', '99']")
    [(path, _, msg)] = problems(text)
    assert path == "load_balancer.health_check.status_codes[1]"


def test_env_and_secret_keys_cannot_collide():
    text = replace_line(DEFAULT, "LOG_LEVEL: info", "JWT_SECRET: oops")
    [(path, line, msg)] = problems(text)
    assert path == "apps[0].env.JWT_SECRET" and line == line_of(text, "JWT_SECRET: oops") and "secret" in msg


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError) as exc:
        cfgmod.load(tmp_path / "nope.yaml")
    assert "nope.yaml" in str(exc.value) and "config init" in str(exc.value)
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"profile: caf\xe9\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        cfgmod.load(bad)
    with pytest.raises(ConfigError, match="directory"):
        cfgmod.load(tmp_path)
    good = tmp_path / "k.yaml"
    good.write_text("namespace: 'Bad'\n")
    with pytest.raises(ConfigError) as exc:
        cfgmod.load(good)
    assert str(exc.value).startswith(f"{good}:1: namespace: ")


# --- properties ------------------------------------------------------------------------------------


def _assert_well_formed(text: str) -> None:
    try:
        cfg = cfgmod.loads(text)
    except ConfigError as e:
        assert e.problems
        for path, line, msg in e.problems:
            assert path or line, (path, line, msg)
            assert line is None or line >= 1
            assert isinstance(msg, str) and msg
        str(e)  # renders
        return
    assert isinstance(cfg, Config)
    assert cfgmod.check(cfg) == []


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
    st.sampled_from(["8080", "30080", "lb11", "fsn1", "platform.keybuzz.io", "role=worker", "/healthz", "", "~", "yes", "2024-01-01"]),
)
keys = st.one_of(
    st.sampled_from([f.name for f in dataclasses.fields(Config)]
                    + ["name", "image", "port", "node_port", "host", "env", "secrets", "key", "generate", "length",
                       "services", "listen_port", "certificate", "type", "domains", "labels", "zone", "ttl"]),
    st.text(alphabet=string.ascii_letters + "_-.", min_size=1, max_size=12),
    st.integers(-5, 5),
)
documents = st.recursive(scalars, lambda children: st.one_of(st.lists(children, max_size=5), st.dictionaries(keys, children, max_size=6)), max_leaves=30)

PROPS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPS
@given(documents)
def test_random_yaml_documents_only_ever_raise_config_error(doc):
    _assert_well_formed(yaml.safe_dump(doc, allow_unicode=True))


@PROPS
@given(st.text(max_size=200))
def test_random_text_only_ever_raises_config_error(text):
    _assert_well_formed(text)


@PROPS
@given(st.lists(st.text(alphabet=string.printable + "é€", max_size=60), max_size=12))
def test_random_line_soup_only_ever_raises_config_error(lines):
    _assert_well_formed("\n".join(lines))


DEFAULT_LINES = DEFAULT.splitlines()
_value_lines = [i for i, line in enumerate(DEFAULT_LINES) if ":" in line and not line.lstrip().startswith("#")]


@st.composite
def mutated_default(draw):
    lines = list(DEFAULT_LINES)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["value", "delete", "duplicate", "indent", "insert", "key"]))
        i = draw(st.sampled_from(_value_lines)) if kind in ("value", "key") else draw(st.integers(0, len(lines) - 1))
        i = min(i, len(lines) - 1)
        line = lines[i]
        if kind == "value" and ":" in line:
            head = line.split(":", 1)[0]
            new = draw(scalars | documents)
            dumped = yaml.safe_dump(new, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()
            lines[i] = f"{head}: {dumped}"
        elif kind == "key" and ":" in line:
            head, rest = line.split(":", 1)
            indent = head[: len(head) - len(head.lstrip())]
            lines[i] = f"{indent}{draw(st.text(alphabet=string.ascii_lowercase + '_', min_size=1, max_size=10))}:{rest}"
        elif kind == "delete":
            del lines[i]
        elif kind == "duplicate":
            lines.insert(i, line)
        elif kind == "indent":
            lines[i] = draw(st.sampled_from(["", " ", "  ", "\t"])) + line.lstrip()
        else:
            lines.insert(i, draw(st.text(max_size=40)))
        if not lines:
            lines = [""]
    return "\n".join(lines) + "\n"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_default())
def test_random_mutations_of_the_default_file_only_ever_raise_config_error(text):
    _assert_well_formed(text)


def _paths(d, prefix=""):
    if isinstance(d, dict):
        for k, v in d.items():
            p = f"{prefix}.{k}" if prefix else k
            yield p, d, k
            yield from _paths(v, p)
    elif isinstance(d, list):
        for i, v in enumerate(d):
            p = f"{prefix}[{i}]"
            yield p, d, i
            yield from _paths(v, p)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_structured_mutations_report_the_mutated_field_with_its_line(data):
    doc = cfgmod.to_dict(Config())
    targets = list(_paths(doc))
    path, parent, key = data.draw(st.sampled_from(targets))
    parent[key] = data.draw(documents)
    text = yaml.safe_dump(doc, sort_keys=False)
    try:
        cfgmod.loads(text)
    except ConfigError as e:
        for p, line, msg in e.problems:
            assert p or line, (p, line, msg)
            assert line is not None, f"{p}: {msg} has no line in\n{text}"
            assert 1 <= line <= text.count("\n") + 1
