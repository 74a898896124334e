"""The platform and the OMERO.web installation the wizard drives (user, environment, OMERODIR)."""

from __future__ import annotations

from omerowizard.features.base import Feature
from omerowizard.features.conditions import unix
from omerowizard.model import validators as v
from omerowizard.model.qtypes import BOOL, CHOICE, TEXT, Question


class Install(Feature):
    name = "install"
    steps = (("platform", "Platform"), ("omero", "OMERO.web installation"))
    questions = (
        Question("platform", "Which platform does OMERO.web's front end run on?",
                 "Unix (Linux) hosts run OMERO.web with gunicorn behind nginx or Apache. Windows hosts use IIS: "
                 "OMERO.web 5.3 and later no longer run on Windows, so there IIS proxies to an OMERO.web on a Unix "
                 "host.",
                 CHOICE, "platform", default="unix", choices=("unix", "windows")),
        Question("omero.user", "Which account runs OMERO.web?",
                 "The OMERO docs use a dedicated account, omero-web. omero refuses to run as root.",
                 TEXT, "omero", default="omero-web", check=v.username, allowed="a user name other than root",
                 when=unix),
        Question("omero.venv", "Where is the OMERO.web virtual environment?",
                 "The Python environment that holds bin/omero (the OMERO docs use /opt/omero/web/venv3).",
                 TEXT, "omero", default="/opt/omero/web/venv3", check=v.unix_path, allowed="an absolute path",
                 when=unix),
        Question("omero.omerodir", "Where is OMERODIR?",
                 "OMERODIR holds etc/grid/config.xml, var/log and var/static of this OMERO.web.",
                 TEXT, "omero", default="/opt/omero/web/OMERO.web", check=v.unix_path, allowed="an absolute path",
                 when=unix),
        Question("omero.web_version", "Which omero-web version should run?",
                 "Upgrade (or downgrade) OMERO.web: the review lists the packages that change and the upgrade notes "
                 "between the two versions. Behind omerowizard's own nginx or Apache, the release goes into a new "
                 "environment beside the running one, which is kept, and OMERO.web switches to it without downtime; "
                 "`omerowizard rollback` switches back, nothing reinstalled. Elsewhere omero-web is installed in "
                 "place and OMERO.web restarted; rollback reinstalls the previous packages. Empty keeps the installed "
                 "version.",
                 TEXT, "advanced", default=None, nullable=True, check=v.version,
                 allowed='a released version in quotes, such as "5.33.2", or empty', when=unix),
    )


class Start(Feature):
    name = "start"
    questions = (
        Question("start", "Start or restart OMERO.web when done?",
                 "Runs `omero web start` (or restart when it runs) and checks that the login page answers.",
                 BOOL, "advanced", default=True),
    )


FEATURE = Install()
START = Start()
