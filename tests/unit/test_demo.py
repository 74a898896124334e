"""The demonstration's run step replays recorded events of real applies for every plan its questions
can make (tests/e2e/test_demo_recording.py keeps the recording true)."""

from __future__ import annotations

import pytest

from omerowizard.model.events import Finished, StepStarted
from tests.support.demo import Demo, first_time_answers, reconfigure_answers


@pytest.mark.parametrize("change", [
    {},
    {"sessions.backend": "file", "sessions.clearsessions": "daily"},
    {"apps.enabled": ["figure", "iviewer"]},
    {"apps.enabled": ["parade"], "application_server.workers": 3},
], ids=["as-saved", "file-sessions", "figure-iviewer", "parade-and-a-restart"])
def test_every_step_of_the_plan_is_replayed_from_a_real_run(change):
    demo = Demo(installed=True, deployed=True, flat=reconfigure_answers())
    a, plan, _ = demo.make({**demo.flat, **change})
    events: list = []
    assert demo.apply(plan, None, events.append) is True
    started = [e.step for e in events if isinstance(e, StepStarted)]
    assert started[0] == "preflight" and started[1:len(plan.steps()) + 1] == plan.steps()
    assert isinstance(events[-1], Finished) and events[-1].ok


def test_a_first_install_with_apps_is_replayed_too():
    demo = Demo(installed=True, deployed=False, flat=first_time_answers())
    a, plan, _ = demo.make({**demo.flat, "apps.enabled": ["figure"]})
    events: list = []
    assert demo.apply(plan, None, events.append) is True
    assert "install packages" in [e.step for e in events if isinstance(e, StepStarted)]
