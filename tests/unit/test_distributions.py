"""The packages of a virtual environment another user owns are read without following a link or waiting for a
FIFO that user planted (distributions, used by the probe, the apps feature and rollback), and read the same as
importlib.metadata reads them otherwise."""

from __future__ import annotations

import glob
import importlib.metadata
import os
import sys

import pytest

from omerowizard.system import distributions
from omerowizard.system import distributions as probe
from omerowizard.features.apps import packages as app_packages
from omerowizard.system.venv import normalise

NOBODY = 65534


def owned(path, uid=NOBODY):
    for root, dirs, files in os.walk(path):
        for name in [root, *(os.path.join(root, x) for x in dirs + files)]:
            os.chown(name, uid, uid, follow_symlinks=False)


@pytest.fixture
def venv(tmp_path):
    """A venv of the OMERO.web user (nobody here) with one good distribution and a secret next to it."""
    if os.geteuid() != 0:
        pytest.fail("these tests run as root (they prove what root reads in another user's environment)",
                    pytrace=False)
    v = tmp_path / "venv"
    site = v / "lib" / "python3.11" / "site-packages"
    (site / "omero_web-5.33.2.dist-info").mkdir(parents=True)
    (site / "omero_web-5.33.2.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: omero-web\nVersion: 5.33.2\nRequires-Dist: Django<5.3,>=5.2\n"
        "Requires-Dist: pytest ; extra == 'test'\n\nA long description.\n")
    (site / "omero_web-5.33.2.dist-info" / "top_level.txt").write_text("omeroweb\n")
    owned(v)
    vault = tmp_path / "vault"
    vault.mkdir(mode=0o700)
    (vault / "METADATA").write_text("Name: SECRET-root-only\nVersion: 6.6.6\n")
    (vault / "METADATA").chmod(0o600)
    return v, site, vault


@pytest.mark.timeout(20)
def test_a_fifo_as_metadata_is_skipped_and_said_never_waited_for(venv):
    v, site, _ = venv
    (site / "evil-1.0.dist-info").mkdir()
    os.mkfifo(site / "evil-1.0.dist-info" / "METADATA")
    owned(site)
    assert probe.packages(v) == {"omero-web": "5.33.2"}
    found = distributions.read(v)
    assert found.skipped == [f"{site}/evil-1.0.dist-info/METADATA: is not a regular file"]
    assert app_packages.required_by(v, "django") == ["omero-web"]
    assert app_packages.distribution_of(str(v), "omeroweb.settings") == "omero-web"


def test_links_planted_in_the_environment_are_not_followed(venv):
    v, site, vault = venv
    (site / "dirlink-1.0.dist-info").symlink_to(vault)  # a dist-info that is a link to a root-only directory
    (site / "filelink-1.0.dist-info").mkdir()
    (site / "filelink-1.0.dist-info" / "METADATA").symlink_to(vault / "METADATA")
    owned(site)
    found = distributions.read(v)
    assert found.versions() == {"omero-web": "5.33.2"}
    assert all("SECRET" not in d.name for d in found.distributions)
    assert [s.split(": ", 1)[0] for s in found.skipped] == [f"{site}/filelink-1.0.dist-info/METADATA"]
    assert "symbolic link" in found.skipped[0]


def test_a_linked_lib_or_site_packages_is_not_followed(venv, tmp_path):
    v, site, vault = venv
    other = tmp_path / "other"
    (other / "x-1.0.dist-info").mkdir(parents=True)
    (other / "x-1.0.dist-info" / "METADATA").write_text("Name: root-only\nVersion: 1\n")
    (v / "lib" / "python3.12").mkdir()
    (v / "lib" / "python3.12" / "site-packages").symlink_to(other)
    owned(v)
    found = distributions.read(v)
    assert found.sites == [str(site)]
    assert found.versions() == {"omero-web": "5.33.2"}
    assert found.skipped == [f"{v}/lib/python3.12/site-packages: not a directory (a link or another file): "
                             "not followed"]


def test_the_packages_read_are_those_importlib_reads():
    paths = glob.glob(f"{sys.prefix}/lib/python3*/site-packages")
    expected: dict[str, str] = {}
    for dist in importlib.metadata.distributions(path=paths):
        if dist.metadata["Name"]:
            expected.setdefault(normalise(dist.metadata["Name"]), dist.version)
    assert distributions.read(sys.prefix).versions() == expected
