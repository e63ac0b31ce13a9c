"""Credential changes are journaled: generating, rotating, setting and forgetting a credential each
append a line (the key's name, the action, the source) to the platform's journal, never the value."""

from __future__ import annotations

import json
import uuid

from keybuzz_tui.config import Config
from keybuzz_tui.credentials import CredentialStore, SandboxKeyring
from keybuzz_tui.journal import Journal

GENERATED = ("app/keybuzz-api/JWT_SECRET", "app/keybuzz-api/API_ENCRYPTION_KEY", "app/keybuzz-front/SESSION_SECRET")


def lines(path):
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def test_generate_rotate_set_forget_each_write_a_line_without_the_value(tmp_path):
    journal_file = tmp_path / "state" / "journal.jsonl"
    ring = SandboxKeyring()
    store = CredentialStore("t" + uuid.uuid4().hex[:10], backend=ring, env={}, journal=Journal(journal_file))
    canary = f"postgres://keybuzz:canary-{uuid.uuid4().hex}@db.internal/keybuzz"

    generated = store.ensure_app_secrets(Config())
    assert sorted(generated) == sorted(GENERATED)
    values = {n: store.get(n) for n in GENERATED}
    store.ensure_app_secrets(Config(), rotate={"app/keybuzz-api/JWT_SECRET"})
    values["rotated"] = store.get("app/keybuzz-api/JWT_SECRET")
    store.set("app/keybuzz-api/DATABASE_URL", canary, source="entered (stdin)")
    assert store.delete("app/keybuzz-api/DATABASE_URL") is True
    assert store.delete("app/keybuzz-api/DATABASE_URL") is False  # nothing there: nothing changed, no line

    got = [(e["event"], e["name"], e["action"], e["source"]) for e in lines(journal_file)]
    assert got == [
        *(("credential", n, "generate", "generated") for n in ("app/keybuzz-api/JWT_SECRET", "app/keybuzz-api/API_ENCRYPTION_KEY",
                                                               "app/keybuzz-front/SESSION_SECRET")),
        ("credential", "app/keybuzz-api/JWT_SECRET", "rotate", "generated"),
        ("credential", "app/keybuzz-api/DATABASE_URL", "set", "entered (stdin)"),
        ("credential", "app/keybuzz-api/DATABASE_URL", "forget", "keyring"),
    ]
    assert all(e["store"] == f"keyring ({store.service})" for e in lines(journal_file))
    text = journal_file.read_text()
    for secret in (canary, *values.values()):
        assert secret and secret not in text


def test_without_a_journal_nothing_is_written_and_nothing_breaks(tmp_path):
    store = CredentialStore("t" + uuid.uuid4().hex[:10], backend=SandboxKeyring(), env={})
    assert store.ensure_app_secrets(Config())
    store.set("hcloud-token", "x" * 64)
    assert store.delete("hcloud-token")
    assert list(tmp_path.iterdir()) == []
