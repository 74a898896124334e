"""The full-screen wizard: Welcome, Platform, Web server, Sessions, CORS, Advanced, Review, Run.

The app collects answers, shows the plan the core makes and renders the events of apply;
what changes on the machine is decided by ``omerowizard.ui.wizard`` (through a ``Core``).
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Button, ContentSwitcher, Footer, Label, Static
from textual.widgets._collapsible import CollapsibleTitle

from omerowizard.catalogue import BY_KEY, Question
from omerowizard.catalogue import STEPS as FEATURE_STEPS
from omerowizard.model.errors import AnswersError, WizardError
from omerowizard.model.events import Event, Finished
from omerowizard.ui import wizard
from omerowizard.ui.tui.core import Core
from omerowizard.ui.tui.dialogs import ApplyDialog, ConfirmDialog, InstallDialog, SaveDialog
from omerowizard.ui.tui.fields import QuestionField, default_of
from omerowizard.ui.tui.review import NOTHING, ReviewStep
from omerowizard.ui.tui.run import RunStep
from omerowizard.ui.tui.steps import DeploymentButton, QuestionStep, Step, WelcomeStep

NO_CHANGES = "No changes were made."

# (id, title, catalogue steps with their headings): one page per feature step (features.STEPS); the
# installation's questions go on the Advanced page, which most runs never change
SHORT_TITLES = {"cors": "CORS", "advanced": "Advanced"}
QUESTION_STEPS: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...] = (
    *((sid, SHORT_TITLES.get(sid, title), ((sid, ""),)) for sid, title in FEATURE_STEPS
      if sid not in {"omero", "advanced"}),
    ("advanced", "Advanced", (("omero", "OMERO.web installation"), ("advanced", "Other settings"))),
)
STEP_IDS = ("welcome", *(s[0] for s in QUESTION_STEPS), "review", "run")
TITLES = {"welcome": "Welcome", **{s[0]: s[1] for s in QUESTION_STEPS}, "review": "Review", "run": "Run"}
STEP_OF_PART = {part: sid for sid, _, parts in QUESTION_STEPS for part, _ in parts}


class WizardScreen(Screen):
    """The one screen of the wizard: step names, the current step, its help, Back/Next, the key bar.

    Enter is a priority key here, so it always goes on (and presses the focused button)."""

    BINDINGS = [
        Binding("escape", "app.back", "Back"),
        Binding("enter", "app.next", "Next", priority=True),
        Binding("tab", "app.focus_next", "Field", show=True),
        Binding("shift+tab", "app.focus_previous", "Previous field", show=False),
        Binding("ctrl+s", "app.save", "Save answers"),
        Binding("pagedown", "app.scroll_step(1)", "Scroll", show=False),
        Binding("pageup", "app.scroll_step(-1)", "Scroll back", show=False),
        Binding("ctrl+t", "app.toggle_theme", "Light/dark"),
    ]

    def compose(self) -> ComposeResult:
        yield Static("", id="crumbs")
        with ContentSwitcher(initial="welcome", id="body"):
            yield WelcomeStep(id="welcome")
            yield ReviewStep()
            yield RunStep()
        yield Static("", id="help")
        with Horizontal(id="nav"):
            yield Button("< Back", id="back", compact=True)
            yield Label("", id="status")
            yield Button("Next >", id="next", variant="primary", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        self.app.begin()  # type: ignore[attr-defined]


class WizardApp(App[int]):
    CSS_PATH = "wizard.tcss"
    TITLE = "omerowizard"
    ENABLE_COMMAND_PALETTE = False

    BINDINGS = [Binding("ctrl+c", "quit_wizard", "Quit", priority=True)]

    def __init__(self, answers_path: str | None = None, core: Core | None = None, blink: bool = True,
                 save_default: str | None = None) -> None:
        super().__init__()
        self.answers_path = answers_path
        self.core = core or Core()
        self.blink = blink
        self.save_default = save_default or str(Path.cwd() / "omerowizard-answers.yml")
        self.flat: dict[str, Any] = {}
        self.start: dict[str, Any] = {}  # the starting answers, to list what changed without being chosen
        self.source = ""
        self.index = 0
        self.started = False
        self.applying = False
        self.interrupted = False
        self.applied = False
        self.farewell = ""
        self.installed_now = False
        self.exit_after_apply: int | None = None
        self.handle_signals = False  # the real program (not a test) ends cleanly on SIGHUP and SIGTERM
        self.plan_round = 0
        self.answers = None
        self.plan = None
        self.omero = None

    # ------------------------------------------------------------------ layout
    def get_default_screen(self) -> Screen:
        return WizardScreen(id="_default")

    def begin(self) -> None:
        """Called once the screen is there: draw the welcome step, then look at the machine."""
        if self.handle_signals:

            loop = asyncio.get_running_loop()
            for sig in (signal.SIGHUP, signal.SIGTERM):
                loop.add_signal_handler(sig, self.on_signal, int(sig))
        self._show_step()
        self.call_after_refresh(self.load_start)  # paint the welcome step first, then look at the machine

    @property
    def step_id(self) -> str:
        return STEP_IDS[self.index]

    @property
    def step(self) -> Step:
        return self.query_one(f"#{self.step_id}", Step)

    def _show_step(self) -> None:
        sid = self.step_id
        self.query_one("#body", ContentSwitcher).current = sid
        self.query_one("#crumbs", Static).update(crumbs_text(self.index, self.size.width or 80))
        self.query_one("#help").display = isinstance(self.step, QuestionStep)
        self.query_one("#help", Static).update("")
        self._update_nav()
        self.step.first_focus()
        if sid == "welcome" and self.started:
            self.query_one("#next").focus()
        self.refresh_bindings()

    def _update_nav(self) -> None:
        sid = self.step_id
        back, nxt = self.query_one("#back", Button), self.query_one("#next", Button)
        # no Back where there is no way back (Welcome, a run that changed things): hidden, not greyed out
        back.display = (sid != "run" and self.index > 0) or self._unchanged_failure()
        nxt.label = self.step.next_label + (" >" if self.step.next_label == "Next" else "")
        nxt.disabled = ((sid == "welcome" and not self.started) or (sid == "review" and self._review_blocked())
                        or (sid == "run" and not self.applied))

    def _review_blocked(self) -> bool:
        review = self.query_one(ReviewStep)
        return review.plan is None or bool(review.plan.preflight_failures)

    def status(self, text: str) -> None:
        self.query_one("#status", Label).update(text)

    def show_help(self, q: Question) -> None:
        text = Text(q.help)
        allowed = wizard.allowed_shown(q)
        if allowed:
            text.append(f"\nAllowed: {allowed}", style="italic")
        self.query_one("#help", Static).update(text)

    # ------------------------------------------------------------------ starting answers
    @work(thread=True, exclusive=True, group="start")
    def load_start(self) -> None:
        try:
            flat, source = self.core.starting_answers(self.answers_path)
            detected = self.core.detect(flat, source)
        except WizardError as exc:
            self.call_from_thread(self._start_failed, exc.render(), exc.exit_code)
            return
        except OSError as exc:
            self.call_from_thread(self._start_failed, f"omerowizard: {exc}", 1)
            return
        self.call_from_thread(self._started, flat, source, detected)

    def _start_failed(self, message: str, code: int) -> None:
        self.farewell = message
        self.exit(code, return_code=code)

    def _started(self, flat: dict[str, Any], source: str, detected: wizard.Detected) -> None:
        self.flat, self.source = dict(flat), source
        self.start = dict(flat)
        body = self.query_one("#body", ContentSwitcher)
        steps = [QuestionStep(sid, title, parts, self.flat, self.check, blink=self.blink)
                 for sid, title, parts in QUESTION_STEPS]
        for step in steps:
            step.display = False
        body.mount_all(steps, before=self.query_one(ReviewStep))
        for step in steps:
            for f in step.fields:
                self.flat.setdefault(f.q.key, f.value)
                if self.flat[f.q.key] is None:
                    self.flat[f.q.key] = f.value
        self.query_one(WelcomeStep).show(detected, str(self.flat.get("omero.venv", "")), bool(self.answers_path))
        self.started = True
        self.call_after_refresh(self._sync_fields)
        self._update_nav()
        if self.step_id == "welcome":
            self.query_one("#next").focus()

    def check(self, key: str, value: Any) -> str | None:
        return wizard.field_error(key, value, self.flat)

    # ------------------------------------------------------------------ answers changing
    def on_question_field_changed(self, event: QuestionField.Changed) -> None:
        self.flat[event.field.q.key] = event.value
        self._sync_fields()

    def _sync_fields(self) -> None:
        """Show the questions whose condition holds now; follow the catalogue's default in the
        ones that the user has not chosen and that are not the user's from the starting answers;
        offer only the options the other answers allow; check again a field refused before (an
        answer elsewhere may have fixed it, and a message must not stay once it no longer holds)."""
        for step in self.query(QuestionStep):
            keys = step.visible_keys(self.flat)
            for f in step.fields:
                show = f.q.key in keys
                if show and not f.edited and not f.provided:
                    default = default_of(f.q, self.flat)
                    if default != f.value:
                        f.set_value(default)
                        self.flat[f.q.key] = default
                if show and f.q.kind == "choice":
                    f.offer(lambda v, key=f.q.key: wizard.field_error(key, v, self.flat) is None)
                if show and f.error:
                    f.validate_now()
                f.display = show

    def chosen(self) -> set[str]:
        return {f.q.key for step in self.query(QuestionStep) for f in step.fields if f.edited}

    def validate_step(self, step: QuestionStep) -> list[QuestionField]:
        """Check the shown fields of a step together, each against the others' new values (not
        their old ones); take the values that are accepted. The fields that are refused."""
        values: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for f in step.shown():
            try:
                values[f.q.key] = f.typed()
            except ValueError as exc:
                errors[f.q.key] = str(exc)
        errors = {**wizard.step_errors(values, self.flat), **errors}
        for f in step.shown():
            key = f.q.key
            f.show_error(errors.get(key))
            if key not in errors and key in values:
                f.value = values[key]
                self.flat[key] = values[key]
        self._sync_fields()
        return [f for f in step.shown() if f.error]

    @on(Button.Pressed, "#next")
    def _next_pressed(self) -> None:
        self.action_next()

    @on(Button.Pressed, "#back")
    def _back_pressed(self) -> None:
        self.action_back()

    @on(Button.Pressed, "#save")
    def _save_pressed(self) -> None:
        self.action_save()

    @on(Button.Pressed, ".deployment")
    async def _deployment_pressed(self, event: Button.Pressed) -> None:
        button = event.button
        if isinstance(button, DeploymentButton):
            await self.reopen(button.omerodir)

    async def reopen(self, omerodir: str) -> None:
        """Start again on another deployment of this host, as ``omerowizard --omerodir DIR`` does: its
        starting answers, its detection, its questions (nothing was changed on the one left)."""
        self.core.choose_deployment(omerodir)
        self.started = False
        self.flat, self.start = {}, {}
        self.answers = self.plan = self.omero = None
        await self.query(QuestionStep).remove()
        self.query_one(WelcomeStep).detecting()
        self._update_nav()
        self.load_start()

    @on(Button.Pressed, "#install")
    def _install_pressed(self) -> None:
        self.push_screen(InstallDialog(self.flat, self.core.install, blink=self.blink), self._installed)

    def _installed(self, result: dict[str, Any] | None) -> None:
        if not result:
            return
        self.installed_now = True
        self.flat.update(result)
        for step in self.query(QuestionStep):
            for f in step.fields:
                if f.q.key in result:
                    f.set_value(result[f.q.key])
                    f.provided = True
        self.redetect()

    @work(thread=True, exclusive=True, group="start")
    def redetect(self) -> None:
        detected = self.core.detect(dict(self.flat), self.source)
        self.call_from_thread(self.query_one(WelcomeStep).show, detected, str(self.flat.get("omero.venv", "")),
                              bool(self.answers_path))

    # ------------------------------------------------------------------ moving between steps
    def action_next(self) -> None:
        focused = self.focused
        if isinstance(focused, Button) and focused.id != "next":
            focused.press()
            return
        if isinstance(focused, CollapsibleTitle):
            focused.action_toggle_collapsible()
            return
        sid = self.step_id
        if sid == "welcome" and not self.started:
            return
        step = self.step
        if isinstance(step, QuestionStep):
            bad = self.validate_step(step)
            if bad:
                bad[0].focus_control()
                self.status(f"Fix {bad[0].q.key} first")
                self.bell()
                return
        if sid == "review":
            review = self.query_one(ReviewStep)
            if self._review_blocked():
                self.bell()
                return
            if review.plan.empty:
                self.farewell = f"{NOTHING}\n{NO_CHANGES}"
                self.exit(0, return_code=0)
                return
            # applying is a deliberate act: a question whose focused answer (what Enter presses) is to go back
            self.push_screen(ApplyDialog(len(review.plan.changes), str(self.flat.get("omero.omerodir", ""))),
                             self._apply_confirmed)
            return
        if sid == "run":
            if self.applied:
                self.exit(self.return_value_for_run(), return_code=self.return_value_for_run())
            return
        self.status("")
        self.index += 1
        self._show_step()
        if self.step_id == "review":
            self.start_plan()

    def _apply_confirmed(self, yes: bool | None) -> None:
        if not yes or self.step_id != "review" or self.query_one(ReviewStep).plan is None:
            return
        self.index += 1
        self._show_step()
        self.start_apply()

    def _unchanged_failure(self) -> bool:
        """The run stopped before changing anything (a failed preflight): going back to fix it is safe."""
        run = self.query_one(RunStep)
        return self.step_id == "run" and self.applied and run.finished is not None and not run.finished.changed

    def action_back(self) -> None:
        if self._unchanged_failure():
            self.applied = False
            self.index -= 1
            self._show_step()
            self.start_plan()
            return
        if self.step_id == "run" or self.index == 0:
            return
        self.status("")
        self.index -= 1
        self._show_step()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "save":
            return self.step_id == "review"
        if action == "back":
            return (self.step_id != "run" and self.index > 0) or self._unchanged_failure()
        return True

    def action_scroll_step(self, direction: int) -> None:
        """Page through a long step (the review) wherever the focus is."""
        step = self.step
        if direction > 0:
            step.scroll_page_down(animate=False)
        else:
            step.scroll_page_up(animate=False)

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.theme != "textual-light" else "textual-dark"

    def action_quit_wizard(self) -> None:
        if isinstance(self.screen, ApplyDialog):  # not applying yet: quit as from the review
            self.pop_screen()
        elif isinstance(self.screen, ConfirmDialog):
            return
        if isinstance(self.screen, InstallDialog) and self.screen.running:
            self.push_screen(ConfirmDialog("Stop the installation?",
                                           "The build so far is lost and its temporary files are removed; "
                                           "what is already installed stays.", "Stop it", "Go on"),
                             self._stop_install)
            return
        if self.applying:
            self.push_screen(ConfirmDialog("Interrupt the apply?",
                                           "What this run changed so far is restored and OMERO.web is put back "
                                           "as it was, as after Ctrl-C on the command line.", "Interrupt", "Go on"),
                             self._interrupt_apply)
            return
        if self.applied:
            code = self.return_value_for_run()
            self.exit(code, return_code=code)
            return
        self.farewell = NO_CHANGES if not self.installed_now else (
            "OMERO.web was installed; " + NO_CHANGES[0].lower() + NO_CHANGES[1:].replace(".", " to its configuration."))
        self.exit(130, return_code=130)

    def _interrupt_apply(self, interrupt: bool | None) -> None:
        if interrupt and self.applying and self.core.interrupt_apply():
            self.interrupted = True
            self.status("Interrupting: restoring what this run changed...")

    def _stop_install(self, stop: bool | None) -> None:
        if stop:
            self.core.cancel_install()

    def on_signal(self, signum: int) -> None:
        """SIGHUP (the terminal went away) or SIGTERM: stop an installation (its build and temporary
        files) and end; while applying, apply finishes (or restores) first, then the app ends."""
        self.core.cancel_install()
        if self.applying:
            self.exit_after_apply = 128 + signum
            return
        self.farewell = self.farewell or NO_CHANGES
        self.exit(128 + signum, return_code=128 + signum)

    # ------------------------------------------------------------------ review
    def start_plan(self) -> None:
        self.query_one(ReviewStep).planning()
        self.answers = self.plan = self.omero = None
        self._update_nav()
        self.status("Reading the deployment...")
        self.plan_round += 1
        self.plan_worker(wizard.applicable(self.flat), self.plan_round)

    @work(thread=True, exclusive=True, group="plan")
    def plan_worker(self, flat: dict[str, Any], round_: int) -> None:
        try:
            result = self.core.make(flat)
        except AnswersError as exc:
            self.call_from_thread(self._plan_refused, round_, exc)
            return
        except WizardError as exc:
            self.call_from_thread(self._plan_failed, round_, str(exc))
            return
        self.call_from_thread(self._planned, round_, *result)

    def _current(self, round_: int) -> bool:
        """Only the plan of the last visit to the review counts (Back and Next again start a new one)."""
        return round_ == self.plan_round and self.step_id == "review"

    def _plan_refused(self, round_: int, exc: AnswersError) -> None:
        if self._current(round_):
            where = {k: TITLES[STEP_OF_PART.get(q.step, q.step)] for k, q in BY_KEY.items()}
            self.query_one(ReviewStep).show_problems(exc, where)
            self.status("")

    def _plan_failed(self, round_: int, message: str) -> None:
        if self._current(round_):
            self.query_one(ReviewStep).show_failure(message)
            self.status("")

    def _planned(self, round_: int, answers, plan, omero) -> None:
        if not self._current(round_):
            return
        self.answers, self.plan, self.omero = answers, plan, omero
        self.query_one(ReviewStep).show_plan(plan, wizard.derived_changes(self.start, wizard.applicable(self.flat),
                                                                          self.chosen()))
        self.status("")
        self._update_nav()
        self.query_one("#next").focus()

    def action_save(self) -> None:
        if self.step_id != "review":
            return
        if self.answers is None or self.query_one(ReviewStep).plan is None:
            self.notify("The answers are not valid yet: nothing to save.", severity="error")
            return
        answers = self.answers
        self.push_screen(SaveDialog(self.save_default, lambda path: self.core.save_answers_file(answers, path)),
                         self._saved)

    def _saved(self, written: Path | None) -> None:
        if written is None:
            return
        self.save_default = str(written)
        self.notify(f"Saved the answers to {written}")

    # ------------------------------------------------------------------ run
    def start_apply(self) -> None:
        run = self.query_one(RunStep)
        run.start(self.plan.steps())
        self.applying = True
        self._update_nav()
        self.refresh_bindings()
        self.query_one("#log").focus()
        self.apply_worker()

    @work(thread=True, exclusive=True, group="apply")
    def apply_worker(self) -> None:
        run = self.query_one(RunStep)

        def emit(event: Event) -> None:
            self.call_from_thread(run.handle, event)

        try:
            self.core.apply(self.plan, self.omero, emit)
        except KeyboardInterrupt:  # interrupted and restored: apply reported it (Finished) before raising
            self.interrupted = True
        except Exception as exc:  # shown, never swallowed: the run step says what failed
            emit(Finished(False, f"Failed: {exc}"))
        self.call_from_thread(self._applied)

    def _applied(self) -> None:
        run = self.query_one(RunStep)
        if run.finished is None:
            run.finish(Finished(False, "apply ended without reporting its result"))
        self.applying = False
        self.applied = True
        self.farewell = run.finished.message
        if self.interrupted:  # the restore has finished: its notice goes (the run step says what was restored)
            self.status("")
        self._update_nav()
        self.refresh_bindings()
        self.query_one("#next").focus()
        if self.exit_after_apply is not None:
            self.exit(self.exit_after_apply, return_code=self.exit_after_apply)

    def return_value_for_run(self) -> int:
        if self.interrupted:
            return 130  # as an interrupted headless apply
        run = self.query_one(RunStep)
        return 0 if run.finished is not None and run.finished.ok else 1


def crumbs_text(index: int, width: int) -> Text:
    """The step bar: every step when they fit, else a window around the current one (the current step
    is always shown, so at 80 columns the bar never hides where the wizard is), '…' where steps are left out."""
    labels = [f" {TITLES[s]} " for s in STEP_IDS]
    lo = hi = index

    def size(lo: int, hi: int) -> int:
        return sum(len(x) for x in labels[lo:hi + 1]) + (hi - lo) + (2 if lo > 0 else 0) + (2 if hi < len(labels) - 1 else 0)

    while True:
        grown = False
        for cand in ((lo, hi + 1), (lo - 1, hi)):
            if 0 <= cand[0] and cand[1] < len(labels) and size(*cand) <= width:
                lo, hi = cand
                grown = True
        if not grown:
            break
    crumbs = Text(no_wrap=True, overflow="ellipsis")
    if lo > 0:
        crumbs.append("…›", style="dim")
    for i in range(lo, hi + 1):
        if i > lo:
            crumbs.append("›", style="dim")
        crumbs.append(labels[i], style="reverse bold" if i == index else ("" if i < index else "dim"))
    if hi < len(labels) - 1:
        crumbs.append("›…", style="dim")
    return crumbs


def make_app(answers_path: str | None = None, core: Core | None = None, blink: bool = True,
             save_default: str | None = None) -> WizardApp:
    """The wizard; tests and the screenshot script pass their own ``core`` (and no cursor blink)."""
    return WizardApp(answers_path, core=core, blink=blink, save_default=save_default)


def run_app(answers_path: str | None = None) -> int:
    app = make_app(answers_path)
    app.handle_signals = True
    code = app.run()
    if app.farewell:
        print(app.farewell, file=sys.stderr if app.return_code not in (0, None) else sys.stdout)
    return app.return_code if app.return_code is not None else (code or 0)


def main(answers_path: str | None = None, omerodir: str | None = None) -> int:
    """`omerowizard` (cli.COMMANDS): the wizard, on the deployment in ``omerodir`` when one is named."""
    if omerodir:
        wizard.choose_deployment(omerodir)
    return run_app(answers_path)

