"""The benchmark's own logic: the manual route it times ends at the wizard's config, the pty
reader sees text through escape sequences, and goals are judged the right way round."""

from __future__ import annotations

import json
import shlex
import sys

from bench import manual, status
from bench.run import Figure, table
from bench.terminal import time_to_text, visible_text
from bench.timing import Series
from omerowizard.catalogue import answers, config as omeroconfig


def run_manual(commands: list[list[str]]) -> dict[str, str]:
    """What the manual commands store, following omero's semantics (append starts from the default)."""
    config: dict[str, str] = {}
    for argv in commands:
        assert argv[:2] == ["omero", "config"]
        verb, key, value = argv[2:]
        if verb == "set":
            config[key] = value
        else:
            assert verb == "append"
            current = json.loads(config.get(key) or omeroconfig.DEFAULTS[key])
            config[key] = json.dumps(current + [json.loads(value)])
    return config


def test_manual_commands_store_what_the_wizard_plans():
    d = manual.Deployment(app_port=41234)
    a = answers.validate(d.answers("omero-web", "/opt/v", "/opt/d", "/tmp/x.conf"), "<bench>")
    wanted = {k: v for k, v in omeroconfig.wanted_config(a, {}).values.items() if v is not None}
    assert run_manual(manual.commands(d)) == wanted
    assert len(wanted) == 11


def test_manual_script_is_the_seed_commands_and_the_nginx_file():
    d = manual.Deployment(app_port=41234)
    text = manual.script(d, "/tmp/o.conf")
    lines = [line for line in text.splitlines() if line.startswith("omero ")]
    assert len(lines) == manual.process_count(d) == 13
    assert shlex.split(lines[8]) == ["omero", "config", "append", "omero.web.apps", '"corsheaders"']
    assert lines[-1].endswith("> /tmp/o.conf") and "web config nginx --http 80" in lines[-1]


def test_visible_text_drops_escape_sequences():
    raw = "\x1b[?1049h\x1b[2J\x1b[3;5H\x1b[38;2;255;255;255;48;2;0;0;0mWelcome to omerowizard\x1b[0m\x1b]0;t\x07"
    assert visible_text(raw) == "Welcome to omerowizard"


def test_time_to_text_in_a_pty_and_a_program_that_never_draws_it():
    env = {"TERM": "xterm-256color", "PATH": "/usr/bin:/bin"}
    got = time_to_text([sys.executable, "-c", "import sys; print(sys.stdout.isatty() and 'hello tty')"], "hello tty",
                       env)
    assert got.seconds is not None and got.seconds < 10
    never = time_to_text([sys.executable, "-c", "print('something else')"], "hello tty", env, timeout=5)
    assert never.seconds is None and "something else" in never.tail


def series(label: str, *runs: float) -> Series:
    return Series(label, label, list(runs))


def test_goals_are_judged_the_right_way_round():
    fast = Figure(1, "apply", series("w", 2.0, 2.2, 2.1), series("m", 12.0, 11.0, 13.0), faster_is_ratio=True)
    assert fast.speedup == 12.0 / 2.1 and fast.goal_met is True and fast.ratio_text() == "5.7x faster"
    slow = Figure(1, "apply", series("w", 3.0), series("m", 12.0), faster_is_ratio=True)
    assert slow.goal_met is False
    assert Figure(2, "rerun", series("w", 1.6), series("b", 1.0)).goal_met is False
    assert Figure(2, "rerun", series("w", 1.4), series("b", 1.0)).goal_met is True
    assert Figure(3, "tui", series("w", 1.2), series("b", 0.9)).goal_met is False  # under 2x but not under 1 s
    missing = Figure(3, "tui", series("w"), series("b", 0.3), status="not yet available")
    assert missing.goal_met is None
    assert "not yet available" in table([missing])


def test_readme_section_is_replaced_between_its_markers(tmp_path):
    from bench import readme
    from bench.run import Figure

    fig = Figure(2, "rerun", series("omerowizard apply", 0.3), series("one omero config get", 1.0), goal="at most 1.5x")
    result = {"date": "2026-11-21T20:00:00+00:00", "repeat": 5, "warmup": 1,
              "machine": {"nproc": 2, "cpu": "AMD EPYC", "os": "Linux", "python": "3.11.7", "loadavg_at_start": [1.5]},
              "versions": {"omero-web": "5.33.2", "textual": "8.2.8", "git_commit": "abc1234"},
              "figures": [fig.as_dict()]}
    path = tmp_path / "README.md"
    path.write_text(f"# x\n## Benchmarks\nintro\n{readme.BEGIN}\nold table\n{readme.END}\n## After\n")
    assert readme.update(path, result) is True
    text = path.read_text()
    assert "old table" not in text and text.endswith(f"{readme.END}\n## After\n") and "intro" in text
    assert "| 2 | rerun | 0.30 s | one omero config get | 1.00 s | 0.30x | at most 1.5x | yes |" in text
    assert "2 x AMD EPYC" in text and "2026-11-21 20:00 UTC" in text
    assert readme.update(path, result) is False


def test_the_status_figure_is_judged_against_two_omero_web_status_and_written_for_the_docs():
    assert status.goal_met(series("s", 1.1, 1.3, 1.2), series("o", 0.7, 0.6, 0.65)) is True  # 1.2 / 0.65 = 1.85
    assert status.goal_met(series("s", 1.5), series("o", 0.7)) is False  # 2.14x
    assert status.goal_met(series("s"), series("o", 0.7)) is None
    result = {"date": "2026-12-03T14:00:00+00:00", "omero_web": "5.33.2", "git_commit": "abc1234", "repeat": 5,
              "warmup": 1, "machine": {"nproc": 2, "cpu": "AMD EPYC", "loadavg_at_start": [0.5, 0.4, 0.3]},
              "figure": {"subject": series("s", 1.2).as_dict(), "baseline": series("o", 0.65).as_dict(),
                         "ratio": 1.846, "goal": "at most 2x", "goal_met": True, "checks": ["gunicorn", "workers"]}}
    text = status.section(result)
    assert "| status of a healthy deployment | 1.200 s | 0.650 s | 1.85x | at most 2x | yes |" in text
    assert "gunicorn, workers" in text
