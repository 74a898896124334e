"""Dialogs over the wizard: save the answers to a file, and install OMERO.web."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, RichLog, Static

from omerowizard.catalogue import questions_for
from omerowizard.install.installer import InstallCancelled
from omerowizard.ui import wizard
from omerowizard.ui.tui.fields import QuestionField


class SaveDialog(ModalScreen["Path | None"]):
    """Ask where to write the answers file and write it; dismissed with the file written, or None.
    A write that fails leaves the dialog open with the reason, so another path can be typed."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, default: str, save: Callable[[str], Path]) -> None:
        super().__init__()
        self.default = default
        self.save_to = save

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Save answers to file", classes="title")
            yield Static("An answers file that `omerowizard apply FILE` accepts (mode 0600).", classes="hint")
            yield Input(self.default, id="path", compact=True)
            yield Label("", id="save-error", classes="error")
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel", compact=True)
                yield Button("Save", id="do-save", variant="primary", compact=True)

    def on_mount(self) -> None:
        self.query_one("#save-error").display = False
        self.query_one("#path", Input).cursor_blink = getattr(self.app, "blink", True)  # still for snapshots

    @on(Input.Submitted)
    @on(Button.Pressed, "#do-save")
    def save(self, event: Input.Submitted | Button.Pressed) -> None:
        event.stop()
        path = self.query_one("#path", Input).value.strip()
        if not path:
            return
        error = self.query_one("#save-error", Label)
        try:
            written = self.save_to(path)
        except OSError as exc:
            error.update(f"Could not write {path}: {exc.strerror or exc}")
            error.display = True
            self.query_one("#path", Input).focus()
            return
        self.dismiss(written)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmDialog(ModalScreen[bool]):
    """A yes/no question over the wizard (y or n, or the buttons); dismissed with the answer."""

    BINDINGS = [Binding("y", "answer(True)", "Yes"), Binding("n,escape", "answer(False)", "No")]

    def __init__(self, question: str, detail: str, yes: str, no: str) -> None:
        super().__init__()
        self.question, self.detail, self.yes, self.no = question, detail, yes, no

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question, classes="title")
            yield Static(self.detail, classes="hint")
            with Horizontal(classes="buttons"):
                yield Button(self.no, id="no", compact=True)
                yield Button(self.yes, id="yes", variant="error", compact=True)

    def on_mount(self) -> None:
        self.query_one("#no").focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class ApplyDialog(ConfirmDialog):
    """The review's Apply asks first: its focused button, the one Enter presses, goes back; ``y`` (or the
    Apply button, chosen with Tab or the mouse) applies. Enter alone never applies."""

    def __init__(self, changes: int, omerodir: str) -> None:
        what = "1 change" if changes == 1 else f"{changes} changes"
        super().__init__(f"Apply {what} now?",
                         f"The deployment in {omerodir} is changed now (a backup is taken first; Ctrl-C while "
                         "applying restores it). Press y to apply, or Enter to go back to the review.",
                         "Apply (y)", "Go back")


class InstallDialog(ModalScreen[dict[str, Any] | None]):
    """Install OMERO.web with omerowizard's installer, showing its progress.

    Dismissed with the answers for the installation's user and paths when it succeeded."""

    BINDINGS = [Binding("escape", "close", "Close")]

    def __init__(self, flat: Mapping[str, Any], install: Callable[[str, str, str, Callable[[str], None]], None],
                 blink: bool = True) -> None:
        super().__init__()
        self.flat = dict(flat)
        self.install = install
        self.blink = blink
        self.running = False
        self.done = False

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="install-dialog"):
            yield Label("Install OMERO.web", classes="title")
            yield Static("The user, a virtual environment with zeroc-ice and omero-web, and OMERODIR, as the "
                         "OMERO docs do. The first build of zeroc-ice takes minutes (Ctrl-C stops it).", classes="hint")
            for q in wizard.visible("omero", self.flat) or questions_for("omero"):
                yield QuestionField(q, self.flat.get(q.key) or q.default_for(self.flat), self.check, blink=self.blink)
            yield RichLog(id="install-log", highlight=False, markup=False, wrap=True, min_width=20)
            with Horizontal(classes="buttons"):
                yield Button("Close", id="close", compact=True)
                yield Button("Install", id="do-install", variant="primary", compact=True)

    def on_mount(self) -> None:
        self.query_one("#install-log").display = False
        self.query(QuestionField).first().focus_control()

    def check(self, key: str, value: Any) -> str | None:
        return wizard.field_error(key, value, self.flat)

    def on_question_field_changed(self, event: QuestionField.Changed) -> None:
        event.stop()
        self.flat[event.field.q.key] = event.value

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.start()

    @on(Button.Pressed, "#do-install")
    def start(self) -> None:
        if self.running or self.done:
            return
        fields = list(self.query(QuestionField))
        bad = [f for f in fields if f.validate_now() is not None]
        if bad:
            bad[0].focus_control()
            return
        self.running = True
        self.query_one("#do-install", Button).disabled = True
        self.query_one("#close", Button).disabled = True
        log = self.query_one("#install-log", RichLog)
        log.display = True
        for f in fields:
            f.disabled = True
        self.run_installer(self.flat["omero.user"], self.flat["omero.venv"], self.flat["omero.omerodir"])

    @work(thread=True, exclusive=True)
    def run_installer(self, user: str, venv: str, omerodir: str) -> None:
        log = self.query_one("#install-log", RichLog)
        say = lambda line: self.app.call_from_thread(log.write, line)  # noqa: E731

        try:
            self.install(user, venv, omerodir, say)
        except InstallCancelled as exc:
            self.app.call_from_thread(self.finished, False, str(exc), True)
            return
        except Exception as exc:  # the installer's errors are meant for the administrator
            self.app.call_from_thread(self.finished, False, str(exc))
            return
        self.app.call_from_thread(self.finished, True, "OMERO.web is installed. Press Close to go on.")

    def finished(self, ok: bool, message: str, cancelled: bool = False) -> None:
        self.running = False
        self.done = ok
        self.query_one("#install-log", RichLog).write(("" if ok or cancelled else "FAILED: ") + message)
        close = self.query_one("#close", Button)
        close.disabled = False
        close.focus()
        if not ok:
            self.query_one("#do-install", Button).disabled = False
            for f in self.query(QuestionField):
                f.disabled = False

    @on(Button.Pressed, "#close")
    def action_close(self) -> None:
        if self.running:
            self.notify("The installer is running: wait for it to finish.")
            return
        keys = ("omero.user", "omero.venv", "omero.omerodir")
        self.dismiss({k: self.flat[k] for k in keys if k in self.flat} if self.done else None)
