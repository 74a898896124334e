"""``omerowizard --plain``: the catalogue's questions line by line.

For basic terminals, serial consoles and SSH sessions. The same questions (in catalogue
order, skipping those whose condition does not hold), the same validation messages, the
same plan as review and the same apply as the other front ends: everything that decides
what changes comes from ``wizard``; this module only asks and prints.

Prompts are questionary's (arrow keys, prefilled text) on terminals that understand
cursor movement; on a dumb terminal (``TERM=dumb``, an editor's shell, a serial console)
they are numbered lines read with ``input()``, which need no escape sequences.
"""

from __future__ import annotations

import os
import shutil
import sys
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import questionary
from prompt_toolkit.styles import Style

from omerowizard.catalogue import CATALOGUE, Question
from omerowizard.catalogue import STEP_IDS as STEPS
from omerowizard.catalogue import STEPS as FEATURE_STEPS
from omerowizard.catalogue.answers import Answers
from omerowizard.model.errors import AnswersError
from omerowizard.model.events import Event, Finished, as_line
from omerowizard.model.secrets import mask_text
from omerowizard.plan.plan import Plan
from omerowizard.system.omero import Omero
from omerowizard.ui import wizard

NO_CHANGES = "No changes were made."

STEP_TITLES = dict(FEATURE_STEPS)

APPLY = "Apply the changes"
DIFF = "Show the file differences"
SAVE = "Save the answers to a file"
QUIT = "Quit without changing anything"
CONFIRM = 'Type "apply" to change the deployment now (Enter goes back)'


# ----------------------------------------------------------------------------- prompts
class QuestionaryPrompts:
    """Arrow-key selection, y/n confirmation and prefilled text (questionary); Ctrl-C raises."""

    intro = "Enter keeps the value shown; Ctrl-C quits without changes."

    def __init__(self) -> None:
        # serial consoles and many web consoles never answer the cursor-position request; without
        # this prompt_toolkit waits, then prints a warning. These prompts do not need the answer.
        os.environ.setdefault("PROMPT_TOOLKIT_NO_CPR", "1")
        self.style = Style([("qmark", "bold"), ("question", "bold"), ("answer", "bold")])

    def select(self, message: str, choices: Sequence[str], default: str) -> str:
        return questionary.select(message, choices=list(choices), default=default, style=self.style).unsafe_ask()

    def confirm(self, message: str, default: bool) -> bool:
        # auto_enter=False: `y` alone does not answer, so the Enter after it cannot answer the next question
        return bool(questionary.confirm(message, default=default, auto_enter=False, style=self.style).unsafe_ask())

    def text(self, message: str, default: str) -> str:
        return questionary.text(message, default=default, style=self.style).unsafe_ask()

    def checkbox(self, message: str, choices: Sequence[str], chosen: Sequence[str]) -> list[str]:
        """Several of ``choices``: arrows move, space ticks or unticks, Enter takes the ticked ones
        (questionary marks them with a character, so the choice shows without colour)."""
        options = [questionary.Choice(c, value=c, checked=c in chosen) for c in choices]
        return list(questionary.checkbox(message, choices=options, style=self.style).unsafe_ask())


class LinePrompts:
    """Numbered choices and bracketed defaults read with input(): no escape sequences at all."""

    intro = "Enter keeps the value in [brackets], '-' empties it, Ctrl-C quits without changes."

    def select(self, message: str, choices: Sequence[str], default: str) -> str:
        for i, choice in enumerate(choices, 1):
            say(f"  {i}) {choice}" + ("  (current)" if choice == default else ""))
        while True:
            text = _input(f"{message} [{default}]: ")
            if not text:
                return default
            if text.isdigit() and 1 <= int(text) <= len(choices):
                return choices[int(text) - 1]
            if text in choices:
                return text
            say(f"  Type a number from 1 to {len(choices)}, or Enter for {default}.")

    def confirm(self, message: str, default: bool) -> bool:
        while True:
            text = _input(f"{message} [{'Y/n' if default else 'y/N'}]: ").lower()
            if not text:
                return default
            if text in {"y", "yes"}:
                return True
            if text in {"n", "no"}:
                return False
            say("  Type y or n.")

    def text(self, message: str, default: str) -> str:
        text = _input(f"{message} [{default}]: " if default else f"{message}: ")
        if text == "-":
            return ""
        return text or default

    def checkbox(self, message: str, choices: Sequence[str], chosen: Sequence[str]) -> list[str]:
        for i, choice in enumerate(choices, 1):
            say(f"  {i}) [{'x' if choice in chosen else ' '}] {choice}")
        current = ", ".join(chosen) or "-"
        while True:
            text = _input(f"{message}: numbers or names, separated by commas ('-' for none) [{current}]: ")
            if not text:
                return list(chosen)
            if text == "-":
                return []
            out: list[str] = []
            for item in (t.strip() for t in text.split(",") if t.strip()):
                if item.isdigit() and 1 <= int(item) <= len(choices):
                    item = choices[int(item) - 1]
                if item not in choices:
                    say(f"  {item!r} is not one of them: type numbers from 1 to {len(choices)} or names.")
                    break
                out.append(item)
            else:
                return [c for c in choices if c in out]


def _input(prompt: str) -> str:
    try:
        return input(prompt).strip()
    except EOFError:  # Ctrl-D, or the terminal went away: nobody is answering
        raise KeyboardInterrupt from None


def prompts_for_terminal() -> QuestionaryPrompts | LinePrompts:
    if os.environ.get("TERM", "") in {"", "dumb", "unknown"}:
        return LinePrompts()
    return QuestionaryPrompts()


Prompts = QuestionaryPrompts | LinePrompts


# ----------------------------------------------------------------------------- the run
def run_plain(answers_path: str | None, prompts: Prompts | None = None) -> int:
    """Ask, review, apply. Exit status: 0 done (or nothing to change, or quit at the review),
    1 the apply failed, 2 bad answers file, 130 interrupted."""
    prompts = prompts or prompts_for_terminal()
    try:
        flat, source = wizard.starting_answers(answers_path)
        say("omerowizard: plain prompts")
        say(prompts.intro)
        for line in wizard.detect(flat, source).lines():
            say(f"  {line}")
        start, chosen = dict(flat), set()
        flat = ask_all(flat, prompts, start=start, chosen=chosen)
        say("")
        say("Reading the live deployment to plan the changes...")
        a, plan, omero = make_until_valid(flat, prompts)
        show_review(plan, wizard.derived_changes(start, a.flat(), chosen))
        if plan.empty:
            return 0
        if not review_menu(plan, a, prompts):
            say(NO_CHANGES)
            return 0
    except (KeyboardInterrupt, EOFError):  # Ctrl-C, or Ctrl-D on an empty line
        say("")
        say(NO_CHANGES)
        return 130
    return run_apply(plan, omero)


def run_apply(plan: Plan, omero: Omero) -> int:
    say("")
    try:
        ok = wizard.apply(plan, omero, print_event)
    except KeyboardInterrupt:
        say("")
        say("Interrupted while applying: some changes may already be made. "
            "Run omerowizard again to see what is left to do.")
        return 130
    return 0 if ok else 1


def say(line: str) -> None:
    print(line, flush=True)


def print_event(event: Event) -> None:
    """Each apply event as a line, flushed at once so omero's output appears as it is printed."""
    line = as_line(event)
    if line is None:
        return
    failed = isinstance(event, Finished) and not event.ok
    print(line, file=sys.stderr if failed else sys.stdout, flush=True)


# ----------------------------------------------------------------------------- questions
def ask_all(flat: Mapping[str, Any], prompts: Prompts, only: set[str] | None = None,
            start: Mapping[str, Any] | None = None, chosen: set[str] | None = None) -> dict[str, Any]:
    """Ask every applicable question in catalogue order (or only the keys in ``only``).

    Conditions are evaluated again before each question, so an answer decides which
    questions follow (cors.origins only after cors.mode origins). With the starting answers
    (``start``), an answer the user has not chosen (not in ``chosen``, which collects the
    answers that differ from their prefill) follows its catalogue default as earlier answers
    change: clearsessions saved as `off` by a Redis run is `daily` again with file sessions.
    """
    flat = dict(flat)
    chosen = chosen if chosen is not None else set()

    def follow() -> None:
        if start is not None:
            flat.update(wizard.follow_defaults(flat, start, chosen))

    for step in STEPS:
        titled = False
        for q in (q for q in CATALOGUE if q.step == step):
            if only is not None and q.key not in only:
                continue
            if q not in wizard.visible(step, flat):
                continue
            if not titled:
                say("")
                say(f"== {STEP_TITLES.get(step, step)} ==")
                titled = True
                if step == "advanced" and only is None:
                    follow()
                    if not wants_advanced(flat, prompts):
                        break
            follow()
            prefill = current(q, flat)
            flat[q.key] = ask(q, flat, prompts)
            if flat[q.key] != prefill:
                chosen.add(q.key)
    follow()
    return flat


def wants_advanced(flat: Mapping[str, Any], prompts: Prompts) -> bool:
    """The advanced settings are listed, and asked only when wanted: most runs change none of them."""
    for q in wizard.visible("advanced", flat):
        say(f"  {q.key}: {q.display(current(q, flat))}")
    return prompts.confirm("Change any of these?", False)


def current(q: Question, flat: Mapping[str, Any]) -> Any:
    """The value to prefill: the current answer, or the question's default when the current answer
    is not valid with the answers given so far (port 80 after switching to nginx-development)."""
    value = flat.get(q.key)
    if value is None:
        return q.default_for(flat)
    if wizard.field_error(q.key, value, flat) is not None:
        default = q.default_for(flat)
        if default is not None and wizard.field_error(q.key, default, flat) is None:
            return default
    return value




def ask(q: Question, flat: Mapping[str, Any], prompts: Prompts) -> Any:
    """One question, asked again until the answer is valid (raises KeyboardInterrupt on Ctrl-C).

    A refused answer is printed with the whole message (the answers file's message) on its own
    line, which a screen reader or a narrow terminal keeps, and the question comes back
    prefilled with what was typed.
    """
    say("")
    for line in textwrap.wrap(q.help, _width() - 2, break_on_hyphens=False):
        say(f"  {line}")
    # the answers-file key, so what is learnt here carries over to `omerowizard apply`
    allowed = q.allowed_text() if q.type.widget not in {"choices", "multi"} else ""
    say(f"  [{q.key}]" + (f" allowed: {allowed}" if allowed else ""))
    value = current(q, flat)
    masked = q.display(value) if q.secret and value else q.as_text(value)
    typed = masked
    while True:
        error = None
        if q.type.widget == "choices" and q.choices:
            # choices that the answers so far rule out (iis on unix) are not offered
            choices = [c for c in q.choices if wizard.field_error(q.key, c, flat) is None] or list(q.choices)
            answer: Any = prompts.select(q.prompt, choices, value if value in choices else choices[0])
        elif q.type.widget == "choices":  # yes or no
            answer = prompts.confirm(q.prompt, bool(value))
        elif q.type.widget == "multi":
            answer = prompts.checkbox(q.prompt, [v for _, v in q.type.options(q)], list(value or ()))
        else:
            typed = prompts.text(q.prompt, typed)
            try:
                # a secret left masked as shown keeps its value
                answer = value if q.secret and typed == masked else wizard.parse_field(q, typed)
            except ValueError as exc:
                error = str(exc)
        if error is None:
            error = wizard.field_error(q.key, answer, flat)
        if error is None:
            return answer
        say(f"  Not accepted: {error}")
        # asked again prefilled with the last value accepted: Enter must not send the refused one again
        typed = masked


def as_text(value: Any, secret: bool = False) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return mask_text(str(value)) if secret else str(value)


# ----------------------------------------------------------------------------- review
def make_until_valid(flat: dict[str, Any], prompts: Prompts) -> tuple[Answers, Plan, Omero]:
    """Plan the answers that apply (what was typed in a question hidden again is kept for the
    next ask, but not planned); when a rule joining several answers fails, say why and ask
    those questions again."""
    while True:
        try:
            return wizard.make(wizard.applicable(flat))
        except AnswersError as exc:
            say("")
            for p in exc.problems:
                say(f"  {p.key}: {p.message}" + (f" (allowed: {p.allowed})" if p.allowed else ""))
            keys = {p.key.split("[")[0] for p in exc.problems}
            askable = {q.key for step in STEPS for q in wizard.visible(step, flat)} & keys
            if not askable:
                raise
            say("Please answer these again.")
            flat = ask_all(flat, prompts, only=askable)


def show_review(plan: Plan, derived: Sequence[str] = ()) -> None:
    say("")
    say("== Review: what applying will change ==")
    if plan.preflight_failures:  # first: nothing is applied until it is fixed
        say(_wrapped("Preflight refuses these changes; nothing can be applied until this is fixed:", "    "))
        for failure in plan.preflight_failures:
            say(_wrapped(f"  {failure}", "        "))
    for line in plan.lines():
        say(_wrapped(line, "  " + " " * (len(line) - len(line.lstrip())) + "    "))
    if derived:
        say("  Answers that followed their default (you did not choose them):")
        for line in derived:
            say(_wrapped(f"  {line}", "        "))
    for note in plan.notes:
        say(_wrapped(f"note: {note}", "        "))


def _wrapped(line: str, indent: str) -> str:
    """A long line (a crontab line, a path) wrapped at the terminal's width, words and paths kept whole."""
    width = _width()
    return "\n".join(textwrap.wrap(line, width, initial_indent="  ", subsequent_indent=indent,
                                   break_on_hyphens=False, break_long_words=False)) or "  "


def _width() -> int:
    """The terminal's width (COLUMNS first, as shutil does), at least 40 columns."""
    return max(shutil.get_terminal_size((80, 24)).columns - 1, 40)


def review_menu(plan: Plan, a: Answers, prompts: Prompts) -> bool:
    """True to apply, False to quit without changes. File diffs and saving the answers come back here."""
    while True:
        # no Apply while preflight refuses the plan
        choices = ([] if plan.preflight_failures else [APPLY]) + ([DIFF] if plan.diffs() else []) + [SAVE, QUIT]
        say("")
        choice = prompts.select("What now?", choices, choices[0])
        if choice == APPLY:
            # a deliberate act: Enter alone (at every prompt so far) never applies
            if prompts.text(CONFIRM, "").strip().lower() == "apply":
                return True
            say("Not applied.")
        if choice == QUIT:
            return False
        if choice == DIFF:
            for diff in plan.diffs():
                sys.stdout.write(diff)
            sys.stdout.flush()
        if choice == SAVE:
            save_answers(a, prompts)


def save_answers(a: Answers, prompts: Prompts) -> None:
    typed = str(Path.cwd() / "omerowizard-answers.yml")
    while True:
        typed = prompts.text("Save the answers to which file?", typed)
        error = writable_file(typed)
        if error is None:
            break
        say(f"  Not accepted: {error}")
    saved = wizard.save_answers_file(a, Path(typed.strip()).expanduser())
    say(f"Saved to {saved}: `omerowizard apply {saved}` applies it.")


def writable_file(text: str) -> str | None:
    if not text.strip():
        return "type a file name"
    p = Path(text.strip()).expanduser()
    if p.is_dir():
        return f"{p} is a directory"
    if not p.parent.is_dir():
        return f"{p.parent} does not exist"
    return None


def main(answers_path: str | None = None, omerodir: str | None = None) -> int:
    """`omerowizard` (cli.COMMANDS): the wizard, on the deployment in ``omerodir`` when one is named."""
    if omerodir:
        wizard.choose_deployment(omerodir)
    return run_plain(answers_path)

