"""Secrets are a type (issue 21, "What to build" 4 and "Why" 5): a secret is masked wherever it is shown,
whatever run set it: an older backup's, one the OMERO.web user wrote into config.xml, one in a Redis URL.
Against the real omero: two applies with different secrets, then `rollback --list`, `rollback --dry-run`,
`rollback`, `apply --dry-run --json` and the command log, none of which may print a secret in clear."""

from __future__ import annotations

import json

import pytest

from tests import parts
from tests.e2e.test_safety import digest

# each long enough for nodes.secret_key (50 printable characters, varied)
KEY_1 = "First-Django-Key-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1"
KEY_2 = "Second-Django-Key-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb2"
KEY_PLANTED = "Planted-By-Omero-Web-cccccccccccccccccccccccccccccccccccccccccccc3"
KEY_3 = "Third-Django-Key-dddddddddddddddddddddddddddddddddddddddddddddddd4"
PW_1, PW_2, PW_3 = "pw-One-7731", "pw-Two-8842", "pw-Three-9953"
REDIS_PW_1, REDIS_PW_2 = "redis-pw-One", "redis-pw-Two"
SECRETS = (KEY_1, KEY_2, KEY_PLANTED, KEY_3, PW_1, PW_2, PW_3, REDIS_PW_1, REDIS_PW_2)


@pytest.fixture
def redis_pair(tmp_path):
    """Two real Redis servers, each with its own password (each apply's preflight PINGs its Redis)."""
    made = [parts.Redis(tmp_path / f"redis-{n}", password=pw).start() for n, pw in enumerate((REDIS_PW_1, REDIS_PW_2))]
    yield {r.password: r for r in made}
    for r in made:
        r.stop()


def answers(d, key: str, password: str, redis) -> dict:
    return {"start": False, "application_server": {"workers": 1},
            "web_server": {"kind": "nginx", "config_path": str(d.workdir / "site.conf")},
            "sessions": {"backend": "redis", "location": redis.url,
                         "clearsessions": "off"},
            "public": {"enabled": True, "user": "public", "password": password},
            "nodes": {"secret_key": key}}


def in_clear(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


def test_rollback_list_dry_run_rollback_json_and_the_log_never_show_a_secret(deployment, redis_pair):
    d = deployment
    for n, (key, pw, rpw) in enumerate([(KEY_1, PW_1, REDIS_PW_1), (KEY_2, PW_2, REDIS_PW_2)]):
        proc = d.cli("apply", str(d.answers_file(answers(d, key, pw, redis_pair[rpw]), name=f"{n}.yml")))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert not in_clear(proc.stdout + proc.stderr), proc.stdout + proc.stderr
    assert d.config()["omero.web.secret_key"] == KEY_2 and d.config()["omero.web.public.password"] == PW_2

    # the OMERO.web user changes the key in config.xml itself, as an attacker (or a colleague) would
    d.omero("config", "set", "omero.web.secret_key", KEY_PLANTED)

    listing = d.cli("rollback", "--list")
    assert listing.returncode == 0, listing.stdout + listing.stderr
    assert "nodes.secret_key: **** -> ****" in listing.stdout, listing.stdout
    assert "public.password: **** -> ****" in listing.stdout, listing.stdout
    assert "redis://:****@127.0.0.1:" in listing.stdout, listing.stdout
    assert not in_clear(listing.stdout + listing.stderr), listing.stdout

    before = digest(d.config_xml)
    dry = d.cli("rollback", "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "omero.web.secret_key: **** -> ****" in dry.stdout, dry.stdout
    assert "omero.web.public.password: **** -> ****" in dry.stdout, dry.stdout
    assert not in_clear(dry.stdout + dry.stderr), dry.stdout
    assert digest(d.config_xml) == before

    back = d.cli("rollback")
    assert back.returncode == 0, back.stdout + back.stderr
    assert not in_clear(back.stdout + back.stderr), back.stdout + back.stderr
    assert d.config()["omero.web.secret_key"] == KEY_1 and d.config()["omero.web.public.password"] == PW_1

    # the JSON report of a dry run that would change each secret: masked there too
    check = d.cli("apply", str(d.answers_file(answers(d, KEY_3, PW_3, redis_pair[REDIS_PW_2]), name="3.yml")), "--dry-run",
                  "--json", "--show-diff")
    report = json.loads(check.stdout)
    keys = {c["key"]: c for c in report["plan"]["config"]}
    assert keys["omero.web.secret_key"]["old"] == "****" and keys["omero.web.secret_key"]["new"] == "****"
    assert not in_clear(check.stdout + check.stderr), check.stdout + check.stderr

    log = d.state.command_log.read_text()
    assert "omero.web.public.password=****" in log, log[-3000:]
    assert not in_clear(log), [s for s in SECRETS if s in log]
