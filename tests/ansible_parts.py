"""ansible-core for the tests, from the package registry: a virtual environment kept outside the
checkout (built once per machine, reused while it works), and the project's collection built and
installed from its artifact as a user would. A part that cannot be had fails the test, never a skip.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COLLECTION = ROOT / "ansible_collections" / "omerowizard" / "omero_web"
ANSIBLE_VENV = Path(os.environ.get("OMEROWIZARD_ANSIBLE_VENV", "/var/cache/omerowizard/ansible-venv"))
REQUIREMENT = "ansible-core>=2.15"


def _safe_parent(path: Path) -> None:
    """Root runs what this venv holds: its parent must be root's and writable by nobody else."""
    path.mkdir(parents=True, exist_ok=True, mode=0o755)
    st = path.lstat()
    if os.geteuid() == 0 and (st.st_uid != 0 or st.st_mode & 0o022):
        pytest.fail(f"missing part: ansible-core: {path} must belong to root and be writable by nobody else "
                    "(it holds the ansible-core the tests run as root)", pytrace=False)


def ansible_venv() -> Path:
    """The venv's bin directory, with ansible-playbook and ansible-galaxy; created with pip when missing."""
    bin_dir = ANSIBLE_VENV / "bin"
    _safe_parent(ANSIBLE_VENV.parent)
    with open(ANSIBLE_VENV.parent / ".ansible-venv.lock", "a") as lock:  # test runs in other checkouts wait
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _works(bin_dir):
            return bin_dir
        shutil.rmtree(ANSIBLE_VENV, ignore_errors=True)
        python = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable
        steps = [[python, "-m", "venv", str(ANSIBLE_VENV)],
                 [str(bin_dir / "python"), "-m", "pip", "install", "-q", REQUIREMENT]]
        for argv in steps:
            proc = subprocess.run(argv, capture_output=True, text=True)
            if proc.returncode != 0:
                shutil.rmtree(ANSIBLE_VENV, ignore_errors=True)
                pytest.fail(f"missing part: ansible-core could not be installed from the package registry into "
                            f"{ANSIBLE_VENV} (`{' '.join(argv)}` exited {proc.returncode}):\n"
                            f"{proc.stdout[-2000:]}{proc.stderr[-2000:]}", pytrace=False)
        if not _works(bin_dir):
            pytest.fail(f"missing part: ansible-core installed into {ANSIBLE_VENV} but `ansible-playbook --version` "
                        "fails", pytrace=False)
    return bin_dir


def _works(bin_dir: Path) -> bool:
    exe = bin_dir / "ansible-playbook"
    if not exe.exists():
        return False
    return subprocess.run([str(exe), "--version"], capture_output=True).returncode == 0


def ansible_env(workdir: Path, collections: Path, **extra: str) -> dict[str, str]:
    """Environment of ansible-playbook: everything of Ansible's below ``workdir``, the collection from
    ``collections``, plain output. PYTHONPATH makes the module run THIS checkout's omerowizard."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update({
        "ANSIBLE_HOME": str(workdir / "ansible-home"),
        "ANSIBLE_LOCAL_TEMP": str(workdir / "ansible-tmp"),
        "ANSIBLE_REMOTE_TEMP": str(workdir / "ansible-remote-tmp"),
        "ANSIBLE_COLLECTIONS_PATH": str(collections),
        "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "False",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_STDOUT_CALLBACK": "default",
        "ANSIBLE_HOST_KEY_CHECKING": "0",
        "ANSIBLE_DEPRECATION_WARNINGS": "0",
        "PYTHONPATH": str(ROOT),
        **extra,
    })
    return env


def install_collection(bin_dir: Path, workdir: Path) -> Path:
    """`ansible-galaxy collection build` of the project's collection, then `install` of that artifact;
    returns the collections path to give Ansible."""
    dist = workdir / "dist"
    dest = workdir / "collections"
    dist.mkdir(exist_ok=True)
    env = ansible_env(workdir, dest)
    build = subprocess.run([str(bin_dir / "ansible-galaxy"), "collection", "build", str(COLLECTION),
                            "--output-path", str(dist), "--force"], capture_output=True, text=True, env=env)
    assert build.returncode == 0, build.stdout + build.stderr
    artifacts = list(dist.glob("omerowizard-omero_web-*.tar.gz"))
    assert len(artifacts) == 1, f"one artifact built: {artifacts}"
    install = subprocess.run([str(bin_dir / "ansible-galaxy"), "collection", "install", str(artifacts[0]),
                              "-p", str(dest), "--force"], capture_output=True, text=True, env=env)
    assert install.returncode == 0, install.stdout + install.stderr
    installed = dest / "ansible_collections" / "omerowizard" / "omero_web"
    for rel in ("plugins/modules/deploy.py", "plugins/module_utils/deploy_support.py", "playbooks/site.yml",
                "playbooks/rolling.yml", "README.md"):
        assert (installed / rel).exists(), f"the artifact holds {rel}"
    doc = subprocess.run([str(bin_dir / "ansible-doc"), "omerowizard.omero_web.deploy"], capture_output=True,
                         text=True, env=env)
    assert doc.returncode == 0 and "check_mode" in doc.stdout and "diff_mode" in doc.stdout, doc.stdout + doc.stderr
    return dest
