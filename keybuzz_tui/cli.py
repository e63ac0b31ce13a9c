"""The `keybuzz-tui` command line: the wizard by default, and headless subcommands."""

from __future__ import annotations

import argparse
import sys

from . import __version__


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="keybuzz-tui",
        description="Install, repair and verify the KeyBuzz platform on K3s + Hetzner Cloud.",
    )
    p.add_argument("--version", action="version", version=f"keybuzz-tui {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sb = sub.add_parser("sandbox", help="run the sandbox world (Kubernetes + Hetzner APIs on loopback)")
    sb.add_argument("--state-dir", help="where to write kubeconfig, ca.pem, hcloud.env and sandbox.json")
    sb.add_argument("--scenario", default="healthy", help="scenario name or path to a scenario file (see --list)")
    sb.add_argument("--list", action="store_true", help="list the scenarios and exit")
    sb.add_argument("--workers", type=int, default=None, help="number of K3s workers (default: the scenario's, 5)")
    sb.add_argument("--servers", type=int, default=None, help="number of K3s servers (default: the scenario's, 3)")
    sb.add_argument("--net", type=int, default=0, help="loopback network 127.NET.x.y to use (default 0; tests pick free ones)")
    sb.add_argument("--speed", type=float, default=None, help="divide every simulated delay by this factor")
    return p


def cmd_sandbox(args: argparse.Namespace) -> int:
    """Serve the sandbox world until SIGINT/SIGTERM, then exit 0."""
    import signal
    import threading

    from .sandbox import scenarios
    from .sandbox.runtime import Sandbox, SandboxError

    if args.list:
        for name in scenarios.available():
            sc = scenarios.load(name)
            print(f"{name:22} {sc.description.splitlines()[0] if sc.description else ''}")
        return 0
    if not args.state_dir:
        print("keybuzz-tui sandbox: --state-dir is required", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        sb = Sandbox(
            args.state_dir,
            args.scenario,
            workers=args.workers,
            servers=args.servers,
            net=args.net,
            speed=args.speed,
        ).start()
    except (scenarios.ScenarioError, SandboxError) as e:
        print(f"keybuzz-tui sandbox: {e}", file=sys.stderr)
        return 2
    info = sb.info()
    print(f"sandbox ready: scenario {sb.scenario.name}, Kubernetes API {sb.kube_url}", flush=True)
    print(f"  export KUBECONFIG={sb.kubeconfig_path.resolve()}", flush=True)
    if "hetzner" in info:
        print(f"  set -a; . {(sb.state_dir / 'hcloud.env').resolve()}; set +a", flush=True)
    print(f"  addresses: {sb.info_path.resolve()}   (Ctrl-C to stop)", flush=True)
    try:
        stop.wait()
    finally:
        sb.stop()
    print("sandbox stopped", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "sandbox":
        return cmd_sandbox(args)
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
