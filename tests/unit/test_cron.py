"""The managed clearsessions line: one per OMERODIR, every other crontab line kept byte for byte."""

from __future__ import annotations

import pytest

from omerowizard.catalogue import answers
from omerowizard.features import sessions as sessions_feature
from omerowizard.system import crontab as cron

OTHER = "# keep me\nMAILTO=admin@example.org\n0  3 * * *   /usr/local/bin/backup   # nightly\n@reboot echo hi\n"


def a(**sessions):
    return answers.validate({"omero": {"omerodir": "/srv/OMERO.web", "venv": "/srv/venv3"},
                             "sessions": sessions})


def test_daily_line_runs_clearsessions_with_omerodir_set():
    line = sessions_feature.clearsessions_line(a())
    assert line == ("@daily OMERODIR=/srv/OMERO.web /srv/venv3/bin/omero web clearsessions "
                    "# omerowizard: clearsessions OMERODIR=/srv/OMERO.web")


@pytest.mark.parametrize("schedule, fields", [("hourly", "@hourly"), ("30 3 * * *", "30 3 * * *"),
                                              ("*/15 1-3 * * 1,2", "*/15 1-3 * * 1,2")])
def test_schedules(schedule, fields):
    assert sessions_feature.clearsessions_line(a(clearsessions=schedule)).startswith(fields + " OMERODIR=")


@pytest.mark.parametrize("sessions", [{"clearsessions": "off"}, {"backend": "redis"}, {"backend": "memcached"}])
def test_no_line_for_cache_sessions_or_off(sessions):
    assert sessions_feature.clearsessions_line(a(**sessions)) is None


def test_replace_keeps_every_other_line_and_collapses_duplicates():
    line = sessions_feature.clearsessions_line(a())
    twice = OTHER + line + "\n" + line.replace("@daily", "@hourly") + "\n"
    out = cron.replace_managed(twice, "/srv/OMERO.web", line)
    assert out == OTHER + line + "\n"
    assert cron.replace_managed(out, "/srv/OMERO.web", None) == OTHER
    assert cron.replace_managed(out, "/srv/OMERO.web", line) == out


def test_lines_of_another_omerodir_are_not_ours():
    mine = sessions_feature.clearsessions_line(a())
    theirs = mine.replace("/srv/OMERO.web", "/srv/OMERO.web2")
    text = theirs + "\n" + mine + "\n"
    assert cron.managed_lines(text, "/srv/OMERO.web") == [mine]
    assert cron.replace_managed(text, "/srv/OMERO.web", None) == theirs + "\n"


def test_a_crontab_without_final_newline_keeps_its_last_line():
    line = sessions_feature.clearsessions_line(a())
    assert cron.replace_managed("@reboot x", "/srv/OMERO.web", line) == f"@reboot x\n{line}\n"
