"""busybox in a debug pod: what `wget`, `nc`, `nslookup` and friends print from inside the cluster.

A doctor (or a curious operator) runs a short-lived pod on a chosen node with a command such as
`wget -T 5 -qO- http://keybuzz-api.keybuzz:8080/healthz`; the kubelet's exec hook lands here and
gets (exit code, output lines) worded like busybox 1.36. Answers come from the synchronous
network model (the kubelet cannot await), so a blocked overlay is reported as the timeout it would
have been rather than waited for.
"""

from __future__ import annotations

import ipaddress
import shlex
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from multidict import CIMultiDict

from . import clusterdns
from .topology import in_pod_cidr, in_service_cidr
from .wire import DialError, HttpRequest, reason

if TYPE_CHECKING:
    from .plane import DataPlane

Result = tuple[int, list[str]]
OPERATORS = ("&&", "||", ";")


def _is_ip(s: str) -> bool:
    try:
        ipaddress.ip_address(s)
        return True
    except ValueError:
        return False


def split_commands(argv: list[str]) -> list[tuple[str, list[str]]]:
    """[("", cmd1), ("&&", cmd2), ...]: sh -c "a && b; c" after the kubelet's shlex split."""
    out: list[tuple[str, list[str]]] = []
    op, cur = "", []
    for tok in argv:
        if tok in OPERATORS:
            out.append((op, cur))
            op, cur = tok, []
        elif tok.endswith(";") and len(tok) > 1:
            cur.append(tok[:-1])
            out.append((op, cur))
            op, cur = ";", []
        else:
            cur.append(tok)
    out.append((op, cur))
    return [(o, c) for o, c in out if c]


class Toolbox:
    HANDLED = {"wget", "nc", "nslookup", "cat", "echo", "hostname", "ss", "netstat", "sleep", "true", "false"}

    def __init__(self, plane: DataPlane) -> None:
        self.plane = plane

    def __call__(self, pod: dict[str, Any], run: Any, argv: list[str]) -> Result | None:
        cmds = split_commands([a for a in argv])
        if not cmds:
            return None
        first = self._name(cmds[0][1])
        if len(cmds) == 1 and (first not in self.HANDLED or first in ("ss", "netstat", "sleep", "true")):
            return None  # the kubelet's own answer (ss -ltn, sleep, unknown commands)
        node = run.node
        lines: list[str] = []
        code = 0
        for op, cmd in cmds:
            if (op == "&&" and code != 0) or (op == "||" and code == 0):
                continue
            code, out = self.run(pod, node, cmd)
            lines += out
        return code, lines

    @staticmethod
    def _name(cmd: list[str]) -> str:
        if cmd and cmd[0].rsplit("/", 1)[-1] == "busybox":
            cmd = cmd[1:]
        return cmd[0].rsplit("/", 1)[-1] if cmd else ""

    def run(self, pod: dict[str, Any], node: str, cmd: list[str]) -> Result:
        if cmd and cmd[0].rsplit("/", 1)[-1] == "busybox":
            cmd = cmd[1:]
        name, args = self._name(cmd), cmd[1:]
        try:
            if name == "wget":
                return self.wget(pod, node, args)
            if name == "nc":
                return self.nc(pod, node, args)
            if name == "nslookup":
                return self.nslookup(pod, node, args)
        except (ValueError, IndexError) as e:
            return 1, [f"{name}: {e}" if str(e) else f"BusyBox v1.36.1 (2023-05-18 22:34:17 UTC) multi-call binary.\n\nUsage: {name} ..."]
        if name == "cat":
            out: list[str] = []
            for f in args:
                if f == "/etc/resolv.conf":
                    out += clusterdns.resolv_conf(self.plane.cluster.store, pod).text()
                elif f == "/etc/hostname":
                    out.append(self._hostname(pod, node))
                else:
                    return 1, [*out, f"cat: can't open '{f}': No such file or directory"]
            return 0, out
        if name == "echo":
            return 0, [" ".join(args)]
        if name == "hostname":
            return 0, [self._hostname(pod, node)]
        if name in ("ss", "netstat"):
            lines = ["State  Recv-Q Send-Q Local Address:Port Peer Address:Port Process"]
            for ip, port, proto, h in self.plane.listening(node):
                if proto == "TCP":
                    lines.append(f'LISTEN 0      511    {ip}:{port} 0.0.0.0:* users:(("{h.command.split()[0].rstrip(":")}",pid={h.pid},fd=6))')
            return 0, lines
        if name in ("sleep", "true"):
            return 0, []
        if name == "false":
            return 1, []
        return 127, [f"sh: {name}: not found"]

    @staticmethod
    def _hostname(pod: dict[str, Any], node: str) -> str:
        return node if (pod.get("spec") or {}).get("hostNetwork") else pod["metadata"]["name"]

    # --- name resolution -----------------------------------------------------------------------

    def resolve(self, pod: dict[str, Any], node: str, name: str, server: str | None = None) -> tuple[str, str | list[str]]:
        """(server used, "timeout" | "refused" | "nxdomain" | [fqdn, ip...])."""
        if _is_ip(name):
            return "", [name, name]
        store = self.plane.cluster.store
        rc = clusterdns.resolv_conf(store, pod)
        srv = server or (rc.nameservers[0] if rc.nameservers else "")
        if not srv or not (in_service_cidr(srv) or in_pod_cidr(srv) or srv in self.plane.topology.node_by_ip):
            # the node's upstream resolvers: the sandbox has no Internet, and they know no cluster.local
            return srv, "nxdomain"
        r = self.plane.topology.reach(node, srv, 53, proto="UDP")
        if r.kind == "timeout" or r.kind == "unreachable":
            return srv, "timeout"
        if r.kind != "serve" or r.target is None or r.target.kind != "coredns":
            return srv, "refused"
        rc_used = rc if rc.cluster else clusterdns.ResolvConf((srv,), (), 1, True)
        found = clusterdns.lookup(store, self.plane.topology.node_ips, name, rc_used)
        if found is None:
            return srv, "nxdomain"
        return srv, [found[0], *found[1]]

    # --- commands ----------------------------------------------------------------------------

    def nslookup(self, pod: dict[str, Any], node: str, args: list[str]) -> Result:
        names = [a for a in args if not a.startswith("-")]
        if not names:
            raise ValueError("")
        srv, res = self.resolve(pod, node, names[0], names[1] if len(names) > 1 else None)
        if res == "timeout":
            return 1, [";; connection timed out; no servers could be reached", ""]
        if res == "refused":
            return 1, [";; connection refused; no servers could be reached", ""]
        head = [f"Server:\t\t{srv}", f"Address:\t{srv}:53", ""]
        if res == "nxdomain":
            return 1, [*head, f"** server can't find {names[0]}: NXDOMAIN", ""]
        assert isinstance(res, list)
        return 0, [*head, *[line for ip in res[1:] for line in (f"Name:\t{res[0]}", f"Address: {ip}")], ""]

    def nc(self, pod: dict[str, Any], node: str, args: list[str]) -> Result:
        verbose, rest, i = False, [], 0
        while i < len(args):
            a = args[i]
            if a == "-w":
                i += 1
            elif a.startswith("-"):
                verbose = verbose or "v" in a
            else:
                rest.append(a)
            i += 1
        if len(rest) < 2:
            raise ValueError("")
        host, port = rest[0], int(rest[1])
        _srv, res = self.resolve(pod, node, host)
        if not isinstance(res, list):
            return 1, [f"nc: bad address '{host}'"]
        ip = res[1]
        try:
            self.plane.network.connect_sync(node, ip, port)
        except DialError as e:
            if e.timed_out:
                return 1, ["nc: timed out"]
            return 1, [f"nc: can't connect to remote host ({ip}): {e.errno_text()}"]
        return 0, [f"{host} ({ip}:{port}) open"] if verbose else []

    def wget(self, pod: dict[str, Any], node: str, args: list[str]) -> Result:
        quiet, out, spider, headers, url = False, "", False, CIMultiDict(), ""
        i = 0
        while i < len(args):
            a = args[i]
            if a in ("-T", "-O", "-U", "--header", "-Y"):
                val = args[i + 1]
                if a == "-O":
                    out = val
                elif a == "--header":
                    k, _, v = val.partition(":")
                    headers[k.strip()] = v.strip()
                elif a == "-U":
                    headers["User-Agent"] = val
                i += 2
                continue
            if a.startswith("--timeout=") or a.startswith("--header="):
                if a.startswith("--header="):
                    k, _, v = a.split("=", 1)[1].partition(":")
                    headers[k.strip()] = v.strip()
            elif a == "--spider":
                spider = True
            elif a.startswith("-") and not a.startswith("--"):
                flags = a[1:]
                quiet = quiet or "q" in flags
                if "O" in flags:
                    rest = flags.split("O", 1)[1]
                    if rest:
                        out = rest
                    else:
                        out = args[i + 1]
                        i += 1
                spider = spider or False
            elif not a.startswith("-"):
                url = a
            i += 1
        if not url:
            raise ValueError("")
        lines: list[str] = []
        for _hop in range(6):
            parts = urlsplit(url if "://" in url else "http://" + url)
            host = parts.hostname or ""
            port = parts.port or (443 if parts.scheme == "https" else 80)
            _srv, res = self.resolve(pod, node, host)
            if not isinstance(res, list):
                return 1, [*lines, f"wget: bad address '{host}'"]
            ip = res[1]
            if not quiet:
                lines.append(f"Connecting to {host}{':' + str(parts.port) if parts.port else ''} ({ip}:{port})")
            h = CIMultiDict({"Host": parts.netloc, "User-Agent": "Wget", "Connection": "close"})
            h.update(headers)
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            req = HttpRequest("GET", target, h, scheme=parts.scheme or "http", remote=self.plane.topology.node_ips.get(node, ""))
            try:
                resp = self.plane.network.request_sync(node, ip, port, req)
            except DialError as e:
                if e.timed_out:
                    return 1, [*lines, "wget: download timed out"]
                return 1, [*lines, f"wget: can't connect to remote host ({ip}): {e.errno_text()}"]
            if resp.status in (301, 302, 303, 307, 308) and resp.headers.get("Location"):
                url = urljoin(url, resp.headers["Location"])
                continue
            if resp.status >= 400:
                return 1, [*lines, f"wget: server returned error: HTTP/1.1 {resp.status} {resp.reason or reason(resp.status)}"]
            if spider:
                return 0, [*lines, "remote file exists"] if not quiet else lines
            if out in ("-", "/dev/stdout"):
                return 0, [*lines, *resp.text.splitlines()]
            fname = out or (parts.path.rsplit("/", 1)[-1] or "index.html")
            if not quiet:
                lines += [f"saving to '{fname}'", f"{fname:<20} 100% |********************************| {len(resp.body):>6}  0:00:00 ETA", f"'{fname}' saved"]
            return 0, lines
        return 1, [*lines, "wget: too many redirections"]


def shell_words(command: str) -> list[str]:
    """What the kubelet does with `sh -c "..."` (kept here so tests can build argv the same way)."""
    return shlex.split(command)
