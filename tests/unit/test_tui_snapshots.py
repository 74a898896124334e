"""SVG snapshots of every step of the Textual wizard at 80x24 (pytest-textual-snapshot).

The demonstration core is the real plan over a made-up machine (tests/support/demo.py): the
answers and the machine are fixed, so nothing differs between machines; the cursor does not
blink. After an intended change of the screens, look at the new pictures and accept them with
``python3 -m pytest tests/unit/test_tui_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

import pytest
from textual.widgets import RichLog

from omerowizard.ui.tui.app import make_app
from tests.support.demo import DEGRADED, PACKAGES, Demo, FakeMachine, reconfigure_answers
from tests.support.wait import until_async

SIZE = (80, 24)


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("OMEROWIZARD_HOME", str(tmp_path / "home"))


def first_time():
    return make_app(core=Demo().core(), blink=False, save_default="/root/omerowizard-answers.yml")


def reconfigure(nothing: bool = False):
    demo = Demo(installed=True, deployed=True, nothing_to_change=nothing, flat=reconfigure_answers())
    return make_app(core=demo.core(), blink=False)


def keys(*presses: str):
    """Press keys one by one, letting the workers (start, plan, apply) finish after each."""

    async def run(pilot):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        for key in presses:
            await pilot.press(key)
            await pilot.app.workers.wait_for_complete()
            await pilot.pause()
        # deferred rendering (a RichLog writes its lines once it has a size) finishes late on a busy machine
        await pilot.wait_for_scheduled_animations()
        await until_async(lambda: not any(log._deferred_renders for log in pilot.app.screen.query(RichLog)
                                          if all(getattr(n, "display", True) for n in (log, *log.ancestors))), 30,
                          "the lines of every log shown written")
        await pilot.pause()

    return run


def test_welcome_first_time(snap_compare):
    assert snap_compare(first_time(), terminal_size=SIZE, run_before=keys())


def test_welcome_reconfigure(snap_compare):
    assert snap_compare(reconfigure(), terminal_size=SIZE, run_before=keys())


def test_platform(snap_compare):
    assert snap_compare(first_time(), terminal_size=SIZE, run_before=keys("enter"))


def test_web_server(snap_compare):
    assert snap_compare(first_time(), terminal_size=SIZE, run_before=keys("enter", "enter"))


def test_sessions_redis_shows_its_location(snap_compare):
    assert snap_compare(first_time(), terminal_size=SIZE, run_before=keys("enter", "enter", "enter", "right", "tab"))


def test_cors_origin_refused_inline(snap_compare):
    assert snap_compare(first_time(), terminal_size=SIZE,
                        run_before=keys("enter", "enter", "enter", "enter", "right", "tab", *"example.org", "enter"))


def test_advanced(snap_compare):
    assert snap_compare(first_time(), terminal_size=SIZE, run_before=keys(*["enter"] * 8))


def test_review_with_changes(snap_compare):
    assert snap_compare(first_time(), terminal_size=SIZE, run_before=keys(*["enter"] * 9))


def test_review_nothing_to_change(snap_compare):
    assert snap_compare(reconfigure(nothing=True), terminal_size=SIZE, run_before=keys(*["enter"] * 9))


def test_save_answers_dialog(snap_compare):
    assert snap_compare(first_time(), terminal_size=SIZE, run_before=keys(*["enter"] * 9, "ctrl+s"))


def test_run_finished(snap_compare):
    assert snap_compare(first_time(), terminal_size=SIZE, run_before=keys(*["enter"] * 10, "y"))


def test_run_failed(snap_compare):
    app = make_app(core=Demo(fail=True).core(), blink=False)
    assert snap_compare(app, terminal_size=SIZE, run_before=keys(*["enter"] * 10, "y"))


def test_light_theme(snap_compare):
    assert snap_compare(first_time(), terminal_size=SIZE, run_before=keys("enter", "enter", "enter", "ctrl+t"))


def test_rerun_back_to_file_sessions_lists_the_answer_that_followed_its_default(snap_compare):
    flat = reconfigure_answers()
    flat["sessions.clearsessions"] = "off"  # as a run with Redis sessions saves it
    app = make_app(core=Demo(installed=True, deployed=True, flat=flat).core(), blink=False)
    assert snap_compare(app, terminal_size=SIZE, run_before=keys("enter", "enter", "enter", "left", *["enter"] * 6))


def test_cors_prefilled_origins_one_left_is_off(snap_compare):
    app = make_app(core=Demo(installed=True, deployed=True, flat=reconfigure_answers()).core(), blink=False)
    assert snap_compare(app, terminal_size=SIZE, run_before=keys(*["enter"] * 4, "left"))


# the Web apps step: figure and iviewer chosen (Space), iviewer's question shown; in both themes
WEB_APPS = ("enter",) * 7 + ("space", "down", "space")


def test_web_apps(snap_compare):
    assert snap_compare(first_time(), terminal_size=SIZE, run_before=keys(*WEB_APPS))


def test_web_apps_light_theme(snap_compare):
    assert snap_compare(first_time(), terminal_size=SIZE, run_before=keys(*WEB_APPS, "ctrl+t"))


def test_welcome_offers_the_other_deployments_and_names_apps_installed_but_not_enabled(snap_compare):
    machine = FakeMachine(packages={**PACKAGES, "omero-figure": "8.0.1", "omero-iviewer": "0.19.1"})
    demo = Demo(installed=True, deployed=True, flat=reconfigure_answers(), machine=machine,
                others=("/srv/lab2/OMERO.web",))
    assert snap_compare(make_app(core=demo.core(), blink=False), terminal_size=SIZE, run_before=keys())


def test_welcome_of_a_degraded_deployment_shows_the_health_verdict(snap_compare):
    demo = Demo(installed=True, deployed=True, flat=reconfigure_answers(), health=DEGRADED)
    assert snap_compare(make_app(core=demo.core(), blink=False), terminal_size=SIZE, run_before=keys())
