"""`keybuzz-tui config init|check`: write the commented default keybuzz.yaml, or check one.

    keybuzz-tui config init  [--config FILE] [--profile P] [--force]
    keybuzz-tui config check [--config FILE]

Exit codes: 0 ok, 2 usage or configuration error (every problem printed as file:line: field: message).
Also runnable as `python -m keybuzz_tui.cli_config ...`.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

OK, USAGE = 0, 2


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "config",
        help="write (init) or check the answers file keybuzz.yaml",
        description="The answers file keybuzz.yaml: everything but secrets (those live in the OS keyring).",
    )
    sub = p.add_subparsers(dest="config_command", metavar="ACTION")
    init = sub.add_parser("init", help="write the commented default keybuzz.yaml (the runbook's values)")
    init.add_argument("--config", metavar="FILE", help="where to write it (default: ./keybuzz.yaml if present, else the user config dir)")
    init.add_argument("--profile", default="production", help="cluster profile name (default: production)")
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    chk = sub.add_parser("check", help="check keybuzz.yaml and print every problem with its line")
    chk.add_argument("--config", metavar="FILE", help="the file to check (default: ./keybuzz.yaml if present, else the user config dir)")
    p.set_defaults(run=run, _config_parser=p)
    return p


def _err(msg: str) -> None:
    sys.stderr.write(f"keybuzz-tui config: {msg}\n")


def _path(args: argparse.Namespace) -> Path:
    from .paths import config_path

    return Path(args.config).expanduser() if getattr(args, "config", None) else config_path()


def write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    """Write `text` to `path` so that readers see the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)  # mkstemp creates 0600; the answers hold no secret
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:  # make the rename itself durable
        dfd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def cmd_init(args: argparse.Namespace) -> int:
    from .config_template import render_default

    path = _path(args)
    try:
        text = render_default(args.profile)
    except ValueError as e:
        _err(str(e))
        return USAGE
    if path.is_dir():
        _err(f"{path} is a directory; give a file name, e.g. --config {path / 'keybuzz.yaml'}")
        return USAGE
    if path.exists() and not args.force:
        _err(f"{path} already exists; not overwriting it (use --force to replace it with the defaults)")
        return USAGE
    try:
        write_atomic(path, text)
    except OSError as e:
        _err(f"cannot write {path}: {e.strerror or e}")
        return USAGE
    print(f"wrote {path} (profile {args.profile}, the runbook's defaults; no secrets)")
    print(f"next: edit it, `keybuzz-tui config check --config {path}`, then `keybuzz-tui credentials set hcloud-token`")
    return OK


def summary(cfg: Any) -> str:
    """One line: what this file would install."""
    apps = ", ".join(f"{a.name} {a.port}/{a.node_port}" for a in cfg.apps)
    lb = cfg.load_balancer
    listen = ",".join(str(s.listen_port) for s in lb.services)
    dest = sorted({s.destination_port for s in lb.services})
    where = lb.location or lb.network_zone
    return (
        f"profile {cfg.profile}, namespace {cfg.namespace}, apps: {apps}; "
        f"ingress {cfg.ingress.http_node_port}/{cfg.ingress.https_node_port}; "
        f"LB {lb.name} ({lb.type}, {where}) {listen} -> {','.join(map(str, dest))}, certificate {lb.certificate.type}; "
        f"DNS {cfg.dns.mode} {cfg.dns.zone}; firewall {cfg.firewall.mode}"
    )


def cmd_check(args: argparse.Namespace) -> int:
    from .config import ConfigError, load

    path = _path(args)
    try:
        cfg = load(path)
    except ConfigError as e:
        for line in e.render().splitlines():
            sys.stderr.write(line + "\n")
        n = len(e.problems)
        _err(f"{n} problem{'s' if n != 1 else ''} in {path}")
        return USAGE
    print(f"ok: {path}: {summary(cfg)}")
    return OK


def run(args: argparse.Namespace) -> int:
    action = getattr(args, "config_command", None)
    if action == "init":
        return cmd_init(args)
    if action == "check":
        return cmd_check(args)
    parser = getattr(args, "_config_parser", None)
    if parser is not None:
        parser.print_help(sys.stderr)
    return USAGE


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="keybuzz-tui")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["config", *(sys.argv[1:] if argv is None else argv)])
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
