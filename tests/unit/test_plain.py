"""The plain prompt mode's question loop, review menu and prompts (fast: scripted prompts or
prompt_toolkit's pipe input instead of a terminal; the pty tests in tests/e2e drive the real thing)."""

from __future__ import annotations

import builtins

import pytest

from omerowizard.catalogue import BY_KEY
from omerowizard.catalogue import answers as answers_mod
from omerowizard.run import planning
from omerowizard.ui import plain, wizard
from tests.support.demo import FakeMachine


class Scripted:
    """Prompts that answer from a script keyed by prompt text (a list answers successive asks);
    anything not scripted is answered with the value shown, as Enter would."""

    intro = "scripted"

    def __init__(self, script: dict[str, object] | None = None):
        self.script = {k: (list(v) if isinstance(v, list) else [v]) for k, v in (script or {}).items()}
        self.calls: list[tuple[str, str, object]] = []

    def _answer(self, kind: str, message: str, default: object, extra: object = None):
        self.calls.append((kind, message, extra if extra is not None else default))
        assert len(self.calls) < 500, f"asked {message!r} again and again: a loop the script never leaves"
        queue = self.script.get(message)
        if not queue:
            return default
        value = queue.pop(0) if len(queue) > 1 else queue[0]
        if value is KeyboardInterrupt:
            raise KeyboardInterrupt
        return value

    def select(self, message, choices, default):
        return self._answer("select", message, default, list(choices))

    def confirm(self, message, default):
        return self._answer("confirm", message, default)

    def text(self, message, default):
        return self._answer("text", message, default)

    def checkbox(self, message, choices, chosen):
        return self._answer("checkbox", message, list(chosen), list(choices))

    def asked(self, key: str) -> list[tuple[str, str, object]]:
        return [c for c in self.calls if c[1] == BY_KEY[key].prompt]


def p(key: str) -> str:
    return BY_KEY[key].prompt


@pytest.fixture
def flat():
    return answers_mod.defaults().flat()


def test_cors_origins_is_asked_only_after_cors_mode_is_origins(flat):
    off = Scripted({"Change any of these?": False})
    plain.ask_all(flat, off)
    assert off.asked("cors.mode") and not off.asked("cors.origins")

    on = Scripted({p("cors.mode"): "origins", p("cors.origins"): "https://a.example.org, http://b.example.org:8080",
                   "Change any of these?": False})
    out = plain.ask_all(flat, on)
    messages = [c[1] for c in on.calls]
    assert messages.index(p("cors.origins")) == messages.index(p("cors.mode")) + 1
    assert out["cors.origins"] == ["https://a.example.org", "http://b.example.org:8080"]


def test_invalid_port_is_refused_with_the_answers_file_message_and_asked_again(flat, capsys):
    s = Scripted({"Change any of these?": True, p("application_server.port"): ["99999", "8081"]})
    out = plain.ask_all(flat, s)
    asks = s.asked("application_server.port")
    assert [c[2] for c in asks] == ["4080", "4080"]  # asked again, prefilled with the last value accepted, not the refused one
    assert out["application_server.port"] == 8081
    text = capsys.readouterr().out
    expected = wizard.field_error("application_server.port", 99999, flat)
    assert f"Not accepted: {expected}" in text
    assert "99999 is out of range (allowed: an integer from 1 to 65535)" in text


def test_a_word_for_a_number_is_refused_with_the_parse_message(flat, capsys):
    s = Scripted({"Change any of these?": True, p("application_server.workers"): ["two", "2"]})
    assert plain.ask_all(flat, s)["application_server.workers"] == 2
    assert "Not accepted: 'two' is not a whole number" in capsys.readouterr().out


def test_advanced_settings_are_listed_and_skipped_unless_wanted(flat, capsys):
    s = Scripted({"Change any of these?": False})
    out = plain.ask_all(flat, s)
    assert not s.asked("prefix") and not s.asked("application_server.port")
    assert "  prefix: /" in capsys.readouterr().out
    assert out["prefix"] == "/"


def test_every_question_shows_its_help_and_answers_file_key(flat, capsys):
    plain.ask(BY_KEY["web_server.port"], flat, Scripted())
    text = capsys.readouterr().out
    assert "80 for a system web server" in text
    assert "[web_server.port] allowed: an integer from 1 to 65535" in text


def test_a_secret_is_shown_masked_and_kept_when_left_as_shown(flat, capsys):
    flat = {**flat, "sessions.backend": "redis", "sessions.location": "redis://:s3cret@127.0.0.1:6379/0"}
    s = Scripted()
    value = plain.ask(BY_KEY["sessions.location"], flat, s)
    assert value == "redis://:s3cret@127.0.0.1:6379/0"
    assert s.calls[0][2] == "redis://:****@127.0.0.1:6379/0"
    assert "s3cret" not in capsys.readouterr().out

    typed = plain.ask(BY_KEY["sessions.location"], flat, Scripted({p("sessions.location"): "redis://127.0.0.1:6380/1"}))
    assert typed == "redis://127.0.0.1:6380/1"


def test_choices_that_earlier_answers_rule_out_are_not_offered(flat):
    s = Scripted()
    plain.ask(BY_KEY["web_server.kind"], flat, s)
    assert "iis" not in s.calls[0][2] and "nginx" in s.calls[0][2]

    windows = Scripted()
    assert plain.ask(BY_KEY["web_server.kind"], {**flat, "platform": "windows"}, windows) == "iis"
    assert windows.calls[0][2] == ["iis"]


def test_prefill_is_the_default_when_the_current_answer_no_longer_fits(flat):
    moved = {**flat, "web_server.kind": "nginx-development", "web_server.port": 80}
    assert plain.current(BY_KEY["web_server.port"], moved) == 8080
    assert plain.current(BY_KEY["web_server.port"], {**flat, "web_server.port": 8000}) == 8000


def test_answers_to_questions_that_no_longer_apply_are_kept_but_not_planned(flat, monkeypatch):
    s = Scripted({p("cors.mode"): ["origins", "off", "origins"], p("cors.origins"): "https://a.example.org",
                  "Change any of these?": False})
    first = plain.ask_all(flat, s)
    second = plain.ask_all(first, s)
    assert not s.asked("cors.origins")[1:]
    planned = []
    make = wizard.make
    monkeypatch.setattr(planning, "probe", FakeMachine().probe)
    monkeypatch.setattr(wizard, "make", lambda f: planned.append(answers_mod.from_flat(f)) or make(f))
    plain.make_until_valid(second, s)
    assert planned[0].cors.origins == () and planned[0].warnings == ()  # no "is ignored" note in the review
    third = plain.ask_all(second, s)
    assert s.asked("cors.origins")[-1] == ("text", p("cors.origins"), "https://a.example.org")  # prefilled with what was typed
    assert third["cors.origins"] == ["https://a.example.org"]


def test_line_prompts_take_numbers_names_and_enter(monkeypatch, capsys):
    typed = iter(["", "2", "windows", "9", "1", "", "n", "maybe", "y", "-", "", "new"])
    monkeypatch.setattr(builtins, "input", lambda prompt="": next(typed))
    lp = plain.LinePrompts()
    assert lp.select("Platform?", ["unix", "windows"], "unix") == "unix"
    assert lp.select("Platform?", ["unix", "windows"], "unix") == "windows"
    assert lp.select("Platform?", ["unix", "windows"], "unix") == "windows"
    assert lp.select("Platform?", ["unix", "windows"], "windows") == "unix"  # 9 refused, then 1
    assert "Type a number from 1 to 2" in capsys.readouterr().out
    assert lp.confirm("Start?", True) is True
    assert lp.confirm("Start?", True) is False
    assert lp.confirm("Start?", False) is True  # "maybe" refused, then y
    assert lp.text("Path?", "/x") == ""  # '-' empties
    assert lp.text("Path?", "/x") == "/x"
    assert lp.text("Path?", "/x") == "new"


def test_line_checkboxes_take_numbers_or_names_enter_keeps_and_dash_empties(monkeypatch, capsys):
    typed = iter(["", "3, 1", "iviewer,figure", "-", "7", "figure, nope", "2"])
    monkeypatch.setattr(builtins, "input", lambda prompt="": next(typed))
    lp = plain.LinePrompts()
    apps = ["figure", "iviewer", "mapr"]
    assert lp.checkbox("Apps?", apps, ["iviewer"]) == ["iviewer"]
    assert "  2) [x] iviewer" in capsys.readouterr().out  # the ticked ones show as text
    assert lp.checkbox("Apps?", apps, []) == ["figure", "mapr"]  # in the list's order
    assert lp.checkbox("Apps?", apps, []) == ["figure", "iviewer"]
    assert lp.checkbox("Apps?", apps, ["figure"]) == []
    assert lp.checkbox("Apps?", apps, []) == ["iviewer"]  # 7, then a name that is not offered, refused
    assert capsys.readouterr().out.count("is not one of them") == 2


def test_line_prompts_treat_end_of_input_as_an_interruption(monkeypatch):
    def eof(prompt=""):
        raise EOFError
    monkeypatch.setattr(builtins, "input", eof)
    with pytest.raises(KeyboardInterrupt):
        plain.LinePrompts().text("Path?", "/x")


def test_dumb_terminals_get_line_prompts(monkeypatch):
    monkeypatch.setenv("TERM", "dumb")
    assert isinstance(plain.prompts_for_terminal(), plain.LinePrompts)
    monkeypatch.setenv("TERM", "xterm-256color")
    assert isinstance(plain.prompts_for_terminal(), plain.QuestionaryPrompts)


# ----------------------------------------------------------------------------- questionary, through pipe input
@pytest.fixture
def keys():
    from prompt_toolkit.application import create_app_session
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    with create_pipe_input() as inp, create_app_session(input=inp, output=DummyOutput()):
        yield inp


def test_questionary_text_is_prefilled_and_editable(keys):
    q = plain.QuestionaryPrompts()
    keys.send_text("\r")
    assert q.text("Prefix?", "/omero") == "/omero"
    keys.send_text("\x15/other\r")  # Ctrl-U empties the line
    assert q.text("Prefix?", "/omero") == "/other"


def test_questionary_select_starts_on_the_current_choice(keys):
    q = plain.QuestionaryPrompts()
    keys.send_text("\r")
    assert q.select("Kind?", ["nginx", "apache", "development"], "apache") == "apache"
    keys.send_text("\x1b[B\r")
    assert q.select("Kind?", ["nginx", "apache", "development"], "apache") == "development"
    keys.send_text("y\r")
    assert q.confirm("Go?", False) is True


def test_questionary_checkbox_starts_ticked_as_answered_and_space_toggles(keys):
    q = plain.QuestionaryPrompts()
    keys.send_text("\r")
    assert q.checkbox("Apps?", ["figure", "iviewer", "mapr"], ["iviewer"]) == ["iviewer"]
    keys.send_text(" \x1b[B \r")  # tick figure (the cursor starts on the first), down, untick iviewer
    assert q.checkbox("Apps?", ["figure", "iviewer", "mapr"], ["iviewer"]) == ["figure"]
    keys.send_text("\x1b[B\x1b[B \r")
    assert q.checkbox("Apps?", ["figure", "iviewer", "mapr"], []) == ["mapr"]


def test_questionary_yes_no_waits_for_enter(keys):
    """`y` alone used to answer at once, so the Enter that followed answered the next question."""
    q = plain.QuestionaryPrompts()
    keys.send_text("yn\r")
    assert q.confirm("Go?", False) is False


def test_ctrl_d_on_an_empty_answer_also_quits_without_changes(answers_file, capsys, monkeypatch):
    class CtrlD(Scripted):
        def text(self, message, default):
            raise EOFError
    monkeypatch.setattr(wizard, "apply", lambda *a: pytest.fail("apply must not run"))
    assert plain.run_plain(str(answers_file), CtrlD()) == 130
    assert capsys.readouterr().out.rstrip().endswith(plain.NO_CHANGES)


def test_questionary_ctrl_c_raises_so_the_run_can_say_nothing_changed(keys):
    keys.send_text("\x03")
    with pytest.raises(KeyboardInterrupt):
        plain.QuestionaryPrompts().text("Prefix?", "/")


# ----------------------------------------------------------------------------- the run
@pytest.fixture
def answers_file(tmp_path, monkeypatch):
    monkeypatch.setenv("OMEROWIZARD_HOME", str(tmp_path / "home"))
    path = tmp_path / "answers.yml"
    path.write_text(f"omero:\n  venv: {tmp_path}/no-venv\n  omerodir: {tmp_path}/omerodir\n"
                    "web_server:\n  kind: development\n")
    return path


def test_ctrl_c_at_a_question_says_no_changes_were_made_and_exits_130(answers_file, capsys, monkeypatch):
    monkeypatch.setattr(wizard, "apply", lambda *a: pytest.fail("apply must not run"))
    status = plain.run_plain(str(answers_file), Scripted({p("omero.venv"): KeyboardInterrupt}))
    assert status == 130
    assert capsys.readouterr().out.rstrip().endswith(plain.NO_CHANGES)


@pytest.fixture
def machine(monkeypatch):
    """The machine the plain runs plan for: a made-up one, measured in place of the real probe (an OMERO.web
    installed, nothing deployed yet); the planner, preflight and apply are the real ones."""
    fake = FakeMachine()
    monkeypatch.setattr(planning, "probe", fake.probe)
    return fake


def test_an_empty_plan_says_nothing_to_change_and_asks_nothing_more(answers_file, machine, capsys, monkeypatch):
    machine.deploy(answers_mod.load_file(answers_file))  # deployed with these answers: nothing left to do
    monkeypatch.setattr(wizard, "apply", lambda *a: pytest.fail("apply must not run"))
    s = Scripted()
    assert plain.run_plain(str(answers_file), s) == 0
    assert "Nothing to change" in capsys.readouterr().out
    assert "What now?" not in [c[1] for c in s.calls]


def test_quitting_at_the_review_changes_nothing(answers_file, machine, capsys, monkeypatch):
    monkeypatch.setattr(wizard, "apply", lambda *a: pytest.fail("apply must not run"))
    s = Scripted({"What now?": plain.QUIT})
    assert plain.run_plain(str(answers_file), s) == 0
    out = capsys.readouterr().out
    assert "set   omero.web.application_server: (unset" in out and out.rstrip().endswith(plain.NO_CHANGES)


def test_applying_prints_every_event_as_a_line(tmp_path, machine, capsys):
    """A real apply of a plan that writes one web-server file (the made-up machine runs OMERO.web with
    these answers already; the file is missing)."""
    site = tmp_path / "site" / "omero-web.conf"
    answers_file = tmp_path / "nginx.yml"
    answers_file.write_text(f"omero:\n  venv: {tmp_path}/venv\n  omerodir: {tmp_path}/omerodir\n"
                            f"web_server:\n  server_name: omero.example.org\n  config_path: {site}\n")
    machine.deploy(answers_mod.load_file(answers_file)).files.pop(str(site))
    assert plain.run_plain(str(answers_file), Scripted({plain.CONFIRM: "apply"})) == 0  # typed: applies
    out = capsys.readouterr().out
    assert "==> preflight\n  ok preflight\n    backup of what this run touches: " in out
    assert f"==> write web-server files\n    wrote {site}\n" in out and "  ok write web-server files\n" in out
    assert "Done." in out
    assert "server_name omero.example.org;" in site.read_text()


def test_saving_the_answers_writes_a_file_that_apply_accepts(answers_file, machine, tmp_path, monkeypatch, capsys):
    target = tmp_path / "saved.yml"
    s = Scripted({"What now?": [plain.SAVE, plain.QUIT],
                  "Save the answers to which file?": [str(tmp_path / "missing" / "x.yml"), str(target)]})
    assert plain.run_plain(str(answers_file), s) == 0
    assert f"Not accepted: {tmp_path / 'missing'} does not exist" in capsys.readouterr().out
    saved = answers_mod.load_file(target)
    assert saved.web_server.kind == "development" and saved.omero.venv == f"{tmp_path}/no-venv"


def test_https_is_turned_off_by_emptying_the_certificate(flat):
    https = {**flat, "web_server.https.certificate": "/etc/ssl/omero.pem", "web_server.https.key": "/etc/ssl/omero.key"}
    s = Scripted({"Change any of these?": True, p("web_server.https.certificate"): ""})
    out = plain.ask_all(https, s)
    assert out["web_server.https.certificate"] is None
    assert not s.asked("web_server.https.key")
    assert answers_mod.from_flat(wizard.applicable(out)).web_server.https is None


def test_an_answer_never_chosen_follows_its_default_and_the_review_lists_it(flat, capsys):
    start = {**flat, "sessions.backend": "redis", "sessions.location": "redis://127.0.0.1:6379/0",
             "sessions.clearsessions": "off"}  # as a run with Redis sessions saves it
    chosen: set[str] = set()
    s = Scripted({p("sessions.backend"): "file", "Change any of these?": False})
    out = plain.ask_all(start, s, start=start, chosen=chosen)
    assert s.asked("sessions.clearsessions")[0][2] == "daily"
    assert out["sessions.clearsessions"] == "daily"
    derived = wizard.derived_changes(start, wizard.applicable(out), chosen)
    assert any(d.startswith("sessions.clearsessions: off -> daily") for d in derived)
    assert not any(d.startswith("sessions.backend") for d in derived)


def test_help_is_wrapped_to_the_terminal_width(flat, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "50")
    plain.ask(BY_KEY["web_server.kind"], flat, Scripted())
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert max(len(line) for line in lines[:-1]) <= 50
    monkeypatch.setenv("COLUMNS", "160")
    plain.ask(BY_KEY["web_server.kind"], flat, Scripted())
    assert max(len(line) for line in capsys.readouterr().out.splitlines()) > 100


def test_derived_changes_are_changed_answers_not_questions_that_appear_with_their_default(flat):
    start = {**flat, "sessions.location": None}
    now = {**flat, "sessions.backend": "redis", "sessions.location": "redis://127.0.0.1:6379/0"}
    assert wizard.derived_changes(start, now, {"sessions.backend"}) == []
    moved = {**flat, "web_server.kind": "nginx-development", "web_server.port": 8080}
    assert wizard.derived_changes(flat, moved, {"web_server.kind"}) == [
        "web_server.port: 80 -> 8080 (not chosen: its default with these answers)"]


def test_messages_name_their_subject(flat):
    assert wizard.field_error("web_server.port", "80", flat) == \
        "web_server.port: '80' is not an integer (allowed: an integer from 1 to 65535)"
    origins = {**flat, "cors.mode": "origins"}
    assert wizard.field_error("cors.origins", [], origins).startswith("cors.origins is empty but cors.mode is origins")


def test_derived_changes_mask_a_secret_answer(flat):
    start = {**flat, "public.enabled": True, "public.user": "public", "public.password": "s3cret-old"}
    now = {**start, "public.password": "s3cret-new"}
    lines = wizard.derived_changes(start, now, set())
    assert lines and all("s3cret" not in line for line in lines)
    assert "public.password: **** -> **** (not chosen: its default with these answers)" in lines


def test_applying_needs_a_typed_confirmation_enter_alone_never_applies(answers_file, machine, capsys, monkeypatch):
    """Enter at every prompt (the review menu's first choice is Apply) went on to apply: the apply is now
    confirmed by typing `apply`; Enter there goes back to the menu (issue 26)."""
    applied = []
    real_apply = wizard.apply
    monkeypatch.setattr(wizard, "apply", lambda *a: applied.append(a) or real_apply(*a))
    s = Scripted({"What now?": [plain.APPLY, plain.APPLY, plain.QUIT]})
    assert plain.run_plain(str(answers_file), s) == 0
    assert applied == [] and [c[1] for c in s.calls].count(plain.CONFIRM) == 2
    assert plain.NO_CHANGES in capsys.readouterr().out
    s = Scripted({"What now?": plain.APPLY, plain.CONFIRM: "apply"})
    plain.run_plain(str(answers_file), s)
    assert len(applied) == 1


def test_a_preflight_refusal_comes_first_in_the_review_and_apply_is_not_offered(answers_file, tmp_path, machine,
                                                                              capsys, monkeypatch):
    """The made-up machine has neither this answers file's OMERO.web nor its OMERODIR: preflight refuses."""
    monkeypatch.setattr(wizard, "apply", lambda *a: pytest.fail("apply must not run"))
    s = Scripted({"What now?": plain.QUIT})
    assert plain.run_plain(str(answers_file), s) == 0
    out = capsys.readouterr().out
    review = out[out.index("== Review"):]
    refused = review[:review.index("OMERO config:")]  # before the first change
    assert "Preflight refuses these changes" in refused and "omerodir: OMERODIR" in refused, review < review.index("omero.web.application_server")
    menu = [c for c in s.calls if c[1] == "What now?"][0]
    assert plain.APPLY not in menu[2]


def test_servers_are_prefilled_in_the_format_their_help_asks_for(flat):
    """Prefilled as "host=... port=4064 name=Main" while the help asks for "host[:port] [name]" (issue 26)."""
    flat = {**flat, "servers": [{"host": "omero.example.org", "port": 4064, "name": "Main"},
                                {"host": "::1", "port": 4063, "name": "Local one"}]}
    s = Scripted({"Change any of these?": False})
    out = plain.ask_all(flat, s)
    shown = s.asked("servers")[0][2]
    assert shown == "omero.example.org:4064 Main; [::1]:4063 Local one", shown
    assert out["servers"] == flat["servers"]  # Enter keeps them: the text reads back the same
