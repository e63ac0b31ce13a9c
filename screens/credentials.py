"""Step 2, Credentials: the Hetzner token (checked live), the kubeconfig context, and the apps'
secrets (generated or entered), all masked; where they will be stored; and nothing stored until
the operator confirms with Save (ctrl+s).

Secrets never reach the screen's text unless the operator presses that field's Reveal: inputs are
password inputs, previews are masked (`credentials.mask`), and every message shown passes through
the redaction registry (the engine registers each value the moment it is read or generated).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from keybuzz_tui.screens.widgets import StatusBadge, StepScreen, tone
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Button, Input, Label, Select, Static

from keybuzz_tui.cancel import CancelToken
from keybuzz_tui.redact import REDACTOR, safe_error

HCLOUD_TOKEN = "hcloud-token"  # keybuzz_tui.credentials.HCLOUD_TOKEN (not imported: keyring is slow)
CERTIFICATE_KEY = "certificate-key"
TOKEN_BADGE = {"valid": "ok", "read-only": "warn", "wrong": "fail", "unreachable": "warn", "rate-limited": "warn", "missing": "pending"}
DEMO_DATABASE_URL = "postgres://keybuzz:demo-password@db.demo.internal:5432/keybuzz"


@dataclass
class Field:
    """One credential the answers need: its keyring name, the widget ids, how it is produced."""

    name: str
    label: str
    index: int
    generate: bool = False
    length: int = 48
    description: str = ""

    @property
    def input_id(self) -> str:
        return f"secret-{self.index}"


class RevealButton(Button):
    """Reveal / Hide for one secret field.

    Textual's Button ignores a click while its press animation runs (0.2 s with the `-active`
    class): a quick Reveal then Hide would lose the Hide and leave the secret on screen. A toggle
    that guards a secret must take every click, so this one has no press animation (its label
    changing from Reveal to Hide is the feedback)."""

    def __init__(self, label: str = "Reveal", **kw: Any) -> None:
        super().__init__(label, **kw)
        self.active_effect_duration = 0


def fields_for(config: Any) -> list[Field]:
    out: list[Field] = []
    i = 0
    for app in config.apps:
        for s in app.secrets:
            out.append(Field(f"app/{app.name}/{s.key}", f"{app.name} · {s.key}", i, s.generate, s.length, s.description))
            i += 1
    return out


def read_contexts(path: str | None) -> tuple[list[str], str]:
    """(context names, current-context) of a kubeconfig, or of KUBECONFIG's list merged as kubectl
    merges it; ([], "") when it cannot be read."""
    from keybuzz_tui.engine.context import merged_kubeconfig

    if not path:
        return [], ""
    try:
        data = merged_kubeconfig(path).config.value or {}
    except Exception:  # missing files, bad YAML: the picker is empty, the connection says why
        return [], ""
    # the merger wraps each entry in a ConfigNode (its dict is .value)
    entries = [getattr(c, "value", c) for c in data.get("contexts") or []]
    names = [str(c.get("name")) for c in entries if isinstance(c, dict) and c.get("name")]
    return names, str(data.get("current-context") or "")


class CredentialsScreen(StepScreen):
    STEP = "credentials"
    CSS_PATH = "credentials.tcss"
    HELP = """\
**Credentials**: what keybuzz-tui needs to act for you, kept only in the OS keyring.

- **Hetzner Cloud API token**: paste it; it is checked against the API as you type: *valid*
  (Read & Write), *read-only* (created with Read permission: the load balancer and DNS steps need
  Read & Write), *wrong* (mistyped, revoked or expired) or *unreachable*.
- **Kubernetes context**: which kubeconfig context the install talks to. Changing it re-detects
  the cluster.
- **The apps' secrets**: generated ones (press *Generate*, or leave them empty: they are generated
  when you save) and entered ones (the database URL...). Values stay masked; *Reveal* shows one
  field, on request.
- **Nothing is stored until you press Save (ctrl+s)**. Then each value goes to the keyring shown at
  the bottom. Environment variables (HCLOUD_TOKEN, KEYBUZZ_SECRET_<APP>_<KEY>) win over the
  keyring and are the explicit choice for automation; keybuzz-tui never writes a plaintext file.
- No keyring? The bottom panel says why and how to get one (or to use environment variables).
- Demo mode (`keybuzz-tui --demo`): the keyring is the sandbox's own (in memory, gone on exit),
  never your OS keyring.

Keys: `ctrl+s` save to the keyring, `ctrl+t` check the token now, `ctrl+g` generate every empty
secret (not stored until you save), `tab` moves between the fields.
"""
    BINDINGS: ClassVar[list[Any]] = [
        Binding("ctrl+s", "save", "Save", id="credentials.save", tooltip="Store the entered and generated secrets in the keyring (nothing is stored before)"),
        # the token is checked as it is typed: ^t (in F1's list) is the manual re-check, not footer-worthy at 80 columns
        Binding("ctrl+t", "check_token", "Check token", id="credentials.check", show=False, tooltip="Check the Hetzner token against the API now"),
        Binding("ctrl+g", "generate_all", "Generate all", id="credentials.generate", tooltip="Generate every empty secret that may be generated (not stored until Save)"),
    ]

    class TokenChecked(Message):
        def __init__(self, seq: int, result: Any) -> None:
            super().__init__()
            self.seq = seq
            self.result = result

    class StatusRead(Message):
        def __init__(self, rows: list[Any], error: str) -> None:
            super().__init__()
            self.rows = rows
            self.error = error

    class Saved(Message):
        def __init__(self, stored: list[str], generated: list[str], error: str, remediation: str) -> None:
            super().__init__()
            self.stored = stored
            self.generated = generated
            self.error = error
            self.remediation = remediation

    def __init__(self) -> None:
        super().__init__()
        self.fields: list[Field] = []
        self._check_seq = 0
        self._debounce: Timer | None = None
        self._status: dict[str, Any] = {}
        self._generated: set[str] = set()
        self._prefilled = False
        self.stored_names: list[str] = []

    # --- layout ------------------------------------------------------------------------------

    def compose_body(self) -> ComposeResult:
        self.fields = fields_for(self.kb.config)
        with VerticalScroll(id="creds-body"):
            with Vertical(id="token-panel", classes="panel") as p:
                p.border_title = "Hetzner Cloud API token"
                with Horizontal(classes="secret-row"):
                    yield Input(placeholder="paste the project's API token (Read & Write)", password=True, id="token")
                    yield RevealButton(id="reveal-token", classes="reveal")
                with Horizontal(classes="status-row"):
                    yield StatusBadge("pending", "not checked", id="token-status")
                    yield Static("", id="token-stored", classes="muted")
                yield Static("", id="token-detail")
            with Vertical(id="context-panel", classes="panel") as p:
                p.border_title = "Kubernetes context"
                yield Select([], id="context", allow_blank=True, prompt="reading the kubeconfig…")
                yield Static("", id="context-note", classes="muted")
            with Vertical(id="secrets-panel", classes="panel") as p:
                p.border_title = "The apps' secrets"
                for f in self.fields:
                    how = f"generated, {f.length} chars" if f.generate else (f.description or "entered")
                    yield Label(Text(f"{f.label}  ", style="bold") + Text(f"({how})", style="dim"), classes="secret-label")
                    with Horizontal(classes="secret-row"):
                        yield Input(placeholder="leave empty to keep / generate" if f.generate else "enter the value", password=True, id=f.input_id)
                        yield RevealButton(id=f"reveal-{f.index}", classes="reveal")
                        if f.generate:
                            yield Button("Generate", id=f"gen-{f.index}", classes="gen")
                    yield Static("", id=f"status-{f.index}", classes="secret-status muted")
            with Vertical(id="keyring-panel", classes="panel") as p:
                p.border_title = "Where they will be stored"
                yield Static("", id="keyring-text")
        with Horizontal(classes="buttons", id="save-row"):
            yield Button("Save to keyring (ctrl+s)", id="save", variant="primary")
            yield Static("Nothing is stored until you save.", id="save-status", classes="muted")

    def on_mount(self) -> None:
        self.watch(self.app, "world", self._world_changed, init=True)

    def _world_changed(self, world: str) -> None:
        self._show_keyring()
        if world != "ready":
            return
        self._fill_contexts()
        if self.kb.demo and not self._prefilled:
            self._prefilled = True
            self._prefill_demo()
        self._read_status()

    # --- demo ----------------------------------------------------------------------------------

    def _prefill_demo(self) -> None:
        """Demo: the sandbox's token and a database URL are filled in (masked): nothing is stored
        until Save, exactly as with a real token."""
        token = self.kb.demo_token
        if token:
            self.query_one("#token", Input).value = token
            self.query_one("#token-detail", Static).update(Text("demo: the sandbox's token is filled in; it is stored only when you save.", style="italic"))
        for f in self.fields:
            if not f.generate and f.name.endswith("/DATABASE_URL"):
                REDACTOR.add(DEMO_DATABASE_URL)
                self.query_one(f"#{f.input_id}", Input).value = DEMO_DATABASE_URL

    # --- keyring -------------------------------------------------------------------------------

    def _show_keyring(self) -> None:
        kb = self.kb
        box = self.query_one("#keyring-text", Static)
        if kb.world != "ready":
            box.update(Text("checking which keyring is available…", style="italic"))
            return
        if kb.keyring_error:
            box.set_classes("error-box")
            box.update(Text(
                "No usable OS keyring, so nothing can be saved here.\n"
                f"{kb.keyring_error}\n"
                "Environment variables work instead: HCLOUD_TOKEN and KEYBUZZ_SECRET_<APP>_<KEY> (e.g. "
                "KEYBUZZ_SECRET_KEYBUZZ_API_JWT_SECRET), set before starting keybuzz-tui."
            ))
            return
        box.set_classes("")
        box.update(Text(kb.keyring_description or "the OS keyring"))

    @work(thread=True, exclusive=True, exit_on_error=False, group="credentials-status", description="read which secrets are stored")
    def _read_status(self) -> None:
        store = self.kb.secrets
        try:
            rows = store.status(self.kb.config)
            err = ""
        except Exception as e:
            rows, err = [], safe_error(e)
        self.post_message(self.StatusRead(rows, err))

    @on(StatusRead)
    def _status_read(self, msg: StatusRead) -> None:
        self._status = {r.name: r for r in msg.rows}
        tok = self._status.get(HCLOUD_TOKEN)
        stored = self.query_one("#token-stored", Static)
        stored.update(self._source_text(tok) if tok else "")
        for f in self.fields:
            self._show_field_status(f)
        if tok is not None and tok.source != "missing" and not self.query_one("#token", Input).value:
            self.action_check_token()
        elif self.query_one("#token", Input).value:
            self.action_check_token()
        self.kb.mark_done(self.STEP, self.all_stored())

    def all_stored(self) -> bool:
        """The token and every entered secret are stored (keyring or environment); generated
        ones may still be missing: the apply generates them."""
        if not self._status:
            return False
        gen = {f.name for f in self.fields if f.generate}
        return all(r.source != "missing" for n, r in self._status.items() if n not in gen)

    def _source_text(self, row: Any) -> str:
        if row.source == "keyring":
            return f"stored in the keyring: {row.preview}"
        if row.source == "env":
            return f"from the environment: {row.preview}"
        return "not stored yet"

    def _show_field_status(self, f: Field) -> None:
        row = self._status.get(f.name)
        value = self.query_one(f"#{f.input_id}", Input).value
        if value and f.name in self._generated:
            text = f"generated, not saved yet: •••• ({len(value)} chars)"
        elif value:
            text = "entered, not saved yet"
        elif row is not None and row.source != "missing":
            text = self._source_text(row)
        elif f.generate:
            text = "missing: generated when you save"
        else:
            text = "missing: enter a value"
        self.query_one(f"#status-{f.index}", Static).update(text)

    def missing(self) -> list[str]:
        """Entered secrets with no value anywhere (stored, environment, or typed)."""
        out = []
        for f in self.fields:
            row = self._status.get(f.name)
            typed = self.query_one(f"#{f.input_id}", Input).value
            if not f.generate and not typed and (row is None or row.source == "missing"):
                out.append(f.name)
        return out

    # --- the token check -----------------------------------------------------------------------

    @on(Input.Changed, "#token")
    def _token_changed(self, event: Input.Changed) -> None:
        if self._debounce is not None:
            self._debounce.stop()
        badge = self.query_one("#token-status", StatusBadge)
        if not event.value:
            badge.set_status("pending", "not checked")
            return
        badge.set_status("pending", "checking…")
        self._debounce = self.set_timer(0.6, self.action_check_token)

    @on(Input.Submitted, "#token")
    def _token_submitted(self) -> None:
        self.action_check_token()

    def action_check_token(self) -> None:
        if self.kb.endpoints is None:
            return
        self._check_seq += 1
        token = self.query_one("#token", Input).value.strip() or None
        REDACTOR.add(token)
        self.query_one("#token-status", StatusBadge).set_status("pending", "checking…")
        token_cancel = CancelToken()
        self._check_token(self._check_seq, token, token_cancel)

    @work(thread=True, exclusive=True, exit_on_error=False, group="token-check", description="check the Hetzner token")
    def _check_token(self, seq: int, token: str | None, cancel: CancelToken) -> None:
        from keybuzz_tui.credentials import TokenCheck, check_hcloud_token

        kb = self.kb
        try:
            if token is None:
                token = kb.secrets.hcloud_token() if kb.secrets is not None else None
            res = check_hcloud_token(kb.endpoints, token, timeout=kb.config.cluster.request_timeout, cancel=cancel)
        except Exception as e:
            res = TokenCheck("unreachable", safe_error(e))
        self.post_message(self.TokenChecked(seq, res))

    @on(TokenChecked)
    def _token_checked(self, msg: TokenChecked) -> None:
        if msg.seq != self._check_seq:
            return  # the operator typed on since
        r = msg.result
        self.token_result = r
        self.query_one("#token-status", StatusBadge).set_status(TOKEN_BADGE.get(r.status, "info"), r.status)
        text = Text(REDACTOR.redact(r.message))
        if getattr(r, "project_hint", "") and r.status in ("valid", "read-only"):
            text.append(f"\nproject: {REDACTOR.redact(r.project_hint)}", style="dim")
        if r.remediation and r.status != "valid":
            text.append(f"\n→ {REDACTOR.redact(r.remediation)}", style="bold")
        self.query_one("#token-detail", Static).update(text)

    # --- reveal / generate ---------------------------------------------------------------------

    @on(Button.Pressed, ".reveal")
    def _reveal(self, event: Button.Pressed) -> None:
        bid = event.button.id or ""
        target = "#token" if bid == "reveal-token" else f"#secret-{bid.removeprefix('reveal-')}"
        inp = self.query_one(target, Input)
        inp.password = not inp.password
        event.button.label = "Reveal" if inp.password else "Hide"

    def mask_all(self) -> None:
        """Every field masked again (a revealed value never outlives the operator's look)."""
        for inp in self.query("Input").results(Input):
            if inp.id == "token" or (inp.id or "").startswith("secret-"):
                inp.password = True
        for b in self.query(".reveal").results(Button):
            b.label = "Reveal"

    def on_screen_suspend(self) -> None:
        self.mask_all()  # leaving the step (next, back, help, palette) hides what was revealed

    @on(Button.Pressed, ".gen")
    def _generate(self, event: Button.Pressed) -> None:
        idx = int((event.button.id or "gen-0").removeprefix("gen-"))
        self.generate(self.fields[idx])

    def generate(self, f: Field) -> None:
        from keybuzz_tui.credentials import generate_secret

        inp = self.query_one(f"#{f.input_id}", Input)
        inp.password = True
        self.query_one(f"#reveal-{f.index}", Button).label = "Reveal"
        inp.value = generate_secret(f.length)
        self._generated.add(f.name)
        self._show_field_status(f)

    def action_generate_all(self) -> None:
        for f in self.fields:
            row = self._status.get(f.name)
            if f.generate and not self.query_one(f"#{f.input_id}", Input).value and (row is None or row.source == "missing"):
                self.generate(f)

    @on(Input.Changed, ".secret-row Input")
    def _secret_changed(self, event: Input.Changed) -> None:
        if event.input.id == "token":
            return
        for f in self.fields:
            if f.input_id == event.input.id:
                REDACTOR.add(event.value)
                if event.value == "":
                    self._generated.discard(f.name)
                self._show_field_status(f)

    # --- the context picker --------------------------------------------------------------------

    def _fill_contexts(self) -> None:
        kb = self.kb
        path = getattr(kb.endpoints, "kubeconfig", None) or kb.config.cluster.kubeconfig
        names, current = read_contexts(path)
        chosen = getattr(kb.endpoints, "context", None) or kb.kube_context or current
        sel = self.query_one("#context", Select)
        with self.prevent(Select.Changed):
            sel.set_options([(f"{n}{'  (kubeconfig current)' if n == current else ''}", n) for n in names])
            if chosen in names:
                sel.value = chosen
        note = self.query_one("#context-note", Static)
        if not names:
            note.update(f"no contexts found in {path}: set --context or KUBECONFIG")
        else:
            note.update("demo: the sandbox's kubeconfig (its contexts only)" if kb.demo else f"from {path}")

    @on(Select.Changed, "#context")
    def _context_changed(self, event: Select.Changed) -> None:
        value = event.value
        if value is Select.NULL or not isinstance(value, str):
            return
        if value == (getattr(self.kb.endpoints, "context", None) or ""):
            return
        self.kb.set_kube_context(value)
        self.notify(f"Using context {value}; detecting the cluster again.", title="Kubernetes context", markup=False)

    # --- saving --------------------------------------------------------------------------------

    @on(Button.Pressed, "#save")
    def action_save(self) -> None:
        kb = self.kb
        if kb.world != "ready" or kb.secrets is None:
            self.notify("Not connected yet: wait for the platform to be detected.", severity="warning")
            return
        if kb.keyring_error:
            self.notify("No usable keyring: see the panel at the bottom for how to get one or use environment variables.", title="Not saved", severity="error")
            return
        values: dict[str, str] = {}
        token = self.query_one("#token", Input).value.strip()
        if token:
            values[HCLOUD_TOKEN] = token
        to_generate: list[Field] = []
        for f in self.fields:
            v = self.query_one(f"#{f.input_id}", Input).value
            row = self._status.get(f.name)
            if v:
                values[f.name] = v
            elif f.generate and (row is None or row.source == "missing"):
                to_generate.append(f)
        self.query_one("#save-status", Static).update("saving…")
        self._save(values, to_generate)

    @work(thread=True, exclusive=True, exit_on_error=False, group="credentials-save", description="store secrets in the keyring")
    def _save(self, values: dict[str, str], to_generate: list[Field]) -> None:
        from keybuzz_tui.credentials import CredentialError, KeyringUnavailable, generate_secret

        store = self.kb.secrets
        stored: list[str] = []
        generated: list[str] = []
        try:
            for f in to_generate:
                values[f.name] = generate_secret(f.length)
                generated.append(f.name)
            for name, value in values.items():
                store.set(name, value)
                stored.append(name)
        except KeyringUnavailable as e:
            self.post_message(self.Saved(stored, generated, f"no usable OS keyring: {e.reason}", e.remediation))
            return
        except CredentialError as e:
            self.post_message(self.Saved(stored, generated, safe_error(e), ""))
            return
        except Exception as e:
            self.post_message(self.Saved(stored, generated, safe_error(e), ""))
            return
        self.post_message(self.Saved(stored, generated, "", ""))

    @on(Saved)
    def _saved(self, msg: Saved) -> None:
        self.stored_names = list(msg.stored)
        status = self.query_one("#save-status", Static)
        if msg.error:
            status.update(Text(f"✗ {msg.error}", style=tone(self.app, "fail")))
            box = self.query_one("#keyring-text", Static)
            if msg.remediation:
                box.set_classes("error-box")
                box.update(Text(f"{msg.error}\n{msg.remediation}"))
            self.notify(msg.error, title="Not saved", severity="error", markup=False, timeout=10)
        else:
            n = len(msg.stored)
            stored = f"✓ stored {n} secret{'s' if n != 1 else ''} in the keyring" + (f" ({len(msg.generated)} generated)" if msg.generated else "")
            status.update(Text(stored, style=tone(self.app, "ok")) + Text(" · ctrl+n: next step (Ports)", style="dim"))
            where = self.kb.keyring_description or "the OS keyring"
            self.notify(f"Stored {n} secret{'s' if n != 1 else ''}. Keyring: {where}.", title="Saved", markup=False)
        # the widgets forget the values: what is stored is shown masked from now on
        for f in self.fields:
            if f.name in msg.stored:
                inp = self.query_one(f"#{f.input_id}", Input)
                inp.password = True
                inp.value = ""
                self.query_one(f"#reveal-{f.index}", Button).label = "Reveal"
                self._generated.discard(f.name)
        if HCLOUD_TOKEN in msg.stored:
            tok = self.query_one("#token", Input)
            tok.password = True
            with self.prevent(Input.Changed):
                tok.value = ""
            self.query_one("#reveal-token", Button).label = "Reveal"
        self._read_status()
        if HCLOUD_TOKEN in msg.stored:
            self.kb.refresh_detect()
