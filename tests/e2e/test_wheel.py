"""The built wheel carries templates/ and works on its own in a new virtual environment."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_built_wheel_installs_and_renders_templates(tmp_path):
    dist = tmp_path / "dist"
    build = subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(ROOT)],
                           capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    wheel = next(dist.glob("omerowizard-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {Path(n).name for n in names if n.startswith("omerowizard/templates/")}
    assert shipped == {p.name for p in (ROOT / "templates").iterdir() if p.is_file()}
    # the demonstration machine (made-up state, recorded runs) serves the tests and the screenshots, not users
    assert not [n for n in names if "demo" in Path(n).name or n.startswith("tests/")], names
    assert {"omerowizard/ui/tui/app.py", "omerowizard/ui/tui/core.py"} <= set(names)

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    install = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", str(wheel)],
                             capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-3000:]

    # the installed package alone: not a checkout that PYTHONPATH (the development run) points at
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    help_ = subprocess.run([str(venv / "bin" / "omerowizard"), "--help"], capture_output=True, text=True, cwd="/",
                           env=clean)
    assert help_.returncode == 0
    for command in ("apply", "rollback", "schema", "answers", "install-omero"):
        assert command in help_.stdout
    script = (
        "import omerowizard, omerowizard.model.render as r; from omerowizard.catalogue import answers;"
        "print(r.templates_dir());"
    )
    where = subprocess.run([str(venv / "bin" / "python"), "-c", script], capture_output=True, text=True, cwd="/",
                           env=clean)
    assert where.returncode == 0, where.stderr
    assert str(venv) in where.stdout.splitlines()[0]  # templates found inside the installed package
    # render a real server block through the plan, from the installed package alone
    answers_file = tmp_path / "a.yml"
    answers_file.write_text(f"omero: {{omerodir: {tmp_path}/omerodir, venv: {tmp_path}/novenv}}\n"
                            f"web_server: {{kind: nginx, server_name: omero.example.org, "
                            f"config_path: {tmp_path}/site.conf}}\nprefix: /omero\n")
    dry = subprocess.run([str(venv / "bin" / "omerowizard"), "apply", str(answers_file), "--dry-run", "--show-diff"],
                         capture_output=True, text=True, cwd="/", env={"OMEROWIZARD_HOME": str(tmp_path / "home"),
                                                                       "PATH": "/usr/bin:/bin"})
    # no OMERO.web at that venv: the dry run plans and says preflight would refuse (exit 1)
    assert dry.returncode == 1 and "preflight would fail: omero:" in dry.stdout, dry.stdout + dry.stderr
    assert "server_name omero.example.org;" in dry.stdout
    assert "location /omero" in dry.stdout

