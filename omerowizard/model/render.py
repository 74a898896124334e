"""Render the web-server files, the maintenance page, the systemd unit and the Windows files
with jinja2 from ``templates/``.

Every value that reaches a template has passed the catalogue's validators (host names, paths,
prefixes and sizes are refused when they could end a directive or open a block), so nothing
is escaped into a config file. XML templates are autoescaped as a second line of defence.
``StrictUndefined`` makes a missing value an error instead of an empty string.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import jinja2

import omerowizard


def templates_dir() -> Path:
    """The wheel ships templates/ inside the package; a checkout has it at the top."""
    packaged = Path(omerowizard.__file__).parent / "templates"
    if packaged.is_dir():
        return packaged
    return Path(omerowizard.__file__).parent.parent / "templates"


def _autoescape(name: str | None) -> bool:
    return bool(name) and (".xml" in name or "web.config" in name)  # type: ignore[operator]


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        autoescape=_autoescape,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(name: str, **context: object) -> str:
    return environment().get_template(name).render(**context)
