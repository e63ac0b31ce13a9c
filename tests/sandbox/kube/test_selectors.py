"""Label and field selectors against apimachinery's behaviour and exact error texts.

The expected strings come from apimachinery `pkg/labels/selector.go` / `selector_test.go`,
`pkg/fields/selector.go`, `pkg/apis/core/v1/conversion.go`, and error texts captured from real
servers (`kubectl get pods -l app:monolith` -> `unable to parse requirement: <nil>: ...`).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from keybuzz_tui.sandbox.kube import selectors as sel
from keybuzz_tui.sandbox.kube.errors import ApiError
from keybuzz_tui.sandbox.kube.registry import ResourceType, apps, core, lookup

PODS = core("pods")
EVENTS = core("events")
NODES = core("nodes")
SERVICES = core("services")
SECRETS = core("secrets")
NAMESPACES = core("namespaces")
CONFIGMAPS = core("configmaps")
DAEMONSETS = apps("daemonsets")
INGRESSES = lookup("networking.k8s.io", "v1", "ingresses")
assert INGRESSES is not None

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
PREFIX_PART = (
    "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
    "or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
OPERATORS = "in, notin, =, ==, !=, gt, lt"


def bad(text: str) -> str:
    """The 400 message parse_label_selector raises for `text`."""
    with pytest.raises(ApiError) as info:
        sel.parse_label_selector(text)
    assert info.value.code == 400
    assert info.value.reason == "BadRequest"
    assert info.value.status()["code"] == 400
    return info.value.message


def bad_field(text: str, rt: ResourceType = PODS) -> str:
    with pytest.raises(ApiError) as info:
        sel.parse_field_selector(text, rt)
    assert info.value.code == 400
    assert info.value.reason == "BadRequest"
    return info.value.message


def bad_selector_object(obj: Any) -> str:
    with pytest.raises(ApiError) as info:
        sel.selector_from_label_selector(obj)
    assert info.value.code == 400
    return info.value.message


# --------------------------------------------------------------------------------------------
# Label selectors: parsing and String()
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["x=a,y=b,z=c", "", "x!=a,y=b", "x=", "x= ", "x=,z= ", "x= ,z= ", "!x", "x>1", "x>1,z<5"],
)
def test_upstream_good_strings_restring_without_spaces(text: str) -> None:
    """TestSelectorParse: String() is the input with its spaces removed."""
    assert str(sel.parse_label_selector(text)) == text.replace(" ", "")


@pytest.mark.parametrize("text", ["x=a||y=b", "x==a==b", "!x=a", "x<a", ",x,y", "a in (xyz),",
                                  "a in (xyz)b notin ()", "x nott in (y)", "a in (xyz abc)", "a notin(",
                                  "a (", "("])
def test_upstream_bad_strings(text: str) -> None:
    bad(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\rx", "x"),
        ("this-is-a-dns.domain.com/key-with-dash", "this-is-a-dns.domain.com/key-with-dash"),
        ("this-is-another-dns.domain.com/key-with-dash in (so,what)",
         "this-is-another-dns.domain.com/key-with-dash in (so,what)"),
        ("0.1.2.domain/99 notin (10.10.100.1, tick.tack.clock)", "0.1.2.domain/99 notin (10.10.100.1,tick.tack.clock)"),
        ("foo  in\t (abc)", "foo in (abc)"),
        ("x notin\n (abc)", "x notin (abc)"),
        ("x in (abc,)", "x in (,abc)"),
        ("x in ()", "x in ()"),
        ("x notin (abc,def),bar,z in (),w", "bar,w,x notin (abc,def),z in ()"),
        ("x in (,a)", "x in (,a)"),
        ("x notin ( )", "x notin ()"),
        ("x notin (, a)", "x notin (,a)"),
        ("a ", "a"),
        ("a in (x,y,notin, z,in)", "a in (in,notin,x,y,z)"),
        ("notin=in", "notin=in"),
        ("x,y", "x,y"),
        ("x==a", "x==a"),
        ("in in (in)", "in in (in)"),
    ],
)
def test_set_based_parsing_canonical_string(text: str, expected: str) -> None:
    assert str(sel.parse_label_selector(text)) == expected


def test_requirements_sorted_by_key_and_deterministic() -> None:
    a = sel.parse_label_selector("x=a,a=x")
    b = sel.parse_label_selector("a=x,x=a")
    assert str(a) == str(b) == "a=x,x=a"
    assert a == b and hash(a) == hash(b)
    assert [r.key for r in a.requirements] == ["a", "x"]


def test_requirement_objects() -> None:
    s = sel.parse_label_selector("tier in (b,a),app=api,!gone,size>3")
    assert s.requirements == (
        sel.Requirement("app", sel.EQUALS, ("api",)),
        sel.Requirement("gone", sel.DOES_NOT_EXIST, ()),
        sel.Requirement("size", sel.GREATER_THAN, ("3",)),
        sel.Requirement("tier", sel.IN, ("a", "b")),
    )
    assert repr(s) == "LabelSelector('app=api,!gone,size>3,tier in (a,b)')"


def test_requires_exact_match() -> None:
    s = sel.parse_label_selector("app=api,tier in (web),env in (a,b),x!=y")
    assert s.requires_exact_match("app") == "api"
    assert s.requires_exact_match("tier") == "web"
    assert s.requires_exact_match("env") is None
    assert s.requires_exact_match("x") is None
    assert s.requires_exact_match("nope") is None


# --------------------------------------------------------------------------------------------
# Label selectors: matching (TestSelectorMatches / TestRequirementSelectorMatching)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("", {"x": "y"}, True),
        ("x=y", {"x": "y"}, True),
        ("x=y,z=w", {"x": "y", "z": "w"}, True),
        ("x!=y,z!=w", {"x": "z", "z": "a"}, True),
        ("notin=in", {"notin": "in"}, True),
        ("x", {"x": "z"}, True),
        ("!x", {"y": "z"}, True),
        ("x>1", {"x": "2"}, True),
        ("x<1", {"x": "0"}, True),
        ("x=z", {}, False),
        ("x=y", {"x": "z"}, False),
        ("x=y,z=w", {"x": "w", "z": "w"}, False),
        ("x!=y,z!=w", {"x": "z", "z": "w"}, False),
        ("x", {"y": "z"}, False),
        ("!x", {"x": "z"}, False),
        ("x>1", {"x": "0"}, False),
        ("x<1", {"x": "2"}, False),
        ("foo=bar,foobar=bar,baz=blah", {"foo": "bar", "baz": "blah"}, False),
        ("x in (foo),y notin (alpha)", {"x": "foo", "y": "baz"}, True),
        ("x in (foo),y in (alpha)", {"x": "foo", "y": "baz"}, False),
        ("x notin (),y", {"y": ""}, True),
        ("!x,y", {"y": ""}, True),
        ("x notin (),!y", {"y": ""}, False),
        ("x in ()", {"y": "baz"}, False),
        ("x in ()", {"x": ""}, True),
        ("z>1", {"z": "2"}, True),
        ("z>1", {"z": "v2"}, False),
        ("z>1", {}, False),
        ("z<10", {"z": "-5"}, True),
        ("z>1", {"z": "+2"}, True),
        ("x!=y", {}, True),
        ("x notin (a)", {}, True),
        ("env in (prod,dev)", {"env": "dev"}, True),
        ("env in (prod,dev)", {"env": "qa"}, False),
        ("x=", {"x": ""}, True),
        ("x=", {}, False),
    ],
)
def test_matching(text: str, labels: dict[str, str], expected: bool) -> None:
    assert sel.parse_label_selector(text).matches(labels) is expected


def test_matches_none_labels_and_numeric_overflow() -> None:
    assert sel.parse_label_selector("").matches(None)
    assert not sel.parse_label_selector("a").matches(None)
    assert sel.parse_label_selector("!a").matches(None)
    # strconv.ParseInt(v, 10, 64) fails beyond int64: no match either way
    assert not sel.parse_label_selector("x>1").matches({"x": "99999999999999999999"})
    assert not sel.parse_label_selector("x<1").matches({"x": "-99999999999999999999"})


def test_everything_nothing_and_set() -> None:
    assert sel.everything().matches({"x": "y"}) and sel.everything().empty()
    assert not sel.nothing().matches({}) and not sel.nothing().empty()
    assert str(sel.nothing()) == "" and repr(sel.nothing()) == "LabelSelector(nothing)"
    assert sel.everything() != sel.nothing()
    s = sel.selector_from_set({"foo": "bar", "baz": "blah"})
    assert str(s) == "baz=blah,foo=bar"
    assert s.matches({"foo": "bar", "baz": "blah", "x": "1"})
    assert not s.matches({"foo": "bar"})
    assert sel.selector_from_set(None).empty() and sel.selector_from_set({}).matches({"a": "b"})


# --------------------------------------------------------------------------------------------
# Label selectors: exact error texts
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # captured from kubectl against real servers
        ("app:monolith", f'unable to parse requirement: <nil>: Invalid value: "app:monolith": {NAME_PART}'),
        ("*bar", f'unable to parse requirement: <nil>: Invalid value: "*bar": {NAME_PART}'),
        ("app.kubernetes_io/name=x", f'unable to parse requirement: <nil>: Invalid value: "app.kubernetes_io/name": {PREFIX_PART}'),
        (
            "a/b/c ?=? def",
            'unable to parse requirement: <nil>: Invalid value: "a/b/c": a qualified name must consist of '
            "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character "
            "(e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
            "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' "
            "(e.g. 'example.com/MyName')",
        ),
        ("/x", 'unable to parse requirement: <nil>: Invalid value: "/x": prefix part must be non-empty'),
        ("x/", f'unable to parse requirement: <nil>: Invalid value: "x/": name part must be non-empty; {NAME_PART}'),
        ("k" * 64, f'unable to parse requirement: <nil>: Invalid value: "{"k" * 64}": name part must be no more than 63 characters'),
        ("app=a$b", f'unable to parse requirement: values[0][app]: Invalid value: "a$b": {LABEL_VALUE}'),
        ("app=" + "v" * 64, f'unable to parse requirement: values[0][app]: Invalid value: "{"v" * 64}": must be no more than 63 characters'),
        ("app in (ok,-bad)", f'unable to parse requirement: values[0][app]: Invalid value: "-bad": {LABEL_VALUE}'),
        ("x>a", "unable to parse requirement: values[0]: Invalid value: \"a\": for 'Gt', 'Lt' operators, the value must be an integer"),
        ("x<1.5", "unable to parse requirement: values[0]: Invalid value: \"1.5\": for 'Gt', 'Lt' operators, the value must be an integer"),
        ("a b", f"unable to parse requirement: found 'b', expected: {OPERATORS}"),
        ("x nott in (y)", f"unable to parse requirement: found 'nott', expected: {OPERATORS}"),
        ("app=a b", "found 'b', expected: ',' or 'end of string'"),
        ("a in (xyz)b notin ()", "found 'b', expected: ',' or 'end of string'"),
        ("x in a", "unable to parse requirement: found 'a' expected: '('"),
        ("x in (a b)", "unable to parse requirement: found 'b', expected: ',' or ')'"),
        ("x in (a", "unable to parse requirement: found '', expected: ',' or ')'"),
        ("x in (=)", "unable to parse requirement: found '=', expected: ',', ')' or identifier"),
        ("x in (a,=)", "unable to parse requirement: found '=', expected: ',', or identifier"),
        ("x in (a,,)", "unable to parse requirement: found ')', expected: ',', or identifier"),  # sic, upstream too
        ("x=(a)", "unable to parse requirement: found '(', expected: identifier"),
        ("!", "unable to parse requirement: found '', expected: identifier"),
        ("!=a", "found '!=', expected: !, identifier, or 'end of string'"),
        (",a", "found ',', expected: !, identifier, or 'end of string'"),
        ("=a", "found '=', expected: !, identifier, or 'end of string'"),
        ("a,", "found '', expected: identifier after ','"),
        ("a,,b", "found ',', expected: identifier after ','"),
        ("!x=a", "found '=', expected: ',' or 'end of string'"),
        ("x==a==b", "found '==', expected: ',' or 'end of string'"),
    ],
)
def test_error_messages(text: str, message: str) -> None:
    assert bad(text) == message


def test_several_requirement_errors_are_aggregated() -> None:
    """NewRequirement's field errors come back as one `[e1, e2]` aggregate."""
    assert bad("app in (-a,-b)") == (
        f'unable to parse requirement: [values[0][app]: Invalid value: "-a": {LABEL_VALUE}, '
        f'values[1][app]: Invalid value: "-b": {LABEL_VALUE}]'
    )
    assert bad("x<-a") == (
        "unable to parse requirement: [values[0]: Invalid value: \"-a\": for 'Gt', 'Lt' operators, the value "
        f'must be an integer, values[0][x]: Invalid value: "-a": {LABEL_VALUE}]'
    )


def test_non_string_input_is_a_400_not_a_crash() -> None:
    for value in (None, 5, ["a"]):
        with pytest.raises(ApiError) as info:
            sel.parse_label_selector(value)  # type: ignore[arg-type]
        assert info.value.code == 400
        with pytest.raises(ApiError) as info:
            sel.parse_field_selector(value, PODS)  # type: ignore[arg-type]
        assert info.value.code == 400
    assert not sel.parse_label_selector("x>1").matches({"x": 5})  # type: ignore[dict-item]


def test_go_quote_in_messages() -> None:
    """Bad values are printed with Go's %q: UTF-8 kept, control characters escaped."""
    assert bad("app=é").startswith('unable to parse requirement: values[0][app]: Invalid value: "é": ')
    assert sel.go_quote('a"b\\c\n\x01\u00ad\U0001F600') == '"a\\"b\\\\c\\n\\x01\\u00ad\U0001F600"'


# --------------------------------------------------------------------------------------------
# metav1.LabelSelectorAsSelector
# --------------------------------------------------------------------------------------------


def test_label_selector_object_nil_and_empty() -> None:
    nothing = sel.selector_from_label_selector(None)
    assert not nothing.matches({}) and not nothing.matches({"a": "b"}) and not nothing.empty()
    everything = sel.selector_from_label_selector({})
    assert everything.empty() and everything.matches({"a": "b"})
    assert sel.selector_from_label_selector({"matchLabels": {}, "matchExpressions": []}).empty()
    assert sel.selector_from_label_selector({"matchLabels": None, "matchExpressions": None}).empty()


def test_label_selector_object_match_labels_and_expressions() -> None:
    s = sel.selector_from_label_selector(
        {
            "matchLabels": {"app": "api", "tier": "web"},
            "matchExpressions": [
                {"key": "env", "operator": "In", "values": ["prod", "dev"]},
                {"key": "canary", "operator": "DoesNotExist"},
                {"key": "zone", "operator": "NotIn", "values": ["b"]},
                {"key": "team", "operator": "Exists"},
            ],
        }
    )
    assert str(s) == "app=api,!canary,env in (dev,prod),team,tier=web,zone notin (b)"
    base = {"app": "api", "tier": "web", "env": "prod", "team": "x"}
    assert s.matches(base)
    assert s.matches({**base, "zone": "a"})
    assert not s.matches({**base, "zone": "b"})
    assert not s.matches({**base, "canary": "true"})
    assert not s.matches({**base, "env": "qa"})
    assert not s.matches({k: v for k, v in base.items() if k != "team"})
    assert s.requires_exact_match("app") == "api"


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({"matchExpressions": [{"key": "a", "operator": "Foo"}]}, '"Foo" is not a valid label selector operator'),
        ({"matchExpressions": [{"key": "a"}]}, '"" is not a valid label selector operator'),
        (
            {"matchExpressions": [{"key": "a", "operator": "In"}]},
            "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "NotIn", "values": []}]},
            "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
            'values: Invalid value: []string{"x"}: values set must be empty for exists and does not exist',
        ),
        ({"matchLabels": {"bad key": "x"}}, f'key: Invalid value: "bad key": {NAME_PART}'),
        ({"matchLabels": {"app": "-x"}}, f'values[0][app]: Invalid value: "-x": {LABEL_VALUE}'),
        (
            {"matchExpressions": [{"key": "", "operator": "In", "values": ["-x", "ok"]}]},
            f'[key: Invalid value: "": name part must be non-empty; {NAME_PART}, '
            f'values[0][]: Invalid value: "-x": {LABEL_VALUE}]',
        ),
    ],
)
def test_label_selector_object_errors(obj: dict[str, Any], message: str) -> None:
    assert bad_selector_object(obj) == message


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ("app=x", "json: cannot unmarshal string into Go value of type v1.LabelSelector"),
        ({"matchLabels": ["a"]}, "json: cannot unmarshal array into Go struct field LabelSelector.matchLabels of type map[string]string"),
        ({"matchLabels": {"a": 1}}, "json: cannot unmarshal number into Go struct field LabelSelector.matchLabels of type string"),
        ({"matchExpressions": {"a": 1}}, "json: cannot unmarshal object into Go struct field LabelSelector.matchExpressions of type []v1.LabelSelectorRequirement"),
        ({"matchExpressions": ["x"]}, "json: cannot unmarshal string into Go struct field LabelSelector.matchExpressions of type v1.LabelSelectorRequirement"),
        ({"matchExpressions": [{"key": 5, "operator": "Exists"}]}, "json: cannot unmarshal number into Go struct field LabelSelectorRequirement.matchExpressions.key of type string"),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": "x"}]}, "json: cannot unmarshal string into Go struct field LabelSelectorRequirement.matchExpressions.values of type []string"),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": [True]}]}, "json: cannot unmarshal bool into Go struct field LabelSelectorRequirement.matchExpressions.values of type string"),
    ],
)
def test_label_selector_object_wrong_types_are_400(obj: Any, message: str) -> None:
    assert bad_selector_object(obj) == message


# --------------------------------------------------------------------------------------------
# Field selectors
# --------------------------------------------------------------------------------------------


def pod(**kw: Any) -> dict[str, Any]:
    spec = {"nodeName": kw.get("node", ""), "restartPolicy": "Always", "schedulerName": "default-scheduler",
            "serviceAccountName": "default", "hostNetwork": kw.get("host_network", False)}
    status = {"phase": kw.get("phase", "Running"), "podIP": kw.get("ip", "10.42.0.5")}
    return {"metadata": {"name": kw.get("name", "p"), "namespace": kw.get("ns", "default")}, "spec": spec, "status": status}


@pytest.mark.parametrize(
    ("text", "obj", "expected"),
    [
        ("spec.nodeName=k3s-1", pod(node="k3s-1"), True),
        ("spec.nodeName=k3s-1", pod(node="k3s-2"), False),
        ("spec.nodeName=", pod(), True),
        ("spec.nodeName!=", pod(node="k3s-1"), True),
        ("spec.host=k3s-1", pod(node="k3s-1"), True),
        ("status.phase=Running", pod(), True),
        ("status.phase!=Running,status.phase!=Succeeded", pod(phase="Pending"), True),
        ("status.phase!=Running,status.phase!=Succeeded", pod(phase="Running"), False),
        ("spec.hostNetwork=true", pod(host_network=True), True),
        ("spec.hostNetwork=false", pod(), True),
        ("spec.hostNetwork=true", pod(), False),
        ("status.podIP=10.42.0.5", pod(), True),
        ("status.podIPs=10.42.0.5", pod(), False),  # accepted but never set, as upstream
        ("metadata.name==p,metadata.namespace=default", pod(), True),
        ("metadata.namespace=kube-system", pod(), False),
        ("spec.restartPolicy=Always,spec.schedulerName=default-scheduler,spec.serviceAccountName=default", pod(), True),
        ("metadata.name=a\\,b", pod(name="a,b"), True),
        ("metadata.name=a\\=b\\\\c", pod(name="a=b\\c"), True),
        ("", pod(), True),
        (",,", pod(), True),
    ],
)
def test_pod_field_selectors(text: str, obj: dict[str, Any], expected: bool) -> None:
    assert sel.parse_field_selector(text, PODS).matches(obj) is expected


def test_pod_ip_prefers_v1_pod_ip_then_pod_ips() -> None:
    fs = sel.parse_field_selector("status.podIP=10.0.0.2", PODS)
    assert fs.matches({"status": {"podIPs": [{"ip": "10.0.0.2"}]}})
    assert fs.matches({"status": {"podIP": "10.0.0.2", "podIPs": [{"ip": "10.0.0.9"}]}})
    assert not fs.matches({"status": {"podIP": "10.0.0.9", "podIPs": [{"ip": "10.0.0.2"}]}})


def test_event_field_selectors() -> None:
    ev = {
        "metadata": {"name": "web.1", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "web-abc", "namespace": "default", "uid": "u1", "apiVersion": "v1",
                           "resourceVersion": "7", "fieldPath": "spec.containers{web}"},
        "reason": "FailedScheduling",
        "type": "Warning",
        "source": {"component": "default-scheduler"},
        "reportingComponent": "",
    }
    match = lambda text: sel.parse_field_selector(text, EVENTS).matches(ev)  # noqa: E731
    assert match("involvedObject.kind=Pod,involvedObject.name=web-abc")
    assert match("involvedObject.namespace=default,involvedObject.uid=u1,involvedObject.apiVersion=v1")
    assert match("involvedObject.resourceVersion=7,involvedObject.fieldPath=spec.containers{web}")
    assert match("reason=FailedScheduling,type=Warning,source=default-scheduler")
    assert not match("type=Normal")
    assert match("reportingComponent=")
    # source falls back to reportingComponent (ToSelectableFields)
    ev2 = {**ev, "source": {}, "reportingComponent": "kubelet"}
    assert sel.parse_field_selector("source=kubelet,reportingComponent=kubelet", EVENTS).matches(ev2)


def test_other_kind_field_sets() -> None:
    assert sel.parse_field_selector("spec.type=NodePort,spec.clusterIP=10.43.0.9", SERVICES).matches(
        {"metadata": {"name": "s", "namespace": "d"}, "spec": {"type": "NodePort", "clusterIP": "10.43.0.9"}})
    assert sel.parse_field_selector("type=kubernetes.io/tls", SECRETS).matches({"type": "kubernetes.io/tls"})
    assert sel.parse_field_selector("spec.unschedulable=true", NODES).matches({"spec": {"unschedulable": True}})
    assert sel.parse_field_selector("spec.unschedulable=false", NODES).matches({"spec": {}})
    assert sel.parse_field_selector("status.phase=Active,metadata.name=x", NAMESPACES).matches(
        {"metadata": {"name": "x"}, "status": {"phase": "Active"}})
    assert sel.parse_field_selector("metadata.name=api", DAEMONSETS).matches({"metadata": {"name": "api"}})
    assert sel.parse_field_selector("metadata.namespace=default", INGRESSES).matches(
        {"metadata": {"name": "i", "namespace": "default"}})


def test_field_selectors_never_crash_on_odd_stored_objects() -> None:
    fs = sel.parse_field_selector("source=,type=,involvedObject.kind=", EVENTS)
    assert fs.matches({"involvedObject": "x", "metadata": []})
    pods = sel.parse_field_selector("spec.nodeName=,status.podIP=", PODS)
    for odd in ({"spec": "x", "status": 5}, {"status": {"podIPs": ["x"]}}, {"status": {"podIPs": "x"}}, "junk", {}):
        assert pods.matches(odd)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "rt", "message"),
    [
        ("spec.foo=x", PODS, "field label not supported: spec.foo"),
        ("metadata.namespace=x", NODES, "field label not supported: metadata.namespace"),
        ("spec.nodeName=x", NAMESPACES, "field label not supported: spec.nodeName"),
        ("involvedObject.foo=x", EVENTS, "field label not supported: involvedObject.foo"),
        ("status.phase=Running", SERVICES, "field label not supported: status.phase"),
        ("metadata.labels=x", SECRETS, "field label not supported: metadata.labels"),
        ("spec.nodeName=x", DAEMONSETS, '"spec.nodeName" is not a known field selector: only "metadata.name", "metadata.namespace"'),
        ("status.phase=x", CONFIGMAPS, '"status.phase" is not a known field selector: only "metadata.name", "metadata.namespace"'),
        ("metadata.name =x", DAEMONSETS, '"metadata.name " is not a known field selector: only "metadata.name", "metadata.namespace"'),
        ("abc", PODS, "invalid selector: 'abc'; can't understand 'abc'"),
        ("metadata.name=a,abc", PODS, "invalid selector: 'metadata.name=a,abc'; can't understand 'abc'"),
        ("metadata.name=a=b", PODS, "invalid field selector: unescaped character in value: 61"),
        ("metadata.name=a\\b", PODS, "invalid field selector: invalid escape sequence: \\b"),
        ("metadata.name=a\\", PODS, "invalid field selector: invalid escape sequence: \\"),
    ],
)
def test_field_selector_errors(text: str, rt: ResourceType, message: str) -> None:
    assert bad_field(text, rt) == message


def test_field_selector_terms_are_sorted_before_conversion() -> None:
    """Upstream sorts the raw terms, so the first bad term in sort order is the one reported."""
    assert bad_field("zzz=1,aaa=2", PODS) == "field label not supported: aaa"


def test_field_selector_introspection_and_string() -> None:
    fs = sel.parse_field_selector("metadata.name=web", DAEMONSETS)
    assert fs.single_name() == "web" and fs.requires_exact_match("metadata.name") == "web"
    assert str(fs) == "metadata.name=web" and not fs.empty()
    assert repr(fs) == "FieldSelector(daemonsets, 'metadata.name=web')"
    both = sel.parse_field_selector("metadata.name!=web,metadata.namespace==default", DAEMONSETS)
    assert both.single_name() is None and both.requires_exact_match("metadata.name") is None
    assert both.requires_exact_match("metadata.namespace") == "default"
    assert str(both) == "metadata.name!=web,metadata.namespace=default"
    assert sel.parse_field_selector("", PODS).empty()
    escaped = sel.parse_field_selector("metadata.name=a\\,b\\=c\\\\", PODS)
    assert str(escaped) == "metadata.name=a\\,b\\=c\\\\"
    assert escaped == sel.parse_field_selector(str(escaped), PODS)
    assert hash(escaped) == hash(sel.parse_field_selector(str(escaped), PODS))
    assert sel.parse_field_selector("spec.host=n1", PODS).requirements[0].field == "spec.nodeName"


# --------------------------------------------------------------------------------------------
# Property tests
# --------------------------------------------------------------------------------------------

SELECTOR_ALPHABET = "abxyz019-_./=!(),<> \tinot\n"


def parse_or_400(text: str) -> sel.LabelSelector | None:
    try:
        return sel.parse_label_selector(text)
    except ApiError as e:
        assert e.code == 400 and e.reason == "BadRequest" and e.message
        return None


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(), st.text(alphabet=SELECTOR_ALPHABET, max_size=40)))
@example("\x00app")
@example("a\x00b")
@example("x in (in,notin),notin notin (in)")
def test_random_label_selector_text_parses_or_is_a_400(text: str) -> None:
    parsed = parse_or_400(text)
    if parsed is None:
        return
    again = sel.parse_label_selector(str(parsed))
    assert again == parsed
    assert str(again) == str(parsed)


KEY_NAME = st.from_regex(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,10}[A-Za-z0-9])?", fullmatch=True)
KEY_PREFIX = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,6}[a-z0-9])?(\.[a-z0-9]{1,5}){0,2}", fullmatch=True)
KEY = st.one_of(KEY_NAME, st.builds(lambda p, n: f"{p}/{n}", KEY_PREFIX, KEY_NAME))
VALUE = st.one_of(st.just(""), KEY_NAME)
INT_VALUE = st.integers(min_value=0, max_value=10**6).map(str)


@st.composite
def requirement_text(draw: st.DrawFn) -> tuple[str, str, str, tuple[str, ...]]:
    key = draw(KEY)
    op = draw(st.sampled_from(["=", "==", "!=", "in", "notin", "exists", "!", ">", "<"]))
    if op in ("exists", "!"):
        return (("!" if op == "!" else "") + key, key, op, ())
    if op in (">", "<"):
        v = draw(INT_VALUE)
        return (f"{key}{op}{v}", key, op, (v,))
    if op in ("in", "notin"):
        # `(a,,)` is a parse error upstream too, so lists hold names or a lone empty value
        values = draw(st.one_of(st.just([""]), st.lists(KEY_NAME, min_size=1, max_size=4)))
        return (f"{key} {op} ({','.join(values)})", key, op, tuple(values))
    v = draw(VALUE)
    return (f"{key}{op}{v}", key, op, (v,))


def reference_match(op: str, key: str, values: tuple[str, ...], labels: dict[str, str]) -> bool:
    present = key in labels
    if op in ("=", "==", "in"):
        return present and labels[key] in values
    if op in ("!=", "notin"):
        return not present or labels[key] not in values
    if op == "exists":
        return present
    if op == "!":
        return not present
    if not present or not labels[key].lstrip("+-").isdigit():
        return False
    have, want = int(labels[key]), int(values[0])
    return have > want if op == ">" else have < want


@settings(max_examples=300, deadline=None)
@given(st.lists(requirement_text(), min_size=1, max_size=4), st.dictionaries(KEY, st.one_of(VALUE, INT_VALUE), max_size=4))
def test_generated_selectors_parse_roundtrip_and_match_like_the_reference(
    reqs: list[tuple[str, str, str, tuple[str, ...]]], labels: dict[str, str]
) -> None:
    text = ",".join(r[0] for r in reqs)
    parsed = sel.parse_label_selector(text)
    assert sel.parse_label_selector(str(parsed)) == parsed
    expected = all(reference_match(op, key, values, labels) for _, key, op, values in reqs)
    assert parsed.matches(labels) is expected


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([PODS, EVENTS, NODES, DAEMONSETS, SERVICES]),
    st.one_of(st.text(), st.text(alphabet="metadaname.spcNodhs=!,\\ab ", max_size=40)),
)
@example(PODS, "metadata.name=\\")
def test_random_field_selector_text_parses_or_is_a_400(rt: ResourceType, text: str) -> None:
    try:
        fs = sel.parse_field_selector(text, rt)
    except ApiError as e:
        assert e.code == 400 and e.reason == "BadRequest"
        return
    again = sel.parse_field_selector(str(fs), rt)
    assert sorted(map(str, again.requirements)) == sorted(map(str, fs.requirements))
    assert fs.matches({}) in (True, False)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=20), st.sampled_from(["=", "==", "!="]))
def test_any_field_value_roundtrips_through_escaping(value: str, op: str) -> None:
    fs = sel.parse_field_selector("metadata.name" + op + sel._escape_value(value), PODS)
    assert fs.requirements[0].value == value
    assert fs.matches({"metadata": {"name": value}}) is (op != "!=")


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                    max_leaves=10))
@example({"matchLabels": {"a": "b"}, "matchExpressions": [{"key": "c", "operator": "In", "values": ["d"]}]})
def test_selector_from_random_objects_never_crashes(obj: Any) -> None:
    try:
        result = sel.selector_from_label_selector(obj)
    except ApiError as e:
        assert e.code == 400
        return
    assert isinstance(result, sel.LabelSelector)
    result.matches({"a": "b"})
