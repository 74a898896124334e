"""The seam between the Textual app and the rest of omerowizard.

The app calls the core only through a ``Core``: by default the functions of
``omerowizard.ui.wizard`` and the installer; tests and the screenshot script pass
their own (fixed starting answers, a plan made from a fake state, an apply that
only emits events), so the screens can be driven without touching the machine.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omerowizard.catalogue.answers import Answers
from omerowizard.install.installer import Installer, InstallOptions, cancel_running
from omerowizard.model.events import Emit
from omerowizard.plan.plan import Plan
from omerowizard.run.apply import interrupt_current
from omerowizard.system.omero import Omero
from omerowizard.ui import wizard

Say = Callable[[str], None]


def install(user: str, venv: str, omerodir: str, say: Say) -> None:
    """Run omerowizard's installer (``omerowizard install-omero``) for these paths."""

    Installer(InstallOptions(user=user, venv=Path(venv), omerodir=Path(omerodir)), say=say).run()


def cancel_install() -> bool:
    """Stop the installation running in this process (its build and temporary files go)."""

    return cancel_running("stopped in the wizard")


def interrupt_apply() -> bool:
    """Interrupt the running apply (it restores what it changed, as Ctrl-C does on the command line)."""

    return interrupt_current()


@dataclass
class Core:
    starting_answers: Callable[[str | None], tuple[dict[str, Any], str]] = wizard.starting_answers
    detect: Callable[[Mapping[str, Any], str], wizard.Detected] = wizard.detect
    make: Callable[[Mapping[str, Any]], tuple[Answers, Plan, Omero | None]] = wizard.make
    apply: Callable[[Plan, Any, Emit], bool] = wizard.apply
    save_answers_file: Callable[[Answers, str], Path] = wizard.save_answers_file
    install: Callable[[str, str, str, Say], None] = install
    cancel_install: Callable[[], bool] = cancel_install
    interrupt_apply: Callable[[], bool] = interrupt_apply
    choose_deployment: Callable[[str], None] = wizard.choose_deployment
