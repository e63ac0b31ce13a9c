"""keybuzz.yaml: the wizard's answers, everything but secrets, as typed dataclasses.

Loaded and saved with PyYAML. Errors name the file, the line and the field, and say what is
allowed, because this file is what a recovery at 3 a.m. starts from. Defaults reproduce the
runbook: API 8080/30080, Front 3000/30000, ingress-nginx 31695/32720, an lb11 Load Balancer on
80/443 -> 31695 with an HTTP /healthz check, A records for both hostnames.
"""

from __future__ import annotations

import dataclasses
import datetime
import difflib
import ipaddress
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

import yaml

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)+$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
LABEL_SELECTOR = re.compile(r"^[A-Za-z0-9_./-]+(=|==|!=)[A-Za-z0-9_.-]*(,[A-Za-z0-9_./-]+(=|==|!=)[A-Za-z0-9_.-]*)*$|^[A-Za-z0-9_./-]+$")
IMAGE = re.compile(r"^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*(:[\w][\w.-]{0,127})?(@sha256:[a-f0-9]{64})?$")


class ConfigError(ValueError):
    """One or more problems in keybuzz.yaml, each with its field path and line."""

    def __init__(self, problems: list[tuple[str, int | None, str]], source: str = "keybuzz.yaml") -> None:
        self.problems = problems
        self.source = source
        super().__init__(self.render())

    def render(self) -> str:
        lines = []
        for path, line, msg in self.problems:
            where = f"{self.source}:{line}" if line else self.source
            lines.append(f"{where}: {path}: {msg}" if path else f"{where}: {msg}")
        return "\n".join(lines)


# --- the model -------------------------------------------------------------------------------


@dataclass
class Cluster:
    kubeconfig: str = "~/.kube/config"
    context: str = ""  # empty: the kubeconfig's current context
    request_timeout: float = 15.0
    workers: int = 5  # how many workers the platform expects (the doctor flags fewer Ready ones)


@dataclass
class SecretKey:
    """A key of an app's Kubernetes Secret; the value lives only in the keyring."""

    key: str = ""
    generate: bool = False  # generated with `secrets` when missing
    length: int = 48
    description: str = ""


@dataclass
class App:
    name: str = ""
    image: str = ""
    port: int = 0  # containerPort == hostPort (hostNetwork)
    node_port: int = 0
    health_path: str = "/healthz"
    host: str = ""  # the public hostname the Ingress routes to this app
    env: dict[str, str] = field(default_factory=dict)
    secrets: list[SecretKey] = field(default_factory=list)
    nginx_config: bool = True  # an NGINX ConfigMap listening on `port`, as the runbook's pods have


def default_apps() -> list[App]:
    return [
        App(
            name="keybuzz-api",
            image="ghcr.io/keybuzz/api:1.4.2",
            port=8080,
            node_port=30080,
            host="platform-api.keybuzz.io",
            env={"LOG_LEVEL": "info", "PUBLIC_URL": "https://platform-api.keybuzz.io"},
            secrets=[
                SecretKey("DATABASE_URL", description="PostgreSQL connection string"),
                SecretKey("JWT_SECRET", generate=True, length=64),
                SecretKey("API_ENCRYPTION_KEY", generate=True, length=32),
            ],
        ),
        App(
            name="keybuzz-front",
            image="ghcr.io/keybuzz/front:1.4.2",
            port=3000,
            node_port=30000,
            host="platform.keybuzz.io",
            env={"API_URL": "https://platform-api.keybuzz.io"},
            secrets=[SecretKey("SESSION_SECRET", generate=True, length=48)],
        ),
    ]


@dataclass
class Ingress:
    namespace: str = "ingress-nginx"
    service: str = "ingress-nginx-controller"
    class_name: str = "nginx"
    http_node_port: int = 31695
    https_node_port: int = 32720


@dataclass
class HealthCheck:
    protocol: str = "http"
    port: int = 31695
    path: str = "/healthz"
    interval: int = 15
    timeout: int = 10
    retries: int = 3
    status_codes: list[str] = field(default_factory=lambda: ["2??", "3??"])


@dataclass
class LBService:
    protocol: str = "http"
    listen_port: int = 80
    destination_port: int = 31695
    redirect_http: bool = False


def default_lb_services() -> list[LBService]:
    return [LBService("http", 80, 31695), LBService("https", 443, 31695)]


@dataclass
class Certificate:
    type: str = "managed"  # managed | uploaded | none
    name: str = "keybuzz-platform"
    domains: list[str] = field(default_factory=lambda: ["platform.keybuzz.io", "platform-api.keybuzz.io"])
    cert_file: str = ""  # uploaded: the PEM chain file (public); the key is read from the keyring


@dataclass
class LoadBalancer:
    name: str = "keybuzz-lb"
    type: str = "lb11"
    location: str = "fsn1"
    network_zone: str = ""  # alternative to location
    network: str = "keybuzz-net"
    target_selector: str = "role=worker"
    target_mode: str = "label_selector"  # label_selector (one target, follows the labels) | servers (one per server)
    use_private_ip: bool = True
    algorithm: str = "round_robin"
    services: list[LBService] = field(default_factory=default_lb_services)
    health_check: HealthCheck = field(default_factory=HealthCheck)
    certificate: Certificate = field(default_factory=Certificate)
    labels: dict[str, str] = field(default_factory=lambda: {"app": "keybuzz", "managed-by": "keybuzz-tui"})


@dataclass
class DNS:
    mode: str = "hetzner"  # hetzner | manual
    zone: str = "keybuzz.io"
    ttl: int = 300
    ipv6: bool = True
    resolver: str = ""  # host[:port] of a resolver to check answers with; empty: the system's


@dataclass
class Firewall:
    mode: str = "check"  # check | manage | off
    name: str = "keybuzz-workers"
    allow_from: list[str] = field(default_factory=lambda: ["10.0.0.0/16"])


@dataclass
class Rollout:
    timeout: int = 300
    max_unavailable: int = 1


@dataclass
class Config:
    profile: str = "production"
    cluster: Cluster = field(default_factory=Cluster)
    namespace: str = "keybuzz"
    apps: list[App] = field(default_factory=default_apps)
    ingress: Ingress = field(default_factory=Ingress)
    load_balancer: LoadBalancer = field(default_factory=LoadBalancer)
    dns: DNS = field(default_factory=DNS)
    firewall: Firewall = field(default_factory=Firewall)
    rollout: Rollout = field(default_factory=Rollout)

    def app(self, name: str) -> App:
        for a in self.apps:
            if a.name == name:
                return a
        raise KeyError(name)

    def hosts(self) -> dict[str, str]:
        """public hostname -> app name"""
        return {a.host: a.name for a in self.apps if a.host}

    def relative_record(self, host: str) -> str:
        zone = self.dns.zone.rstrip(".")
        if host == zone:
            return "@"
        return host[: -len(zone) - 1] if host.endswith("." + zone) else host


# --- loading with line numbers ----------------------------------------------------------------

_MERGE_TAG = "tag:yaml.org,2002:merge"


class _LineLoader(yaml.SafeLoader):
    """Keeps every mapping's key lines and every list item's line, so errors can point at the
    line of the field. Anything PyYAML cannot build (a date like 2020-13-45, `!!int abc`) becomes a
    marked error instead of a bare ValueError."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (yaml.YAMLError, RecursionError):
            raise
        except (ValueError, TypeError, OverflowError, ArithmeticError) as e:
            tag = str(node.tag).rsplit(":", 1)[-1]
            shown = f"{_short(node.value)!r} " if isinstance(node.value, str) else ""
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read {shown}as a {tag} ({e}); quote it if you meant text", node.start_mark
            ) from None


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode, deep: bool = False) -> dict[str, Any]:
    explicit = sum(1 for k, _ in node.value if k.tag != _MERGE_TAG)
    loader.flatten_mapping(node)  # YAML merge keys (<<: *defaults), as SafeLoader supports them
    merged = len(node.value) - explicit  # flatten_mapping puts the merged entries first
    mapping = _Lined()
    mapping.lines = {}
    mapping.line = node.start_mark.line + 1
    seen: set[Any] = set()
    for i, (key_node, value_node) in enumerate(node.value):
        key = loader.construct_object(key_node, deep=deep)
        if not isinstance(key, (str, int, float, bool)) or key is None:
            raise yaml.constructor.ConstructorError(None, None, f"unsupported key {_what(key)}", key_node.start_mark)
        if i >= merged:  # explicit keys override merged ones; two explicit ones are a mistake
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        mapping[key] = loader.construct_object(value_node, deep=deep)
        mapping.lines[key] = key_node.start_mark.line + 1
    return mapping


class _Lined(dict):  # type: ignore[type-arg]
    lines: dict[Any, int]
    line: int


class _LinedList(list):  # type: ignore[type-arg]
    line: int
    lines: list[int]


def _construct_seq(loader: _LineLoader, node: yaml.SequenceNode, deep: bool = False) -> list[Any]:
    out = _LinedList(loader.construct_object(n, deep=deep) for n in node.value)
    out.line = node.start_mark.line + 1
    out.lines = [n.start_mark.line + 1 for n in node.value]
    return out


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_seq)

_TYPE_WORDS = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
_QUOTE_HINT = " (quote it if you meant text)"


def _placeholder(tp: Any) -> Any:
    """A value of the right type standing in for one that could not be read (its error is
    already reported), so that the semantic checks never meet a None where a str should be."""
    if dataclasses.is_dataclass(tp):
        return tp()  # type: ignore[operator]
    origin = get_origin(tp)
    if origin is list:
        return []
    if origin is dict:
        return {}
    return {str: "", int: 0, float: 0.0, bool: False}.get(tp)


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[tuple[str, int | None, str]] = []

    def err(self, path: str, line: int | None, msg: str) -> None:
        self.problems.append((path, line, msg))

    def parse(self, cls: type, data: Any, path: str, line: int | None) -> Any:
        default = cls()
        if data is None:
            return default
        if not isinstance(data, dict):
            self.err(path, line, f"expected a mapping (field: value lines), got {_what(data)}")
            return default
        hints = get_type_hints(cls)
        names = [f.name for f in dataclasses.fields(cls)]
        lines = getattr(data, "lines", {})
        for key in data:
            if key not in names:
                close = difflib.get_close_matches(str(key), names, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                allowed = ", ".join(sorted(names))
                self.err(_join(path, str(key)), lines.get(key, line), f"unknown field; {hint}allowed here: {allowed}")
        values = {}
        for f in dataclasses.fields(cls):
            if f.name not in data:
                continue
            values[f.name] = self.value(hints[f.name], data[f.name], _join(path, f.name), lines.get(f.name, line), getattr(default, f.name))
        return dataclasses.replace(default, **values)

    def value(self, tp: Any, v: Any, path: str, line: int | None, default: Any) -> Any:
        origin = get_origin(tp)
        if dataclasses.is_dataclass(tp):
            return self.parse(tp, v, path, line)  # type: ignore[arg-type]
        if origin is list:
            (item_tp,) = get_args(tp)
            if v is None:
                return []
            if not isinstance(v, list):
                self.err(path, line, f"expected a list, got {_what(v)}")
                return default
            out = []
            item_lines = getattr(v, "lines", None) or []
            for i, item in enumerate(v):
                item_line = (item_lines[i] if i < len(item_lines) else None) or getattr(v, "line", line)
                out.append(self.value(item_tp, item, f"{path}[{i}]", item_line, _placeholder(item_tp)))
            return out
        if origin is dict:
            if v is None:
                return {}
            if not isinstance(v, dict):
                self.err(path, line, f"expected a mapping, got {_what(v)}")
                return default
            out_d = {}
            lines = getattr(v, "lines", {})
            for k, x in v.items():
                if isinstance(x, bool):
                    out_d[str(k)] = "true" if x else "false"
                elif isinstance(x, (str, int, float)):
                    out_d[str(k)] = str(x)
                else:
                    self.err(_join(path, str(k)), lines.get(k, line), f"expected a string value, got {_what(x)}")
            return out_d
        if tp is bool:
            if not isinstance(v, bool):
                self.err(path, line, f"expected true or false, got {_what(v)}")
                return default
            return v
        if tp is int:
            if isinstance(v, bool) or not isinstance(v, int):
                self.err(path, line, f"expected an integer, got {_what(v)}")
                return default
            return v
        if tp is float:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                self.err(path, line, f"expected a number, got {_what(v)}")
                return default
            if not math.isfinite(v):
                self.err(path, line, f"expected a finite number, got {v}")
                return default
            return float(v)
        if tp is str:
            if isinstance(v, bool) or not isinstance(v, (str, int, float)):
                hint = _QUOTE_HINT if isinstance(v, (bool, datetime.date)) else ""
                self.err(path, line, f"expected a string, got {_what(v)}{hint}")
                return default
            return str(v)
        return v


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _what(v: Any) -> str:
    if v is None:
        return "nothing (null)"
    if isinstance(v, bool):
        return f"{'true' if v else 'false'} (a boolean)"
    if isinstance(v, dict):
        return "a mapping"
    if isinstance(v, (list, tuple)):
        return "a list"
    if isinstance(v, int):
        return f"{v} (an integer)"
    if isinstance(v, float):
        return f"{v} (a number)"
    if isinstance(v, str):
        return f"{_short(v)!r} (a string)"
    if isinstance(v, datetime.datetime):
        return f"{v.isoformat()} (a timestamp)"
    if isinstance(v, datetime.date):
        return f"{v.isoformat()} (a date)"
    if isinstance(v, (bytes, bytearray)):
        return "binary data (!!binary)"
    if isinstance(v, (set, frozenset)):
        return "a set (!!set)"
    return f"a {type(v).__name__}"


def _short(s: str, n: int = 60) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def _yaml_error(e: yaml.YAMLError, text: str) -> tuple[int | None, str]:
    if isinstance(e, yaml.MarkedYAMLError):
        mark = e.problem_mark or e.context_mark
        where = f" ({e.context})" if e.context and e.problem else ""
        return (mark.line + 1 if mark else None), f"not valid YAML: {e.problem or e}{where}"
    if isinstance(e, yaml.reader.ReaderError):
        line = text.count("\n", 0, max(0, e.position)) + 1
        c = e.character
        shown = f"U+{c:04X}" if isinstance(c, int) else f"{c!r}"
        return line, f"not valid YAML: character {shown} is not allowed ({e.reason})"
    return None, f"not valid YAML: {e}"


def loads(text: str, source: str = "keybuzz.yaml") -> Config:
    """Parse keybuzz.yaml. Raises ConfigError (never anything else) listing every problem."""
    if not isinstance(text, str):
        raise ConfigError([("", None, f"expected YAML text, got {type(text).__name__}")], source)
    loader: _LineLoader | None = None
    try:
        loader = _LineLoader(text)
        data = loader.get_single_data()
    except yaml.YAMLError as e:
        line, msg = _yaml_error(e, text)
        raise ConfigError([("", line or 1, msg)], source) from None
    except RecursionError:
        line = loader.get_mark().line + 1 if loader is not None else 1
        raise ConfigError([("", line, "not valid here: the YAML is nested far too deeply")], source) from None
    finally:
        if loader is not None:
            loader.dispose()
    p = _Parser(source)
    if data is not None and not isinstance(data, dict):
        raise ConfigError([("", getattr(data, "line", 1), f"the top level must be a mapping (field: value lines), got {_what(data)}")], source)
    cfg = p.parse(Config, data or {}, "", 1)
    broken = [path for path, _, _ in p.problems]
    for path, msg in check(cfg):
        if any(_under(path, b) for b in broken):
            continue  # the value was unreadable: its type error says it better
        p.err(path, _line_for(data or {}, path), msg)
    if p.problems:
        raise ConfigError(p.problems, source)
    return cfg


def load(path: str | Path) -> Config:
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([("", None, f"no such file; create one with `keybuzz-tui config init --config {path}`")], str(path)) from None
    except IsADirectoryError:
        raise ConfigError([("", None, "is a directory, not a keybuzz.yaml file")], str(path)) from None
    except UnicodeDecodeError as e:
        raise ConfigError([("", None, f"not UTF-8 text (byte {e.start}): is this the right file?")], str(path)) from None
    except OSError as e:
        raise ConfigError([("", None, f"cannot read: {e.strerror}")], str(path)) from None
    return loads(text, str(path))


def _under(path: str, prefix: str) -> bool:
    if not prefix:
        return False
    return path == prefix or path.startswith(prefix + ".") or path.startswith(prefix + "[")


def _line_for(data: Any, path: str) -> int | None:
    """The line of the deepest existing node along `path` (walks the data, never indexes it all:
    aliases can make a document exponentially large when expanded)."""
    line: int | None = getattr(data, "line", None)
    node, rest = data, path
    while rest and node is not None:
        if rest.startswith("["):
            close = rest.find("]")
            try:
                i = int(rest[1:close])
            except ValueError:
                return line
            if not isinstance(node, list) or not 0 <= i < len(node):
                return line
            item_lines = getattr(node, "lines", None) or []
            line = (item_lines[i] if i < len(item_lines) else None) or line
            node, rest = node[i], rest[close + 1 :].removeprefix(".")
            continue
        if not isinstance(node, dict):
            return line
        key = None
        for k in node:  # the longest key that prefixes the rest (keys may contain dots)
            ks = str(k)
            if (rest == ks or rest.startswith(ks + ".") or rest.startswith(ks + "[")) and (key is None or len(ks) > len(str(key))):
                key = k
        if key is None:
            return line
        line = getattr(node, "lines", {}).get(key) or line
        node, rest = node[key], rest[len(str(key)) :].removeprefix(".")
    return line


# --- semantic checks -------------------------------------------------------------------------

LOCATIONS = ("fsn1", "nbg1", "hel1", "ash", "hil", "sin")
NETWORK_ZONES = ("eu-central", "us-east", "us-west", "ap-southeast")
LB_TYPES = ("lb11", "lb21", "lb31")
LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
STATUS_CODE = re.compile(r"^[1-5][0-9?]{2}$")
_HOSTNAME_RULE = "a lowercase DNS name of two or more labels (letters, digits, '-'), e.g. platform.keybuzz.io"


def _port(path: str, v: int, out: list[tuple[str, str]], lo: int = 1, hi: int = 65535) -> None:
    if not lo <= v <= hi:
        out.append((path, f"{v} is not a valid port: allowed {lo}-{hi}"))


def _hostname_problem(name: str) -> str | None:
    if HOSTNAME.match(name or ""):
        return None
    if not name:
        return f"required: {_HOSTNAME_RULE}"
    if name.endswith(".") and HOSTNAME.match(name[:-1]):
        return f"{name!r}: drop the trailing dot ({name[:-1]})"
    if name != name.lower() and HOSTNAME.match(name.lower()):
        return f"{name!r}: DNS names are written in lowercase here ({name.lower()})"
    return f"{name!r} is not a valid hostname: {_HOSTNAME_RULE}"


def _label_problem(key: str, value: str) -> str | None:
    """Hetzner label rules (the same as Kubernetes'): [prefix/]name, values of 63 characters."""
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not HOSTNAME.match(prefix) and not DNS_LABEL.match(prefix)):
        return f"label key {key!r}: the prefix before '/' must be a DNS subdomain"
    if prefix.startswith("hetzner.cloud"):
        return f"label key {key!r}: the hetzner.cloud/ prefix is reserved"
    if not LABEL_NAME.match(name):
        return f"label key {key!r}: at most 63 characters, letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
    if value and not LABEL_NAME.match(value):
        return f"label value {value!r}: empty, or at most 63 characters of letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
    return None


def _covers(domain: str, host: str) -> bool:
    if domain.startswith("*."):
        return host.endswith(domain[1:]) and "." not in host[: -len(domain) + 1]
    return domain == host


def _host_port_problem(value: str) -> str | None:
    """`host[:port]` or `[v6]:port` of a DNS resolver."""
    host, port = value, ""
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest.removeprefix(":")
    elif value.count(":") == 1:
        host, _, port = value.partition(":")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not HOSTNAME.match(host):
            return f"{value!r}: expected host[:port], e.g. 1.1.1.1 or 127.0.0.53:53"
    if port and (not port.isdigit() or not 1 <= int(port) <= 65535):
        return f"{value!r}: the port must be 1-65535"
    return None


def check(cfg: Config) -> list[tuple[str, str]]:  # noqa: C901 - one rule after the other reads best
    """Rules beyond types; (field path, message saying what is allowed)."""
    out: list[tuple[str, str]] = []
    if not DNS_LABEL.match(cfg.profile or "") or len(cfg.profile) > 63:
        out.append(("profile", f"{cfg.profile!r} must be a DNS label (lowercase letters, digits, '-'; at most 63)"))
    if not DNS_LABEL.match(cfg.namespace or "") or len(cfg.namespace) > 63:
        out.append(("namespace", f"{cfg.namespace!r} is not a valid namespace name: lowercase letters, digits and '-', at most 63"))
    if not cfg.cluster.kubeconfig:
        out.append(("cluster.kubeconfig", "required: the kubeconfig file (default ~/.kube/config)"))
    if not 0 < cfg.cluster.request_timeout <= 600:
        out.append(("cluster.request_timeout", f"{cfg.cluster.request_timeout}: allowed more than 0 and at most 600 seconds"))
    if not cfg.apps:
        out.append(("apps", "at least one app is required"))
    names: dict[str, int] = {}
    hosts: dict[str, int] = {}
    ports: dict[int, str] = {}
    for i, a in enumerate(cfg.apps):
        p = f"apps[{i}]"
        if not DNS_LABEL.match(a.name or "") or len(a.name) > 52:
            out.append((f"{p}.name", f"{a.name!r} must be a DNS label of at most 52 characters (it names a DaemonSet)"))
        elif a.name in names:
            out.append((f"{p}.name", f"duplicate app name {a.name!r} (also apps[{names[a.name]}])"))
        names.setdefault(a.name, i)
        if not a.image:
            out.append((f"{p}.image", "required: the container image reference, e.g. ghcr.io/keybuzz/api:1.4.2"))
        elif not IMAGE.match(a.image):
            out.append((f"{p}.image", f"{a.image!r} is not a valid image reference (e.g. ghcr.io/keybuzz/api:1.4.2)"))
        _port(f"{p}.port", a.port, out)
        lo, hi = 30000, 32767
        _port(f"{p}.node_port", a.node_port, out, lo, hi)
        for port, what in ((a.port, "port"), (a.node_port, "node_port")):
            if port in ports:
                out.append((f"{p}.{what}", f"{port} is already used by {ports[port]}"))
            ports.setdefault(port, f"apps[{i}].{what}")
        if not a.health_path.startswith("/"):
            out.append((f"{p}.health_path", f"{a.health_path!r} must start with /"))
        if a.host:
            problem = _hostname_problem(a.host)
            if problem:
                out.append((f"{p}.host", problem))
            elif a.host in hosts:
                out.append((f"{p}.host", f"{a.host!r} is already routed to apps[{hosts[a.host]}]"))
            hosts.setdefault(a.host, i)
        secret_keys = {s.key: j for j, s in enumerate(a.secrets)}
        for k in a.env:
            if not ENV_NAME.match(k):
                out.append((f"{p}.env.{k}", "not a valid environment variable name (letters, digits, _; not starting with a digit)"))
            elif k in secret_keys:
                out.append((f"{p}.env.{k}", f"also a secret key of this app ({p}.secrets[{secret_keys[k]}]): a variable is either plain or secret"))
        seen: set[str] = set()
        for j, s in enumerate(a.secrets):
            if not ENV_NAME.match(s.key or ""):
                out.append((f"{p}.secrets[{j}].key", f"{s.key!r} is not a valid key (letters, digits, _; not starting with a digit)"))
            if s.key in seen:
                out.append((f"{p}.secrets[{j}].key", f"duplicate secret key {s.key!r}"))
            seen.add(s.key)
            if s.generate and not 16 <= s.length <= 256:
                out.append((f"{p}.secrets[{j}].length", f"{s.length}: generated secrets are 16 to 256 characters long"))
    ing = cfg.ingress
    for name, v in (("http_node_port", ing.http_node_port), ("https_node_port", ing.https_node_port)):
        _port(f"ingress.{name}", v, out, 30000, 32767)
        if v in ports:
            out.append((f"ingress.{name}", f"{v} is already used by {ports[v]}"))
        ports.setdefault(v, f"ingress.{name}")
    if not DNS_LABEL.match(ing.namespace or "") or len(ing.namespace) > 63:
        out.append(("ingress.namespace", f"{ing.namespace!r} is not a valid namespace name: lowercase letters, digits and '-'"))
    if not DNS_LABEL.match(ing.service or "") or len(ing.service) > 63:
        out.append(("ingress.service", f"{ing.service!r} is not a valid Service name: lowercase letters, digits and '-'"))
    if not ing.class_name:
        out.append(("ingress.class_name", "required: the IngressClass name (the runbook's is nginx)"))
    lb = cfg.load_balancer
    if not DNS_LABEL.match(lb.name or "") or len(lb.name) > 63:
        out.append(("load_balancer.name", f"{lb.name!r}: lowercase letters, digits and '-', at most 63"))
    if lb.type not in LB_TYPES:
        out.append(("load_balancer.type", f"{lb.type!r}: allowed {', '.join(LB_TYPES)}"))
    if lb.location and lb.network_zone:
        out.append(("load_balancer.network_zone", "set either location or network_zone, not both"))
    if not lb.location and not lb.network_zone:
        out.append(("load_balancer.location", f"required: a location ({', '.join(LOCATIONS)}) or a network_zone"))
    if lb.location and lb.location not in LOCATIONS:
        out.append(("load_balancer.location", f"{lb.location!r}: allowed {', '.join(LOCATIONS)}"))
    if lb.network_zone and lb.network_zone not in NETWORK_ZONES:
        out.append(("load_balancer.network_zone", f"{lb.network_zone!r}: allowed {', '.join(NETWORK_ZONES)}"))
    if lb.use_private_ip and not lb.network:
        out.append(("load_balancer.network", "use_private_ip needs the private network the workers are attached to (e.g. keybuzz-net)"))
    if lb.target_mode not in ("label_selector", "servers"):
        out.append(("load_balancer.target_mode", f"{lb.target_mode!r}: allowed label_selector, servers"))
    if lb.algorithm not in ("round_robin", "least_connections"):
        out.append(("load_balancer.algorithm", f"{lb.algorithm!r}: allowed round_robin, least_connections"))
    if not LABEL_SELECTOR.match(lb.target_selector or ""):
        out.append(("load_balancer.target_selector", f"{lb.target_selector!r} is not a label selector (e.g. role=worker)"))
    for k, v in lb.labels.items():
        problem = _label_problem(k, v)
        if problem:
            out.append((f"load_balancer.labels.{k}", problem))
    listen: dict[int, int] = {}
    for i, s in enumerate(lb.services):
        p = f"load_balancer.services[{i}]"
        if s.protocol not in ("http", "https", "tcp"):
            out.append((f"{p}.protocol", f"{s.protocol!r}: allowed http, https, tcp"))
        _port(f"{p}.listen_port", s.listen_port, out)
        _port(f"{p}.destination_port", s.destination_port, out)
        if s.listen_port in listen:
            out.append((f"{p}.listen_port", f"{s.listen_port} is already used by load_balancer.services[{listen[s.listen_port]}]"))
        listen.setdefault(s.listen_port, i)
        if s.redirect_http and s.protocol != "https":
            out.append((f"{p}.redirect_http", "only an https service can redirect http"))
        if s.redirect_http and 80 in [x.listen_port for x in lb.services if x is not s]:
            out.append((f"{p}.redirect_http", "redirect_http takes listen port 80, which another service uses (Hetzner answers source_port_already_used); drop one"))
        if s.protocol == "https" and lb.certificate.type == "none":
            out.append((f"{p}.protocol", "an https service needs load_balancer.certificate (managed or uploaded)"))
    hc = lb.health_check
    if hc.protocol not in ("http", "https", "tcp"):
        out.append(("load_balancer.health_check.protocol", f"{hc.protocol!r}: allowed http, https, tcp"))
    _port("load_balancer.health_check.port", hc.port, out)
    if not 3 <= hc.interval <= 60:
        out.append(("load_balancer.health_check.interval", f"{hc.interval}: allowed 3-60 seconds"))
    if not 1 <= hc.timeout <= 60:
        out.append(("load_balancer.health_check.timeout", f"{hc.timeout}: allowed 1-60 seconds"))
    if not 1 <= hc.retries <= 5:
        out.append(("load_balancer.health_check.retries", f"{hc.retries}: allowed 1-5"))
    if not hc.path.startswith("/"):
        out.append(("load_balancer.health_check.path", f"{hc.path!r} must start with /"))
    if len(hc.status_codes) > 20:
        out.append(("load_balancer.health_check.status_codes", "at most 20 status codes"))
    for j, code in enumerate(hc.status_codes):
        if not STATUS_CODE.match(code):
            out.append((f"load_balancer.health_check.status_codes[{j}]", f"{code!r}: a status code or pattern such as 200, 2?? or 3??"))
    cert = lb.certificate
    if cert.type not in ("managed", "uploaded", "none"):
        out.append(("load_balancer.certificate.type", f"{cert.type!r}: allowed managed, uploaded, none"))
    if cert.type != "none" and not cert.name:
        out.append(("load_balancer.certificate.name", "required: the certificate's name at Hetzner"))
    for j, d in enumerate(cert.domains):
        if not HOSTNAME.match(d.removeprefix("*.")):
            out.append((f"load_balancer.certificate.domains[{j}]", f"{d!r} is not a valid domain name"))
    if cert.type == "managed":
        if not cert.domains:
            out.append(("load_balancer.certificate.domains", "a managed certificate needs its domain names (the apps' hosts)"))
        elif any(s.protocol == "https" for s in lb.services):
            for a_i, a in enumerate(cfg.apps):
                if a.host and not _hostname_problem(a.host) and not any(_covers(d, a.host) for d in cert.domains):
                    out.append(("load_balancer.certificate.domains", f"does not cover apps[{a_i}].host {a.host!r}: add it (or a *. wildcard)"))
    if cert.type == "uploaded" and not cert.cert_file:
        out.append(("load_balancer.certificate.cert_file", "an uploaded certificate needs the PEM file of its chain (the key stays in the keyring)"))
    dns = cfg.dns
    if dns.mode not in ("hetzner", "manual"):
        out.append(("dns.mode", f"{dns.mode!r}: allowed hetzner (records managed through the Hetzner API) or manual (printed for you to create)"))
    zone_problem = _hostname_problem(dns.zone)
    if zone_problem:
        out.append(("dns.zone", zone_problem.replace("hostname", "zone name")))
    if not 60 <= dns.ttl <= 2**31 - 1:
        out.append(("dns.ttl", f"{dns.ttl}: allowed 60 to 2147483647 seconds"))
    if dns.resolver:
        problem = _host_port_problem(dns.resolver)
        if problem:
            out.append(("dns.resolver", problem))
    for a_i, a in enumerate(cfg.apps):
        if a.host and not zone_problem and not _hostname_problem(a.host) and not (a.host == dns.zone or a.host.endswith("." + dns.zone)):
            out.append((f"apps[{a_i}].host", f"{a.host!r} is not inside dns.zone {dns.zone!r}"))
    fw = cfg.firewall
    if fw.mode not in ("check", "manage", "off"):
        out.append(("firewall.mode", f"{fw.mode!r}: allowed check, manage, off"))
    if fw.mode != "off" and not fw.name:
        out.append(("firewall.name", "required: the Hetzner firewall's name (or mode: off)"))
    for j, cidr in enumerate(fw.allow_from):
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            out.append((f"firewall.allow_from[{j}]", f"{cidr!r} is not a CIDR (e.g. 10.0.0.0/16)"))
    if not 10 <= cfg.rollout.timeout <= 3600:
        out.append(("rollout.timeout", f"{cfg.rollout.timeout}: allowed 10-3600 seconds"))
    if not 1 <= cfg.rollout.max_unavailable <= 100:
        out.append(("rollout.max_unavailable", f"{cfg.rollout.max_unavailable}: allowed 1-100"))
    return out


# --- saving ----------------------------------------------------------------------------------


def to_dict(cfg: Config) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def dumps(cfg: Config) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False, default_flow_style=False, width=100)


def save(cfg: Config, path: str | Path) -> None:
    """Atomic write: a crash mid-save never leaves a half file behind."""
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(HEADER + dumps(cfg))
    tmp.replace(path)


HEADER = "# keybuzz-tui answers (no secrets: those live in the OS keyring). See `keybuzz-tui config init`.\n"
