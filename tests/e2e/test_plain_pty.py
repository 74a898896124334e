"""``omerowizard --plain`` driven through a real pty (pexpect), against a real OMERO.web.

The answers file gives the deployment's paths and ports, so the tests need not type them;
every other question is answered at its prompt (Enter keeps the prefilled value). Each
question prints its answers-file key as ``[key]`` before its prompt, which is what the
driver waits for: new questions in the catalogue are answered with Enter automatically.
"""

from __future__ import annotations

import hashlib
import io
import re
import subprocess
import sys
import time
from pathlib import Path

import pexpect
import pytest

from omerowizard.ui import plain
from omerowizard.catalogue import BY_KEY, CATALOGUE
from tests import parts

ENTER, DOWN, CTRL_C, CTRL_U = "\r", "\x1b[B", "\x03", "\x15"
KEY_LINE = re.compile(r"\r\n  \[(" + "|".join(re.escape(q.key) for q in CATALOGUE) + r")\]")
ADVANCED = "Change any of these?"
REVIEW_MENU = "What now?"
CHECKOUT = Path(__file__).resolve().parents[2]  # the code under test, for a child started with a clean environment
REFUSED = re.compile(r"Not accepted: ([^\r\n]*)")


class Plain:
    """One run of the real program in a pty, answered question by question."""

    def __init__(self, deployment, *args: str, term: str = "xterm-256color"):
        self.transcript = io.StringIO()
        self.child = pexpect.spawn(sys.executable, ["-m", "omerowizard", *args], env=deployment.env(TERM=term),
                                   cwd=str(deployment.workdir), dimensions=(50, 200), encoding="utf-8", timeout=90)
        self.child.logfile_read = self.transcript
        self.line_mode = term == "dumb"
        self.asked: list[str] = []
        self.refused: list[str] = []

    def answer(self, answers: dict[str, str | list[str]], advanced: bool) -> bool:
        """Answer every question (a list answers successive asks of one key; Enter otherwise)
        until the review menu (True) or the end of the program (False)."""
        queues = {k: list(v) if isinstance(v, list) else [v] for k, v in answers.items()}
        gate = re.escape(ADVANCED)
        while True:
            try:
                i = self.child.expect([KEY_LINE, gate, re.escape(REVIEW_MENU), REFUSED, pexpect.EOF])
            except pexpect.TIMEOUT:
                raise AssertionError(f"no question, review or end; the screen ends with:\n{self.plain_tail()}") from None
            if i in (0, 3):
                if i == 0:
                    key = self.child.match.group(1)
                else:  # refused: the same question comes back, without its help
                    self.refused.append(self.child.match.group(1).strip())
                self.asked.append(key)
                self.child.expect_exact(BY_KEY[key].prompt)
                queue = queues.get(key) or [ENTER]
                keys = queue.pop(0) if len(queue) > 1 else queue[0]
                self.child.send(keys + (ENTER if self.line_mode and not keys.endswith(ENTER) else ""))
            elif i == 1:
                self.child.send(("y" if advanced else "n") + ENTER)  # y/n waits for Enter in both modes
                gate = "(?!x)x"  # asked once; questionary shows the answered prompt again
            elif i == 2:
                return True
            else:
                return False

    def finish(self, timeout: float = 180) -> int:
        self.child.expect(pexpect.EOF, timeout=timeout)
        self.child.close()
        return self.child.exitstatus

    def plain_tail(self, n: int = 3000) -> str:
        return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", self.text)[-n:]

    @property
    def text(self) -> str:
        return self.transcript.getvalue()


def typed(text: str) -> str:
    """Replace the prefilled value of a text prompt with ``text`` and press Enter."""
    return CTRL_U + text + ENTER


def answers_for(deployment) -> str:
    return str(deployment.answers_file({
        "application_server": {"workers": 1},
        "sessions": {"clearsessions": "off"},  # no job in the shared omero-web crontab
        "web_server": {"config_path": str(deployment.workdir / "nginx" / "omero.conf")},
    }))


def checksum(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_first_time_deployment_through_the_prompts_serves_the_login_page_and_a_rerun_changes_nothing(deployment):
    first = Plain(deployment, "--plain", "--answers", answers_for(deployment))
    assert first.answer({
        "application_server.port": [typed("99999"), typed(str(deployment.app_port))],
        "prefix": typed("/omero"),
    }, advanced=True)
    # an invalid answer is refused with the answers file's message, and the question is asked again
    assert first.refused == ["application_server.port: 99999 is out of range (allowed: an integer from 1 to 65535)"]
    assert first.asked.count("application_server.port") == 2
    assert "cors.origins" not in first.asked  # cors.mode stayed off
    assert "set   omero.web.prefix: (unset) -> /omero" in first.text
    first.child.send(ENTER)  # "Apply the changes" is the first choice, and asks for a typed confirmation
    first.child.expect_exact(plain.CONFIRM)
    first.child.send(typed("apply"))
    first.child.expect_exact("==> omero web start")
    first.child.expect_exact("Starting OMERO.web")  # omero's own output, streamed as it is printed
    assert first.finish() == 0, first.text[-3000:]
    assert f"ok check the login page: {deployment.login_url('/omero')} answers 200" in first.text
    assert "Done." in first.text

    page = parts.http_get(deployment.login_url("/omero"))
    assert page.status == 200 and "OMERO" in page.body
    config = deployment.config()
    assert config["omero.web.prefix"] == "/omero"
    assert config["omero.web.application_server.port"] == str(deployment.app_port)
    assert deployment.state.answers.exists()
    nginx = deployment.workdir / "nginx" / "omero.conf"
    if f"create {nginx}" in first.text:  # the web-server files, when the plan has them
        assert "location /omero" in nginx.read_text()

    # the rerun starts from the saved answers: Enter everywhere finds nothing to change
    before = checksum(deployment.config_xml)
    pid = (deployment.omerodir / "var" / "django.pid").read_text()
    rerun = Plain(deployment, "--plain")
    assert rerun.answer({}, advanced=False) is False
    rerun.child.close()
    assert rerun.child.exitstatus == 0, rerun.text[-3000:]
    assert "Nothing to change" in rerun.text
    assert REVIEW_MENU not in rerun.text and "==>" not in rerun.text
    assert checksum(deployment.config_xml) == before
    assert (deployment.omerodir / "var" / "django.pid").read_text() == pid  # not restarted


def test_invalid_server_name_is_asked_again_and_ctrl_c_at_the_review_changes_nothing(deployment):
    deployment.omero("config", "set", "omero.web.application_server.port", str(deployment.app_port))
    before = checksum(deployment.config_xml)
    run = Plain(deployment, "--plain", "--answers", answers_for(deployment))
    assert run.answer({"web_server.server_name": [typed("a}"), typed("omero.example.org")],
                       "prefix": typed("/omero")}, advanced=True)
    assert run.refused == ["web_server.server_name: 'a}' is not a host name (letters, digits, '-' and '.' only) "
                    "(allowed: a host name such as omero.example.org)"]
    assert run.asked.count("web_server.server_name") == 2
    assert "set   omero.web.prefix: (unset) -> /omero" in run.text
    run.child.send(CTRL_C)
    run.child.expect_exact("No changes were made.")
    assert run.finish() == 130
    assert checksum(deployment.config_xml) == before
    assert "omero.web.prefix" not in deployment.config()
    assert not (deployment.omerodir / "var" / "django.pid").exists()
    assert not (deployment.workdir / "nginx" / "omero.conf").exists()
    assert not deployment.state.answers.exists()


def test_ctrl_c_at_a_question_exits_130_with_no_changes(deployment):
    deployment.omero("config", "set", "omero.web.application_server.port", str(deployment.app_port))
    before = checksum(deployment.config_xml)
    run = Plain(deployment, "--plain", "--answers", answers_for(deployment))
    assert run.answer({"omero.omerodir": CTRL_C}, advanced=False) is False  # a text prompt
    assert run.asked[-1] == "omero.omerodir"
    assert run.finish() == 130
    assert "No changes were made." in run.text
    assert checksum(deployment.config_xml) == before


def test_a_dumb_terminal_falls_back_to_numbered_line_prompts(deployment):
    run = Plain(deployment, "--answers", answers_for(deployment), term="dumb")
    assert run.answer({"sessions.cookie_age": ["5", "3600"], "cors.mode": "2",
                       "cors.origins": "https://a.example.org", "apps.enabled": "iviewer, 1"}, advanced=False)
    assert "  1) [ ] figure" in run.text and "  2) [ ] iviewer" in run.text  # the web apps, a numbered list
    assert "apps.iviewer_default_viewer" in run.asked
    assert "omero-figure" in run.text and "omero-iviewer" in run.text  # both planned
    assert "This terminal cannot hold the full-screen wizard; using plain prompts (--plain)." in run.text
    assert "\x1b[" not in run.text  # no escape sequences at all
    assert run.refused == ["sessions.cookie_age: 5 is out of range (allowed: an integer from 60 to 31536000)"]
    assert "  2) origins" in run.text
    assert "omero.web.cors_origin_whitelist" in run.text
    run.child.send("Quit without changing anything\r")
    run.child.expect_exact("No changes were made.")
    assert run.finish() == 0
    assert not deployment.config_xml.exists()


def test_with_standard_input_from_a_pipe_it_exits_at_once_without_prompting(deployment, tmp_path):
    for args in (["--plain"], []):
        out = (tmp_path / "out").open("w+")
        start = time.monotonic()
        # stdin stays open and empty: a program that prompted would wait here until killed
        proc = subprocess.Popen([sys.executable, "-m", "omerowizard", *args], stdin=subprocess.PIPE, stdout=out,
                                stderr=subprocess.STDOUT, env=deployment.env(TERM="xterm-256color"))
        try:
            status = proc.wait(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.stdin.close()
        elapsed = time.monotonic() - start
        out.seek(0)
        text = out.read()
        assert status == 2, text
        assert "standard input is not a terminal" in text and "omerowizard apply ANSWERS.yml" in text
        assert BY_KEY["platform"].prompt not in text  # no question was asked
        assert elapsed < 10


def test_a_terminal_too_small_for_the_full_screen_wizard_gets_plain_prompts(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "TERM": "xterm-256color", "OMEROWIZARD_HOME": str(tmp_path),
           "PYTHONPATH": str(CHECKOUT)}
    child = pexpect.spawn(sys.executable, ["-m", "omerowizard"], env=env, cwd=str(tmp_path), dimensions=(20, 60),
                          encoding="utf-8", timeout=30)
    child.expect_exact("This terminal cannot hold the full-screen wizard; using plain prompts (--plain).")
    child.expect_exact(BY_KEY["platform"].prompt)
    child.send(CTRL_C)
    child.expect_exact("No changes were made.")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130


def test_a_yes_no_question_waits_for_enter(deployment):
    """`y` alone used to answer at once, and the Enter typed after it answered the next question."""
    run = Plain(deployment, "--plain", "--answers", answers_for(deployment))
    while True:
        i = run.child.expect([KEY_LINE, re.escape(ADVANCED)])
        if i == 1:
            break
        run.child.expect_exact(BY_KEY[run.child.match.group(1)].prompt)
        run.child.send(ENTER)
    run.child.send("y")
    with pytest.raises(pexpect.TIMEOUT):
        run.child.expect(KEY_LINE, timeout=2)  # still waiting on the y/n question
    run.child.send(ENTER)
    run.child.expect(KEY_LINE)
    assert run.child.match.group(1) == [q.key for q in CATALOGUE if q.step == "advanced"][0]
    run.child.send(CTRL_C)
    run.child.expect_exact("No changes were made.")
    assert run.finish() == 130


def test_a_server_list_typed_at_the_prompts_is_deployed_and_shown_on_the_login_page(deployment):
    """The OMERO.server step of plain mode: two servers typed at the prompt, one a real listener and one
    a closed port (a warning, not a refusal); after apply the login page lists both names."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    closed = parts.free_port()
    try:
        port = listener.getsockname()[1]
        run = Plain(deployment, "--plain", "--answers", answers_for(deployment))
        assert run.answer({"servers": typed(f"127.0.0.1:{port} Listening-Server; 127.0.0.1:{closed} Closed-Server")},
                          advanced=False)
        assert "servers" in run.asked
        review = re.sub(r"\s+", " ", run.plain_tail(20000))
        assert f"Closed-Server at 127.0.0.1:{closed} cannot be reached" in review, review  # a warning in the review
        assert "Listening-Server at" not in review and "omero.web.server_list" in review
        run.child.send(ENTER)  # apply, then its typed confirmation
        run.child.expect_exact(plain.CONFIRM)
        run.child.send(typed("apply"))
        assert run.finish() == 0, run.plain_tail()
    finally:
        listener.close()
    page = parts.http_get(deployment.login_url())
    assert page.status == 200
    assert "Listening-Server" in page.body and "Closed-Server" in page.body


def test_web_apps_are_ticked_in_a_checkbox_list_and_saved_answers_have_them(deployment):
    """The Web apps step of plain mode: Space ticks figure, Down and Space iviewer; the review plans both
    packages (a dry run: nothing is installed); the answers saved from the review menu have
    ``apps: {enabled: [figure, iviewer]}``; quitting there changes nothing."""
    import yaml

    run = Plain(deployment, "--plain", "--answers", answers_for(deployment))
    assert run.answer({"apps.enabled": " " + DOWN + " " + ENTER}, advanced=False)
    assert "apps.iviewer_default_viewer" in run.asked, "iviewer's question follows once it is ticked"
    review = re.sub(r"\s+", " ", run.plain_tail(20000))
    assert "omero-figure" in review and "omero-iviewer" in review, review
    assert "omero.web.apps" in review, review
    run.child.expect_exact(plain.QUIT)  # the menu's last choice: every choice is on the screen
    menu = [plain.APPLY, *([plain.DIFF] if plain.DIFF in run.text else []), plain.SAVE, plain.QUIT]
    run.child.send(DOWN * menu.index(plain.SAVE) + ENTER)
    run.child.expect_exact("Save the answers to which file?")
    target = deployment.workdir / "saved.yml"
    run.child.send(typed(str(target)))
    run.child.expect_exact(f"Saved to {target}")
    run.child.expect_exact(REVIEW_MENU)
    run.child.send(DOWN * menu.index(plain.QUIT) + ENTER)
    run.child.expect_exact("No changes were made.")
    assert run.finish() == 0
    saved = yaml.safe_load(target.read_text())
    assert saved["apps"]["enabled"] == ["figure", "iviewer"] and saved["apps"]["iviewer_default_viewer"] is True
    assert not deployment.config_xml.exists() or "omero.web.apps" not in deployment.config()
