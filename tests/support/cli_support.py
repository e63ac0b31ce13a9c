"""Driving the INSTALLED `keybuzz-tui` command against sandboxes: environment, runs, canaries.

Every run goes through `CliRun.run`/`popen`: a clean environment (no HCLOUD_*, KEYBUZZ_SECRET_*,
KUBECONFIG or keyring overrides from the developer's shell), the state directory and answers file
of the test, the canary DATABASE_URL as the explicit environment variable, and the private
Secret Service of scripts/with-keyring. Each run's stdout and stderr are kept so that a test can
assert, at the end, that no secret ever reached them.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .requirements import unavailable

EXE = str(Path(sys.executable).with_name("keybuzz-tui"))
DB_ENV = "KEYBUZZ_SECRET_KEYBUZZ_API_DATABASE_URL"
GENERATED = ("app/keybuzz-api/JWT_SECRET", "app/keybuzz-api/API_ENCRYPTION_KEY", "app/keybuzz-front/SESSION_SECRET")
ENTERED = ("app/keybuzz-api/DATABASE_URL", "hcloud-token", "certificate-key")


def secret_service_or_skip() -> Any:
    """The real Secret Service backend (scripts/with-keyring starts one), or a skip saying why
    (a failure on CI: see support/requirements.py)."""
    from keyring.backends import SecretService

    try:
        SecretService.Keyring.priority  # noqa: B018 - raises with the reason when not viable
    except Exception as e:
        unavailable(f"no Secret Service on this D-Bus session (run under scripts/with-keyring): {e}")
    backend = SecretService.Keyring()
    try:
        backend.get_password("keybuzz-tui:probe", "probe")
    except Exception as e:
        unavailable(f"the Secret Service is not usable (locked?): {type(e).__name__}: {e}")
    return backend


def new_profile() -> str:
    return "clie2e-" + uuid.uuid4().hex[:10]


def db_canary() -> str:
    return f"postgres://keybuzz:canary-{uuid.uuid4().hex}@db.internal:5432/keybuzz"


def forms(secret: str) -> list[str]:
    """The secret and its base64 forms (with and without padding), as a Secret's data holds it."""
    b64 = base64.b64encode(secret.encode()).decode()
    return [secret, b64, b64.rstrip("=")]


def hcloud_token_of(state_dir: Path) -> str:
    for line in (Path(state_dir) / "hcloud.env").read_text().splitlines():
        k, sep, v = line.partition("=")
        if sep and k.strip() == "HCLOUD_TOKEN":
            return v.strip()
    raise AssertionError(f"no HCLOUD_TOKEN in {state_dir}/hcloud.env")


def json_lines(stdout: str) -> list[dict[str, Any]]:
    """Every stdout line parsed as JSON (fails on the first line that is not)."""
    out = []
    for i, line in enumerate(stdout.splitlines()):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise AssertionError(f"--json stdout line {i + 1} is not JSON ({e}): {line[:300]!r}") from None
    return out


def result_of(stdout: str) -> dict[str, Any]:
    """The final Result object of a --json run (asserting it is the last line)."""
    docs = json_lines(stdout)
    assert docs, "no JSON output at all"
    last = docs[-1]
    assert last.get("type") == "Result" and isinstance(last.get("exit_code"), int), last
    return last


@dataclass
class CliRun:
    """One test's view of the CLI: its answers file, state directory, canary and runs."""

    work: Path
    sandbox_dir: Path | None
    profile: str
    canary: str
    runs: list[subprocess.CompletedProcess[str]] = field(default_factory=list)

    @property
    def config(self) -> Path:
        return self.work / "keybuzz.yaml"

    @property
    def state(self) -> Path:
        return self.work / "state"

    @property
    def journal_path(self) -> Path:
        return self.state / self.profile / "journal.jsonl"

    def env(self, *, canary: bool = True, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("HCLOUD_", "KEYBUZZ_", "PYTHON_KEYRING")) and k != "KUBECONFIG"}
        if os.environ.get("KEYBUZZ_IN_KEYRING_SESSION"):
            env["KEYBUZZ_IN_KEYRING_SESSION"] = os.environ["KEYBUZZ_IN_KEYRING_SESSION"]
        env.update({"KEYBUZZ_STATE_DIR": str(self.state), "PYTHONUNBUFFERED": "1", "COLUMNS": "200"})
        if canary:
            env[DB_ENV] = self.canary
        env.update(extra)
        return env

    def argv(self, args: tuple[str, ...], *, sandbox: bool | Path = True, config: bool = True) -> list[str]:
        argv = [EXE, *args]
        if args and args[0] in ("plan", "apply", "validate", "ports"):
            if sandbox is not False and self.sandbox_dir is not None:
                argv += ["--sandbox", str(self.sandbox_dir if sandbox is True else sandbox)]
            if config:
                argv += ["--config", str(self.config)]
        return argv

    def run(self, *args: str, sandbox: bool | Path = True, config: bool = True, timeout: float = 180, canary: bool = True,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        r = subprocess.run(
            self.argv(args, sandbox=sandbox, config=config), capture_output=True, text=True, timeout=timeout,
            cwd=self.work, env=self.env(canary=canary, **(env or {})), stdin=subprocess.DEVNULL,
        )
        self.runs.append(r)
        assert "Traceback" not in r.stderr, f"keybuzz-tui {' '.join(args)} printed a traceback:\n{r.stderr[-3000:]}"
        assert "Traceback" not in r.stdout, r.stdout[-3000:]
        return r

    def popen(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.argv(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=self.work,
            env=self.env(**(env or {})), stdin=subprocess.DEVNULL,
        )

    def keep(self, stdout: str, stderr: str, args: tuple[str, ...] = ()) -> None:
        """Record the output of a popen()ed run (for the secret checks), and check it for tracebacks."""
        self.runs.append(subprocess.CompletedProcess(list(args), 0, stdout, stderr))
        assert "Traceback" not in stderr, stderr[-3000:]

    def journal(self) -> list[dict[str, Any]]:
        if not self.journal_path.exists():
            return []
        return [json.loads(line) for line in self.journal_path.read_text().splitlines() if line.strip()]

    def runs_of_journal(self) -> list[list[dict[str, Any]]]:
        runs: dict[str, list[dict[str, Any]]] = {}
        for e in self.journal():
            runs.setdefault(e["run"], []).append(e)
        return [r for r in runs.values() if any(e["event"] == "run-started" for e in r)]

    def outputs(self) -> list[str]:
        return [r.stdout + "\n" + r.stderr for r in self.runs]


def assert_nowhere(secret: str, texts: list[str], roots: list[Path], *, except_files: tuple[Path, ...] = ()) -> int:
    """`secret` (and its base64 forms) in none of `texts` and no file under `roots`; returns the
    number of files read (so a test can check it looked at something)."""
    skip = {Path(p).resolve() for p in except_files}
    files = [f for root in roots for f in Path(root).rglob("*") if f.is_file() and f.resolve() not in skip]
    for form in forms(secret):
        for i, t in enumerate(texts):
            assert form not in t, f"a secret leaked into output #{i}: …{t[max(0, t.find(form) - 200):t.find(form) + 50]}"
        for f in files:
            assert form.encode() not in f.read_bytes(), f"a secret leaked into {f}"
    return len(files)


def forget_profile(backend: Any, profile: str) -> None:
    import keyring.errors

    for name in (*GENERATED, *ENTERED):
        try:
            backend.delete_password(f"keybuzz-tui:{profile}", name)
        except keyring.errors.PasswordDeleteError:
            pass
        except Exception:
            pass
