"""Secrets are a type (issue 21): a Secret shows itself as **** wherever it is printed; which config keys
and answers are secret is known by key, so a secret is masked whatever run set it (an older backup,
config.xml), not only once the current answers have been validated."""

from __future__ import annotations

import json
import pickle
import time

import pytest
import yaml

from omerowizard.catalogue import answers
from omerowizard.system import backups as backup
from omerowizard.catalogue import masking as answers_masking
from omerowizard.model import secrets as masking
from omerowizard.run import rollback
from omerowizard.model.errors import AnswersError, OmeroCommandError
from omerowizard.features.base import to_text
from omerowizard.model.secrets import MASK, Secret, mask_urls, reveal

KEY = "Shared-Django-Key-abcdefghijklmnopqrstuvwxyz-0123456789-XYZ"
PW = "pw-Zq81x!"


def test_a_secret_shows_itself_masked_and_compares_by_value():
    s = Secret(PW)
    assert str(s) == MASK and repr(s) == "Secret('****')" and f"{s}" == MASK and f"{s:>6}" == "  ****"
    assert "%s" % s == MASK and PW not in f"{[s]} {dict(a=s)} {(s,)}"
    assert s.reveal() == PW and Secret(s).reveal() == PW
    assert s == Secret(PW) and s != Secret("other") and s != PW and hash(s) == hash(Secret(PW))
    assert bool(s) and not Secret("")
    assert pickle.loads(pickle.dumps(s)) == s
    with pytest.raises(AttributeError):
        s._value = "x"
    with pytest.raises(TypeError):
        Secret(1234)
    assert reveal({"a": [s, (s,)], "b": 1}) == {"a": [PW, (PW,)], "b": 1}


def test_the_answers_model_holds_secrets_as_the_type_and_writes_them_where_they_belong():
    a = answers.validate({"public": {"enabled": True, "user": "public", "password": PW},
                          "nodes": {"secret_key": KEY}})
    assert isinstance(a.public.password, Secret) and isinstance(a.nodes.secret_key, Secret)
    assert PW not in repr(a) and KEY not in repr(a) and PW not in str(a.public)
    # the three places that write it: config.xml's value, the answers file, the front ends' prefill
    assert to_text(a.public.password) == PW
    assert yaml.safe_load(a.to_yaml())["public"]["password"] == PW and a.flat()["nodes.secret_key"] == KEY
    assert answers.validate(a.to_nested()) == a


def test_a_refused_secret_is_never_named_in_the_message():
    with pytest.raises(AnswersError) as info:
        answers.validate({"nodes": {"secret_key": "short-Secret-value"}, "public": {"enabled": True, "user": "u",
                                                                                    "password": 12345678}})
    text = info.value.render()
    assert "short-Secret-value" not in text and "12345678" not in text, text
    assert "nodes.secret_key" in text and "public.password" in text


@pytest.mark.parametrize("key,secret", [
    ("omero.web.public.password", True), ("omero.web.secret_key", True), ("omero.web.myapp.api_token", True),
    ("omero.web.ldap.bind_password", True), ("omero.web.prefix", False), ("omero.web.caches", False),
    ("omero.web.session_cookie_secure", False),
])
def test_config_keys_are_secret_by_what_the_features_declare_or_their_name(key, secret):
    assert masking.config_secret(key) is secret
    assert (masking.config_value(key, "value-1234") == MASK) is secret


def test_text_is_masked_by_key_whatever_run_set_the_value():
    # nothing validated these values in this process: masking needs no registry of values seen
    fed = "omero.web.public.password=never-seen-1\nomero.web.prefix=/omero\n    omero.web.secret_key=never-seen-2\n"
    assert masking.mask_text(fed) == "omero.web.public.password=****\nomero.web.prefix=/omero\n" \
                                     "    omero.web.secret_key=****\n"
    commands = "config set -- omero.web.public.password 'never seen 3 '\nconfig set omero.web.prefix /x\n"
    assert masking.mask_text(commands) == "config set -- omero.web.public.password ****\nconfig set omero.web.prefix /x\n"
    as_json = json.dumps({"omero.web.secret_key": "never-seen-4", "omero.web.caches": "redis://:pw4@h:1/0"})
    assert "never-seen-4" not in masking.mask_text(as_json) and "pw4" not in masking.mask_text(as_json)
    assert masking.mask_text("omero said: never-seen-5 is wrong", known={"never-seen-5"}) == "omero said: **** is wrong"
    argv = ["/v/bin/omero", "config", "set", "--", "omero.web.secret_key", "never-seen-6"]
    assert masking.mask_argv(argv) == ["/v/bin/omero", "config", "set", "--", "omero.web.secret_key", MASK]
    assert "never-seen-6" not in str(OmeroCommandError(masking.mask_argv(argv), 1, ""))


@pytest.mark.parametrize("make", [lambda n: "omero." * n, lambda n: "omero.web." + "a" * n,
                                  lambda n: "omero.web.password " * (n // 20), lambda n: "omero.web.x=" * (n // 12),
                                  lambda n: ("omero.web.secret_key:" + " " * 50) * (n // 70)])
def test_masking_by_key_is_linear(make):
    value = make(200_000)
    start = time.perf_counter()
    masking.mask_text(value)
    assert time.perf_counter() - start < 1


def test_answers_summary_masks_the_secrets_of_any_run():
    def text(key, pw, redis_pw, extra_pw):
        return yaml.safe_dump({"nodes": {"secret_key": key}, "public": {"enabled": True, "password": pw},
                               "sessions": {"location": f"redis://:{redis_pw}@127.0.0.1:6379/0"},
                               "extra_config": {"omero.web.myapp.password": extra_pw}})

    lines = rollback.answers_summary(text("Old-Key-" + "o" * 50, "old-pw-1", "old-redis", "old-extra"),
                                   text("New-Key-" + "n" * 50, "new-pw-2", "new-redis", "new-extra"))
    shown = "\n".join(lines)
    for s in ("Old-Key-", "New-Key-", "old-pw-1", "new-pw-2", "old-redis", "new-redis", "old-extra", "new-extra"):
        assert s not in shown, shown
    assert "nodes.secret_key: **** -> ****" in lines and "public.password: **** -> ****" in lines
    assert "sessions.location: redis://:****@127.0.0.1:6379/0 -> redis://:****@127.0.0.1:6379/0" in lines
    assert "extra_config.omero.web.myapp.password: **** -> ****" in lines


def test_urls_keep_their_password_masking():
    assert mask_urls("redis://:p@ss@127.0.0.1:6379/0") == "redis://:****@127.0.0.1:6379/0"
    assert answers_masking.answer_value("sessions.location", "redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert answers_masking.answer_value("sessions.location", "redis://:x1y2@h:1/0") == "redis://:****@h:1/0"


def test_every_config_key_a_feature_marks_secret_is_masked_by_its_name():
    """Masking of config values knows no feature (the system layer masks omero's output too): it goes by the key's
    name. Every key a feature declares secret must be named so."""
    from omerowizard.catalogue import KEYS

    secret = [k for k, spec in KEYS.items() if spec.secret]
    assert secret and all(masking.config_secret(k) for k in secret), secret

