from pathlib import Path

import pytest

import os
import shutil
import subprocess
import sys
import time

from omerowizard import cli
from omerowizard.system import locations
from omerowizard.model.errors import InstallError, UsageError
from omerowizard.install.installer import (InstallOptions, Installer, check_wheel, compiled_source, parse_features,
                                   patch_ice_sources, trusted_path)

GPP = ("  x86_64-linux-gnu-g++ -Wsign-compare -DNDEBUG -g -fwrapv -O2 -fPIC -DICE_STATIC_LIBS -Isrc "
       "-I/usr/include/python3.11 -c src/Slice.cpp -o build/temp.linux-x86_64-cpython-311/src/Slice.o -w")
GCC = "  x86_64-linux-gnu-gcc -Wsign-compare -fPIC -Isrc/ice/mcpp -c src/ice/mcpp/directive.c -o build/x.o -w"


def test_progress_names_each_compiled_file_from_pips_output():
    assert compiled_source(GPP) == "Slice.cpp"
    assert compiled_source(GCC) == "directive.c"
    assert compiled_source("  copying lib/slice/Ice/Communicator.ice -> build/lib") is None
    assert compiled_source("  Building wheel for zeroc-ice (pyproject.toml): started") is None


def test_python311_fixes_are_applied(tmp_path: Path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "Slice.cpp").write_text('#include <Python.h>\n#include <eval.h>\nint x;\n')
    (tmp_path / "src" / "Util.cpp").write_text("PyFrameObject *f = PyThreadState_GET()->frame;\n")
    patch_ice_sources(tmp_path)
    assert "eval.h" not in (tmp_path / "src" / "Slice.cpp").read_text()
    assert (tmp_path / "src" / "Util.cpp").read_text() == "PyFrameObject *f = PyEval_GetFrame();\n"


def test_unknown_feature_is_refused_with_the_allowed_ones():
    assert parse_features("redis, cors") == ["redis", "cors"]
    with pytest.raises(UsageError, match="unknown feature ldap .*allowed: redis, memcached, cors"):
        parse_features("redis,ldap")


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("OMEROWIZARD_HOME", str(tmp_path / "home"))


def test_root_uses_the_machine_wide_wheel_cache_and_a_user_their_own(monkeypatch, tmp_path):
    monkeypatch.delenv("OMEROWIZARD_WHEEL_CACHE", raising=False)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert locations.wheel_cache_path() == Path("/var/cache/omerowizard/wheels")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert locations.wheel_cache_path() == tmp_path / "home" / "cache" / "wheels"
    monkeypatch.setenv("OMEROWIZARD_WHEEL_CACHE", str(tmp_path / "given"))
    assert locations.wheel_cache_path() == tmp_path / "given"


def test_root_refuses_a_wheel_cache_another_user_can_write(tmp_path, monkeypatch):
    if os.geteuid() != 0:
        pytest.fail("this test checks what root trusts: run it as root", pytrace=False)
    cache = tmp_path / "wheels"
    cache.mkdir()
    os.chmod(tmp_path, 0o755)
    os.chmod(cache, 0o777)
    assert "can be written by other users" in trusted_path(cache)
    monkeypatch.setenv("OMEROWIZARD_WHEEL_CACHE", str(cache))
    with pytest.raises(InstallError, match=f"the wheel cache {cache} is not safe for root"):
        Installer(InstallOptions(venv=tmp_path / "venv")).wheel_cache()
    os.chmod(cache, 0o755)
    assert trusted_path(cache) is None
    link = tmp_path / "link"
    link.symlink_to(cache)
    os.lchown(link, 65534, 65534)
    assert "symbolic link" in trusted_path(link)


def test_a_bad_wheel_option_exits_2_before_anything_changes(tmp_path, capsys):
    wrong = tmp_path / "numpy-1.0-cp311-cp311-linux_x86_64.whl"
    wrong.write_text("")
    missing = tmp_path / "zeroc_ice-3.6.5-cp311-cp311-linux_x86_64.whl"
    for value, why in ((str(wrong), "is not named like a zeroc-ice wheel"), (str(missing), "does not exist")):
        status = cli.main(["install-omero", "--user", "no-such-user-omw", "--venv", str(tmp_path / "venv"),
                           "--wheel", value])
        err = capsys.readouterr().err
        assert status == 2
        assert f"--wheel (command line): {value!r} {why}" in err and "allowed: a zeroc-ice 3.6.5 wheel file" in err
    assert not (tmp_path / "venv").exists()
    missing.write_text("")
    assert check_wheel(str(missing)) == missing


def test_schema_piped_into_head_ends_quietly():
    proc = subprocess.run(f"{sys.executable} -m omerowizard schema | head -1", shell=True, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert proc.stdout.strip() == "{"
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr


EXTENSION = """
from setuptools import setup, Extension
setup(name="omwpar", version="1.0", ext_modules=[Extension("omwpar", {sources!r})])
"""


def test_the_sources_of_one_extension_compile_on_all_cores(tmp_path):
    """The build's compiler calls overlap with jobs > 1 (a compiler that takes a second per file)."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.fail("missing part: gcc (apt-get install g++)", pytrace=False)
    log = tmp_path / "calls.log"
    slow = tmp_path / "slowcc"
    slow.write_text(f"#!/bin/sh\necho start $(date +%s.%N) >> {log}\nsleep 1\nexec {gcc} \"$@\"\n")
    slow.chmod(0o755)
    for jobs in (1, 4):
        src = tmp_path / f"src{jobs}"
        (src / "src").mkdir(parents=True)
        (src / "src" / "Slice.cpp").write_text("#include <eval.h>\n")
        (src / "src" / "Util.cpp").write_text("")
        sources = []
        for i in range(4):
            (src / f"m{i}.c").write_text(f"int f{i}(void) {{ return {i}; }}\n")
            sources.append(f"m{i}.c")
        (src / "setup.py").write_text(EXTENSION.format(sources=sources))
        patch_ice_sources(src, jobs=jobs)
        start = time.monotonic()
        proc = subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--build-temp", "t", "--build-lib", "l"],
                              cwd=src, capture_output=True, text=True, env={**os.environ, "CC": str(slow)})
        assert proc.returncode == 0, proc.stderr[-2000:]
        took = time.monotonic() - start
        if jobs == 1:
            serial = took
            assert took >= 4
        else:
            assert took < serial - 1.5, (serial, took)


def _venv_files(root: Path, owner: int) -> Path:
    """An environment's files (bin/python a link to Debian's interpreter), owned by ``owner``."""
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "python").symlink_to("/usr/bin/python3")
    (root / "lib" / "python3.11" / "site-packages").mkdir(parents=True)
    (root / "pyvenv.cfg").write_text("home = /usr/bin\nversion = 3.11.2\nexecutable = /usr/bin/python3.11\n")
    for path in [root, *root.rglob("*")]:
        os.chown(path, owner, owner, follow_symlinks=False)
    return root


def test_the_zeroc_ice_build_never_runs_the_python_of_an_environment_another_user_owns(tmp_path):
    """The build runs setup.py as root: only with an interpreter root owns (a fresh environment of the same
    Python when the environment is the OMERO.web user's), and only PyPI's exact sdist (its sha256)."""
    from omerowizard.system import processes
    from omerowizard.install.installer import ICE_SDIST_SHA256, base_interpreter, python_version
    from omerowizard.system.omero import CommandLog

    if os.geteuid() != 0:
        pytest.fail("this test checks what root runs: run it as root", pytrace=False)
    theirs = _venv_files(tmp_path / "theirs", 65534)
    assert python_version(theirs) == "3.11" and base_interpreter(theirs) == "/usr/bin/python3.11"
    said: list[str] = []
    build = tmp_path / "build"
    build.mkdir()
    installer = Installer(InstallOptions(user="nobody", venv=theirs, omerodir=tmp_path / "od"), say=said.append,
                          log=CommandLog(tmp_path / "log"))
    python = installer.build_python(build)
    assert python == str(build / "build-venv" / "bin" / "python")
    assert processes.root_problem([python, "-m", "pip"]) is None  # root's alone
    assert any("belongs to nobody: building in a fresh environment of /usr/bin/python3.11" in s for s in said), said

    mine = _venv_files(tmp_path / "mine", 0)
    assert Installer(InstallOptions(venv=mine), say=said.append).build_python(build) == str(mine / "bin" / "python")
    assert len(ICE_SDIST_SHA256) == 64


def test_the_python_version_of_an_environment_is_read_from_its_files(tmp_path):
    from omerowizard.install.installer import python_version

    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    assert python_version(venv) is None  # no bin/python: no environment
    (venv / "bin" / "python").symlink_to("/nonexistent/python")
    (venv / "lib" / "python3.12").mkdir(parents=True)
    assert python_version(venv) == "3.12"
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\nversion_info = 3.13.1.final.0\n")
    assert python_version(venv) == "3.13"
