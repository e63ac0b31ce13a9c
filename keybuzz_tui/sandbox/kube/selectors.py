"""Label and field selectors, parsed and matched exactly as the apiserver does it.

Label selectors follow apimachinery `pkg/labels/selector.go` token for token (the lexer works on
single characters, the parser is the same recursive descent), because kubectl and the Python client
pass the user's `-l` text through unchanged and operators read the server's error text verbatim:
`unable to parse requirement: values[0][app]: Invalid value: "a b": a valid label must be ...`.
Field selectors follow `pkg/fields/selector.go` (comma split with `\\` escapes, `!=`, `==`, `=`),
then the per-kind field-label conversion of `pkg/apis/core/v1/conversion.go` (or apimachinery's
`DefaultMetaV1FieldSelectorConversion` for kinds without one), and match against the same field
sets the registries build (`ToSelectableFields` in `pkg/registry/core/*/strategy.go`).

The input strings are already URL-decoded. Everything here is pure: no I/O, no store access.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ApiError, bad_request
from .registry import ResourceType

__all__ = [
    "FieldRequirement",
    "FieldSelector",
    "LabelSelector",
    "Requirement",
    "everything",
    "go_quote",
    "is_dns1123_subdomain",
    "is_qualified_name",
    "is_valid_label_value",
    "nothing",
    "parse_field_selector",
    "parse_label_selector",
    "regex_error",
    "selector_from_label_selector",
    "selector_from_set",
]

# --------------------------------------------------------------------------------------------
# Go formatting and the apimachinery string validators (shared with validation.py)
# --------------------------------------------------------------------------------------------

_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def go_quote(s: str) -> str:
    """Go's `%q` / strconv.Quote, because Status messages print bad string values that way.

    json.dumps differs for non-ASCII (Go keeps printable runes) and for control characters.
    """
    out = ['"']
    for ch in s:
        code = ord(ch)
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif 0xD800 <= code <= 0xDFFF:
            out.append("\\ufffd")  # a lone surrogate is an invalid rune in Go
        elif ch.isprintable():
            out.append(ch)
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def go_len(s: str) -> int:
    """Go's len(string) counts UTF-8 bytes; the length limits in the messages are in bytes."""
    return len(s.encode("utf-8", "surrogatepass"))


def regex_error(msg: str, fmt: str, *examples: str) -> str:
    """validation.RegexError, including its odd `'a',  or 'b', ` separator."""
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    text = msg + " (e.g. "
    for i, example in enumerate(examples):
        if i > 0:
            text += " or "
        text += f"'{example}', "
    return text + f"regex used for validation is '{fmt}')"


def max_len_error(length: int) -> str:
    return f"must be no more than {length} characters"


DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_LABEL_ERR = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)
DNS1123_SUBDOMAIN_FMT = DNS1123_LABEL_FMT + "(\\." + DNS1123_LABEL_FMT + ")*"
DNS1123_SUBDOMAIN_ERR = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character"
)
QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
QUALIFIED_NAME_ERR = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character"
)
LABEL_VALUE_FMT = "(" + QUALIFIED_NAME_FMT + ")?"
LABEL_VALUE_ERR = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)

_DNS1123_LABEL_RE = re.compile(DNS1123_LABEL_FMT)
_DNS1123_SUBDOMAIN_RE = re.compile(DNS1123_SUBDOMAIN_FMT)
_QUALIFIED_NAME_RE = re.compile(QUALIFIED_NAME_FMT)
_LABEL_VALUE_RE = re.compile(LABEL_VALUE_FMT)


def is_dns1123_label(value: str) -> list[str]:
    """validation.IsDNS1123Label: metadata.name of namespaces, container and port names."""
    errs: list[str] = []
    if go_len(value) > 63:
        errs.append(max_len_error(63))
    if not _DNS1123_LABEL_RE.fullmatch(value):
        if _DNS1123_SUBDOMAIN_RE.fullmatch(value):
            errs.append("must not contain dots")
        else:
            errs.append(regex_error(DNS1123_LABEL_ERR, DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errs


def is_dns1123_subdomain(value: str) -> list[str]:
    """validation.IsDNS1123Subdomain: most object names, hosts, label key prefixes."""
    errs: list[str] = []
    if go_len(value) > 253:
        errs.append(max_len_error(253))
    if not _DNS1123_SUBDOMAIN_RE.fullmatch(value):
        errs.append(regex_error(DNS1123_SUBDOMAIN_ERR, DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def is_qualified_name(value: str) -> list[str]:
    """validation.IsQualifiedName (1.32 wording): label keys, annotation keys, finalizers."""
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + m for m in is_dns1123_subdomain(prefix))
    else:
        return [
            "a qualified name "
            + regex_error(QUALIFIED_NAME_ERR, QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part must be non-empty")
    elif go_len(name) > 63:
        errs.append("name part " + max_len_error(63))
    if not _QUALIFIED_NAME_RE.fullmatch(name):
        errs.append(
            "name part " + regex_error(QUALIFIED_NAME_ERR, QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
        )
    return errs


def is_valid_label_value(value: str) -> list[str]:
    """validation.IsValidLabelValue: empty is fine, else at most 63 chars of [-A-Za-z0-9_.]."""
    errs: list[str] = []
    if go_len(value) > 63:
        errs.append(max_len_error(63))
    if not _LABEL_VALUE_RE.fullmatch(value):
        errs.append(regex_error(LABEL_VALUE_ERR, LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errs


def _invalid(path: str, value: str, detail: str) -> str:
    """field.Invalid(...).Error() for a string bad value."""
    return f"{path}: Invalid value: {go_quote(value)}: {detail}"


def _aggregate(messages: list[str]) -> str:
    """ErrorList.ToAggregate().Error(): duplicates dropped, several wrapped in `[a, b]`."""
    seen: list[str] = []
    for m in messages:
        if m not in seen:
            seen.append(m)
    return seen[0] if len(seen) == 1 else "[" + ", ".join(seen) + "]"


# --------------------------------------------------------------------------------------------
# Label selectors
# --------------------------------------------------------------------------------------------

IN = "in"
NOT_IN = "notin"
EQUALS = "="
DOUBLE_EQUALS = "=="
NOT_EQUALS = "!="
GREATER_THAN = "gt"
LESS_THAN = "lt"
EXISTS = "exists"
DOES_NOT_EXIST = "!"
BINARY_OPERATORS = (IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS, GREATER_THAN, LESS_THAN)
_VALID_OPERATORS = BINARY_OPERATORS + (EXISTS, DOES_NOT_EXIST)

_INT64_RE = re.compile(r"[+-]?[0-9]+")


def _parse_int64(text: str) -> int | None:
    """strconv.ParseInt(s, 10, 64): optional sign, ASCII digits, within int64."""
    if not _INT64_RE.fullmatch(text):
        return None
    value = int(text)
    return value if -(2**63) <= value < 2**63 else None


@dataclass(frozen=True)
class Requirement:
    """One `key op values` term; values keep the order apimachinery stores (sorted by the parser)."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.operator
        if op in (IN, EQUALS, DOUBLE_EQUALS):
            return self.key in labels and labels[self.key] in self.values
        if op in (NOT_IN, NOT_EQUALS):
            return self.key not in labels or labels[self.key] not in self.values
        if op == EXISTS:
            return self.key in labels
        if op == DOES_NOT_EXIST:
            return self.key not in labels
        if op in (GREATER_THAN, LESS_THAN):
            return self._matches_numeric(labels)
        return False

    def _matches_numeric(self, labels: Mapping[str, str]) -> bool:
        if self.key not in labels or len(self.values) != 1 or not isinstance(labels[self.key], str):
            return False
        have, want = _parse_int64(labels[self.key]), _parse_int64(self.values[0])
        if have is None or want is None:
            return False
        return have > want if self.operator == GREATER_THAN else have < want

    def __str__(self) -> str:
        """Requirement.String(): `!k`, `k`, `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k>1`."""
        op = self.operator
        head = ("!" if op == DOES_NOT_EXIST else "") + self.key
        if op in (EXISTS, DOES_NOT_EXIST):
            return head
        sym = {EQUALS: "=", DOUBLE_EQUALS: "==", NOT_EQUALS: "!=", IN: " in ", NOT_IN: " notin ",
               GREATER_THAN: ">", LESS_THAN: "<"}[op]
        body = self.values[0] if len(self.values) == 1 else ",".join(sorted(self.values))
        if op in (IN, NOT_IN):
            body = f"({body})"
        return head + sym + body


class LabelSelector:
    """A parsed label selector: an AND of requirements, sorted by key like `internalSelector`.

    `nothing=True` is `labels.Nothing()` (what a nil metav1.LabelSelector converts to): it matches
    no object, unlike the empty selector which matches every object.
    """

    __slots__ = ("requirements", "nothing")

    def __init__(self, requirements: Iterable[Requirement] = (), *, nothing: bool = False) -> None:
        self.requirements: tuple[Requirement, ...] = tuple(sorted(requirements, key=lambda r: r.key))
        self.nothing = nothing

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.nothing:
            return False
        have = labels or {}
        return all(r.matches(have) for r in self.requirements)

    def empty(self) -> bool:
        """True when the selector does not restrict anything (Nothing is not empty)."""
        return not self.nothing and not self.requirements

    def requires_exact_match(self, key: str) -> str | None:
        """RequiresExactMatch: the single value `key` must have, if the selector pins one."""
        for r in self.requirements:
            if r.key == key:
                if r.operator in (EQUALS, DOUBLE_EQUALS, IN) and len(r.values) == 1:
                    return r.values[0]
                return None
        return None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)

    def __repr__(self) -> str:
        return "LabelSelector(nothing)" if self.nothing else f"LabelSelector({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LabelSelector):
            return NotImplemented
        return self.nothing == other.nothing and self.requirements == other.requirements

    def __hash__(self) -> int:
        return hash((self.nothing, self.requirements))


def everything() -> LabelSelector:
    return LabelSelector()


def nothing() -> LabelSelector:
    return LabelSelector(nothing=True)


def selector_from_set(labels: Mapping[str, str] | None) -> LabelSelector:
    """labels.SelectorFromSet (no validation): the selector a Service's spec.selector means."""
    return LabelSelector(Requirement(k, EQUALS, (v,)) for k, v in (labels or {}).items())


def _validate_label_key(key: str, path: str) -> str | None:
    errs = is_qualified_name(key)
    return _invalid(path, key, "; ".join(errs)) if errs else None


def _go_string_slice(values: list[str], *, nil: bool = False) -> str:
    """`%#v` of a []string: `[]string{"a", "b"}`, or `[]string(nil)` for a nil slice."""
    if nil and not values:
        return "[]string(nil)"
    return "[]string{" + ", ".join(go_quote(v) for v in values) + "}"


def _new_requirement(
    key: str, op: str, values: list[str], path: str = "", *, nil_values: bool = False
) -> Requirement:
    """labels.NewRequirement: validates and raises the aggregated field errors as ValueError.

    `nil_values` says the Go caller passed a nil slice (LabelSelectorAsSelector copies the values
    with `append([]string(nil), ...)`), which `%#v` prints as `[]string(nil)`, not `[]string{}`.
    """
    errs: list[str] = []
    base = (path + ".") if path else ""
    key_err = _validate_label_key(key, base + "key")
    if key_err:
        errs.append(key_err)
    values_path = base + "values"
    shown = _go_string_slice(values, nil=nil_values)
    if op in (IN, NOT_IN):
        if not values:
            errs.append(f"{values_path}: Invalid value: {shown}: for 'in', 'notin' operators, values set can't be empty")
    elif op in (EQUALS, DOUBLE_EQUALS, NOT_EQUALS):
        if len(values) != 1:
            errs.append(f"{values_path}: Invalid value: {shown}: exact-match compatibility requires one single value")
    elif op in (EXISTS, DOES_NOT_EXIST):
        if values:
            errs.append(f"{values_path}: Invalid value: {shown}: values set must be empty for exists and does not exist")
    elif op in (GREATER_THAN, LESS_THAN):
        if len(values) != 1:
            errs.append(
                f"{values_path}: Invalid value: {shown}: for 'Gt', 'Lt' operators, exactly one value is required"
            )
        for i, v in enumerate(values):
            if _parse_int64(v) is None:
                errs.append(_invalid(f"{values_path}[{i}]", v, "for 'Gt', 'Lt' operators, the value must be an integer"))
    else:
        supported = ", ".join(go_quote(o) for o in _VALID_OPERATORS)
        errs.append(f"{base}operator: Unsupported value: {go_quote(op)}: supported values: {supported}")
    for i, v in enumerate(values):
        msgs = is_valid_label_value(v)
        if msgs:
            errs.append(_invalid(f"{values_path}[{i}][{key}]", v, "; ".join(msgs)))
    if errs:
        raise ValueError(_aggregate(errs))
    return Requirement(key, op, tuple(values))


# Tokens, in the same order as the Go constants (the numbers do not matter, the names do).
_ERROR, _EOS, _CLOSE, _COMMA, _NOT, _DEQ, _EQ, _GT, _ID, _IN, _LT, _NEQ, _NOTIN, _OPEN = range(14)
_STRING2TOKEN = {")": _CLOSE, ",": _COMMA, "!": _NOT, "==": _DEQ, "=": _EQ, ">": _GT, "in": _IN,
                 "<": _LT, "!=": _NEQ, "notin": _NOTIN, "(": _OPEN}
_SPECIAL = frozenset("=!(),><")
_WHITESPACE = frozenset(" \t\r\n")
_NUL = "\x00"


class _Lexer:
    """labels.Lexer. `read` returns NUL at the end without moving, exactly like the Go one."""

    def __init__(self, text: str) -> None:
        self.s = text
        self.pos = 0

    def read(self) -> str:
        if self.pos < len(self.s):
            ch = self.s[self.pos]
            self.pos += 1
            return ch
        return _NUL

    def unread(self) -> None:
        self.pos -= 1

    def scan_id_or_keyword(self) -> tuple[int, str]:
        buf: list[str] = []
        while True:
            ch = self.read()
            if ch == _NUL:
                break
            if ch in _SPECIAL or ch in _WHITESPACE:
                self.unread()
                break
            buf.append(ch)
        text = "".join(buf)
        return (_STRING2TOKEN[text], text) if text in _STRING2TOKEN else (_ID, text)

    def scan_special_symbol(self) -> tuple[int, str]:
        last: tuple[int, str] | None = None
        buf = ""
        while True:
            ch = self.read()
            if ch == _NUL:
                break
            if ch in _SPECIAL:
                buf += ch
                if buf in _STRING2TOKEN:
                    last = (_STRING2TOKEN[buf], buf)
                elif last is not None:
                    self.unread()
                    break
            else:
                self.unread()
                break
        if last is None:
            return _ERROR, f"error expected: keyword found '{buf}'"
        return last

    def lex(self) -> tuple[int, str]:
        ch = self.read()
        while ch in _WHITESPACE:
            ch = self.read()
        if ch == _NUL:
            return _EOS, ""
        self.unread()
        if ch in _SPECIAL:
            return self.scan_special_symbol()
        return self.scan_id_or_keyword()


_KEY_AND_OPERATOR, _VALUES = 0, 1


class _ParseError(Exception):
    pass


class _Parser:
    """labels.Parser: scans every token first, then descends with one token of lookahead."""

    def __init__(self, text: str) -> None:
        self.items: list[tuple[int, str]] = []
        lexer = _Lexer(text)
        while True:
            tok, lit = lexer.lex()
            self.items.append((tok, lit))
            if tok == _EOS:
                break
        self.position = 0

    def _item(self, index: int, context: int) -> tuple[int, str]:
        tok, lit = self.items[min(index, len(self.items) - 1)]
        if context == _VALUES and tok in (_IN, _NOTIN):
            tok = _ID
        return tok, lit

    def lookahead(self, context: int) -> tuple[int, str]:
        return self._item(self.position, context)

    def consume(self, context: int) -> tuple[int, str]:
        self.position += 1
        return self._item(self.position - 1, context)

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        while True:
            tok, lit = self.lookahead(_VALUES)
            if tok in (_ID, _NOT):
                try:
                    requirements.append(self.parse_requirement())
                except (_ParseError, ValueError) as e:
                    raise _ParseError(f"unable to parse requirement: {e}") from None
                t, lit2 = self.consume(_VALUES)
                if t == _EOS:
                    return requirements
                if t == _COMMA:
                    t2, lit3 = self.lookahead(_VALUES)
                    if t2 not in (_ID, _NOT):
                        raise _ParseError(f"found '{lit3}', expected: identifier after ','")
                else:
                    raise _ParseError(f"found '{lit2}', expected: ',' or 'end of string'")
            elif tok == _EOS:
                return requirements
            else:
                raise _ParseError(f"found '{lit}', expected: !, identifier, or 'end of string'")

    def parse_requirement(self) -> Requirement:
        key, operator = self.parse_key_and_infer_operator()
        if operator in (EXISTS, DOES_NOT_EXIST):
            return _new_requirement(key, operator, [])
        operator = self.parse_operator()
        if operator in (IN, NOT_IN):
            values = self.parse_values()
        else:
            values = self.parse_exact_value()
        return _new_requirement(key, operator, sorted(values))

    def parse_key_and_infer_operator(self) -> tuple[str, str]:
        operator = ""
        tok, lit = self.consume(_VALUES)
        if tok == _NOT:
            operator = DOES_NOT_EXIST
            tok, lit = self.consume(_VALUES)
        if tok != _ID:
            raise _ParseError(f"found '{lit}', expected: identifier")
        err = _validate_label_key(lit, "<nil>")
        if err:
            raise _ParseError(err)
        t, _ = self.lookahead(_VALUES)
        if t in (_EOS, _COMMA) and operator != DOES_NOT_EXIST:
            operator = EXISTS
        return lit, operator

    def parse_operator(self) -> str:
        tok, lit = self.consume(_KEY_AND_OPERATOR)
        ops = {_IN: IN, _EQ: EQUALS, _DEQ: DOUBLE_EQUALS, _GT: GREATER_THAN, _LT: LESS_THAN,
               _NOTIN: NOT_IN, _NEQ: NOT_EQUALS}
        if tok not in ops:
            raise _ParseError(f"found '{lit}', expected: {', '.join(BINARY_OPERATORS)}")
        return ops[tok]

    def parse_values(self) -> set[str]:
        tok, lit = self.consume(_VALUES)
        if tok != _OPEN:
            raise _ParseError(f"found '{lit}' expected: '('")
        tok, lit = self.lookahead(_VALUES)
        if tok in (_ID, _COMMA):
            values = self.parse_identifiers_list()
            if self.consume(_VALUES)[0] != _CLOSE:
                raise _ParseError(f"found '{lit}', expected: ')'")
            return values
        if tok == _CLOSE:
            self.consume(_VALUES)
            return {""}
        raise _ParseError(f"found '{lit}', expected: ',', ')' or identifier")

    def parse_identifiers_list(self) -> set[str]:
        values: set[str] = set()
        while True:
            tok, lit = self.consume(_VALUES)
            if tok == _ID:
                values.add(lit)
                tok2, lit2 = self.lookahead(_VALUES)
                if tok2 == _COMMA:
                    continue
                if tok2 == _CLOSE:
                    return values
                raise _ParseError(f"found '{lit2}', expected: ',' or ')'")
            if tok == _COMMA:
                if not values:
                    values.add("")
                tok2, _ = self.lookahead(_VALUES)
                if tok2 == _CLOSE:
                    values.add("")
                    return values
                if tok2 == _COMMA:
                    self.consume(_VALUES)
                    values.add("")
                continue
            raise _ParseError(f"found '{lit}', expected: ',', or identifier")

    def parse_exact_value(self) -> set[str]:
        tok, _ = self.lookahead(_VALUES)
        if tok in (_EOS, _COMMA):
            return {""}
        tok, lit = self.consume(_VALUES)
        if tok == _ID:
            return {lit}
        raise _ParseError(f"found '{lit}', expected: identifier")


def parse_label_selector(text: str) -> LabelSelector:
    """labels.Parse of a `labelSelector` query value; bad input is the apiserver's 400 BadRequest."""
    if not isinstance(text, str):
        raise bad_request(f"json: cannot unmarshal {_json_kind(text)} into Go value of type string")
    try:
        return LabelSelector(_Parser(text).parse())
    except _ParseError as e:
        raise bad_request(str(e)) from None


_SELECTOR_OPS = {"In": IN, "NotIn": NOT_IN, "Exists": EXISTS, "DoesNotExist": DOES_NOT_EXIST}


def _decode_error(value: Any, where: str, go_type: str) -> ApiError:
    """What encoding/json says when a typed LabelSelector gets the wrong JSON type (400)."""
    kind = _json_kind(value)
    if where:
        return bad_request(f"json: cannot unmarshal {kind} into Go struct field {where} of type {go_type}")
    return bad_request(f"json: cannot unmarshal {kind} into Go value of type {go_type}")


def _json_kind(value: Any) -> str:
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return "string"


def _string_list(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        raise _decode_error(value, where, "[]string")
    out: list[str] = []
    for item in value:
        if item is None:
            item = ""  # a JSON null element decodes to the zero value
        if not isinstance(item, str):
            raise _decode_error(item, where, "string")
        out.append(item)
    return out


def _match_labels(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _decode_error(value, "LabelSelector.matchLabels", "map[string]string")
    out: dict[str, str] = {}
    for k, v in value.items():
        if v is None:
            v = ""
        if not isinstance(v, str):
            raise _decode_error(v, "LabelSelector.matchLabels", "string")
        out[str(k)] = v
    return out


def _expression(expr: Any) -> Requirement:
    """One matchExpressions entry through NewRequirement (errors as ValueError)."""
    if not isinstance(expr, Mapping):
        raise _decode_error(expr, "LabelSelector.matchExpressions", "v1.LabelSelectorRequirement")
    key = expr.get("key")
    operator = expr.get("operator")
    for field_name, value in (("key", key), ("operator", operator)):
        if value is not None and not isinstance(value, str):
            raise _decode_error(value, f"LabelSelectorRequirement.matchExpressions.{field_name}", "string")
    values = _string_list(expr.get("values"), "LabelSelectorRequirement.matchExpressions.values")
    operator = operator or ""
    if operator not in _SELECTOR_OPS:
        raise ValueError(f"{go_quote(operator)} is not a valid label selector operator")
    return _new_requirement(key or "", _SELECTOR_OPS[operator], values, nil_values=True)


def selector_from_label_selector(obj: Mapping[str, Any] | None) -> LabelSelector:
    """metav1.LabelSelectorAsSelector: how controllers read spec.selector of a workload.

    None (a nil selector) selects nothing; `{}` selects everything. Invalid content raises the
    400 the conversion error would become (controllers only see objects that passed validation),
    and a value of the wrong JSON type raises the decoder's 400, never a TypeError.
    """
    if obj is None:
        return nothing()
    if not isinstance(obj, Mapping):
        raise _decode_error(obj, "", "v1.LabelSelector")
    match_labels = _match_labels(obj.get("matchLabels"))
    expressions = obj.get("matchExpressions")
    if expressions is None:
        expressions = []
    if not isinstance(expressions, (list, tuple)):
        raise _decode_error(expressions, "LabelSelector.matchExpressions", "[]v1.LabelSelectorRequirement")
    if not match_labels and not expressions:
        return everything()
    reqs: list[Requirement] = []
    try:
        for key in sorted(match_labels):
            reqs.append(_new_requirement(key, EQUALS, [match_labels[key]]))
        for expr in expressions:
            reqs.append(_expression(expr))
    except ValueError as e:
        raise bad_request(str(e)) from None
    return LabelSelector(reqs)


# --------------------------------------------------------------------------------------------
# Field selectors
# --------------------------------------------------------------------------------------------

_META_ONLY = frozenset({"metadata.name", "metadata.namespace"})

# Kinds with a registered field-label conversion func (pkg/apis/core/v1/conversion.go). Anything
# else goes through runtime.DefaultMetaV1FieldSelectorConversion and its different wording.
_CORE_FIELD_LABELS: dict[str, frozenset[str]] = {
    "Pod": frozenset({"metadata.name", "metadata.namespace", "spec.nodeName", "spec.restartPolicy",
                      "spec.schedulerName", "spec.serviceAccountName", "spec.hostNetwork", "status.phase",
                      "status.podIP", "status.podIPs", "status.nominatedNodeName"}),
    "Node": frozenset({"metadata.name", "spec.unschedulable"}),
    "ReplicationController": frozenset({"metadata.name", "metadata.namespace", "status.replicas"}),
    "Event": frozenset({"involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                        "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
                        "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type",
                        "metadata.namespace", "metadata.name"}),
    "Namespace": frozenset({"status.phase", "metadata.name"}),
    "Secret": frozenset({"type", "metadata.namespace", "metadata.name"}),
    "Service": frozenset({"metadata.namespace", "metadata.name", "spec.clusterIP", "spec.type"}),
}
_FIELD_ALIASES = {("Pod", "spec.host"): "spec.nodeName"}  # old v1 clients


def _convert_field_label(rt: ResourceType, label: str) -> str:
    """scheme.ConvertFieldLabel for this kind: the internal label, or the apiserver's 400."""
    if rt.group == "" and rt.kind in _CORE_FIELD_LABELS:
        if label in _CORE_FIELD_LABELS[rt.kind]:
            return label
        if (rt.kind, label) in _FIELD_ALIASES:
            return _FIELD_ALIASES[(rt.kind, label)]
        raise bad_request(f"field label not supported: {label}")
    if rt.extra_fields:  # a kind this table does not know but the registry gives extra fields
        if label in rt.field_selectors:
            return label
        raise bad_request(f"field label not supported: {label}")
    if label in _META_ONLY:
        return label
    raise bad_request(
        f"{go_quote(label)} is not a known field selector: only {go_quote('metadata.name')}, "
        f"{go_quote('metadata.namespace')}"
    )


def _escape_value(value: str) -> str:
    """fields.EscapeValue."""
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def _unescape_value(value: str) -> str:
    """fields.UnescapeValue; its errors print the bad rune as a number (Go `%v` of a rune)."""
    if not any(c in value for c in "\\,="):
        return value
    out: list[str] = []
    in_slash = False
    for c in value:
        if in_slash:
            if c in "\\,=":
                out.append(c)
            else:
                raise bad_request(f"invalid field selector: invalid escape sequence: \\{c}")
            in_slash = False
            continue
        if c == "\\":
            in_slash = True
        elif c in ",=":
            raise bad_request(f"invalid field selector: unescaped character in value: {ord(c)}")
        else:
            out.append(c)
    if in_slash:
        raise bad_request("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def _split_terms(text: str) -> list[str]:
    """fields.splitTerms: commas split terms unless escaped; the backslash stays in the term."""
    if not text:
        return []
    terms: list[str] = []
    start = 0
    in_slash = False
    for i, c in enumerate(text):
        if in_slash:
            in_slash = False
        elif c == "\\":
            in_slash = True
        elif c == ",":
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


def _split_term(term: str) -> tuple[str, str, str] | None:
    """fields.splitTerm: the first `!=`, `==` or `=` (tried in that order at each position)."""
    for i in range(len(term)):
        for op in ("!=", "==", "="):
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op):]
    return None


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    operator: str  # "=" (also for `==`) or "!="
    value: str

    def __str__(self) -> str:
        return f"{self.field}{self.operator}{_escape_value(self.value)}"


def _fmt_bool(value: Any) -> str:
    return "true" if value is True else "false"


def _sub(obj: Any, key: str) -> Mapping[str, Any]:
    """obj[key] when it is an object, else an empty one (status is stored unvalidated)."""
    value = obj.get(key) if isinstance(obj, Mapping) else None
    return value if isinstance(value, Mapping) else {}


def _text(obj: Mapping[str, Any], key: str) -> str:
    """A string field as the Go struct holds it: missing, null or mistyped reads as ""."""
    value = obj.get(key)
    return value if isinstance(value, str) else ""


def _pod_ip(status: Mapping[str, Any]) -> str:
    """status.podIP as the internal Pod sees it: v1 podIP wins over podIPs[0] when both are set."""
    pod_ip = _text(status, "podIP")
    if pod_ip:
        return pod_ip
    pod_ips = status.get("podIPs")
    if isinstance(pod_ips, list) and pod_ips and isinstance(pod_ips[0], Mapping):
        return _text(pod_ips[0], "ip")
    return ""


def _pod_fields(obj: Mapping[str, Any]) -> dict[str, str]:
    """registry/core/pod ToSelectableFields (status.podIPs is accepted but never set, as upstream)."""
    spec, status = _sub(obj, "spec"), _sub(obj, "status")
    return {
        "spec.nodeName": _text(spec, "nodeName"),
        "spec.restartPolicy": _text(spec, "restartPolicy"),
        "spec.schedulerName": _text(spec, "schedulerName"),
        "spec.serviceAccountName": _text(spec, "serviceAccountName"),
        "spec.hostNetwork": _fmt_bool(spec.get("hostNetwork")),
        "status.phase": _text(status, "phase"),
        "status.podIP": _pod_ip(status),
        "status.nominatedNodeName": _text(status, "nominatedNodeName"),
    }


def _event_fields(obj: Mapping[str, Any]) -> dict[str, str]:
    """registry/core/event ToSelectableFields: `source` falls back to reportingComponent."""
    inv = _sub(obj, "involvedObject")
    source = _text(_sub(obj, "source"), "component") or _text(obj, "reportingComponent")
    fields = {f"involvedObject.{k}": _text(inv, k) for k in
              ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")}
    fields.update({"reason": _text(obj, "reason"), "reportingComponent": _text(obj, "reportingComponent"),
                   "source": source, "type": _text(obj, "type")})
    return fields


def _replicas(status: Mapping[str, Any]) -> str:
    value = status.get("replicas")
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else "0"


def _kind_fields(kind: str, obj: Mapping[str, Any]) -> dict[str, str]:
    spec, status = _sub(obj, "spec"), _sub(obj, "status")
    if kind == "Pod":
        return _pod_fields(obj)
    if kind == "Event":
        return _event_fields(obj)
    if kind == "Node":
        return {"spec.unschedulable": _fmt_bool(spec.get("unschedulable"))}
    if kind == "Namespace":
        return {"status.phase": _text(status, "phase")}
    if kind == "Secret":
        return {"type": _text(obj, "type")}
    if kind == "Service":
        return {"spec.clusterIP": _text(spec, "clusterIP"), "spec.type": _text(spec, "type")}
    if kind == "ReplicationController":
        return {"status.replicas": _replicas(status)}
    return {}


def selectable_fields(rt: ResourceType, obj: Mapping[str, Any]) -> dict[str, str]:
    """The fields.Set the registry of this kind builds for an object."""
    if not isinstance(obj, Mapping):
        obj = {}
    meta = _sub(obj, "metadata")
    fields = _kind_fields(rt.kind, obj) if rt.group == "" else {}
    fields["metadata.name"] = _text(meta, "name")
    if rt.namespaced:
        fields["metadata.namespace"] = _text(meta, "namespace")
    return fields


class FieldSelector:
    """A parsed and converted field selector for one resource type."""

    __slots__ = ("rt", "requirements")

    def __init__(self, rt: ResourceType, requirements: Iterable[FieldRequirement] = ()) -> None:
        self.rt = rt
        self.requirements: tuple[FieldRequirement, ...] = tuple(requirements)

    def matches(self, obj: Mapping[str, Any]) -> bool:
        if not self.requirements:
            return True
        fields = selectable_fields(self.rt, obj)
        for r in self.requirements:
            have = fields.get(r.field, "")
            if (have == r.value) != (r.operator == "="):
                return False
        return True

    def empty(self) -> bool:
        return not self.requirements

    def requires_exact_match(self, field: str) -> str | None:
        for r in self.requirements:
            if r.field == field and r.operator == "=":
                return r.value
        return None

    def single_name(self) -> str | None:
        """The name when the selector is exactly `metadata.name=X` (kubectl's single-object watch)."""
        if len(self.requirements) == 1:
            r = self.requirements[0]
            if r.field == "metadata.name" and r.operator == "=":
                return r.value
        return None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)

    def __repr__(self) -> str:
        return f"FieldSelector({self.rt.plural}, {str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FieldSelector):
            return NotImplemented
        return self.rt == other.rt and self.requirements == other.requirements

    def __hash__(self) -> int:
        return hash((self.rt.key, self.requirements))


def parse_field_selector(text: str, rt: ResourceType) -> FieldSelector:
    """fields.ParseSelector + Transform(ConvertFieldLabel), both failures as 400 BadRequest.

    Terms are sorted as raw text first (as upstream does), so with several bad terms the error is
    about the first one in that order.
    """
    if not isinstance(text, str):
        raise bad_request(f"json: cannot unmarshal {_json_kind(text)} into Go value of type string")
    parsed: list[tuple[str, str, str]] = []
    for part in sorted(_split_terms(text)):
        if part == "":
            continue
        split = _split_term(part)
        if split is None:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        lhs, op, rhs = split
        parsed.append((lhs, "!=" if op == "!=" else "=", _unescape_value(rhs)))
    reqs: list[FieldRequirement] = []
    for lhs, op, value in parsed:
        label = _convert_field_label(rt, lhs)
        if label == "" and value == "":
            continue  # Transform drops terms that convert to nothing
        reqs.append(FieldRequirement(label, op, value))
    return FieldSelector(rt, reqs)

