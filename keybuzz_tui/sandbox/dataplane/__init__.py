"""The cluster's data plane: real sockets on the node loopback addresses, the overlay in-process.

Entry points: `start_dataplane(sandbox)` (call after the KubeCluster exists and before
`cluster.bootstrap()`), `DataPlane.stop()`, `DataPlane.set_overlay(ok)` and
`DataPlane.overlay_request(...)`. See plane.py for the design.
"""

from __future__ import annotations

from .plane import DataPlane, start_dataplane
from .wire import DialError, HttpRequest, HttpResponse

__all__ = ["DataPlane", "DialError", "HttpRequest", "HttpResponse", "start_dataplane"]
