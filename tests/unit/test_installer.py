from pathlib import Path

import pytest

from omerowizard.errors import InstallError
from omerowizard.installer import compiled_source, parse_features, patch_ice_sources

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
    with pytest.raises(InstallError, match="unknown feature ldap .*allowed: redis, memcached, cors"):
        parse_features("redis,ldap")
