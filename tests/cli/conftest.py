"""Fixtures of the CLI end-to-end tests: the real Secret Service and a sandbox world per test."""

from __future__ import annotations

from typing import Any

import pytest
from support.cli_support import (
    CliRun,
    assert_nowhere,
    db_canary,
    forget_profile,
    hcloud_token_of,
    new_profile,
    secret_service_or_skip,
)
from support.sandboxes import start


@pytest.fixture(scope="module")
def ring() -> Any:
    return secret_service_or_skip()


@pytest.fixture
def world(tmp_path, ring):
    """make(scenario, **sandbox kw) -> (CliRun, Sandbox) with `config init` done; teardown: the
    leak checks (the canary secret and the Hetzner token appear in no output and no file), the
    sandbox stopped, the profile's keyring entries deleted. Modules with other needs define their
    own `world`."""
    made: list[tuple[CliRun, Any]] = []

    def make(scenario: str = "healthy", **kw: Any) -> tuple[CliRun, Any]:
        sb = start(tmp_path / "sb", scenario, **kw)
        work = tmp_path / "work"
        work.mkdir()
        cli = CliRun(work, sb.state_dir, new_profile(), db_canary())
        made.append((cli, sb))
        r = cli.run("config", "init", "--config", str(cli.config), "--profile", cli.profile)
        assert r.returncode == 0, r.stderr
        return cli, sb

    yield make
    try:
        for cli, sb in made:
            token = hcloud_token_of(sb.state_dir)
            # the sandbox's own hcloud.env holds its token by design; nothing else may
            assert_nowhere(cli.canary, cli.outputs(), [tmp_path])
            assert_nowhere(token, cli.outputs(), [tmp_path], except_files=(sb.state_dir / "hcloud.env",))
    finally:
        for cli, sb in made:
            sb.stop()
            forget_profile(ring, cli.profile)
