"""scripts/install refuses code another user could change before it installs anything for root.

(What it installs, on a fresh Debian, is tests/e2e/test_fresh_debian.py's.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def checkout(where: Path) -> Path:
    """The parts of a checkout the installer looks at before it changes anything, root's, 0644/0755."""
    src = where / "omerowizard-src"
    (src / "scripts").mkdir(parents=True)
    (src / "omerowizard").mkdir()
    shutil.copyfile(ROOT / "scripts" / "install", src / "scripts" / "install")
    shutil.copyfile(ROOT / "pyproject.toml", src / "pyproject.toml")
    shutil.copyfile(ROOT / "omerowizard" / "__init__.py", src / "omerowizard" / "__init__.py")
    for d in (src, src / "scripts", src / "omerowizard"):
        d.chmod(0o755)
    return src


def install(src: Path, prefix: Path) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "OMEROWIZARD_PREFIX": str(prefix / "opt"),
           "OMEROWIZARD_BIN_DIR": str(prefix / "bin")}
    return subprocess.run(["bash", str(src / "scripts" / "install")], capture_output=True, text=True, env=env,
                          stdin=subprocess.DEVNULL, timeout=60)


def test_install_refuses_a_checkout_with_a_file_another_user_can_write_and_installs_nothing(tmp_path):
    assert os.geteuid() == 0, "the installer is root's"
    src = checkout(tmp_path)
    planted = src / "omerowizard" / "__init__.py"
    os.chown(planted, 0, 100)  # group users
    planted.chmod(0o664)
    proc = install(src, tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"{planted} is owned or writable by another user than root" in proc.stderr, proc.stderr
    assert f"chown -R root:root {src} && chmod -R go-w {src}" in proc.stderr
    assert not (tmp_path / "opt").exists() and not (tmp_path / "bin").exists()


def test_install_refuses_a_checkout_inside_a_folder_another_user_owns(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    os.chown(home, 65534, 65534)  # nobody could rename the checkout away and put another in its place
    src = checkout(home)
    proc = install(src, tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"{home} (above the checkout) is owned or writable by another user than root" in proc.stderr, proc.stderr
    assert not (tmp_path / "opt").exists() and not (tmp_path / "bin").exists()
