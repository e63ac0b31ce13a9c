"""Step 3, first half: render the runbook's objects, plan them with a server-side dry run, apply
them with server-side apply, against the sandbox with the real kubernetes client.

Most tests share one healthy sandbox, each in a namespace of its own with ports of its own
(NodePorts are cluster-wide); scenario tests (nodeport-taken, restricted-rbac) start their own.
"""

from __future__ import annotations

import base64
import itertools
import json
import threading

import pytest
import yaml
from support import sandboxes
from support.engine_fixtures import (
    APP_SECRET_VALUES,
    DictSecrets,
    app_secrets,
    engine_context,
    isolated_config,
)

from keybuzz_tui.cancel import Cancelled
from keybuzz_tui.config import Config
from keybuzz_tui.engine import kube, kubeio, render
from keybuzz_tui.engine.plan import MASKED
from keybuzz_tui.events import ObjectApplied, ObjectPlanned

_slots = itertools.count(1)


def _secret_forms() -> list[str]:
    out = []
    for v in APP_SECRET_VALUES.values():
        b64 = base64.b64encode(v.encode()).decode()
        out += [v, b64, b64.rstrip("=")]
    return out


def _assert_no_secret(text: str) -> None:
    for form in _secret_forms():
        assert form not in text, "a secret value (or its base64) leaked"


@pytest.fixture(scope="module")
def sb(tmp_path_factory):
    s = sandboxes.start(tmp_path_factory.mktemp("kube-sandbox"))
    yield s
    s.stop()


@pytest.fixture
def install(sb, tmp_path):
    """(ctx, recorder, config) in a namespace and on ports of its own."""
    slot = next(_slots)
    cfg = isolated_config(f"kb-test-{slot}", slot)
    ctx, rec = engine_context(sb, tmp_path / "journal.jsonl", cfg, secrets=app_secrets())
    yield ctx, rec, cfg
    ctx.close()


def _objects(cfg: Config, secrets=None) -> list[dict]:
    return render.render(cfg, secrets or app_secrets(), include_secret_values=True)


def _journal(ctx) -> list[dict]:
    return list(ctx.journal.entries())


# --- render ---------------------------------------------------------------------------------


def test_render_produces_the_runbook_objects_in_apply_order():
    objs = _objects(Config())
    kinds = [(o["kind"], o["metadata"]["name"]) for o in objs]
    assert kinds == [
        ("Namespace", "keybuzz"),
        ("Secret", "keybuzz-api-credentials"),
        ("Secret", "keybuzz-front-credentials"),
        ("ConfigMap", "keybuzz-api-nginx"),
        ("ConfigMap", "keybuzz-front-nginx"),
        ("Service", "keybuzz-api"),
        ("Service", "keybuzz-front"),
        ("DaemonSet", "keybuzz-api"),
        ("DaemonSet", "keybuzz-front"),
        ("Ingress", "keybuzz"),
    ]
    assert objs[0]["metadata"]["labels"] == {"app.kubernetes.io/part-of": "keybuzz", "app.kubernetes.io/managed-by": "keybuzz-tui"}
    for o in objs[1:]:
        assert o["metadata"]["namespace"] == "keybuzz"
        assert o["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "keybuzz-tui"


@pytest.mark.parametrize("app, port, node_port", [("keybuzz-api", 8080, 30080), ("keybuzz-front", 3000, 30000)])
def test_daemonset_is_hostnetwork_with_equal_ports_probes_and_no_surge(app, port, node_port):
    cfg = Config()
    cfg.rollout.max_unavailable = 2
    objs = {(o["kind"], o["metadata"]["name"]): o for o in _objects(cfg)}
    ds = objs[("DaemonSet", app)]
    spec = ds["spec"]
    pod = spec["template"]["spec"]
    (c,) = pod["containers"]
    assert pod["hostNetwork"] is True
    assert pod["dnsPolicy"] == "Default"  # works without CoreDNS (reference 3e)
    assert "tolerations" not in pod  # the servers' taints keep it on the workers
    assert c["ports"] == [{"name": "http", "protocol": "TCP", "containerPort": port, "hostPort": port}]
    for probe in ("readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"] == {"path": "/healthz", "port": port}
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 2, "maxSurge": 0}}
    assert c["resources"]["requests"]
    assert c["envFrom"] == [{"secretRef": {"name": f"{app}-credentials"}}]
    assert c["volumeMounts"][0]["mountPath"] == "/etc/nginx/conf.d"
    assert pod["volumes"][0]["configMap"]["name"] == f"{app}-nginx"
    assert spec["selector"]["matchLabels"] == {"app.kubernetes.io/name": app}
    assert spec["template"]["metadata"]["labels"]["app.kubernetes.io/name"] == app
    assert len(spec["template"]["metadata"]["annotations"]["keybuzz.io/config-hash"]) == 16
    svc = objs[("Service", app)]["spec"]
    assert svc["type"] == "NodePort" and svc["externalTrafficPolicy"] == "Local"
    assert svc["ports"] == [{"name": "http", "protocol": "TCP", "port": port, "targetPort": port, "nodePort": node_port}]
    nginx = objs[("ConfigMap", f"{app}-nginx")]["data"]["default.conf"]
    assert f"listen {port} default_server;" in nginx and "location = /healthz {" in nginx


def test_env_and_ingress_come_from_the_config():
    cfg = Config()
    objs = {(o["kind"], o["metadata"]["name"]): o for o in _objects(cfg)}
    (c,) = objs[("DaemonSet", "keybuzz-api")]["spec"]["template"]["spec"]["containers"]
    assert c["env"] == [{"name": "LOG_LEVEL", "value": "info"}, {"name": "PUBLIC_URL", "value": "https://platform-api.keybuzz.io"}]
    ing = objs[("Ingress", "keybuzz")]
    assert ing["spec"]["ingressClassName"] == "nginx"
    routes = {r["host"]: r["http"]["paths"][0]["backend"]["service"] for r in ing["spec"]["rules"]}
    assert routes == {
        "platform-api.keybuzz.io": {"name": "keybuzz-api", "port": {"number": 8080}},
        "platform.keybuzz.io": {"name": "keybuzz-front", "port": {"number": 3000}},
    }
    assert ing["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-connect-timeout"] == "3"


def test_real_render_carries_the_secret_values_base64_encoded():
    secret = next(o for o in _objects(Config()) if o["metadata"]["name"] == "keybuzz-api-credentials")
    decoded = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert decoded == {k.split("/")[1]: v for k, v in APP_SECRET_VALUES.items() if k.startswith("keybuzz-api/")}
    assert secret["type"] == "Opaque"


def test_masked_render_and_export_carry_no_secret_value():
    masked = render.render(Config(), app_secrets(), include_secret_values=False)
    _assert_no_secret(json.dumps(masked))
    secret = next(o for o in masked if o["kind"] == "Secret")
    assert set(secret["data"].values()) == {MASKED}
    real = _objects(Config())
    hashes = lambda objs: [o["spec"]["template"]["metadata"]["annotations"] for o in objs if o["kind"] == "DaemonSet"]  # noqa: E731
    assert hashes(masked) == hashes(real)  # the export shows what apply will write
    text = render.export(Config(), app_secrets())
    _assert_no_secret(text)
    assert "Secret values are masked" in text
    docs = list(yaml.safe_load_all(text))
    assert [d["kind"] for d in docs] == [o["kind"] for o in real]
    revealed = render.export(Config(), app_secrets(), reveal=True)
    assert base64.b64encode(APP_SECRET_VALUES["keybuzz-api/JWT_SECRET"].encode()).decode() in revealed


def test_a_masked_export_cannot_be_applied_by_mistake(sb):
    """The placeholder is not base64: the server refuses it instead of storing it as a password."""
    masked = render.render(isolated_config("kb-masked", 90), app_secrets(), include_secret_values=False)
    ctx, _ = engine_context(sb, None, isolated_config("kb-masked", 90), secrets=app_secrets())
    kubeio.apply(ctx, kube.object_path(masked[0]), masked[0])
    with pytest.raises(kubeio.KubeError) as e:
        kubeio.apply(ctx, kube.object_path(masked[1]), masked[1])
    assert e.value.status in (400, 422)


def test_a_rotated_secret_changes_the_config_hash_and_nothing_else():
    before = {o["metadata"]["name"]: o for o in _objects(Config()) if o["kind"] == "DaemonSet"}
    rotated = app_secrets(**{"keybuzz-api__JWT_SECRET": "canary-jwt-rotated-0000000000000000000000000000000000"})
    after = {o["metadata"]["name"]: o for o in _objects(Config(), rotated) if o["kind"] == "DaemonSet"}
    h = lambda o: o["spec"]["template"]["metadata"]["annotations"]["keybuzz.io/config-hash"]  # noqa: E731
    assert h(before["keybuzz-api"]) != h(after["keybuzz-api"])
    assert h(before["keybuzz-front"]) == h(after["keybuzz-front"])
    for v in APP_SECRET_VALUES.values():
        assert v not in h(before["keybuzz-api"])


def test_a_missing_secret_is_a_clear_error_naming_app_key_and_how_to_set_it():
    values = dict(APP_SECRET_VALUES)
    del values["keybuzz-api/DATABASE_URL"]
    with pytest.raises(render.MissingSecret) as e:
        render.render(Config(), DictSecrets(values), include_secret_values=True)
    text = f"{e.value} {e.value.remediation}"
    assert "DATABASE_URL" in text and "keybuzz-api" in text
    assert "keybuzz-tui credentials set app/keybuzz-api/DATABASE_URL" in text
    assert "KEYBUZZ_SECRET_KEYBUZZ_API_DATABASE_URL" in text
    # a masked render (an export before the credentials step) says "not set" instead of failing
    masked = render.render(Config(), DictSecrets(values), include_secret_values=False)
    secret = next(o for o in masked if o["metadata"]["name"] == "keybuzz-api-credentials")
    assert secret["data"]["DATABASE_URL"] == render.NOT_SET


def test_config_values_are_set_as_data_never_parsed_as_yaml():
    cfg = Config()
    cfg.apps[0].env["NOTE"] = "x\nkind: Pod\nmetadata: {name: evil}"
    objs = _objects(cfg)
    assert [o["kind"] for o in objs].count("Pod") == 0
    (c,) = next(o for o in objs if o["kind"] == "DaemonSet")["spec"]["template"]["spec"]["containers"]
    assert {"name": "NOTE", "value": "x\nkind: Pod\nmetadata: {name: evil}"} in c["env"]
    assert len(list(yaml.safe_load_all(render.export(cfg, app_secrets())))) == len(objs)


def test_a_health_path_that_could_inject_nginx_directives_is_refused():
    cfg = Config()
    cfg.apps[0].health_path = "/healthz { return 200; } location /admin"
    with pytest.raises(render.RenderError) as e:
        _objects(cfg)
    assert "apps[0].health_path" in str(e.value)


# --- plan and apply -------------------------------------------------------------------------


def test_plan_on_an_empty_namespace_creates_everything_then_apply_then_nothing_changes(install):
    ctx, rec, cfg = install
    plan = kube.plan(ctx, _objects(cfg))
    assert [c.action for c in plan.changes] == ["create"] * 10
    assert len(rec.of(ObjectPlanned)) == 10
    applied = kube.apply(ctx, plan)
    assert [a.action for a in applied] == ["create"] * 10
    assert all(a.resource_version for a in applied)
    journal = [e for e in _journal(ctx) if e["event"] == "object-applied"]
    assert [(e["kind"], e["name"], e["action"]) for e in journal] == [(a.kind, a.name, "create") for a in applied]
    assert all(e["resourceVersion"] and e["namespace"] in (None, cfg.namespace) for e in journal)
    assert len([e for e in rec.of(ObjectApplied) if e.action == "create"]) == 10
    again = kube.plan(ctx, _objects(cfg))
    assert [c.action for c in again.changes] == ["unchanged"] * 10, [c.lines() for c in again.changes]
    assert not again.has_changes
    second = kube.apply(ctx, again)  # idempotent: nothing written, nothing journaled
    assert {a.action for a in second} == {"unchanged"}
    assert len([e for e in _journal(ctx) if e["event"] == "object-applied"]) == 10
    everything = json.dumps([e.to_dict() for e in rec.events]) + (ctx.journal.path.read_text())
    _assert_no_secret(everything)
    live = kubeio.get(ctx, kubeio.resource_path("apps/v1", "daemonsets", cfg.namespace, "keybuzz-api"))
    assert any(m["manager"] == "keybuzz-tui" and m["operation"] == "Apply" for m in live["metadata"]["managedFields"])


def test_changing_the_image_is_exactly_one_update_with_the_image_diff(install):
    ctx, rec, cfg = install
    kube.apply(ctx, kube.plan(ctx, _objects(cfg)))
    cfg.apps[0].image = "ghcr.io/keybuzz/api:1.4.3"
    plan = kube.plan(ctx, _objects(cfg))
    updates = [c for c in plan.changes if c.action == "update"]
    assert [c.ref for c in updates] == [f"DaemonSet {cfg.namespace}/keybuzz-api"]
    assert updates[0].lines() == [
        "~ .spec.template.spec.containers[name=keybuzz-api].image: ghcr.io/keybuzz/api:1.4.2 -> ghcr.io/keybuzz/api:1.4.3"
    ]
    assert plan.counts()["unchanged"] == 9
    kube.apply(ctx, plan)
    live = kubeio.get(ctx, kubeio.resource_path("apps/v1", "daemonsets", cfg.namespace, "keybuzz-api"))
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "ghcr.io/keybuzz/api:1.4.3"


def test_a_secret_diff_names_the_key_and_says_changed_never_the_value(install):
    ctx, rec, cfg = install
    kube.apply(ctx, kube.plan(ctx, _objects(cfg)))
    rotated_value = "canary-jwt-rotated-1111111111111111111111111111111111"
    rotated = app_secrets(**{"keybuzz-api__JWT_SECRET": rotated_value})
    ctx.secrets = rotated
    plan = kube.plan(ctx, _objects(cfg, rotated))
    by_ref = {c.ref: c for c in plan.changes}
    secret = by_ref[f"Secret {cfg.namespace}/keybuzz-api-credentials"]
    assert secret.action == "update"
    assert "~ .data.JWT_SECRET: (secret, masked) -> (changed, masked)" in secret.lines()
    assert set(secret.desired["data"].values()) == {MASKED}
    ds = by_ref[f"DaemonSet {cfg.namespace}/keybuzz-api"]
    assert [d.path for d in ds.diff] == [".spec.template.metadata.annotations.keybuzz.io/config-hash"]  # the pods roll
    shown = json.dumps([c.lines() for c in plan.changes]) + json.dumps([e.to_dict() for e in rec.events])
    _assert_no_secret(shown)
    assert rotated_value not in shown and base64.b64encode(rotated_value.encode()).decode() not in shown
    kube.apply(ctx, plan)
    live = kubeio.get(ctx, kubeio.resource_path("v1", "secrets", cfg.namespace, "keybuzz-api-credentials"))
    assert base64.b64decode(live["data"]["JWT_SECRET"]).decode() == rotated_value
    assert rotated_value not in ctx.journal.path.read_text()


def test_apply_refuses_secret_values_that_changed_since_the_plan(install):
    ctx, rec, cfg = install
    plan = kube.plan(ctx, _objects(cfg))
    ctx.secrets = app_secrets(**{"keybuzz-front__SESSION_SECRET": "canary-session-changed-in-between-000000"})
    with pytest.raises(kube.ApplyError) as e:
        kube.apply(ctx, plan)
    assert "changed since the plan" in str(e.value) and "keybuzz-front-credentials" in str(e.value)
    assert e.value.remediation == "Plan again, review, then apply."
    assert isinstance(e.value, kubeio.KubeError)  # callers that report kube errors report this one
    failed = [x for x in _journal(ctx) if x["event"] == "object-failed"]
    assert [x["name"] for x in failed] == ["keybuzz-front-credentials"]


def test_a_failed_apply_is_journaled_and_a_rerun_resumes(install, sb):
    """Another team grabs the NodePort between plan and apply: apply stops at that Service, the
    journal names it, and once the port is free a new plan shows the applied objects unchanged."""
    ctx, rec, cfg = install
    plan = kube.plan(ctx, _objects(cfg))
    admin, _ = engine_context(sb)
    thief_ns = f"{cfg.namespace}-thief"
    kubeio.apply(admin, kubeio.resource_path("v1", "namespaces", None, thief_ns), {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": thief_ns}})
    thief = {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "grabber", "namespace": thief_ns},
        "spec": {"type": "NodePort", "selector": {"x": "y"}, "ports": [{"port": 80, "nodePort": cfg.apps[0].node_port}]},
    }
    thief_path = kubeio.resource_path("v1", "services", thief_ns, "grabber")
    kubeio.apply(admin, thief_path, thief)
    with pytest.raises(kube.ApplyError) as e:
        kube.apply(ctx, plan)
    assert "provided port is already allocated" in str(e.value)
    assert f"Service {thief_ns}/grabber" in e.value.remediation
    assert [a.kind for a in e.value.applied] == ["Namespace", "Secret", "Secret", "ConfigMap", "ConfigMap"]
    failed = [x for x in _journal(ctx) if x["event"] == "object-failed"]
    assert [(x["kind"], x["name"]) for x in failed] == [("Service", "keybuzz-api")]
    assert "provided port is already allocated" in failed[0]["error"]
    kubeio.delete(admin, thief_path)
    resumed = kube.plan(ctx, _objects(cfg))
    assert [c.action for c in resumed.changes] == ["unchanged"] * 5 + ["create"] * 5
    kube.apply(ctx, resumed)
    assert not kube.plan(ctx, _objects(cfg)).has_changes


def test_apply_is_cancellable_between_objects(install):
    ctx, rec, cfg = install
    plan = kube.plan(ctx, _objects(cfg))

    def cancel_after_first(event):
        if isinstance(event, ObjectApplied):
            ctx.cancel.cancel("operator pressed Ctrl-C")

    rec._forward = cancel_after_first
    with pytest.raises(Cancelled):
        kube.apply(ctx, plan)
    assert len(rec.of(ObjectApplied)) == 1
    entries = _journal(ctx)
    assert [e["name"] for e in entries if e["event"] == "object-applied"] == [cfg.namespace]
    (stop,) = [e for e in entries if e["event"] == "kube-apply-cancelled"]
    assert stop["next"] == f"Secret {cfg.namespace}/keybuzz-api-credentials"


def test_plan_and_apply_do_not_block_other_threads(install):
    """The engine runs in a worker thread; the plan is a handful of short calls."""
    ctx, rec, cfg = install
    out: dict = {}
    t = threading.Thread(target=lambda: out.setdefault("plan", kube.plan(ctx, _objects(cfg))))
    t.start()
    t.join(timeout=20)
    assert not t.is_alive() and out["plan"].counts()["create"] == 10


# --- scenarios ------------------------------------------------------------------------------


def test_nodeport_taken_is_a_plan_error_with_the_allocator_text_and_who_holds_it(tmp_path):
    sb = sandboxes.start(tmp_path / "sb", "nodeport-taken")
    try:
        ctx, rec = engine_context(sb, tmp_path / "journal.jsonl", Config(), secrets=app_secrets())
        with pytest.raises(kube.KubePlanError) as e:
            kube.plan(ctx, _objects(Config()))
        text = str(e.value)
        assert 'Service "keybuzz-api" is invalid: spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated' in text
        assert "Service monitoring/grafana holds NodePort 30080" in e.value.remediation
        assert "apps[0].node_port" in e.value.remediation
        manual = [c for c in e.value.plan.changes if c.action == "manual"]
        assert [c.ref for c in manual] == ["Service keybuzz/keybuzz-api"]
        with pytest.raises(kube.ApplyError):
            kube.apply(ctx, e.value.plan)  # a plan with errors changes nothing
        assert kubeio.get_or_none(ctx, "/api/v1/namespaces/keybuzz") is None
        # once the namespace exists, the server's own dry run gives the same exact text
        kubeio.apply(ctx, "/api/v1/namespaces/keybuzz", _objects(Config())[0])
        with pytest.raises(kube.KubePlanError) as e2:
            kube.plan(ctx, _objects(Config()))
        (p,) = e2.value.problems
        assert p.status == 422 and p.message.endswith("Invalid value: 30080: provided port is already allocated")
        assert "monitoring/grafana" in p.remediation
    finally:
        sb.stop()


def test_restricted_rbac_gets_a_clear_permission_error_before_anything_changes(tmp_path):
    sb = sandboxes.start(tmp_path / "sb", "restricted-rbac")
    try:
        ctx, rec = engine_context(sb, tmp_path / "journal.jsonl", Config(), secrets=app_secrets())
        ctx.endpoints.context = "keybuzz-sandbox-keybuzz-viewer"
        with pytest.raises(kube.KubePlanError) as e:
            kube.plan(ctx, _objects(Config()))
        text = str(e.value)
        assert 'the kubeconfig user "keybuzz-viewer" may not patch namespaces' in text
        assert "may not create or patch daemonsets (apps API group) in namespace keybuzz" in text
        assert "may not create or patch secrets" in text
        assert "Nothing was changed" in e.value.remediation
        assert {c.action for c in e.value.plan.changes} == {"manual"}  # every object, not only the first per kind
        with pytest.raises(kube.ApplyError):
            kube.apply(ctx, e.value.plan)
        admin, _ = engine_context(sb)
        assert kubeio.get_or_none(admin, "/api/v1/namespaces/keybuzz") is None
        assert not ctx.journal.path.exists() or "object-applied" not in ctx.journal.path.read_text()
    finally:
        sb.stop()


def test_restricted_rbac_in_an_existing_namespace_names_verb_resource_and_namespace(tmp_path):
    sb = sandboxes.start(tmp_path / "sb", "restricted-rbac")
    try:
        admin, _ = engine_context(sb, None, Config(), secrets=app_secrets())
        kube.apply(admin, kube.plan(admin, _objects(Config())))
        ctx, _ = engine_context(sb, None, Config(), secrets=app_secrets())
        ctx.endpoints.context = "keybuzz-sandbox-keybuzz-viewer"
        with pytest.raises(kube.KubePlanError) as e:
            kube.plan(ctx, _objects(Config()))
        msgs = {p.ref: p.message for p in e.value.problems}
        assert 'may not get secrets (core API group) in namespace keybuzz' in msgs["Secret keybuzz/keybuzz-api-credentials"]
        assert 'may not patch daemonsets (apps API group) in namespace keybuzz' in msgs["DaemonSet keybuzz/keybuzz-api"]
        assert all(p.status == 403 for p in e.value.problems)
    finally:
        sb.stop()
