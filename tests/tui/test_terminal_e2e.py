"""The installed `keybuzz-tui`, in a real terminal (tmux), driven with send-keys as an operator
would: the demo from Welcome to an all-green validation board, and the board alone on the outage
scenario. The screen is read with `tmux capture-pane` and every wait polls it against a deadline
(never a fixed sleep); deadlines are generous, since a loaded 2-CPU CI machine runs the sandbox
world, the wizard and the other tests at once.

Each test runs its own tmux server (`-S` socket under tmp_path, no user configuration) and kills
only that server at the end. The command runs under `sh -c '...; echo KEYBUZZ-EXIT=$?'` so the
pane keeps the exit status and whatever the process printed after leaving the alternate screen.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from support.requirements import unavailable

pytestmark = pytest.mark.tmux

TMUX = shutil.which("tmux")
ENTRY = Path(sys.executable).with_name("keybuzz-tui")
WORKERS = [f"k3s-worker-0{i}" for i in range(1, 6)]
STEP_TITLES = ("Welcome", "Credentials", "Ports", "Review", "Rollout", "Load balancer", "DNS", "Validation")
EXIT = re.compile(r"KEYBUZZ-EXIT=(\d+)")


class Terminal:
    """One detached tmux session on a private server, running one command."""

    def __init__(self, tmp_path: Path) -> None:
        self.socket = str(tmp_path / "tmux.sock")
        self.name = f"kbz-{uuid.uuid4().hex[:8]}"
        self.state = tmp_path / "state"
        self.last = ""

    def tmux(self, *args: str, check: bool = True) -> str:
        assert TMUX is not None
        r = subprocess.run([TMUX, "-S", self.socket, "-f", os.devnull, *args], capture_output=True, text=True, timeout=30)
        if check and r.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)}: {r.stderr.strip()}")
        return r.stdout

    def start(self, *argv: str, width: int = 160, height: int = 48) -> None:
        env = {"KEYBUZZ_STATE_DIR": str(self.state), "TERM": "xterm-256color"}
        inner = " ".join([*(f"{k}={shlex.quote(v)}" for k, v in env.items()), shlex.quote(str(ENTRY)), *map(shlex.quote, argv)])
        # the pane outlives the process: its exit status and any late output stay readable
        # COLUMNS/LINES (set by some runners) would override the pane's real size
        cmd = f"env -u COLUMNS -u LINES {inner}; echo KEYBUZZ-EXIT=$?; sleep 600"
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("TMUX", "HCLOUD_", "KEYBUZZ_SECRET_")) and k not in ("COLUMNS", "LINES")}
        clean.update(env)
        assert TMUX is not None
        subprocess.run(
            [TMUX, "-S", self.socket, "-f", os.devnull, "new-session", "-d", "-x", str(width), "-y", str(height), "-s", self.name, cmd],
            check=True, env=clean, timeout=30,
        )

    def send(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", self.name, *keys)

    def size(self) -> tuple[int, int]:
        w, h = self.tmux("display", "-p", "-t", self.name, "#{window_width} #{window_height}").split()
        return int(w), int(h)

    def screen(self) -> str:
        self.last = self.tmux("capture-pane", "-p", "-t", self.name)
        return self.last

    def everything(self) -> str:
        """The pane with its history: what the process printed after the app left the screen."""
        return self.tmux("capture-pane", "-p", "-S", "-", "-t", self.name)

    def wait(self, what: str, pred: Callable[[str], bool], timeout: float) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            text = self.screen()
            if pred(text):
                return text
            time.sleep(0.2)
        raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; the screen was:\n{self.last}")

    def wait_text(self, *needles: str, timeout: float = 60) -> str:
        return self.wait(" and ".join(repr(n) for n in needles), lambda t: all(n in t for n in needles), timeout)

    def exit_code(self, timeout: float = 30) -> int:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            m = EXIT.search(self.everything())
            if m:
                return int(m.group(1))
            time.sleep(0.2)
        raise AssertionError(f"keybuzz-tui did not exit within {timeout:.0f}s; the screen was:\n{self.screen()}")

    def close(self) -> None:
        self.tmux("kill-server", check=False)


@pytest.fixture
def term(tmp_path: Path):
    if TMUX is None:
        unavailable("tmux is not installed: this test drives the installed keybuzz-tui in a real terminal (apt-get install tmux)")
    if not ENTRY.exists():
        unavailable(f"the keybuzz-tui entry point is not installed next to {sys.executable} (pip install -e .)")
    t = Terminal(tmp_path)
    try:
        yield t
    finally:
        t.close()


def rows_of(screen: str, marker: str = "k3s-worker-0") -> dict[str, str]:
    """The matrix rows (worker -> the rest of its line), read from the screen."""
    out = {}
    for line in screen.splitlines():
        m = re.search(r"(k3s-worker-0\d)\s+(.*)", line)
        if m and marker in line and m.group(1) not in out:
            out[m.group(1)] = m.group(2)
    return out


def test_demo_from_welcome_to_an_all_green_board(term: Terminal):
    term.start("--demo", "--scenario", "healthy")
    assert term.size() == (160, 48)
    screen = term.wait_text("What keybuzz-tui will do", "ready to install", timeout=120)
    assert "▶ Welcome › Credentials › Ports" in screen  # the full step indicator: the app sees 160 columns

    term.send("i")  # Install
    term.wait_text("Hetzner Cloud API token", "✓ valid", timeout=90)
    screen = term.screen()
    assert "•" * 20 in screen  # the token the demo filled in is masked
    term.send("C-s")  # Save to the keyring (the demo's, inside the sandbox)
    term.wait_text("stored 5 secrets in the keyring", timeout=60)

    term.send("C-n")  # Ports
    term.wait_text("8 ports checked, no conflict", timeout=90)
    term.send("C-n")  # Review
    term.wait_text("ready to apply", "16 to create", timeout=90)
    term.send("a")
    term.wait_text("Apply the plan?", timeout=30)
    term.send("Enter")  # the highlighted choice: Apply

    term.wait_text("Rolled out", "pods Ready 10/10", timeout=240)
    screen = term.screen()
    assert all(line.count("✓ Ready") == 2 for line in rows_of(screen).values()), screen
    term.send("n")  # Load balancer
    term.wait_text("Press a to apply", timeout=90)
    term.send("a")
    term.wait_text("Every target is healthy", "targets healthy 10/10", timeout=300)
    term.send("n")  # DNS
    term.wait_text("Press a to apply", timeout=90)
    term.send("a")
    term.wait_text("DNS answers the Load Balancer's addresses", timeout=120)
    term.send("n")  # the validation board

    def all_green(text: str) -> bool:
        rows = rows_of(text)
        return "All checks pass" in text and sorted(rows) == WORKERS and all(r.count("✓ ok") == 6 for r in rows.values())

    def every_step_done(text: str) -> bool:
        return any(all(f"{title} ✓" in line for title in STEP_TITLES) for line in text.splitlines())

    final = term.wait("an all-green board, every step ticked", lambda t: all_green(t) and every_step_done(t), timeout=240)
    lines = final.splitlines()
    head = next(line for line in lines if "All checks pass" in line)
    assert "✗0" in head and "!0" in head, head
    for worker, row in rows_of(final).items():
        assert "✗" not in row and "·" not in row, (worker, row)
    assert "✗ fail" not in final
    indicator = next(line for line in lines if all(title in line for title in STEP_TITLES))
    assert "▶ Validation ✓" in indicator, indicator

    term.send("C-q")
    assert term.exit_code(timeout=60) == 0
    out = term.everything()
    assert "Traceback" not in out, out[-3000:]


def test_board_alone_on_the_outage_scenario(term: Terminal):
    term.start("validate", "--board", "--demo", "--scenario", "outage")

    def broken_at_service(text: str) -> bool:
        rows = rows_of(text)
        return len(rows) == 5 and sum(1 for r in rows.values() if re.search(r"✗ (breaks here|BREAK)", r)) >= 3

    screen = term.wait("the first broken hop on the workers", broken_at_service, timeout=180)
    screen = term.wait_text("504", timeout=60)
    header = next(line for line in screen.splitlines() if "Worker" in line and "Service" in line)
    service_col = header.index("Service")
    at_service = [w for w, line in ((w, next(ln for ln in screen.splitlines() if w in ln)) for w in WORKERS)
                  if line[service_col:service_col + 13].startswith("✗")]
    assert len(at_service) >= 3, screen  # the first broken hop is the Service on most workers
    assert "failing" in screen

    term.send("C-q")
    assert term.exit_code(timeout=60) == 0
    assert "Traceback" not in term.everything()
