"""A stand-in OMERO.web environment whose zeroc-ice build is slow and never ends, for the tests
that cancel a build: its ``bin/python`` is Debian's python, except ``-m pip``, which cannot find
a binary wheel, "downloads" a tiny sdist, and "builds" it by starting compilers (processes named
with the test's token, so the test can find any that survive) and waiting. The installer around
it is the real one."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from tests.support.wait import until

FAKE_PYTHON = '''#!/usr/bin/python3
"""The environment's python for the cancel tests: the real one, except pip, whose zeroc-ice
build is slow and starts compilers (processes named with the test's token) that never end."""
import os, subprocess, sys, tarfile, io, time
args = sys.argv[1:]
if args[:2] != ["-m", "pip"]:
    os.execv("/usr/bin/python3", ["python3", *args])
command = args[2]
if command == "install":
    print("ERROR: No matching distribution found for zeroc-ice==3.6.5 (stand-in)", flush=True)
    sys.exit(1)
if command == "download":
    dest = args[args.index("-d") + 1]
    with tarfile.open(os.path.join(dest, "zeroc-ice-3.6.5.tar.gz"), "w:gz") as tar:
        for name, text in (("src/Slice.cpp", "#include <eval.h>\\n"), ("src/Util.cpp", ""), ("setup.py", "")):
            data = text.encode()
            info = tarfile.TarInfo("zeroc-ice-3.6.5/" + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    sys.exit(0)
if command == "wheel":
    os.makedirs(os.path.join(os.environ["TMPDIR"], "pip-build-env-stand-in"))  # where pip keeps its own files
    for i in range(2):
        subprocess.Popen(["omw-fake-cc-TOKEN", "600"], executable="/bin/sleep")
        print(f"  x86_64-linux-gnu-gcc -fPIC -Isrc -c src/File{i}.cpp -o build/File{i}.o -w", flush=True)
    time.sleep(600)
'''




class StandInBuild:
    def __init__(self, tmp_path: Path):
        self.token = uuid.uuid4().hex[:10]
        self.tmp = tmp_path / "tmp"  # TMPDIR of the installer: where its temporary directories go
        self.tmp.mkdir()
        self.venv = tmp_path / "venv"
        (self.venv / "bin").mkdir(parents=True)
        python = self.venv / "bin" / "python"
        python.write_text(FAKE_PYTHON.replace("TOKEN", self.token))
        python.chmod(0o755)
        self.home = tmp_path / "home"
        self.wheels = tmp_path / "wheels"

    def env(self) -> dict[str, str]:
        return {**os.environ, "OMEROWIZARD_HOME": str(self.home), "TMPDIR": str(self.tmp),
                "OMEROWIZARD_WHEEL_CACHE": str(self.wheels)}

    def compilers(self) -> list[int]:
        pids = []
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                try:
                    if f"omw-fake-cc-{self.token}".encode() in (proc / "cmdline").read_bytes():
                        pids.append(int(proc.name))
                except OSError:
                    pass
        return pids

    def wait_compilers(self) -> None:
        # a busy machine starts the build's pip and compilers late
        until(lambda: len(self.compilers()) >= 2, 90, "the stand-in build's two compilers")
        assert len(self.compilers()) == 2
        assert any(self.tmp.iterdir()), "the build's temporary directory is there while it runs"

    def assert_nothing_left(self) -> None:
        until(lambda: not self.compilers(), 60, "the end of every compiler of the cancelled build")
        assert list(self.tmp.iterdir()) == [], "the cancelled build left temporary files"

    def kill_left(self) -> None:
        import signal

        for pid in self.compilers():
            os.kill(pid, signal.SIGKILL)
