"""The Textual wizard driven with Pilot (App.run_test) at 80x24.

The app gets the demonstration core (tests/support/demo.py): fixed starting answers, a
made-up state, the real ``plan.make_plan`` and an apply that only reports events. What the
tests prove is the front end: steps, inline validation, Back, review, run, quitting.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Button, Input, RadioSet, Static
from textual.worker import WorkerCancelled

from omerowizard.catalogue import answers as answers_mod
from omerowizard.ui import wizard
from omerowizard.model.errors import AnswersError, Problem
from omerowizard.system.omero import Omero
from omerowizard.ui.tui.app import NO_CHANGES, make_app
from tests.support.demo import OMERODIR, Demo, reconfigure_answers
from tests.support.wait import until_async
from omerowizard.ui.tui.fields import MARK, QuestionField
from omerowizard.ui.tui.review import ReviewStep
from omerowizard.ui.tui.run import RunStep

SIZE = (80, 24)


def sync(test):
    """Run an async test with asyncio.run (no async pytest plugin needed)."""

    @functools.wraps(test)
    def run(*args, **kwargs):
        return asyncio.run(test(*args, **kwargs))

    return run


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("OMEROWIZARD_HOME", str(tmp_path / "home"))


async def settle(pilot) -> None:
    app = pilot.app
    await app.workers.wait_for_complete()
    await pilot.pause()
    # the welcome looks at the machine only after its first paint (call_after_refresh); on a busy machine
    # that starts after the wait above, and Enter is ignored until it is done: await it
    await until_async(lambda: getattr(app, "started", True) is not False or app.return_code is not None, 30,
                      "the welcome's look at the machine")
    await app.workers.wait_for_complete()


async def press(pilot, *keys: str) -> None:
    for key in keys:
        await pilot.press(key)
        await settle(pilot)


async def until(pilot, condition, timeout: float = 10) -> None:
    """Wait for a condition of the screen (a busy machine renders late), failing after ``timeout``."""
    await until_async(condition, timeout, lambda: f"the expected state of the screen ({pilot.app.screen_stack}, "
                                                  f"focus on {pilot.app.focused})")


async def set_theme(pilot, theme: str) -> None:
    """Switch the theme and wait until the app has applied its CSS (it signals the change after that)."""
    app = pilot.app
    if app.theme == theme:
        return
    changed = asyncio.Event()
    app.theme_changed_signal.subscribe(app, lambda _theme: changed.set())
    try:
        app.theme = theme
        await asyncio.wait_for(changed.wait(), 30)
    finally:
        app.theme_changed_signal.unsubscribe(app)
    await pilot.pause()


async def next_until(pilot, step: str) -> None:
    """Enter (Next) until the wizard is on ``step``, failing if it gets past it or stops moving."""
    from omerowizard.ui.tui.app import STEP_IDS

    while pilot.app.step_id != step:
        here = pilot.app.index
        assert here < STEP_IDS.index(step), f"past {step}: on {pilot.app.step_id}"
        await press(pilot, "enter")
        assert pilot.app.index > here, f"Next did not leave {pilot.app.step_id}: {pilot.app.query_one('#status').render()}"


async def type_text(pilot, text: str) -> None:
    await pilot.press(*text)
    await settle(pilot)


def field(app, key: str) -> QuestionField:
    return app.query_one(f"#q-{key.replace('.', '-')}", QuestionField)


def text_of(app, key: str) -> str:
    return field(app, key).query_one(Input).value


def rendered(widget: Static) -> str:
    return str(widget.render())


class Recorder(Demo):
    """The demo core, remembering what the app handed to make."""

    made: list[dict[str, Any]]

    def make(self, flat):
        self.made = getattr(self, "made", [])
        self.made.append(dict(flat))
        return super().make(flat)


@sync
async def test_first_time_install_walks_every_step_refuses_an_invalid_value_and_back_keeps_answers():
    demo = Recorder()
    app = make_app(core=demo.core(), blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.step_id == "welcome"
        welcome = rendered(app.query_one("#welcome-title"))
        assert "Welcome to omerowizard" in welcome
        assert "not installed" in rendered(app.query_one("#verdict"))
        assert app.query_one("#install-row").display

        await press(pilot, "enter")
        assert app.step_id == "platform"
        await press(pilot, "enter", "enter")
        assert app.step_id == "sessions"
        assert not field(app, "sessions.location").display
        await press(pilot, "right")  # file -> redis: the location question appears with its default
        assert app.flat["sessions.backend"] == "redis"
        assert field(app, "sessions.location").display
        assert text_of(app, "sessions.location") == "redis://127.0.0.1:6379/0"
        assert not field(app, "sessions.clearsessions").display

        await press(pilot, "tab", "ctrl+u")
        await type_text(pilot, "redis:/nowhere")
        error = field(app, "sessions.location").error
        assert error and error == wizard.field_error("sessions.location", "redis:/nowhere", app.flat)
        assert "redis:/nowhere" in rendered(field(app, "sessions.location").query_one(".error"))
        await press(pilot, "enter")
        assert app.step_id == "sessions", "Next must be refused while a field is invalid"
        assert "sessions.location" in rendered(app.query_one("#status"))

        await press(pilot, "ctrl+u")
        await type_text(pilot, "redis://:s3cret@127.0.0.1:6390/1")
        assert field(app, "sessions.location").error is None
        await press(pilot, "enter")
        assert app.step_id == "cors"
        assert not field(app, "cors.origins").display
        await press(pilot, "right")
        assert field(app, "cors.origins").display
        await press(pilot, "tab")
        await type_text(pilot, "https://a.example.org, https://b.example.org:8443")
        await press(pilot, "enter")
        assert app.step_id == "servers"
        await type_text(pilot, "127.0.0.1:4063 Main")
        await press(pilot, "enter")
        assert app.step_id == "public"
        await press(pilot, "enter")
        assert app.step_id == "apps"
        await press(pilot, "enter")
        assert app.step_id == "advanced"
        assert app.flat["servers"] == [{"host": "127.0.0.1", "port": 4063, "name": "Main"}]

        await press(pilot, "escape", "escape", "escape", "escape")
        assert app.step_id == "cors"
        assert text_of(app, "cors.origins") == "https://a.example.org, https://b.example.org:8443"
        await press(pilot, "escape")
        assert app.step_id == "sessions"
        assert text_of(app, "sessions.location") == "redis://:s3cret@127.0.0.1:6390/1"
        assert field(app, "sessions.backend").query_one(RadioSet).pressed_button.label.plain == "redis"

        await press(pilot, *["enter"] * 6)
        assert app.step_id == "review"
        review = app.query_one(ReviewStep)
        assert review.plan is not None and not review.plan.empty
        assert app.answers.sessions.location == "redis://:s3cret@127.0.0.1:6390/1"
        assert app.answers.cors.origins == ("https://a.example.org", "https://b.example.org:8443")
        keys = {c.key for c in review.plan.config}
        assert {"omero.web.session_engine", "omero.web.caches", "omero.web.cors_origin_whitelist"} <= keys
        shown = " ".join(rendered(s) for s in review.query(Static))
        assert "omero.web.session_engine" in shown
        assert "s3cret" not in shown, "the Redis password must be masked in the review"
        assert str(app.query_one("#next", Button).label) == "Apply"

        await press(pilot, "enter", "y")  # Apply asks first: y applies
        assert app.step_id == "run"
        run = app.query_one(RunStep)
        assert run.finished is not None and run.finished.ok
        assert set(run.steps.values()) == {"done"} and "omero web start" in run.steps
        assert "http://omero.example.org/" in rendered(app.query_one("#result"))
        await press(pilot, "escape")
        assert app.step_id == "run", "no way back once applied"
        await press(pilot, "enter")
    assert app.return_code == 0
    # the demonstration's site is outside nginx's configuration: the farewell says what was not requested
    assert app.farewell.startswith("Done.\nNot checked: the public URL") and "\nChecked: the login page" in \
        app.farewell and "then request http://omero.example.org/" in app.farewell and "OMERO.web answers at" not in \
        app.farewell


@sync
async def test_reconfigure_prefills_from_the_deployment_and_nothing_to_change_quits():
    demo = Demo(installed=True, deployed=True, nothing_to_change=True, flat=reconfigure_answers())
    app = make_app(core=demo.core(), blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert "reconfigure" in rendered(app.query_one("#verdict"))
        assert not app.query_one("#install-row").display
        assert field(app, "sessions.backend").value == "redis"
        assert text_of(app, "sessions.location") == "redis://127.0.0.1:6379/0"
        assert text_of(app, "cors.origins") == "https://hostname.example.com"
        assert text_of(app, "prefix") == "/omero"
        await press(pilot, *["enter"] * 9)
        assert app.step_id == "review"
        assert "Nothing to change" in " ".join(rendered(s) for s in app.query_one(ReviewStep).query(Static))
        assert str(app.query_one("#next", Button).label) == "Quit"
        await press(pilot, "enter")
    assert app.return_code == 0
    assert NO_CHANGES in app.farewell


@sync
async def test_ctrl_c_before_run_exits_saying_nothing_was_changed():
    app = make_app(core=Demo().core(), blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "enter", "enter")
        await press(pilot, "ctrl+c")
    assert app.return_code == 130
    assert app.farewell == NO_CHANGES


@sync
async def test_answers_hidden_again_are_not_handed_to_the_plan():
    demo = Recorder()
    app = make_app(core=demo.core(), blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "enter", "enter", "enter", "enter")
        assert app.step_id == "cors"
        await press(pilot, "right", "tab")
        await type_text(pilot, "https://a.example.org")
        await press(pilot, "shift+tab", "left")  # back to off: the origins question hides
        assert not field(app, "cors.origins").display
        await press(pilot, *["enter"] * 5)
        assert app.step_id == "review"
        assert "cors.origins" not in demo.made[-1]
        assert not any("ignored" in n for n in app.plan.notes)
        await press(pilot, "escape", "escape", "right")  # origins again: what was typed is still there
        assert text_of(app, "cors.origins") == "https://a.example.org"


@sync
async def test_save_answers_to_file_writes_a_file_apply_accepts(tmp_path):
    target = tmp_path / "saved.yml"
    app = make_app(core=Demo().core(), blink=False, save_default=str(tmp_path / "other.yml"))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, *["enter"] * 9)
        assert app.step_id == "review"
        await press(pilot, "ctrl+s")
        path_input = app.screen.query_one("#path", Input)
        assert path_input.value == str(tmp_path / "other.yml")
        path_input.value = str(target)
        await press(pilot, "enter")
        assert app.step_id == "review"
        saved = answers_mod.load_file(target)
        assert saved == app.answers
        assert (target.stat().st_mode & 0o777) == 0o600
        await press(pilot, "ctrl+c")
    assert app.return_code == 130


@sync
async def test_installer_runs_from_the_welcome_step_and_fills_in_the_paths():
    demo = Demo()
    app = make_app(core=demo.core(), blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        from omerowizard.ui.tui.dialogs import InstallDialog

        # the welcome step lays the button out after it has looked at the machine: click once it is there
        await until(pilot, lambda: app.screen.get_widget_at(*app.query_one("#install").region.offset)[0].id == "install")
        await pilot.click("#install")
        await until(pilot, lambda: isinstance(app.screen, InstallDialog) and app.screen.focused is not None)
        venv = app.screen.query_one("#q-omero-venv Input", Input)
        venv.value = "/srv/omero/venv3"
        await settle(pilot)
        await press(pilot, "enter")  # Enter in a field starts the installer
        await until(pilot, lambda: app.screen.done)
        assert demo.installs == [("omero-web", "/srv/omero/venv3", "/opt/omero/web/OMERO.web")]
        await press(pilot, "escape")
        await settle(pilot)
        assert app.flat["omero.venv"] == "/srv/omero/venv3"
        assert text_of(app, "omero.venv") == "/srv/omero/venv3"
        assert "/srv/omero/venv3/bin/omero" in rendered(app.query_one("#detected"))
        assert not app.query_one("#install-row").display
        await press(pilot, "ctrl+c")
    assert "OMERO.web was installed" in app.farewell


@sync
async def test_a_failed_run_says_what_failed_and_where_the_log_is():
    app = make_app(core=Demo(fail=True).core(), blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, *["enter"] * 9)
        await press(pilot, "enter", "y")
        run = app.query_one(RunStep)
        assert run.finished is not None and not run.finished.ok
        assert run.steps["preflight"] == "failed"  # a real run that preflight refused (demo_run.json)
        result = rendered(app.query_one("#result"))
        assert "Failed: preflight failed; nothing was changed" in result and "port 4080" in result
        await press(pilot, "enter")
    assert app.return_code == 1


def real_apply(plan, omero, emit):
    """The real apply (the demonstration's own only replays recorded runs)."""
    return wizard.apply(plan, omero or Omero(plan.state.target), emit)


def deployed_demo(tmp_path) -> tuple[Demo, Path]:
    """A demonstration whose made-up machine runs OMERO.web deployed with answers whose paths are below
    ``tmp_path``, except its web-server file: its plan writes that file, and apply runs for real."""
    site = tmp_path / "site" / "omero-web.conf"
    flat = {**reconfigure_answers(), "omero.venv": str(tmp_path / "venv"), "omero.omerodir": str(tmp_path / "omerodir"),
            "web_server.config_path": str(site)}
    demo = Demo(installed=True, deployed=True, flat=flat)
    demo.machine.files.pop(str(site))
    return demo, site


@sync
async def test_after_a_refused_preflight_escape_goes_back_but_not_after_a_failure_that_changed_things(tmp_path):
    for changed in (False, True):
        demo, site = deployed_demo(tmp_path / str(changed))
        if changed:  # a real failure after the backup: the file's directory is a regular file
            site.parent.parent.mkdir(parents=True)
            site.parent.write_text("")
        else:  # a real refusal: a file is there that no run of omerowizard wrote
            demo.machine.files[str(site)] = "# written by hand\n"
            demo.machine.unrecorded.add(str(site))
        core = demo.core()
        core.apply = real_apply
        app = make_app(core=core, blink=False)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await press(pilot, *["enter"] * 10, "y")
            assert app.step_id == "run"
            run = app.query_one(RunStep)
            assert run.finished is not None and not run.finished.ok and run.finished.changed is changed
            result = rendered(app.query_one("#result"))
            await press(pilot, "escape")
            if changed:
                assert run.steps["write web-server files"] == "failed"
                assert app.step_id == "run" and "Press Enter to quit." in result
            else:
                assert run.steps["preflight"] == "failed" and "omerowizard did not write it" in result
                assert "press Escape to go back" in result
                assert app.step_id == "review"
                assert app.query_one(ReviewStep).plan is not None  # planned again, ready to apply
            await press(pilot, "ctrl+c")


@sync
async def test_problems_found_when_planning_block_apply():
    demo = Demo()

    def refuse(flat):
        raise AnswersError([Problem("sessions.location", "cannot be reached", allowed="redis://host:port/db")])

    core = demo.core()
    core.make = refuse
    app = make_app(core=core, blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, *["enter"] * 9)
        assert app.step_id == "review"
        problems = rendered(app.query_one(".problems"))
        assert "Sessions: sessions.location: cannot be reached" in problems
        assert app.query_one("#next", Button).disabled
        await press(pilot, "enter")
        assert app.step_id == "review"
        await press(pilot, "escape")
        assert app.step_id == "advanced"


@sync
async def test_windows_hides_the_unix_installation_questions():
    app = make_app(core=Demo().core(), blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "enter", "right")
        assert app.flat["platform"] == "windows"
        assert not field(app, "omero.venv").display
        assert app.flat["web_server.kind"] == "iis", "an answer left at its default follows the catalogue's default"
        await press(pilot, "enter")
        assert app.step_id == "web_server"
        assert field(app, "web_server.kind").value == "iis"
        await press(pilot, "escape", "left")
        assert field(app, "omero.venv").display
        assert app.flat["web_server.kind"] == "nginx"


@sync
async def test_an_answer_the_user_chose_is_kept_when_its_default_changes():
    app = make_app(core=Demo().core(), blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "enter", "enter", "right", "right")  # apache, chosen on the web-server step
        assert app.flat["web_server.kind"] == "apache"
        await press(pilot, "escape")
        await press(pilot, "right", "left")  # windows and back: apache stays (Windows refuses it meanwhile)
        assert app.flat["web_server.kind"] == "apache"


@sync
async def test_steps_apply_reports_beyond_the_plan_are_listed_in_the_order_they_ran(tmp_path):
    demo, site = deployed_demo(tmp_path)
    core = demo.core()
    core.apply = real_apply
    app = make_app(core=core, blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, *["enter"] * 10, "y")
        run = app.query_one(RunStep)
        assert run.finished is not None and run.finished.ok, run.finished
        assert list(run.steps)[0] == "preflight"
        assert app.plan.steps() == ["write web-server files"]
        # beyond the plan: the site is not served by a running server, so its login page is checked instead
        assert list(run.steps)[1:] == ["write web-server files", "check the login page"]
        assert set(run.steps.values()) == {"done"}
        assert site.is_file()


@sync
async def test_a_bad_answers_file_ends_the_app_with_every_problem_and_status_2(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("prefix: omero\napplication_server:\n  port: 99999\n")
    app = make_app(str(bad), core=Demo().core(), blink=False)
    async with app.run_test(size=SIZE) as pilot:
        with contextlib.suppress(WorkerCancelled):  # the app ends while its start worker returns
            await settle(pilot)
    assert app.return_code == 2
    assert f"{bad}:1: prefix" in app.farewell and f"{bad}:3: application_server.port" in app.farewell
    assert "nothing was changed" in app.farewell


@sync
async def test_extra_config_from_the_starting_answers_is_shown_and_kept():
    flat = Demo().flat
    flat["extra_config"] = {"omero.web.login_logo": "/static/logo.png"}
    demo = Recorder(flat=flat)
    app = make_app(core=demo.core(), blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, *["enter"] * 8)
        assert app.step_id == "advanced"
        assert "omero.web.login_logo" in rendered(app.query_one(".file-only"))
        await press(pilot, "enter")
        assert demo.made[-1]["extra_config"] == {"omero.web.login_logo": "/static/logo.png"}
        assert app.answers.extra_config == {"omero.web.login_logo": "/static/logo.png"}


@sync
async def test_page_down_scrolls_a_long_review_while_the_focus_stays_on_apply():
    flat = reconfigure_answers()
    app = make_app(core=Recorder(flat=flat).core(), blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, *["enter"] * 9)
        review = app.query_one(ReviewStep)
        assert review.max_scroll_y > 0 and review.scroll_y == 0
        await press(pilot, "pagedown")
        assert review.scroll_y > 0
        assert app.focused is app.query_one("#next")
        await press(pilot, "pageup")
        assert review.scroll_y == 0


def pressed(app, key: str) -> str:
    return field(app, key).query_one(RadioSet).pressed_button.label.plain


def cursor(app, key: str) -> str:
    """The option the choice's cursor (its highlight) is on."""
    rs = field(app, key).query_one(RadioSet)
    return [b.label.plain for b in rs._nodes if b.has_class("-selected")][0]


def marked(app, key: str) -> list[str]:
    """The options whose button shows the selection mark in plain text (no colour needed)."""
    from textual.widgets import RadioButton

    out = []
    for button in field(app, key).query(RadioButton):
        if button.display and MARK in button.render().plain:
            out.append(button.label.plain)
    return out


@sync
async def test_a_prefilled_choice_moves_from_the_selected_value_and_shows_it_without_colour():
    """On a rerun with CORS `origins` and sessions `redis`, one Left gives `off` and `file`
    (the cursor used to stay on the first option, so Left wrapped to `all`)."""
    demo = Recorder(installed=True, deployed=True, flat=reconfigure_answers())
    app = make_app(core=demo.core(), blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "enter", "enter", "enter")
        assert app.step_id == "sessions"
        assert marked(app, "sessions.backend") == ["redis"]
        assert cursor(app, "sessions.backend") == "redis", "the highlight is on the selected option"
        assert cursor(app, "sessions.expire_at_browser_close") == "yes"
        await press(pilot, "left")
        assert app.flat["sessions.backend"] == "file" and pressed(app, "sessions.backend") == "file"
        assert marked(app, "sessions.backend") == ["file"]
        await press(pilot, "left")  # the first option: no wrapping round to the last one
        assert app.flat["sessions.backend"] == "file"
        await press(pilot, "right", "enter")
        assert app.step_id == "cors"
        assert marked(app, "cors.mode") == ["origins"]
        await press(pilot, "left")
        assert app.flat["cors.mode"] == "off" and marked(app, "cors.mode") == ["off"]
        assert cursor(app, "cors.mode") == "off"
        await press(pilot, "enter", "enter", "enter", "enter", "enter")
        assert app.step_id == "review"
        assert demo.made[-1]["cors.mode"] == "off" and app.answers.cors.mode == "off"


@sync
async def test_a_value_set_by_the_app_moves_the_choice_cursor_too():
    app = make_app(core=Demo().core(), blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "enter", "right")  # windows: web_server.kind follows its default, iis
        await press(pilot, "left", "enter")  # unix again: nginx, set by the app
        assert app.step_id == "web_server"
        assert marked(app, "web_server.kind") == ["nginx"]
        await press(pilot, "right")
        assert app.flat["web_server.kind"] == "nginx-development"


@sync
async def test_choices_the_other_answers_rule_out_are_not_offered():
    app = make_app(core=Demo().core(), blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "enter", "enter")
        from textual.widgets import RadioButton

        shown = [b.label.plain for b in field(app, "web_server.kind").query(RadioButton) if b.display]
        assert "iis" not in shown and "nginx" in shown
        await press(pilot, *["right"] * 6)  # to the last offered option, never onto iis
        assert app.flat["web_server.kind"] == "none"


def https_answers() -> dict[str, Any]:
    flat = reconfigure_answers()
    flat.update({"web_server.https.certificate": "/etc/ssl/omero.pem", "web_server.https.key": "/etc/ssl/omero.key"})
    return flat


@sync
async def test_https_can_be_turned_off_by_emptying_the_certificate_or_the_key_first():
    for first in ("web_server.https.certificate", "web_server.https.key"):
        demo = Recorder(installed=True, deployed=True, flat=https_answers())
        app = make_app(core=demo.core(), blink=False)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await press(pilot, *["enter"] * 8)
            assert app.step_id == "advanced"
            for key in (first, "web_server.https.certificate"):
                if field(app, key).display:
                    field(app, key).query_one(Input).value = ""
                    await settle(pilot)
            assert not field(app, "web_server.https.key").display
            await press(pilot, "enter")
            assert app.step_id == "review", f"emptying {first} first: {app.query_one('#status').render()}"
            assert app.answers.web_server.https is None
            assert demo.made[-1].get("web_server.https.certificate") is None
            assert not any(f.error for f in app.query(QuestionField) if f.display)


@sync
async def test_an_answer_never_chosen_follows_its_default_and_the_review_lists_it():
    """Saved by a Redis run, clearsessions is `off`; back to file sessions it is `daily` again."""
    flat = reconfigure_answers()
    flat["sessions.clearsessions"] = "off"
    demo = Recorder(installed=True, deployed=True, flat=flat)
    app = make_app(core=demo.core(), blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "enter", "enter", "enter", "left")
        assert app.flat["sessions.backend"] == "file"
        assert text_of(app, "sessions.clearsessions") == "daily"
        await press(pilot, *["enter"] * 6)
        assert app.step_id == "review"
        assert app.answers.sessions.clearsessions == "daily"
        assert app.plan.jobs and app.plan.jobs[0].new
        derived = rendered(app.query_one(".derived"))
        assert "sessions.clearsessions: off -> daily" in derived
        assert "sessions.backend" not in derived  # chosen by the user


@sync
async def test_an_answer_the_user_typed_does_not_follow_its_default():
    flat = reconfigure_answers()
    app = make_app(core=Recorder(installed=True, deployed=True, flat=flat).core(), blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "enter", "enter", "enter", "left")
        field(app, "sessions.clearsessions").query_one(Input).value = "hourly"
        await settle(pilot)
        await press(pilot, "shift+tab", "shift+tab", "shift+tab", "shift+tab")
        await press(pilot, "right", "left")  # redis and back: hourly stays
        assert text_of(app, "sessions.clearsessions") == "hourly"


def _luminance(c) -> float:
    def channel(v: int) -> float:
        v = v / 255
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

    return 0.2126 * channel(c.r) + 0.7152 * channel(c.g) + 0.0722 * channel(c.b)


def contrast(widget, colour=None) -> float:
    """WCAG contrast of a widget's text (or of ``colour`` drawn on it) against its background."""
    from textual.color import Color

    style = widget.rich_style
    bg = Color.from_rich_color(style.bgcolor) if style.bgcolor else widget.background_colors[1]
    fg = Color.from_rich_color(style.color) if colour is None else bg.blend(colour, colour.a)
    high, low = sorted([_luminance(fg), _luminance(bg)], reverse=True)
    return (high + 0.05) / (low + 0.05)


@sync
async def test_titles_and_the_focus_mark_are_readable_in_both_themes():
    app = make_app(core=Demo().core(), blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "enter")
        for theme in ("textual-dark", "textual-light"):
            await set_theme(pilot, theme)
            assert contrast(app.query_one("#welcome-title")) >= 4.5, theme
            assert contrast(app.query_one(".heading")) >= 4.5, theme
            focused = field(app, "platform")
            assert contrast(focused, focused.styles.border_left[1]) >= 3, theme  # a non-text mark: WCAG 1.4.11
            assert contrast(focused.query_one(".prompt")) >= 4.5, theme


@sync
async def test_back_is_shown_only_where_there_is_a_way_back():
    app = make_app(core=Demo().core(), blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert not app.query_one("#back").display
        await press(pilot, "enter")
        assert app.query_one("#back").display
        await press(pilot, *["enter"] * 9, "y")
        assert app.step_id == "run" and app.applied
        assert not app.query_one("#back").display


@sync
async def test_a_failed_save_keeps_the_dialog_open_with_the_reason(tmp_path):
    from omerowizard.ui.tui.dialogs import SaveDialog

    app = make_app(core=Demo().core(), blink=False, save_default=str(tmp_path / "missing" / "a.yml"))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, *["enter"] * 9, "ctrl+s", "enter")
        assert isinstance(app.screen, SaveDialog), "the dialog must stay open after a failed write"
        assert "missing" in rendered(app.screen.query_one("#save-error"))
        app.screen.query_one("#path", Input).value = str(tmp_path / "a.yml")
        await press(pilot, "enter")
        assert not isinstance(app.screen, SaveDialog)
        assert (tmp_path / "a.yml").exists()


@sync
async def test_a_message_goes_once_another_answer_fixes_it_and_a_long_one_wraps():
    app = make_app(core=Demo().core(), blink=False)
    async with app.run_test(size=(60, 24)) as pilot:
        await settle(pilot)
        await press(pilot, *["enter"] * 8)
        assert app.step_id == "advanced"
        field(app, "web_server.https.certificate").query_one(Input).value = "/etc/ssl/omero.pem"
        await settle(pilot)
        field(app, "web_server.https.port").query_one(Input).value = "80"
        await settle(pilot)
        https_port = field(app, "web_server.https.port")
        assert https_port.error and "web_server.port" in https_port.error
        error = https_port.query_one(".error")
        assert error.region.width <= 60 and error.region.height >= 2, "a long message wraps instead of being cut"
        await press(pilot, *["escape"] * 6)
        assert app.step_id == "web_server"
        field(app, "web_server.port").query_one(Input).value = "8080"
        await settle(pilot)
        assert https_port.error is None, "the message no longer holds and must go"


@sync
async def test_welcome_names_the_answers_file_it_starts_from(tmp_path):
    answers = tmp_path / "a.yml"
    answers.write_text("prefix: /omero\n")
    from omerowizard.ui.tui.steps import DeploymentButton

    app = make_app(str(answers), core=Demo(installed=True, deployed=True, others=("/srv/lab2/OMERO.web",)).core(),
                   blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        verdict = rendered(app.query_one("#verdict"))
        assert "answers file" in verdict and "current deployment" not in verdict
        # the answers file names its deployment: the others are named, not offered
        assert "/srv/lab2/OMERO.web" in rendered(app.query_one(".deployments-title"))
        assert not app.query(DeploymentButton)


@sync
async def test_ctrl_c_while_installing_asks_then_stops_the_build_and_removes_its_files(tmp_path, monkeypatch):
    """The real installer with a stand-in environment whose build never ends (tests/standin_build.py)."""
    from omerowizard.ui.tui.core import Core, install
    from omerowizard.ui.tui.dialogs import ConfirmDialog, InstallDialog
    from tests.standin_build import StandInBuild

    build = StandInBuild(tmp_path)
    for name, value in build.env().items():
        monkeypatch.setenv(name, value)
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", None)  # TMPDIR is read again
    demo = Demo()
    core = demo.core()
    core.install, core.cancel_install = install, Core().cancel_install
    flat = dict(demo.flat, **{"omero.user": "nobody", "omero.venv": str(build.venv),
                              "omero.omerodir": str(tmp_path / "omerodir")})
    core.starting_answers = lambda path: (flat, "defaults")
    app = make_app(core=core, blink=False)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.click("#install")
            await pilot.pause()
            await pilot.press("enter")
            await asyncio.to_thread(build.wait_compilers)
            dialog = app.screen
            assert isinstance(dialog, InstallDialog) and dialog.running
            await pilot.press("ctrl+c")
            await pilot.pause()
            assert isinstance(app.screen, ConfirmDialog)
            await pilot.press("n")
            await pilot.pause()
            assert app.screen is dialog and len(build.compilers()) == 2, "Go on keeps the build running"
            await pilot.press("ctrl+c")
            await pilot.pause()
            await pilot.press("y")
            await asyncio.to_thread(build.assert_nothing_left)
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert not dialog.running and not dialog.done
            assert "installation cancelled" in "\n".join(str(line.text) for line in dialog.query_one("#install-log").lines)
    finally:
        build.kill_left()


@sync
async def test_under_no_color_the_selected_option_is_still_marked(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app(core=Demo(installed=True, deployed=True, flat=reconfigure_answers()).core(), blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.no_color
        await press(pilot, "enter", "enter", "enter", "enter")
        assert marked(app, "cors.mode") == ["origins"]
        for theme in ("textual-dark", "textual-light"):
            app.theme = theme
            await pilot.pause()
            assert marked(app, "cors.mode") == ["origins"], theme


@pytest.mark.parametrize("width", [60, 80, 120])
def test_the_step_bar_always_shows_the_current_step_within_the_width(width):
    """Ten steps do not fit in 80 columns: the bar shows a window around the current step ('…' for the rest)."""
    from omerowizard.ui.tui.app import STEP_IDS, TITLES, crumbs_text

    for i, sid in enumerate(STEP_IDS):
        text = crumbs_text(i, width)
        assert len(text.plain) <= width and f" {TITLES[sid]} " in text.plain, (width, text.plain)
    assert "…" not in crumbs_text(0, 200).plain


@sync
async def test_welcome_offers_the_other_deployments_and_choosing_one_reopens_the_wizard_on_it():
    """As ``omerowizard --omerodir DIR``: its starting answers, its detection, its questions."""
    from omerowizard.ui.tui.steps import DeploymentButton

    other = "/srv/lab2/OMERO.web"
    demo = Recorder(installed=True, deployed=True, flat=reconfigure_answers(), others=(other,))
    app = make_app(core=demo.core(), blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        buttons = list(app.query(DeploymentButton))
        assert [b.omerodir for b in buttons] == [other]
        assert "--omerodir" in rendered(app.query_one(".deployments-title")) and other in str(buttons[0].label)
        assert other not in rendered(app.query_one("#detected"))  # offered, not repeated as text
        await press(pilot, "tab")
        while app.focused is not buttons[0]:
            await press(pilot, "tab")
        await press(pilot, "enter")
        await until(pilot, lambda: app.started)
        assert demo.chosen == [other]
        assert f"OMERODIR: {other}" in rendered(app.query_one("#detected"))
        assert app.flat["omero.omerodir"] == other
        # the deployment left behind is offered in turn, and the questions are this deployment's (once each)
        assert [b.omerodir for b in app.query(DeploymentButton)] == [OMERODIR]
        assert len(app.query("#q-omero-omerodir")) == 1
        await next_until(pilot, "review")
        assert demo.made[-1]["omero.omerodir"] == other


# ----------------------------------------------------------------------------- web apps (several choices)
def multi_marked(app, key: str) -> list[str]:
    """The options of a multi-select whose line shows the selection mark in plain text (no colour needed)."""
    from omerowizard.ui.tui.fields import MultiSet

    ms = field(app, key).query_one(MultiSet)
    out = []
    for y in range(ms.option_count):
        line = "".join(seg.text for seg in ms.render_line(y))
        if MARK in line:
            out.append(str(ms.get_option_at_index(y).value))
    return out


@sync
async def test_web_apps_step_chooses_figure_and_iviewer_with_space_and_the_answers_have_them(tmp_path):
    import yaml

    from omerowizard.ui.tui.fields import MultiSet

    demo = Recorder()
    app = make_app(core=demo.core(), blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await next_until(pilot, "apps")
        enabled = field(app, "apps.enabled")
        assert isinstance(app.focused, MultiSet) and app.focused is enabled.control, "the step starts on the list"
        assert multi_marked(app, "apps.enabled") == []
        assert not field(app, "apps.iviewer_default_viewer").display
        await press(pilot, "space")  # figure, where the cursor starts
        await press(pilot, "down", "space")  # iviewer
        await press(pilot, "down", "down", "space", "space")  # parade chosen and left out again
        assert app.flat["apps.enabled"] == ["figure", "iviewer"]
        assert multi_marked(app, "apps.enabled") == ["figure", "iviewer"]
        assert field(app, "apps.iviewer_default_viewer").display, "iviewer's question appears once it is chosen"
        await press(pilot, "tab")  # Tab leaves the list for the next field
        assert app.focused is field(app, "apps.iviewer_default_viewer").control
        await press(pilot, "shift+tab", "up", "up", "up", "up", "space", "space")  # back on the list, at the top
        assert app.flat["apps.enabled"] == ["figure", "iviewer"]
        await next_until(pilot, "review")
        assert demo.made[-1]["apps.enabled"] == ["figure", "iviewer"]
        assert app.answers.apps.enabled == ("figure", "iviewer")
        review = "\n".join(rendered(s) for s in app.query_one(ReviewStep).query(Static))
        assert "omero-figure 8.0.1" in review and "omero-iviewer 0.19.1" in review, review  # pip's choice
        assert '["omero_figure", "omero_iviewer"]' in review, review  # omero.web.apps
        saved = app.core.save_answers_file(app.answers, str(tmp_path / "answers.yml"))
        data = yaml.safe_load(saved.read_text())
        assert data["apps"]["enabled"] == ["figure", "iviewer"]
        assert answers_mod.load_file(str(saved)).apps.enabled == ("figure", "iviewer")
        # Back to the step: the choice is still shown, and taking figure out reaches the next plan
        await press(pilot, "escape")
        while app.step_id != "apps":
            await press(pilot, "escape")
        assert app.focused is field(app, "apps.enabled").control
        assert multi_marked(app, "apps.enabled") == ["figure", "iviewer"]
        await press(pilot, "home", "space")
        assert multi_marked(app, "apps.enabled") == ["iviewer"]
        await next_until(pilot, "review")
        assert demo.made[-1]["apps.enabled"] == ["iviewer"]


@sync
async def test_under_no_color_the_chosen_apps_are_still_marked(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    flat = reconfigure_answers()
    flat["apps.enabled"] = ["iviewer", "parade"]
    app = make_app(core=Demo(flat=flat).core(), blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.no_color
        await next_until(pilot, "apps")
        for theme in ("textual-dark", "textual-light"):
            app.theme = theme
            await pilot.pause()
            assert multi_marked(app, "apps.enabled") == ["iviewer", "parade"], theme


def test_detect_names_the_web_apps_installed_in_the_environment_but_not_in_omero_web_apps(tmp_path):
    """Measured on the machine: the packages in the environment's site-packages, omero.web.apps read from
    config.xml as data; the welcome step shows the line."""
    import json

    venv, omerodir = tmp_path / "venv", tmp_path / "OMERO.web"
    site = venv / "lib" / "python3.11" / "site-packages"
    (venv / "bin").mkdir(parents=True)
    for name, version in (("omero-web", "5.33.2"), ("omero-figure", "8.0.1"), ("omero-iviewer", "0.19.1")):
        info = site / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (omerodir / "etc" / "grid").mkdir(parents=True)
    apps = json.dumps(["omero_iviewer"]).replace('"', "&quot;")
    (omerodir / "etc" / "grid" / "config.xml").write_text(
        "<icegrid><properties id='__ACTIVE__'><property name='omero.config.profile' value='default'/></properties>"
        f"<properties id='default'><property name='omero.web.apps' value=\"{apps}\"/></properties></icegrid>")
    flat = {**answers_mod.defaults().flat(), "omero.venv": str(venv), "omero.omerodir": str(omerodir)}
    detected = wizard.detect(flat, "test")
    assert dict(detected.apps_not_enabled) == {"figure": "8.0.1"}, "iviewer is in omero.web.apps"
    assert "Web apps installed but not enabled (choose them on the Web apps step): figure 8.0.1" in detected.lines()


@sync
async def test_the_web_apps_list_and_its_marks_are_readable_in_both_themes():
    from textual.color import Color

    from omerowizard.ui.tui.fields import MultiSet

    flat = reconfigure_answers()
    flat["apps.enabled"] = ["figure"]
    app = make_app(core=Demo(flat=flat).core(), blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await next_until(pilot, "apps")
        ms = field(app, "apps.enabled").query_one(MultiSet)
        for theme in ("textual-dark", "textual-light"):
            await set_theme(pilot, theme)
            assert contrast(ms) >= 4.5, theme
            mark = ms.get_component_rich_style("selection-list--button-selected")  # the ● on its button
            fg, bg = Color.from_rich_color(mark.color), Color.from_rich_color(mark.bgcolor)
            high, low = sorted([_luminance(fg), _luminance(bg)], reverse=True)
            assert (high + 0.05) / (low + 0.05) >= 3, theme  # a non-text mark: WCAG 1.4.11


@sync
async def test_the_web_apps_list_stops_at_its_ends_like_the_radio_sets():
    """Up on the first app stays there (it once wrapped round, and Space ticked fpbioimage unseen)."""
    app = make_app(core=Recorder().core(), blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await next_until(pilot, "apps")
        await press(pilot, "up", "space")
        assert app.flat["apps.enabled"] == ["figure"]
        await press(pilot, "end", "down", "down", "space")
        assert app.flat["apps.enabled"] == ["figure", "fpbioimage"]
