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
        "import omerowizard, omerowizard.model.render as r; from omerowizard import answers;"
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


def readme_set_up() -> list[str]:
    """The commands of the README's "Set up" block (comments dropped)."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Set up"):text.index("## Screenshots")]
    block = section[section.index("```sh") + 5:section.index("```", section.index("```sh") + 5)]
    return [line.strip() for line in block.splitlines() if line.strip() and not line.strip().startswith("#")]


def test_the_readme_set_up_works_with_debians_externally_managed_python(tmp_path):
    """Debian's /usr/bin/python3 refuses `pip install` (PEP 668); the README's commands make a
    virtual environment with it, install this code there, and the wizard runs: --help and a dry run."""
    import shlex
    import shutil

    python = Path("/usr/bin/python3")
    if not python.exists():
        raise AssertionError("missing part: Debian's /usr/bin/python3 (apt-get install python3)")
    markers = list(Path("/usr/lib").glob("python3.*/EXTERNALLY-MANAGED"))
    assert markers, "Debian's Python should carry its PEP 668 marker (EXTERNALLY-MANAGED)"
    refused = subprocess.run([str(python), "-m", "pip", "install", "--dry-run", str(ROOT)], capture_output=True,
                             text=True)
    assert refused.returncode != 0 and ("externally-managed-environment" in refused.stderr
                                        or "No module named pip" in refused.stderr), refused.stderr

    commands = readme_set_up()
    assert commands[0] == "apt-get install -y python3-venv"
    assert subprocess.run(["dpkg", "-s", "python3-venv"], capture_output=True).returncode == 0, \
        "missing part: python3-venv (apt-get install python3-venv)"
    src = tmp_path / "omerowizard" / "src"  # the checkout, as the README says to put it on the host
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".git", "__pycache__", "*.pyc", "dist", "build"))
    base = tmp_path / "omerowizard"
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(tmp_path), "OMEROWIZARD_HOME": str(tmp_path / "home")}
    for command in commands[1:-1]:
        argv = [a.replace("/opt/omerowizard", str(base)) for a in shlex.split(command)]
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd="/", timeout=900)
        assert proc.returncode == 0, f"{command}:\n{proc.stdout[-2000:]}{proc.stderr[-3000:]}"
    wizard = commands[-1].replace("/opt/omerowizard", str(base))
    assert wizard.endswith("/bin/omerowizard")
    assert shutil.which("python3", path=env["PATH"]) == str(python), "the venv is made with Debian's python3"
    cfg = (Path(wizard).parent.parent / "pyvenv.cfg").read_text()
    assert "home = /usr/bin" in cfg, cfg

    help_ = subprocess.run([wizard, "--help"], capture_output=True, text=True, env=env, cwd="/")
    assert help_.returncode == 0 and "install-omero" in help_.stdout, help_.stderr
    answers = tmp_path / "a.yml"
    answers.write_text(f"omero: {{omerodir: {tmp_path}/omerodir, venv: {tmp_path}/novenv}}\n"
                       f"web_server: {{kind: nginx, server_name: omero.example.org, config_path: {tmp_path}/site.conf}}\n")
    dry = subprocess.run([wizard, "apply", str(answers), "--dry-run"], capture_output=True, text=True, env=env, cwd="/")
    assert dry.returncode == 1 and "preflight would fail: omero:" in dry.stdout, dry.stdout + dry.stderr
    assert "Dry run: nothing was changed." in dry.stdout
    assert not (tmp_path / "site.conf").exists()
