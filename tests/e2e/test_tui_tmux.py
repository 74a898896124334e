"""The real ``omerowizard`` full-screen wizard in a real terminal: tmux at 80x24.

Keys go in with ``tmux send-keys`` and the screen is read back with ``capture-pane``, the
way an administrator on SSH would use it. The answers file gives the deployment's paths,
application port and web-server file location, so no path is retyped; the session store
(Redis) is chosen on the screen. The deployment is then served through Debian's nginx
with the file the wizard wrote, and a second run finds nothing to change.
"""

from __future__ import annotations

import hashlib
import shlex
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

from omerowizard.ui.tui.app import STEP_IDS
from tests import parts
from tests.parts import nginx_wrapper
from tests.support.wait import until


class Tmux:
    """One program in its own tmux server (``-L``), 80 columns by 24 lines."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path):
        self.tmux = parts.require("tmux")
        self.socket = f"omw-{uuid.uuid4().hex[:8]}"
        keep = {k: env[k] for k in ("OMEROWIZARD_HOME", "OMEROWIZARD_WHEEL_CACHE", "PATH", "TMPDIR") if k in env}
        command = " ".join(["env", *(shlex.quote(f"{k}={v}") for k, v in keep.items()), "TERM=xterm-256color",
                            shlex.join(argv)])
        # after the program ends, its last words and exit status stay on the screen
        script = f"cd {shlex.quote(str(cwd))} && {command}; echo \"[exit status $?]\"; sleep 600"
        self._tmux("new-session", "-d", "-s", "wizard", "-x", "80", "-y", "24", script)
        self.screens: list[str] = []

    def _tmux(self, *args: str) -> str:
        return subprocess.run([self.tmux, "-L", self.socket, *args], check=True, capture_output=True,
                              text=True).stdout

    def screen(self) -> str:
        text = self._tmux("capture-pane", "-p", "-t", "wizard")
        self.screens.append(text)
        return text

    def keys(self, *keys: str) -> None:
        """Send keys, in order. The caller waits for what they do on the screen; Escape comes last (a
        terminal reads Escape followed at once by another key as Alt and that key)."""
        assert "Escape" not in keys[:-1], "wait for the effect of Escape before sending another key"
        for key in keys:
            self._tmux("send-keys", "-t", "wizard", key)

    def type(self, text: str) -> None:
        """Type text into the focused field and wait until the field shows it (its end, if it scrolls)."""
        self._tmux("send-keys", "-t", "wizard", "-l", text)
        self.wait(text[-12:])

    def until(self, predicate: Callable[[str], bool], what: str, timeout: float = 60) -> str:
        """The first screen for which ``predicate`` holds."""
        return until(lambda: (lambda screen: predicate(screen) and screen)(self.screen()), timeout,
                     lambda: f"{what}; the screen was:\n{self.screens[-1]}", poll=0.2)  # (a capture is a process)

    def wait(self, text: str, timeout: float = 60) -> str:
        return self.until(lambda screen: text in screen, f"{text!r} on the screen", timeout)

    def focus(self, prompt: str, timeout: float = 60) -> str:
        """Wait until the question ``prompt`` has the focus (its mark, a character, shows left of it): a step or
        dialog focuses its field once it is shown, and keys sent before that go elsewhere."""
        return self.wait(f"{MARK} {prompt}", timeout)

    def next_step(self) -> str:
        """Enter (Next), and the screen once it has changed: the next step, or what refused to go on."""
        before = self.screen()
        self.keys("Enter")
        return self.until(lambda screen: screen != before, "a change of the screen after Enter")

    def next_to(self, step: str) -> None:
        """From the welcome, Next through the steps before ``step`` (their number from the catalogue's steps,
        as the wizard shows them), each Enter waiting for the screen to leave the step it was on."""
        for _ in range(STEP_IDS.index(step)):
            self.next_step()

    def close(self) -> None:
        subprocess.run([self.tmux, "-L", self.socket, "kill-server"], capture_output=True)


MARK = "█"  # left of the question that has the focus
EMPTY_LOCATION = "sessions.location: '' must be a Redis URL"


def confirm_apply(run: Tmux) -> None:
    """On the review: Apply (Enter), then the confirmation, which Enter alone answers with "Go back": y."""
    run.keys("Enter")
    run.wait("changes now?")
    run.keys("y")


def checksum(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_first_time_deployment_in_tmux_serves_the_login_page_and_a_second_run_has_nothing_to_change(
        deployment, redis_server):
    nginx = parts.require("nginx")
    web_port = parts.free_port()
    site = deployment.workdir / "nginx" / "omero-web.conf"
    answers = deployment.answers_file({
        "web_server": {"kind": "nginx", "port": web_port, "config_path": str(site)},
        "application_server": {"workers": 1},
    })
    program = [sys.executable, "-m", "omerowizard"]

    first = Tmux([*program, "--answers", str(answers)], deployment.env(), deployment.workdir)
    try:
        first.wait("Welcome to omerowizard", timeout=30)
        welcome = first.wait("Starting answers:")
        assert "omero: /opt/omerowizard-e2e/venv3/bin/omero" in welcome
        assert "OMERO.web version: 5.33.2" in welcome
        assert "First-time deployment" in welcome
        assert "esc Back" not in welcome and "Next" in welcome  # the key bar

        first.keys("Enter")
        first.wait("Which platform does OMERO.web's front end run on?")
        first.keys("Enter")
        first.wait("Which web server fronts OMERO.web?")
        first.keys("Enter")
        first.focus("Where are sessions kept?")
        first.keys("Right")  # file -> redis
        first.wait("Where is the cache server?")
        first.keys("Tab")
        first.focus("Where is the cache server?")
        first.keys("C-u")
        first.wait(EMPTY_LOCATION)  # (what is typed before the field shows it is empty does not stay)
        first.type("redis:/nowhere")
        first.keys("Enter")
        refused = first.wait("has an invalid host")
        assert "Where are sessions kept?" in refused, "Next must be refused while the field is invalid"
        first.keys("C-u")
        first.wait(EMPTY_LOCATION)
        first.type(redis_server.url)
        first.keys("Enter")
        first.wait("Allow web applications on other origins (CORS)?")
        first.keys("Escape")  # Back keeps what was typed
        back = first.wait("Where is the cache server?")
        assert redis_server.url in back
        first.keys("Enter")
        first.wait("Allow web applications on other origins (CORS)?")
        first.keys("Enter")
        first.wait("Which OMERO.servers can users log in to?")
        first.keys("Enter")
        first.wait("Let visitors browse without logging in")
        first.keys("Enter")
        first.wait("Which web apps should OMERO.web have?")
        first.keys("Enter")
        first.wait("OMERO.web installation")
        first.keys("Enter")
        review = first.wait("will be made", timeout=60)
        assert "omero.web.session_engine" in review and "Apply" in review

        confirm_apply(first)
        done = first.wait("Press Enter to quit", timeout=240)
        # the server block is outside nginx's configuration here: the final message claims no public URL
        assert "Done." in done and "Not checked" in done and "answers at" not in done, done
        assert "[x] check the login page" in done
        assert "[!]" not in done
        first.keys("Enter")
        end = first.wait("[exit status", timeout=30)
        assert "[exit status 0]" in end and "Done." in end
    finally:
        first.close()

    config = deployment.config()
    assert config["omero.web.session_engine"] == "django.contrib.sessions.backends.cache"
    assert redis_server.url in config["omero.web.caches"]
    assert parts.http_get(deployment.login_url()).status == 200
    assert site.exists(), "the nginx file was written where the answers said"

    # the file the wizard wrote, served by the real nginx: the login page through the web server
    wrapper = nginx_wrapper(site, deployment.workdir)
    subprocess.run([nginx, "-c", str(wrapper), "-e", str(deployment.workdir / "e.log")], check=True)
    try:
        parts.wait_port(web_port)
        login = parts.http_get(f"http://127.0.0.1:{web_port}/webclient/login/")
        assert login.status == 200 and "OMERO" in login.body
    finally:
        subprocess.run([nginx, "-c", str(wrapper), "-e", str(deployment.workdir / "e.log"), "-s", "stop"])

    # the second run starts from the saved answers: Enter through every step finds nothing to change
    before = checksum(deployment.config_xml)
    pid = (deployment.omerodir / "var" / "django.pid").read_text()
    second = Tmux(program, deployment.env(), deployment.workdir)
    try:
        welcome = second.wait("Starting answers:", timeout=60)
        assert "will reconfigure it" in welcome
        second.next_to("review")  # Next through the welcome and every question step
        nothing = second.wait("Nothing to change", timeout=60)
        assert "Quit" in nothing
        second.keys("Enter")
        end = second.wait("[exit status", timeout=30)
        assert "[exit status 0]" in end and "No changes were made." in end
    finally:
        second.close()
    assert checksum(deployment.config_xml) == before
    assert (deployment.omerodir / "var" / "django.pid").read_text() == pid


def test_ctrl_c_in_tmux_before_the_run_changes_nothing(deployment):
    answers = deployment.answers_file({"application_server": {"workers": 1}})
    run = Tmux([sys.executable, "-m", "omerowizard", "--answers", str(answers)], deployment.env(), deployment.workdir)
    try:
        run.wait("Starting answers:", timeout=60)
        run.keys("Enter")
        run.wait("Which platform does OMERO.web's front end run on?")
        run.keys("C-c")
        end = run.wait("[exit status", timeout=30)
        assert "No changes were made." in end and "[exit status 130]" in end
    finally:
        run.close()
    assert not deployment.config_xml.exists()
    assert not deployment.state.answers.exists()


def selected(screen: str, option: str) -> bool:
    """The option shows the selection mark (a character, so it is seen without colour)."""
    import re

    return re.search(r"●\S?\s+" + re.escape(option) + r"\b", screen) is not None


def review_text(run: Tmux, *wanted: str) -> str:
    """The pages of the review until every text of ``wanted`` was shown (PageDown scrolls it while Apply
    keeps the focus); each PageDown waits for the page to move."""
    screens = [run.wait("will be made", timeout=60)]
    while not all(w in "\n".join(screens) for w in wanted):
        before = screens[-1]
        run.keys("PageDown")
        screens.append(run.until(lambda screen: screen != before,
                                 f"the review scrolled on to show {[w for w in wanted if w not in ''.join(screens)]}"))
    return "\n".join(screens)


def crontab(user: str) -> str:
    return subprocess.run(["crontab", "-l", "-u", user], capture_output=True, text=True).stdout


def test_rerun_one_left_selects_the_option_shown_and_plans_it_and_file_sessions_bring_clearsessions_back(
        deployment, redis_server):
    """A deployment with Redis sessions and CORS origins, reconfigured in the real terminal: one
    Left on each selects `file` and `off` (the mark moves there), the plan says so, and the
    clearsessions job, which the Redis run did not need, is installed again."""
    from tests.e2e.conftest import USER

    d = deployment
    answers = d.answers_file({"application_server": {"workers": 1},
                              "sessions": {"backend": "redis", "location": redis_server.url},
                              "cors": {"mode": "origins", "origins": ["https://hostname.example.com"]}})
    first = d.cli("apply", str(answers))
    assert first.returncode == 0, first.stdout + first.stderr
    assert str(d.omerodir) not in crontab(USER), "Redis sessions need no clearsessions job"

    run = Tmux([sys.executable, "-m", "omerowizard"], d.env(), d.workdir)
    try:
        assert "will reconfigure it" in run.wait("Starting answers:", timeout=60)
        run.keys("Enter")
        run.wait("Which platform does OMERO.web's front end run on?")
        run.keys("Enter")
        run.wait("Which web server fronts OMERO.web?")
        run.keys("Enter")
        screen = run.focus("Where are sessions kept?")
        assert selected(screen, "redis") and not selected(screen, "file"), screen
        run.keys("Left")
        screen = run.wait("How often are stale sessions purged?")  # the file-sessions question is back
        assert selected(screen, "file") and not selected(screen, "redis") and not selected(screen, "memcached"), screen
        assert "daily" in screen, "clearsessions follows its default, not the redis run's `off`"
        run.keys("Enter")
        screen = run.focus("Allow web applications on other origins (CORS)?")
        assert selected(screen, "origins"), screen
        run.keys("Left")
        screen = run.until(lambda screen: selected(screen, "off") and not selected(screen, "origins"),
                           "the mark moved from origins to off")
        assert selected(screen, "off") and not selected(screen, "all") and not selected(screen, "origins"), screen
        assert "Origins allowed to use OMERO.web" not in screen
        run.keys("Enter")
        run.wait("Which OMERO.servers can users log in to?")
        run.keys("Enter")
        run.wait("Let visitors browse without logging in")
        run.keys("Enter")
        run.wait("Which web apps should OMERO.web have?")
        run.keys("Enter")
        run.wait("OMERO.web installation")
        run.keys("Enter")
        review = review_text(run, "omero.web.cors_origin_whitelist", "omero.web.session_engine", "clearsessions")
        assert "omero.web.cors_origin_whitelist" in review and "omero.web.session_engine" in review, review
        assert "sessions.clearsessions: off -> daily" in review or "clearsessions" in review, review
        confirm_apply(run)
        done = run.wait("Press Enter to quit", timeout=240)
        assert "Done." in done and "Failed" not in done, done  # (its site is outside nginx: "Not checked: ...")
        run.keys("Enter")
        assert "[exit status 0]" in run.wait("[exit status", timeout=30)
    finally:
        run.close()
    config = d.config()
    assert "omero.web.cors_origin_whitelist" not in config and "omero.web.cors_origin_allow_all" not in config
    assert "corsheaders" not in config.get("omero.web.middleware", "")
    assert "omero.web.session_engine" not in config, "back to file sessions, OMERO's default"
    line = [x for x in crontab(USER).splitlines() if str(d.omerodir) in x]
    assert line and line[0].startswith("@daily") and "clearsessions" in line[0], crontab(USER)


def test_a_dropped_terminal_while_the_wizard_installs_stops_the_build_and_removes_its_files(tmp_path):
    """SIGHUP (the tmux server, like an SSH session, goes away) while the installer dialog builds
    zeroc-ice (the real installer; a stand-in environment whose build never ends)."""
    import yaml

    from tests.standin_build import StandInBuild

    build = StandInBuild(tmp_path)
    answers = tmp_path / "answers.yml"
    answers.write_text(yaml.safe_dump({"omero": {"user": "nobody", "venv": str(tmp_path / "not-yet"),
                                                 "omerodir": str(tmp_path / "omerodir")},
                                       "web_server": {"server_name": "omero.example.org"}}))
    run = Tmux([sys.executable, "-m", "omerowizard", "--answers", str(answers)], build.env(), tmp_path)
    try:
        run.wait("Install OMERO.web...", timeout=60)
        run.wait("Starting answers:")
        # focus cannot be read from the screen's text: from Next, Shift-Tab to the Install button and
        # Enter; if that Enter went on to the next step instead, Escape back and try again (bounded)
        for _ in range(5):
            run.keys("BTab", "Enter")
            try:
                run.wait("Which account runs OMERO.web?", timeout=5)
                break
            except AssertionError:
                if "Which platform" in run.screen():
                    run.keys("Escape")
                    run.wait("Starting answers:")
        else:
            raise AssertionError("the installer dialog never opened:\n" + run.screen())
        run.focus("Which account runs OMERO.web?")
        run.keys("Tab")
        run.focus("Where is the OMERO.web virtual environment?")
        run.keys("C-u")
        run.wait("omero.venv: '' must be an absolute path")
        run.type(str(build.venv))
        run.keys("Enter")  # Enter in a field starts the installer
        run.wait("compiled 2 of about 217", timeout=60)
        build.wait_compilers()
        screen = run.screen()
        assert "Ctrl-C stops it" in screen or "Install OMERO.web" in screen
    finally:
        run.close()  # the terminal goes away: the wizard gets SIGHUP
    try:
        build.assert_nothing_left()
    finally:
        build.kill_left()


def test_ctrl_c_while_applying_asks_then_interrupts_and_restores_as_headless_sigint_does(deployment):
    """Ctrl-C during the run: a confirmation, then the apply is interrupted (its omero process ended)
    and everything it changed is restored; the wizard ends with 130, as `omerowizard apply` on SIGINT."""
    d = deployment
    site = d.workdir / "nginx" / "omero-web.conf"
    answers = d.answers_file({"web_server": {"kind": "nginx", "port": parts.free_port(), "config_path": str(site)},
                              "application_server": {"workers": 1}, "prefix": "/omero",
                              "sessions": {"clearsessions": "daily"}})
    run = Tmux([sys.executable, "-m", "omerowizard", "--answers", str(answers)], d.env(), d.workdir)
    try:
        run.wait("Starting answers:", timeout=60)
        run.next_to("review")  # through every step to the review
        run.wait("will be made", timeout=60)
        confirm_apply(run)
        run.wait("[x] preflight", timeout=120)  # applying: the run changes things from here on
        run.keys("C-c")
        run.wait("Interrupt the apply?")
        run.keys("y")
        screen = run.wait("Failed. Press Enter to quit.", timeout=120)
        # what was restored is named (the checklist's restore line may be below the final message at 80x24)
        assert "Failed: interrupted" in screen and "Restored: " in screen, screen
        assert "Interrupting: restoring" not in screen, "the notice goes once the restore has finished"
        run.keys("Enter")
        assert "[exit status 130]" in run.wait("[exit status", timeout=60)
    finally:
        run.close()
    assert not d.config_xml.exists() or "omero.web.prefix" not in d.config(), "config.xml is back as it was"
    assert not site.exists(), "the site file it wrote is removed again"
    cron = subprocess.run(["crontab", "-l", "-u", "omero-web"], capture_output=True, text=True).stdout
    assert f"OMERODIR={d.omerodir} " not in cron


def test_web_apps_step_at_80x24_ticks_figure_and_iviewer_and_the_saved_answers_have_them(deployment):
    """The Web apps step in a real terminal: the arrows move, Space ticks (the mark is a character),
    Tab leaves the list, the review plans both packages, Ctrl-S saves answers with
    ``apps: {enabled: [figure, iviewer]}``; Ctrl-C then quits and nothing was installed or changed."""
    import yaml

    d = deployment
    answers = d.answers_file({"application_server": {"workers": 1}})
    run = Tmux([sys.executable, "-m", "omerowizard", "--answers", str(answers)], d.env(), d.workdir)
    prompt = "Which web apps should OMERO.web have?"
    try:
        run.wait("Starting answers:", timeout=60)
        run.next_to("apps")  # Next through the steps before it, whatever their number
        screen = run.focus(prompt)
        assert "Web apps" in screen.splitlines()[0], "the step bar names the step"
        assert not any(selected(screen, a) for a in ("figure", "iviewer", "mapr", "parade", "fpbioimage")), screen
        for _ in range(3):  # a Space that reached the list before its first option was highlighted ticks nothing
            run.keys("Space")
            try:
                run.until(lambda screen: selected(screen, "figure"), "figure ticked", timeout=15)
                break
            except AssertionError:
                if selected(run.screen(), "figure"):
                    break
        run.keys("Down", "Space")
        screen = run.wait("Make OMERO.iviewer the default image viewer?")  # iviewer's question appears
        assert selected(screen, "figure") and selected(screen, "iviewer"), screen
        assert not selected(screen, "mapr") and not selected(screen, "parade"), screen
        assert len(screen.splitlines()) <= 24 and max(len(line) for line in screen.splitlines()) <= 80
        run.keys("Tab")  # out of the list, onto the next question (the step's help follows the focus)
        run.wait("omero_iviewer.views.index")
        run.keys("Enter")
        run.wait("OMERO.web installation")
        run.keys("Enter")
        review = review_text(run, "omero-figure", "omero-iviewer", "omero.web.apps")
        assert "omero-figure" in review and "omero-iviewer" in review, review
        assert "omero.web.apps" in review, review
        run.keys("C-s")
        run.wait("Save answers to file")
        run.keys("Enter")
        run.wait("Saved the answers")
        run.keys("C-c")
        end = run.wait("[exit status", timeout=30)
        assert "No changes were made." in end and "[exit status 130]" in end, end
    finally:
        run.close()
    saved = yaml.safe_load((d.workdir / "omerowizard-answers.yml").read_text())
    assert saved["apps"]["enabled"] == ["figure", "iviewer"]
    assert saved["apps"]["iviewer_default_viewer"] is True
    assert "omero.web.apps" not in (d.config() if d.config_xml.exists() else {})
    from tests.e2e.conftest import VENV

    assert not list(VENV.glob("lib/python*/site-packages/omero_figure")), "planning installed nothing"
