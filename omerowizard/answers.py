"""Answers: loading, validating and writing them.

A YAML answers file is read with the line of every key, checked against the JSON
Schema generated from the catalogue (with ``jsonschema``, every error at once), then
each value against its question's validator and the rules that join several answers.
Every problem is reported together, as ``FILE:LINE: key: what is wrong (allowed)``.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from omerowizard import validators as v
from omerowizard.errors import AnswersError, Problem
from omerowizard.omero import mask_secrets
from omerowizard.questions import BY_KEY, CATALOGUE, Question

MAX_FILE = 1_000_000
MAX_TEXT = 4096


# ---------------------------------------------------------------------------- typed model
@dataclass(frozen=True)
class OmeroInstall:
    user: str
    venv: str
    omerodir: str
    web_version: str | None = None  # the omero-web release wanted (None: keep the installed one)


@dataclass(frozen=True)
class Https:
    certificate: str
    key: str
    port: int


@dataclass(frozen=True)
class WebServer:
    kind: str
    server_name: str
    port: int
    max_body_size: str
    config_path: str | None
    https: Https | None
    systemd: bool = False  # also write a systemd unit for OMERO.web (Unix)
    omero_web_version: str | None = None  # Windows: picks IIS reverse proxy (5.3+) or ISAPI-WSGI (5.1/5.2)
    omero_dist: str | None = None  # Windows, OMERO.web 5.1/5.2: the OMERO directory
    replace_existing: bool = False  # replace files at the plan's paths that no run of this deployment wrote
    default_site: bool = False  # Unix nginx/Apache: OMERO.web is the default site of its port(s)


@dataclass(frozen=True)
class AppServer:
    host: str
    port: int
    workers: int
    timeout: int


@dataclass(frozen=True)
class Sessions:
    backend: str
    location: str | None
    expire_at_browser_close: bool
    cookie_age: int
    clearsessions: str


@dataclass(frozen=True)
class Cors:
    mode: str
    origins: tuple[str, ...]


@dataclass(frozen=True)
class Answers:
    platform: str
    omero: OmeroInstall
    web_server: WebServer
    application_server: AppServer
    prefix: str
    static_url: str | None
    sessions: Sessions
    cors: Cors
    extra_config: Mapping[str, Any]
    start: bool
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def effective_static_url(self) -> str:
        if self.static_url:
            return self.static_url
        return "/static/" if self.prefix == "/" else f"{self.prefix}/static/"

    def flat(self) -> dict[str, Any]:
        """The answers as ``{catalogue key: value}`` (what front ends prefill from)."""
        return dict(_flatten(self.to_nested()))

    def to_nested(self) -> dict[str, Any]:
        ws = self.web_server
        return {
            "platform": self.platform,
            "omero": {"user": self.omero.user, "venv": self.omero.venv, "omerodir": self.omero.omerodir,
                      "web_version": self.omero.web_version},
            "web_server": {
                "kind": ws.kind, "server_name": ws.server_name, "port": ws.port,
                "max_body_size": ws.max_body_size, "config_path": ws.config_path,
                "https": ({"certificate": ws.https.certificate, "key": ws.https.key, "port": ws.https.port}
                          if ws.https else {"certificate": None}),
                "replace_existing": ws.replace_existing,
                **({"systemd": ws.systemd} if self.platform == "unix" else {}),
                **({"default_site": ws.default_site} if self.platform == "unix" and ws.kind in {"nginx", "apache"}
                   else {}),
                **({"omero_web_version": ws.omero_web_version} if ws.omero_web_version else {}),
                **({"omero_dist": ws.omero_dist} if ws.omero_dist else {}),
            },
            "application_server": {"host": self.application_server.host, "port": self.application_server.port,
                                   "workers": self.application_server.workers,
                                   "timeout": self.application_server.timeout},
            "prefix": self.prefix,
            "static_url": self.static_url,
            "sessions": {"backend": self.sessions.backend, "location": self.sessions.location,
                         "expire_at_browser_close": self.sessions.expire_at_browser_close,
                         "cookie_age": self.sessions.cookie_age, "clearsessions": self.sessions.clearsessions},
            "cors": {"mode": self.cors.mode, "origins": list(self.cors.origins)},
            "extra_config": dict(self.extra_config),
            "start": self.start,
        }

    def to_yaml(self, header: str = "") -> str:
        """The answers as a file `apply` accepts, holding only the answers that apply."""
        nested, flat = self.to_nested(), self.flat()
        for q in CATALOGUE:
            if not q.when(flat):
                *parents, leaf = q.key.split(".")
                node = nested
                for part in parents:
                    node = node.get(part, {})
                node.pop(leaf, None)
        body = yaml.safe_dump(_prune(nested), sort_keys=False, default_flow_style=False, allow_unicode=True)
        return (header + body) if header else body


def _prune(node: Any) -> Any:
    """Drop keys with no value (an answer that does not apply), for a readable file."""
    if isinstance(node, dict):
        out = {k: _prune(v) for k, v in node.items() if v is not None}
        return {k: v for k, v in out.items() if v != {} or k == "extra_config"}
    return node


def _flatten(nested: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in nested.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and dotted not in BY_KEY:
            out.extend(_flatten(value, dotted + "."))
        else:
            out.append((dotted, value))
    return out


# ---------------------------------------------------------------------------- schema
def _schema_for(q: Question) -> dict[str, Any]:
    s: dict[str, Any]
    if q.kind == "choice":
        s = {"type": "string", "enum": list(q.choices)}
    elif q.kind == "bool":
        s = {"type": "boolean"}
    elif q.kind == "int":
        s = {"type": "integer", "minimum": q.minimum, "maximum": q.maximum}
    elif q.kind == "list":
        s = {"type": "array", "items": {"type": "string", "maxLength": MAX_TEXT}, "maxItems": 200}
    elif q.kind == "mapping":
        s = {"type": "object", "propertyNames": {"pattern": f"^{v.EXTRA_KEY.pattern}$"}, "maxProperties": 500}
    elif q.key == "web_server.max_body_size":
        s = {"type": ["string", "integer"], "maxLength": 16}
    else:
        s = {"type": "string", "maxLength": MAX_TEXT}
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
    https = root["properties"]["web_server"]["properties"]["https"]
    https["type"] = ["object", "null"]
    return root


# ---------------------------------------------------------------------------- reading YAML with lines
MAX_DEPTH = 20  # the answers nest 4 deep; extra_config values a few more
MAX_ALIASES = 100
MAX_NODES = 100_000  # values after every alias is expanded (a 478-byte alias bomb expands to 10^9)
CORE_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null")}
COLLECTION_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}


class _Limit(Exception):
    def __init__(self, message: str, line: int, allowed: str):
        super().__init__(message)
        self.line, self.allowed = line, allowed


class _LimitedLoader(yaml.SafeLoader):
    """PyYAML's safe composer with limits: nesting depth, alias uses and the size of the tree
    after aliases are expanded are counted while the file is composed, so a bomb is refused
    before anything is built (and deep nesting never reaches Python's recursion limit)."""

    def __init__(self, text: str):
        super().__init__(text)
        self.depth = 0
        self.aliases = 0
        self.sizes: dict[int, int] = {}  # id(node) -> values in it once aliases are expanded

    def compose_node(self, parent, index):  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                raise _Limit(f"uses more than {MAX_ALIASES} aliases (*name)", mark.line + 1,
                             f"at most {MAX_ALIASES} aliases; write the values out")
            node = super().compose_node(parent, index)
            if id(node) not in self.sizes:  # every node composed to the end has its size
                raise _Limit("has an alias inside the value it names (a cycle)", mark.line + 1,
                             "aliases only to values defined before them")
            return node
        mark = self.peek_event().start_mark
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise _Limit(f"nests deeper than {MAX_DEPTH} levels", mark.line + 1,
                             f"at most {MAX_DEPTH} levels of mappings and lists")
            node = super().compose_node(parent, index)
        finally:
            self.depth -= 1
        if isinstance(node, yaml.MappingNode):
            size = 1 + sum(self.sizes.get(id(k), 1) + self.sizes.get(id(v), 1) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            size = 1 + sum(self.sizes.get(id(item), 1) for item in node.value)
        else:
            size = 1
        if size > MAX_NODES:
            raise _Limit(f"expands to more than {MAX_NODES} values (aliases that repeat aliases)",
                         node.start_mark.line + 1, "an answers file without an alias bomb")
        self.sizes[id(node)] = size
        return node


def _tag_name(tag: str) -> str:
    return "!!" + tag[len("tag:yaml.org,2002:"):] if tag.startswith("tag:yaml.org,2002:") else tag


class _Reader:
    """Builds plain values from a YAML node tree, remembering each key's line.

    Only plain YAML is read: mappings, lists, strings, numbers, booleans and null. Any other
    tag (``!!set``, ``!!binary``, ``!!omap``, ``!!timestamp``, ``!!python/...``, ``!custom``)
    and merge keys (``<<``) are refused with the key and line, never converted."""

    def __init__(self, text: str, source: str):
        self.source = source
        self.text = text
        self.lines: dict[str, int] = {}
        self.problems: list[Problem] = []
        self.loader: _LimitedLoader | None = None

    def read(self) -> Any:
        try:
            self.loader = _LimitedLoader(self.text)  # the reader checks every character here
            node = self.loader.get_single_node()
        except _Limit as exc:
            self.problems.append(Problem("(file)", str(exc), self.source, exc.line, allowed=exc.allowed))
            return None
        except yaml.reader.ReaderError as exc:  # a character YAML does not allow in a file at all
            ch = exc.character if isinstance(exc.character, str) else chr(exc.character)
            self.problems.append(Problem("(file)", f"is not valid YAML: it holds the character U+{ord(ch):04X} "
                                         f"({exc.reason})", self.source, self.text.count("\n", 0, exc.position) + 1,
                                         allowed="printable text; write control characters as escapes in quotes"))
            return None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            what = getattr(exc, "problem", None) or str(exc)
            context = getattr(exc, "context", None)
            what = f"{context}, {what}" if context and what else what
            self.problems.append(Problem("(file)", f"is not valid YAML: {what}", self.source,
                                         mark.line + 1 if mark else None, allowed="a YAML mapping of answers"))
            return None
        finally:
            if self.loader is not None:
                self.loader.dispose()
        if node is None:
            return None
        return self._value(node, "")

    def _tag_ok(self, node: yaml.Node, where: str) -> bool:
        allowed = CORE_TAGS if isinstance(node, yaml.ScalarNode) else COLLECTION_TAGS
        if node.tag in allowed:
            return True
        if node.tag == "tag:yaml.org,2002:merge":
            msg, hint = "is a merge key (<<), which omerowizard does not expand", "the keys written out"
        elif node.tag == "tag:yaml.org,2002:timestamp":
            msg, hint = "was read as a date or time: write the value in quotes", "a quoted string"
        else:
            msg = f"has the tag {_tag_name(node.tag)}, which omerowizard does not read"
            hint = "plain mappings, lists, strings, numbers, true/false and null"
        self.problems.append(Problem(where or "(file)", msg, self.source, node.start_mark.line + 1, allowed=hint))
        return False

    def _value(self, node: yaml.Node, path: str) -> Any:
        where = path.rstrip(".")
        if not self._tag_ok(node, where):
            return None
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for knode, vnode in node.value:
                if not isinstance(knode, yaml.ScalarNode):
                    self.problems.append(Problem(f"{path}(key)", "keys must be strings, not mappings or lists",
                                                 self.source, knode.start_mark.line + 1))
                    continue
                if not self._tag_ok(knode, f"{path}{knode.value}"):
                    continue
                key = self._scalar(knode)
                if not isinstance(key, str):
                    self.problems.append(Problem(f"{path}{key!r}", "keys must be strings", self.source,
                                                 knode.start_mark.line + 1))
                    continue
                dotted = f"{path}{key}"
                if key in out:
                    self.problems.append(Problem(dotted, "is given twice", self.source, knode.start_mark.line + 1,
                                                 allowed="each key once"))
                    continue
                self.lines[dotted] = knode.start_mark.line + 1
                out[key] = self._value(vnode, dotted + ".")
            return out
        if isinstance(node, yaml.SequenceNode):
            items = []
            for i, item in enumerate(node.value):
                self.lines[f"{where}[{i}]"] = item.start_mark.line + 1
                items.append(self._value(item, f"{where}[{i}]."))
            return items
        if not self._plain_number(node, where):
            return None
        return self._scalar(node)

    def _plain_number(self, node: yaml.Node, where: str) -> bool:
        """YAML 1.1 reads 0x1F, 017 (octal), 1_000, 1:20 (base 60), .inf and .nan as numbers: refuse
        them rather than let a port of 1:20 become 80. Plain decimal numbers only."""
        if node.tag == "tag:yaml.org,2002:int":
            ok = re.fullmatch(r"[-+]?(0|[1-9][0-9]*)", node.value)
        elif node.tag == "tag:yaml.org,2002:float":
            ok = re.fullmatch(r"[-+]?([0-9]+\.[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?", node.value)
        else:
            return True
        if not ok:
            self.problems.append(Problem(where or "(file)", f"{node.value!r} is a number only in YAML 1.1's own "
                                         "notation (hexadecimal, octal, base 60, '_', .inf or .nan)",
                                         self.source, node.start_mark.line + 1,
                                         allowed="a plain decimal number, or the text in quotes"))
        return bool(ok)

    def _scalar(self, node: yaml.Node) -> Any:
        assert self.loader is not None
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            self.problems.append(Problem("(file)", f"cannot read value: {exc}", self.source, node.start_mark.line + 1))
            return None


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
    reader = _Reader(text, source)
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
_OFF_KEYS = {"cors.mode", "sessions.clearsessions"}


def _normalise(data: dict[str, Any]) -> None:
    """YAML 1.1 reads a bare ``off`` as false: take it as the choice 'off'."""
    for key in _OFF_KEYS:
        top, leaf = key.split(".")
        section = data.get(top)
        if isinstance(section, dict) and section.get(leaf) is False:
            section[leaf] = "off"
    ws = data.get("web_server")
    if isinstance(ws, dict) and isinstance(ws.get("max_body_size"), int) and not isinstance(ws.get("max_body_size"), bool):
        ws["max_body_size"] = str(ws["max_body_size"])


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


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _schema_problems(data: dict[str, Any], source: str, lines: Mapping[str, int]) -> list[Problem]:
    problems: list[Problem] = []
    import jsonschema  # imported here: it is slow to import, and the full-screen wizard draws first

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
            problems.append(Problem(full, f"{_short(err.instance)} is not an omero.web.* key", source,
                                    lines.get(full) or line, value=err.instance,
                                    allowed="keys such as omero.web.login_logo"))
            continue
        if err.validator == "type":
            # "null" (empty: the default) is allowed everywhere and is no help in the message
            types = [err.validator_value] if isinstance(err.validator_value, str) else list(err.validator_value)
            want = " or ".join(t for t in types if t != "null") or "null"
            msg = f"{_short(err.instance)} is not {'an' if want[0] in 'aeiou' else 'a'} {want}"
            if "string" in want and isinstance(err.instance, (int, float)) and not isinstance(err.instance, bool):
                msg = f"was read as the number {err.instance!r}: write the value in quotes"
        elif err.validator == "enum":
            msg = f"{_short(err.instance)} is not one of the choices"
            allowed = " | ".join(map(str, err.validator_value))
        elif err.validator in {"minimum", "maximum"}:
            msg = f"{_short(err.instance)} is out of range"
            allowed = allowed or f"{err.validator} {err.validator_value}"
        elif err.validator in {"maxLength", "maxItems", "maxProperties"}:
            msg = f"is too long ({err.validator} {err.validator_value})"
        else:
            msg = err.message
        problems.append(Problem(key, msg, source, line, value=err.instance, allowed=allowed))
    return problems


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
    bad = {p.key.split("[")[0] for p in problems}

    given: dict[str, Any] = {}
    for q in CATALOGUE:
        present, value = _get(data, q.key)
        if present and value is not None:
            given[q.key] = value

    # fill defaults in catalogue order, so a default may depend on earlier answers
    flat: dict[str, Any] = {}
    for q in CATALOGUE:
        flat[q.key] = given[q.key] if q.key in given else q.default_for({**flat, **given})

    def problem(key: str, msg: str, allowed: str = "") -> None:
        q = BY_KEY.get(key)
        problems.append(Problem(key, msg, source, lines.get(key), value=flat.get(key),
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
                problem(q.key, f"{_short(value)} {msg}")
        if q.item_check and isinstance(value, list):
            for i, item in enumerate(value):
                msg = q.item_check(item)
                if msg:
                    k = f"{q.key}[{i}]"
                    problems.append(Problem(k, f"{_short(item)} {msg}", source, lines.get(k) or lines.get(q.key),
                                            allowed=q.allowed_text()))
        if q.key == "extra_config" and isinstance(value, dict):
            for k, item in value.items():
                if f"extra_config.{k}" in bad:
                    continue
                if v.extra_key(k):  # the schema's pattern lets a final line break through
                    problems.append(Problem(f"extra_config.{k}", f"{_short(k)} is not an omero.web.* key", source,
                                            lines.get(f"extra_config.{k}"), allowed="keys such as omero.web.login_logo"))
                    continue
                msg = v.config_value(item)
                if msg:
                    problems.append(Problem(f"extra_config.{k}", msg, source, lines.get(f"extra_config.{k}")))
                if k in MANAGED_ELSEWHERE:
                    problems.append(Problem(f"extra_config.{k}", f"is set by the answer {MANAGED_ELSEWHERE[k]}",
                                            source, lines.get(f"extra_config.{k}"),
                                            allowed=f"set {MANAGED_ELSEWHERE[k]} instead"))

    _cross_checks(flat, given, bad, problem)
    if not problems:
        for key in ("omero.omerodir", "omero.venv"):
            if flat["platform"] == "unix":
                flat[key] = v.normal_path(flat[key])
                msg = v.unix_path(flat[key])
                if msg:
                    problem(key, f"resolves to {flat[key]!r}, which {msg}")
    if problems:
        raise AnswersError(sorted(problems, key=lambda p: (p.line or 0, p.key)))
    return _build(flat, tuple(warnings))


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
            shown = mask_secrets(text) if key == "sessions.location" else text
            line = lines.get(key) or lines.get(key.split("[")[0])
            problems.append(Problem(key, f"{_short(shown)} {msg}", source, line, value=text,
                                    allowed="printable text on one line (write the character out, or leave it away)"))
    return problems


# keys the wizard manages from a dedicated answer; extra_config must not fight them
MANAGED_ELSEWHERE = {
    "omero.web.prefix": "prefix",
    "omero.web.static_url": "static_url",
    "omero.web.application_server": "web_server.kind",
    "omero.web.application_server.host": "application_server.host",
    "omero.web.application_server.port": "application_server.port",
    "omero.web.wsgi_workers": "application_server.workers",
    "omero.web.wsgi_timeout": "application_server.timeout",
    "omero.web.session_engine": "sessions.backend",
    "omero.web.caches": "sessions.backend",
    "omero.web.session_expire_at_browser_close": "sessions.expire_at_browser_close",
    "omero.web.session_cookie_age": "sessions.cookie_age",
    "omero.web.cors_origin_whitelist": "cors.origins",
    "omero.web.cors_origin_allow_all": "cors.mode",
    "omero.web.apps": "cors.mode (and extra_config is not the place for apps the wizard adds)",
    "omero.web.middleware": "cors.mode",
}


def _cross_checks(flat: dict[str, Any], given: Mapping[str, Any], bad: set[str], problem) -> None:
    kind, platform = flat["web_server.kind"], flat["platform"]
    if "web_server.kind" not in bad and "platform" not in bad:
        if platform == "windows" and kind != "iis":
            problem("web_server.kind", f"{kind!r} does not run on Windows", "iis on platform windows")
        if platform == "unix" and kind == "iis":
            problem("web_server.kind", "'iis' needs platform windows", "nginx | nginx-development | apache | development")
    backend = flat["sessions.backend"]
    loc = flat.get("sessions.location")
    if backend in {"redis", "memcached"} and "sessions.location" not in bad and isinstance(loc, str):
        msg = v.redis_url(loc) if backend == "redis" else v.memcached_location(loc)
        if msg:
            problem("sessions.location", f"{_short(mask_secrets(loc))} {msg}")
    clear = flat.get("sessions.clearsessions")
    if platform == "windows" and backend == "file" and isinstance(clear, str) and clear != "off" \
            and "sessions.clearsessions" not in bad:
        from omerowizard.sitefiles import NoTaskTrigger, task_trigger  # here: sitefiles imports this module

        try:
            task_trigger(clear)
        except NoTaskTrigger:
            problem("sessions.clearsessions", f"{clear!r} has no Task Scheduler equivalent on Windows",
                    "daily | hourly | off | 'M H * * *' | 'M * * * *'")
    if flat["cors.mode"] == "origins" and "cors.origins" not in bad and not flat.get("cors.origins"):
        problem("cors.origins", "is empty but cors.mode is origins", "at least one scheme://host[:port]")
    cert, key = given.get("web_server.https.certificate"), given.get("web_server.https.key")
    if kind != "development" and bool(cert) != bool(key) and not bad & {"web_server.https.certificate", "web_server.https.key"}:
        problem("web_server.https.key" if cert else "web_server.https.certificate",
                "is missing: HTTPS needs both a certificate and a key", "both paths, or neither")
    if platform == "unix":
        for k in ("web_server.config_path", "web_server.https.certificate", "web_server.https.key"):
            val = flat.get(k)
            if isinstance(val, str) and k not in bad and not val.startswith("/"):
                problem(k, f"{val!r} is a Windows path but platform is unix", "an absolute Unix path")
    prefix = flat["prefix"]
    if kind == "development" and prefix != "/" and "prefix" not in bad:
        problem("prefix", f"{prefix!r} cannot work with Django's development server, which does not strip a prefix",
                "'/' with web_server.kind development")
    static = flat.get("static_url")
    if isinstance(static, str) and "static_url" not in bad and "prefix" not in bad and prefix != "/" \
            and not static.startswith(prefix + "/"):
        problem("static_url", f"{static!r} is outside the prefix {prefix!r}: the web server would not route it",
                f"a path below {prefix}/, e.g. {prefix}/static/")
    ports = [("web_server.port", flat.get("web_server.port")), ("web_server.https.port", flat.get("web_server.https.port"))]
    if kind != "development" and flat.get("web_server.https.certificate") and ports[0][1] == ports[1][1] \
            and not bad & {"web_server.port", "web_server.https.port"}:
        problem("web_server.https.port", "is the same as web_server.port", "two different ports")
    app_port = flat.get("application_server.port")
    if platform == "unix" and isinstance(app_port, int) and app_port < 1024 and "application_server.port" not in bad:
        problem("application_server.port",
                f"{app_port} is a privileged port (below 1024): only root may listen there, and OMERO.web's "
                f"application server runs as {flat.get('omero.user')!r}, never as root",
                "a port from 1024 to 65535 (the web server listens on the public port and proxies to it)")
    if kind == "nginx-development" and isinstance(flat.get("web_server.port"), int) and flat["web_server.port"] < 1024 \
            and "web_server.port" not in bad:
        problem("web_server.port", f"{flat['web_server.port']} needs root, but nginx-development runs as a normal user",
                "a port from 1024 to 65535")


def _build(flat: Mapping[str, Any], warnings: tuple[str, ...]) -> Answers:
    cert = flat.get("web_server.https.certificate")
    https = Https(cert, flat["web_server.https.key"], flat["web_server.https.port"]) if cert else None
    backend = flat["sessions.backend"]
    extra = flat.get("extra_config") or {}
    return Answers(
        platform=flat["platform"],
        omero=OmeroInstall(flat["omero.user"], str(PurePosixPath(flat["omero.venv"])),
                           str(PurePosixPath(flat["omero.omerodir"])),
                           str(flat["omero.web_version"]) if flat.get("omero.web_version") and flat["platform"] == "unix"
                           else None),
        web_server=WebServer(flat["web_server.kind"], flat["web_server.server_name"], flat["web_server.port"],
                             str(flat["web_server.max_body_size"]), flat.get("web_server.config_path"), https,
                             bool(flat.get("web_server.systemd")) and flat["platform"] == "unix",
                             flat.get("web_server.omero_web_version") if flat["platform"] == "windows" else None,
                             flat.get("web_server.omero_dist") if flat["platform"] == "windows" else None,
                             bool(flat.get("web_server.replace_existing")),
                             bool(flat.get("web_server.default_site")) and flat["platform"] == "unix"
                             and flat["web_server.kind"] in {"nginx", "apache"}),
        application_server=AppServer(flat["application_server.host"], flat["application_server.port"],
                                     flat["application_server.workers"], flat["application_server.timeout"]),
        prefix=flat["prefix"],
        static_url=flat.get("static_url"),
        sessions=Sessions(backend, flat.get("sessions.location") if backend != "file" else None,
                          flat["sessions.expire_at_browser_close"], flat["sessions.cookie_age"],
                          flat["sessions.clearsessions"] if backend == "file" else "off"),
        cors=Cors(flat["cors.mode"], tuple(flat.get("cors.origins") or ()) if flat["cors.mode"] == "origins" else ()),
        extra_config=dict(extra),
        start=flat["start"],
        warnings=warnings,
    )


def from_flat(flat: Mapping[str, Any], source: str = "<wizard>") -> Answers:
    """Validate answers collected as ``{catalogue key: value}`` by a front end."""
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        if value is None:
            continue
        node = nested
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = list(value) if isinstance(value, tuple) else value
    return validate(nested, source)


def defaults() -> Answers:
    return validate({}, "<defaults>")


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2)
