"""Answers: loading, validating and writing them.

A YAML answers file is read with the line of every key, checked against the JSON
Schema generated from the catalogue (with ``jsonschema``, every error at once), then
each value against its question's validator and the rules that join several answers.
Every problem is reported together, as ``FILE:LINE: key: what is wrong (allowed)``.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from omerowizard.catalogue import BY_KEY, CATALOGUE, FEATURES, KEYS, Question, masking, optional_sections
from omerowizard.model import ansible_yaml, yamlread
from omerowizard.model import validators as v
from omerowizard.model.errors import AnswersError, Problem
from omerowizard.model.lazy import lazy
from omerowizard.model.qtypes import Records
from omerowizard.model.secrets import Secret
from omerowizard.system.deployments import normalise

jsonschema = lazy("jsonschema")  # its code runs when the first answers are checked

MAX_FILE = 1_000_000
MAX_TEXT = 4096


# ---------------------------------------------------------------------------- typed model
class Section:
    """The answers below one dotted path, read as attributes (``a.web_server.https.port``).

    Generated from the catalogue: every question's key is an attribute path; an optional section
    (``web_server.https``, declared by its feature) is None when its gate question has no value."""

    __slots__ = ("_values", "_path")

    def __init__(self, values: Mapping[str, Any], path: str = ""):
        object.__setattr__(self, "_values", values)
        object.__setattr__(self, "_path", path)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        full = f"{self._path}.{name}" if self._path else name
        if full in self._values:
            return self._values[full]
        if full in _sections():
            gate = optional_sections().get(full)
            if gate is not None and not self._values.get(gate):
                return None
            return Section(self._values, full)
        raise AttributeError(f"no answer {full!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("answers are read-only")

    def __repr__(self) -> str:
        inner = {k[len(self._path) + 1:] if self._path else k: v for k, v in self._values.items()
                 if not self._path or k.startswith(self._path + ".")}
        return f"Section({self._path or 'answers'}: {inner!r})"


def _sections() -> set[str]:
    out: set[str] = set()
    for key in BY_KEY:
        parts = key.split(".")
        out.update(".".join(parts[:i]) for i in range(1, len(parts)))
    return out


class Answers(Section):
    """Validated answers: one value per catalogue key (``values``), read as attributes."""

    __slots__ = ("warnings", "given")

    def __init__(self, values: Mapping[str, Any], warnings: tuple[str, ...] = (), given: frozenset[str] = frozenset()):
        super().__init__(dict(values))
        object.__setattr__(self, "warnings", warnings)
        object.__setattr__(self, "given", given)  # the keys the file (or front end) gave, not defaulted

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Answers) and self._values == other._values

    def __hash__(self) -> int:
        return hash(json.dumps(self.flat(), sort_keys=True, default=str))

    @property
    def values(self) -> Mapping[str, Any]:
        return self._values

    @property
    def effective_static_url(self) -> str:
        if self.static_url:
            return self.static_url
        return "/static/" if self.prefix == "/" else f"{self.prefix}/static/"

    def flat(self) -> dict[str, Any]:
        """The answers as ``{catalogue key: value}`` (what front ends prefill from)."""
        return {k: _plain(v) for k, v in self._values.items()}

    def applicable(self) -> dict[str, Any]:
        """Only the answers whose question applies (and has a value)."""
        flat = self.flat()
        return {k: v for k, v in flat.items() if v is not None and (k not in BY_KEY or BY_KEY[k].when(flat))}

    def to_nested(self) -> dict[str, Any]:
        """The answers that apply, nested as in an answers file (what `validate` reads back)."""
        return nest(self.applicable())

    def to_yaml(self, header: str = "", unsafe: bool = False) -> str:
        """The answers as a file `apply` accepts, holding only the answers that apply. ``unsafe``: every string
        tagged ``!unsafe`` (``ansible_yaml``), for a file that may end up among Ansible's variables."""
        nested = self.to_nested()
        nested.setdefault("extra_config", {})
        if unsafe:
            body = ansible_yaml.dump(nested)
        else:
            body = yaml.safe_dump(nested, sort_keys=False, default_flow_style=False, allow_unicode=True)
        return (header + body) if header else body


def _plain(value: Any) -> Any:
    """A value of the model as plain data (what front ends prefill and files hold): a Secret revealed."""
    if isinstance(value, Secret):
        return value.reveal()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """``{"a.b": 1}`` -> ``{"a": {"b": 1}}`` (None values left out), in catalogue order."""
    nested: dict[str, Any] = {}
    order = {k: i for i, k in enumerate(BY_KEY)}
    for key in sorted(flat, key=lambda k: order.get(k, len(order))):
        value = flat[key]
        if value is None:
            continue
        node = nested
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = _plain(value)
    return nested


# ---------------------------------------------------------------------------- schema
def _schema_for(q: Question) -> dict[str, Any]:
    s = q.type.schema(q)
    # null (an empty value in YAML) means "the default", for every key
    s["type"] = [s["type"], "null"] if isinstance(s["type"], str) else [*s["type"], "null"]
    if "enum" in s:
        s["enum"] = [*s["enum"], None]
    s["title"] = q.prompt
    s["description"] = q.help + (f" Allowed: {q.allowed_text()}." if q.allowed_text() else "")
    if not callable(q.default) and q.default is not None and not isinstance(q.default, tuple):
        s["default"] = q.default
    return s


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the answers file, generated from the catalogue."""
    root: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "omerowizard answers file",
        "type": "object",
        "additionalProperties": False,
        "properties": {},
    }
    for q in CATALOGUE:
        node = root
        parts = q.key.split(".")
        for part in parts[:-1]:
            node = node["properties"].setdefault(part, {"type": "object", "additionalProperties": False,
                                                        "properties": {}})
        node["properties"][parts[-1]] = _schema_for(q)
    for path in optional_sections():
        node = root
        for part in path.split("."):
            node = node["properties"][part]
        node["type"] = ["object", "null"]
    return root


def load_file(path: str | Path) -> Answers:
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise AnswersError([Problem("(file)", f"cannot be read: {exc.strerror}", str(p))]) from None
    if len(raw) > MAX_FILE:
        raise AnswersError([Problem("(file)", f"is {len(raw)} bytes", str(p), allowed=f"at most {MAX_FILE} bytes")])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise AnswersError([Problem("(file)", "is not UTF-8 text", str(p))]) from None
    return load_text(text, str(p))


def load_text(text: str, source: str = "<answers>") -> Answers:
    if len(text) > MAX_FILE:
        raise AnswersError([Problem("(file)", f"is {len(text)} characters", source, allowed=f"at most {MAX_FILE}")])
    reader = yamlread.Reader(text, source)
    data = reader.read()
    if reader.problems and data is None:
        raise AnswersError(reader.problems)
    if data is None:
        raise AnswersError([Problem("(file)", "is empty", source, 1,
                                    allowed="a YAML mapping of answers, e.g. `platform: unix`; see `omerowizard schema`")])
    if not isinstance(data, dict):
        raise AnswersError([Problem("(file)", f"is a {type(data).__name__}, not a mapping of answers", source, 1,
                                    allowed="a YAML mapping such as `web_server: {kind: nginx}`")])
    return validate(data, source, reader.lines, reader.problems)


# ---------------------------------------------------------------------------- validation
def _normalise(data: dict[str, Any]) -> None:
    """Each given value as its question's type reads it (YAML 1.1 reads a bare ``off`` as false; a size
    may be written as a number)."""
    for q in CATALOGUE:
        *parents, leaf = q.key.split(".")
        node: Any = data
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and leaf in node and node[leaf] is not None:
            node[leaf] = q.type.coerce(q, node[leaf])


def _dotted(path: Any) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(file)"


def _all_keys() -> list[str]:
    keys = set(BY_KEY)
    for k in BY_KEY:
        parts = k.split(".")
        keys.update(".".join(parts[:i]) for i in range(1, len(parts)))
    return sorted(keys)


def _shown(key: str, value: Any) -> str:
    """A value named in a problem: shortened, and masked when its key is secret (or it holds a URL's password)."""
    masked = masking.answer_value(key, value)
    return _short(value) if masked == str(value) else _short(masked)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _schema_problems(data: dict[str, Any], source: str, lines: Mapping[str, int]) -> list[Problem]:
    problems: list[Problem] = []
    validator = jsonschema.Draft202012Validator(json_schema())
    for err in sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path]):
        key = _dotted(err.absolute_path)
        q = BY_KEY.get(key.split("[")[0])
        allowed = q.allowed_text() if q else ""
        if err.validator == "additionalProperties":
            known = set(err.schema.get("properties", {}))
            for extra in sorted(set(err.instance) - known):
                full = f"{key}.{extra}" if key != "(file)" else extra
                close = difflib.get_close_matches(full, _all_keys(), n=1, cutoff=0.6) or \
                    difflib.get_close_matches(extra, sorted(known), n=1, cutoff=0.6)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                where = key if key != "(file)" else "the top level"
                problems.append(Problem(full, f"is not a known key{hint}", source, lines.get(full),
                                        allowed=f"keys at {where}: {', '.join(sorted(known))}"))
            continue
        line = lines.get(key)
        if "propertyNames" in err.schema_path:
            full = f"{key}.{err.instance}"
            names = err.schema.get("enum") if err.validator == "enum" else None
            if names:  # a mapping keyed by a fixed set of names (apps.versions)
                problems.append(Problem(full, f"{_short(err.instance)} is not one of {' | '.join(names)}", source,
                                        lines.get(full) or line, value=err.instance, allowed=allowed))
                continue
            problems.append(Problem(full, f"{_short(err.instance)} is not an omero.web.* key", source,
                                    lines.get(full) or line, value=err.instance,
                                    allowed="keys such as omero.web.login_logo"))
            continue
        if err.validator == "type":
            # "null" (empty: the default) is allowed everywhere and is no help in the message
            types = [err.validator_value] if isinstance(err.validator_value, str) else list(err.validator_value)
            want = " or ".join(t for t in types if t != "null") or "null"
            msg = f"{_shown(key, err.instance)} is not {'an' if want[0] in 'aeiou' else 'a'} {want}"
            if err.instance is None:  # only a required field of a record refuses null
                msg = f"is empty, but it is required ({want})"
            elif "string" in want and isinstance(err.instance, (int, float)) and not isinstance(err.instance, bool):
                msg = f"was read as the number {_shown(key, err.instance)}: write the value in quotes"
        elif err.validator == "enum":
            msg = f"{_shown(key, err.instance)} is not one of the choices"
            # null in the enum lets the key be left empty (its default): not a choice to list
            allowed = " | ".join(str(v) for v in err.validator_value if v is not None)
        elif err.validator in {"minimum", "maximum"}:
            msg = f"{_shown(key, err.instance)} is out of range"
            low, high = err.schema.get("minimum"), err.schema.get("maximum")
            if "[" in key and low is not None and high is not None:  # a field of a record: its own range
                allowed = f"an integer from {low} to {high}"
            allowed = allowed or f"{err.validator} {err.validator_value}"
        elif err.validator in {"maxLength", "maxItems", "maxProperties"}:
            msg = f"is too long ({err.validator} {err.validator_value})"
        else:
            msg = err.message
        problems.append(Problem(key, msg, source, line, value=err.instance, allowed=allowed))
    return problems


def _in_a_record(key: str) -> bool:
    """``servers[1].port``: a field of one item of a list of records."""

    base, _, rest = key.partition("[")
    q = BY_KEY.get(base)
    return bool(rest) and "]." in rest and q is not None and isinstance(q.type, Records)


def _get(data: Mapping[str, Any], key: str) -> tuple[bool, Any]:
    node: Any = data
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def validate(data: dict[str, Any], source: str = "<answers>", lines: Mapping[str, int] | None = None,
             early: list[Problem] | None = None) -> Answers:
    """Check nested answers; return typed Answers with defaults, or raise AnswersError with every problem."""
    lines = lines or {}
    _normalise(data)
    problems = list(early or [])
    problems += _text_problems(data, source, lines)
    problems += _schema_problems(data, source, lines)
    # a key with a problem is not checked further; a list of records is, when only some of its items'
    # fields have one (each other item still gets its own checks, and the rules that join answers run)
    bad = {p.key.split("[")[0] for p in problems if not _in_a_record(p.key)}

    given: dict[str, Any] = {}
    for q in CATALOGUE:
        present, value = _get(data, q.key)
        if present and value is not None:
            given[q.key] = value

    # fill defaults in catalogue order, so a default may depend on earlier answers
    flat: dict[str, Any] = {}
    for q in CATALOGUE:
        flat[q.key] = given[q.key] if q.key in given else q.default_for({**flat, **given})

    def line_of(key: str) -> int | None:
        """The key's line; a key the file does not give (a missing answer) points at its section's line."""
        parts = key.split(".")
        return next((lines[k] for k in (".".join(parts[:i]) for i in range(len(parts), 0, -1)) if k in lines), None)

    def problem(key: str, msg: str, allowed: str = "", at: str | None = None) -> None:
        """``at``: the answer whose line to name when ``key`` itself is not in the file."""
        q = BY_KEY.get(key)
        line = lines.get(key) or (lines.get(at) if at else None) or line_of(key)
        problems.append(Problem(key, msg, source, line, value=flat.get(key),
                                allowed=allowed or (q.allowed_text() if q else "")))

    warnings: list[str] = []
    for q in CATALOGUE:
        if q.key in bad or q.key not in given:
            continue
        value = given[q.key]
        if not q.when(flat):
            where = f"{source}:{lines[q.key]}: " if q.key in lines else ""
            warnings.append(f"{where}{q.key} is not used with these answers and is ignored")
            flat[q.key] = q.default_for({k: v for k, v in flat.items() if k != q.key})  # really ignored
            continue
        if q.kind == "int" and isinstance(value, float):
            problem(q.key, f"{value!r} is not a whole number", q.allowed_text())
            continue
        if q.check and isinstance(value, str):
            msg = q.check(value)
            if msg:
                problem(q.key, f"{_shown(q.key, value)} {msg}")
        if q.item_check and isinstance(value, list):
            for i, item in enumerate(value):
                msg = q.item_check(item)
                if msg:
                    k = f"{q.key}[{i}]"
                    problems.append(Problem(k, f"{_short(item)} {msg}", source, lines.get(k) or lines.get(q.key),
                                            allowed=q.allowed_text()))
        for sub, msg in q.type.item_problems(value):
            k = f"{q.key}{sub}"
            problems.append(Problem(k, msg, source, lines.get(k) or lines.get(q.key), allowed=q.allowed_text()))

    for feature in FEATURES:
        feature.cross_checks(flat, given, bad, problem, KEYS)
    if not problems:
        for key in ("omero.omerodir", "omero.venv"):
            if flat["platform"] == "unix":
                flat[key] = normalise(flat[key])  # one spelling, links resolved: one deployment
                msg = v.unix_path(flat[key])
                if msg:
                    problem(key, f"resolves to {flat[key]!r}, which {msg}")
    if problems:
        raise AnswersError(sorted(problems, key=lambda p: (p.line or 0, p.key)))
    return _model(flat, tuple(warnings), frozenset(given))


def _model(flat: Mapping[str, Any], warnings: tuple[str, ...], given: frozenset[str] = frozenset()) -> Answers:
    """The typed answers: each question's value as its type holds it; a question that does not apply has
    its ``unused`` value (cors.origins is empty when CORS is off)."""
    values: dict[str, Any] = {}
    for q in CATALOGUE:
        value = flat.get(q.key)
        if q.unused is not ... and not q.when(flat):
            value = q.unused
        values[q.key] = q.type.model(q, value)
    for key in ("omero.venv", "omero.omerodir"):
        values[key] = str(PurePosixPath(values[key]))
    return Answers(values, warnings, given)


def _strings(node: Any, path: str) -> list[tuple[str, str]]:
    """Every string in the answers (keys and values, at any depth) with its dotted key."""
    out: list[tuple[str, str]] = []
    if isinstance(node, str):
        out.append((path, node))
    elif isinstance(node, dict):
        for k, item in node.items():
            dotted = f"{path}.{k}" if path else str(k)
            if isinstance(k, str):
                out.append((dotted, k))
            out += _strings(item, dotted)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            out += _strings(item, f"{path}[{i}]")
    return out


def _text_problems(data: dict[str, Any], source: str, lines: Mapping[str, int]) -> list[Problem]:
    """Control characters, line breaks and what XML cannot hold, refused in every string."""
    problems: list[Problem] = []
    seen: set[str] = set()
    for key, text in _strings(data, ""):
        msg = v.text(text)
        if msg and key not in seen:
            seen.add(key)
            line = lines.get(key) or lines.get(key.split("[")[0])
            problems.append(Problem(key, f"{_shown(key, text)} {msg}", source, line, value=text,
                                    allowed="printable text on one line (write the character out, or leave it away)"))
    return problems


def from_flat(flat: Mapping[str, Any], source: str = "<wizard>") -> Answers:
    """Validate answers collected as ``{catalogue key: value}`` by a front end."""
    return validate(nest(flat), source)


def defaults() -> Answers:
    return validate({}, "<defaults>")


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2)
