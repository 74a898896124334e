"""A value round-trips: what the plan wants is what config.xml holds after the real
`omero config load` (and the real `omero load` for the values that format cannot carry),
for every string validation accepts, and a rerun plans nothing (issue 11)."""

from __future__ import annotations

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from omerowizard.catalogue import answers
from omerowizard.system.omero import Omero, OmeroTarget, parse_config_xml
from omerowizard.plan.planner import make_plan
from omerowizard.state.probe import probe
from tests.e2e.conftest import USER, VENV

# what validation lets through: everything but control characters, line and paragraph
# separators, surrogates and U+FFFE/U+FFFF (answers._text_problems, validators.text)
ACCEPTED = st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters="\ufffe\uffff")
VALUES = st.lists(st.text(ACCEPTED, max_size=40), min_size=1, max_size=30)
EDGES = ["trailing space ", "C:\\plugins\\", "  leading", "#not a comment", "!bang", "a=b:c", "\\u00e9 as written",
         "--", "-x", "- x ", "", " ", "\\", "nbsp\u00a0", "ideographic\u3000", "zero\u200bwidth", "é☃𝄞",
         "[1, 2]", "{\"a\": 1}", "true ", "x\\ ", "'quote\"", "\ufdd0\U0001fffe"]


def _keys(n: int) -> list[str]:
    """n text settings the installed omero-web declares and no feature owns (extra_config accepts only those)."""
    from omerowizard.catalogue import KEYS
    from omerowizard.features.extra import declared_settings

    found = declared_settings(str(VENV))
    assert found is not None, f"omero-web is not installed in {VENV}"
    keys = sorted(k for k, kind in found[1].items() if kind == "str" and k not in KEYS)
    assert len(keys) >= n, keys
    return keys[:n]


@settings(max_examples=4, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(values=EDGES)
@given(values=VALUES)
def test_every_accepted_value_round_trips_through_the_real_omero(deployment, values):
    d = deployment
    wanted = dict(zip(_keys(len(values)), values))
    a = answers.validate({"omero": {"user": USER, "venv": str(VENV), "omerodir": str(d.omerodir)},
                          "extra_config": wanted})
    target = OmeroTarget(USER, VENV, d.omerodir)
    Omero(target).config_load(wanted)
    stored = parse_config_xml(d.config_xml)
    assert stored is not None, "config.xml is no longer valid XML"
    assert {k: stored.get(k) for k in wanted} == wanted
    # omero itself still reads the file (an ESC once made every later omero call fail)
    got = d.omero("config", "get", "--show-password").stdout
    assert f"{_keys(1)[0]}=" in got
    # and the planner sees nothing left to do for these keys
    plan = make_plan(a, probe(a, Omero(target)))
    assert [c.key for c in plan.config if c.key in wanted] == []


def _apply(d, extra: dict, name: str):
    site = d.workdir / "site" / "omero.conf"
    f = d.answers_file({"application_server": {"workers": 1}, "sessions": {"clearsessions": "off"}, "start": False,
                        "web_server": {"config_path": str(site), "port": 8080}, "extra_config": extra}, name=name)
    return d.cli("apply", str(f))


def test_a_trailing_backslash_no_longer_swallows_the_next_setting(deployment):
    d = deployment
    key = _keys(1)[0]  # a text setting: extra_config refuses a value its type cannot parse
    extra = {key: "C:\\plugins\\", "omero.web.use_x_forwarded_host": "true"}
    first = _apply(d, extra, "a.yml")
    assert first.returncode == 0, first.stdout + first.stderr
    stored = parse_config_xml(d.config_xml)
    assert stored[key] == "C:\\plugins\\"
    assert stored["omero.web.use_x_forwarded_host"] == "true"
    again = _apply(d, extra, "a.yml")
    assert again.returncode == 0 and "Nothing to change" in again.stdout, again.stdout


def test_a_value_with_a_trailing_space_converges(deployment):
    d = deployment
    extra = {"omero.web.login_logo": "/static/logo.png ", "omero.web.ui.top_links": "[[\"x \", \"webindex\"]]"}
    first = _apply(d, extra, "b.yml")
    assert first.returncode == 0, first.stdout + first.stderr
    assert parse_config_xml(d.config_xml)["omero.web.login_logo"] == "/static/logo.png "
    again = _apply(d, extra, "b.yml")
    assert again.returncode == 0 and again.stdout.count("Nothing to change") == 1, again.stdout  # said once
