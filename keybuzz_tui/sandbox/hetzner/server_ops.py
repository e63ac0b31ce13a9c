"""Servers: the sandbox does not create or delete them through the API (they are the Kubernetes
nodes, seeded by the scenario and replaced through `HetznerState.replace_server`), but their name
and labels can be changed with PUT /servers/{id}, as operators do to tag workers for selectors."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from .errors import FieldErrors, not_found, uniqueness_error
from .labels import check_labels
from .model import Server
from .validation import read_str

if TYPE_CHECKING:
    from .state import HetznerState

# server names must be valid hostnames (RFC 1123)
HOSTNAME_RE = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)


def get(st: HetznerState, server_id: int) -> Server:
    s = st.servers.get(server_id)
    if s is None:
        raise not_found("server", server_id)
    return s


def update(st: HetznerState, server_id: int, body: dict[str, Any]) -> Server:
    s = get(st, server_id)
    errors = FieldErrors()
    name = read_str(body, "name", errors, "name", min_len=1, max_len=253, pattern=HOSTNAME_RE)
    labels = check_labels(body["labels"], errors) if body.get("labels") is not None else None
    errors.raise_if_any()
    if name is not None and name != s.name and any(o.name == name for o in st.servers.values()):
        raise uniqueness_error("name", f"server name '{name}' is already used")
    if name is not None:
        s.name = name
    if labels is not None:
        s.labels = labels
    st.emit("updated", "server", s.id)
    return s
