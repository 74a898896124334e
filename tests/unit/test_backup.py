"""Backups and restores of one deployment: a restore never stops at its first failure, records each
item's progress, and the next restore finishes the rest; old backups are pruned."""

from __future__ import annotations

import pytest

from omerowizard.run import rollback
from omerowizard.system import backups as backup
from omerowizard.system.deployments import Deployment


@pytest.fixture
def dep(tmp_path):
    return Deployment(tmp_path / "omerodir").ensure()


def test_a_restore_goes_past_a_failing_item_and_the_next_one_finishes(dep, tmp_path):
    one, two = tmp_path / "a" / "one.conf", tmp_path / "b" / "two.conf"
    for f in (one, two):
        f.parent.mkdir()
        f.write_text("before\n")
    b = backup.Backup.create(deployment=dep, user="nobody", venv="/v", was_running=False, paths=[one, two],
                             crontab=False)
    one.write_text("after\n")
    two.write_text("after\n")
    # the first item cannot be restored: its directory became a file
    one.unlink()
    one.parent.rmdir()
    one.parent.write_text("in the way")
    restored, failed = b.restore()
    assert restored == [str(two)] and len(failed) == 1 and str(one) in failed[0]
    assert two.read_text() == "before\n"
    assert b.manifest.status == "failed-restore"
    assert [x.id for x in backup.unfinished(dep)] == [b.id]
    one.parent.unlink()
    again = backup.all_backups(dep)[0]
    restored, failed = again.restore()
    assert restored == [str(one)] and not failed
    assert one.read_text() == "before\n" and again.manifest.status == "restored"
    assert backup.unfinished(dep) == []


def test_a_file_that_did_not_exist_is_removed_and_a_link_put_back(dep, tmp_path):
    new, link = tmp_path / "new.conf", tmp_path / "enabled"
    link.symlink_to("/etc/hostname")
    b = backup.Backup.create(deployment=dep, user="nobody", venv="/v", was_running=False, paths=[new, link],
                             crontab=False)
    new.write_text("x")
    link.unlink()
    b.restore()
    assert not new.exists() and link.is_symlink() and str(link.readlink()) == "/etc/hostname"


def test_old_finished_backups_are_pruned_unfinished_ones_kept(dep, tmp_path):
    made = []
    for i in range(5):
        b = backup.Backup.create(deployment=dep, user="nobody", venv="/v", was_running=False, paths=[], crontab=False)
        if i != 0:
            b.finish("done")
        made.append(b.id)
    removed = backup.prune(dep, keep=2)
    left = [b.id for b in backup.all_backups(dep)]
    assert made[0] in left, "the unfinished one is kept"
    assert left[:2] == [made[4], made[3]] and sorted(removed) == [made[1], made[2]]


def test_answers_summary_names_what_a_run_changed():
    assert rollback.answers_summary("prefix: /a\ncors: {mode: 'off'}\n", "prefix: /b\ncors: {mode: 'off'}\n") == \
        ["prefix: /a -> /b"]


def test_the_list_of_backups_has_an_answer_a_line_and_no_line_wider_than_the_terminal(dep, monkeypatch):
    """The first entry of `rollback --list` was one line of about 1,500 characters (issue 26)."""
    monkeypatch.setenv("COLUMNS", "80")
    b = backup.Backup.create(deployment=dep, user="nobody", venv="/v", was_running=False, paths=[], crontab=False)
    b.manifest.answers_before = "prefix: /a\nservers: []\n"
    origins = ", ".join(f"https://lab{i}.example.org" for i in range(40))
    b.finish("done", answers_after=f"prefix: /b\nservers: [{{host: omero.example.org}}]\ncors: {{mode: origins, "
                                   f"origins: [{origins}]}}\n")
    lines = rollback.list_backups(dep)
    assert max(len(line) for line in lines) <= 80, max(lines, key=len)
    text = "\n".join(lines)
    assert "\n      prefix: /a -> /b\n" in text and "lab39.example.org" in text
