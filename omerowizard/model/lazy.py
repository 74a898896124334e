"""Modules imported when first used: the import stands at the top of the module that needs it, as every
import does here, and the module's code runs only when one of its names is first looked up
(``importlib.util.LazyLoader``). For the heavy libraries that a start of the full-screen wizard does not need
before its first screen (jinja2 for the files, jsonschema for the answers file): the first screen is a
speed budget (bench/), and it is drawn before the wizard plans anything."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType


def lazy(name: str) -> ModuleType:
    """The module ``name``: the one already imported, or one whose code runs at its first attribute lookup."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module
