"""What the interactive front ends (Textual and plain) call: no UI here, and no UI decides
anything itself. Start answers, detection, per-field validation, plan, apply."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omerowizard.catalogue import BY_KEY, CATALOGUE, Question
from omerowizard.catalogue import answers as answers_mod
from omerowizard.catalogue.answers import Answers
from omerowizard.catalogue.infer import answers_from_config
from omerowizard.features.apps.packages import not_enabled
from omerowizard.model.errors import AnswersError, WizardError
from omerowizard.model.events import Emit
from omerowizard.model.health import Verdict
from omerowizard.plan.plan import Plan
from omerowizard.run import preflight
from omerowizard.run.apply import apply_plan
from omerowizard.run.planning import choose, plan_for, saved, target_of
from omerowizard.state import health
from omerowizard.state.probe import running_pid
from omerowizard.system.deployments import Deployment, known_omerodirs
from omerowizard.system.distributions import packages
from omerowizard.system.omero import Omero


@dataclass
class Detected:
    """What the welcome step shows."""

    omero_executable: str
    installed: bool
    omero_web_version: str | None
    omerodir: str
    omerodir_exists: bool
    running: bool
    saved_answers: bool
    source: str  # where the starting answers came from
    deployments: tuple[str, ...] = ()  # the OMERODIRs this host's omerowizard state knows
    # web apps installed in the OMERO.web environment but not in omero.web.apps: {name: version}
    apps_not_enabled: Mapping[str, str] = field(default_factory=dict)
    health: Verdict | None = None  # an existing deployment's health (what `omerowizard status` says)

    @property
    def others(self) -> list[str]:
        """The other deployments of this host (the welcome step offers to reconfigure one of them)."""
        return [d for d in self.deployments if d != self.omerodir]

    def lines(self, others: bool = True, health: bool = True) -> list[str]:
        """What was found, a line each; ``others=False`` leaves out the other deployments (the Textual
        welcome step offers them as a chooser instead), ``health=False`` the health verdict (shown apart there)."""
        out = [f"omero: {self.omero_executable}" + ("" if self.installed else " (not installed)")]
        if self.omero_web_version:
            out.append(f"OMERO.web version: {self.omero_web_version}")
        out.append(f"OMERODIR: {self.omerodir}" + ("" if self.omerodir_exists else " (missing)"))
        out.append("OMERO.web is running" if self.running else "OMERO.web is not running")
        out.append(f"Starting answers: {self.source}")
        if self.apps_not_enabled:
            out.append("Web apps installed but not enabled (choose them on the Web apps step): "
                       + ", ".join(f"{name} {version}" for name, version in self.apps_not_enabled.items()))
        if health and self.health is not None:
            out.append(f"Health: {self.health.headline}" + ("" if self.health.healthy else
                                                            f" (the fixes: {self.health.command})"))
            out += [f"  - {p}" for p in self.health.problems]
        if others and self.others:
            out.append("Other deployments on this host (reconfigure one with omerowizard --omerodir DIR): "
                       + ", ".join(self.others))
        return out

    @property
    def reconfigure(self) -> bool:
        """An existing deployment: OMERO.web installed and its OMERODIR holds a config (an empty
        OMERODIR, as a fresh install leaves it, is a first-time deployment)."""
        return self.installed and (Path(self.omerodir) / "etc" / "grid" / "config.xml").exists()


# the deployment named with `omerowizard --omerodir DIR` (set by the command line before a front end starts,
# or by the welcome step's chooser of the other deployments)
chosen_omerodir: str | None = None


def choose_deployment(omerodir: str) -> None:
    """Start again on another deployment of this host, as ``omerowizard --omerodir DIR`` does: the next
    ``starting_answers`` are that deployment's."""
    global chosen_omerodir
    chosen_omerodir = omerodir


def starting_answers(path: str | None = None) -> tuple[dict[str, Any], str]:
    """Flat answers to prefill from: a given file, else the chosen deployment's saved answers, else
    defaults; overlaid with the live OMERO config, so the wizard shows what is really deployed.

    The deployment is the one named with --omerodir, else the only one this host knows. With several
    and none named, the wizard starts a new deployment from the defaults (it never silently opens
    someone else's) and the welcome step lists the others.
    """
    if path:
        return answers_mod.load_file(path).flat(), f"the answers file {path}"
    try:
        dep = choose(chosen_omerodir)
    except WizardError:
        dep = None
    base = saved(dep.omerodir) if dep else None
    if dep is not None and base is None:
        ident = dep.identity()
        nested = answers_mod.defaults().to_nested()
        nested["omero"]["omerodir"] = dep.omerodir
        if ident:
            nested["omero"]["user"], nested["omero"]["venv"] = ident.user, ident.venv
        base = answers_mod.validate(nested, "<deployment>")
        source = f"defaults for the deployment in {dep.omerodir}"
    else:
        source = f"saved answers of the deployment in {dep.omerodir} ({dep.answers})" if base and dep else "defaults"
    base = base or answers_mod.defaults()
    omero = Omero(target_of(base))
    if not omero.target.executable.exists():
        return base.flat(), source
    try:
        config = omero.config_read()
    except WizardError:
        return base.flat(), source
    nested = answers_from_config(config, base.to_nested())
    try:
        inferred = answers_mod.validate(nested, "<live config>")
    except AnswersError:
        return base.flat(), source
    return inferred.flat(), source + ", checked against the live OMERO config"


def detect(flat: Mapping[str, Any], source: str = "") -> Detected:
    a = _lenient(flat)
    target = target_of(a)
    pk = packages(target.venv) if target.venv.exists() else {}
    try:  # config.xml read as data (no omero process), for the apps installed but not enabled
        config = Omero(target).config_read() if pk else {}
    except (WizardError, OSError):
        config = {}
    return Detected(
        omero_executable=str(target.executable),
        installed=target.executable.exists(),
        omero_web_version=pk.get("omero-web"),
        omerodir=str(target.omerodir),
        omerodir_exists=target.omerodir.is_dir(),
        running=running_pid(target) is not None,
        saved_answers=Deployment(target.omerodir).answers.exists(),
        source=source,
        deployments=tuple(known_omerodirs()),
        apps_not_enabled=not_enabled(pk, config),
        health=health_of(str(target.omerodir)) if pk and config else None,
    )


def health_of(omerodir: str) -> Verdict | None:
    """The health of a deployment omerowizard applied (None: it never did, or it cannot be told)."""
    if not Deployment(omerodir).answers.exists():
        return None
    try:
        a, has_saved = health.answers_of(omerodir)
        return health.examine(a, deep=False, has_saved=has_saved).verdict_of()
    except (WizardError, OSError):
        return None


def _lenient(flat: Mapping[str, Any]) -> Answers:
    try:
        return answers_mod.from_flat(flat)
    except AnswersError:
        return answers_mod.defaults()


def parse_field(q: Question, text: str) -> Any:
    """Turn what was typed into the value of the question's type (raises ValueError with the message)."""
    return q.parse(text)


def field_error(key: str, value: Any, flat: Mapping[str, Any]) -> str | None:
    """Inline validation of one field, with the same messages as the answers file."""
    return step_errors({key: value}, flat).get(key)


def step_errors(values: Mapping[str, Any], flat: Mapping[str, Any]) -> dict[str, str]:
    """Validate several answers together (the fields of a step on Next), each against the
    others' new values rather than their old ones, with only the answers whose question
    applies: clearing the HTTPS certificate hides the key, so the old key does not refuse it.

    Returns ``{key: message}`` for the keys of ``values`` that are refused."""
    trial = applicable({**flat, **values})
    try:
        answers_mod.from_flat(trial)
    except AnswersError as exc:
        out: dict[str, str] = {}
        for p in exc.problems:
            key = p.key.split("[")[0]
            if key in values and key not in out:
                out[key] = problem_text(p)
        return out
    return {}


def problem_text(p) -> str:
    """A problem as a sentence that names what it is about (``cors.origins is empty but ...``)."""
    if p.message.split(" ", 1)[0] in {"is", "are", "was", "needs", "has"}:
        text = f"{p.key} {p.message}"
    else:
        text = f"{p.key}: {p.message}"
    return text + (f" (allowed: {p.allowed})" if p.allowed else "")


def allowed_shown(q: Question) -> str:
    """What a question's help says is allowed: the options as the front end offers them (``yes | no``, where
    the answers file reads true or false), else the answers file's rule."""
    options = q.type.options(q)
    if q.type.widget == "choices" and options:
        return " | ".join(label for label, _ in options)
    return q.allowed_text()


def default_of(q: Question, flat: Mapping[str, Any]) -> Any:
    """The catalogue's default for ``q`` given the other answers (not its own current value)."""
    return q.default_for({k: v for k, v in flat.items() if k != q.key})


def follows_default(q: Question, start: Mapping[str, Any]) -> bool:
    """Whether ``q``'s answer keeps following its catalogue default as the answers it depends on
    change, until the user chooses it: when the starting answers did not give it, gave its
    default, or gave it while the question did not apply (``clearsessions: off`` saved by a run
    with Redis sessions is not a choice, so going back to file sessions brings ``daily`` back)."""
    given = start.get(q.key)
    return given is None or not q.when(start) or given == default_of(q, start)


def follow_defaults(flat: Mapping[str, Any], start: Mapping[str, Any], chosen: set[str]) -> dict[str, Any]:
    """The answers that follow their default now (see ``follows_default``): ``{key: default}``
    for every applicable question the user has not chosen whose value is not its default."""
    out: dict[str, Any] = {}
    for q in CATALOGUE:
        if q.key in chosen or q.kind == "mapping" or not q.when(flat) or not follows_default(q, start):
            continue
        default = default_of(q, {**flat, **out})
        if flat.get(q.key) != default:
            out[q.key] = default
    return out




def _same(a: Any, b: Any) -> bool:
    return (tuple(a) if isinstance(a, list) else a) == (tuple(b) if isinstance(b, list) else b)


def derived_changes(start: Mapping[str, Any], flat: Mapping[str, Any], chosen: set[str]) -> list[str]:
    """The answers that changed from the starting answers without the user choosing them (they
    followed their default when other answers changed: clearsessions `off` -> `daily`), for the
    review to list explicitly."""
    out = []
    for q in CATALOGUE:
        if q.key in chosen or q.kind == "mapping" or not q.when(flat):
            continue
        old, new = start.get(q.key), flat.get(q.key)
        if old is None or old == "" or _same(old, new):
            continue  # a question that had no answer and now shows its default is not a change of one
        out.append(f"{q.key}: {q.display(old)} -> {q.display(new)} (not chosen: its default with these answers)")
    return out


def visible(step: str, flat: Mapping[str, Any]) -> list[Question]:
    """The questions of a step whose condition holds for these answers (mapping questions are file-only)."""
    return [q for q in CATALOGUE if q.step == step and q.when(flat) and q.type.widget != "file-only"]


def applicable(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Only the answers whose question applies now: a front end keeps what was typed in a
    question that is hidden again (cors.origins after cors.mode went back to off), but does
    not hand it to ``make`` (where it would be reported as ignored)."""
    return {k: v for k, v in flat.items() if k not in BY_KEY or BY_KEY[k].when(flat)}


def make(flat: Mapping[str, Any]) -> tuple[Answers, Plan, Omero]:
    """Validate and plan (raises AnswersError with every problem)."""
    a = answers_mod.from_flat(flat)
    plan, omero = plan_for(a)
    if not plan.empty:
        # shown in the review, so a problem is fixed before Apply rather than reported by it
        judge(plan, preflight.checks(plan))
    return a, plan, omero


def judge(plan: Plan, checks: list) -> None:
    """Preflight's checks of a plan, before the review: warnings are notes; failures refuse the apply (the
    review shows them first, and Apply is not offered while they hold)."""
    plan.notes += [f"Warning: {c.name}: {c.message}" for c in preflight.warnings(checks)]
    plan.preflight_failures += [f"{c.name}: {c.message}" for c in preflight.failures(checks)]


def apply(plan: Plan, omero: Omero, emit: Emit, source: str = "the wizard's questions (interactive)") -> bool:

    return apply_plan(plan, omero, emit, source=source)


def save_answers_file(a: Answers, path: str | Path) -> Path:
    """"Save answers to file": an answers file that `apply` accepts (0600 when it holds a secret)."""

    p = Path(path)
    text = a.to_yaml("# omerowizard answers (`omerowizard apply` accepts this file)\n")
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    return p
