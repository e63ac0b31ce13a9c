"""`keybuzz-tui credentials status|set|rotate|check|forget`: the keyring side of step 1.

    keybuzz-tui credentials status [--json]                 where each credential comes from (masked)
    keybuzz-tui credentials set hcloud-token                reads stdin, or a masked prompt
    keybuzz-tui credentials set app/<app>/<KEY>             likewise (never from the command line)
    keybuzz-tui credentials set certificate-key < key.pem   an uploaded certificate's private key
    keybuzz-tui credentials rotate app/<app>/<KEY>... | --all
    keybuzz-tui credentials check [--sandbox DIR] [--json]  the Hetzner token against the API
    keybuzz-tui credentials forget NAME... | --all [--yes]
  every action takes [--config FILE] [--profile P]

Exit codes: 0 ok; 2 usage or configuration error; 4 credentials problem (missing, wrong or
read-only token, no usable keyring); 5 the Hetzner API cannot be reached or is rate-limiting.
Secret values never appear in the output: every line goes through the redaction registry.
Also runnable as `python -m keybuzz_tui.cli_credentials ...`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

OK, USAGE, CREDENTIALS, UNREACHABLE = 0, 2, 4, 5


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "credentials",
        help="the Hetzner token and the apps' secrets in the OS keyring (status, set, rotate, check, forget)",
        description="Credentials live in the OS keyring under the service keybuzz-tui:<profile>, or in "
        "HCLOUD_TOKEN / KEYBUZZ_SECRET_<APP>_<KEY> environment variables, which win when set.",
    )
    sub = p.add_subparsers(dest="credentials_command", metavar="ACTION")

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--config", metavar="FILE", help="answers file (default: ./keybuzz.yaml, else the user config dir)")
        sp.add_argument("--profile", metavar="P", help="cluster profile (default: the answers file's)")

    st = sub.add_parser("status", help="where each credential comes from, masked")
    common(st)
    st.add_argument("--json", action="store_true", help="one JSON document instead of a table")
    se = sub.add_parser("set", help="store a credential (read from stdin or a masked prompt, never from argv)")
    common(se)
    se.add_argument("name", help="hcloud-token, app/<app>/<KEY> or certificate-key")
    se.add_argument("value_on_argv", nargs="*", help=argparse.SUPPRESS)
    ro = sub.add_parser("rotate", help="regenerate generated app secrets (the next apply updates the cluster Secret)")
    common(ro)
    ro.add_argument("names", nargs="*", metavar="app/<app>/<KEY>")
    ro.add_argument("--all", action="store_true", help="every generated secret")
    ch = sub.add_parser("check", help="check the Hetzner API token against the API (valid, read-only, wrong...)")
    common(ch)
    ch.add_argument("--sandbox", metavar="DIR", help="check against a running sandbox (its --state-dir)")
    ch.add_argument("--json", action="store_true", help="one JSON document")
    fo = sub.add_parser("forget", help="delete credentials from the keyring")
    common(fo)
    fo.add_argument("names", nargs="*", metavar="NAME")
    fo.add_argument("--all", action="store_true", help="every credential of the profile")
    fo.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.set_defaults(run=run, _credentials_parser=p)
    return p


# --- output: always redacted -------------------------------------------------------------------


def _out(text: str = "") -> None:
    from .redact import REDACTOR

    sys.stdout.write(REDACTOR.redact(text) + "\n")
    sys.stdout.flush()


def _err(text: str) -> None:
    from .redact import REDACTOR

    sys.stderr.write(REDACTOR.redact(f"keybuzz-tui credentials: {text}") + "\n")
    sys.stderr.flush()


class _Usage(Exception):
    pass


# --- shared setup ------------------------------------------------------------------------------


def _config(args: argparse.Namespace) -> tuple[Any, Path | None]:
    from . import config as cfgmod
    from .paths import config_path

    if getattr(args, "config", None):
        path = Path(args.config).expanduser()
        return cfgmod.load(path), path
    path = config_path()
    if path.exists():
        return cfgmod.load(path), path
    return cfgmod.Config(), None


def _store(args: argparse.Namespace, cfg: Any) -> Any:
    """The profile's store; every change it makes is journaled in the profile's state directory
    (journal.jsonl: the name, the action and the source, never the value)."""
    from .credentials import CredentialStore
    from .journal import Journal
    from .paths import journal_path

    profile = getattr(args, "profile", None) or cfg.profile
    try:
        return CredentialStore(profile, journal=Journal(journal_path(profile)))
    except ValueError as e:
        raise _Usage(str(e)) from None


def _read_secret(name: str) -> str:
    """stdin when it is not a terminal (`... < file`, a pipe), else a masked prompt."""
    import getpass

    from .credentials import CERTIFICATE_KEY, HCLOUD_TOKEN

    if not _stdin_is_terminal():
        value = sys.stdin.read()
        return value if name == CERTIFICATE_KEY else value.strip()
    if name == CERTIFICATE_KEY:
        raise _Usage("a private key is several lines: pipe the PEM file in, e.g. `keybuzz-tui credentials set certificate-key < key.pem`")
    value = getpass.getpass(f"{name} (input hidden): ").strip()
    if name != HCLOUD_TOKEN and value:
        again = getpass.getpass(f"{name} again: ").strip()
        if again != value:
            raise _Usage("the two entries differ; nothing stored")
    return value


def _stdin_is_terminal() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (ValueError, OSError):  # closed
        return False


# --- actions -----------------------------------------------------------------------------------


def cmd_status(args: argparse.Namespace) -> int:
    from .credentials import KeyringUnavailable, env_var

    cfg, path = _config(args)
    store = _store(args, cfg)
    rows = store.status(cfg)
    problem: str | None = None
    try:
        store.verify()
        backend = store.backend_description()
    except KeyringUnavailable as e:
        backend, problem = f"unavailable ({e.reason})", str(e)
    generated = {f"app/{a.name}/{s.key}" for a in cfg.apps for s in a.secrets if s.generate}
    missing = [r.name for r in rows if r.source == "missing" and r.name not in generated]
    if args.json:
        _out(json.dumps({
            "profile": store.profile, "service": store.service, "keyring": backend, "config": str(path) if path else None,
            "credentials": [
                {"name": r.name, "source": r.source, "preview": r.preview, "env": env_var(r.name),
                 "generated": r.name in generated} for r in rows
            ],
            "missing": missing,
        }))
        return CREDENTIALS if missing else OK
    _out(f"keyring: {backend}; service {store.service}")
    _out(f"answers: {path if path else '(no keybuzz.yaml: the runbook defaults)'}")
    width = max(len(r.name) for r in rows)
    for r in rows:
        note = ""
        if r.source == "env":
            note = f"from {env_var(r.name)} (the environment wins over the keyring)"
        elif r.source == "missing":
            note = "generated by the next apply" if r.name in generated else f"missing: `keybuzz-tui credentials set {r.name}` or {env_var(r.name)}"
        _out(f"  {r.name:<{width}}  {r.source:<8} {r.preview:<16} {note}".rstrip())
    if problem and missing:
        _err(problem)
    return CREDENTIALS if missing else OK


def cmd_set(args: argparse.Namespace) -> int:
    from .credentials import HCLOUD_TOKEN, env_var, mask, parse_name

    if args.value_on_argv:
        raise _Usage(
            "never put a secret on the command line (shell history, the process list): "
            f"pipe it in (`... | keybuzz-tui credentials set {args.name}`) or type it at the prompt"
        )
    try:
        kind, app, key = parse_name(args.name)
    except ValueError as e:
        raise _Usage(str(e)) from None
    cfg, _ = _config(args)
    if kind == "app":
        known = [f"app/{a.name}/{s.key}" for a in cfg.apps for s in a.secrets]
        if args.name not in known:
            raise _Usage(f"{args.name} is not a secret of keybuzz.yaml; known: {', '.join(known) or 'none'}")
    store = _store(args, cfg)
    store.verify()  # no prompt for a value we could not store
    source = "prompt" if _stdin_is_terminal() else "stdin"
    value = _read_secret(args.name)
    if not value.strip():
        raise _Usage("empty value; nothing stored")
    store.set(args.name, value, source=f"entered ({source})")
    _out(f"stored {args.name} in {store.backend_description()} (service {store.service}): {mask(args.name, value)}")
    if os.environ.get(env_var(args.name)):
        _out(f"note: {env_var(args.name)} is set in this environment and wins over the keyring")
    if args.name == HCLOUD_TOKEN:
        _out("check it against the Hetzner API: keybuzz-tui credentials check")
    elif kind == "app":
        _out("the cluster Secret is updated by the next `keybuzz-tui apply`")
    return OK


def cmd_rotate(args: argparse.Namespace) -> int:
    from .credentials import mask

    cfg, _ = _config(args)
    generated = [f"app/{a.name}/{s.key}" for a in cfg.apps for s in a.secrets if s.generate]
    names = generated if args.all else list(args.names)
    if not names:
        raise _Usage("name the secrets to rotate (app/<app>/<KEY>) or use --all; generated ones: " + ", ".join(generated))
    store = _store(args, cfg)
    done = store.ensure_app_secrets(cfg, rotate=set(names))
    for name in done:
        verb = "rotated" if name in names else "generated (was missing)"
        _out(f"{verb} {name}: {mask(name, store.get(name))}")
    _out("the keyring holds the new values; the cluster Secret is updated by the next `keybuzz-tui apply` "
         "(the DaemonSet pods restart to pick them up)")
    return OK


def cmd_check(args: argparse.Namespace) -> int:
    from .credentials import KeyringUnavailable, check_hcloud_token
    from .engine.context import Endpoints

    cfg, _ = _config(args)
    store = _store(args, cfg)
    endpoint = os.environ.get("HCLOUD_ENDPOINT") or None
    token, source = None, ""
    if args.sandbox:
        try:
            ep = Endpoints.from_sandbox(args.sandbox)
        except (OSError, ValueError, KeyError) as e:
            raise _Usage(f"--sandbox {args.sandbox}: not a sandbox state directory ({type(e).__name__}: {e})") from None
        endpoint, token, source = ep.hcloud_endpoint, ep.hcloud_token_env, f"the sandbox's hcloud.env ({args.sandbox})"
    if not token:
        try:
            token, where = store.lookup("hcloud-token")
        except KeyringUnavailable as e:
            _err(str(e))
            return CREDENTIALS
        source = "HCLOUD_TOKEN" if where == "env" else f"the keyring ({store.service})"
    res = check_hcloud_token(endpoint, token, timeout=cfg.cluster.request_timeout)
    code = OK if res.ok else (UNREACHABLE if res.status in ("unreachable", "rate-limited") else CREDENTIALS)
    if args.json:
        _out(json.dumps({
            "status": res.status, "message": res.message, "project_hint": res.project_hint, "remediation": res.remediation,
            "endpoint": res.endpoint, "token_source": source if token else None, "requests": res.requests,
            "rate_limit_remaining": res.rate_limit_remaining, "rate_limit_reset": res.rate_limit_reset,
        }))
        return code
    _out(f"Hetzner API token{f' from {source}' if token else ''}: {res.status}: {res.message}")
    _out(f"  endpoint: {res.endpoint}")
    if res.project_hint:
        _out(f"  project: {res.project_hint}")
    if res.remediation:
        _out(f"  -> {res.remediation}")
    return code


def cmd_forget(args: argparse.Namespace) -> int:
    from .credentials import env_var, parse_name

    cfg, _ = _config(args)
    store = _store(args, cfg)
    names = store.names(cfg) if args.all else list(args.names)
    if not names:
        raise _Usage("name the credentials to forget, or --all")
    for n in names:
        try:
            parse_name(n)
        except ValueError as e:
            raise _Usage(str(e)) from None
    if not args.yes:
        if not sys.stdin.isatty():
            raise _Usage("deleting needs a confirmation: re-run with --yes")
        answer = input(f"Delete {', '.join(names)} from the keyring (service {store.service})? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            _out("nothing deleted")
            return OK
    for n in names:
        _out(f"{'deleted' if store.delete(n) else 'not in the keyring'}: {n}")
        if os.environ.get(env_var(n)):
            _out(f"  note: {env_var(n)} is still set in this environment (keybuzz-tui does not touch it)")
    return OK


ACTIONS = {"status": cmd_status, "set": cmd_set, "rotate": cmd_rotate, "check": cmd_check, "forget": cmd_forget}


def run(args: argparse.Namespace) -> int:
    from .config import ConfigError
    from .credentials import CredentialError
    from .redact import safe_error

    action = ACTIONS.get(getattr(args, "credentials_command", None) or "")
    if action is None:
        parser = getattr(args, "_credentials_parser", None)
        if parser is not None:
            parser.print_help(sys.stderr)
        return USAGE
    try:
        return action(args)
    except _Usage as e:
        _err(str(e))
        return USAGE
    except ConfigError as e:
        for line in e.render().splitlines():
            _err(line)
        return USAGE
    except CredentialError as e:
        _err(str(e))
        return CREDENTIALS
    except (EOFError, KeyboardInterrupt):
        _err("interrupted; nothing changed")
        return USAGE
    except Exception as e:  # never a traceback (it could carry a secret in a local's repr)
        _err(f"unexpected error: {type(e).__name__}: {safe_error(e)}")
        return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="keybuzz-tui")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["credentials", *(sys.argv[1:] if argv is None else argv)])
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
