"""The Python distributions installed in a virtual environment, read as root may read another user's files.

``importlib.metadata`` lists site-packages through links and opens every METADATA with a blocking
``open``: in an environment the OMERO.web user owns, a link there makes root read any file, and a FIFO
named METADATA hangs the run. Here site-packages is listed through directory descriptors and each
METADATA is read through ``safefs`` (no link followed, a FIFO never blocks, regular files only,
size-capped), then parsed with the e-mail header parser, as importlib does. What cannot be read that
way is skipped and said (``Installed.skipped``), never waited for.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser

from omerowizard.system import safefs
from omerowizard.system import venv as venv_mod

METADATA_LIMIT = 16 * 1024 * 1024
_INFO = {".dist-info": "METADATA", ".egg-info": "PKG-INFO"}


@dataclass(frozen=True)
class Distribution:
    name: str  # as its METADATA spells it
    version: str
    requires: tuple[str, ...]  # its Requires-Dist lines
    info: str  # the path of its .dist-info (or .egg-info) directory

    def text(self, name: str, limit: int = METADATA_LIMIT) -> str | None:
        """A file of its info directory (top_level.txt, RECORD), read through safefs; None when missing."""
        data = safefs.read_bytes(f"{self.info}/{name}", limit=limit)
        return None if data is None else data.decode("utf-8", "replace")


@dataclass
class Installed:
    sites: list[str] = field(default_factory=list)
    distributions: list[Distribution] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "PATH: why", what could not be read safely

    def versions(self) -> dict[str, str]:
        """{normalised name: version}; the first found wins, as for an import."""
        out: dict[str, str] = {}
        for d in self.distributions:
            out.setdefault(venv_mod.normalise(d.name), d.version)
        return out


def site_packages(venv: str | os.PathLike, skipped: list[str] | None = None) -> list[str]:
    """The environment's lib/python3*/site-packages directories, found without following a link there."""
    lib = f"{os.fspath(venv).rstrip('/')}/lib"
    try:
        names = safefs.listdir(lib) or []
    except (OSError, safefs.UnsafePath) as exc:
        if skipped is not None:
            skipped.append(f"{lib}: {_why(exc, lib)}")
        return []
    out = []
    for name in names:
        if not name.startswith("python3"):
            continue
        site = f"{lib}/{name}/site-packages"
        try:
            st = safefs.lstat(site)
        except (OSError, safefs.UnsafePath) as exc:
            if skipped is not None:
                skipped.append(f"{site}: {_why(exc, site)}")
            continue
        if st is None:
            continue
        if not _is_dir(st.st_mode):
            if skipped is not None:
                skipped.append(f"{site}: not a directory (a link or another file): not followed")
            continue
        out.append(site)
    return out


def read(venv: str | os.PathLike) -> Installed:
    """Every distribution installed in ``venv`` (nothing run, nothing followed, nothing waited for)."""
    found = Installed()
    found.sites = site_packages(venv, found.skipped)
    for site in found.sites:
        try:
            with safefs.directory(site) as d:
                for entry in sorted(os.listdir(d)):
                    suffix = next((s for s in _INFO if entry.endswith(s)), None)
                    if suffix is None:
                        continue
                    dist = _one(d, site, entry, _INFO[suffix], found.skipped)
                    if dist is not None:
                        found.distributions.append(dist)
        except (OSError, safefs.UnsafePath) as exc:
            found.skipped.append(f"{site}: {_why(exc, site)}")
    return found


def _one(d: int, site: str, entry: str, metadata: str, skipped: list[str]) -> Distribution | None:
    info = f"{site}/{entry}"
    try:
        st = os.stat(entry, dir_fd=d, follow_symlinks=False)
        if not _is_dir(st.st_mode):
            return None  # an old egg-info file, or a link: not a distribution read here
        sub = safefs.open_directory_at(d, entry, info)
        try:
            data = safefs.read_bytes_at(sub, metadata, f"{info}/{metadata}", limit=METADATA_LIMIT)
        finally:
            os.close(sub)
    except (OSError, safefs.UnsafePath) as exc:
        skipped.append(f"{info}/{metadata}: {_why(exc, f'{info}/{metadata}')}")
        return None
    if data is None:
        return None
    msg = BytesHeaderParser().parsebytes(data)
    name = msg.get("Name")
    if not name:
        skipped.append(f"{info}/{metadata}: no Name")
        return None
    return Distribution(name=str(name).strip(), version=str(msg.get("Version") or "").strip(),
                        requires=tuple(str(r).strip() for r in msg.get_all("Requires-Dist") or ()), info=info)


def _is_dir(mode: int) -> bool:
    return stat.S_ISDIR(mode)


def _why(exc: BaseException, path: str = "") -> str:
    """Why ``path`` was not read, without saying its name twice (safefs's messages start with it)."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc)
    return text[len(path):].lstrip(" :") if path and text.startswith(path + " ") else text


def packages(venv: str | os.PathLike) -> dict[str, str]:
    """{normalised distribution name: version} of the environment (what cannot be read safely is left out)."""
    return read(venv).versions()
