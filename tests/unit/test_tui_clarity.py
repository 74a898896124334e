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
