"""config.xml is read without omero (which would rewrite it) and without following a planted link;
a file omero cannot read is an error that names it and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from omerowizard.model.errors import ConfigXmlError
from omerowizard.system.omero import Omero, OmeroTarget


def omero_for(tmp_path: Path) -> Omero:
    omerodir = tmp_path / "OMERO.web"
    (omerodir / "etc" / "grid").mkdir(parents=True)
    return Omero(OmeroTarget("omero-web", tmp_path / "venv", omerodir))


def test_a_corrupt_config_xml_names_the_file_and_the_fix(tmp_path):
    o = omero_for(tmp_path)
    o.target.config_xml.write_text("<icegrid><properties id='__ACTIVE__'>")  # cut off mid-write
    before = o.target.config_xml.read_bytes()
    with pytest.raises(ConfigXmlError) as err:
        o.config_read()
    assert str(o.target.config_xml) in str(err.value) and "omerowizard rollback" in str(err.value)
    assert o.calls == 0 and o.target.config_xml.read_bytes() == before, "no omero process, nothing rewritten"


def test_a_config_xml_without_an_active_profile_is_read_as_omero_reads_it(tmp_path):
    o = omero_for(tmp_path)
    o.target.config_xml.write_text("<icegrid><properties id='default'>"
                                   "<property name='omero.web.prefix' value='/omero'/></properties></icegrid>")
    before = o.target.config_xml.read_bytes()
    assert o.config_read() == {"omero.web.prefix": "/omero"}
    assert o.calls == 0 and o.target.config_xml.read_bytes() == before
