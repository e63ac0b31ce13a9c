"""The Kubernetes objects of the runbook, rendered from keybuzz.yaml and the templates in assets/.

Templates (assets/manifests/*.yaml) are YAML documents whose `<...>` fields are filled here, in
Python, on the loaded structure: no config value is ever pasted into YAML text, so a hostname or
an env value cannot inject a field. The only text template is the NGINX configuration, and the
three values it receives (app name, port, health path) are checked against strict patterns first.

Secrets: values are read from the SecretSource (keyring / explicit environment variables) and
registered with the redaction registry the moment they are read. With
`include_secret_values=False` (plans, exports, the review screen) every value is replaced by a
placeholder that is not valid base64, so a masked export can never be applied by mistake and write
a placeholder as a password. The pod template carries `keybuzz.io/config-hash`, a fingerprint of
the app's ConfigMap and Secret (never the values), so a rotated secret rolls the pods.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
from functools import cache
from importlib.resources import files
from typing import Any

import yaml

from ..config import DNS_LABEL, App, Config, check
from ..redact import REDACTOR
from .context import PLATFORM_LABELS, SecretSource
from .plan import MASKED

TEMPLATES = "keybuzz_tui.assets.manifests"
CONFIG_HASH = "keybuzz.io/config-hash"
CONTENT_HASH = "keybuzz.io/content-hash"
NOT_SET = "(secret, not set)"
NAME_LABEL = "app.kubernetes.io/name"
# what may reach the NGINX text: nothing that can end a directive or open a block
_NGINX_PATH = re.compile(r"^/[A-Za-z0-9._~/-]*$")
_PLACEHOLDER = re.compile(r"^<[a-z][a-z_.]*[^>]*>|@@[A-Z_]+@@")
# the config fields render depends on; other sections (LB, DNS...) are other steps' business
_RENDER_FIELDS = ("namespace", "apps", "ingress.class_name", "rollout.max_unavailable")


class RenderError(ValueError):
    """The objects cannot be rendered: what is wrong, and what to do about it."""

    def __init__(self, message: str, remediation: str = "") -> None:
        super().__init__(message)
        self.remediation = remediation


class MissingSecret(RenderError):
    """A secret the app needs has no value in the keyring or the environment."""

    def __init__(self, app: str, key: str, generate: bool) -> None:
        self.app, self.key = app, key
        name, env = f"app/{app}/{key}", secret_env_var(app, key)
        if generate:
            how = f"generate it with `keybuzz-tui credentials rotate {name}` (stored in the OS keyring)"
        else:
            how = f"store it with `keybuzz-tui credentials set {name}` (read from stdin or a masked prompt, kept in the OS keyring)"
        super().__init__(
            f"secret {key!r} of app {app!r} is not set (neither in the keyring nor in {env})",
            f"To set it, {how}, or set the environment variable {env} for automation.",
        )


def secret_env_var(app: str, key: str) -> str:
    """The environment variable that provides an app secret (named by keybuzz_tui.credentials)."""
    try:
        from ..credentials import app_secret_name, env_var

        return env_var(app_secret_name(app, key))
    except Exception:  # the credentials module is optional here: same rule, spelled out
        return f"KEYBUZZ_SECRET_{app.upper().replace('-', '_')}_{key.upper()}"


# --- templates -------------------------------------------------------------------------------


@cache
def _template_text(name: str) -> str:
    return files(TEMPLATES).joinpath(name).read_text(encoding="utf-8")


def template(name: str) -> Any:
    """A fresh copy of a YAML template (safe_load: templates are data, never code)."""
    return copy.deepcopy(_load(name))


@cache
def _load(name: str) -> Any:
    return yaml.safe_load(_template_text(name))


def labels(app: App | None = None) -> dict[str, str]:
    out: dict[str, str] = {}
    if app is not None:
        out[NAME_LABEL] = app.name
    out.update(PLATFORM_LABELS)
    return out


def selector(app: App) -> dict[str, str]:
    return {NAME_LABEL: app.name}


def secret_name(app: App) -> str:
    return f"{app.name}-credentials"


def configmap_name(app: App) -> str:
    return f"{app.name}-nginx"


# --- validation ------------------------------------------------------------------------------


def _relevant(path: str) -> bool:
    return any(path == f or path.startswith(f + ".") or path.startswith(f + "[") for f in _RENDER_FIELDS)


def _validate(config: Config) -> None:
    problems = [f"{path}: {msg}" for path, msg in check(config) if _relevant(path)]
    for i, app in enumerate(config.apps):
        if not _NGINX_PATH.match(app.health_path or ""):
            problems.append(f"apps[{i}].health_path: {app.health_path!r} may only hold letters, digits and . _ ~ / -")
    if problems:
        raise RenderError(
            "keybuzz.yaml cannot be rendered into Kubernetes objects:\n  " + "\n  ".join(problems),
            "Fix these fields in keybuzz.yaml (`keybuzz-tui config init` writes a commented default).",
        )


# --- secrets ---------------------------------------------------------------------------------


def secret_values(app: App, secrets: SecretSource, *, required: bool) -> dict[str, str | None]:
    """key -> value for every secret key of the app (None when unset and not required)."""
    out: dict[str, str | None] = {}
    for sk in app.secrets:
        value = secrets.app_secret(app.name, sk.key)
        if value is None or value == "":
            if required:
                raise MissingSecret(app.name, sk.key, sk.generate)
            out[sk.key] = None
            continue
        REDACTOR.add(value)
        out[sk.key] = value
    return out


def _fingerprint(data: Any) -> str:
    """A short sha256 of canonical JSON: tells versions apart, reveals nothing readable."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def config_hash(configmap_data: dict[str, str] | None, values: dict[str, str | None]) -> str:
    return _fingerprint({"configmap": configmap_data or {}, "secret": values})


# --- the objects -----------------------------------------------------------------------------


def namespace(config: Config) -> dict[str, Any]:
    obj = template("namespace.yaml")
    obj["metadata"]["name"] = config.namespace
    obj["metadata"]["labels"] = dict(PLATFORM_LABELS)
    return obj  # type: ignore[no-any-return]


def secret(config: Config, app: App, values: dict[str, str | None], *, include_secret_values: bool) -> dict[str, Any]:
    obj = template("secret.yaml")
    meta = obj["metadata"]
    meta["name"], meta["namespace"], meta["labels"] = secret_name(app), config.namespace, labels(app)
    meta["annotations"] = {CONTENT_HASH: _fingerprint(values)}
    data: dict[str, str] = {}
    for key, value in values.items():
        if not include_secret_values:
            data[key] = MASKED if value is not None else NOT_SET
        else:
            data[key] = base64.b64encode((value or "").encode()).decode()
    obj["data"] = data
    return obj  # type: ignore[no-any-return]


def nginx_config(app: App) -> str:
    if not DNS_LABEL.match(app.name) or not _NGINX_PATH.match(app.health_path) or not 1 <= int(app.port) <= 65535:
        raise RenderError(f"app {app.name!r}: name, port or health_path not safe for the NGINX configuration")
    text = _template_text("nginx.conf.tmpl")
    text = text.replace("@@APP@@", app.name).replace("@@PORT@@", str(int(app.port))).replace("@@HEALTH_PATH@@", app.health_path)
    return text


def configmap(config: Config, app: App) -> dict[str, Any]:
    obj = template("configmap.yaml")
    meta = obj["metadata"]
    meta["name"], meta["namespace"], meta["labels"] = configmap_name(app), config.namespace, labels(app)
    obj["data"] = {"default.conf": nginx_config(app)}
    return obj  # type: ignore[no-any-return]


def daemonset(config: Config, app: App, chash: str) -> dict[str, Any]:
    obj = template("daemonset.yaml")
    meta = obj["metadata"]
    meta["name"], meta["namespace"], meta["labels"] = app.name, config.namespace, labels(app)
    spec = obj["spec"]
    spec["selector"]["matchLabels"] = selector(app)
    spec["updateStrategy"]["rollingUpdate"]["maxUnavailable"] = int(config.rollout.max_unavailable)
    spec["updateStrategy"]["rollingUpdate"]["maxSurge"] = 0
    tmeta = spec["template"]["metadata"]
    tmeta["labels"] = labels(app)
    tmeta["annotations"] = {CONFIG_HASH: chash}
    pod = spec["template"]["spec"]
    (c,) = pod["containers"]
    c["name"], c["image"] = app.name, app.image
    (port,) = c["ports"]
    port["containerPort"] = port["hostPort"] = int(app.port)
    c["env"] = [{"name": k, "value": str(v)} for k, v in sorted(app.env.items())]
    if app.secrets:
        c["envFrom"] = [{"secretRef": {"name": secret_name(app)}}]
    else:
        c.pop("envFrom")
    for probe in ("readinessProbe", "livenessProbe"):
        c[probe]["httpGet"]["path"] = app.health_path
        c[probe]["httpGet"]["port"] = int(app.port)
    if app.nginx_config:
        pod["volumes"][0]["configMap"]["name"] = configmap_name(app)
    else:
        pod.pop("volumes")
        c.pop("volumeMounts")
    if not c["env"]:
        c.pop("env")
    return obj  # type: ignore[no-any-return]


def service(config: Config, app: App) -> dict[str, Any]:
    obj = template("service.yaml")
    meta = obj["metadata"]
    meta["name"], meta["namespace"], meta["labels"] = app.name, config.namespace, labels(app)
    obj["spec"]["selector"] = selector(app)
    (p,) = obj["spec"]["ports"]
    p["port"] = p["targetPort"] = int(app.port)
    p["nodePort"] = int(app.node_port)
    return obj  # type: ignore[no-any-return]


def ingress(config: Config) -> dict[str, Any] | None:
    apps = [a for a in config.apps if a.host]
    if not apps:
        return None
    obj = template("ingress.yaml")
    meta = obj["metadata"]
    meta["namespace"], meta["labels"] = config.namespace, labels()
    obj["spec"]["ingressClassName"] = config.ingress.class_name
    rules = []
    for app in apps:
        rule = template("ingress-rule.yaml")
        rule["host"] = app.host
        (path,) = rule["http"]["paths"]
        path["backend"]["service"]["name"] = app.name
        path["backend"]["service"]["port"]["number"] = int(app.port)
        rules.append(rule)
    obj["spec"]["rules"] = rules
    return obj  # type: ignore[no-any-return]


def _leftovers(obj: Any, path: str = "") -> list[str]:
    """Template placeholders that were not filled (a template edited without the code)."""
    if path.startswith(".data") or ".env[" in path:
        return []  # values from the config and the keyring, not template fields
    if isinstance(obj, dict):
        return [p for k, v in obj.items() for p in _leftovers(v, f"{path}.{k}")]
    if isinstance(obj, list):
        return [p for i, v in enumerate(obj) for p in _leftovers(v, f"{path}[{i}]")]
    if isinstance(obj, str) and _PLACEHOLDER.search(obj):
        return [path]
    return []


def render(config: Config, secrets: SecretSource, *, include_secret_values: bool) -> list[dict[str, Any]]:
    """Every object of the platform, in apply order (Helm's install order: Namespace, Secrets,
    ConfigMaps, Services, DaemonSets, Ingress): the Services come before the DaemonSets so a
    NodePort already allocated elsewhere stops an apply before any pod starts."""
    _validate(config)
    per_app = []
    for app in config.apps:
        values = secret_values(app, secrets, required=include_secret_values)
        cm = configmap(config, app) if app.nginx_config else None
        chash = config_hash(cm["data"] if cm else None, values)
        per_app.append((app, values, cm, chash))
    objects: list[dict[str, Any]] = [namespace(config)]
    objects += [secret(config, app, values, include_secret_values=include_secret_values) for app, values, _cm, _h in per_app if app.secrets]
    objects += [cm for _a, _v, cm, _h in per_app if cm is not None]
    objects += [service(config, app) for app, *_ in per_app]
    objects += [daemonset(config, app, chash) for app, _v, _cm, chash in per_app]
    ing = ingress(config)
    if ing is not None:
        objects.append(ing)
    for obj in objects:
        left = _leftovers(obj)
        if left:
            raise RenderError(f"template placeholders left unfilled in {obj['kind']} {obj['metadata'].get('name')}: {', '.join(left)}")
    return objects


def mask(obj: dict[str, Any]) -> dict[str, Any]:
    """A copy safe to show and to keep in a plan: Secret values (data, stringData, a client-side
    last-applied copy) masked. Other kinds are returned as they are: they carry no secret by
    construction, and a plan applies exactly what it showed."""
    out = copy.deepcopy(obj)
    if out.get("kind") == "Secret":
        for field in ("data", "stringData"):
            if isinstance(out.get(field), dict):
                out[field] = {k: MASKED for k in out[field]}
        ann = (out.get("metadata") or {}).get("annotations") or {}
        if "kubectl.kubernetes.io/last-applied-configuration" in ann:
            ann["kubectl.kubernetes.io/last-applied-configuration"] = MASKED
    return out


EXPORT_HEADER = (
    "# KeyBuzz platform objects rendered by keybuzz-tui (server-side apply, field manager keybuzz-tui).\n"
    "# {note}\n"
)


def export(config: Config, secrets: SecretSource, *, reveal: bool = False) -> str:
    """The multi-document YAML of `render` for "export the manifests".

    Masked by default: a masked Secret value is not base64, so applying the file fails loudly
    instead of storing a placeholder. `reveal=True` is the explicit request for real values.
    """
    objects = render(config, secrets, include_secret_values=reveal)
    note = (
        "Secret values INCLUDED (reveal): keep this file as safe as the keyring."
        if reveal
        else "Secret values are masked; export with reveal to include them (keep that file secret)."
    )
    body = yaml.dump_all(objects, Dumper=_ExportDumper, sort_keys=False, default_flow_style=False, width=120)
    return EXPORT_HEADER.format(note=note) + body


class _ExportDumper(yaml.SafeDumper):
    """Multi-line strings (the NGINX configuration) as readable literal blocks."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value and not any(line != line.rstrip() for line in value.split("\n")):
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_ExportDumper.add_representer(str, _str)
