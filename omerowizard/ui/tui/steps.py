"""The welcome step and the question steps (platform, web server, sessions, CORS, advanced)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Label, LoadingIndicator, Static

from omerowizard.catalogue import questions_for
from omerowizard.model.health import Verdict
from omerowizard.ui import wizard
from omerowizard.ui.tui.fields import Check, QuestionField, default_of

WELCOME = "Welcome to omerowizard"


class Step(VerticalScroll):
    """One page of the wizard."""

    title = ""
    next_label = "Next"

    def first_focus(self) -> None:
        """Put the focus where the user starts on this step."""


class WelcomeStep(Step):
    title = "Welcome"

    def compose(self) -> ComposeResult:
        yield Label(WELCOME, id="welcome-title", classes="title")
        yield Static("omerowizard deploys and configures OMERO.web. It asks a few questions, shows every change "
                     "it will make, and changes nothing before you apply them.", classes="intro")
        yield LoadingIndicator(id="detecting")
        yield Static("", id="detected")
        yield Static("", id="health")
        yield Static("", id="verdict")
        with Horizontal(id="install-row"):
            yield Button("Install OMERO.web...", id="install", compact=True)
        yield Vertical(id="deployments")

    def on_mount(self) -> None:
        self.query_one("#health").display = False
        self.query_one("#install-row").display = False
        self.query_one("#deployments").display = False

    def detecting(self) -> None:
        """Looking at the machine again (another deployment was chosen)."""
        self.query_one("#detecting").display = True
        for sid in ("#detected", "#verdict", "#health"):
            self.query_one(sid, Static).update("")
        self.query_one("#install-row").display = False
        self.query_one("#deployments").display = False

    def show(self, detected: wizard.Detected, venv: str, from_file: bool = False) -> None:
        self.query_one("#detecting").display = False
        text = Text()
        # the other deployments come after the verdict and the installer's button (a host may have many)
        for line in detected.lines(others=False, health=False):
            text.append(("\n" if text else "") + "  " + line)
        self.query_one("#detected", Static).update(text)
        verdict = self.query_one("#verdict", Static)
        if detected.reconfigure:
            verdict.update(Text.assemble(
                ("OMERO.web is installed: the wizard will reconfigure it.", "bold"),
                " Every answer is prefilled from " + ("the answers file given with --answers" if from_file
                                                      else "the current deployment") + "; only what differs is changed."))
        elif not detected.installed:
            verdict.update(Text.assemble(
                ("OMERO.web is not installed", "bold"),
                f" in {venv}. Install it now, or go on (Enter) and set where it is on the Advanced step."))
        else:
            verdict.update(Text.assemble(
                ("First-time deployment:", "bold"),
                " OMERO.web is installed and this OMERODIR has no configuration yet: the wizard creates it."))
        health = self.query_one("#health", Static)
        health.update(health_text(detected.health))
        health.display = detected.health is not None
        self.query_one("#install-row").display = not detected.installed
        self._offer_deployments(detected.others, choose=not from_file)

    def _offer_deployments(self, others: list[str], choose: bool) -> None:
        """The other deployments of this host, a button each: choosing one reopens the wizard on it. With an
        answers file the wizard is about that file's deployment: the others are only named."""
        box = self.query_one("#deployments", Vertical)
        box.remove_children()
        box.display = bool(others)
        if not others:
            return
        if not choose:
            box.mount(Static("Other deployments on this host (reconfigure one with omerowizard --omerodir DIR): "
                             + ", ".join(others), classes="hint deployments-title"))
            return
        box.mount(Static("Other deployments on this host: choose one to reconfigure it instead (as "
                         "omerowizard --omerodir DIR does)", classes="hint deployments-title"))
        box.mount_all(DeploymentButton(d) for d in others)

    def show_failure(self, message: str) -> None:
        self.query_one("#detecting").display = False
        self.query_one("#verdict", Static).update(Text(message, style="bold"))


def health_text(verdict: Verdict | None, width: int = 74) -> Text:
    """The deployment's health as `omerowizard status` tells it: the verdict, then each problem on one line (at
    most three; the rest and the fixes are `omerowizard doctor`'s)."""
    if verdict is None:
        return Text()
    style = "bold green" if verdict.healthy else "bold red"
    text = Text.assemble(("Health: ", "bold"), (verdict.headline, style))
    for problem in verdict.problems[:3]:
        line = problem if len(problem) <= width else problem[:width - 1] + "…"
        text.append("\n  • " + line)
    if not verdict.healthy:
        more = len(verdict.problems) - 3
        text.append("\n  " + (f"and {more} more; " if more > 0 else "") + f"the fixes: {verdict.command}",
                    style="italic")
    return text


class DeploymentButton(Button):
    """One other deployment of this host, on the welcome step."""

    def __init__(self, omerodir: str) -> None:
        super().__init__(f"Reconfigure {omerodir}", compact=True, classes="deployment")
        self.omerodir = omerodir


class QuestionStep(Step):
    """The questions of one or more catalogue steps, shown while their condition holds."""

    def __init__(self, step_id: str, title: str, parts: tuple[tuple[str, str], ...], flat: Mapping[str, Any],
                 check: Check, blink: bool = True) -> None:
        super().__init__(id=step_id, classes="questions")
        self.title = title
        self.parts = parts  # (catalogue step, heading)
        self.fields: list[QuestionField] = []
        self.file_only: list[Static] = []  # mapping questions (extra_config) are answered in a file
        for part, _ in parts:
            for q in questions_for(part):
                if q.type.widget == "file-only":
                    keys = ", ".join(sorted(flat.get(q.key) or {})) or "none"
                    self.file_only.append(Static(f"{q.prompt}: {keys}. These are set in an answers file "
                                                 f"(`{q.key}`, see `omerowizard schema`); the wizard keeps them.",
                                                 classes="hint file-only"))
                    continue
                given, default = flat.get(q.key), default_of(q, flat)
                # an answer that is not the user's (the default, or saved while its question did not
                # apply) keeps following the catalogue's default as other answers change; any other stays
                provided = not wizard.follows_default(q, flat)
                value = default if given is None else given
                self.fields.append(QuestionField(q, value, check, provided=provided, blink=blink))

    def compose(self) -> ComposeResult:
        for part, heading in self.parts:
            if heading:
                yield Label(heading, classes="heading")
            yield from (f for f in self.fields if f.q.step == part)
        yield from self.file_only

    def visible_keys(self, flat: Mapping[str, Any]) -> set[str]:
        return {q.key for part, _ in self.parts for q in wizard.visible(part, flat)}

    def shown(self) -> list[QuestionField]:
        return [f for f in self.fields if f.display]

    def first_focus(self) -> None:
        shown = self.shown()
        if shown:
            shown[0].focus_control()
        self.scroll_home(animate=False)

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        for node in event.widget.ancestors_with_self:
            if isinstance(node, QuestionField):
                self.app.show_help(node.q)  # type: ignore[attr-defined]
                return
