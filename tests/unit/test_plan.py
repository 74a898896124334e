"""Planning is a pure function of answers and state: only differences, with OMERO's defaults left unset."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from omerowizard.catalogue import answers, config as omeroconfig
from omerowizard.system.omero import OmeroTarget
from omerowizard.plan.planner import make_plan
from omerowizard.state.probe import State

ALL = {"django": "5.2", "omero-web": "5.33.2", "django-redis": "5", "pymemcache": "4", "django-cors-headers": "3.7.0"}


def state(config=None, running=True, packages=ALL) -> State:
    target = OmeroTarget("omero-web", Path("/nonexistent/venv"), Path("/nonexistent/omerodir"))
    return State(target=target, installed=True, config=dict(config or {}), packages=dict(packages),
                 running_pid=1 if running else None)


def plan(text: str, **kw):
    return make_plan(answers.load_text(text), state(**kw))


def apply_to(config: dict, p) -> dict:
    out = dict(config)
    out.update(p.sets)
    for k in p.unsets:
        out.pop(k, None)
    return out


def test_defaults_against_a_fresh_deployment_change_nothing_but_start():
    p = plan("{}\n", running=False)
    assert p.config == [] and p.packages == []
    assert p.web and p.web.action == "start"


def test_prefix_and_static_url_set_together():
    p = plan("prefix: /omero\n")
    assert p.sets == {"omero.web.prefix": "/omero", "omero.web.static_url": "/omero/static/"}
    assert p.web.action == "restart"


def test_redis_sessions_and_the_package_they_need():
    p = plan("sessions: {backend: redis, location: 'redis://:secret@127.0.0.1:6379/0'}\n",
             packages={"django": "5.2"})
    assert p.sets["omero.web.session_engine"] == "django.contrib.sessions.backends.cache"
    assert json.loads(p.sets["omero.web.caches"]) == {"default": {"BACKEND": "django_redis.cache.RedisCache",
                                                                  "LOCATION": "redis://:secret@127.0.0.1:6379/0"}}
    assert [c.requirement for c in p.packages] == ["django-redis"]
    assert "secret" not in "\n".join(p.lines())


def test_memcached_uses_the_backend_the_installed_django_has_and_says_why():
    p = plan("sessions: {backend: memcached}\n")
    caches = json.loads(p.sets["omero.web.caches"])
    assert caches["default"]["BACKEND"] == omeroconfig.PYMEMCACHE_BACKEND
    assert any("removed in Django 4.1" in n for n in p.notes)
    assert any("DEPRECATED" in n for n in p.notes)


def test_cors_on_then_off_restores_the_original_config():
    base = {"omero.web.apps": '["omero_iviewer"]'}
    on = make_plan(answers.load_text("cors: {mode: origins, origins: ['https://a.example.org']}\n"), state(base))
    after_on = apply_to(base, on)
    assert json.loads(after_on["omero.web.apps"]) == ["omero_iviewer", "corsheaders"]
    mw = json.loads(after_on["omero.web.middleware"])
    assert mw[:6] == omeroconfig.DEFAULT_MIDDLEWARE and [m["index"] for m in mw[6:]] == [0.5, 10]
    off = make_plan(answers.load_text("cors: {mode: 'off'}\n"), state(after_on))
    assert apply_to(after_on, off) == base
    assert set(off.unsets) == {"omero.web.middleware", "omero.web.cors_origin_whitelist"}


def test_equal_answers_and_state_give_an_empty_plan():
    # development kind: no web-server files, so only the config is compared (files have their own tests)
    a = answers.load_text("web_server: {kind: development}\napplication_server: {port: 4100}\n"
                          "sessions: {backend: redis}\ncors: {mode: all}\n")
    first = make_plan(a, state())
    second = make_plan(a, state(apply_to({}, first)))
    assert second.empty, second.lines()


def test_keys_set_explicitly_to_the_default_are_left_alone():
    p = plan("web_server: {kind: development}\nsessions: {clearsessions: 'off'}\n",
             config={"omero.web.application_server": "development",
                                                              "omero.web.session_cookie_age": "86400",
                             "omero.web.session_expire_at_browser_close": "True"})
    assert p.empty


def test_development_server_is_flagged_for_testing_only():
    p = plan("web_server: {kind: development}\n")
    assert p.sets["omero.web.application_server"] == "development"
    assert any("testing only" in n for n in p.notes)


def test_removed_extra_config_is_unset_on_the_next_run():
    prev = answers.load_text("extra_config: {omero.web.login_logo: /static/x.png}\n")
    cur = answers.load_text("{}\n")
    p = make_plan(cur, state({"omero.web.login_logo": "/static/x.png"}), previous=prev)
    assert p.unsets == ["omero.web.login_logo"]


def test_an_unset_key_shows_the_value_omero_uses_meanwhile():
    from omerowizard.plan.changes.config import ConfigChange

    assert ConfigChange("omero.web.wsgi_workers", None, "3", "").change() == \
        "omero.web.wsgi_workers: (unset: OMERO's default 5) -> 3"
    assert ConfigChange("omero.web.wsgi_workers", "3", None, "").change() == \
        "omero.web.wsgi_workers: 3 -> (unset: OMERO's default 5)"
    assert ConfigChange("omero.web.prefix", None, "/omero", "").change() == "omero.web.prefix: (unset) -> /omero"


def test_a_cors_change_on_a_running_gunicorn_is_a_graceful_reload():
    p = plan("cors: {mode: origins, origins: ['https://a.example.org']}\n")
    assert p.web.action == "reload" and p.web.reasons == ()
    assert p.web.collectstatic  # omero.web.apps changed: its static files are collected first
    steps = p.steps()  # (a check through the web server may follow, when this machine's nginx runs)
    assert steps[steps.index("collect static files"):][:3] == ["collect static files", "reload OMERO.web",
                                                               "check the login page"]
    assert any("new gunicorn workers replace the old ones" in line for line in p.lines())


def test_session_and_cookie_changes_reload_without_collecting_static_files():
    p = plan("sessions: {cookie_age: 3600, expire_at_browser_close: false}\n")
    assert p.web.action == "reload" and not p.web.collectstatic


def test_an_added_app_collects_static_files_before_the_reload():
    p = plan("cors: {mode: all}\n", packages={k: v for k, v in ALL.items() if k != "django-cors-headers"})
    assert p.web.action == "reload" and p.web.collectstatic
    steps = p.steps()  # (a check through the web server may follow, when this machine's nginx runs)
    assert steps[steps.index("collect static files"):][:3] == ["collect static files", "reload OMERO.web",
                                                               "check the login page"]


def test_unknown_extra_settings_reload():
    assert plan("extra_config: {omero.web.login_logo: /static/x.png}\n").web.action == "reload"


def test_gunicorn_settings_restart_and_the_review_says_which_and_why():
    p = plan("application_server: {port: 4090, workers: 3}\ncors: {mode: all}\n")
    assert p.web.action == "restart"
    text = "\n".join(p.lines())
    assert "omero.web.application_server.port changed: gunicorn's --bind port" in text
    assert "omero.web.wsgi_workers changed: gunicorn's --workers" in text


def test_extra_gunicorn_settings_restart():
    for key in ("omero.web.wsgi_args", "omero.web.application_server.max_requests", "omero.web.wsgi_worker_class"):
        p = plan(f"extra_config: {{{key}: '2'}}\n")
        assert p.web.action == "restart", key


def test_a_development_server_restarts():
    s = state()
    s = dataclasses.replace(s, development_running=True)
    p = make_plan(answers.load_text("sessions: {cookie_age: 3600}\n"), s)
    assert p.web.action == "restart"


def upgrade_state(installed: str, wanted: str, install: dict, **kw) -> State:
    from omerowizard.features.upgrade import Measured

    s = state(packages={**ALL, "omero-web": installed, "omero-py": "5.19.0", "django": "4.2.16"}, **kw)
    s = dataclasses.replace(s, upgrade=Measured(wanted, (f"omero-web=={wanted}",), install))
    return s


def test_an_upgrade_lists_the_versions_and_the_notes_crossed_and_restarts():
    s = upgrade_state("5.29.2", "5.33.2", {"omero-web": "5.33.2", "omero-py": "5.23.0", "django": "5.2.19",
                                          "django-redis": "7.0.0"})
    p = make_plan(answers.load_text("omero: {web_version: '5.33.2'}\n"), s)
    assert p.upgrade and p.upgrade.verb == "upgrade" and p.upgrade.clear_sessions
    text = "\n".join(p.lines())
    assert "upgrade omero-web 5.29.2 -> 5.33.2" in text
    for line in ("omero-web: 5.29.2 -> 5.33.2", "omero-py: 5.19.0 -> 5.23.0", "django: 4.2.16 -> 5.2.19",
                 "django-redis: 5 -> 7.0.0"):
        assert line in text, line
    assert "5.30 removed Pickle sessions" in text and "5.31 requires Django 5.2" in text
    assert p.web.action == "restart" and "never a mere reload" in p.web.reasons[0]
    assert p.steps()[:2] == ["upgrade OMERO.web", "clear the session store"]


def test_an_upgrade_between_releases_without_notes_clears_nothing():
    s = upgrade_state("5.33.1", "5.33.2", {"omero-web": "5.33.2"})
    p = make_plan(answers.load_text("omero: {web_version: '5.33.2'}\n"), s)
    assert p.upgrade and not p.upgrade.clear_sessions and p.upgrade.notes == ()


def test_an_upgrade_lists_only_the_packages_that_change_and_names_the_others_once():
    """It listed unchanged packages as changes ("omero-py: 5.23.0 -> 5.23.0", issue 26)."""
    from omerowizard.features.upgrade import Measured

    s = upgrade_state("5.33.1", "5.33.2", {"omero-web": "5.33.2"})
    s = dataclasses.replace(s, upgrade=Measured("5.33.2", ("omero-web==5.33.2", "django-cors-headers"), {"omero-web": "5.33.2"}))
    p = make_plan(answers.load_text("omero: {web_version: '5.33.2'}\ncors: {mode: all}\n"), s)
    text = "\n".join(p.lines())
    assert "omero-web: 5.33.1 -> 5.33.2" in text
    assert "3.7.0 -> 3.7.0" not in text and "5.19.0 -> 5.19.0" not in text, text
    assert "unchanged: omero-py 5.19.0, django 4.2.16, django-cors-headers 3.7.0" in text, text


def test_the_installed_version_plans_no_upgrade():
    p = make_plan(answers.load_text("omero: {web_version: '5.33.2'}\n"), state())
    assert p.upgrade is None and p.web is None


def test_redis_sessions_upgrade_to_5_31_ask_for_django_redis_6():
    from omerowizard.features import upgrade
    assert upgrade.requirements("5.33.2", "redis", True) == ["omero-web==5.33.2", "django-redis>=6",
                                                             "django-cors-headers"]
    assert upgrade.requirements("5.29.2", "file", False) == ["omero-web==5.29.2"]
    assert [c for c, _ in upgrade.notes_between("5.33.2", "5.29.2")] == [True, True]  # a downgrade crosses them too
