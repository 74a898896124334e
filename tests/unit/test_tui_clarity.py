"""The wizard never misleads (issue 26): what a new administrator met at 80x24 in both themes, driven with
Pilot over the demonstration core, as tests/unit/test_tui.py does."""

from __future__ import annotations

import pytest

from tests.unit.test_tui import SIZE, Demo, field, press, rendered, settle, sync
from omerowizard.ui.tui.app import make_app


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("OMEROWIZARD_HOME", str(tmp_path / "home"))


def help_text(app) -> str:
    return rendered(app.query_one("#help"))


@sync
async def test_a_yes_no_question_says_it_allows_yes_or_no():
    app = make_app(core=Demo().core(), blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "enter", "enter")
        assert app.step_id == "web_server"
        field(app, "web_server.default_site").focus_control()
        await settle(pilot)
        assert "Allowed: yes | no" in help_text(app)
        assert "true" not in help_text(app)


def screen_lines(app) -> list[str]:
    """The screen as text, a line each (what a terminal shows, without colour)."""
    import io

    from rich.console import Console

    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True, color_system="truecolor",
                      record=True, legacy_windows=False, safe_box=False)
    console.print(app.screen._compositor.render_update(full=True))
    return console.export_text().splitlines()


def words(text: str) -> str:
    return " ".join(text.split())


@sync
async def test_every_questions_help_and_its_allowed_line_fit_at_80x24():
    """The help box showed five lines: web_server.kind's "Allowed:" line (and the end of longer helps) was cut."""
    from omerowizard.ui import wizard
    from omerowizard.ui.tui.app import QUESTION_STEPS
    from omerowizard.ui.tui.steps import QuestionStep

    app = make_app(core=Demo().core(), blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "enter")
        cut = []
        for sid, _, _ in QUESTION_STEPS:
            while app.step_id != sid:
                await press(pilot, "enter")
            for f in app.query_one(f"#{sid}", QuestionStep).shown():
                f.focus_control()
                await settle(pilot)
                box = app.query_one("#help")
                shown = words(" ".join(screen_lines(app)[box.region.y:box.region.bottom]))
                whole = words(f"{f.q.help} Allowed: {wizard.allowed_shown(f.q)}")
                if whole not in shown:
                    cut.append(f.q.key)
        assert cut == [], cut


class Counting(Demo):
    """The demo core, counting the applies."""

    applies: int = 0

    def apply(self, plan, omero, emit):
        self.applies += 1
        return super().apply(plan, omero, emit)


@sync
async def test_enter_never_applies_applying_is_a_deliberate_act():
    """Enter was Next on every step and Apply on the review: ten Enters from launch applied a plan."""
    from omerowizard.ui.tui.dialogs import ConfirmDialog

    demo = Counting()
    app = make_app(core=demo.core(), blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, *["enter"] * 14)
        assert app.step_id == "review" and demo.applies == 0 and not app.applied
        # Apply asks first; its answer with Enter is to go back (the focused button)
        while not isinstance(app.screen, ConfirmDialog):
            await press(pilot, "enter")
        assert "Apply" in rendered(app.screen.query_one(".title")) and app.screen.focused.id == "no"
        await press(pilot, "enter")
        assert app.step_id == "review" and demo.applies == 0
        summary = rendered(app.query_one(".summary"))
        assert "Enter applies" not in summary and "confirm" in summary
        await press(pilot, "enter", "y")  # a typed answer: applied
        assert app.step_id == "run" and demo.applies == 1
        await press(pilot, "enter")
    assert app.return_code == 0


@sync
async def test_a_preflight_refusal_is_the_top_of_the_review_and_apply_is_disabled():
    """It was the last item of the review, below the fold, while the top said "Enter applies them"."""
    from textual.widgets import Button, Static

    from omerowizard.features.base import Check
    from omerowizard.ui import wizard
    from omerowizard.ui.tui.review import ReviewStep

    demo = Counting()

    def make(flat):  # the real plan; the machine's preflight answer made up (nginx missing)
        a, plan, omero = demo.make(flat)
        wizard.judge(plan, [Check("web server", False, "nginx is not installed (e.g. apt-get install nginx)")])
        return a, plan, omero

    core = demo.core()
    core.make = make
    app = make_app(core=core, blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, *["enter"] * 9)
        assert app.step_id == "review"
        review = app.query_one(ReviewStep)
        first = [s for s in review.query(Static) if s.display and rendered(s).strip()][1]  # after the title
        assert "nginx is not installed" in rendered(first), rendered(first)
        assert first.region.bottom <= 10, "seen without scrolling"
        assert "will be made" not in rendered(first)
        assert app.query_one("#next", Button).disabled
        await press(pilot, *["enter"] * 3, "y")
        assert app.step_id == "review" and demo.applies == 0


@sync
async def test_the_run_screens_final_message_fits_at_80x24_what_was_not_checked_first():
    """At 80x24 the run screen showed "Done. / Checked: ..." and hid "Not checked: the public URL ...": an
    administrator believed the site was served."""
    from omerowizard.model.events import Finished, StepDone, StepStarted
    from omerowizard.run.apply import Applier
    from tests.unit.test_tui import reconfigure_answers

    demo = Demo(flat=reconfigure_answers())  # Redis sessions and CORS: a long checklist
    message = {}

    def apply(plan, omero, emit):
        applier = Applier(plan, omero, emit)
        applier.checked = ["the login page http://127.0.0.1:4080/omero/webclient/login/ answered 200 on the "
                           "application server", "the session store redis://127.0.0.1:6379/0 answered"]
        applier.not_checked = ["the public URL through the web server: /srv/omero-web/nginx/omero-web.conf is "
                               "outside nginx's configuration: include it and reload nginx, then request "
                               "http://omero.example.org/omero/"]
        for step in ["preflight", *plan.steps(), "check the session store"]:
            emit(StepStarted(step))
            emit(StepDone(step, "done"))
        message["text"] = applier.final_message(None)
        emit(Finished(True, message["text"]))
        return True

    core = demo.core()
    core.apply = apply
    app = make_app(core=core, blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, *["enter"] * 9, "enter", "y")
        assert app.step_id == "run" and app.applied
        await pilot.pause(0.3)
        lines = message["text"].splitlines()
        assert lines[1].startswith("Not checked:") and lines[2].startswith("Checked:"), lines
        screen = words(" ".join(screen_lines(app)))
        for line in lines:
            assert words(line) in screen, line
