"""Render the web-server files, the maintenance page, the systemd unit and the Windows files
with jinja2 from ``templates/``.

Every value that reaches a template has passed the catalogue's validators (host names, paths,
prefixes and sizes are refused when they could end a directive or open a block). Here, in one place,
each file's language applies its own rule to every value a template prints (jinja's ``finalize``):
XML and HTML escape it (autoescape; their templates print no value inside a comment, where "--"
could not be escaped); nginx, Apache, a systemd unit and a Windows batch file have no
escape that keeps a value one token wherever it stands, so a value holding a character that language
reads as syntax (a blank, a line break, a quote, ``;``, ``{``, ``#``, ``%``, ...) is refused with
``RenderError`` instead of being written: what a file holds is then exactly the value, and no value
can end a directive or start another. ``StrictUndefined`` makes a missing value an error instead of
an empty string.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from markupsafe import Markup

import omerowizard
from omerowizard.model.errors import WizardError
from omerowizard.model.lazy import lazy

jinja2 = lazy("jinja2")  # its code runs when the first file is rendered


class RenderError(WizardError, ValueError):
    """A value the file's language cannot carry exactly (the validators should have refused it): like a bad
    answer, it stops the run before anything changed (planning renders every file first)."""

    exit_code = 2


# the characters each language reads as syntax in a value, besides blanks and line breaks (refused in all
# four: a blank splits a value in two, a line break starts a new directive)
SYNTAX = {
    "nginx": set(";{}#'\"\\$"),  # end of a directive, a block, a comment, quoting, escapes, variables
    "apache": set("\"'<>"),  # quoting and section tags (a trailing backslash, continuing the line: below)
    "systemd": set("%\"'\\$;"),  # specifiers, quoting, escapes, variables, command separators
    "bat": set("%\"&|<>^!"),  # variables, quoting, command separators and redirections, escapes
}


def templates_dir() -> Path:
    """The wheel ships templates/ inside the package; a checkout has it at the top."""
    packaged = Path(omerowizard.__file__).parent / "templates"
    if packaged.is_dir():
        return packaged
    return Path(omerowizard.__file__).parent.parent / "templates"


def language(name: str) -> str:
    """The language of a template, by its name."""
    if ".xml" in name or "web.config" in name:
        return "xml"
    if ".html" in name:
        return "html"
    if name.startswith("apache"):
        return "apache"
    if name.startswith("nginx"):
        return "nginx"
    if ".service" in name:
        return "systemd"
    if ".bat" in name:
        return "bat"
    raise ValueError(f"no language known for the template {name}")


def value_problem(lang: str, text: str) -> str | None:
    """Why ``text`` cannot be written as a value in ``lang`` exactly (None: it can)."""
    bad = next((ch for ch in text if not ch.isprintable()), None)
    if bad is not None:
        return f"holds the character U+{ord(bad):04X}"
    if lang in {"xml", "html"}:  # escaped (autoescape); the templates print no value inside a comment
        return None
    if lang != "bat" and any(ch.isspace() for ch in text):  # bat prints blanks only in rem lines
        return "holds a blank"
    syntax = sorted(ch for ch in set(text) & SYNTAX[lang])
    if syntax:
        return f"holds {' '.join(repr(ch) for ch in syntax)}, which {lang} reads as syntax"
    if lang == "apache" and text.endswith("\\"):
        return "ends in a backslash (Apache would join the next line)"
    return None


def _finalize(lang: str):
    def finalize(value: Any) -> Any:
        if value is None:
            raise RenderError("a template printed None (a missing value)")
        text = str(value)
        problem = value_problem(lang, text)
        if problem:
            raise RenderError(f"{text!r} cannot be written into a {lang} file exactly: it {problem}; nothing was "
                              "changed (allowed: the characters the answer's validator allows)")
        return value if isinstance(value, Markup) or lang in {"xml", "html"} else text
    return finalize


@lru_cache(maxsize=None)
def environment(lang: str) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        autoescape=lang in {"xml", "html"},
        finalize=_finalize(lang),
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(name: str, **context: object) -> str:
    return environment(language(name)).get_template(name).render(**context)
