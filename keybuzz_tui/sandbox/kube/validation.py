"""Per-kind validation (the apiserver's 422 texts) and defaulting, as a K3s 1.32 server does it.

`default(rt, obj)` returns a deep copy with what the v1 defaulting functions fill in
(`pkg/apis/*/v1/defaults.go`), and `validate(rt, obj, old, namespace=...)` raises the 422
`errors.invalid(...)` with every `field.Error` the upstream validators would report
(`pkg/apis/core/validation`, `pkg/apis/apps/validation`, `pkg/apis/networking/validation`,
`apimachinery/pkg/util/validation`), all of them in one Status like the real server.

Why so literal: the wizard and kubectl users read these messages verbatim, and tests compare them
with captures from real clusters. Bad values are printed the way `field.Error.ErrorBody` prints
them: `%q` for strings, `%v` for numbers, `%#v` for maps, slices and structs
(`map[string]string{"app":"api"}`, `v1.LabelSelector{...}`), `String()` for `IntOrString`.

Before any rule runs, the object goes through a small typed-decode pass: a JSON value of the
wrong type (a string where an object belongs, `"8080"` for an int32) is what encoding/json rejects
when the apiserver decodes the body, so it becomes the same 400 BadRequest
(`Pod in version "v1" cannot be handled as a Pod: json: cannot unmarshal ...`), never a TypeError.
Everything here is pure: no store access, no I/O.
"""

from __future__ import annotations

import base64
import copy
import ipaddress
import math
import re
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

from . import errors
from .errors import ApiError, FieldError
from .registry import ResourceType
from .selectors import (
    DNS1123_SUBDOMAIN_FMT,
    go_len,
    go_quote,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_qualified_name,
    is_valid_label_value,
    max_len_error,
    regex_error,
)

__all__ = [
    "DecodeError",
    "FieldErr",
    "GoRepr",
    "check_types",
    "default",
    "go_base64_error",
    "image_pull_policy",
    "is_config_map_key",
    "is_dns1035_label",
    "is_valid_port_name",
    "is_wildcard_dns1123_subdomain",
    "parse_quantity",
    "show",
    "validate",
]

JSON = dict[str, Any]

# --------------------------------------------------------------------------------------------
# Printing values the way field.Error does
# --------------------------------------------------------------------------------------------


class GoRepr:
    """A bad value already rendered as Go prints it (`%#v` of a struct, map or slice)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"GoRepr({self.text!r})"


def go_float(value: float) -> str:
    """fmt's %v for a float64 (strconv 'g', shortest digits, %e from exponent -5 or 6 up)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "0"
    _sign, digits, exp = Decimal(repr(abs(value))).normalize().as_tuple()
    text = "".join(str(d) for d in digits)
    point = len(text) + int(exp)  # digits before the decimal point
    neg = "-" if value < 0 else ""
    e = point - 1
    if e < -4 or e >= 6:
        mant = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{neg}{mant}e{'-' if e < 0 else '+'}{abs(e):02d}"
    if point <= 0:
        return f"{neg}0.{'0' * -point}{text}"
    if point >= len(text):
        return neg + text + "0" * (point - len(text))
    return f"{neg}{text[:point]}.{text[point:]}"


def show(value: Any) -> str:
    """One bad value as field.Error.ErrorBody prints it."""
    if isinstance(value, GoRepr):
        return value.text
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, Mapping):
        return go_map_ss(value).text
    if isinstance(value, (list, tuple)):
        return go_str_slice(value).text
    return str(value)


def _go_sv(value: Any) -> str:
    """A string inside a %#v composite: Go syntax quoting."""
    return go_quote(value if isinstance(value, str) else str(value))


def go_map_ss(value: Mapping[str, Any] | None) -> GoRepr:
    """%#v of a map[string]string: keys sorted, `map[string]string{"a":"b", "c":"d"}`."""
    if value is None:
        return GoRepr("map[string]string(nil)")
    body = ", ".join(f"{_go_sv(k)}:{_go_sv(value[k])}" for k in sorted(value, key=str))
    return GoRepr("map[string]string{" + body + "}")


def go_str_slice(value: Iterable[Any] | None) -> GoRepr:
    """%#v of a []string: `[]string{"a", "b"}`, `[]string(nil)` for a nil slice."""
    if value is None:
        return GoRepr("[]string(nil)")
    return GoRepr("[]string{" + ", ".join(_go_sv(v) for v in value) + "}")


def go_label_selector(sel: Mapping[str, Any]) -> GoRepr:
    """%#v of a v1.LabelSelector (what `field is immutable` prints for spec.selector)."""
    labels = sel.get("matchLabels")
    ml = go_map_ss(labels if isinstance(labels, Mapping) else None).text
    exprs = sel.get("matchExpressions")
    if not isinstance(exprs, list):
        me = "[]v1.LabelSelectorRequirement(nil)"
    else:
        items = []
        for e in exprs:
            e = e if isinstance(e, Mapping) else {}
            values = e.get("values")
            vals = go_str_slice(values if isinstance(values, list) else None).text
            items.append(
                f"v1.LabelSelectorRequirement{{Key:{_go_sv(e.get('key') or '')}, "
                f"Operator:{_go_sv(e.get('operator') or '')}, Values:{vals}}}"
            )
        me = "[]v1.LabelSelectorRequirement{" + ", ".join(items) + "}"
    return GoRepr(f"v1.LabelSelector{{MatchLabels:{ml}, MatchExpressions:{me}}}")


def intstr_string(value: Any) -> GoRepr:
    """IntOrString.String(): the string as is, or the int in decimal (no quotes)."""
    if value is None:
        return GoRepr("<nil>")
    if isinstance(value, str):
        return GoRepr(value)
    return GoRepr(str(value))


def go_intstr_struct(value: Any) -> str:
    """%#v of an intstr.IntOrString inside a struct."""
    if isinstance(value, str):
        return f"intstr.IntOrString{{Type:1, IntVal:0, StrVal:{go_quote(value)}}}"
    iv = value if isinstance(value, int) and not isinstance(value, bool) else 0
    return f'intstr.IntOrString{{Type:0, IntVal:{iv}, StrVal:""}}'


# --------------------------------------------------------------------------------------------
# field.Error and the list the validators fill
# --------------------------------------------------------------------------------------------

_REASONS = {
    "Invalid": "FieldValueInvalid",
    "Required": "FieldValueRequired",
    "NotSupported": "FieldValueNotSupported",
    "Duplicate": "FieldValueDuplicate",
    "Forbidden": "FieldValueForbidden",
    "TooLong": "FieldValueTooLong",
    "TooMany": "FieldValueTooMany",
    "NotFound": "FieldValueNotFound",
    "TypeInvalid": "FieldValueTypeInvalid",
    "Internal": "InternalError",
}
_TITLES = {
    "Invalid": "Invalid value",
    "Required": "Required value",
    "NotSupported": "Unsupported value",
    "Duplicate": "Duplicate value",
    "Forbidden": "Forbidden",
    "TooLong": "Too long",
    "TooMany": "Too many",
    "NotFound": "Not found",
    "TypeInvalid": "Invalid value",
    "Internal": "Internal error",
}
_VALUELESS = frozenset({"Required", "Forbidden", "TooLong", "Internal"})


class FieldErr(FieldError):
    """errors.FieldError with every field.ErrorType and Go's value printing (%q keeps UTF-8)."""

    @property
    def reason(self) -> str:
        return _REASONS[self.kind]

    def body(self) -> str:
        text = _TITLES[self.kind]
        if self.kind not in _VALUELESS:
            text += ": " + show(self.value)
        if self.detail:
            text += ": " + self.detail
        return text


def _supported(values: Iterable[str]) -> str:
    return "supported values: " + ", ".join(go_quote(v) for v in values)


class Errs(list[FieldErr]):
    """A field.ErrorList with the constructors of `util/validation/field`."""

    def invalid(self, path: str, value: Any, detail: str) -> None:
        self.append(FieldErr("Invalid", path, detail, value))

    def required(self, path: str, detail: str = "") -> None:
        self.append(FieldErr("Required", path, detail))

    def forbidden(self, path: str, detail: str) -> None:
        self.append(FieldErr("Forbidden", path, detail))

    def duplicate(self, path: str, value: Any, detail: str = "") -> None:
        self.append(FieldErr("Duplicate", path, detail, value))

    def not_found(self, path: str, value: Any) -> None:
        self.append(FieldErr("NotFound", path, "", value))

    def not_supported(self, path: str, value: Any, supported: Iterable[str]) -> None:
        self.append(FieldErr("NotSupported", path, _supported(supported), value))

    def too_long(self, path: str, limit: int) -> None:
        unit = "byte" if limit == 1 else "bytes"
        self.append(FieldErr("TooLong", path, f"may not be more than {limit} {unit}"))

    def each(self, path: str, value: Any, messages: Iterable[str]) -> None:
        """One Invalid per message, as the `for _, msg := range IsX(v)` loops do."""
        for msg in messages:
            self.invalid(path, value, msg)


def raise_invalid(rt: ResourceType, name: str, errs: list[FieldErr]) -> None:
    """errors.NewInvalid: causes keep every error, the message drops repeated texts."""
    if not errs:
        return
    err = errors.invalid(rt.kind, rt.group, name, list(errs))
    seen: list[str] = []
    for e in errs:
        if str(e) not in seen:
            seen.append(str(e))
    joined = seen[0] if len(seen) == 1 else "[" + ", ".join(seen) + "]"
    qualified = f"{rt.kind}.{rt.group}" if rt.group else rt.kind
    err.message = f"{qualified} {go_quote(name)} is invalid: {joined}"
    raise err


# --------------------------------------------------------------------------------------------
# apimachinery/pkg/util/validation string rules not already in selectors.py
# --------------------------------------------------------------------------------------------

DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
DNS1035_LABEL_ERR = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character"
)
WILDCARD_DNS1123_FMT = "\\*\\." + DNS1123_SUBDOMAIN_FMT
WILDCARD_DNS1123_ERR = (
    "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which "
    "must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character"
)
CONFIG_MAP_KEY_FMT = "[-._a-zA-Z0-9]+"
CONFIG_MAP_KEY_ERR = "a valid config key must consist of alphanumeric characters, '-', '_' or '.'"
PERCENT_FMT = "[0-9]+%"
PERCENT_ERR = "a valid percent string must be a numeric string followed by an ending '%'"
HTTP_HEADER_FMT = "[-A-Za-z0-9]+"
HTTP_HEADER_ERR = "a valid HTTP header must consist of alphanumeric characters or '-'"
RELAXED_ENV_ERR = "a valid environment variable name must consist only of printable ASCII characters other than '='"

_DNS1035_RE = re.compile(DNS1035_LABEL_FMT)
_WILDCARD_RE = re.compile(WILDCARD_DNS1123_FMT)
_CONFIG_KEY_RE = re.compile(CONFIG_MAP_KEY_FMT)
_PERCENT_RE = re.compile(PERCENT_FMT)
_HTTP_HEADER_RE = re.compile(HTTP_HEADER_FMT)
_PORT_NAME_CHARSET_RE = re.compile("[-a-z0-9]+")
_PORT_NAME_LETTER_RE = re.compile("[a-z]")


def is_dns1035_label(value: str) -> list[str]:
    """validation.IsDNS1035Label: Service names."""
    errs: list[str] = []
    if go_len(value) > 63:
        errs.append(max_len_error(63))
    if not _DNS1035_RE.fullmatch(value):
        errs.append(regex_error(DNS1035_LABEL_ERR, DNS1035_LABEL_FMT, "my-name", "abc-123"))
    return errs


def is_wildcard_dns1123_subdomain(value: str) -> list[str]:
    """validation.IsWildcardDNS1123Subdomain: `*.example.com` Ingress hosts."""
    errs: list[str] = []
    if go_len(value) > 253:
        errs.append(max_len_error(253))
    if not _WILDCARD_RE.fullmatch(value):
        errs.append(regex_error(WILDCARD_DNS1123_ERR, WILDCARD_DNS1123_FMT, "*.example.com"))
    return errs


def is_valid_port_name(port: str) -> list[str]:
    """validation.IsValidPortName (IANA_SVC_NAME): container port names, named targetPorts."""
    errs: list[str] = []
    if go_len(port) > 15:
        errs.append(max_len_error(15))
    if not _PORT_NAME_CHARSET_RE.fullmatch(port):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not _PORT_NAME_LETTER_RE.search(port):
        errs.append("must contain at least one letter (a-z)")
    if "--" in port:
        errs.append("must not contain consecutive hyphens")
    if port and (port[0] == "-" or port[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def inclusive_range_error(lo: int, hi: int) -> str:
    return f"must be between {lo} and {hi}, inclusive"


def is_valid_port_num(port: int) -> list[str]:
    return [] if 1 <= port <= 65535 else [inclusive_range_error(1, 65535)]


def _chdir_prefix(value: str) -> list[str]:
    if value == ".":
        return ["must not be '.'"]
    if value == "..":
        return ["must not be '..'"]
    if value.startswith(".."):
        return ["must not start with '..'"]
    return []


def is_config_map_key(value: str) -> list[str]:
    """validation.IsConfigMapKey: ConfigMap and Secret data keys."""
    errs: list[str] = []
    if go_len(value) > 253:
        errs.append(max_len_error(253))
    if not _CONFIG_KEY_RE.fullmatch(value):
        errs.append(regex_error(CONFIG_MAP_KEY_ERR, CONFIG_MAP_KEY_FMT, "key.name", "KEY_NAME", "key-name"))
    return errs + _chdir_prefix(value)


def is_relaxed_env_var_name(value: str) -> list[str]:
    """validation.IsRelaxedEnvVarName (RelaxedEnvironmentVariableValidation is on in 1.32)."""
    errs: list[str] = []
    if not value:
        errs.append("environment variable name must be non-empty")
    for ch in value:
        if ord(ch) > 0x7F or not (0x20 <= ord(ch) < 0x7F) or ch == "=":
            errs.append(RELAXED_ENV_ERR)
            break
    return errs


def is_valid_percent(value: str) -> list[str]:
    return [] if _PERCENT_RE.fullmatch(value) else [regex_error(PERCENT_ERR, PERCENT_FMT, "1%", "93%")]


def is_http_header_name(value: str) -> list[str]:
    if _HTTP_HEADER_RE.fullmatch(value):
        return []
    return [regex_error(HTTP_HEADER_ERR, HTTP_HEADER_FMT, "X-Header-Name")]


def parse_ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """netutils.ParseIPSloppy: IPv4 octets may have leading zeros (no zone, no brackets)."""
    if not value or "%" in value:
        return None
    if ":" not in value:
        parts = value.split(".")
        if len(parts) != 4 or not all(p.isdigit() and p.isascii() and len(p) <= 3 and int(p) < 256 for p in parts):
            return None
        return ipaddress.IPv4Address(".".join(str(int(p)) for p in parts))
    try:
        return ipaddress.IPv6Address(value)
    except ValueError:
        return None


def is_valid_ip(errs: Errs, path: str, value: str) -> bool:
    """validation.IsValidIP with the 1.32 wording."""
    if parse_ip(value) is None:
        errs.invalid(path, value, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")
        return False
    return True


def is_valid_cidr(errs: Errs, path: str, value: str) -> None:
    """validation.IsValidCIDR."""
    addr, _, bits = value.partition("/")
    ip = parse_ip(addr)
    ok = ip is not None and bits.isdigit() and bits.isascii() and int(bits) <= (32 if ip.version == 4 else 128)
    if not ok:
        errs.invalid(path, value, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)")


def mask_trailing_dash(name: str) -> str:
    """apimachinery maskTrailingDash, including its habit of dropping the character before the dash."""
    if len(name) > 1 and name.endswith("-"):
        return name[:-2] + "a"
    return name


NameFn = Callable[[str], list[str]]


# --------------------------------------------------------------------------------------------
# The typed decode: JSON types the Go structs cannot hold are a 400, before any rule runs
# --------------------------------------------------------------------------------------------


class DecodeError(Exception):
    """encoding/json's first error while decoding the body into the typed object."""


def json_kind(value: Any) -> str:
    """The JSON type name encoding/json puts in `cannot unmarshal X into ...`."""
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return "string"


class _Ctx:
    """decodeState.errorContext: the innermost Go struct and the JSON field names down to here."""

    __slots__ = ("struct", "stack")

    def __init__(self) -> None:
        self.struct = ""
        self.stack: list[str] = []

    def fail(self, what: str, go_type: str) -> DecodeError:
        if self.struct or self.stack:
            where = f"{self.struct}.{'.'.join(self.stack)}"
            return DecodeError(f"json: cannot unmarshal {what} into Go struct field {where} of type {go_type}")
        return DecodeError(f"json: cannot unmarshal {what} into Go value of type {go_type}")


class _Type:
    go = "interface {}"

    def check(self, value: Any, ctx: _Ctx) -> None:  # pragma: no cover - interface
        raise NotImplementedError


class _Any(_Type):
    def check(self, value: Any, ctx: _Ctx) -> None:
        return None


class _Prim(_Type):
    def __init__(self, go: str, *accepted: type) -> None:
        self.go = go
        self.accepted = accepted

    def check(self, value: Any, ctx: _Ctx) -> None:
        if value is None:
            return
        if isinstance(value, bool) and bool not in self.accepted:
            raise ctx.fail("bool", self.go)
        if not isinstance(value, self.accepted):
            raise ctx.fail(json_kind(value), self.go)


def _number_literal(value: int | float) -> str:
    if isinstance(value, float):
        return repr(value).replace("e+", "e")
    return str(value)


class _Int(_Type):
    def __init__(self, go: str, bits: int) -> None:
        self.go = go
        self.lo, self.hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1

    def check(self, value: Any, ctx: _Ctx) -> None:
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ctx.fail(json_kind(value), self.go)
        if isinstance(value, float) or not self.lo <= value <= self.hi:
            raise ctx.fail(f"number {_number_literal(value)}", self.go)


STR = _Prim("string", str)
TIME = STR  # metav1.Time unmarshals a string first; the parse itself is not checked here
BOOL = _Prim("bool", bool)
I32 = _Int("int32", 32)
I64 = _Int("int64", 64)
ANY = _Any()


class _IntOrString(_Type):
    """intstr.IntOrString.UnmarshalJSON: a JSON string, else an int32."""

    go = "intstr.IntOrString"

    def check(self, value: Any, ctx: _Ctx) -> None:
        if value is None or isinstance(value, str):
            return
        I32.check(value, ctx)


INTSTR = _IntOrString()

QUANTITY_FMT = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
_QUANTITY_RE = re.compile(QUANTITY_FMT)
_QUANTITY_SUFFIXES = {
    "": (10, 0), "n": (10, -9), "u": (10, -6), "m": (10, -3), "k": (10, 3), "M": (10, 6), "G": (10, 9),
    "T": (10, 12), "P": (10, 15), "E": (10, 18), "Ki": (2, 10), "Mi": (2, 20), "Gi": (2, 30),
    "Ti": (2, 40), "Pi": (2, 50), "Ei": (2, 60),
}
_EXP_SUFFIX_RE = re.compile("[eE][-+]?[0-9]+")


def parse_quantity(text: str) -> Decimal:
    """resource.ParseQuantity, as a Decimal; raises DecodeError with the upstream error texts."""
    m = _QUANTITY_RE.match(text.strip()) if text.strip() == text else None
    if not m:
        raise DecodeError(f"quantities must match the regular expression '{QUANTITY_FMT}'")
    number, suffix = m.group(1), m.group(2)
    if number.count(".") > 1 or number.strip("+-") in ("", "."):
        raise DecodeError("unable to parse numeric part of quantity")
    if suffix in _QUANTITY_SUFFIXES:
        base, exp = _QUANTITY_SUFFIXES[suffix]
        scale = Decimal(base) ** exp
    elif _EXP_SUFFIX_RE.fullmatch(suffix):
        scale = Decimal(10) ** int(suffix[1:])
    else:
        raise DecodeError("unable to parse quantity's suffix")
    return Decimal(number) * scale


class _Quantity(_Type):
    """resource.Quantity.UnmarshalJSON: a string or a bare number, parsed strictly."""

    go = "resource.Quantity"

    def check(self, value: Any, ctx: _Ctx) -> None:
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise DecodeError(f"quantities must match the regular expression '{QUANTITY_FMT}'")
        parse_quantity(value if isinstance(value, str) else _number_literal(value))


QUANTITY = _Quantity()


def go_base64_error(text: str) -> int | None:
    """Where base64.StdEncoding.Decode fails (CorruptInputError offset), None if it decodes.

    Reimplements Go's decodeQuantum because Python's decoder neither skips CR/LF the same way
    nor reports the failing byte, and `illegal base64 data at input byte N` is what users see.
    """
    src = text.encode("utf-8", "surrogatepass")
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    n, si = len(src), 0
    while si < n:
        j = 0
        while j < 4:
            if si == n:
                if j == 0:
                    return None
                return si - j
            ch = src[si]
            si += 1
            if ch in alphabet:
                j += 1
                continue
            if ch in (0x0A, 0x0D):
                continue
            if ch != 0x3D:  # '='
                return si - 1
            if j in (0, 1):
                return si - 1
            if j == 2:
                while si < n and src[si] in (0x0A, 0x0D):
                    si += 1
                if si == n:
                    return n
                if src[si] != 0x3D:
                    return si - 1
                si += 1
            while si < n and src[si] in (0x0A, 0x0D):
                si += 1
            if si < n:
                return si
            return None
    return None


class _Bytes(_Type):
    """[]byte fields (Secret data, ConfigMap binaryData): base64 strings."""

    go = "[]uint8"

    def check(self, value: Any, ctx: _Ctx) -> None:
        if value is None:
            return
        if not isinstance(value, str):
            raise ctx.fail(json_kind(value), self.go)
        pos = go_base64_error(value)
        if pos is not None:
            raise DecodeError(f"illegal base64 data at input byte {pos}")


BYTES = _Bytes()


class _List(_Type):
    def __init__(self, elem: _Type) -> None:
        self.elem = elem

    @property
    def go(self) -> str:  # type: ignore[override]
        return "[]" + self.elem.go

    def check(self, value: Any, ctx: _Ctx) -> None:
        if value is None:
            return
        if not isinstance(value, list):
            raise ctx.fail(json_kind(value), self.go)
        for item in value:
            self.elem.check(item, ctx)


class _Map(_Type):
    def __init__(self, elem: _Type) -> None:
        self.elem = elem

    @property
    def go(self) -> str:  # type: ignore[override]
        return "map[string]" + self.elem.go

    def check(self, value: Any, ctx: _Ctx) -> None:
        if value is None:
            return
        if not isinstance(value, Mapping):
            raise ctx.fail(json_kind(value), self.go)
        for item in value.values():
            self.elem.check(item, ctx)


class _Struct(_Type):
    """A Go struct: known JSON fields are checked, unknown ones are dropped as the decoder does."""

    def __init__(self, go: str, fields: Callable[[], dict[str, _Type]] | dict[str, _Type]) -> None:
        self.go = go
        self._fields = fields
        self._resolved: dict[str, _Type] | None = None

    @property
    def fields(self) -> dict[str, _Type]:
        if self._resolved is None:
            f = self._fields
            self._resolved = f() if callable(f) else f
        return self._resolved

    def check(self, value: Any, ctx: _Ctx) -> None:
        if value is None:
            return
        if not isinstance(value, Mapping):
            raise ctx.fail(json_kind(value), self.go)
        short = self.go.rsplit(".", 1)[-1]
        for key, item in value.items():
            spec = self.fields.get(key) if isinstance(key, str) else None
            if spec is None:
                continue
            saved = ctx.struct
            ctx.struct = short
            ctx.stack.append(key)
            spec.check(item, ctx)
            ctx.stack.pop()
            ctx.struct = saved


def _s(go: str, **fields: _Type) -> _Struct:
    return _Struct(go, fields)


L, M = _List, _Map
OWNER_REF = _s("v1.OwnerReference", apiVersion=STR, kind=STR, name=STR, uid=STR, controller=BOOL,
               blockOwnerDeletion=BOOL)
MANAGED_FIELDS = _s("v1.ManagedFieldsEntry", manager=STR, operation=STR, apiVersion=STR, time=TIME,
                    fieldsType=STR, fieldsV1=ANY, subresource=STR)
OBJECT_META = _s(
    "v1.ObjectMeta", name=STR, generateName=STR, namespace=STR, selfLink=STR, uid=STR,
    resourceVersion=STR, generation=I64, creationTimestamp=TIME, deletionTimestamp=TIME,
    deletionGracePeriodSeconds=I64, labels=M(STR), annotations=M(STR), ownerReferences=L(OWNER_REF),
    finalizers=L(STR), managedFields=L(MANAGED_FIELDS),
)
LABEL_SELECTOR = _s(
    "v1.LabelSelector", matchLabels=M(STR),
    matchExpressions=L(_s("v1.LabelSelectorRequirement", key=STR, operator=STR, values=L(STR))),
)
OBJECT_REF = _s("v1.ObjectReference", kind=STR, namespace=STR, name=STR, uid=STR, apiVersion=STR,
                resourceVersion=STR, fieldPath=STR)
_KEY_SEL = dict(name=STR, key=STR, optional=BOOL)
ENV_VAR = _s(
    "v1.EnvVar", name=STR, value=STR,
    valueFrom=_s(
        "v1.EnvVarSource",
        fieldRef=_s("v1.ObjectFieldSelector", apiVersion=STR, fieldPath=STR),
        resourceFieldRef=_s("v1.ResourceFieldSelector", containerName=STR, resource=STR, divisor=QUANTITY),
        configMapKeyRef=_s("v1.ConfigMapKeySelector", **_KEY_SEL),
        secretKeyRef=_s("v1.SecretKeySelector", **_KEY_SEL),
    ),
)
_REF = dict(name=STR, optional=BOOL)
ENV_FROM = _s("v1.EnvFromSource", prefix=STR, configMapRef=_s("v1.ConfigMapEnvSource", **_REF),
              secretRef=_s("v1.SecretEnvSource", **_REF))
HTTP_GET = _s("v1.HTTPGetAction", path=STR, port=INTSTR, host=STR, scheme=STR,
              httpHeaders=L(_s("v1.HTTPHeader", name=STR, value=STR)))
EXEC = _s("v1.ExecAction", command=L(STR))
TCP_SOCKET = _s("v1.TCPSocketAction", port=INTSTR, host=STR)
PROBE = _s(
    "v1.Probe", exec=EXEC, httpGet=HTTP_GET, tcpSocket=TCP_SOCKET,
    grpc=_s("v1.GRPCAction", port=I32, service=STR), initialDelaySeconds=I32, timeoutSeconds=I32,
    periodSeconds=I32, successThreshold=I32, failureThreshold=I32, terminationGracePeriodSeconds=I64,
)
HANDLER = _s("v1.LifecycleHandler", exec=EXEC, httpGet=HTTP_GET, tcpSocket=TCP_SOCKET,
             sleep=_s("v1.SleepAction", seconds=I64))
CONTAINER = _s(
    "v1.Container", name=STR, image=STR, command=L(STR), args=L(STR), workingDir=STR,
    ports=L(_s("v1.ContainerPort", name=STR, hostPort=I32, containerPort=I32, protocol=STR, hostIP=STR)),
    envFrom=L(ENV_FROM), env=L(ENV_VAR),
    resources=_s("v1.ResourceRequirements", limits=M(QUANTITY), requests=M(QUANTITY), claims=L(ANY)),
    resizePolicy=L(ANY), restartPolicy=STR,
    volumeMounts=L(_s("v1.VolumeMount", name=STR, readOnly=BOOL, recursiveReadOnly=STR, mountPath=STR,
                      subPath=STR, mountPropagation=STR, subPathExpr=STR)),
    volumeDevices=L(_s("v1.VolumeDevice", name=STR, devicePath=STR)),
    livenessProbe=PROBE, readinessProbe=PROBE, startupProbe=PROBE,
    lifecycle=_s("v1.Lifecycle", postStart=HANDLER, preStop=HANDLER, stopSignal=STR),
    terminationMessagePath=STR, terminationMessagePolicy=STR, imagePullPolicy=STR,
    securityContext=_s(
        "v1.SecurityContext", privileged=BOOL, runAsUser=I64, runAsGroup=I64, runAsNonRoot=BOOL,
        readOnlyRootFilesystem=BOOL, allowPrivilegeEscalation=BOOL, procMount=STR,
        capabilities=_s("v1.Capabilities", add=L(STR), drop=L(STR)), seccompProfile=ANY,
        seLinuxOptions=ANY, windowsOptions=ANY, appArmorProfile=ANY,
    ),
    stdin=BOOL, stdinOnce=BOOL, tty=BOOL,
)
KEY_TO_PATH = _s("v1.KeyToPath", key=STR, path=STR, mode=I32)
VOLUME = _s(
    "v1.Volume", name=STR,
    hostPath=_s("v1.HostPathVolumeSource", path=STR, type=STR),
    emptyDir=_s("v1.EmptyDirVolumeSource", medium=STR, sizeLimit=QUANTITY),
    secret=_s("v1.SecretVolumeSource", secretName=STR, items=L(KEY_TO_PATH), defaultMode=I32, optional=BOOL),
    configMap=_s("v1.ConfigMapVolumeSource", name=STR, items=L(KEY_TO_PATH), defaultMode=I32, optional=BOOL),
    persistentVolumeClaim=_s("v1.PersistentVolumeClaimVolumeSource", claimName=STR, readOnly=BOOL),
    projected=_s("v1.ProjectedVolumeSource", sources=L(ANY), defaultMode=I32),
    downwardAPI=_s("v1.DownwardAPIVolumeSource", items=L(ANY), defaultMode=I32),
)
TOLERATION = _s("v1.Toleration", key=STR, operator=STR, value=STR, effect=STR, tolerationSeconds=I64)
POD_SPEC = _s(
    "v1.PodSpec", volumes=L(VOLUME), initContainers=L(CONTAINER), containers=L(CONTAINER),
    ephemeralContainers=L(ANY), restartPolicy=STR, terminationGracePeriodSeconds=I64,
    activeDeadlineSeconds=I64, dnsPolicy=STR, nodeSelector=M(STR), serviceAccountName=STR,
    serviceAccount=STR, automountServiceAccountToken=BOOL, nodeName=STR, hostNetwork=BOOL,
    hostPID=BOOL, hostIPC=BOOL, shareProcessNamespace=BOOL,
    securityContext=_s("v1.PodSecurityContext", runAsUser=I64, runAsGroup=I64, runAsNonRoot=BOOL,
                       fsGroup=I64, supplementalGroups=L(I64), sysctls=L(ANY), seccompProfile=ANY,
                       fsGroupChangePolicy=STR, seLinuxOptions=ANY, windowsOptions=ANY),
    imagePullSecrets=L(_s("v1.LocalObjectReference", name=STR)), hostname=STR, subdomain=STR,
    affinity=ANY, schedulerName=STR, tolerations=L(TOLERATION), hostAliases=L(ANY),
    priorityClassName=STR, priority=I32,
    dnsConfig=_s("v1.PodDNSConfig", nameservers=L(STR), searches=L(STR), options=L(ANY)),
    readinessGates=L(ANY), runtimeClassName=STR, enableServiceLinks=BOOL, preemptionPolicy=STR,
    overhead=M(QUANTITY), topologySpreadConstraints=L(ANY), setHostnameAsFQDN=BOOL, os=ANY,
    hostUsers=BOOL, schedulingGates=L(ANY), resourceClaims=L(ANY),
)
POD_TEMPLATE = _s("v1.PodTemplateSpec", metadata=OBJECT_META, spec=POD_SPEC)
_ROLLING = dict(maxUnavailable=INTSTR, maxSurge=INTSTR)
SERVICE_PORT = _s("v1.ServicePort", name=STR, protocol=STR, appProtocol=STR, port=I32,
                  targetPort=INTSTR, nodePort=I32)
INGRESS_BACKEND = _s(
    "v1.IngressBackend",
    service=_s("v1.IngressServiceBackend", name=STR, port=_s("v1.ServiceBackendPort", name=STR, number=I32)),
    resource=_s("v1.TypedLocalObjectReference", apiGroup=STR, kind=STR, name=STR),
)


def _top(go: str, **fields: _Type) -> _Struct:
    """A top-level kind: TypeMeta and ObjectMeta plus its own fields (status is not checked)."""
    return _Struct(go, dict(apiVersion=STR, kind=STR, metadata=OBJECT_META, **fields))


SCHEMAS: dict[tuple[str, str], _Struct] = {
    ("", "Pod"): _top("v1.Pod", spec=POD_SPEC),
    ("", "Namespace"): _top("v1.Namespace", spec=_s("v1.NamespaceSpec", finalizers=L(STR))),
    ("", "Node"): _top(
        "v1.Node",
        spec=_s("v1.NodeSpec", podCIDR=STR, podCIDRs=L(STR), providerID=STR, unschedulable=BOOL,
                taints=L(_s("v1.Taint", key=STR, value=STR, effect=STR, timeAdded=TIME))),
    ),
    ("", "Service"): _top(
        "v1.Service",
        spec=_s(
            "v1.ServiceSpec", ports=L(SERVICE_PORT), selector=M(STR), clusterIP=STR, clusterIPs=L(STR),
            type=STR, externalIPs=L(STR), sessionAffinity=STR, loadBalancerIP=STR,
            loadBalancerSourceRanges=L(STR), externalName=STR, externalTrafficPolicy=STR,
            healthCheckNodePort=I32, publishNotReadyAddresses=BOOL,
            sessionAffinityConfig=_s("v1.SessionAffinityConfig",
                                     clientIP=_s("v1.ClientIPConfig", timeoutSeconds=I32)),
            ipFamilies=L(STR), ipFamilyPolicy=STR, allocateLoadBalancerNodePorts=BOOL,
            loadBalancerClass=STR, internalTrafficPolicy=STR, trafficDistribution=STR,
        ),
    ),
    ("", "Endpoints"): _top(
        "v1.Endpoints",
        subsets=L(_s(
            "v1.EndpointSubset",
            addresses=L(_s("v1.EndpointAddress", ip=STR, hostname=STR, nodeName=STR, targetRef=OBJECT_REF)),
            notReadyAddresses=L(_s("v1.EndpointAddress", ip=STR, hostname=STR, nodeName=STR, targetRef=OBJECT_REF)),
            ports=L(_s("v1.EndpointPort", name=STR, port=I32, protocol=STR, appProtocol=STR)),
        )),
    ),
    ("", "Secret"): _top("v1.Secret", immutable=BOOL, data=M(BYTES), stringData=M(STR), type=STR),
    ("", "ConfigMap"): _top("v1.ConfigMap", immutable=BOOL, data=M(STR), binaryData=M(BYTES)),
    ("", "Event"): _top(
        "v1.Event", involvedObject=OBJECT_REF, reason=STR, message=STR,
        source=_s("v1.EventSource", component=STR, host=STR), firstTimestamp=TIME, lastTimestamp=TIME,
        count=I32, type=STR, eventTime=TIME, series=ANY, action=STR, related=OBJECT_REF,
        reportingComponent=STR, reportingInstance=STR,
    ),
    ("", "ServiceAccount"): _top(
        "v1.ServiceAccount", secrets=L(OBJECT_REF),
        imagePullSecrets=L(_s("v1.LocalObjectReference", name=STR)), automountServiceAccountToken=BOOL,
    ),
    ("apps", "DaemonSet"): _top(
        "v1.DaemonSet",
        spec=_s(
            "v1.DaemonSetSpec", selector=LABEL_SELECTOR, template=POD_TEMPLATE,
            updateStrategy=_s("v1.DaemonSetUpdateStrategy", type=STR,
                              rollingUpdate=_s("v1.RollingUpdateDaemonSet", **_ROLLING)),
            minReadySeconds=I32, revisionHistoryLimit=I32,
        ),
    ),
    ("apps", "Deployment"): _top(
        "v1.Deployment",
        spec=_s(
            "v1.DeploymentSpec", replicas=I32, selector=LABEL_SELECTOR, template=POD_TEMPLATE,
            strategy=_s("v1.DeploymentStrategy", type=STR,
                        rollingUpdate=_s("v1.RollingUpdateDeployment", **_ROLLING)),
            minReadySeconds=I32, revisionHistoryLimit=I32, paused=BOOL, progressDeadlineSeconds=I32,
        ),
    ),
    ("apps", "ReplicaSet"): _top(
        "v1.ReplicaSet",
        spec=_s("v1.ReplicaSetSpec", replicas=I32, minReadySeconds=I32, selector=LABEL_SELECTOR,
                template=POD_TEMPLATE),
    ),
    ("apps", "StatefulSet"): _top(
        "v1.StatefulSet",
        spec=_s(
            "v1.StatefulSetSpec", replicas=I32, selector=LABEL_SELECTOR, template=POD_TEMPLATE,
            volumeClaimTemplates=L(ANY), serviceName=STR, podManagementPolicy=STR,
            updateStrategy=_s("v1.StatefulSetUpdateStrategy", type=STR,
                              rollingUpdate=_s("v1.RollingUpdateStatefulSetStrategy", partition=I32,
                                               maxUnavailable=INTSTR)),
            revisionHistoryLimit=I32, minReadySeconds=I32,
            persistentVolumeClaimRetentionPolicy=_s("v1.StatefulSetPersistentVolumeClaimRetentionPolicy",
                                                    whenDeleted=STR, whenScaled=STR),
            ordinals=_s("v1.StatefulSetOrdinals", start=I32),
        ),
    ),
    ("apps", "ControllerRevision"): _top("v1.ControllerRevision", data=ANY, revision=I64),
    ("discovery.k8s.io", "EndpointSlice"): _top(
        "v1.EndpointSlice", addressType=STR,
        endpoints=L(_s(
            "v1.Endpoint", addresses=L(STR),
            conditions=_s("v1.EndpointConditions", ready=BOOL, serving=BOOL, terminating=BOOL),
            hostname=STR, targetRef=OBJECT_REF, deprecatedTopology=M(STR), nodeName=STR, zone=STR, hints=ANY,
        )),
        ports=L(_s("v1.EndpointPort", name=STR, protocol=STR, port=I32, appProtocol=STR)),
    ),
    ("networking.k8s.io", "Ingress"): _top(
        "v1.Ingress",
        spec=_s(
            "v1.IngressSpec", ingressClassName=STR, defaultBackend=INGRESS_BACKEND,
            tls=L(_s("v1.IngressTLS", hosts=L(STR), secretName=STR)),
            rules=L(_s(
                "v1.IngressRule", host=STR,
                http=_s("v1.HTTPIngressRuleValue",
                        paths=L(_s("v1.HTTPIngressPath", path=STR, pathType=STR, backend=INGRESS_BACKEND))),
            )),
        ),
    ),
    ("networking.k8s.io", "IngressClass"): _top(
        "v1.IngressClass", spec=_s("v1.IngressClassSpec", controller=STR, parameters=ANY),
    ),
    ("coordination.k8s.io", "Lease"): _top(
        "v1.Lease",
        spec=_s("v1.LeaseSpec", holderIdentity=STR, leaseDurationSeconds=I32, acquireTime=TIME,
                renewTime=TIME, leaseTransitions=I32, strategy=STR, preferredHolder=STR),
    ),
}


def decode_error(rt: ResourceType, detail: str) -> ApiError:
    """transformDecodeError for a body whose kind is known: the 400 the create handler answers."""
    return errors.bad_request(f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: {detail}')


def check_types(rt: ResourceType, obj: Any) -> None:
    """Raise the decoder's 400 for the first field whose JSON type the Go struct cannot hold."""
    schema = SCHEMAS.get((rt.group, rt.kind))
    if schema is None:
        schema = _top(f"v1.{rt.kind}")
    if not isinstance(obj, Mapping):
        raise decode_error(rt, f"json: cannot unmarshal {json_kind(obj)} into Go value of type {schema.go}")
    try:
        schema.check(obj, _Ctx())
    except DecodeError as e:
        raise decode_error(rt, str(e)) from None


# --------------------------------------------------------------------------------------------
# Reading the (already type-checked) JSON defensively: null and absent read as Go zero values
# --------------------------------------------------------------------------------------------


def d(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def lst(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def st(value: Any) -> str:
    return value if isinstance(value, str) else ""


def num(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def smap(value: Any) -> dict[str, str]:
    """A map[string]string: null values are "" as the decoder leaves them."""
    return {str(k): st(v) for k, v in d(value).items()}


def has(obj: Mapping[str, Any], key: str) -> bool:
    """A pointer field is set (present and not null)."""
    return obj.get(key) is not None


def _pos_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# --------------------------------------------------------------------------------------------
# ObjectMeta (apimachinery/pkg/api/validation/objectmeta.go)
# --------------------------------------------------------------------------------------------

IS_NEGATIVE = "must be greater than or equal to 0"
FIELD_IMMUTABLE = "field is immutable"
TOTAL_ANNOTATION_SIZE = 256 * 1024
MAX_SECRET_SIZE = 1024 * 1024


def name_is_subdomain(name: str) -> list[str]:
    return is_dns1123_subdomain(name)


def name_is_label(name: str) -> list[str]:
    return is_dns1123_label(name)


def name_is_dns1035(name: str) -> list[str]:
    return is_dns1035_label(name)


NAME_RULES: dict[str, NameFn] = {"Namespace": name_is_label, "Service": name_is_dns1035}


def nonnegative(errs: Errs, path: str, value: Any) -> None:
    if _pos_int(value) and value < 0:
        errs.invalid(path, value, IS_NEGATIVE)


def validate_labels(errs: Errs, labels: Any, path: str) -> None:
    """metav1validation.ValidateLabels: key errors then value errors, keys in sorted order."""
    values = smap(labels)
    for key in sorted(values):
        errs.each(path, key, is_qualified_name(key))
        errs.each(path, values[key], is_valid_label_value(values[key]))


def validate_annotations(errs: Errs, annotations: Any, path: str) -> None:
    """ValidateAnnotations: case-insensitive qualified names and 256 KiB in total."""
    values = smap(annotations)
    total = 0
    for key in sorted(values):
        errs.each(path, key, is_qualified_name(key.lower()))
        total += go_len(key) + go_len(values[key])
    if total > TOTAL_ANNOTATION_SIZE:
        errs.too_long(path, TOTAL_ANNOTATION_SIZE)


def _owner_references(errs: Errs, refs: Any, path: str) -> None:
    controller = ""
    for ref in lst(refs):
        ref = d(ref)
        api_version, kind = st(ref.get("apiVersion")), st(ref.get("kind"))
        version = api_version.split("/")[-1] if api_version.count("/") <= 1 else ""
        if not version:
            errs.invalid(f"{path}.apiVersion", api_version, "version must not be empty")
        if not kind:
            errs.invalid(f"{path}.kind", kind, "must not be empty")
        if not st(ref.get("name")):
            errs.invalid(f"{path}.name", "", "must not be empty")
        if not st(ref.get("uid")):
            errs.invalid(f"{path}.uid", "", "must not be empty")
        if api_version == "v1" and kind == "Event":
            errs.invalid(path, GoRepr(_owner_ref_repr(ref)), "/v1, Kind=Event is disallowed from being an owner")
        if ref.get("controller") is True:
            current = f"{kind}/{st(ref.get('name'))}"
            if controller:
                errs.invalid(
                    path,
                    GoRepr("[]v1.OwnerReference{...}"),
                    'Only one reference can have Controller set to true. Found "true" in references for '
                    f"{controller} and {current}",
                )
            else:
                controller = current


def _owner_ref_repr(ref: Mapping[str, Any]) -> str:
    return (
        f"v1.OwnerReference{{APIVersion:{go_quote(st(ref.get('apiVersion')))}, Kind:{go_quote(st(ref.get('kind')))}, "
        f"Name:{go_quote(st(ref.get('name')))}, UID:{go_quote(st(ref.get('uid')))}, Controller:(*bool)(nil), "
        "BlockOwnerDeletion:(*bool)(nil)}"
    )


def _finalizers(errs: Errs, finalizers: Any, path: str) -> None:
    names = [st(f) for f in lst(finalizers)]
    for name in names:
        errs.each(path, name, is_qualified_name(name))
    if "orphan" in names and "foregroundDeletion" in names:
        errs.invalid(path, go_str_slice(names), "finalizer orphan and foregroundDeletion cannot be both set")


def validate_object_meta(errs: Errs, meta: Mapping[str, Any], name_fn: NameFn, namespaced: bool,
                         path: str = "metadata") -> None:
    """ValidateObjectMetaAccessor, in upstream order (generateName, name, namespace, ...)."""
    generate_name = st(meta.get("generateName"))
    if generate_name:
        errs.each(f"{path}.generateName", generate_name, name_fn(mask_trailing_dash(generate_name)))
    name = st(meta.get("name"))
    if not name:
        errs.required(f"{path}.name", "name or generateName is required")
    else:
        errs.each(f"{path}.name", name, name_fn(name))
    if namespaced:
        namespace = st(meta.get("namespace"))
        if not namespace:
            errs.required(f"{path}.namespace")
        else:
            errs.each(f"{path}.namespace", namespace, is_dns1123_label(namespace))
    nonnegative(errs, f"{path}.generation", meta.get("generation"))
    validate_labels(errs, meta.get("labels"), f"{path}.labels")
    validate_annotations(errs, meta.get("annotations"), f"{path}.annotations")
    _owner_references(errs, meta.get("ownerReferences"), f"{path}.ownerReferences")
    _finalizers(errs, meta.get("finalizers"), f"{path}.finalizers")


def validate_object_meta_update(errs: Errs, meta: Mapping[str, Any], old_meta: Mapping[str, Any]) -> None:
    """The parts of ValidateObjectMetaUpdate that the API layer does not already enforce."""
    if old_meta.get("deletionTimestamp"):
        old = {st(f) for f in lst(old_meta.get("finalizers"))}
        extra = sorted({st(f) for f in lst(meta.get("finalizers"))} - old)
        if extra:
            errs.forbidden(
                "metadata.finalizers",
                "no new finalizers can be added if the object is being deleted, found new finalizers "
                + go_str_slice(extra).text,
            )


# --------------------------------------------------------------------------------------------
# PodSpec (pkg/apis/core/validation/validation.go)
# --------------------------------------------------------------------------------------------

RESTART_POLICIES = ("Always", "OnFailure", "Never")
DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
PROTOCOLS = ("SCTP", "TCP", "UDP")  # sets.List(supportedPortProtocols): sorted
HTTP_SCHEMES = ("HTTP", "HTTPS")
TERMINATION_MESSAGE_POLICIES = ("File", "FallbackToLogsOnError")
HOST_PATH_TYPES = ("", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File", "FileOrCreate", "Socket")
TOLERATION_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
FILE_MODE_ERROR = "must be a number between 0 and 0777 (octal), both inclusive"
ENV_FIELD_PATHS = (
    "metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName", "spec.serviceAccountName",
    "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs",
)
DOWNWARD_API_LABELS = frozenset(ENV_FIELD_PATHS) | {
    "metadata.annotations", "metadata.labels", "spec.restartPolicy", "spec.schedulerName", "status.phase",
}
_SUBSCRIPTED_RE = re.compile(r"(metadata\.(?:annotations|labels))\['(.+)'\]")
# every VolumeSource member, in the order validateVolumeSource looks at them
VOLUME_SOURCES = (
    "emptyDir", "hostPath", "gitRepo", "gcePersistentDisk", "awsElasticBlockStore", "secret", "nfs",
    "iscsi", "glusterfs", "flexVolume", "persistentVolumeClaim", "rbd", "cinder", "cephfs", "flocker",
    "downwardAPI", "fc", "azureFile", "configMap", "vsphereVolume", "quobyte", "azureDisk",
    "photonPersistentDisk", "portworxVolume", "projected", "scaleIO", "storageos", "csi", "ephemeral", "image",
)
_STANDARD_CONTAINER_RESOURCES = frozenset({"cpu", "memory", "ephemeral-storage"})
MAX_INT32 = 2**31 - 1


def validate_port_num_or_name(errs: Errs, value: Any, path: str) -> None:
    """ValidatePortNumOrName: an int in 1..65535 or an IANA_SVC_NAME."""
    if isinstance(value, str):
        errs.each(path, value, is_valid_port_name(value))
    else:
        port = num(value)
        errs.each(path, port, is_valid_port_num(port))


def _local_descending_path(errs: Errs, target: str, path: str) -> None:
    if target.startswith("/"):
        errs.invalid(path, target, "must be a relative path")
    _no_backsteps(errs, target, path)


def _no_backsteps(errs: Errs, target: str, path: str) -> None:
    if ".." in target.replace("\\", "/").split("/"):
        errs.invalid(path, target, "must not contain '..'")


def _file_mode(errs: Errs, mode: Any, path: str) -> None:
    if _pos_int(mode) and not 0 <= mode <= 0o777:
        errs.invalid(path, mode, FILE_MODE_ERROR)


def _key_to_paths(errs: Errs, items: Any, path: str) -> None:
    for i, item in enumerate(lst(items)):
        item = d(item)
        ipath = f"{path}[{i}]"
        if not st(item.get("key")):
            errs.required(f"{ipath}.key")
        target = st(item.get("path"))
        if not target:
            errs.required(f"{ipath}.path")
        else:
            _local_descending_path(errs, target, f"{ipath}.path")
            if target.startswith(".."):
                errs.invalid(f"{ipath}.path", target, "must not start with '..'")
        _file_mode(errs, item.get("mode"), f"{ipath}.mode")


def _volume_source(errs: Errs, vol: Mapping[str, Any], path: str) -> None:
    """validateVolumeSource: exactly one source, then that source's own rules."""
    count = 0
    for source in VOLUME_SOURCES:
        if not has(vol, source):
            continue
        if count > 0:
            errs.forbidden(f"{path}.{source}", "may not specify more than 1 volume type")
            continue
        count += 1
        _one_volume_source(errs, source, d(vol.get(source)), f"{path}.{source}")
    if count == 0:
        errs.required(path, "must specify a volume type")


def _one_volume_source(errs: Errs, source: str, spec: Mapping[str, Any], path: str) -> None:
    if source == "hostPath":
        target = st(spec.get("path"))
        if not target:
            errs.required(f"{path}.path")
            return
        _no_backsteps(errs, target, f"{path}.path")
        if has(spec, "type") and st(spec.get("type")) not in HOST_PATH_TYPES:
            errs.not_supported(f"{path}.type", st(spec.get("type")), HOST_PATH_TYPES)
    elif source == "secret":
        if not st(spec.get("secretName")):
            errs.required(f"{path}.secretName")
        _file_mode(errs, spec.get("defaultMode"), f"{path}.defaultMode")
        _key_to_paths(errs, spec.get("items"), f"{path}.items")
    elif source == "configMap":
        if not st(spec.get("name")):
            errs.required(f"{path}.name")
        _file_mode(errs, spec.get("defaultMode"), f"{path}.defaultMode")
        _key_to_paths(errs, spec.get("items"), f"{path}.items")
    elif source == "persistentVolumeClaim":
        if not st(spec.get("claimName")):
            errs.required(f"{path}.claimName")
    elif source in ("projected", "downwardAPI"):
        _file_mode(errs, spec.get("defaultMode"), f"{path}.defaultMode")


def validate_volumes(errs: Errs, volumes: Any, path: str) -> dict[str, Mapping[str, Any]]:
    """ValidateVolumes: the volumes that passed go into the map volumeMounts are checked against."""
    valid: dict[str, Mapping[str, Any]] = {}
    for i, vol in enumerate(lst(volumes)):
        vol = d(vol)
        ipath = f"{path}[{i}]"
        local = Errs()
        _volume_source(local, vol, ipath)
        name = st(vol.get("name"))
        if not name:
            local.required(f"{ipath}.name")
        else:
            local.each(f"{ipath}.name", name, is_dns1123_label(name))
        if name in valid:
            local.duplicate(f"{ipath}.name", name)
        if local:
            errs.extend(local)
        else:
            valid[name] = vol
    return valid


def _container_ports(errs: Errs, ports: Any, path: str) -> None:
    """validateContainerPorts."""
    names: set[str] = set()
    for i, port in enumerate(lst(ports)):
        port = d(port)
        ipath = f"{path}[{i}]"
        name = st(port.get("name"))
        if name:
            msgs = is_valid_port_name(name)
            if msgs:
                errs.each(f"{ipath}.name", name, msgs)
            elif name in names:
                errs.duplicate(f"{ipath}.name", name)
            else:
                names.add(name)
        container_port = num(port.get("containerPort"))
        if container_port == 0:
            errs.required(f"{ipath}.containerPort")
        else:
            errs.each(f"{ipath}.containerPort", container_port, is_valid_port_num(container_port))
        host_port = num(port.get("hostPort"))
        if host_port != 0:
            errs.each(f"{ipath}.hostPort", host_port, is_valid_port_num(host_port))
        protocol = st(port.get("protocol"))
        if not protocol:
            errs.required(f"{ipath}.protocol")
        elif protocol not in PROTOCOLS:
            errs.not_supported(f"{ipath}.protocol", protocol, PROTOCOLS)


def _field_selector(errs: Errs, ref: Mapping[str, Any], path: str) -> None:
    """validateObjectFieldSelector for env fieldRef."""
    api_version = st(ref.get("apiVersion"))
    field_path = st(ref.get("fieldPath"))
    if not api_version:
        errs.required(f"{path}.apiVersion")
        return
    if not field_path:
        errs.required(f"{path}.fieldPath")
        return
    if api_version != "v1":
        errs.invalid(f"{path}.fieldPath", field_path,
                     f"error converting fieldPath: unsupported pod version: {api_version}")
        return
    m = _SUBSCRIPTED_RE.fullmatch(field_path)
    if m:
        base, key = m.group(1), m.group(2)
        if base == "metadata.annotations":
            errs.each(f"{path}.fieldPath", key, is_qualified_name(key.lower()))
        else:
            errs.each(f"{path}.fieldPath", key, is_qualified_name(key))
        return
    if field_path not in DOWNWARD_API_LABELS:
        errs.invalid(f"{path}.fieldPath", field_path,
                     f"error converting fieldPath: field label not supported: {field_path}")
    elif field_path not in ENV_FIELD_PATHS:
        errs.not_supported(f"{path}.fieldPath", field_path, ENV_FIELD_PATHS)


def _key_selector(errs: Errs, ref: Mapping[str, Any], path: str) -> None:
    """validateConfigMapKeySelector / validateSecretKeySelector."""
    if not st(ref.get("name")):
        errs.required(f"{path}.name")
    key = st(ref.get("key"))
    if not key:
        errs.required(f"{path}.key")
    else:
        errs.each(f"{path}.key", key, is_config_map_key(key))


def _env(errs: Errs, env: Any, path: str) -> None:
    """ValidateEnv with RelaxedEnvironmentVariableValidation (beta, on by default in 1.32)."""
    for i, var in enumerate(lst(env)):
        var = d(var)
        ipath = f"{path}[{i}]"
        name = st(var.get("name"))
        if not name:
            errs.required(f"{ipath}.name")
        else:
            errs.each(f"{ipath}.name", name, is_relaxed_env_var_name(name))
        if not has(var, "valueFrom"):
            continue
        source, vpath = d(var.get("valueFrom")), f"{ipath}.valueFrom"
        count = 0
        if has(source, "fieldRef"):
            count += 1
            _field_selector(errs, d(source.get("fieldRef")), f"{vpath}.fieldRef")
        if has(source, "resourceFieldRef"):
            count += 1
            if not st(d(source.get("resourceFieldRef")).get("resource")):
                errs.required(f"{vpath}.resourceFieldRef.resource")
        if has(source, "configMapKeyRef"):
            count += 1
            _key_selector(errs, d(source.get("configMapKeyRef")), f"{vpath}.configMapKeyRef")
        if has(source, "secretKeyRef"):
            count += 1
            _key_selector(errs, d(source.get("secretKeyRef")), f"{vpath}.secretKeyRef")
        if count == 0:
            errs.invalid(vpath, "", "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`")
        elif st(var.get("value")):
            errs.invalid(vpath, "", "may not be specified when `value` is not empty")
        elif count > 1:
            errs.invalid(vpath, "", "may not have more than one field specified at a time")


def _env_from(errs: Errs, env_from: Any, path: str) -> None:
    for i, item in enumerate(lst(env_from)):
        item = d(item)
        ipath = f"{path}[{i}]"
        prefix = st(item.get("prefix"))
        if prefix:
            errs.each(f"{ipath}.prefix", prefix, is_relaxed_env_var_name(prefix))
        count = 0
        for ref_key in ("configMapRef", "secretRef"):
            if not has(item, ref_key):
                continue
            count += 1
            name = st(d(item.get(ref_key)).get("name"))
            if not name:
                errs.required(f"{ipath}.{ref_key}.name")
            else:
                errs.each(f"{ipath}.{ref_key}.name", name, is_dns1123_subdomain(name))
        if count == 0:
            errs.invalid(ipath, "", "must specify one of: `configMapRef` or `secretRef`")
        elif count > 1:
            errs.invalid(ipath, "", "may not have more than one field specified at a time")


def _volume_mounts(errs: Errs, mounts: Any, volumes: Mapping[str, Any], path: str) -> None:
    """ValidateVolumeMounts: names must be declared (and valid) volumes, mount paths unique."""
    seen: set[str] = set()
    for i, mount in enumerate(lst(mounts)):
        mount = d(mount)
        ipath = f"{path}[{i}]"
        name, mount_path = st(mount.get("name")), st(mount.get("mountPath"))
        if not name:
            errs.required(f"{ipath}.name")
        if name not in volumes:
            errs.not_found(f"{ipath}.name", name)
        if not mount_path:
            errs.required(f"{ipath}.mountPath")
        if mount_path in seen:
            errs.invalid(f"{ipath}.mountPath", mount_path, "must be unique")
        seen.add(mount_path)
        sub_path, sub_expr = st(mount.get("subPath")), st(mount.get("subPathExpr"))
        if sub_path:
            _local_descending_path(errs, sub_path, f"{path}.subPath")
        if sub_expr:
            if sub_path:
                errs.invalid(f"{ipath}.subPathExpr", sub_expr, "subPathExpr and subPath are mutually exclusive")
            _local_descending_path(errs, sub_expr, f"{path}.subPathExpr")
        propagation = mount.get("mountPropagation")
        if propagation is not None and st(propagation) not in ("Bidirectional", "HostToContainer", "None"):
            errs.not_supported(f"{path}.mountPropagation", st(propagation),
                               ("Bidirectional", "HostToContainer", "None"))


def _quantity(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return parse_quantity(value if isinstance(value, str) else _number_literal(value))
    except DecodeError:
        return None


def _quantity_text(value: Any) -> str:
    return value if isinstance(value, str) else _number_literal(value)


def _resource_name(errs: Errs, name: str, path: str) -> None:
    if "/" not in name:
        if name not in _STANDARD_CONTAINER_RESOURCES and not name.startswith("hugepages-"):
            errs.invalid(path, name, "must be a standard resource for containers")
    else:
        errs.each(path, name, is_qualified_name(name))


def _resources(errs: Errs, resources: Mapping[str, Any], path: str) -> None:
    """ValidateResourceRequirements: names, non-negative values, requests <= limits."""
    limits, requests = d(resources.get("limits")), d(resources.get("requests"))
    for section, values in (("limits", limits), ("requests", requests)):
        for name in sorted(values, key=str):
            rpath = f"{path}.{section}[{name}]"
            _resource_name(errs, str(name), rpath)
            q = _quantity(values[name])
            if q is not None and q < 0:
                errs.invalid(rpath, _quantity_text(values[name]), IS_NEGATIVE)
            if section == "requests" and name in limits:
                lim = _quantity(limits[name])
                if q is None or lim is None:
                    continue
                overcommit = not str(name).startswith("hugepages-")
                if not overcommit and q != lim:
                    errs.invalid(f"{path}.requests", _quantity_text(values[name]),
                                 f"must be equal to {name} limit of {_quantity_text(limits[name])}")
                elif q > lim:
                    errs.invalid(f"{path}.requests", _quantity_text(values[name]),
                                 f"must be less than or equal to {name} limit of {_quantity_text(limits[name])}")


def _handler(errs: Errs, handler: Mapping[str, Any], path: str, kinds: tuple[str, ...]) -> None:
    """validateHandler: exactly one of exec / httpGet / tcpSocket / grpc / sleep."""
    count = 0
    for kind in kinds:
        if not has(handler, kind):
            continue
        if count > 0:
            errs.forbidden(f"{path}.{kind}", "may not specify more than 1 handler type")
            continue
        count += 1
        spec, kpath = d(handler.get(kind)), f"{path}.{kind}"
        if kind == "exec" and not lst(spec.get("command")):
            errs.required(f"{kpath}.command")
        elif kind == "httpGet":
            if not st(spec.get("path")):
                errs.required(f"{kpath}.path")
            validate_port_num_or_name(errs, spec.get("port"), f"{kpath}.port")
            scheme = st(spec.get("scheme"))
            if scheme not in HTTP_SCHEMES:
                errs.not_supported(f"{kpath}.scheme", scheme, HTTP_SCHEMES)
            for header in lst(spec.get("httpHeaders")):
                hname = st(d(header).get("name"))
                errs.each(f"{kpath}.httpHeaders", hname, is_http_header_name(hname))
        elif kind == "tcpSocket":
            validate_port_num_or_name(errs, spec.get("port"), f"{kpath}.port")
        elif kind == "grpc":
            port = num(spec.get("port"))
            errs.each(f"{kpath}.port", port, is_valid_port_num(port))
        elif kind == "sleep":
            seconds = num(spec.get("seconds"))
            if seconds <= 0:
                errs.invalid(f"{kpath}.seconds", seconds, "must be greater than 0")
    if count == 0:
        errs.required(path, "must specify a handler type")


PROBE_HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc")
LIFECYCLE_HANDLERS = ("exec", "httpGet", "tcpSocket", "sleep")


def _probe(errs: Errs, probe: Any, path: str, kind: str) -> None:
    """validateProbe + the liveness/readiness/startup specific rules."""
    if probe is None:
        return
    probe = d(probe)
    _handler(errs, probe, path, PROBE_HANDLERS)
    for key in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold"):
        nonnegative(errs, f"{path}.{key}", probe.get(key))
    grace = probe.get("terminationGracePeriodSeconds")
    if _pos_int(grace) and grace <= 0:
        errs.invalid(f"{path}.terminationGracePeriodSeconds", grace, "must be greater than 0")
    if kind in ("liveness", "startup") and num(probe.get("successThreshold")) != 1:
        errs.invalid(f"{path}.successThreshold", num(probe.get("successThreshold")), "must be 1")
    if kind == "readiness" and grace is not None:
        errs.invalid(f"{path}.terminationGracePeriodSeconds", grace, "must not be set for readinessProbes")


def _lifecycle(errs: Errs, lifecycle: Mapping[str, Any], path: str) -> None:
    for hook in ("postStart", "preStop"):
        if has(lifecycle, hook):
            _handler(errs, d(lifecycle.get(hook)), f"{path}.{hook}", LIFECYCLE_HANDLERS)


def _container_common(errs: Errs, ctr: Mapping[str, Any], volumes: Mapping[str, Any], path: str) -> None:
    """validateContainerCommon, in upstream order."""
    name = st(ctr.get("name"))
    if not name:
        errs.required(f"{path}.name")
    else:
        errs.each(f"{path}.name", name, is_dns1123_label(name))
    if not st(ctr.get("image")):
        errs.required(f"{path}.image")
    policy = st(ctr.get("terminationMessagePolicy"))
    if not policy:
        errs.required(f"{path}.terminationMessagePolicy")
    elif policy not in TERMINATION_MESSAGE_POLICIES:
        errs.not_supported(f"{path}.terminationMessagePolicy", policy, TERMINATION_MESSAGE_POLICIES)
    _container_ports(errs, ctr.get("ports"), f"{path}.ports")
    _env(errs, ctr.get("env"), f"{path}.env")
    _env_from(errs, ctr.get("envFrom"), f"{path}.envFrom")
    _volume_mounts(errs, ctr.get("volumeMounts"), volumes, f"{path}.volumeMounts")
    pull = st(ctr.get("imagePullPolicy"))
    if not pull:
        errs.required(f"{path}.imagePullPolicy")
    elif pull not in PULL_POLICIES:
        errs.not_supported(f"{path}.imagePullPolicy", pull, PULL_POLICIES)
    _resources(errs, d(ctr.get("resources")), f"{path}.resources")
    security = d(ctr.get("securityContext"))
    for key in ("runAsUser", "runAsGroup"):
        value = security.get(key)
        if _pos_int(value) and not 0 <= value <= 0xFFFFFFFF:
            errs.invalid(f"{path}.securityContext.{key}", value, inclusive_range_error(0, 4294967295))


def _host_port_conflicts(errs: Errs, containers: list[Any], path: str, seen: set[str] | None = None) -> None:
    """AccumulateUniqueHostPorts: `hostIP/protocol/port` may appear once in a pod."""
    seen = set() if seen is None else seen
    for ci, ctr in enumerate(containers):
        for pi, port in enumerate(lst(d(ctr).get("ports"))):
            port = d(port)
            host_port = num(port.get("hostPort"))
            if host_port == 0:
                continue
            key = f"{st(port.get('hostIP'))}/{st(port.get('protocol'))}/{host_port}"
            if key in seen:
                errs.duplicate(f"{path}[{ci}].ports[{pi}].hostPort", key)
            else:
                seen.add(key)


def _containers(errs: Errs, containers: Any, volumes: Mapping[str, Any], path: str) -> None:
    """validateContainers: required, common rules, unique names, probes, host ports."""
    items = lst(containers)
    if not items:
        errs.required(path)
        return
    names: set[str] = set()
    for i, ctr in enumerate(items):
        ctr, ipath = d(ctr), f"{path}[{i}]"
        _container_common(errs, ctr, volumes, ipath)
        name = st(ctr.get("name"))
        if name in names:
            errs.duplicate(f"{ipath}.name", name)
        else:
            names.add(name)
        if has(ctr, "lifecycle"):
            _lifecycle(errs, d(ctr.get("lifecycle")), f"{ipath}.lifecycle")
        _probe(errs, ctr.get("livenessProbe"), f"{ipath}.livenessProbe", "liveness")
        _probe(errs, ctr.get("readinessProbe"), f"{ipath}.readinessProbe", "readiness")
        _probe(errs, ctr.get("startupProbe"), f"{ipath}.startupProbe", "startup")
        if has(ctr, "restartPolicy"):
            errs.forbidden(f"{ipath}.restartPolicy", "may not be set for non-init containers")
    _host_port_conflicts(errs, items, path)


def _init_containers(errs: Errs, containers: Any, regular: Any, volumes: Mapping[str, Any], path: str) -> None:
    """validateInitContainers: names unique with the regular ones; probes only for sidecars."""
    names = {st(d(c).get("name")) for c in lst(regular)}
    for i, ctr in enumerate(lst(containers)):
        ctr, ipath = d(ctr), f"{path}[{i}]"
        _container_common(errs, ctr, volumes, ipath)
        restart_always = False
        if has(ctr, "restartPolicy"):
            policy = st(ctr.get("restartPolicy"))
            if policy != "Always":
                errs.not_supported(f"{ipath}.restartPolicy", policy, ("Always",))
            restart_always = policy == "Always"
        name = st(ctr.get("name"))
        if name in names:
            errs.duplicate(f"{ipath}.name", name)
        elif name:
            names.add(name)
        _host_port_conflicts(errs, [ctr], path)
        if restart_always:
            if has(ctr, "lifecycle"):
                _lifecycle(errs, d(ctr.get("lifecycle")), f"{ipath}.lifecycle")
            _probe(errs, ctr.get("livenessProbe"), f"{ipath}.livenessProbe", "liveness")
            _probe(errs, ctr.get("readinessProbe"), f"{ipath}.readinessProbe", "readiness")
            _probe(errs, ctr.get("startupProbe"), f"{ipath}.startupProbe", "startup")
        else:
            for key in ("lifecycle", "livenessProbe", "readinessProbe", "startupProbe"):
                if has(ctr, key):
                    errs.forbidden(f"{ipath}.{key}", "may not be set for init containers without restartPolicy=Always")


def _host_network_deps(errs: Errs, spec: Mapping[str, Any], path: str, is_pod: bool) -> None:
    """validatePodHostNetworkDeps (1.28+): hostPort must equal containerPort (0 allowed in templates)."""
    if spec.get("hostNetwork") is not True:
        return
    for ci, ctr in enumerate(lst(spec.get("containers"))):
        for pi, port in enumerate(lst(d(ctr).get("ports"))):
            port = d(port)
            host_port, container_port = num(port.get("hostPort")), num(port.get("containerPort"))
            if (is_pod or host_port != 0) and host_port != container_port:
                errs.invalid(f"{path}.containers[{ci}].ports[{pi}].hostPort", host_port,
                             "must match `containerPort` when `hostNetwork` is true")


def _tolerations(errs: Errs, tolerations: Any, path: str) -> None:
    """ValidateTolerations."""
    for i, tol in enumerate(lst(tolerations)):
        tol, ipath = d(tol), f"{path}[{i}]"
        key, operator, value, effect = (st(tol.get(k)) for k in ("key", "operator", "value", "effect"))
        if key:
            errs.each(f"{ipath}.key", key, is_qualified_name(key))
        if not key and operator != "Exists":
            errs.invalid(f"{ipath}.operator", operator,
                         'operator must be Exists when `key` is empty, which means "match all values and all keys"')
        if has(tol, "tolerationSeconds") and effect != "NoExecute":
            errs.invalid(f"{ipath}.effect", effect, "effect must be 'NoExecute' when `tolerationSeconds` is set")
        if operator in ("Equal", ""):
            msgs = is_valid_label_value(value)
            if msgs:
                errs.invalid(f"{ipath}.operator", value, ";".join(msgs))
        elif operator == "Exists":
            if value:
                errs.invalid(f"{ipath}.operator", GoRepr(_toleration_repr(tol)),
                             "value must be empty when `operator` is 'Exists'")
        else:
            errs.not_supported(f"{ipath}.operator", operator, ("Equal", "Exists"))
        if effect and effect not in TOLERATION_EFFECTS:
            errs.not_supported(f"{ipath}.effect", effect, TOLERATION_EFFECTS)


def _toleration_repr(tol: Mapping[str, Any]) -> str:
    seconds = tol.get("tolerationSeconds")
    secs = "(*int64)(nil)" if seconds is None else "(*int64)(0xc000000000)"
    return (
        f"core.Toleration{{Key:{go_quote(st(tol.get('key')))}, Operator:{go_quote(st(tol.get('operator')))}, "
        f"Value:{go_quote(st(tol.get('value')))}, Effect:{go_quote(st(tol.get('effect')))}, TolerationSeconds:{secs}}}"
    )


def _dns_config(errs: Errs, spec: Mapping[str, Any], path: str) -> None:
    policy = st(spec.get("dnsPolicy"))
    config = spec.get("dnsConfig")
    if policy == "None":
        if config is None:
            errs.required(path, "must provide `dnsConfig` when `dnsPolicy` is None")
            return
        if not lst(d(config).get("nameservers")):
            errs.required(f"{path}.nameservers", "must provide at least one DNS nameserver when `dnsPolicy` is None")
            return
    if config is None:
        return
    config = d(config)
    nameservers = [st(n) for n in lst(config.get("nameservers"))]
    if len(nameservers) > 3:
        errs.invalid(f"{path}.nameservers", go_str_slice(nameservers), "must not have more than 3 nameservers")
    for i, server in enumerate(nameservers):
        is_valid_ip(errs, f"{path}.nameservers[{i}]", server)
    searches = [st(s) for s in lst(config.get("searches"))]
    if len(searches) > 32:
        errs.invalid(f"{path}.searches", go_str_slice(searches), "must not have more than 32 search paths")
    if go_len(" ".join(searches)) > 2048:
        errs.invalid(f"{path}.searches", go_str_slice(searches),
                     "must not have more than 2048 characters (including spaces) in the search list")
    for i, search in enumerate(searches):
        search = search[:-1] if search.endswith(".") else search
        errs.each(f"{path}.searches[{i}]", search, is_dns1123_subdomain(search))


def validate_pod_spec(errs: Errs, spec: Mapping[str, Any], path: str, *, is_pod: bool) -> None:
    """ValidatePodSpec, in upstream order (volumes, containers, init containers, host network, ...)."""
    volumes = validate_volumes(errs, spec.get("volumes"), f"{path}.volumes")
    _containers(errs, spec.get("containers"), volumes, f"{path}.containers")
    _init_containers(errs, spec.get("initContainers"), spec.get("containers"), volumes, f"{path}.initContainers")
    _host_network_deps(errs, spec, path, is_pod)
    restart = st(spec.get("restartPolicy"))
    if not restart:
        errs.required(f"{path}.restartPolicy")
    elif restart not in RESTART_POLICIES:
        errs.not_supported(f"{path}.restartPolicy", restart, RESTART_POLICIES)
    dns = st(spec.get("dnsPolicy"))
    if not dns:
        errs.required(f"{path}.dnsPolicy")
    elif dns not in DNS_POLICIES:
        errs.not_supported(f"{path}.dnsPolicy", dns, DNS_POLICIES)
    validate_labels(errs, spec.get("nodeSelector"), f"{path}.nodeSelector")
    security = d(spec.get("securityContext"))
    for key in ("fsGroup", "runAsUser", "runAsGroup"):
        value = security.get(key)
        if _pos_int(value) and not 0 <= value <= 0xFFFFFFFF:
            errs.invalid(f"{path}.securityContext.{key}", value, inclusive_range_error(0, 4294967295))
    for i, secret in enumerate(lst(spec.get("imagePullSecrets"))):
        if set(d(secret)) - {"name"}:
            errs.invalid(f"{path}.imagePullSecrets[{i}]", GoRepr(f"core.LocalObjectReference{{Name:{go_quote(st(d(secret).get('name')))}}}"),
                         "only name may be set")
    _dns_config(errs, spec, f"{path}.dnsConfig")
    account = st(spec.get("serviceAccountName"))
    if account:
        errs.each(f"{path}.serviceAccountName", account, is_dns1123_subdomain(account))
    node = st(spec.get("nodeName"))
    if node:
        errs.each(f"{path}.nodeName", node, is_dns1123_subdomain(node))
    deadline = spec.get("activeDeadlineSeconds")
    if _pos_int(deadline) and not 1 <= deadline <= MAX_INT32:
        errs.invalid(f"{path}.activeDeadlineSeconds", deadline, inclusive_range_error(1, MAX_INT32))
    for key in ("hostname", "subdomain"):
        value = st(spec.get(key))
        if value:
            errs.each(f"{path}.{key}", value, is_dns1123_label(value))
    _tolerations(errs, spec.get("tolerations"), f"{path}.tolerations")
    priority_class = st(spec.get("priorityClassName"))
    if priority_class:
        errs.each(f"{path}.priorityClassName", priority_class, is_dns1123_subdomain(priority_class))


def validate_pod_template(errs: Errs, template: Mapping[str, Any], path: str) -> None:
    """ValidatePodTemplateSpec: labels, annotations, the pod spec; no ephemeral containers."""
    meta = d(template.get("metadata"))
    # upstream uses fldPath.Child("labels"), hence `spec.template.labels`, not `.metadata.labels`
    validate_labels(errs, meta.get("labels"), f"{path}.labels")
    validate_annotations(errs, meta.get("annotations"), f"{path}.annotations")
    spec = d(template.get("spec"))
    validate_pod_spec(errs, spec, f"{path}.spec", is_pod=False)
    if lst(spec.get("ephemeralContainers")):
        errs.forbidden(f"{path}.spec.ephemeralContainers", "ephemeral containers not allowed in pod template")


def validate_pod(errs: Errs, obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> None:
    """ValidatePodCreate: metadata, spec (as a Pod: hostPort must be set), image whitespace."""
    spec = d(obj.get("spec"))
    validate_pod_spec(errs, spec, "spec", is_pod=True)
    if old is None and lst(spec.get("ephemeralContainers")):
        errs.forbidden("spec.ephemeralContainers", "cannot be set on create")
    for key in ("containers", "initContainers"):
        for i, ctr in enumerate(lst(spec.get(key))):
            image = st(d(ctr).get("image"))
            if image != image.strip():
                errs.invalid(f"spec.{key}[{i}].image", image, "must not have leading or trailing whitespace")


# --------------------------------------------------------------------------------------------
# Label selectors in specs (apimachinery/pkg/apis/meta/v1/validation)
# --------------------------------------------------------------------------------------------


def validate_label_selector(errs: Errs, sel: Any, path: str) -> None:
    """metav1validation.ValidateLabelSelector (label values checked strictly)."""
    if sel is None:
        return
    sel = d(sel)
    validate_labels(errs, sel.get("matchLabels"), f"{path}.matchLabels")
    for i, expr in enumerate(lst(sel.get("matchExpressions"))):
        expr, ipath = d(expr), f"{path}.matchExpressions[{i}]"
        operator = st(expr.get("operator"))
        values = [st(v) for v in lst(expr.get("values"))]
        if operator in ("In", "NotIn"):
            if not values:
                errs.required(f"{ipath}.values", "must be specified when `operator` is 'In' or 'NotIn'")
        elif operator in ("Exists", "DoesNotExist"):
            if values:
                errs.forbidden(f"{ipath}.values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'")
        else:
            errs.invalid(f"{ipath}.operator", operator, "not a valid selector operator")
        key = st(expr.get("key"))
        errs.each(f"{ipath}.key", key, is_qualified_name(key))
        for vi, value in enumerate(values):
            errs.each(f"{ipath}.values[{vi}]", value, is_valid_label_value(value))


def selector_matcher(sel: Any) -> Callable[[Mapping[str, str]], bool] | None:
    """metav1.LabelSelectorAsSelector(...).Matches, or None when the conversion fails."""
    from .selectors import selector_from_label_selector

    try:
        selector = selector_from_label_selector(sel if sel is None else d(sel))
    except ApiError:
        return None
    return selector.matches


def _selector_is_empty(sel: Any) -> bool:
    sel = d(sel)
    return not d(sel.get("matchLabels")) and not lst(sel.get("matchExpressions"))


def template_labels_repr(template: Mapping[str, Any]) -> GoRepr:
    labels = d(template.get("metadata")).get("labels")
    return go_map_ss(smap(labels) if isinstance(labels, Mapping) else None)


def _template_labels(template: Mapping[str, Any]) -> dict[str, str]:
    return smap(d(template.get("metadata")).get("labels"))


# --------------------------------------------------------------------------------------------
# IntOrString helpers (pkg/apis/apps/validation)
# --------------------------------------------------------------------------------------------


def _atoi(text: str) -> int:
    return int(text) if re.fullmatch(r"[+-]?[0-9]+", text) else 0


def _percent_value(value: Any) -> tuple[int, bool]:
    if not isinstance(value, str) or is_valid_percent(value):
        return 0, False
    return int(value[:-1]), True


def int_or_percent_value(value: Any) -> int:
    """getIntOrPercentValue: the percentage, else IntOrString.IntValue()."""
    pct, ok = _percent_value(value)
    if ok:
        return pct
    return _atoi(value) if isinstance(value, str) else num(value)


def validate_positive_int_or_percent(errs: Errs, value: Any, path: str) -> None:
    if isinstance(value, str):
        errs.each(path, intstr_string(value), is_valid_percent(value))
    else:
        nonnegative(errs, path, num(value))


def not_more_than_100_percent(errs: Errs, value: Any, path: str) -> None:
    pct, ok = _percent_value(value)
    if ok and pct > 100:
        errs.invalid(path, intstr_string(value), "must not be greater than 100%")


# --------------------------------------------------------------------------------------------
# apps/v1 workloads
# --------------------------------------------------------------------------------------------


def _template_common(errs: Errs, spec: Mapping[str, Any], path: str, kind: str) -> None:
    """The restartPolicy / activeDeadlineSeconds rules every workload template shares."""
    template_spec = d(d(spec.get("template")).get("spec"))
    restart = st(template_spec.get("restartPolicy"))
    if restart != "Always":
        errs.not_supported(f"{path}.template.spec.restartPolicy", restart, ("Always",))
    if has(template_spec, "activeDeadlineSeconds"):
        errs.forbidden(f"{path}.template.spec.activeDeadlineSeconds", f"activeDeadlineSeconds in {kind} is not Supported")


def _strategy_repr(go_type: str, rolling_type: str, strategy: Mapping[str, Any]) -> GoRepr:
    rolling = "(nil)" if strategy.get("rollingUpdate") is None else "(0xc000a1c0f0)"
    return GoRepr(f"{go_type}{{Type:{go_quote(st(strategy.get('type')))}, RollingUpdate:(*{rolling_type}){rolling}}}")


def _daemonset_strategy(errs: Errs, strategy: Mapping[str, Any], path: str) -> None:
    """ValidateDaemonSetUpdateStrategy + ValidateRollingUpdateDaemonSet."""
    stype = st(strategy.get("type"))
    if stype == "OnDelete":
        return
    if stype != "RollingUpdate":
        errs.not_supported(path, _strategy_repr("apps.DaemonSetUpdateStrategy", "apps.RollingUpdateDaemonSet", strategy),
                           ("RollingUpdate", "OnDelete"))
        return
    if strategy.get("rollingUpdate") is None:
        errs.required(f"{path}.rollingUpdate")
        return
    rolling, rpath = d(strategy.get("rollingUpdate")), f"{path}.rollingUpdate"
    unavailable, surge = rolling.get("maxUnavailable"), rolling.get("maxSurge")
    validate_positive_int_or_percent(errs, unavailable, f"{rpath}.maxUnavailable")
    validate_positive_int_or_percent(errs, surge, f"{rpath}.maxSurge")
    not_more_than_100_percent(errs, unavailable, f"{rpath}.maxUnavailable")
    not_more_than_100_percent(errs, surge, f"{rpath}.maxSurge")
    has_unavailable = int_or_percent_value(unavailable) != 0
    has_surge = int_or_percent_value(surge) != 0
    if has_unavailable and has_surge:
        errs.invalid(f"{rpath}.maxSurge", intstr_string(surge if surge is not None else 0),
                     "may not be set when maxUnavailable is non-zero")
    elif not has_unavailable and not has_surge:
        errs.required(f"{rpath}.maxUnavailable", "cannot be 0 when maxSurge is 0")


def validate_daemonset(errs: Errs, obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> None:
    """ValidateDaemonSetSpec (+ the apps/v1 selector immutability of the update strategy)."""
    spec, path = d(obj.get("spec")), "spec"
    selector, template = spec.get("selector"), d(spec.get("template"))
    validate_label_selector(errs, selector, f"{path}.selector")
    matches = selector_matcher(selector)
    if matches is not None and not matches(_template_labels(template)):
        errs.invalid(f"{path}.template.metadata.labels", template_labels_repr(template),
                     "`selector` does not match template `labels`")
    if selector is not None and _selector_is_empty(selector):
        errs.invalid(f"{path}.selector", go_label_selector(d(selector)), "empty selector is invalid for daemonset")
    validate_pod_template(errs, template, f"{path}.template")
    _template_common(errs, spec, path, "DaemonSet")
    nonnegative(errs, f"{path}.minReadySeconds", spec.get("minReadySeconds"))
    _daemonset_strategy(errs, d(spec.get("updateStrategy")), f"{path}.updateStrategy")
    nonnegative(errs, f"{path}.revisionHistoryLimit", spec.get("revisionHistoryLimit"))
    _immutable_selector(errs, spec, old)


def _immutable_selector(errs: Errs, spec: Mapping[str, Any], old: Mapping[str, Any] | None) -> None:
    """apps/v1 forbids changing spec.selector (ValidateImmutableField, semantic deep equality)."""
    if old is None:
        return
    new_sel, old_sel = spec.get("selector"), d(old.get("spec")).get("selector")
    if _canonical_selector(new_sel) != _canonical_selector(old_sel):
        shown = GoRepr("null") if new_sel is None else go_label_selector(d(new_sel))
        errs.invalid("spec.selector", shown, FIELD_IMMUTABLE)


def _canonical_selector(sel: Any) -> Any:
    """Semantic.DeepEqual view of a selector: nil vs empty collections still differ, as in Go."""
    if sel is None:
        return None
    sel = d(sel)
    labels = sel.get("matchLabels")
    exprs = sel.get("matchExpressions")
    return (
        None if labels is None else tuple(sorted(smap(labels).items())),
        None if exprs is None else tuple(
            (st(d(e).get("key")), st(d(e).get("operator")),
             None if d(e).get("values") is None else tuple(st(v) for v in lst(d(e).get("values"))))
            for e in lst(exprs)
        ),
    )


def _required_selector(errs: Errs, spec: Mapping[str, Any], path: str, kind: str) -> Callable[[Mapping[str, str]], bool] | None:
    """The Deployment/ReplicaSet/StatefulSet selector rules; returns the matcher when it converts."""
    selector = spec.get("selector")
    if selector is None:
        errs.required(f"{path}.selector")
    else:
        validate_label_selector(errs, selector, f"{path}.selector")
        if _selector_is_empty(selector):
            errs.invalid(f"{path}.selector", go_label_selector(d(selector)), f"empty selector is invalid for {kind}")
    matches = selector_matcher(selector)
    if matches is None:
        detail = "" if kind == "statefulset" else "invalid label selector"
        errs.invalid(f"{path}.selector", go_label_selector(d(selector)), detail)
    return matches


def _template_for_replicaset(errs: Errs, spec: Mapping[str, Any], matches: Callable[[Mapping[str, str]], bool],
                             path: str, kind: str, selector_empty: bool) -> None:
    """ValidatePodTemplateSpecForReplicaSet."""
    template = d(spec.get("template"))
    if not selector_empty and not matches(_template_labels(template)):
        errs.invalid(f"{path}.template.metadata.labels", template_labels_repr(template),
                     "`selector` does not match template `labels`")
    validate_pod_template(errs, template, f"{path}.template")
    _template_common(errs, spec, path, kind)


def _deployment_strategy(errs: Errs, strategy: Mapping[str, Any], path: str) -> None:
    stype = st(strategy.get("type"))
    if stype == "Recreate":
        if strategy.get("rollingUpdate") is not None:
            errs.forbidden(f"{path}.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'")
    elif stype == "RollingUpdate":
        if strategy.get("rollingUpdate") is None:
            errs.required(f"{path}.rollingUpdate", "this should be defaulted and never be nil")
            return
        rolling, rpath = d(strategy.get("rollingUpdate")), f"{path}.rollingUpdate"
        unavailable, surge = rolling.get("maxUnavailable"), rolling.get("maxSurge")
        validate_positive_int_or_percent(errs, unavailable, f"{rpath}.maxUnavailable")
        validate_positive_int_or_percent(errs, surge, f"{rpath}.maxSurge")
        if int_or_percent_value(unavailable) == 0 and int_or_percent_value(surge) == 0:
            errs.invalid(f"{rpath}.maxUnavailable", intstr_string(unavailable if unavailable is not None else 0),
                         "may not be 0 when `maxSurge` is 0")
        not_more_than_100_percent(errs, unavailable, f"{rpath}.maxUnavailable")
    else:
        errs.not_supported(path, _strategy_repr("apps.DeploymentStrategy", "apps.RollingUpdateDeployment", strategy),
                           ("Recreate", "RollingUpdate"))


def validate_deployment(errs: Errs, obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> None:
    """ValidateDeploymentSpec (+ selector immutability)."""
    spec, path = d(obj.get("spec")), "spec"
    nonnegative(errs, f"{path}.replicas", spec.get("replicas"))
    matches = _required_selector(errs, spec, path, "deployment")
    if matches is not None:
        _template_for_replicaset(errs, spec, matches, path, "ReplicaSet",
                                 spec.get("selector") is not None and _selector_is_empty(spec.get("selector")))
    _deployment_strategy(errs, d(spec.get("strategy")), f"{path}.strategy")
    nonnegative(errs, f"{path}.minReadySeconds", spec.get("minReadySeconds"))
    nonnegative(errs, f"{path}.revisionHistoryLimit", spec.get("revisionHistoryLimit"))
    deadline = spec.get("progressDeadlineSeconds")
    if _pos_int(deadline):
        nonnegative(errs, f"{path}.progressDeadlineSeconds", deadline)
        if deadline <= num(spec.get("minReadySeconds")):
            errs.invalid(f"{path}.progressDeadlineSeconds", deadline, "must be greater than minReadySeconds")
    _immutable_selector(errs, spec, old)


def validate_replicaset(errs: Errs, obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> None:
    """ValidateReplicaSetSpec (its empty-selector text says "deployment" upstream too)."""
    spec, path = d(obj.get("spec")), "spec"
    nonnegative(errs, f"{path}.replicas", spec.get("replicas"))
    nonnegative(errs, f"{path}.minReadySeconds", spec.get("minReadySeconds"))
    matches = _required_selector(errs, spec, path, "deployment")
    if matches is not None:
        _template_for_replicaset(errs, spec, matches, path, "ReplicaSet",
                                 spec.get("selector") is not None and _selector_is_empty(spec.get("selector")))
    _immutable_selector(errs, spec, old)


def validate_statefulset(errs: Errs, obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> None:
    """ValidateStatefulSetSpec (the pod spec of the template is not validated upstream either)."""
    spec, path = d(obj.get("spec")), "spec"
    policy = st(spec.get("podManagementPolicy"))
    if not policy:
        errs.required(f"{path}.podManagementPolicy")
    elif policy not in ("OrderedReady", "Parallel"):
        errs.invalid(f"{path}.podManagementPolicy", policy, "must be 'OrderedReady' or 'Parallel'")
    strategy = d(spec.get("updateStrategy"))
    stype = st(strategy.get("type"))
    if not stype:
        errs.required(f"{path}.updateStrategy")
    elif stype == "OnDelete":
        if strategy.get("rollingUpdate") is not None:
            errs.invalid(f"{path}.updateStrategy.rollingUpdate", GoRepr("&apps.RollingUpdateStatefulSetStrategy{}"),
                         "only allowed for updateStrategy 'RollingUpdate'")
    elif stype == "RollingUpdate":
        partition = d(strategy.get("rollingUpdate")).get("partition")
        nonnegative(errs, f"{path}.updateStrategy.rollingUpdate.partition", partition)
    else:
        errs.invalid(f"{path}.updateStrategy", _strategy_repr("apps.StatefulSetUpdateStrategy",
                     "apps.RollingUpdateStatefulSetStrategy", strategy), "must be 'RollingUpdate' or 'OnDelete'")
    retention = d(spec.get("persistentVolumeClaimRetentionPolicy"))
    for key in ("whenDeleted", "whenScaled"):
        value = st(retention.get(key))
        if value not in ("Retain", "Delete"):
            errs.not_supported(f"{path}.persistentVolumeClaimRetentionPolicy.{key}", value, ("Retain", "Delete"))
    nonnegative(errs, f"{path}.replicas", spec.get("replicas"))
    nonnegative(errs, f"{path}.minReadySeconds", spec.get("minReadySeconds"))
    matches = _required_selector(errs, spec, path, "statefulset")
    template = d(spec.get("template"))
    if matches is not None:
        selector = spec.get("selector")
        if not (selector is not None and _selector_is_empty(selector)) and not matches(_template_labels(template)):
            errs.invalid(f"{path}.template.metadata.labels", template_labels_repr(template),
                         "`selector` does not match template `labels`")
        meta = d(template.get("metadata"))
        validate_labels(errs, meta.get("labels"), f"{path}.template.labels")
        validate_annotations(errs, meta.get("annotations"), f"{path}.template.annotations")
    _template_common(errs, spec, path, "StatefulSet")
    _immutable_selector(errs, spec, old)


def validate_controller_revision(errs: Errs, obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> None:
    if obj.get("data") is None:
        errs.required("data", "data is mandatory")
    nonnegative(errs, "revision", obj.get("revision"))
    if old is not None and obj.get("data") != old.get("data"):
        errs.invalid("data", GoRepr("runtime.RawExtension{...}"), FIELD_IMMUTABLE)


# --------------------------------------------------------------------------------------------
# Service
# --------------------------------------------------------------------------------------------

SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")  # sets.List: sorted
SESSION_AFFINITIES = ("ClientIP", "None")
TRAFFIC_POLICIES = ("Cluster", "Local")
IP_FAMILIES = ("IPv4", "IPv6")
IP_FAMILY_POLICIES = ("PreferDualStack", "RequireDualStack", "SingleStack")
MAX_CLIENT_IP_TIMEOUT = 86400


def cluster_ips(spec: Mapping[str, Any]) -> list[str]:
    """ClusterIPs as the strategy normalizes them: clusterIP alone stands for [clusterIP]."""
    ips = [st(ip) for ip in lst(spec.get("clusterIPs"))]
    cluster_ip = st(spec.get("clusterIP"))
    if not ips and cluster_ip:
        return [cluster_ip]
    return ips


def is_headless(spec: Mapping[str, Any]) -> bool:
    ips = cluster_ips(spec)
    return bool(ips) and ips[0] == "None"


def externally_accessible(spec: Mapping[str, Any]) -> bool:
    stype = st(spec.get("type"))
    return stype in ("LoadBalancer", "NodePort") or (stype == "ClusterIP" and bool(lst(spec.get("externalIPs"))))


def _service_port(errs: Errs, port: Mapping[str, Any], require_name: bool, names: set[str], path: str) -> None:
    """validateServicePort."""
    name = st(port.get("name"))
    if require_name and not name:
        errs.required(f"{path}.name")
    elif name:
        errs.each(f"{path}.name", name, is_dns1123_label(name))
        if name in names:
            errs.duplicate(f"{path}.name", name)
        else:
            names.add(name)
    number = num(port.get("port"))
    errs.each(f"{path}.port", number, is_valid_port_num(number))
    protocol = st(port.get("protocol"))
    if not protocol:
        errs.required(f"{path}.protocol")
    elif protocol not in PROTOCOLS:
        errs.not_supported(f"{path}.protocol", protocol, PROTOCOLS)
    validate_port_num_or_name(errs, port.get("targetPort"), f"{path}.targetPort")
    if port.get("appProtocol") is not None:
        app = st(port.get("appProtocol"))
        errs.each(f"{path}.appProtocol", app, is_qualified_name(app))


def _service_port_repr(port: Mapping[str, Any]) -> GoRepr:
    """%#v of the core.ServicePort{Protocol, Port} key the duplicate check uses."""
    return GoRepr(
        f'core.ServicePort{{Name:"", Protocol:{go_quote(st(port.get("protocol")))}, AppProtocol:(*string)(nil), '
        f'Port:{num(port.get("port"))}, TargetPort:{go_intstr_struct(0)}, NodePort:0}}'
    )


def _cluster_ip_fields(errs: Errs, spec: Mapping[str, Any]) -> None:
    """ValidateServiceClusterIPsRelatedFields (after the strategy synced clusterIP/clusterIPs)."""
    if st(spec.get("type")) == "ExternalName":
        return
    ips = cluster_ips(spec)
    cluster_ip = st(spec.get("clusterIP"))
    if cluster_ip and ips and ips[0] != cluster_ip:
        errs.invalid("spec.clusterIPs", go_str_slice(ips), "first value must match `clusterIP`")
    families = [st(f) for f in lst(spec.get("ipFamilies"))]
    seen: set[str] = set()
    for i, family in enumerate(families):
        if family not in IP_FAMILIES:
            errs.not_supported(f"spec.ipFamilies[{i}]", family, IP_FAMILIES)
        if family in seen:
            errs.duplicate(f"spec.ipFamilies[{i}]", family)
        seen.add(family)
    if spec.get("ipFamilyPolicy") is not None and st(spec.get("ipFamilyPolicy")) not in IP_FAMILY_POLICIES:
        errs.not_supported("spec.ipFamilyPolicy", st(spec.get("ipFamilyPolicy")), IP_FAMILY_POLICIES)
    bad = False
    for i, ip in enumerate(ips):
        if i == 0 and ip == "None":
            if len(ips) > 1:
                bad = True
                errs.invalid("spec.clusterIPs", go_str_slice(ips), "'None' must be the first and only value")
            continue
        bad = not is_valid_ip(errs, f"spec.clusterIPs[{i}]", ip) or bad
    if len(ips) > 2:
        errs.invalid("spec.clusterIPs", go_str_slice(ips), "may only hold up to 2 values")
    if bad:
        return
    if len(ips) > 1 and len({parse_ip(ip).version for ip in ips if parse_ip(ip)}) != len(ips):  # type: ignore[union-attr]
        errs.invalid("spec.clusterIPs", go_str_slice(ips), "may specify no more than one IP for each IP family")
    if not is_headless(spec):
        for i, ip in enumerate(ips[: len(families)]):
            parsed = parse_ip(ip)
            if parsed is None:
                continue
            if families[i] == "IPv4" and parsed.version == 6:
                errs.invalid(f"spec.clusterIPs[{i}]", ip, f"expected an IPv4 value as indicated by `ipFamilies[{i}]`")
            if families[i] == "IPv6" and parsed.version == 4:
                errs.invalid(f"spec.clusterIPs[{i}]", ip, f"expected an IPv6 value as indicated by `ipFamilies[{i}]`")


def _service_type_rules(errs: Errs, spec: Mapping[str, Any]) -> None:
    stype = st(spec.get("type"))
    ips = cluster_ips(spec)
    if stype in ("LoadBalancer", "NodePort") and is_headless(spec):
        errs.invalid("spec.clusterIPs[0]", ips[0], f"may not be set to 'None' for {stype} services")
    elif stype == "ExternalName":
        if ips:
            errs.forbidden("spec.clusterIPs", "may not be set for ExternalName services")
        if lst(spec.get("ipFamilies")):
            errs.forbidden("spec.ipFamilies", "may not be set for ExternalName services")
        if spec.get("ipFamilyPolicy") is not None:
            errs.forbidden("spec.ipFamilyPolicy", "may not be set for ExternalName services")
        cname = st(spec.get("externalName"))
        cname = cname[:-1] if cname.endswith(".") else cname
        if cname:
            errs.each("spec.externalName", cname, is_dns1123_subdomain(cname))
        else:
            errs.required("spec.externalName")


def _session_affinity(errs: Errs, spec: Mapping[str, Any]) -> None:
    affinity = st(spec.get("sessionAffinity"))
    if not affinity:
        errs.required("spec.sessionAffinity")
    elif affinity not in SESSION_AFFINITIES:
        errs.not_supported("spec.sessionAffinity", affinity, SESSION_AFFINITIES)
    config = spec.get("sessionAffinityConfig")
    if affinity == "ClientIP":
        client = d(d(config).get("clientIP"))
        timeout = client.get("timeoutSeconds")
        path = "spec.sessionAffinityConfig.clientIP.timeoutSeconds"
        if timeout is None:
            errs.required(path)
        elif not 0 < num(timeout) <= MAX_CLIENT_IP_TIMEOUT:
            errs.invalid(path, num(timeout), f"must be greater than 0 and less than {MAX_CLIENT_IP_TIMEOUT}")
    elif affinity == "None" and config is not None:
        errs.forbidden("spec.sessionAffinityConfig", "must not be set when session affinity is None")


def _service_ports_unique(errs: Errs, ports: list[Any]) -> None:
    node_ports: set[tuple[str, int]] = set()
    for i, port in enumerate(ports):
        port = d(port)
        node_port = num(port.get("nodePort"))
        if node_port == 0:
            continue
        key = (st(port.get("protocol")), node_port)
        if key in node_ports:
            errs.duplicate(f"spec.ports[{i}].nodePort", node_port)
        node_ports.add(key)
    seen: set[tuple[str, int]] = set()
    for i, port in enumerate(ports):
        port = d(port)
        key = (st(port.get("protocol")), num(port.get("port")))
        if key in seen:
            errs.duplicate(f"spec.ports[{i}]", _service_port_repr(port))
        seen.add(key)


def _traffic_policies(errs: Errs, spec: Mapping[str, Any]) -> None:
    """validateServiceExternalTrafficPolicy / InternalTrafficFieldsValue / TrafficDistribution."""
    etp = st(spec.get("externalTrafficPolicy"))
    if not externally_accessible(spec):
        if etp:
            errs.invalid("spec.externalTrafficPolicy", etp, "may only be set for externally-accessible services")
    elif not etp:
        errs.required("spec.externalTrafficPolicy")
    elif etp not in TRAFFIC_POLICIES:
        errs.not_supported("spec.externalTrafficPolicy", etp, TRAFFIC_POLICIES)
    hc = num(spec.get("healthCheckNodePort"))
    needs_hc = st(spec.get("type")) == "LoadBalancer" and etp == "Local"
    if not needs_hc and hc != 0:
        errs.invalid("spec.healthCheckNodePort", hc,
                     "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'")
    elif needs_hc and hc != 0:
        errs.each("spec.healthCheckNodePort", hc, is_valid_port_num(hc))
    stype = st(spec.get("type"))
    itp = spec.get("internalTrafficPolicy")
    if itp is None and stype in ("NodePort", "LoadBalancer", "ClusterIP"):
        errs.required("spec.internalTrafficPolicy")
    if itp is not None and st(itp) not in TRAFFIC_POLICIES:
        errs.not_supported("spec.internalTrafficPolicy", st(itp), TRAFFIC_POLICIES)
    distribution = spec.get("trafficDistribution")
    if distribution is not None and st(distribution) != "PreferClose":
        errs.not_supported("spec.trafficDistribution", st(distribution), ("PreferClose",))


def _load_balancer_fields(errs: Errs, spec: Mapping[str, Any], annotations: Mapping[str, str]) -> None:
    stype = st(spec.get("type"))
    ranges = [st(r) for r in lst(spec.get("loadBalancerSourceRanges"))]
    if ranges:
        path = "spec.LoadBalancerSourceRanges"  # sic: upstream capitalises it
        if stype != "LoadBalancer":
            errs.forbidden(path, "may only be used when `type` is 'LoadBalancer'")
        for i, value in enumerate(ranges):
            is_valid_cidr(errs, f"{path}[{i}]", value.strip())
    elif "service.beta.kubernetes.io/load-balancer-source-ranges" in annotations:
        key = "service.beta.kubernetes.io/load-balancer-source-ranges"
        path = f"metadata.annotations[{key}]"
        if stype != "LoadBalancer":
            errs.forbidden(path, "may only be used when `type` is 'LoadBalancer'")
        value = annotations[key].strip()
        if value:
            for cidr in value.split(","):
                is_valid_cidr(errs, path, cidr.strip())
    if spec.get("allocateLoadBalancerNodePorts") is not None and stype != "LoadBalancer":
        errs.forbidden("spec.allocateLoadBalancerNodePorts", "may only be used when `type` is 'LoadBalancer'")
    if stype == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        errs.required("allocateLoadBalancerNodePorts")  # sic: upstream builds the path from the root
    lb_class = spec.get("loadBalancerClass")
    if lb_class is not None:
        if stype != "LoadBalancer":
            errs.forbidden("spec.loadBalancerClass", "may only be used when service type is 'LoadBalancer'")
        else:
            errs.each("spec.loadBalancerClass", st(lb_class), is_qualified_name(st(lb_class)))


def service_view_for_update(spec: Mapping[str, Any], old_spec: Mapping[str, Any]) -> dict[str, Any]:
    """dropTypeDependentFields: what PrepareForUpdate wipes when the type no longer needs it."""
    view = dict(spec)
    if externally_accessible(old_spec) and not externally_accessible(view):
        if st(view.get("externalTrafficPolicy")) == st(old_spec.get("externalTrafficPolicy")):
            view["externalTrafficPolicy"] = ""
    old_type, new_type = st(old_spec.get("type")), st(view.get("type"))
    if old_type in ("NodePort", "LoadBalancer") and new_type not in ("NodePort", "LoadBalancer"):
        old_ports = [num(d(p).get("nodePort")) for p in lst(old_spec.get("ports"))]
        new_ports = [num(d(p).get("nodePort")) for p in lst(view.get("ports"))]
        if new_ports == old_ports[: len(new_ports)] or not any(new_ports):
            view["ports"] = [{**d(p), "nodePort": 0} for p in lst(view.get("ports"))]
        if num(view.get("healthCheckNodePort")) == num(old_spec.get("healthCheckNodePort")):
            view["healthCheckNodePort"] = 0
    if old_type == "LoadBalancer" and new_type != "LoadBalancer":
        if view.get("allocateLoadBalancerNodePorts") == old_spec.get("allocateLoadBalancerNodePorts"):
            view.pop("allocateLoadBalancerNodePorts", None)
        if view.get("loadBalancerClass") == old_spec.get("loadBalancerClass"):
            view.pop("loadBalancerClass", None)
    if new_type == "ExternalName" and old_type != "ExternalName":
        if cluster_ips(view) == cluster_ips(old_spec):
            view.pop("clusterIP", None)
            view.pop("clusterIPs", None)
        if view.get("ipFamilies") == old_spec.get("ipFamilies"):
            view.pop("ipFamilies", None)
        if view.get("ipFamilyPolicy") == old_spec.get("ipFamilyPolicy"):
            view.pop("ipFamilyPolicy", None)
    return view


def _cluster_ip_update(errs: Errs, spec: Mapping[str, Any], old_spec: Mapping[str, Any]) -> None:
    """validateUpgradeDowngradeClusterIPs: an allocated clusterIP may not change."""
    if "ExternalName" in (st(spec.get("type")), st(old_spec.get("type"))):
        return
    if is_headless(spec) and is_headless(old_spec):
        return
    old_ips, new_ips = cluster_ips(old_spec), cluster_ips(spec)
    if not new_ips:
        return  # the registry copies the allocated values into an update that omits them
    if len(old_ips) == len(new_ips):
        if any(a != b for a, b in zip(old_ips, new_ips)):
            errs.invalid("spec.clusterIPs[0]", go_str_slice(new_ips), "may not change once set")
    elif len(old_ips) > len(new_ips) and old_ips[0] != new_ips[0]:
        errs.invalid("spec.clusterIPs[0]", go_str_slice(new_ips), "may not change once set")


def validate_service(errs: Errs, obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> None:
    """ValidateService (and ValidateServiceUpdate's clusterIP rule), in upstream order."""
    spec = d(obj.get("spec"))
    if old is not None:
        old_spec = d(old.get("spec"))
        _cluster_ip_update(errs, spec, old_spec)
        spec = service_view_for_update(spec, old_spec)
    stype = st(spec.get("type"))
    ports = lst(spec.get("ports"))
    if not ports and not is_headless(spec) and stype != "ExternalName":
        errs.required("spec.ports")
    _service_type_rules(errs, spec)
    names: set[str] = set()
    for i, port in enumerate(ports):
        _service_port(errs, d(port), len(ports) > 1, names, f"spec.ports[{i}]")
    if spec.get("selector") is not None:
        validate_labels(errs, spec.get("selector"), "spec.selector")
    _session_affinity(errs, spec)
    _cluster_ip_fields(errs, spec)
    for i, ip in enumerate(lst(spec.get("externalIPs"))):
        is_valid_ip(errs, f"spec.externalIPs[{i}]", st(ip))
    if not stype:
        errs.required("spec.type")
    elif stype not in SERVICE_TYPES:
        errs.not_supported("spec.type", stype, SERVICE_TYPES)
    if stype == "ClusterIP":
        for i, port in enumerate(ports):
            if num(d(port).get("nodePort")) != 0:
                errs.forbidden(f"spec.ports[{i}].nodePort", "may not be used when `type` is 'ClusterIP'")
    _service_ports_unique(errs, ports)
    _load_balancer_fields(errs, spec, smap(d(obj.get("metadata")).get("annotations")))
    _traffic_policies(errs, spec)


# --------------------------------------------------------------------------------------------
# Ingress / IngressClass (pkg/apis/networking/validation)
# --------------------------------------------------------------------------------------------

PATH_TYPES = ("Exact", "ImplementationSpecific", "Prefix")
_INVALID_PATH_SEQUENCES = ("//", "/./", "/../", "%2f", "%2F")
_INVALID_PATH_SUFFIXES = ("/..", "/.")


def _ingress_host(errs: Errs, host: str, path: str) -> bool:
    """The host rules shared by rules[] and tls[].hosts; returns True for a wildcard host."""
    if parse_ip(host) is not None:
        errs.invalid(path, host, "must be a DNS name, not an IP address")
    if "*" in host:
        errs.each(path, host, is_wildcard_dns1123_subdomain(host))
        return True
    errs.each(path, host, is_dns1123_subdomain(host))
    return False


def _ingress_backend(errs: Errs, backend: Mapping[str, Any], path: str) -> None:
    """validateIngressBackend: a service (name + port name or number) or a resource."""
    has_resource, has_service = has(backend, "resource"), has(backend, "service")
    if has_resource and has_service:
        errs.invalid(path, "", "cannot set both resource and service backends")
        return
    if has_resource:
        resource = d(backend.get("resource"))
        if not st(resource.get("kind")):
            errs.required(f"{path}.resource.kind")
        if not st(resource.get("name")):
            errs.required(f"{path}.resource.name")
        return
    if not has_service:
        errs.invalid(path, "", "resource or service backend is required")
        return
    service = d(backend.get("service"))
    name = st(service.get("name"))
    if not name:
        errs.required(f"{path}.service.name")
    else:
        errs.each(f"{path}.service.name", name, is_dns1035_label(name))
    port = d(service.get("port"))
    port_name, port_number = st(port.get("name")), num(port.get("number"))
    if port_name and port_number:
        errs.invalid(path, "", "cannot set both port name & port number")
    elif port_name:
        errs.each(f"{path}.service.port.name", port_name, is_valid_port_name(port_name))
    elif port_number:
        errs.each(f"{path}.service.port.number", port_number, is_valid_port_num(port_number))
    else:
        errs.required(path, "port name or number is required")


def _ingress_path(errs: Errs, item: Mapping[str, Any], path: str) -> None:
    """validateHTTPIngressPath: pathType is required in networking/v1."""
    if item.get("pathType") is None:
        errs.required(f"{path}.pathType", "pathType must be specified")
        return
    path_type, value = st(item.get("pathType")), st(item.get("path"))
    if path_type in ("Exact", "Prefix"):
        if not value.startswith("/"):
            errs.invalid(f"{path}.path", value, "must be an absolute path")
        if value:
            for seq in _INVALID_PATH_SEQUENCES:
                if seq in value:
                    errs.invalid(f"{path}.path", value, f"must not contain '{seq}'")
            for suffix in _INVALID_PATH_SUFFIXES:
                if value.endswith(suffix):
                    errs.invalid(f"{path}.path", value, f"cannot end with '{suffix}'")
    elif path_type == "ImplementationSpecific":
        if value and not value.startswith("/"):
            errs.invalid(f"{path}.path", value, "must be an absolute path")
    else:
        errs.not_supported(f"{path}.pathType", path_type, PATH_TYPES)
    _ingress_backend(errs, d(item.get("backend")), f"{path}.backend")


def _ingress_rules(errs: Errs, rules: list[Any], path: str) -> None:
    for i, rule in enumerate(rules):
        rule, ipath = d(rule), f"{path}[{i}]"
        host = st(rule.get("host"))
        if host:
            _ingress_host(errs, host, f"{ipath}.host")
        if has(rule, "http"):
            paths = lst(d(rule.get("http")).get("paths"))
            if not paths:
                errs.required(f"{ipath}.http.paths")
            for pi, item in enumerate(paths):
                _ingress_path(errs, d(item), f"{ipath}.http.paths[{pi}]")


def validate_ingress(errs: Errs, obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> None:
    """ValidateIngressSpec."""
    spec = d(obj.get("spec"))
    rules = lst(spec.get("rules"))
    if not rules and spec.get("defaultBackend") is None:
        shown = GoRepr("[]networking.IngressRule(nil)") if spec.get("rules") is None else GoRepr("[]networking.IngressRule{}")
        errs.invalid("spec", shown, "either `defaultBackend` or `rules` must be specified")
    if spec.get("defaultBackend") is not None:
        _ingress_backend(errs, d(spec.get("defaultBackend")), "spec.defaultBackend")
    if rules:
        _ingress_rules(errs, rules, "spec.rules")
    for i, tls in enumerate(lst(spec.get("tls"))):
        tls = d(tls)
        for hi, host in enumerate(lst(tls.get("hosts"))):
            host = st(host)
            if "*" in host:
                errs.each(f"spec.tls[{i}].hosts[{hi}]", host, is_wildcard_dns1123_subdomain(host))
            else:
                errs.each(f"spec.tls[{i}].hosts[{hi}]", host, is_dns1123_subdomain(host))
        secret = st(tls.get("secretName"))
        if secret:
            errs.each(f"spec.tls[{i}].secretName", secret, is_dns1123_subdomain(secret))
    if spec.get("ingressClassName") is not None:
        name = st(spec.get("ingressClassName"))
        errs.each("spec.ingressClassName", name, is_dns1123_subdomain(name))
    annotations = smap(d(obj.get("metadata")).get("annotations"))
    if old is None and spec.get("ingressClassName") is not None and "kubernetes.io/ingress.class" in annotations:
        errs.invalid("annotations.kubernetes.io/ingress.class", annotations["kubernetes.io/ingress.class"],
                     "can not be set when the class field is also set")


def validate_ingress_class(errs: Errs, obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> None:
    controller = st(d(obj.get("spec")).get("controller"))
    path = "spec.controller"
    if not controller:
        errs.required(path)
        return
    if go_len(controller) > 250:
        errs.too_long(path, 250)
    host, slash, rest = controller.partition("/")
    if not slash or not host or not rest:
        errs.invalid(path, controller, 'must be a domain-prefixed path (such as "acme.io/foo")')
        return
    errs.each(path, host, is_dns1123_subdomain(host))
    if not re.fullmatch(r"[A-Za-z0-9/\-._~%!$&'()*+,;=:]+", rest):
        errs.invalid(path, rest, regex_error("Invalid path", r"[A-Za-z0-9/\-._~%!$&'()*+,;=:]+"))
    if old is not None and st(d(old.get("spec")).get("controller")) != controller:
        errs.invalid(path, controller, FIELD_IMMUTABLE)


# --------------------------------------------------------------------------------------------
# ConfigMap / Secret
# --------------------------------------------------------------------------------------------

SECRET_REQUIRED_KEYS = {
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
}
IMMUTABLE_WHEN_SET = "field is immutable when `immutable` is set"


def _b64_len(value: Any) -> int:
    text = st(value)
    try:
        return len(base64.b64decode(text.replace("\n", "").replace("\r", ""), validate=False))
    except ValueError:
        return len(text)


def validate_configmap(errs: Errs, obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> None:
    """ValidateConfigMapUpdate's immutability, then ValidateConfigMap."""
    if old is not None and old.get("immutable") is True:
        if obj.get("immutable") is not True:
            errs.forbidden("immutable", IMMUTABLE_WHEN_SET)
        for key in ("data", "binaryData"):
            if (obj.get(key) or None) != (old.get(key) or None):
                errs.forbidden(key, IMMUTABLE_WHEN_SET)
    data, binary = smap(obj.get("data")), d(obj.get("binaryData"))
    total = 0
    for key in sorted(data):
        errs.each(f"data[{key}]", key, is_config_map_key(key))
        if key in binary:
            errs.invalid(f"data[{key}]", key, "duplicate of key present in binaryData")
        total += go_len(data[key])
    for key in sorted(binary, key=str):
        errs.each(f"binaryData[{key}]", key, is_config_map_key(str(key)))
        total += _b64_len(binary[key])
    if total > MAX_SECRET_SIZE:
        errs.too_long("[]", MAX_SECRET_SIZE)  # field.NewPath("") prints as []


def secret_data(obj: Mapping[str, Any]) -> dict[str, Any]:
    """data with stringData merged over it, as Convert_v1_Secret_To_core_Secret does."""
    merged: dict[str, Any] = dict(d(obj.get("data")))
    for key, value in smap(obj.get("stringData")).items():
        merged[key] = base64.b64encode(value.encode("utf-8", "surrogatepass")).decode("ascii")
    return merged


def validate_secret(errs: Errs, obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> None:
    """ValidateSecretUpdate's rules (type and immutable), then ValidateSecret."""
    stype = st(obj.get("type"))
    data = secret_data(obj)
    if old is not None:
        old_type = st(old.get("type"))
        if stype != old_type:
            errs.invalid("type", stype, FIELD_IMMUTABLE)
        if old.get("immutable") is True:
            if obj.get("immutable") is not True:
                errs.forbidden("immutable", IMMUTABLE_WHEN_SET)
            if (data or None) != (secret_data(old) or None):
                errs.forbidden("data", IMMUTABLE_WHEN_SET)
    total = 0
    for key in sorted(data):
        errs.each(f"data[{key}]", key, is_config_map_key(key))
        total += _b64_len(data[key])
    if total > MAX_SECRET_SIZE:
        errs.too_long("data", MAX_SECRET_SIZE)
    annotations = smap(d(obj.get("metadata")).get("annotations"))
    if stype == "kubernetes.io/service-account-token":
        if not annotations.get("kubernetes.io/service-account.name"):
            errs.required("metadata.annotations[kubernetes.io/service-account.name]")
    elif stype == "kubernetes.io/basic-auth":
        if "username" not in data and "password" not in data:
            errs.required("data[username]")
            errs.required("data[password]")
    elif stype in ("kubernetes.io/ssh-auth",):
        if not st(data.get("ssh-privatekey")):
            errs.required("data[ssh-privatekey]")
    elif stype in SECRET_REQUIRED_KEYS:
        for key in SECRET_REQUIRED_KEYS[stype]:
            if key not in data:
                errs.required(f"data[{key}]")
                if stype != "kubernetes.io/tls":
                    break
        else:
            if stype in ("kubernetes.io/dockercfg", "kubernetes.io/dockerconfigjson"):
                _docker_config(errs, data, SECRET_REQUIRED_KEYS[stype][0])


def _docker_config(errs: Errs, data: Mapping[str, Any], key: str) -> None:
    import json

    try:
        raw = base64.b64decode(st(data.get(key)))
        value = json.loads(raw.decode("utf-8"))
        if not isinstance(value, dict):
            raise ValueError(f"json: cannot unmarshal {json_kind(value)} into Go value of type map[string]interface {{}}")
    except ValueError as e:
        text = str(e) if str(e).startswith("json:") else "unexpected end of JSON input"
        errs.invalid(f"data[{key}]", "<secret contents redacted>", text)


# --------------------------------------------------------------------------------------------
# Namespace, Node, Event, Endpoints, EndpointSlice, Lease
# --------------------------------------------------------------------------------------------

STANDARD_FINALIZERS = frozenset({"kubernetes", "orphan", "foregroundDeletion"})
ADDRESS_TYPES = ("FQDN", "IPv4", "IPv6")


def kube_finalizer_names(errs: Errs, finalizers: Any, path: str) -> None:
    """validateKubeFinalizerName: an unqualified finalizer must be a standard one."""
    for name in (st(f) for f in lst(finalizers)):
        if "/" not in name and name not in STANDARD_FINALIZERS:
            errs.invalid(path, name, "name is neither a standard finalizer name nor is it fully qualified")


def validate_namespace(errs: Errs, obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> None:
    for name in (st(f) for f in lst(d(obj.get("spec")).get("finalizers"))):
        errs.each("spec.finalizers", name, is_qualified_name(name))
        kube_finalizer_names(errs, [name], "spec.finalizers")


def _taints(errs: Errs, taints: Any, path: str) -> None:
    """validateNodeTaints."""
    seen: set[tuple[str, str]] = set()
    for i, taint in enumerate(lst(taints)):
        taint, ipath = d(taint), f"{path}[{i}]"
        key, value, effect = st(taint.get("key")), st(taint.get("value")), st(taint.get("effect"))
        errs.each(f"{ipath}.key", key, is_qualified_name(key))
        msgs = is_valid_label_value(value)
        if msgs:
            errs.invalid(f"{ipath}.value", value, ";".join(msgs))
        if not effect:
            errs.required(f"{ipath}.effect")
        elif effect not in TOLERATION_EFFECTS:
            errs.not_supported(f"{ipath}.effect", effect, TOLERATION_EFFECTS)
        if (key, effect) in seen:
            errs.duplicate(ipath, GoRepr(f"core.Taint{{Key:{go_quote(key)}, Value:{go_quote(value)}, "
                                         f"Effect:{go_quote(effect)}, TimeAdded:<nil>}}"),
                           "taints must be unique by key and effect pair")
        seen.add((key, effect))


def validate_node(errs: Errs, obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> None:
    spec = d(obj.get("spec"))
    _taints(errs, spec.get("taints"), "spec.taints")
    cidrs = [st(c) for c in lst(spec.get("podCIDRs"))]
    for i, cidr in enumerate(cidrs):
        is_valid_cidr(errs, f"spec.podCIDRs[{i}]", cidr)
    if len(cidrs) > 2:
        errs.invalid("spec.podCIDRs", go_str_slice(cidrs), "may not contain more than two CIDRs")


def validate_event(errs: Errs, obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> None:
    """legacyValidateEvent for core/v1 Events."""
    namespace = st(d(obj.get("metadata")).get("namespace"))
    involved_ns = st(d(obj.get("involvedObject")).get("namespace"))
    if not st(obj.get("eventTime")):
        if not involved_ns:
            if namespace not in ("", "default"):
                errs.invalid("involvedObject.namespace", involved_ns, "does not match event.namespace")
        elif namespace != involved_ns:
            errs.invalid("involvedObject.namespace", involved_ns, "does not match event.namespace")
    else:
        if not involved_ns and namespace not in ("default", "kube-system"):
            errs.invalid("involvedObject.namespace", involved_ns, "does not match event.namespace")
        controller = st(obj.get("reportingComponent"))
        if not controller:
            errs.required("reportingComponent")
        errs.each("reportingComponent", controller, is_qualified_name(controller))
        instance = st(obj.get("reportingInstance"))
        if not instance:
            errs.required("reportingInstance")
        if go_len(instance) > 128:
            errs.invalid("reportingInstance", "", "can have at most 128 characters")
        action = st(obj.get("action"))
        if not action:
            errs.required("action")
        if go_len(action) > 128:
            errs.invalid("action", "", "can have at most 128 characters")
    errs.each("namespace", namespace, is_dns1123_subdomain(namespace))


def _endpoint_port(errs: Errs, port: Mapping[str, Any], require_name: bool, path: str) -> None:
    name = st(port.get("name"))
    if require_name and not name:
        errs.required(f"{path}.name")
    elif name:
        errs.each(f"{path}.name", name, is_dns1123_label(name))
    number = num(port.get("port"))
    errs.each(f"{path}.port", number, is_valid_port_num(number))
    protocol = st(port.get("protocol"))
    if not protocol:
        errs.required(f"{path}.protocol")
    elif protocol not in PROTOCOLS:
        errs.not_supported(f"{path}.protocol", protocol, PROTOCOLS)


def validate_endpoints(errs: Errs, obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> None:
    """ValidateEndpoints (addresses must be IPs; loopback allowed: the sandbox lives on 127/8)."""
    for si, subset in enumerate(lst(obj.get("subsets"))):
        subset, spath = d(subset), f"subsets[{si}]"
        addresses, not_ready = lst(subset.get("addresses")), lst(subset.get("notReadyAddresses"))
        ports = lst(subset.get("ports"))
        if not addresses and not not_ready:
            errs.required(spath, "must specify `addresses` or `notReadyAddresses`")
        for key, items in (("addresses", addresses), ("notReadyAddresses", not_ready)):
            for ai, address in enumerate(items):
                address, apath = d(address), f"{spath}.{key}[{ai}]"
                is_valid_ip(errs, f"{apath}.ip", st(address.get("ip")))
                hostname = st(address.get("hostname"))
                if hostname:
                    errs.each(f"{apath}.hostname", hostname, is_dns1123_label(hostname))
                node = st(address.get("nodeName"))
                if node:
                    errs.each(f"{apath}.nodeName", node, is_dns1123_subdomain(node))
        for pi, port in enumerate(ports):
            _endpoint_port(errs, d(port), len(ports) > 1, f"{spath}.ports[{pi}]")


def validate_endpoint_slice(errs: Errs, obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> None:
    """ValidateEndpointSlice: endpoints, ports, then addressType."""
    address_type = st(obj.get("addressType"))
    for i, endpoint in enumerate(lst(obj.get("endpoints"))):
        endpoint, ipath = d(endpoint), f"endpoints[{i}]"
        addresses = [st(a) for a in lst(endpoint.get("addresses"))]
        if not addresses:
            errs.required(f"{ipath}.addresses", "must contain at least 1 address")
        elif len(addresses) > 100:
            errs.append(FieldErr("TooMany", f"{ipath}.addresses", "must have at most 100 items", len(addresses)))
        for ai, address in enumerate(addresses):
            apath = f"{ipath}.addresses[{ai}]"
            parsed = parse_ip(address)
            if address_type == "IPv4" and (parsed is None or parsed.version != 4):
                errs.invalid(apath, address, "must be a valid IPv4 address")
            elif address_type == "IPv6" and (parsed is None or parsed.version != 6):
                errs.invalid(apath, address, "must be a valid IPv6 address")
            elif address_type == "FQDN":
                errs.each(apath, address, is_dns1123_subdomain(address.rstrip(".")))
        node = endpoint.get("nodeName")
        if node is not None:
            errs.each(f"{ipath}.nodeName", st(node), is_dns1123_subdomain(st(node)))
        hostname = endpoint.get("hostname")
        if hostname is not None:
            errs.each(f"{ipath}.hostname", st(hostname), is_dns1123_label(st(hostname)))
    names: set[str] = set()
    for i, port in enumerate(lst(obj.get("ports"))):
        port, ipath = d(port), f"ports[{i}]"
        name = st(port.get("name"))
        if name:
            errs.each(f"{ipath}.name", name, is_dns1123_label(name))
        if name in names:
            errs.duplicate(f"{ipath}.name", name)
        names.add(name)
        if port.get("protocol") is None:
            errs.required(f"{ipath}.protocol")
        elif st(port.get("protocol")) not in PROTOCOLS:
            errs.not_supported(f"{ipath}.protocol", st(port.get("protocol")), PROTOCOLS)
        if port.get("appProtocol") is not None:
            app = st(port.get("appProtocol"))
            errs.each(f"{ipath}.appProtocol", app, is_qualified_name(app))
    if not address_type:
        errs.required("addressType")
    elif address_type not in ADDRESS_TYPES:
        errs.not_supported("addressType", address_type, ADDRESS_TYPES)
    if old is not None and address_type != st(old.get("addressType")):
        errs.invalid("addressType", address_type, FIELD_IMMUTABLE)


def validate_lease(errs: Errs, obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> None:
    """ValidateLeaseSpec."""
    spec = d(obj.get("spec"))
    duration = spec.get("leaseDurationSeconds")
    if _pos_int(duration) and duration <= 0:
        errs.invalid("spec.leaseDurationSeconds", duration, "must be greater than 0")
    transitions = spec.get("leaseTransitions")
    if _pos_int(transitions) and transitions < 0:
        errs.invalid("spec.leaseTransitions", transitions, IS_NEGATIVE)
    strategy = spec.get("strategy")
    if strategy is not None and st(strategy) != "OldestEmulationVersion":
        errs.not_supported("spec.strategy", st(strategy), ("OldestEmulationVersion",))
    if st(spec.get("preferredHolder")) and not st(strategy):
        errs.forbidden("spec.preferredHolder", "may only be specified if `strategy` is defined")


def validate_nothing(errs: Errs, obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> None:
    return None


# --------------------------------------------------------------------------------------------
# Defaulting (pkg/apis/core/v1/defaults.go, apps/v1, discovery/v1): what the server fills in
# --------------------------------------------------------------------------------------------

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
_IMAGE_REF_RE = re.compile(
    rf"((?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
    r"(?::([A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(?:@([A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?"
)
_HEX64_RE = re.compile("[a-f0-9]{64}")


def image_pull_policy(image: str) -> str:
    """SetDefaults_Container: Always for `:latest` or no tag at all, else IfNotPresent.

    parsers.ParseImageName fails on references docker would refuse (upper-case repository,
    empty string...), and then the tag is "" so the policy is IfNotPresent, as upstream.
    """
    m = _IMAGE_REF_RE.fullmatch(image)
    if not m or len(m.group(1)) > 255 or _HEX64_RE.fullmatch(m.group(1)):
        return "IfNotPresent"
    tag, digest = m.group(2), m.group(3)
    if (not tag and not digest) or tag == "latest":
        return "Always"
    return "IfNotPresent"


def _md(parent: dict[str, Any], key: str) -> dict[str, Any] | None:
    """parent[key] as a dict to fill in, created when null/absent; None if it is not an object."""
    value = parent.get(key)
    if value is None:
        value = {}
        parent[key] = value
    return value if isinstance(value, dict) else None


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in lst(value) if isinstance(v, dict)]


def _set_if_empty(obj: dict[str, Any], key: str, value: Any) -> None:
    """Go's `if obj.X == "" { obj.X = value }` (absent, null and "" are all the zero value)."""
    if obj.get(key) in (None, ""):
        obj[key] = value


def _default_handler(handler: dict[str, Any]) -> None:
    get = handler.get("httpGet")
    if isinstance(get, dict):
        _set_if_empty(get, "path", "/")
        _set_if_empty(get, "scheme", "HTTP")


def _default_probe(probe: Any) -> None:
    """SetDefaults_Probe + SetDefaults_HTTPGetAction."""
    if not isinstance(probe, dict):
        return
    for key, value in (("timeoutSeconds", 1), ("periodSeconds", 10), ("successThreshold", 1), ("failureThreshold", 3)):
        if probe.get(key) in (None, 0):
            probe[key] = value
    _default_handler(probe)


def _default_container(ctr: dict[str, Any]) -> None:
    """SetDefaults_Container and the defaulters of its nested types."""
    if not st(ctr.get("imagePullPolicy")):
        ctr["imagePullPolicy"] = image_pull_policy(st(ctr.get("image")))
    _set_if_empty(ctr, "terminationMessagePath", "/dev/termination-log")
    _set_if_empty(ctr, "terminationMessagePolicy", "File")
    if ctr.get("resources") is None:
        ctr["resources"] = {}  # a struct, so always serialized, even empty
    for port in _dicts(ctr.get("ports")):
        _set_if_empty(port, "protocol", "TCP")
    for var in _dicts(ctr.get("env")):
        ref = d(var.get("valueFrom")).get("fieldRef")
        if isinstance(ref, dict):
            _set_if_empty(ref, "apiVersion", "v1")
    for key in ("livenessProbe", "readinessProbe", "startupProbe"):
        _default_probe(ctr.get(key))
    lifecycle = ctr.get("lifecycle")
    if isinstance(lifecycle, dict):
        for hook in ("postStart", "preStop"):
            if isinstance(lifecycle.get(hook), dict):
                _default_handler(lifecycle[hook])


def _default_volume(vol: dict[str, Any]) -> None:
    """SetDefaults_Volume (no source means emptyDir) and the per-source defaultMode 0644."""
    if all(vol.get(source) is None for source in VOLUME_SOURCES):
        vol["emptyDir"] = {}
    for source in ("secret", "configMap", "projected", "downwardAPI"):
        spec = vol.get(source)
        if isinstance(spec, dict) and spec.get("defaultMode") is None:
            spec["defaultMode"] = 0o644
    host_path = vol.get("hostPath")
    if isinstance(host_path, dict) and host_path.get("type") is None:
        host_path["type"] = ""


def _default_pod_spec(spec: dict[str, Any]) -> None:
    """SetDefaults_PodSpec (templates included) and everything nested in it."""
    _set_if_empty(spec, "dnsPolicy", "ClusterFirst")
    _set_if_empty(spec, "restartPolicy", "Always")
    if spec.get("securityContext") is None:
        spec["securityContext"] = {}
    if spec.get("terminationGracePeriodSeconds") is None:
        spec["terminationGracePeriodSeconds"] = 30
    _set_if_empty(spec, "schedulerName", "default-scheduler")
    for vol in _dicts(spec.get("volumes")):
        _default_volume(vol)
    for key in ("initContainers", "containers"):
        for ctr in _dicts(spec.get(key)):
            _default_container(ctr)


def _default_pod(obj: dict[str, Any]) -> None:
    """SetDefaults_Pod: requests from limits, enableServiceLinks and hostNetwork hostPorts (Pods only)."""
    spec = _md(obj, "spec")
    if spec is None:
        return
    _default_pod_spec(spec)
    for key in ("containers", "initContainers"):
        for ctr in _dicts(spec.get(key)):
            resources = ctr.get("resources")
            limits = resources.get("limits") if isinstance(resources, dict) else None
            if isinstance(limits, dict):
                requests = resources.get("requests")
                if requests is None:
                    requests = resources["requests"] = {}
                if isinstance(requests, dict):
                    for name, value in limits.items():
                        requests.setdefault(name, value)
    if spec.get("enableServiceLinks") is None:
        spec["enableServiceLinks"] = True
    if spec.get("hostNetwork") is True:
        for key in ("containers", "initContainers"):
            for ctr in _dicts(spec.get(key)):
                for port in _dicts(ctr.get("ports")):
                    if num(port.get("hostPort")) == 0:
                        port["hostPort"] = port.get("containerPort")


def _default_template(spec: dict[str, Any]) -> None:
    template = spec.get("template")
    if isinstance(template, dict):
        pod_spec = _md(template, "spec")
        if pod_spec is not None:
            _default_pod_spec(pod_spec)


def _spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    return _md(obj, "spec")


def _default_daemonset(obj: dict[str, Any]) -> None:
    """SetDefaults_DaemonSet: RollingUpdate 1/0, revisionHistoryLimit 10."""
    spec = _spec(obj)
    if spec is None:
        return
    strategy = _md(spec, "updateStrategy")
    if strategy is not None:
        _set_if_empty(strategy, "type", "RollingUpdate")
        if strategy.get("type") == "RollingUpdate":
            rolling = _md(strategy, "rollingUpdate")
            if rolling is not None:
                if rolling.get("maxUnavailable") is None:
                    rolling["maxUnavailable"] = 1
                if rolling.get("maxSurge") is None:
                    rolling["maxSurge"] = 0
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    _default_template(spec)


def _default_deployment(obj: dict[str, Any]) -> None:
    """SetDefaults_Deployment: 1 replica, RollingUpdate 25%/25%, 10 revisions, 600s deadline."""
    spec = _spec(obj)
    if spec is None:
        return
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    strategy = _md(spec, "strategy")
    if strategy is not None:
        _set_if_empty(strategy, "type", "RollingUpdate")
        if strategy.get("type") == "RollingUpdate":
            rolling = _md(strategy, "rollingUpdate")
            if rolling is not None:
                for key in ("maxUnavailable", "maxSurge"):
                    if rolling.get(key) is None:
                        rolling[key] = "25%"
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    if spec.get("progressDeadlineSeconds") is None:
        spec["progressDeadlineSeconds"] = 600
    _default_template(spec)


def _default_replicaset(obj: dict[str, Any]) -> None:
    spec = _spec(obj)
    if spec is None:
        return
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    _default_template(spec)


def _default_statefulset(obj: dict[str, Any]) -> None:
    """SetDefaults_StatefulSet (MaxUnavailableStatefulSet is alpha, so no maxUnavailable)."""
    spec = _spec(obj)
    if spec is None:
        return
    _set_if_empty(spec, "podManagementPolicy", "OrderedReady")
    strategy = _md(spec, "updateStrategy")
    if strategy is not None:
        if strategy.get("type") in (None, ""):
            strategy["type"] = "RollingUpdate"
            if strategy.get("rollingUpdate") is None:
                strategy["rollingUpdate"] = {}
        rolling = strategy.get("rollingUpdate")
        if strategy.get("type") == "RollingUpdate" and isinstance(rolling, dict) and rolling.get("partition") is None:
            rolling["partition"] = 0
    retention = _md(spec, "persistentVolumeClaimRetentionPolicy")
    if retention is not None:
        _set_if_empty(retention, "whenDeleted", "Retain")
        _set_if_empty(retention, "whenScaled", "Retain")
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    _default_template(spec)


def _default_service(obj: dict[str, Any]) -> None:
    """SetDefaults_Service, plus the IP family fields the registry fills on a single-stack cluster."""
    spec = _spec(obj)
    if spec is None:
        return
    _set_if_empty(spec, "sessionAffinity", "None")
    if spec.get("sessionAffinity") == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec.get("sessionAffinity") == "ClientIP":
        timeout = d(d(spec.get("sessionAffinityConfig")).get("clientIP")).get("timeoutSeconds")
        if timeout is None:
            spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": 10800}}
    _set_if_empty(spec, "type", "ClusterIP")
    for port in _dicts(spec.get("ports")):
        _set_if_empty(port, "protocol", "TCP")
        if port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port.get("port") if _pos_int(port.get("port")) else 0
    if externally_accessible(spec):
        _set_if_empty(spec, "externalTrafficPolicy", "Cluster")
    stype = spec.get("type")
    if spec.get("internalTrafficPolicy") is None and stype in ("NodePort", "LoadBalancer", "ClusterIP"):
        spec["internalTrafficPolicy"] = "Cluster"
    if stype == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        spec["allocateLoadBalancerNodePorts"] = True
    if stype != "ExternalName":
        if spec.get("ipFamilyPolicy") is None:
            selectorless_headless = is_headless(spec) and not d(spec.get("selector"))
            spec["ipFamilyPolicy"] = "RequireDualStack" if selectorless_headless else "SingleStack"
        if not lst(spec.get("ipFamilies")):
            spec["ipFamilies"] = ["IPv4"]


def _default_secret(obj: dict[str, Any]) -> None:
    """SetDefaults_Secret (type Opaque) and the stringData -> data conversion."""
    _set_if_empty(obj, "type", "Opaque")
    if "stringData" in obj:
        if isinstance(obj.get("stringData"), dict) and obj["stringData"]:
            obj["data"] = secret_data(obj)
        obj.pop("stringData", None)


def _default_namespace(obj: dict[str, Any]) -> None:
    """SetDefaults_Namespace: kubernetes.io/metadata.name always equals the name."""
    meta = _md(obj, "metadata")
    if meta is None or not st(meta.get("name")):
        return
    labels = _md(meta, "labels")
    if labels is not None:
        labels["kubernetes.io/metadata.name"] = meta["name"]


def _default_endpoints(obj: dict[str, Any]) -> None:
    for subset in _dicts(obj.get("subsets")):
        for port in _dicts(subset.get("ports")):
            _set_if_empty(port, "protocol", "TCP")


def _default_endpoint_slice(obj: dict[str, Any]) -> None:
    for port in _dicts(obj.get("ports")):
        if port.get("name") is None:
            port["name"] = ""
        if port.get("protocol") is None:
            port["protocol"] = "TCP"


DEFAULTERS: dict[tuple[str, str], Callable[[dict[str, Any]], None]] = {
    ("", "Pod"): _default_pod,
    ("", "Service"): _default_service,
    ("", "Secret"): _default_secret,
    ("", "Namespace"): _default_namespace,
    ("", "Endpoints"): _default_endpoints,
    ("apps", "DaemonSet"): _default_daemonset,
    ("apps", "Deployment"): _default_deployment,
    ("apps", "ReplicaSet"): _default_replicaset,
    ("apps", "StatefulSet"): _default_statefulset,
    ("discovery.k8s.io", "EndpointSlice"): _default_endpoint_slice,
}

VALIDATORS: dict[tuple[str, str], Callable[[Errs, Mapping[str, Any], Mapping[str, Any] | None], None]] = {
    ("", "Pod"): lambda errs, obj, old: validate_pod(errs, obj, old),
    ("", "Service"): validate_service,
    ("", "Secret"): validate_secret,
    ("", "ConfigMap"): validate_configmap,
    ("", "Namespace"): validate_namespace,
    ("", "Node"): validate_node,
    ("", "Event"): validate_event,
    ("", "Endpoints"): validate_endpoints,
    ("apps", "DaemonSet"): validate_daemonset,
    ("apps", "Deployment"): validate_deployment,
    ("apps", "ReplicaSet"): validate_replicaset,
    ("apps", "StatefulSet"): validate_statefulset,
    ("apps", "ControllerRevision"): validate_controller_revision,
    ("discovery.k8s.io", "EndpointSlice"): validate_endpoint_slice,
    ("networking.k8s.io", "Ingress"): validate_ingress,
    ("networking.k8s.io", "IngressClass"): validate_ingress_class,
    ("coordination.k8s.io", "Lease"): validate_lease,
}

# kinds whose create takes no ObjectMeta (reviews are not stored and have no name)
_NO_META = frozenset({"SelfSubjectAccessReview"})


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def default(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of `obj` with the server-side defaults filled in.

    The typed decode runs first, so a body the Go structs cannot hold is the decoder's 400 here,
    before anything else looks at it (as in the apiserver, where decoding precedes defaulting).
    """
    check_types(rt, obj)
    out = copy.deepcopy(obj)
    fill = DEFAULTERS.get((rt.group, rt.kind))
    if fill is not None:
        try:
            fill(out)
        except (TypeError, ValueError, AttributeError, KeyError) as e:  # pragma: no cover - safety net
            raise errors.internal(f"defaulting {rt.kind}: {e}") from None
    return out


def validate(rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None, *, namespace: str | None) -> None:
    """Raise the 422 Invalid listing every field error of `obj` (create when `old` is None).

    `namespace` is the request's namespace; it stands in for metadata.namespace when the body
    leaves it out. Wrong JSON types give the decoder's 400; nothing else is ever raised.
    """
    check_types(rt, obj)
    if rt.kind in _NO_META:
        return
    try:
        errs = _collect(rt, obj, old if isinstance(old, Mapping) else None, namespace)
    except ApiError:
        raise
    except Exception as e:  # pragma: no cover - a bug must not become a crashed request
        raise errors.internal(f"validating {rt.kind}: {type(e).__name__}: {e}") from None
    raise_invalid(rt, st(d(obj.get("metadata")).get("name")), errs)


def _collect(rt: ResourceType, obj: Mapping[str, Any], old: Mapping[str, Any] | None, namespace: str | None) -> Errs:
    errs = Errs()
    meta: Mapping[str, Any] = d(obj.get("metadata"))
    if rt.namespaced and not st(meta.get("namespace")) and namespace:
        meta = {**meta, "namespace": namespace}
        obj = {**obj, "metadata": meta}  # the request's namespace is the object's, as in the registry
    name_fn = NAME_RULES.get(rt.kind, name_is_subdomain)
    validate_object_meta(errs, meta, name_fn, rt.namespaced)
    kube_finalizer_names(errs, meta.get("finalizers"), "metadata.finalizers")
    if old is not None:
        validate_object_meta_update(errs, meta, d(old.get("metadata")))
    check = VALIDATORS.get((rt.group, rt.kind), validate_nothing)
    check(errs, obj, old)
    return errs
