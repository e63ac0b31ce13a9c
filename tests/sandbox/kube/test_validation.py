"""validation.default / validation.validate: the apiserver's defaults and its exact 422/400 texts.

Expected messages are copied from kubernetes `pkg/apis/core/validation/validation.go`,
`pkg/apis/apps/validation`, `pkg/apis/networking/validation`, apimachinery
`pkg/util/validation` and `pkg/api/validation/objectmeta.go`, from shared/reference/kubernetes.md
(section 3d for hostNetwork) and from errors captured on real clusters.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from keybuzz_tui.sandbox.kube import validation as v
from keybuzz_tui.sandbox.kube.errors import ApiError
from keybuzz_tui.sandbox.kube.registry import ResourceType, all_types, apps, core, lookup

PODS, SERVICES, SECRETS, CONFIGMAPS = core("pods"), core("services"), core("secrets"), core("configmaps")
NAMESPACES, NODES, EVENTS, ENDPOINTS = core("namespaces"), core("nodes"), core("events"), core("endpoints")
DS, DEPLOY, RS, STS = apps("daemonsets"), apps("deployments"), apps("replicasets"), apps("statefulsets")
_ing, _slice, _lease, _ic = (
    lookup("networking.k8s.io", "v1", "ingresses"),
    lookup("discovery.k8s.io", "v1", "endpointslices"),
    lookup("coordination.k8s.io", "v1", "leases"),
    lookup("networking.k8s.io", "v1", "ingressclasses"),
)
assert _ing and _slice and _lease and _ic
INGRESS, SLICES, LEASES, INGRESS_CLASSES = _ing, _slice, _lease, _ic

SUBDOMAIN = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and "
    "must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_1123 = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
    "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
LABEL_1035 = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
    "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
    "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
NAME_PART = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
    "an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation "
    "is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
LABEL_VALUE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and "
    "must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', "
    "regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
CONFIG_KEY = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or "
    "'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
)
PORT_RANGE = "must be between 1 and 65535, inclusive"
PERCENT = (
    "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', "
    "regex used for validation is '[0-9]+%')"
)
WILDCARD = (
    "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must "
    "consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character "
    "(e.g. '*.example.com', regex used for validation is "
    "'\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def admit(rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None = None, ns: str | None = "default") -> dict[str, Any]:
    """What api.py does: default, then validate (the old object is stored, hence defaulted)."""
    new = v.default(rt, obj)
    stored_old = v.default(rt, old) if old is not None else None
    v.validate(rt, new, stored_old, namespace=ns if rt.namespaced else None)
    return new


def reject(rt: ResourceType, obj: Any, old: dict[str, Any] | None = None, ns: str | None = "default") -> ApiError:
    with pytest.raises(ApiError) as info:
        admit(rt, obj, old, ns)
    return info.value


def message(rt: ResourceType, obj: Any, old: dict[str, Any] | None = None) -> str:
    """The `... is invalid: <errors>` part of a 422."""
    err = reject(rt, obj, old)
    assert err.code == 422 and err.reason == "Invalid", err.message
    return err.message.split(" is invalid: ", 1)[1]


def decode_message(rt: ResourceType, obj: Any) -> str:
    err = reject(rt, obj)
    assert err.code == 400 and err.reason == "BadRequest", err.message
    prefix = f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
    assert err.message.startswith(prefix), err.message
    return err.message[len(prefix):]


def container(**kw: Any) -> dict[str, Any]:
    return {"name": "web", "image": "nginx:1.27", **kw}


def pod(spec: dict[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default", **meta},
        "spec": spec if spec is not None else {"containers": [container()]},
    }


def template(pod_spec: dict[str, Any] | None = None, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app": "api"} if labels is None else labels},
        "spec": pod_spec if pod_spec is not None else {"containers": [container(name="api")]},
    }


def daemonset(**spec: Any) -> dict[str, Any]:
    body = {"selector": {"matchLabels": {"app": "api"}}, "template": template()}
    body.update(spec)
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "api", "namespace": "default"}, "spec": body}


def deployment(**spec: Any) -> dict[str, Any]:
    obj = daemonset(**spec)
    obj["kind"] = "Deployment"
    return obj


def with_pod_spec(obj: dict[str, Any], **pod_spec: Any) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    obj["spec"]["template"]["spec"].update(pod_spec)
    return obj


def service(**spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"selector": {"app": "api"}, "ports": [{"name": "http", "port": 80}]}
    body.update(spec)
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api", "namespace": "default"}, "spec": body}


def backend(name: str = "api", **port: Any) -> dict[str, Any]:
    return {"service": {"name": name, "port": port or {"number": 80}}}


def ingress(*paths: dict[str, Any], host: str = "app.example.com", **spec: Any) -> dict[str, Any]:
    rule_paths = list(paths) or [{"path": "/", "pathType": "Prefix", "backend": backend()}]
    body = {"rules": [{"host": host, "http": {"paths": rule_paths}}]}
    body.update(spec)
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web", "namespace": "default"}, "spec": body}


def secret(data: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "tls", "namespace": "default"}, "data": data or {}, **extra}


def configmap(data: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "default"}, "data": data or {}, **extra}


# --------------------------------------------------------------------------------------------
# The Status object
# --------------------------------------------------------------------------------------------


def test_422_status_shape_with_causes() -> None:
    err = reject(DS, with_pod_spec(daemonset(), hostNetwork=True,
                                   containers=[container(name="api", ports=[{"containerPort": 8080, "hostPort": 8081}])]))
    assert err.code == 422
    assert err.message == (
        'DaemonSet.apps "api" is invalid: spec.template.spec.containers[0].ports[0].hostPort: Invalid value: 8081: '
        "must match `containerPort` when `hostNetwork` is true"
    )
    body = err.status()
    assert body["reason"] == "Invalid" and body["code"] == 422 and body["status"] == "Failure"
    assert body["details"] == {
        "name": "api",
        "group": "apps",
        "kind": "DaemonSet",
        "causes": [
            {
                "reason": "FieldValueInvalid",
                "message": "Invalid value: 8081: must match `containerPort` when `hostNetwork` is true",
                "field": "spec.template.spec.containers[0].ports[0].hostPort",
            }
        ],
    }


def test_all_errors_in_one_status_and_duplicate_texts_dropped_from_the_message() -> None:
    err = reject(PODS, pod({"containers": [container(name="A", image="", ports=[{"containerPort": 0}])], "restartPolicy": "Sometimes"}))
    assert err.message == (
        'Pod "web" is invalid: ['
        f'spec.containers[0].name: Invalid value: "A": {LABEL_1123}, '
        "spec.containers[0].image: Required value, "
        "spec.containers[0].ports[0].containerPort: Required value, "
        'spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"]'
    )
    reasons = [c["reason"] for c in err.details["causes"]]  # type: ignore[index]
    assert reasons == ["FieldValueInvalid", "FieldValueRequired", "FieldValueRequired", "FieldValueNotSupported"]
    # the same text twice appears once in the message but twice in the causes (NewInvalid)
    dup = reject(SERVICES, service(ports=[{"name": "a", "port": 80, "targetPort": "HTTP_"}]))
    assert dup.message.count("must contain only alpha-numeric characters") == 1


def test_core_kinds_have_no_group_and_names_are_go_quoted() -> None:
    err = reject(PODS, pod({"containers": []}, name="wéb"))
    assert err.message.startswith('Pod "wéb" is invalid: [metadata.name: Invalid value: "wéb": ')
    assert "group" not in err.details  # type: ignore[operator]


# --------------------------------------------------------------------------------------------
# ObjectMeta
# --------------------------------------------------------------------------------------------


def test_name_required() -> None:
    obj = pod()
    del obj["metadata"]["name"]
    assert message(PODS, obj) == "metadata.name: Required value: name or generateName is required"


@pytest.mark.parametrize(
    ("rt", "body", "bad_name", "detail"),
    [
        (PODS, pod(), "Web_1", SUBDOMAIN),
        (PODS, pod(), "a" * 254, "must be no more than 253 characters"),
        (SERVICES, service(), "1api", LABEL_1035),
        (SERVICES, service(), "api.v1", LABEL_1035),
        (NAMESPACES, {"metadata": {}}, "team.a", "must not contain dots"),
        (NAMESPACES, {"metadata": {}}, "Team", LABEL_1123),
        (DS, daemonset(), "api_", SUBDOMAIN),
        (CONFIGMAPS, configmap(), "-cfg", SUBDOMAIN),
        (INGRESS, ingress(), "web/x", SUBDOMAIN),
    ],
)
def test_names_per_kind(rt: ResourceType, body: dict[str, Any], bad_name: str, detail: str) -> None:
    obj = copy.deepcopy(body)
    obj["metadata"]["name"] = bad_name
    assert message(rt, obj) == f"metadata.name: Invalid value: {v.show(bad_name)}: {detail}"


def test_long_label_name_reports_both_rules() -> None:
    """Defaulting copies the name into kubernetes.io/metadata.name first, so that label fails too."""
    obj = {"metadata": {"name": "a" * 64 + ".b"}}
    long = "a" * 64 + ".b"
    assert message(NAMESPACES, obj) == (
        f'[metadata.name: Invalid value: "{long}": must be no more than 63 characters, '
        f'metadata.name: Invalid value: "{long}": must not contain dots, '
        f'metadata.labels: Invalid value: "{long}": must be no more than 63 characters]'
    )


def test_generate_name_is_validated_with_the_trailing_dash_masked() -> None:
    obj = pod(generateName="web-")
    obj["metadata"]["name"] = "web-x7k2p"
    admit(PODS, obj)
    obj["metadata"]["generateName"] = "Web-"
    assert message(PODS, obj) == f'metadata.generateName: Invalid value: "Web-": {SUBDOMAIN}'


def test_namespace_rules() -> None:
    obj = pod()
    del obj["metadata"]["namespace"]
    assert reject(PODS, obj, ns=None).message == 'Pod "web" is invalid: metadata.namespace: Required value'
    admit(PODS, obj, ns="default")  # the request's namespace stands in
    obj["metadata"]["namespace"] = "Bad"
    assert message(PODS, obj) == f'metadata.namespace: Invalid value: "Bad": {LABEL_1123}'


def test_labels_and_annotations() -> None:
    obj = pod(labels={"app": "api", "bad key": "x", "ok": "-bad", "example.com/x": ""},
              annotations={"Example.COM/Upper": "fine", "no/good/key": "x"})
    assert message(PODS, obj) == (
        f'[metadata.labels: Invalid value: "bad key": {NAME_PART}, '
        f'metadata.labels: Invalid value: "-bad": {LABEL_VALUE}, '
        'metadata.annotations: Invalid value: "no/good/key": a qualified name must consist of alphanumeric '
        "characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or "
        "'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') "
        "with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')]"
    )


def test_annotations_total_size() -> None:
    big = pod(annotations={"kubectl.kubernetes.io/last-applied-configuration": "x" * 262144})
    assert message(PODS, big) == "metadata.annotations: Too long: may not be more than 262144 bytes"
    just = pod(annotations={"a": "x" * (262144 - 1)})
    admit(PODS, just)
    err = reject(PODS, big)
    assert err.details["causes"] == [  # type: ignore[index]
        {"reason": "FieldValueTooLong", "message": "Too long: may not be more than 262144 bytes", "field": "metadata.annotations"}
    ]


def test_finalizers_and_owner_references() -> None:
    obj = pod(finalizers=["kubernetes", "example.com/cleanup", "custom", "orphan", "foregroundDeletion"])
    assert message(PODS, obj) == (
        '[metadata.finalizers: Invalid value: []string{"kubernetes", "example.com/cleanup", "custom", "orphan", '
        '"foregroundDeletion"}: finalizer orphan and foregroundDeletion cannot be both set, '
        'metadata.finalizers: Invalid value: "custom": name is neither a standard finalizer name nor is it fully qualified]'
    )
    refs = pod(ownerReferences=[{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "", "uid": "u"},
                                {"apiVersion": "", "kind": "", "name": "x", "uid": ""}])
    assert message(PODS, refs) == (
        '[metadata.ownerReferences.name: Invalid value: "": must not be empty, '
        'metadata.ownerReferences.apiVersion: Invalid value: "": version must not be empty, '
        'metadata.ownerReferences.kind: Invalid value: "": must not be empty, '
        'metadata.ownerReferences.uid: Invalid value: "": must not be empty]'
    )


def test_no_new_finalizers_while_deleting() -> None:
    old = pod(finalizers=["example.com/a"], deletionTimestamp="2025-01-01T00:00:00Z")
    new = copy.deepcopy(old)
    new["metadata"]["finalizers"] = ["example.com/a", "example.com/b"]
    assert message(PODS, new, old) == (
        'metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, '
        'found new finalizers []string{"example.com/b"}'
    )
    new["metadata"]["finalizers"] = []
    admit(PODS, new, old)


# --------------------------------------------------------------------------------------------
# Pod spec
# --------------------------------------------------------------------------------------------


def test_valid_pod_passes_and_is_defaulted() -> None:
    out = admit(PODS, pod())
    assert out["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"


def test_containers_required() -> None:
    assert message(PODS, pod({"containers": []})) == "spec.containers: Required value"
    assert message(PODS, pod({})) == "spec.containers: Required value"
    assert message(DS, with_pod_spec(daemonset(), containers=None)) == "spec.template.spec.containers: Required value"


def test_container_name_and_image() -> None:
    spec = {"containers": [container(name=""), container(image=""), container(name="web", image=" nginx")]}
    assert message(PODS, pod(spec)) == (
        "[spec.containers[0].name: Required value, spec.containers[1].image: Required value, "
        'spec.containers[2].name: Duplicate value: "web", '
        'spec.containers[2].image: Invalid value: " nginx": must not have leading or trailing whitespace]'
    )
    # whitespace is a Pod-only rule: templates keep the historical " " token
    admit(DS, with_pod_spec(daemonset(), containers=[container(name="api", image=" nginx")]))


def test_init_container_names_collide_with_regular_ones() -> None:
    spec = {"containers": [container()], "initContainers": [container(), container(name="init", restartPolicy="Never")]}
    assert message(PODS, pod(spec)) == (
        '[spec.initContainers[0].name: Duplicate value: "web", '
        'spec.initContainers[1].restartPolicy: Unsupported value: "Never": supported values: "Always"]'
    )
    sidecar = {"containers": [container()], "initContainers": [container(name="side", restartPolicy="Always",
                                                                            readinessProbe={"tcpSocket": {"port": 80}})]}
    admit(PODS, pod(sidecar))
    plain = {"containers": [container()], "initContainers": [container(name="init", livenessProbe={"tcpSocket": {"port": 80}})]}
    assert message(PODS, pod(plain)) == (
        "spec.initContainers[0].livenessProbe: Forbidden: may not be set for init containers without restartPolicy=Always"
    )
    assert message(PODS, pod({"containers": [container(restartPolicy="Always")]})) == (
        "spec.containers[0].restartPolicy: Forbidden: may not be set for non-init containers"
    )


@pytest.mark.parametrize(
    ("port", "error"),
    [
        ({"containerPort": 0}, "spec.containers[0].ports[0].containerPort: Required value"),
        ({"containerPort": 70000}, f"spec.containers[0].ports[0].containerPort: Invalid value: 70000: {PORT_RANGE}"),
        ({"containerPort": -1}, f"spec.containers[0].ports[0].containerPort: Invalid value: -1: {PORT_RANGE}"),
        ({"containerPort": 80, "hostPort": 65536}, f"spec.containers[0].ports[0].hostPort: Invalid value: 65536: {PORT_RANGE}"),
        ({"containerPort": 80, "protocol": "HTTP"},
         'spec.containers[0].ports[0].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"'),
        ({"containerPort": 80, "name": "HTTP"},
         '[spec.containers[0].ports[0].name: Invalid value: "HTTP": must contain only alpha-numeric characters '
         '(a-z, 0-9), and hyphens (-), spec.containers[0].ports[0].name: Invalid value: "HTTP": must contain at '
         "least one letter (a-z)]"),
        ({"containerPort": 80, "name": "metrics-endpoint"},
         'spec.containers[0].ports[0].name: Invalid value: "metrics-endpoint": must be no more than 15 characters'),
        ({"containerPort": 80, "name": "a--b"},
         'spec.containers[0].ports[0].name: Invalid value: "a--b": must not contain consecutive hyphens'),
        ({"containerPort": 80, "name": "-ab"},
         'spec.containers[0].ports[0].name: Invalid value: "-ab": must not begin or end with a hyphen'),
    ],
)
def test_container_ports(port: dict[str, Any], error: str) -> None:
    assert message(PODS, pod({"containers": [container(ports=[port])]})) == error


def test_duplicate_port_names_and_host_ports() -> None:
    spec = {
        "containers": [
            container(ports=[{"name": "http", "containerPort": 80, "hostPort": 8080}, {"name": "http", "containerPort": 81}]),
            container(name="side", ports=[{"containerPort": 90, "hostPort": 8080}]),
        ]
    }
    assert message(PODS, pod(spec)) == (
        '[spec.containers[0].ports[1].name: Duplicate value: "http", '
        'spec.containers[1].ports[0].hostPort: Duplicate value: "/TCP/8080"]'
    )


def test_host_network_pod_vs_template() -> None:
    """Reference 3d: Pods get hostPort defaulted (so it must match); templates may leave it 0."""
    pod_obj = pod({"hostNetwork": True, "containers": [container(ports=[{"containerPort": 8080}])]})
    out = admit(PODS, pod_obj)
    assert out["spec"]["containers"][0]["ports"][0]["hostPort"] == 8080
    tmpl = with_pod_spec(daemonset(), hostNetwork=True, containers=[container(name="api", ports=[{"containerPort": 8080}])])
    out = admit(DS, tmpl)
    assert "hostPort" not in out["spec"]["template"]["spec"]["containers"][0]["ports"][0]
    bad = pod({"hostNetwork": True, "containers": [container(ports=[{"containerPort": 8080, "hostPort": 8081}])]})
    assert message(PODS, bad) == (
        "spec.containers[0].ports[0].hostPort: Invalid value: 8081: must match `containerPort` when `hostNetwork` is true"
    )
    # validate alone (no defaulting): a Pod with hostPort 0 on the host network is invalid
    undefaulted = v.default(PODS, pod({"containers": [container(ports=[{"containerPort": 80}])]}))
    undefaulted["spec"]["hostNetwork"] = True
    with pytest.raises(ApiError) as info:
        v.validate(PODS, undefaulted, None, namespace="default")
    assert info.value.message == (
        'Pod "web" is invalid: spec.containers[0].ports[0].hostPort: Invalid value: 0: '
        "must match `containerPort` when `hostNetwork` is true"
    )


def test_restart_and_dns_policy() -> None:
    spec = {"containers": [container()], "restartPolicy": "Sometimes", "dnsPolicy": "ClusterFirstWithHostNetwork"}
    assert message(PODS, pod(spec)) == (
        '[spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never", '
        'spec.dnsPolicy: Unsupported value: "ClusterFirstWithHostNetwork": supported values: '
        '"ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"]'
    )
    assert message(PODS, pod({"containers": [container()], "dnsPolicy": "None"})) == (
        "spec.dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` is None"
    )
    admit(PODS, pod({"containers": [container()], "dnsPolicy": "None", "dnsConfig": {"nameservers": ["1.1.1.1"]}}))
    assert message(PODS, pod({"containers": [container()], "dnsPolicy": "None", "dnsConfig": {"nameservers": ["dns"]}})) == (
        'spec.dnsConfig.nameservers[0]: Invalid value: "dns": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)'
    )


def test_image_pull_policy_and_termination_message_policy() -> None:
    spec = {"containers": [container(imagePullPolicy="Sometimes", terminationMessagePolicy="Stdout")]}
    assert message(PODS, pod(spec)) == (
        '[spec.containers[0].terminationMessagePolicy: Unsupported value: "Stdout": supported values: "File", '
        '"FallbackToLogsOnError", spec.containers[0].imagePullPolicy: Unsupported value: "Sometimes": supported '
        'values: "Always", "IfNotPresent", "Never"]'
    )


def test_probes_need_exactly_one_handler() -> None:
    spec = {
        "containers": [
            container(
                livenessProbe={"initialDelaySeconds": 5},
                readinessProbe={"exec": {"command": ["true"]}, "httpGet": {"port": 80}, "tcpSocket": {"port": 80}},
                startupProbe={"httpGet": {"port": "http-metrics-port"}, "successThreshold": 2},
            )
        ]
    }
    assert message(PODS, pod(spec)) == (
        "[spec.containers[0].livenessProbe: Required value: must specify a handler type, "
        "spec.containers[0].readinessProbe.httpGet: Forbidden: may not specify more than 1 handler type, "
        "spec.containers[0].readinessProbe.tcpSocket: Forbidden: may not specify more than 1 handler type, "
        'spec.containers[0].startupProbe.httpGet.port: Invalid value: "http-metrics-port": must be no more than 15 characters, '
        "spec.containers[0].startupProbe.successThreshold: Invalid value: 2: must be 1]"
    )


def test_probe_fields() -> None:
    spec = {"containers": [container(
        livenessProbe={"exec": {"command": []}, "periodSeconds": -1, "successThreshold": 3},
        readinessProbe={"httpGet": {"port": 0, "scheme": "FTP", "httpHeaders": [{"name": "X Bad", "value": "1"}]},
                        "terminationGracePeriodSeconds": 10},
    )]}
    assert message(PODS, pod(spec)) == (
        "[spec.containers[0].livenessProbe.exec.command: Required value, "
        "spec.containers[0].livenessProbe.periodSeconds: Invalid value: -1: must be greater than or equal to 0, "
        "spec.containers[0].livenessProbe.successThreshold: Invalid value: 3: must be 1, "
        f"spec.containers[0].readinessProbe.httpGet.port: Invalid value: 0: {PORT_RANGE}, "
        'spec.containers[0].readinessProbe.httpGet.scheme: Unsupported value: "FTP": supported values: "HTTP", "HTTPS", '
        "spec.containers[0].readinessProbe.httpGet.httpHeaders: Invalid value: \"X Bad\": a valid HTTP header must "
        "consist of alphanumeric characters or '-' (e.g. 'X-Header-Name', regex used for validation is '[-A-Za-z0-9]+'), "
        "spec.containers[0].readinessProbe.terminationGracePeriodSeconds: Invalid value: 10: must not be set for readinessProbes]"
    )


def test_env_vars() -> None:
    spec = {"containers": [container(env=[
        {"name": ""},
        {"name": "1_OK_IN_1.32"},
        {"name": "A=B"},
        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "spec.restartPolicy"}}},
        {"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "spec.nope"}}},
        {"name": "Y", "value": "v", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
        {"name": "Z", "valueFrom": {}},
        {"name": "W", "valueFrom": {"configMapKeyRef": {"name": "", "key": "bad key"}}},
        {"name": "L", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
    ])]}
    assert message(PODS, pod(spec)) == (
        "[spec.containers[0].env[0].name: Required value, "
        'spec.containers[0].env[2].name: Invalid value: "A=B": a valid environment variable name must consist only '
        "of printable ASCII characters other than '=', "
        'spec.containers[0].env[3].valueFrom.fieldRef.fieldPath: Unsupported value: "spec.restartPolicy": supported '
        'values: "metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName", "spec.serviceAccountName", '
        '"status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs", '
        'spec.containers[0].env[4].valueFrom.fieldRef.fieldPath: Invalid value: "spec.nope": error converting '
        "fieldPath: field label not supported: spec.nope, "
        'spec.containers[0].env[5].valueFrom: Invalid value: "": may not be specified when `value` is not empty, '
        'spec.containers[0].env[6].valueFrom: Invalid value: "": must specify one of: `fieldRef`, `resourceFieldRef`, '
        "`configMapKeyRef` or `secretKeyRef`, "
        "spec.containers[0].env[7].valueFrom.configMapKeyRef.name: Required value, "
        f'spec.containers[0].env[7].valueFrom.configMapKeyRef.key: Invalid value: "bad key": {CONFIG_KEY}]'
    )


def test_volumes_and_mounts() -> None:
    spec = {
        "volumes": [
            {"name": "data"},
            {"name": "cfg", "configMap": {"name": ""}},
            {"name": "Bad", "emptyDir": {}},
            {"name": "both", "emptyDir": {}, "hostPath": {"path": "/x"}},
            {"name": "data", "secret": {"secretName": "s", "defaultMode": 511 + 1}},
            {"name": "hp", "hostPath": {"path": "/var/../etc", "type": "Dir"}},
        ],
        "containers": [container(volumeMounts=[
            {"name": "data", "mountPath": "/data"},
            {"name": "missing", "mountPath": "/data"},
            {"name": "cfg", "mountPath": ""},
        ])],
    }
    assert message(PODS, pod(spec)) == (
        "[spec.volumes[1].configMap.name: Required value, "
        f'spec.volumes[2].name: Invalid value: "Bad": {LABEL_1123}, '
        "spec.volumes[3].hostPath: Forbidden: may not specify more than 1 volume type, "
        "spec.volumes[4].secret.defaultMode: Invalid value: 512: must be a number between 0 and 0777 (octal), both inclusive, "
        'spec.volumes[4].name: Duplicate value: "data", '
        'spec.volumes[5].hostPath.path: Invalid value: "/var/../etc": must not contain \'..\', '
        'spec.volumes[5].hostPath.type: Unsupported value: "Dir": supported values: "", "BlockDevice", "CharDevice", '
        '"Directory", "DirectoryOrCreate", "File", "FileOrCreate", "Socket", '
        'spec.containers[0].volumeMounts[1].name: Not found: "missing", '
        'spec.containers[0].volumeMounts[1].mountPath: Invalid value: "/data": must be unique, '
        'spec.containers[0].volumeMounts[2].name: Not found: "cfg", '
        "spec.containers[0].volumeMounts[2].mountPath: Required value]"
    )
    err = reject(PODS, pod(spec))
    assert {"reason": "FieldValueNotFound", "message": 'Not found: "missing"',
            "field": "spec.containers[0].volumeMounts[1].name"} in err.details["causes"]  # type: ignore[index]


def test_resources() -> None:
    spec = {"containers": [container(resources={"limits": {"cpu": "500m", "memory": "1Gi"},
                                                "requests": {"cpu": "1", "memory": "-1", "gpu": "1"}})]}
    assert message(PODS, pod(spec)) == (
        '[spec.containers[0].resources.requests: Invalid value: "1": must be less than or equal to cpu limit of 500m, '
        'spec.containers[0].resources.requests[gpu]: Invalid value: "gpu": must be a standard resource for containers, '
        'spec.containers[0].resources.requests[memory]: Invalid value: "-1": must be greater than or equal to 0]'
    )
    assert decode_message(PODS, pod({"containers": [container(resources={"limits": {"cpu": "1 core"}})]})) == (
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    )
    assert decode_message(PODS, pod({"containers": [container(resources={"limits": {"cpu": "1iK"}})]})) == (
        "unable to parse quantity's suffix"
    )
    admit(PODS, pod({"containers": [container(resources={"limits": {"cpu": 2, "memory": "1.5Gi", "example.com/gpu": "1"}})]}))


def test_tolerations_and_node_selector() -> None:
    spec = {"containers": [container()], "nodeSelector": {"bad key": "v"},
            "tolerations": [{"operator": "Equal", "value": "x"}, {"key": "k", "operator": "Maybe"},
                            {"key": "k", "effect": "NoSchedule", "tolerationSeconds": 5},
                            {"key": "k", "operator": "Exists", "effect": "Never"}]}
    assert message(PODS, pod(spec)) == (
        f'[spec.nodeSelector: Invalid value: "bad key": {NAME_PART}, '
        'spec.tolerations[0].operator: Invalid value: "Equal": operator must be Exists when `key` is empty, which '
        'means "match all values and all keys", '
        'spec.tolerations[1].operator: Unsupported value: "Maybe": supported values: "Equal", "Exists", '
        "spec.tolerations[2].effect: Invalid value: \"NoSchedule\": effect must be 'NoExecute' when "
        "`tolerationSeconds` is set, "
        'spec.tolerations[3].effect: Unsupported value: "Never": supported values: "NoSchedule", '
        '"PreferNoSchedule", "NoExecute"]'
    )
    admit(PODS, pod({"containers": [container()], "tolerations": [{"operator": "Exists"}]}))


def test_other_pod_spec_fields() -> None:
    spec = {"containers": [container()], "serviceAccountName": "Bad", "nodeName": "node_1", "hostname": "a.b",
            "activeDeadlineSeconds": 0, "priorityClassName": "High"}
    assert message(PODS, pod(spec)) == (
        f'[spec.serviceAccountName: Invalid value: "Bad": {SUBDOMAIN}, '
        f'spec.nodeName: Invalid value: "node_1": {SUBDOMAIN}, '
        "spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, inclusive, "
        'spec.hostname: Invalid value: "a.b": must not contain dots, '
        f'spec.priorityClassName: Invalid value: "High": {SUBDOMAIN}]'
    )


# --------------------------------------------------------------------------------------------
# Workloads
# --------------------------------------------------------------------------------------------


def test_daemonset_valid_and_defaulted() -> None:
    out = admit(DS, daemonset())
    assert out["spec"]["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
    assert out["spec"]["revisionHistoryLimit"] == 10
    tspec = out["spec"]["template"]["spec"]
    assert {k: tspec[k] for k in ("restartPolicy", "dnsPolicy", "schedulerName", "terminationGracePeriodSeconds", "securityContext")} == {
        "restartPolicy": "Always", "dnsPolicy": "ClusterFirst", "schedulerName": "default-scheduler",
        "terminationGracePeriodSeconds": 30, "securityContext": {}}
    assert "enableServiceLinks" not in tspec  # SetDefaults_Pod only, not templates


def test_selector_must_match_template_labels() -> None:
    assert message(DS, daemonset(selector={"matchLabels": {"app": "other"}})) == (
        'spec.template.metadata.labels: Invalid value: map[string]string{"app":"api"}: `selector` does not match template `labels`'
    )
    nolabels = daemonset()
    nolabels["spec"]["template"]["metadata"] = {}
    assert message(DS, nolabels) == (
        "spec.template.metadata.labels: Invalid value: map[string]string(nil): `selector` does not match template `labels`"
    )
    exprs = daemonset(selector={"matchExpressions": [{"key": "app", "operator": "In", "values": ["api", "web"]}]})
    admit(DS, exprs)


def test_daemonset_selector_rules() -> None:
    # a nil selector selects nothing: DaemonSet reports only the template mismatch upstream
    assert message(DS, daemonset(selector=None)) == (
        'spec.template.metadata.labels: Invalid value: map[string]string{"app":"api"}: `selector` does not match template `labels`'
    )
    assert message(DS, daemonset(selector={})) == (
        "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), "
        "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for daemonset"
    )
    bad = daemonset(selector={"matchLabels": {"app": "api"}, "matchExpressions": [
        {"key": "tier", "operator": "In"}, {"key": "x", "operator": "Exists", "values": ["a"]}, {"key": "y", "operator": "Is"}]})
    assert message(DS, bad) == (
        "[spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn', "
        "spec.selector.matchExpressions[1].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist', "
        'spec.selector.matchExpressions[2].operator: Invalid value: "Is": not a valid selector operator]'
    )


def test_daemonset_template_restart_policy_and_deadline() -> None:
    obj = with_pod_spec(daemonset(), restartPolicy="OnFailure", activeDeadlineSeconds=10)
    assert message(DS, obj) == (
        '[spec.template.spec.restartPolicy: Unsupported value: "OnFailure": supported values: "Always", '
        "spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in DaemonSet is not Supported]"
    )


@pytest.mark.parametrize(
    ("strategy", "error"),
    [
        ({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}},
         "spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 when maxSurge is 0"),
        ({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "0%"}},
         "spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 when maxSurge is 0"),
        ({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 1}},
         "spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: 1: may not be set when maxUnavailable is non-zero"),
        ({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "50"}},
         f"spec.updateStrategy.rollingUpdate.maxUnavailable: Invalid value: 50: {PERCENT}"),
        ({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "150%"}},
         "spec.updateStrategy.rollingUpdate.maxUnavailable: Invalid value: 150%: must not be greater than 100%"),
        ({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": -1}},
         "spec.updateStrategy.rollingUpdate.maxUnavailable: Invalid value: -1: must be greater than or equal to 0"),
        ({"type": "Recreate"},
         'spec.updateStrategy: Unsupported value: apps.DaemonSetUpdateStrategy{Type:"Recreate", '
         'RollingUpdate:(*apps.RollingUpdateDaemonSet)(nil)}: supported values: "RollingUpdate", "OnDelete"'),
    ],
)
def test_daemonset_update_strategy(strategy: dict[str, Any], error: str) -> None:
    assert message(DS, daemonset(updateStrategy=strategy)) == error


def test_daemonset_surge_and_on_delete_are_fine() -> None:
    admit(DS, daemonset(updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}))
    out = admit(DS, daemonset(updateStrategy={"type": "OnDelete"}))
    assert out["spec"]["updateStrategy"] == {"type": "OnDelete"}


def test_workload_selector_is_immutable() -> None:
    old = daemonset()
    new = daemonset(selector={"matchLabels": {"app": "api", "tier": "web"}})
    new["spec"]["template"]["metadata"]["labels"]["tier"] = "web"
    assert message(DS, new, old) == (
        'spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"api", "tier":"web"}, '
        "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"
    )
    dold, dnew = deployment(), deployment(selector={"matchLabels": {"app": "api"}, "matchExpressions": [
        {"key": "tier", "operator": "NotIn", "values": ["db"]}]})
    assert message(DEPLOY, dnew, dold) == (
        'spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"api"}, '
        'MatchExpressions:[]v1.LabelSelectorRequirement{v1.LabelSelectorRequirement{Key:"tier", Operator:"NotIn", '
        'Values:[]string{"db"}}}}: field is immutable'
    )
    # an unchanged selector with a new image is a normal rollout
    admit(DS, with_pod_spec(daemonset(), containers=[container(name="api", image="nginx:1.28")]), old)


def test_deployment_defaults() -> None:
    out = admit(DEPLOY, deployment())
    spec = out["spec"]
    assert spec["replicas"] == 1 and spec["revisionHistoryLimit"] == 10 and spec["progressDeadlineSeconds"] == 600
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
    recreate = admit(DEPLOY, deployment(strategy={"type": "Recreate"}))
    assert recreate["spec"]["strategy"] == {"type": "Recreate"}


def test_deployment_rules() -> None:
    assert message(DEPLOY, deployment(replicas=-1)) == "spec.replicas: Invalid value: -1: must be greater than or equal to 0"
    assert message(DEPLOY, deployment(selector=None)) == (
        '[spec.selector: Required value, spec.template.metadata.labels: Invalid value: map[string]string{"app":"api"}: '
        "`selector` does not match template `labels`]"
    )
    assert message(DEPLOY, deployment(selector={"matchLabels": {}})) == (
        "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{}, "
        "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment"
    )
    assert message(DEPLOY, deployment(strategy={"type": "Recreate", "rollingUpdate": {"maxSurge": 1}})) == (
        "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'"
    )
    assert message(DEPLOY, deployment(strategy={"rollingUpdate": {"maxUnavailable": 0, "maxSurge": "0%"}})) == (
        "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0"
    )
    assert message(DEPLOY, deployment(strategy={"type": "BlueGreen"})) == (
        'spec.strategy: Unsupported value: apps.DeploymentStrategy{Type:"BlueGreen", '
        'RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}: supported values: "Recreate", "RollingUpdate"'
    )
    assert message(DEPLOY, deployment(minReadySeconds=700)) == (
        "spec.progressDeadlineSeconds: Invalid value: 600: must be greater than minReadySeconds"
    )
    assert message(DEPLOY, deployment(selector={"matchExpressions": [{"key": "app", "operator": "Near", "values": ["x"]}]})) == (
        '[spec.selector.matchExpressions[0].operator: Invalid value: "Near": not a valid selector operator, '
        'spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), '
        'MatchExpressions:[]v1.LabelSelectorRequirement{v1.LabelSelectorRequirement{Key:"app", Operator:"Near", '
        'Values:[]string{"x"}}}}: invalid label selector]'
    )
    obj = with_pod_spec(deployment(), restartPolicy="Never")
    assert message(DEPLOY, obj) == (
        'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"'
    )


def test_template_labels_are_validated_under_spec_template_labels() -> None:
    obj = deployment(selector={"matchLabels": {"app": "api"}})
    obj["spec"]["template"]["metadata"]["labels"]["bad"] = "-x"
    assert message(DEPLOY, obj) == f'spec.template.labels: Invalid value: "-x": {LABEL_VALUE}'


def test_replicaset_and_statefulset() -> None:
    rs = deployment()
    rs["kind"] = "ReplicaSet"
    assert admit(RS, rs)["spec"]["replicas"] == 1
    rs["spec"]["selector"] = {}
    assert message(RS, rs) == (
        "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), "
        "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment"
    )
    sts = deployment(serviceName="db")
    sts["kind"] = "StatefulSet"
    out = admit(STS, sts)
    assert out["spec"]["podManagementPolicy"] == "OrderedReady"
    assert out["spec"]["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert out["spec"]["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    assert out["spec"]["replicas"] == 1 and out["spec"]["revisionHistoryLimit"] == 10
    bad = copy.deepcopy(sts)
    bad["spec"].update(podManagementPolicy="Random", updateStrategy={"type": "OnDelete", "rollingUpdate": {}})
    assert message(STS, bad) == (
        "[spec.podManagementPolicy: Invalid value: \"Random\": must be 'OrderedReady' or 'Parallel', "
        "spec.updateStrategy.rollingUpdate: Invalid value: &apps.RollingUpdateStatefulSetStrategy{}: only allowed "
        "for updateStrategy 'RollingUpdate']"
    )
    # the StatefulSet pod spec is not validated upstream (volumes come from volumeClaimTemplates)
    mounts = with_pod_spec(sts, containers=[container(name="db", volumeMounts=[{"name": "data", "mountPath": "/d"}])])
    admit(STS, mounts)


# --------------------------------------------------------------------------------------------
# Service
# --------------------------------------------------------------------------------------------


def test_service_defaults() -> None:
    out = admit(SERVICES, service())
    assert out["spec"] == {
        "selector": {"app": "api"},
        "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 80}],
        "sessionAffinity": "None",
        "type": "ClusterIP",
        "internalTrafficPolicy": "Cluster",
        "ipFamilyPolicy": "SingleStack",
        "ipFamilies": ["IPv4"],
    }
    np = admit(SERVICES, service(type="NodePort", ports=[{"port": 80, "targetPort": "http"}]))["spec"]
    assert np["externalTrafficPolicy"] == "Cluster" and np["ports"][0]["targetPort"] == "http"
    lb = admit(SERVICES, service(type="LoadBalancer", sessionAffinity="ClientIP"))["spec"]
    assert lb["allocateLoadBalancerNodePorts"] is True
    assert lb["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}
    headless = admit(SERVICES, service(clusterIP="None", selector=None))["spec"]
    assert headless["ipFamilyPolicy"] == "RequireDualStack" and headless["ipFamilies"] == ["IPv4"]
    external = admit(SERVICES, service(type="ExternalName", externalName="db.example.com.", ports=[]))["spec"]
    assert "ipFamilies" not in external and "internalTrafficPolicy" not in external


def test_service_ports() -> None:
    assert message(SERVICES, service(ports=[])) == "spec.ports: Required value"
    admit(SERVICES, service(ports=[], clusterIP="None"))
    spec_ports = [{"port": 0}, {"name": "Web", "port": 70000, "protocol": "ICMP", "targetPort": 99999},
                  {"name": "b", "port": 443, "targetPort": "https-port-too-long"}]
    assert message(SERVICES, service(ports=spec_ports)) == (
        "[spec.ports[0].name: Required value, "
        f"spec.ports[0].port: Invalid value: 0: {PORT_RANGE}, "
        f"spec.ports[0].targetPort: Invalid value: 0: {PORT_RANGE}, "  # defaulted from port
        f'spec.ports[1].name: Invalid value: "Web": {LABEL_1123}, '
        f"spec.ports[1].port: Invalid value: 70000: {PORT_RANGE}, "
        'spec.ports[1].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP", '
        f"spec.ports[1].targetPort: Invalid value: 99999: {PORT_RANGE}, "
        'spec.ports[2].targetPort: Invalid value: "https-port-too-long": must be no more than 15 characters]'
    )


def test_service_duplicates() -> None:
    ports = [{"name": "a", "port": 80, "nodePort": 30080}, {"name": "a", "port": 80, "nodePort": 30080},
             {"name": "c", "port": 80, "protocol": "UDP"}]
    assert message(SERVICES, service(type="NodePort", ports=ports)) == (
        '[spec.ports[1].name: Duplicate value: "a", '
        "spec.ports[1].nodePort: Duplicate value: 30080, "
        'spec.ports[1]: Duplicate value: core.ServicePort{Name:"", Protocol:"TCP", AppProtocol:(*string)(nil), '
        'Port:80, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}]'
    )


def test_service_type_node_port_and_traffic_policy() -> None:
    assert message(SERVICES, service(type="Cluster")) == (
        'spec.type: Unsupported value: "Cluster": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"'
    )
    assert message(SERVICES, service(ports=[{"name": "http", "port": 80, "nodePort": 30080}])) == (
        "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"
    )
    admit(SERVICES, service(type="NodePort", ports=[{"name": "http", "port": 80, "nodePort": 30080}]))
    assert message(SERVICES, service(externalTrafficPolicy="Local")) == (
        'spec.externalTrafficPolicy: Invalid value: "Local": may only be set for externally-accessible services'
    )
    admit(SERVICES, service(type="NodePort", externalTrafficPolicy="Local"))
    assert message(SERVICES, service(type="NodePort", externalTrafficPolicy="Global")) == (
        'spec.externalTrafficPolicy: Unsupported value: "Global": supported values: "Cluster", "Local"'
    )
    assert message(SERVICES, service(internalTrafficPolicy="Node")) == (
        'spec.internalTrafficPolicy: Unsupported value: "Node": supported values: "Cluster", "Local"'
    )
    assert message(SERVICES, service(sessionAffinity="Sticky")) == (
        'spec.sessionAffinity: Unsupported value: "Sticky": supported values: "ClientIP", "None"'
    )
    assert message(SERVICES, service(type="NodePort", healthCheckNodePort=31000)) == (
        "spec.healthCheckNodePort: Invalid value: 31000: may only be set when `type` is 'LoadBalancer' and "
        "`externalTrafficPolicy` is 'Local'"
    )


def test_service_cluster_ip_and_families() -> None:
    assert message(SERVICES, service(clusterIP="10.43.0.300")) == (
        'spec.clusterIPs[0]: Invalid value: "10.43.0.300": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)'
    )
    assert message(SERVICES, service(type="NodePort", clusterIP="None")) == (
        "spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for NodePort services"
    )
    assert message(SERVICES, service(ipFamilies=["IPv5"], ipFamilyPolicy="Single")) == (
        '[spec.ipFamilies[0]: Unsupported value: "IPv5": supported values: "IPv4", "IPv6", '
        'spec.ipFamilyPolicy: Unsupported value: "Single": supported values: "PreferDualStack", '
        '"RequireDualStack", "SingleStack"]'
    )
    assert message(SERVICES, service(clusterIP="fd00::1")) == (
        'spec.clusterIPs[0]: Invalid value: "fd00::1": expected an IPv4 value as indicated by `ipFamilies[0]`'
    )
    assert message(SERVICES, service(type="ExternalName", externalName="Not A Host", ports=[])) == (
        f'spec.externalName: Invalid value: "Not A Host": {SUBDOMAIN}'
    )


def test_service_cluster_ip_is_immutable() -> None:
    old = service(clusterIP="10.43.0.10")
    new = service(clusterIP="10.43.0.11")
    assert message(SERVICES, new, old) == (
        'spec.clusterIPs[0]: Invalid value: []string{"10.43.0.11"}: may not change once set'
    )
    admit(SERVICES, service(), old)  # omitted: the registry keeps the allocated address
    admit(SERVICES, service(clusterIP="10.43.0.10"), old)


def test_service_type_change_drops_fields_it_no_longer_needs() -> None:
    """dropTypeDependentFields: NodePort -> ClusterIP keeps working with the old nodePort and policy."""
    old = service(type="NodePort", externalTrafficPolicy="Local", ports=[{"name": "http", "port": 80, "nodePort": 30080}])
    new = copy.deepcopy(old)
    new["spec"]["type"] = "ClusterIP"
    admit(SERVICES, new, old)
    new["spec"]["ports"][0]["nodePort"] = 30081
    new["spec"]["externalTrafficPolicy"] = "Cluster"
    assert message(SERVICES, new, old) == (
        "[spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP', "
        'spec.externalTrafficPolicy: Invalid value: "Cluster": may only be set for externally-accessible services]'
    )


def test_load_balancer_fields() -> None:
    assert message(SERVICES, service(loadBalancerSourceRanges=["10.0.0.0/8", "nope"], allocateLoadBalancerNodePorts=False)) == (
        "[spec.LoadBalancerSourceRanges: Forbidden: may only be used when `type` is 'LoadBalancer', "
        'spec.LoadBalancerSourceRanges[1]: Invalid value: "nope": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64), '
        "spec.allocateLoadBalancerNodePorts: Forbidden: may only be used when `type` is 'LoadBalancer']"
    )


# --------------------------------------------------------------------------------------------
# Ingress
# --------------------------------------------------------------------------------------------


def test_valid_ingress_passes_and_path_type_is_not_defaulted() -> None:
    out = admit(INGRESS, ingress(host="*.example.com", ingressClassName="nginx",
                                 tls=[{"hosts": ["*.example.com"], "secretName": "wild-tls"}]))
    assert out == v.default(INGRESS, out)
    nopt = ingress({"path": "/", "backend": backend()})
    assert "pathType" not in v.default(INGRESS, nopt)["spec"]["rules"][0]["http"]["paths"][0]
    assert message(INGRESS, nopt) == "spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified"


def test_ingress_hosts() -> None:
    assert message(INGRESS, ingress(host="App.example.com")) == f'spec.rules[0].host: Invalid value: "App.example.com": {SUBDOMAIN}'
    assert message(INGRESS, ingress(host="*.*.example.com")) == f'spec.rules[0].host: Invalid value: "*.*.example.com": {WILDCARD}'
    assert message(INGRESS, ingress(host="192.168.0.1")) == (
        'spec.rules[0].host: Invalid value: "192.168.0.1": must be a DNS name, not an IP address'
    )
    assert message(INGRESS, ingress(tls=[{"hosts": ["Bad"], "secretName": "x_y"}])) == (
        f'[spec.tls[0].hosts[0]: Invalid value: "Bad": {SUBDOMAIN}, spec.tls[0].secretName: Invalid value: "x_y": {SUBDOMAIN}]'
    )


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ({"path": "api", "pathType": "Prefix", "backend": backend()},
         'spec.rules[0].http.paths[0].path: Invalid value: "api": must be an absolute path'),
        ({"path": "", "pathType": "Exact", "backend": backend()},
         'spec.rules[0].http.paths[0].path: Invalid value: "": must be an absolute path'),
        ({"path": "/a//b", "pathType": "Exact", "backend": backend()},
         "spec.rules[0].http.paths[0].path: Invalid value: \"/a//b\": must not contain '//'"),
        ({"path": "/a/..", "pathType": "Prefix", "backend": backend()},
         "spec.rules[0].http.paths[0].path: Invalid value: \"/a/..\": cannot end with '/..'"),
        ({"path": "x", "pathType": "ImplementationSpecific", "backend": backend()},
         'spec.rules[0].http.paths[0].path: Invalid value: "x": must be an absolute path'),
        ({"path": "/", "pathType": "Regex", "backend": backend()},
         'spec.rules[0].http.paths[0].pathType: Unsupported value: "Regex": supported values: "Exact", '
         '"ImplementationSpecific", "Prefix"'),
        ({"path": "/", "pathType": "Prefix", "backend": {}},
         'spec.rules[0].http.paths[0].backend: Invalid value: "": resource or service backend is required'),
        ({"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "api", "port": {}}}},
         "spec.rules[0].http.paths[0].backend: Required value: port name or number is required"),
        ({"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "api", "port": {"number": 80, "name": "http"}}}},
         'spec.rules[0].http.paths[0].backend: Invalid value: "": cannot set both port name & port number'),
        ({"path": "/", "pathType": "Prefix", "backend": backend(number=0x10000)},
         f"spec.rules[0].http.paths[0].backend.service.port.number: Invalid value: 65536: {PORT_RANGE}"),
        ({"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "api", "port": {"name": "HTTP"}}}},
         '[spec.rules[0].http.paths[0].backend.service.port.name: Invalid value: "HTTP": must contain only '
         "alpha-numeric characters (a-z, 0-9), and hyphens (-), spec.rules[0].http.paths[0].backend.service.port.name: "
         'Invalid value: "HTTP": must contain at least one letter (a-z)]'),
        ({"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "", "port": {"number": 80}}}},
         "spec.rules[0].http.paths[0].backend.service.name: Required value"),
        ({"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "1api", "port": {"number": 80}}}},
         f'spec.rules[0].http.paths[0].backend.service.name: Invalid value: "1api": {LABEL_1035}'),
    ],
)
def test_ingress_paths_and_backends(path: dict[str, Any], error: str) -> None:
    assert message(INGRESS, ingress(path)) == error


def test_ingress_needs_rules_or_default_backend() -> None:
    obj = ingress()
    obj["spec"] = {}
    assert message(INGRESS, obj) == "spec: Invalid value: []networking.IngressRule(nil): either `defaultBackend` or `rules` must be specified"
    obj["spec"] = {"defaultBackend": backend()}
    admit(INGRESS, obj)
    obj["spec"] = {"rules": [{"host": "a.example.com", "http": {"paths": []}}]}
    assert message(INGRESS, obj) == "spec.rules[0].http.paths: Required value"


def test_ingress_class() -> None:
    body = {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": "nginx"},
            "spec": {"controller": "k8s.io/ingress-nginx"}}
    admit(INGRESS_CLASSES, body, ns=None)
    body["spec"]["controller"] = "nginx"
    assert reject(INGRESS_CLASSES, body, ns=None).message == (
        'IngressClass.networking.k8s.io "nginx" is invalid: spec.controller: Invalid value: "nginx": '
        'must be a domain-prefixed path (such as "acme.io/foo")'
    )


# --------------------------------------------------------------------------------------------
# ConfigMap / Secret
# --------------------------------------------------------------------------------------------


def test_configmap_keys_and_size() -> None:
    assert message(CONFIGMAPS, configmap({"ok.key": "1", "bad key": "2", "..x": "3", ".": "4"})) == (
        "[data[.]: Invalid value: \".\": must not be '.', "
        "data[..x]: Invalid value: \"..x\": must not start with '..', "
        f'data[bad key]: Invalid value: "bad key": {CONFIG_KEY}]'
    )
    assert message(CONFIGMAPS, configmap({"a": "x"}, binaryData={"a": "eA=="})) == (
        'data[a]: Invalid value: "a": duplicate of key present in binaryData'
    )
    assert message(CONFIGMAPS, configmap({"a": "x" * (1024 * 1024), "b": "y"})) == "[]: Too long: may not be more than 1048576 bytes"
    admit(CONFIGMAPS, configmap({"a": "x" * (1024 * 1024)}))


def test_configmap_and_secret_immutable() -> None:
    old = configmap({"a": "1"}, immutable=True)
    assert message(CONFIGMAPS, configmap({"a": "2"}), old) == (
        "[immutable: Forbidden: field is immutable when `immutable` is set, "
        "data: Forbidden: field is immutable when `immutable` is set]"
    )
    admit(CONFIGMAPS, configmap({"a": "1"}, immutable=True), old)
    sold = secret({"a": "MQ=="}, immutable=True)
    assert message(SECRETS, secret({"a": "Mg=="}, immutable=True), sold) == "data: Forbidden: field is immutable when `immutable` is set"


def test_secret_type_is_immutable() -> None:
    old = secret({"tls.crt": "YQ==", "tls.key": "Yg=="}, type="kubernetes.io/tls")
    new = secret({"tls.crt": "YQ==", "tls.key": "Yg=="})
    assert message(SECRETS, new, old) == 'type: Invalid value: "Opaque": field is immutable'


def test_secret_known_types() -> None:
    assert message(SECRETS, secret({"tls.crt": "YQ=="}, type="kubernetes.io/tls")) == "data[tls.key]: Required value"
    assert message(SECRETS, secret({}, type="kubernetes.io/tls")) == "[data[tls.crt]: Required value, data[tls.key]: Required value]"
    admit(SECRETS, secret({"tls.crt": "", "tls.key": ""}, type="kubernetes.io/tls"))
    assert message(SECRETS, secret({}, type="kubernetes.io/basic-auth")) == (
        "[data[username]: Required value, data[password]: Required value]"
    )
    assert message(SECRETS, secret({}, type="kubernetes.io/dockerconfigjson")) == "data[.dockerconfigjson]: Required value"
    assert message(SECRETS, secret({}, type="kubernetes.io/service-account-token")) == (
        "metadata.annotations[kubernetes.io/service-account.name]: Required value"
    )
    admit(SECRETS, secret({"anything": "eA=="}, type="example.com/custom"))


def test_secret_data_keys_and_size() -> None:
    assert message(SECRETS, secret({"bad/key": "eA=="})) == f'data[bad/key]: Invalid value: "bad/key": {CONFIG_KEY}'
    big = "A" * (1024 * 1024 // 3 * 4 + 8)  # decodes to just over 1 MiB
    assert message(SECRETS, secret({"a": big})) == "data: Too long: may not be more than 1048576 bytes"


@pytest.mark.parametrize(
    ("value", "byte"),
    [("YQ=!", 2), ("!!!!", 0), ("YWJj$", 4), ("YQ", 0), ("YWJjZA=", 7), ("Y===", 1), ("YQ==YQ==", 4), ("a b=", 1), ("é", 0)],
)
def test_secret_data_must_be_base64(value: str, byte: int) -> None:
    assert decode_message(SECRETS, secret({"a": value})) == f"illegal base64 data at input byte {byte}"


@pytest.mark.parametrize("value", ["", "YQ==", "YWJj", "YW\nJj", "YQ==\r\n", "YWJjZA==", "\n"])
def test_secret_base64_accepted_like_go(value: str) -> None:
    admit(SECRETS, secret({"a": value}))


def test_secret_defaults_and_string_data() -> None:
    out = admit(SECRETS, secret({"b": "Yg=="}, stringData={"a": "hé", "b": "over"}))
    assert out["type"] == "Opaque" and "stringData" not in out
    assert out["data"] == {"b": "b3Zlcg==", "a": "aMOp"}
    assert message(SECRETS, secret(stringData={"bad key": "x"})) == f'data[bad key]: Invalid value: "bad key": {CONFIG_KEY}'


def test_secret_and_configmap_wrong_types_are_400() -> None:
    assert decode_message(SECRETS, secret({"a": 5})) == (
        "json: cannot unmarshal number into Go struct field Secret.data of type []uint8"
    )
    assert decode_message(CONFIGMAPS, configmap({"a": 5})) == (
        "json: cannot unmarshal number into Go struct field ConfigMap.data of type string"
    )
    assert decode_message(CONFIGMAPS, configmap(immutable="yes")) == (
        "json: cannot unmarshal string into Go struct field ConfigMap.immutable of type bool"
    )


# --------------------------------------------------------------------------------------------
# Light kinds
# --------------------------------------------------------------------------------------------


def test_namespace() -> None:
    out = admit(NAMESPACES, {"metadata": {"name": "team-a", "labels": {"kubernetes.io/metadata.name": "wrong"}}}, ns=None)
    assert out["metadata"]["labels"] == {"kubernetes.io/metadata.name": "team-a"}
    assert reject(NAMESPACES, {"metadata": {"name": "t"}, "spec": {"finalizers": ["custom"]}}, ns=None).message == (
        'Namespace "t" is invalid: spec.finalizers: Invalid value: "custom": name is neither a standard finalizer name '
        "nor is it fully qualified"
    )


def test_node() -> None:
    node = {"metadata": {"name": "k3s-1"}, "spec": {"podCIDRs": ["10.42.0.0/24", "10.42.1.0/33"],
                                                    "taints": [{"key": "a", "effect": "NoSchedule"}, {"key": "a", "effect": "NoSchedule"},
                                                               {"key": "b", "effect": "Sometimes"}, {"key": "c"}]}}
    assert reject(NODES, node, ns=None).message == (
        'Node "k3s-1" is invalid: ['
        'spec.taints[1]: Duplicate value: core.Taint{Key:"a", Value:"", Effect:"NoSchedule", TimeAdded:<nil>}: '
        "taints must be unique by key and effect pair, "
        'spec.taints[2].effect: Unsupported value: "Sometimes": supported values: "NoSchedule", "PreferNoSchedule", "NoExecute", '
        "spec.taints[3].effect: Required value, "
        'spec.podCIDRs[1]: Invalid value: "10.42.1.0/33": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)]'
    )


def test_event() -> None:
    ev = {"metadata": {"name": "web.17a", "namespace": "default"}, "involvedObject": {"kind": "Pod", "name": "web", "namespace": "default"},
          "reason": "Started", "type": "Normal"}
    admit(EVENTS, ev)
    node_event = {**ev, "involvedObject": {"kind": "Node", "name": "k3s-1"}}
    admit(EVENTS, node_event)
    other = {**ev, "involvedObject": {"kind": "Pod", "name": "web", "namespace": "kube-system"}}
    assert message(EVENTS, other) == 'involvedObject.namespace: Invalid value: "kube-system": does not match event.namespace'
    new_style = {**ev, "eventTime": "2025-01-01T00:00:00.000000Z"}
    assert message(EVENTS, new_style) == (
        "[reportingComponent: Required value, "
        'reportingComponent: Invalid value: "": name part must be non-empty, '
        f'reportingComponent: Invalid value: "": {NAME_PART}, '
        "reportingInstance: Required value, action: Required value]"
    )
    new_style.update(reportingComponent="kubelet", reportingInstance="k3s-1", action="Started")
    admit(EVENTS, new_style)


def test_endpoints_and_slices() -> None:
    eps = {"metadata": {"name": "api", "namespace": "default"},
           "subsets": [{"addresses": [{"ip": "127.0.10.110", "nodeName": "k3s-1"}], "ports": [{"port": 8080}]}]}
    out = admit(ENDPOINTS, eps)
    assert out["subsets"][0]["ports"][0]["protocol"] == "TCP"
    bad = {"metadata": {"name": "api", "namespace": "default"},
           "subsets": [{"ports": [{"port": 80}, {"port": 0, "name": "b"}]}, {"addresses": [{"ip": "x"}]}]}
    assert message(ENDPOINTS, bad) == (
        "[subsets[0]: Required value: must specify `addresses` or `notReadyAddresses`, "
        "subsets[0].ports[0].name: Required value, "
        f"subsets[0].ports[1].port: Invalid value: 0: {PORT_RANGE}, "
        'subsets[1].addresses[0].ip: Invalid value: "x": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)]'
    )
    sl = {"metadata": {"name": "api-abc", "namespace": "default"}, "addressType": "IPv4",
          "endpoints": [{"addresses": ["127.0.10.110"], "conditions": {"ready": True}, "nodeName": "k3s-1"}],
          "ports": [{"name": "http", "port": 8080}, {"port": None}]}
    out = admit(SLICES, sl)
    assert out["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}, {"port": None, "name": "", "protocol": "TCP"}]
    assert message(SLICES, {"metadata": {"name": "x", "namespace": "default"}, "endpoints": [{"addresses": []}, {"addresses": ["fe80::1"]}],
                            "addressType": "IPv4"}) == (
        "[endpoints[0].addresses: Required value: must contain at least 1 address, "
        'endpoints[1].addresses[0]: Invalid value: "fe80::1": must be a valid IPv4 address]'
    )
    assert message(SLICES, {"metadata": {"name": "x", "namespace": "default"}}) == "addressType: Required value"
    assert message(SLICES, {"metadata": {"name": "x", "namespace": "default"}, "addressType": "IPv7"}) == (
        'addressType: Unsupported value: "IPv7": supported values: "FQDN", "IPv4", "IPv6"'
    )


def test_lease() -> None:
    lease = {"metadata": {"name": "k3s-1", "namespace": "kube-node-lease"},
             "spec": {"holderIdentity": "k3s-1", "leaseDurationSeconds": 40, "renewTime": "2025-01-01T00:00:00.000000Z"}}
    admit(LEASES, lease)
    lease["spec"].update(leaseDurationSeconds=0, leaseTransitions=-1, preferredHolder="x")
    assert message(LEASES, lease) == (
        "[spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0, "
        "spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0, "
        "spec.preferredHolder: Forbidden: may only be specified if `strategy` is defined]"
    )
    assert decode_message(LEASES, {"metadata": {"name": "l"}, "spec": {"leaseDurationSeconds": "40"}}) == (
        "json: cannot unmarshal string into Go struct field LeaseSpec.spec.leaseDurationSeconds of type int32"
    )


# --------------------------------------------------------------------------------------------
# Defaulting details
# --------------------------------------------------------------------------------------------


def test_pod_defaults() -> None:
    out = admit(PODS, pod({"hostNetwork": True, "volumes": [{"name": "scratch"}, {"name": "s", "secret": {"secretName": "x"}},
                                                            {"name": "h", "hostPath": {"path": "/var/log"}}],
                           "containers": [container(image="nginx", ports=[{"containerPort": 80}],
                                                    resources={"limits": {"cpu": "1"}},
                                                    livenessProbe={"httpGet": {"port": 80}},
                                                    env=[{"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
                                                    lifecycle={"preStop": {"httpGet": {"port": 80}}})]}))
    spec = out["spec"]
    assert {k: spec[k] for k in ("restartPolicy", "dnsPolicy", "schedulerName", "terminationGracePeriodSeconds",
                                 "securityContext", "enableServiceLinks")} == {
        "restartPolicy": "Always", "dnsPolicy": "ClusterFirst", "schedulerName": "default-scheduler",
        "terminationGracePeriodSeconds": 30, "securityContext": {}, "enableServiceLinks": True}
    assert spec["volumes"] == [{"name": "scratch", "emptyDir": {}}, {"name": "s", "secret": {"secretName": "x", "defaultMode": 420}},
                               {"name": "h", "hostPath": {"path": "/var/log", "type": ""}}]
    c = spec["containers"][0]
    assert c["imagePullPolicy"] == "Always"
    assert c["terminationMessagePath"] == "/dev/termination-log" and c["terminationMessagePolicy"] == "File"
    assert c["ports"] == [{"containerPort": 80, "protocol": "TCP", "hostPort": 80}]
    assert c["resources"] == {"limits": {"cpu": "1"}, "requests": {"cpu": "1"}}
    assert c["livenessProbe"] == {"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1,
                                  "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}
    assert c["lifecycle"]["preStop"]["httpGet"] == {"port": 80, "path": "/", "scheme": "HTTP"}
    assert c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"] == "v1"
    assert admit(PODS, pod())["spec"]["containers"][0]["resources"] == {}


def test_template_limits_do_not_become_requests() -> None:
    obj = with_pod_spec(daemonset(), containers=[container(name="api", resources={"limits": {"cpu": "1"}})])
    assert admit(DS, obj)["spec"]["template"]["spec"]["containers"][0]["resources"] == {"limits": {"cpu": "1"}}


@pytest.mark.parametrize(
    ("image", "policy"),
    [
        ("nginx", "Always"), ("nginx:latest", "Always"), ("nginx:1.27", "IfNotPresent"),
        ("registry.local:5000/team/app", "Always"), ("registry.local:5000/team/app:v2", "IfNotPresent"),
        ("ghcr.io/org/app:latest", "Always"), ("app@sha256:" + "a" * 64, "IfNotPresent"),
        ("app:latest@sha256:" + "a" * 64, "Always"), ("Upper/Case", "IfNotPresent"), ("", "IfNotPresent"),
        ("[::1]:5000/app", "Always"),
    ],
)
def test_image_pull_policy_default(image: str, policy: str) -> None:
    assert v.image_pull_policy(image) == policy


def test_explicit_values_are_kept_and_input_not_mutated() -> None:
    obj = pod({"containers": [container(imagePullPolicy="Never", ports=[{"containerPort": 53, "protocol": "UDP"}])],
               "dnsPolicy": "Default", "terminationGracePeriodSeconds": 0, "restartPolicy": "Never"})
    before = copy.deepcopy(obj)
    out = v.default(PODS, obj)
    assert obj == before and out is not obj
    assert out["spec"]["dnsPolicy"] == "Default" and out["spec"]["terminationGracePeriodSeconds"] == 0
    assert out["spec"]["containers"][0]["imagePullPolicy"] == "Never"
    assert out["spec"]["containers"][0]["ports"][0]["protocol"] == "UDP"
    assert v.default(PODS, out) == out  # idempotent


def test_nulls_are_zero_values() -> None:
    obj = pod({"containers": [container(ports=None, env=None)], "dnsPolicy": None, "securityContext": None, "volumes": None})
    out = admit(PODS, obj)
    assert out["spec"]["dnsPolicy"] == "ClusterFirst" and out["spec"]["securityContext"] == {}


# --------------------------------------------------------------------------------------------
# Typed decode: wrong JSON types are the decoder's 400, never a TypeError
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rt", "obj", "error"),
    [
        (DS, "not an object", "json: cannot unmarshal string into Go value of type v1.DaemonSet"),
        (DS, {"metadata": []}, "json: cannot unmarshal array into Go struct field DaemonSet.metadata of type v1.ObjectMeta"),
        (DS, {"metadata": {"name": 5}}, "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.name of type string"),
        (DS, {"metadata": {"labels": {"a": 1}}}, "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.labels of type string"),
        (DS, {"spec": "x"}, "json: cannot unmarshal string into Go struct field DaemonSet.spec of type v1.DaemonSetSpec"),
        (DS, {"spec": {"template": {"spec": {"containers": {"name": "x"}}}}},
         "json: cannot unmarshal object into Go struct field PodSpec.spec.template.spec.containers of type []v1.Container"),
        (DS, {"spec": {"template": {"spec": {"containers": [{"ports": [{"containerPort": "8080"}]}]}}}},
         "json: cannot unmarshal string into Go struct field ContainerPort.spec.template.spec.containers.ports.containerPort of type int32"),
        (DS, {"spec": {"template": {"spec": {"containers": [{"ports": [{"containerPort": 1.5}]}]}}}},
         "json: cannot unmarshal number 1.5 into Go struct field ContainerPort.spec.template.spec.containers.ports.containerPort of type int32"),
        (DS, {"spec": {"template": {"spec": {"containers": [{"ports": [{"containerPort": 2**31}]}]}}}},
         "json: cannot unmarshal number 2147483648 into Go struct field ContainerPort.spec.template.spec.containers.ports.containerPort of type int32"),
        (DS, {"spec": {"template": {"spec": {"hostNetwork": "true"}}}},
         "json: cannot unmarshal string into Go struct field PodSpec.spec.template.spec.hostNetwork of type bool"),
        (DS, {"spec": {"updateStrategy": {"rollingUpdate": {"maxUnavailable": True}}}},
         "json: cannot unmarshal bool into Go struct field RollingUpdateDaemonSet.spec.updateStrategy.rollingUpdate.maxUnavailable of type int32"),
        (PODS, {"spec": {"containers": [{"name": ["x"]}]}}, "json: cannot unmarshal array into Go struct field Container.spec.containers.name of type string"),
        (SERVICES, {"spec": {"ports": [{"port": "80"}]}}, "json: cannot unmarshal string into Go struct field ServicePort.spec.ports.port of type int32"),
        (SERVICES, {"spec": {"selector": ["app"]}}, "json: cannot unmarshal array into Go struct field ServiceSpec.spec.selector of type map[string]string"),
        (INGRESS, {"spec": {"rules": [{"http": {"paths": [{"backend": {"service": {"port": {"number": "80"}}}}]}}]}},
         "json: cannot unmarshal string into Go struct field ServiceBackendPort.spec.rules.http.paths.backend.service.port.number of type int32"),
    ],
)
def test_wrong_json_types(rt: ResourceType, obj: Any, error: str) -> None:
    assert decode_message(rt, obj) == error
    with pytest.raises(ApiError) as info:  # validate alone reports it too
        v.validate(rt, obj, None, namespace="default")
    assert info.value.code == 400


def test_unknown_fields_are_ignored_like_the_decoder() -> None:
    obj = pod(extra={"x": 1})
    obj["spec"]["containers"][0]["unknownField"] = [1, 2]
    obj["whatever"] = "x"
    admit(PODS, obj)


def test_self_subject_access_review_is_not_validated() -> None:
    ssar = next(t for t in all_types() if t.kind == "SelfSubjectAccessReview")
    admit(ssar, {"spec": {"resourceAttributes": {"verb": "get"}}}, ns=None)


# --------------------------------------------------------------------------------------------
# Property tests: never anything but ApiError, whatever the shape
# --------------------------------------------------------------------------------------------

JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**40), max_value=2**40) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12) | st.sampled_from(["", "None", "TCP", "Always", "RollingUpdate", "25%", "0", "a=b", "YQ==", "*.x.io"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["name", "image", "ports", "containerPort", "hostPort", "spec", "metadata", "labels", "selector",
                         "matchLabels", "matchExpressions", "containers", "template", "type", "data", "rules", "http",
                         "paths", "backend", "service", "port", "number", "rollingUpdate", "maxUnavailable", "x"])
        | st.text(max_size=6),
        inner, max_size=5),
    max_leaves=25,
)

BASES: list[tuple[ResourceType, dict[str, Any]]] = [
    (PODS, pod({"hostNetwork": True, "volumes": [{"name": "v"}], "containers": [container(
        ports=[{"containerPort": 80, "name": "http"}], env=[{"name": "A", "value": "b"}],
        volumeMounts=[{"name": "v", "mountPath": "/v"}], livenessProbe={"httpGet": {"port": "http"}},
        resources={"limits": {"cpu": "1"}})]})),
    (DS, daemonset()),
    (DEPLOY, deployment()),
    (STS, {**deployment(), "kind": "StatefulSet"}),
    (SERVICES, service(type="NodePort", ports=[{"name": "a", "port": 80, "nodePort": 30080}])),
    (INGRESS, ingress(tls=[{"hosts": ["a.example.com"], "secretName": "s"}])),
    (SECRETS, secret({"tls.crt": "YQ==", "tls.key": "YQ=="}, type="kubernetes.io/tls")),
    (CONFIGMAPS, configmap({"a": "b"}, binaryData={"c": "YQ=="})),
    (NAMESPACES, {"metadata": {"name": "n"}, "spec": {"finalizers": ["kubernetes"]}}),
    (NODES, {"metadata": {"name": "k"}, "spec": {"taints": [{"key": "a", "effect": "NoSchedule"}], "podCIDRs": ["10.0.0.0/24"]}}),
    (EVENTS, {"metadata": {"name": "e"}, "involvedObject": {"kind": "Pod", "namespace": "default"}}),
    (ENDPOINTS, {"metadata": {"name": "e"}, "subsets": [{"addresses": [{"ip": "1.2.3.4"}], "ports": [{"port": 1}]}]}),
    (SLICES, {"metadata": {"name": "s"}, "addressType": "IPv4", "endpoints": [{"addresses": ["1.2.3.4"]}], "ports": [{"port": 1}]}),
    (LEASES, {"metadata": {"name": "l"}, "spec": {"leaseDurationSeconds": 1}}),
]


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, val in obj.items():
            out += _paths(val, prefix + (k,))
    elif isinstance(obj, list):
        for i, val in enumerate(obj):
            out += _paths(val, prefix + (i,))
    return out


def _replace(obj: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    obj = copy.deepcopy(obj)
    cur = obj
    for key in path[:-1]:
        cur = cur[key]
    cur[path[-1]] = value
    return obj


def _check_never_crashes(rt: ResourceType, obj: Any, old: Any = None) -> None:
    try:
        defaulted = v.default(rt, obj)
    except ApiError as e:
        assert e.code == 400, e.message
        defaulted = obj
    for candidate in (obj, defaulted):
        try:
            v.validate(rt, candidate, old, namespace="default")
        except ApiError as e:
            assert e.code in (400, 422), e.message
            if e.code == 422:
                assert e.details and e.details["causes"], e.message
                for cause in e.details["causes"]:
                    assert cause["reason"].startswith("FieldValue") and isinstance(cause["message"], str)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_mutated_objects_never_raise_anything_but_api_error(data: st.DataObject) -> None:
    rt, base = data.draw(st.sampled_from(BASES))
    path = data.draw(st.sampled_from(_paths(base)))
    obj = _replace(base, path, data.draw(JSONISH))
    _check_never_crashes(rt, obj)
    _check_never_crashes(rt, obj, old=base)
    _check_never_crashes(rt, base, old=obj)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.sampled_from(all_types()), JSONISH)
@example(DS, {"spec": {"selector": {"matchExpressions": [{"operator": "In"}]}, "template": {}}})
@example(SERVICES, {"spec": {"clusterIPs": ["None", "x"], "type": "NodePort"}})
@example(SECRETS, {"type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": "e30="}})
def test_random_objects_never_raise_anything_but_api_error(rt: ResourceType, obj: Any) -> None:
    _check_never_crashes(rt, obj)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(BASES))
def test_bases_are_valid_and_defaulting_is_idempotent(case: tuple[ResourceType, dict[str, Any]]) -> None:
    rt, base = case
    once = admit(rt, base)
    assert v.default(rt, once) == once
    admit(rt, once, old=once)
