"""Features as modules: the catalogue, the model, the schema, plan, infer and preflight all come
from the feature declarations; and the features built on them (servers, public access, checked
extra settings)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from omerowizard import catalogue
from omerowizard.catalogue import answers, config as omeroconfig
from omerowizard.model.errors import AnswersError
from omerowizard.catalogue.infer import answers_from_config
from omerowizard.system.omero import OmeroTarget
from omerowizard.model.secrets import mask_text
from omerowizard.plan.planner import make_plan
from omerowizard.state.probe import State
from omerowizard.model.qtypes import QType

ALL = {"django": "5.2", "omero-web": "5.33.2", "django-redis": "5", "pymemcache": "4", "django-cors-headers": "3.7.0"}


def state(config=None, running=True) -> State:
    target = OmeroTarget("omero-web", Path("/nonexistent/venv"), Path("/nonexistent/omerodir"))
    return State(target=target, installed=True, config=dict(config or {}), packages=dict(ALL),
                 running_pid=1 if running else None)


def problems(text: str) -> list[str]:
    with pytest.raises(AnswersError) as exc:
        answers.load_text(text, "a.yml")
    return [str(p) for p in exc.value.problems]


# ------------------------------------------------------------------------------------------ the framework
def test_the_catalogue_is_the_features_questions_in_order_and_every_question_has_a_type_object():
    keys = [q.key for f in catalogue.FEATURES for q in f.questions]
    assert [q.key for q in catalogue.CATALOGUE] == keys
    assert len(set(keys)) == len(keys)
    assert all(isinstance(q.type, QType) for q in catalogue.CATALOGUE)


def test_every_owned_config_key_names_the_question_that_sets_it():
    for key, spec in catalogue.KEYS.items():
        assert key.startswith("omero.web."), key
        if spec.question:
            assert spec.question.split(" ")[0] in catalogue.BY_KEY, (key, spec.question)
        else:  # no answer owns it: a setting only extra_config sets, declared for the effect of its change
            assert spec.restart or spec.static, key


def test_each_key_says_the_effect_of_its_change_on_a_running_omero_web():
    """gunicorn's own settings need a restart, the apps need their static files; everything else is a reload."""
    restart = {k for k, spec in catalogue.KEYS.items() if spec.restart}
    assert {"omero.web.application_server.port", "omero.web.wsgi_workers", "omero.web.prefix",
            "omero.web.wsgi_threads", "omero.web.wsgi_args"} <= restart
    assert "omero.web.session_cookie_age" not in restart
    assert {k for k, spec in catalogue.KEYS.items() if spec.static} == {"omero.web.apps"}


def test_the_model_is_generated_from_the_catalogue_with_attribute_access():
    a = answers.load_text("web_server: {https: {certificate: /c.pem, key: /k.pem}}\ncors: {mode: origins, "
                          "origins: ['https://a.example.org']}\n")
    assert a.web_server.https.port == 443 and a.web_server.https.certificate == "/c.pem"
    assert a.cors.origins == ("https://a.example.org",)
    assert answers.defaults().web_server.https is None
    assert answers.defaults().sessions.clearsessions == "daily"
    assert answers.load_text("sessions: {backend: redis}\n").sessions.clearsessions == "off"
    with pytest.raises(AttributeError):
        answers.defaults().sessions.nope  # noqa: B018


def test_answers_round_trip_through_their_file():
    text = ("servers: [{host: omero.example.org}, {host: 10.0.0.2, port: 4063, name: Plain}]\n"
            "public: {enabled: true, user: public, password: s3cr3t-pw, server: Plain}\n")
    a = answers.load_text(text)
    assert answers.load_text(a.to_yaml()) == a


# ------------------------------------------------------------------------------------------ servers
def test_servers_fill_their_defaults_and_become_the_server_list():
    a = answers.load_text("servers: [{host: omero.example.org}, {host: 10.0.0.2, port: 4063, name: Plain}]\n")
    assert a.servers == ({"host": "omero.example.org", "port": 4064, "name": "omero.example.org"},
                         {"host": "10.0.0.2", "port": 4063, "name": "Plain"})
    p = make_plan(a, state())
    assert json.loads(p.sets["omero.web.server_list"]) == [["omero.example.org", 4064, "omero.example.org"],
                                                           ["10.0.0.2", 4063, "Plain"]]


def test_no_servers_leave_omeros_default_and_removing_them_unsets_the_list():
    assert "omero.web.server_list" not in make_plan(answers.defaults(), state()).sets
    p = make_plan(answers.defaults(), state({"omero.web.server_list": '[["a", 4064, "a"]]'}))
    assert p.unsets == ["omero.web.server_list"]


def test_servers_are_read_back_from_a_live_config():
    config = {"omero.web.server_list": '[["omero.example.org", 4064, "Main"], ["b.example.org", 4063, "b.example.org"]]'}
    nested = answers_from_config(config, answers.defaults().to_nested())
    a = answers.validate(nested)
    assert [s["name"] for s in a.servers] == ["Main", "b.example.org"]
    assert make_plan(a, state(config)).config == []


@pytest.mark.parametrize("text, where", [
    ("servers: [{port: 4064}]\n", "servers[0]"),
    ("servers: [{host: 'bad host'}]\n", "servers[0].host"),
    ("servers: [{host: a.example.org, port: 70000}]\n", "servers[0].port"),
    ("servers: [{host: a.example.org, name: X}, {host: b.example.org, name: X}]\n", "servers[1].name"),
    ("servers: [{host: a.example.org, colour: red}]\n", "servers[0]"),
])
def test_bad_servers_name_the_entry_and_its_line(text, where):
    found = problems(text)
    assert any(f"a.yml:1: {where}" in p for p in found), found


def test_an_unreachable_server_is_a_warning_that_names_the_ports(monkeypatch):
    from omerowizard.run import preflight

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        up = listener.getsockname()[1]
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            down = s.getsockname()[1]  # bound, never listening: refused
        a = answers.load_text(f"servers: [{{host: 127.0.0.1, port: {up}, name: Up}}, "
                              f"{{host: 127.0.0.1, port: {down}, name: Down}}]\n")
        checks = preflight.checks(make_plan(a, state()))
    warned = preflight.warnings(checks)
    assert [c.message.split(" ")[0] for c in warned] == ["Down"]
    assert "4064 is Glacier2 over SSL, 4063 plain TCP" in warned[0].message
    assert not any(c.name == "OMERO.server" for c in preflight.failures(checks))


# ------------------------------------------------------------------------------------------ public access
PUBLIC = ("servers: [{host: a.example.org, name: A}, {host: b.example.org, name: B}]\n"
          "public: {enabled: true, user: public, password: 'pw-Zq81x!', url_filter: viewer, server: B}\n")


def test_public_access_sets_its_keys_with_the_server_index_and_the_preset_filter():
    from omerowizard.features.public import PRESETS

    p = make_plan(answers.load_text(PUBLIC), state())
    assert p.sets["omero.web.public.enabled"] == "true"
    assert p.sets["omero.web.public.user"] == "public"
    assert p.sets["omero.web.public.server_id"] == "2"
    assert p.sets["omero.web.public.url_filter"] == PRESETS["viewer"]
    assert "omero.web.public.get_only" not in p.sets  # true is OMERO's default


def test_the_public_password_is_masked_in_the_plan_and_everything_that_masks():
    a = answers.load_text(PUBLIC)
    p = make_plan(a, state())
    text = "\n".join(p.lines() + p.notes)
    assert "pw-Zq81x!" not in text and "omero.web.public.password: (unset) -> ****" in text
    assert "pw-Zq81x!" not in mask_text("fed: omero.web.public.password=pw-Zq81x!")
    assert catalogue.BY_KEY["public.password"].display("pw-Zq81x!") == "****"


def test_public_access_off_unsets_every_public_key_it_set():
    on = make_plan(answers.load_text(PUBLIC), state())
    config = dict(on.sets)
    off = make_plan(answers.load_text("servers: [{host: a.example.org, name: A}, {host: b.example.org, name: B}]\n"),
                    state(config))
    assert sorted(off.unsets) == sorted(k for k in on.sets if k.startswith("omero.web.public."))


def test_public_access_is_read_back_from_a_live_config():
    a = answers.load_text(PUBLIC)
    config = dict(make_plan(a, state()).sets)
    back = answers.validate(answers_from_config(config, answers.defaults().to_nested()))
    assert back.public.server == "B" and back.public.url_filter == "viewer" and back.public.password.reveal() == "pw-Zq81x!"
    assert make_plan(back, state(config)).config == []


@pytest.mark.parametrize("text, expected", [
    ("public: {enabled: true, password: secret1}\n", "public.user: is missing"),
    ("public: {enabled: true, user: public}\n", "public.password: is missing"),
    ("public: {enabled: true, user: public, password: abc}\n", "public.password: is shorter than 4"),
    ("public: {enabled: true, user: public, password: secret1, url_filter: '^/(web'}\n",
     "public.url_filter: '^/(web' is neither a preset nor a regular expression"),
    ("servers: [{host: a.example.org}]\npublic: {enabled: true, user: public, password: secret1, server: X}\n",
     "public.server: 'X' is not the name of one of servers (allowed: a.example.org)"),
])
def test_bad_public_answers_are_refused_with_the_field(text, expected):
    assert any(expected in p for p in problems(text)), problems(text)


def test_a_bad_public_password_is_never_echoed_in_the_message():
    found = problems("public: {enabled: true, user: public, password: \"bad\\u0007pw\"}\n")
    assert not any("bad" in p for p in found), found


# ------------------------------------------------------------------------------------------ checked extra settings
SETTINGS_PY = '''
CUSTOM_SETTINGS_MAPPINGS = {
    "omero.web.server_list": ["SERVER_LIST", '[["localhost", 4064, "omero"]]', json.loads, "servers"],
    "omero.web.login_logo": ["LOGIN_LOGO", None, leave_none_unset, None],
    "omero.web.ping_interval": ["PING_INTERVAL", 60000, int, None],
    "omero.web.public.enabled": ["PUBLIC_ENABLED", "false", parse_boolean, None],
    "omero.web.ui.top_links": ["TOP_LINKS", "[]", json.loads, None],
}
'''
APP_SETTINGS_PY = '''
CUSTOM_SETTINGS_MAPPINGS = {"omero.web.figure.max_active_channels": ["MAX_ACTIVE", 10, int, None]}
'''


@pytest.fixture
def venv(tmp_path):
    """An OMERO.web environment as pip lays it out: omeroweb's settings.py, its dist-info, an app."""
    site = tmp_path / "venv" / "lib" / "python3.11" / "site-packages"
    (site / "omeroweb").mkdir(parents=True)
    (site / "omeroweb" / "settings.py").write_text(SETTINGS_PY)
    (site / "omero_web-5.33.2.dist-info").mkdir()
    (site / "omero_figure").mkdir()
    (site / "omero_figure" / "settings.py").write_text(APP_SETTINGS_PY)
    return tmp_path / "venv"


def extra(venv, body: str) -> list[str]:
    return problems(f"omero: {{venv: {venv}}}\nextra_config:\n{body}")


def test_a_key_omero_web_does_not_declare_is_refused_with_did_you_mean(venv):
    found = extra(venv, "  omero.web.server_lsit: x\n")
    assert any("a.yml:3: extra_config.omero.web.server_lsit: is not a setting of omero-web 5.33.2" in p
               and "did you mean omero.web.server_list?" in p for p in found), found


@pytest.mark.parametrize("body, expected", [
    ("  omero.web.ping_interval: soon\n", "'soon' is not an integer: omero-web 5.33.2 reads omero.web.ping_interval as int"),
    ("  omero.web.ui.top_links: '[oops'\n", "is not JSON"),
])
def test_a_value_is_checked_against_the_type_omero_web_reads_it_as(venv, body, expected):
    assert any(expected in p for p in extra(venv, body)), extra(venv, body)


def test_a_key_a_feature_owns_names_the_question_and_is_not_circular(venv):
    found = extra(venv, "  omero.web.public.enabled: maybe\n")
    assert any("is set by the answer public.enabled, not by extra_config (allowed: remove it from extra_config and "
               "answer public.enabled)" in p for p in found), found


def test_declared_settings_installed_apps_settings_and_right_types_are_accepted(venv):
    a = answers.load_text(f"omero: {{venv: {venv}}}\nextra_config:\n  omero.web.login_logo: /logo.png\n"
                          "  omero.web.ping_interval: 30000\n  omero.web.ui.top_links: [[Figure, figure_index]]\n"
                          "  omero.web.figure.max_active_channels: 12\n")
    assert a.extra_config["omero.web.ping_interval"] == 30000


def test_the_declared_settings_are_cached_per_omero_web_version(venv):
    from omerowizard.system import locations
    from omerowizard.features.extra import declared_settings

    version, settings, prefixes = declared_settings(str(venv))
    assert version == "5.33.2" and settings["omero.web.public.enabled"] == "bool"
    assert prefixes == {"omero.web.figure."}
    assert (locations.cache_dir() / "omero-web-settings-5.33.2.json").exists()
