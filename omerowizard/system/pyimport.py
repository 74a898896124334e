"""Import web apps as OMERO.web itself would, without starting it: the environment's Python, run as the OMERO.web
user (never as root: root does not run what another user may have written), with ``OMERODIR`` set, loads
omero-web's Django settings (which read config.xml and every app's own settings) and then each app's URL module,
as ``omeroweb/urls.py`` does for every entry of ``omero.web.apps`` when the first request comes in."""

from __future__ import annotations

import json
import pwd
from pathlib import Path

from omerowizard.model.errors import WizardError
from omerowizard.system import processes
from omerowizard.system.processes import user_exists

# given on the command line (-c): the names to import come as arguments, never inside the program text
PROGRAM = r"""
import importlib, importlib.util, json, os, sys, traceback
out = {"settings": None, "apps": {}, "django": None}
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "omeroweb.settings")
try:
    import django
    out["django"] = django.get_version()
    django.setup()
except BaseException as exc:
    out["settings"] = "".join(traceback.format_exception_only(type(exc), exc)).strip()[-600:]
else:
    for app in sys.argv[1:]:
        try:
            name = app + ".urls" if importlib.util.find_spec(app) and importlib.util.find_spec(app + ".urls") else app
            importlib.import_module(name)
            out["apps"][app] = None
        except BaseException as exc:
            out["apps"][app] = "".join(traceback.format_exception_only(type(exc), exc)).strip()[-600:]
print("OMEROWIZARD-IMPORTS " + json.dumps(out))
"""
MARK = "OMEROWIZARD-IMPORTS "


class Imports:
    """What importing the settings and each app's URLs gave: None where it worked, else the error."""

    def __init__(self, settings: str | None, apps: dict[str, str | None], django: str | None):
        self.settings, self.apps, self.django = settings, apps, django


def import_apps(venv: str, user: str, omerodir: str, apps: list[str], timeout: float = 120) -> Imports:
    """Import omero-web's settings, then ``APP.urls`` (or ``APP`` when it has no urls module) for each app, as
    ``user`` with the environment's Python. Raises WizardError when that Python cannot be run."""
    home = pwd.getpwnam(user).pw_dir if user_exists(user) else omerodir
    env = {"OMERODIR": omerodir, "HOME": home, "LANG": "C.UTF-8",
           "PATH": f"{Path(venv) / 'bin'}:/usr/local/bin:/usr/bin:/bin"}
    result = processes.run([str(Path(venv) / "bin" / "python"), "-c", PROGRAM, *apps], user=user, env=env,
                           timeout=timeout, separate_errors=True, cwd="/")
    for line in result.output.splitlines():
        if line.startswith(MARK):
            data = json.loads(line[len(MARK):])
            return Imports(data.get("settings"), dict(data.get("apps") or {}), data.get("django"))
    raise WizardError(f"the environment's Python did not report its imports (exit {result.returncode}): "
                      f"{(result.errors or result.output).strip()[-400:]}")
