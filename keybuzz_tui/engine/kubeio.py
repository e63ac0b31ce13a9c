"""Raw JSON calls through the official kubernetes client's transport.

The typed models of client 37 validate every field with pydantic: fine for one object, but listing
20,000 pods through them costs seconds. The engine reads large lists as plain JSON through the same
ApiClient (same auth, TLS, proxy settings) and gets Status errors as KubeError with the server's
own message, which is what the operator needs to read.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from ..redact import REDACTOR
from .context import Context


class KubeError(Exception):
    """A non-2xx answer: the Status's code, reason and message."""

    def __init__(self, status: int, reason: str, message: str, body: dict[str, Any] | None = None) -> None:
        super().__init__(REDACTOR.redact(message))
        self.status = status
        self.reason = reason
        self.message = REDACTOR.redact(message)
        self.body = body or {}


class Unreachable(Exception):
    """The API server could not be reached (refused, timeout, TLS)."""


def _query(params: dict[str, Any] | None) -> list[tuple[str, Any]]:
    out = []
    for k, v in (params or {}).items():
        if v is None:
            continue
        if isinstance(v, bool):
            v = "true" if v else "false"
        out.append((k, v))
    return out


def request(
    ctx: Context,
    method: str,
    path: str,
    *,
    query: dict[str, Any] | None = None,
    body: Any = None,
    content_type: str = "application/json",
    timeout: float | tuple[float, float] | None = None,
    stream: bool = False,
) -> Any:
    import urllib3

    api = ctx.kube()
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = content_type
    _method, url, hdrs, sbody, _post = api.param_serialize(
        method, path, query_params=_query(query), header_params=headers, body=body, auth_settings=["BearerToken"]
    )
    try:
        resp = api.rest_client.request(method, url, headers=hdrs, body=sbody, _request_timeout=timeout or ctx.request_timeout)
    except urllib3.exceptions.MaxRetryError as e:
        raise Unreachable(_why(e.reason, url)) from None
    except (urllib3.exceptions.HTTPError, OSError) as e:
        raise Unreachable(_why(e, url)) from None
    if stream and 200 <= resp.status < 300:
        return resp
    data = resp.read()
    if not 200 <= resp.status < 300:
        try:
            status = json.loads(data)
        except ValueError:
            status = {}
        msg = status.get("message") or (data.decode(errors="replace")[:300] if data else resp.reason)
        raise KubeError(resp.status, status.get("reason") or resp.reason or "", msg, status)
    if not data:
        return {}
    return json.loads(data)


def _why(err: Any, url: str) -> str:
    text = str(err)
    host = url.split("/")[2] if "://" in url else url
    if "CERTIFICATE_VERIFY_FAILED" in text or "SSLError" in type(err).__name__:
        return f"TLS verification failed for {host}: {text.split(':', 1)[-1].strip()[:160]}"
    if "timed out" in text.lower() or "Timeout" in type(err).__name__:
        return f"{host} did not answer in time"
    if "Connection refused" in text or "NewConnectionError" in type(err).__name__:
        return f"{host} refused the connection (is the API server running and the address right?)"
    return f"{host}: {text[:200]}"


def get(ctx: Context, path: str, **query: Any) -> dict[str, Any]:
    return request(ctx, "GET", path, query=query)  # type: ignore[no-any-return]


def get_or_none(ctx: Context, path: str) -> dict[str, Any] | None:
    try:
        return get(ctx, path)
    except KubeError as e:
        if e.status == 404:
            return None
        raise


def list_all(ctx: Context, path: str, *, page: int = 0, **query: Any) -> dict[str, Any]:
    """A whole LIST; with page>0 it follows `continue` tokens (items concatenated)."""
    if not page:
        return get(ctx, path, **query)
    out: dict[str, Any] | None = None
    cont = None
    while True:
        ctx.cancel.check()
        part = get(ctx, path, limit=page, **({"continue": cont} if cont else {}), **query)
        if out is None:
            out = part
        else:
            out["items"].extend(part.get("items") or [])
        cont = (part.get("metadata") or {}).get("continue")
        if not cont:
            break
    out["metadata"].pop("continue", None)
    return out


def apply(ctx: Context, path: str, obj: dict[str, Any], *, dry_run: bool = False, force: bool = True) -> dict[str, Any]:
    """Server-side apply under the one field manager keybuzz-tui uses."""
    from .context import FIELD_MANAGER

    q: dict[str, Any] = {"fieldManager": FIELD_MANAGER, "force": force}
    if dry_run:
        q["dryRun"] = "All"
    return request(ctx, "PATCH", path, query=q, body=obj, content_type="application/apply-patch+yaml")  # type: ignore[no-any-return]


def delete(ctx: Context, path: str, *, propagation: str = "Background") -> dict[str, Any] | None:
    try:
        return request(ctx, "DELETE", path, body={"propagationPolicy": propagation})  # type: ignore[no-any-return]
    except KubeError as e:
        if e.status == 404:
            return None
        raise


def watch(ctx: Context, path: str, *, resource_version: str, timeout_seconds: int = 30, **query: Any) -> Iterator[dict[str, Any]]:
    """Watch events as dicts until the server closes the stream (timeout) or the token cancels.

    The read timeout is a little longer than the server-side timeout, so a dead connection can
    never block a cancel for longer than that.
    """
    resp = request(
        ctx, "GET", path,
        query={"watch": True, "resourceVersion": resource_version, "timeoutSeconds": timeout_seconds, "allowWatchBookmarks": True, **query},
        timeout=(ctx.request_timeout, timeout_seconds + 5), stream=True,
    )
    buf = b""
    try:
        for chunk in resp.response.stream(4096, decode_content=True):
            if ctx.cancel.cancelled:
                return
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if line.strip():
                    yield json.loads(line)
    finally:
        # a watch left early still has chunks in flight: close it, never hand it back to the pool
        resp.response.close()
        resp.response.release_conn()


def resource_path(api_version: str, plural: str, namespace: str | None = None, name: str | None = None) -> str:
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    ns = f"/namespaces/{quote(namespace)}" if namespace else ""
    tail = f"/{quote(name)}" if name else ""
    return f"{base}{ns}/{plural}{tail}"
