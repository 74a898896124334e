"""Checks before anything changes. Each failure says what is wrong and how to fix it; a failing
preflight changes nothing. Every check is cheap: no omero process is started."""

from __future__ import annotations

from omerowizard.catalogue import FEATURES
from omerowizard.features.base import Check
from omerowizard.features.https import check_certificate  # noqa: F401 (re-exported)
from omerowizard.features.sessions import check_session_store as check
from omerowizard.model.errors import PreflightError
from omerowizard.plan.plan import Plan
from omerowizard.system import gunicorn, processes
from omerowizard.system.omero import web_log_problem
from omerowizard.system.processes import user_exists

__all__ = ["Check", "checks", "run", "warnings", "failures"]


def _as_user_ok(user: str, argv: list[str]) -> bool:
    try:
        return processes.run(argv, user=user, env={"HOME": "/"}, separate_errors=True).returncode == 0
    except PreflightError:
        return False


def check_session_store(plan: Plan) -> str | None:

    return check(plan)


def checks(plan: Plan) -> list[Check]:
    state = plan.state
    t = state.target
    out: list[Check] = [Check("files", False, why) for why in plan.refusals]
    needs_omero = bool(plan.config or plan.web)
    if needs_omero:
        if not user_exists(t.user):
            out.append(Check("user", False, f"the user {t.user!r} does not exist: run `omerowizard install-omero "
                                            f"--user {t.user}` or set omero.user"))
        elif not t.executable.exists():
            out.append(Check("omero", False, f"no omero at {t.executable}: run `omerowizard install-omero "
                                             f"--venv {t.venv}` or set omero.venv"))
        elif not _as_user_ok(t.user, [str(t.python), "-c", "import omero"]):
            out.append(Check("omero", False, f"{t.user} cannot run {t.executable} (its Python or omero package); "
                                             f"check permissions of {t.venv}"))
        else:
            out.append(Check("omero", True))
        if not t.omerodir.is_dir():
            out.append(Check("omerodir", False, f"OMERODIR {t.omerodir} does not exist: create it owned by {t.user} "
                                                f"(`omerowizard install-omero --omerodir {t.omerodir}`)"))
        elif user_exists(t.user) and not _as_user_ok(t.user, ["/usr/bin/test", "-w", str(t.omerodir)]):
            out.append(Check("omerodir", False, f"{t.user} cannot write OMERODIR {t.omerodir}: "
                                                f"chown -R {t.user} {t.omerodir}"))
        else:
            out.append(Check("omerodir", True))
    if plan.web:
        out.append(check_web_log(t))
    if plan.web and plan.web.action == "reload":
        out.append(check_reload(t))
    for feature in FEATURES:
        out += feature.preflight(plan)
    return out


def failures(checks_: list[Check]) -> list[Check]:
    """The checks that stop an apply."""
    return [c for c in checks_ if not c.ok and not c.warning]


def warnings(checks_: list[Check]) -> list[Check]:
    """The checks that fail without stopping an apply (an OMERO.server not reachable yet)."""
    return [c for c in checks_ if not c.ok and c.warning]


def check_web_log(t) -> Check:
    why = web_log_problem(t)
    return Check("web log", why is None, why or "")


def check_reload(t) -> Check:
    """A graceful reload signals the gunicorn master of this deployment: verify it before changing anything."""

    try:
        gunicorn.find_master(t.omerodir, t.user).close()
    except gunicorn.ReloadError as exc:
        return Check("reload", False, f"{exc}; stop whatever runs there, or `omero web restart` as {t.user}")
    return Check("reload", True)


def run(plan: Plan) -> None:
    failed = failures(checks(plan))
    if failed:
        lines = "\n".join(f"  {c.name}: {c.message}" for c in failed)
        raise PreflightError(f"preflight failed; nothing was changed:\n{lines}")
