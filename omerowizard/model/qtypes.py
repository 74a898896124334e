"""Question types as objects: each knows how to read what was typed, its JSON Schema, what it
allows, how to show a value, and which widget a front end uses for it. The answers loader,
both front ends and the reference table ask the type instead of switching on a kind string.

A ``Question`` is one entry of the catalogue (a feature module declares its own); its key is
the dotted path of the answers file (``web_server.kind``) and ``when`` says when it applies,
given the other answers (a flat ``{key: value}`` mapping).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from omerowizard.model.secrets import MASK, Secret, mask_urls

MAX_TEXT = 4096
Flat = Mapping[str, Any]
SECRET_SHOWN = MASK


def _always(_: Flat) -> bool:
    return True


class QType:
    """The behaviour shared by every question of one kind."""

    name = "text"
    widget = "text"  # text | choices | list | records | file-only

    def parse(self, q: "Question", text: str) -> Any:
        """What was typed, as a value of this type (raises ValueError with the message)."""
        text = text.strip()
        if q.nullable and text == "":
            return None
        return text

    def schema(self, q: "Question") -> dict[str, Any]:
        return {"type": "string", "maxLength": MAX_TEXT}

    def allowed(self, q: "Question") -> str:
        return ""

    def as_text(self, q: "Question", value: Any) -> str:
        """A value as it is typed (prefilled in a text input)."""
        return "" if value is None else str(value)

    def display(self, q: "Question", value: Any) -> str:
        """A value as it is shown in a review, a summary or a log: secrets masked."""
        if value is None or value == "":
            return "(empty)"
        if q.secret:
            return mask_urls(str(value)) if "://" in str(value) else SECRET_SHOWN
        return self.as_text(q, value)

    def options(self, q: "Question") -> list[tuple[str, Any]]:
        """(label, value) of each option, for widgets that offer a fixed set."""
        return []

    def coerce(self, q: "Question", value: Any) -> Any:
        """A value as read from YAML, before the schema checks it (YAML 1.1 reads ``off`` as false)."""
        if value is False and "off" in (q.choices or q.allowed_text().split(" | ")):
            return "off"
        return value

    def model(self, q: "Question", value: Any) -> Any:
        """A valid value as the answers model holds it (immutable)."""
        return value

    def item_problems(self, value: Any) -> list[tuple[str, str]]:
        """(suffix of the key such as ``[0].host``, message) for each part of a value that is refused."""
        return []


class Text(QType):
    pass


class SecretText(Text):
    """A password or a key: the answers model holds it as a ``Secret`` (shown as ``****`` wherever it is
    printed), and it is shown masked whole, even when it looks like a URL."""

    def display(self, q, value):
        if value is None or value == "":
            return "(empty)"
        return SECRET_SHOWN

    def as_text(self, q, value):
        if isinstance(value, Secret):
            return value.reveal()
        return super().as_text(q, value)

    def model(self, q, value):
        return Secret(value) if isinstance(value, str) else value


class Size(Text):
    """A size such as 512k; a bare number is read as text."""

    def coerce(self, q, value):
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    def schema(self, q):
        return {"type": ["string", "integer"], "maxLength": 16}


class Choice(QType):
    name = "choice"
    widget = "choices"

    def schema(self, q):
        return {"type": "string", "enum": list(q.choices)}

    def allowed(self, q):
        return " | ".join(q.choices)

    def options(self, q):
        return [(c, c) for c in q.choices]

    def parse(self, q, text):
        text = text.strip()
        if text not in q.choices:
            raise ValueError(f"{text!r} is not one of {' | '.join(q.choices)}")
        return text


class Bool(QType):
    name = "bool"
    widget = "choices"

    def parse(self, q, text):
        text = text.strip().lower()
        if text in {"true", "yes", "y", "1", "on"}:
            return True
        if text in {"false", "no", "n", "0", "off"}:
            return False
        raise ValueError(f"{text!r} is not yes or no")

    def schema(self, q):
        return {"type": "boolean"}

    def allowed(self, q):
        return "true | false"

    def as_text(self, q, value):
        return "" if value is None else ("yes" if value else "no")

    def options(self, q):
        return [("yes", True), ("no", False)]

    def model(self, q, value):
        return bool(value)


class Int(QType):
    name = "int"

    def parse(self, q, text):
        text = text.strip()
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a whole number") from None

    def schema(self, q):
        return {"type": "integer", "minimum": q.minimum, "maximum": q.maximum}

    def allowed(self, q):
        return f"an integer from {q.minimum} to {q.maximum}"


class TextList(QType):
    """A list of strings, typed comma-separated."""

    name = "list"
    widget = "list"

    def parse(self, q, text):
        return [item.strip() for item in text.replace("\n", ",").split(",") if item.strip()]

    def schema(self, q):
        return {"type": "array", "items": {"type": "string", "maxLength": MAX_TEXT}, "maxItems": 200}

    def as_text(self, q, value):
        return ", ".join(str(v) for v in value or ())

    def display(self, q, value):
        return self.as_text(q, value) or "(none)"

    def model(self, q, value):
        return tuple(value or ())


class MultiChoice(QType):
    """Several of a fixed set of choices (``apps.enabled: [figure, iviewer]``), kept in the order of
    ``q.choices``. Typed comma-separated; a multi-select widget in the Textual app and a checkbox list
    in plain mode (``widget = "multi"``)."""

    name = "multi"
    widget = "multi"

    def parse(self, q, text):
        chosen = [item.strip() for item in text.replace("\n", ",").split(",") if item.strip()]
        wrong = [c for c in chosen if c not in q.choices]
        if wrong:
            raise ValueError(f"{', '.join(map(repr, wrong))} {'is' if len(wrong) == 1 else 'are'} not among "
                             f"{' | '.join(q.choices)}")
        return self.ordered(q, chosen)

    def ordered(self, q, chosen) -> list[str]:
        return [c for c in q.choices if c in set(chosen)]

    def schema(self, q):
        return {"type": "array", "items": {"type": "string", "enum": list(q.choices)}, "uniqueItems": True,
                "maxItems": len(q.choices)}

    def allowed(self, q):
        return "a list of " + " | ".join(q.choices)

    def options(self, q):
        return [(c, c) for c in q.choices]

    def as_text(self, q, value):
        return ", ".join(str(v) for v in value or ())

    def display(self, q, value):
        return self.as_text(q, value) or "(none)"

    def model(self, q, value):
        return tuple(self.ordered(q, value or ()))


class Mapping_(QType):
    """A mapping answered in an answers file only (extra_config)."""

    name = "mapping"
    widget = "file-only"

    def __init__(self, key_pattern: str):
        self.key_pattern = key_pattern

    def parse(self, q, text):
        raise ValueError(f"edit {q.key} in an answers file")

    def schema(self, q):
        return {"type": "object", "propertyNames": {"pattern": f"^{self.key_pattern}$"}, "maxProperties": 500}

    def as_text(self, q, value):
        return ", ".join(sorted(value or {}))

    def display(self, q, value):
        return self.as_text(q, value) or "(none)"

    def model(self, q, value):
        return dict(value or {})


@dataclass(frozen=True)
class Field:
    """One field of a record (``servers[].host``)."""

    name: str
    label: str
    required: bool = True
    integer: bool = False
    default: Any = None
    minimum: int | None = None
    maximum: int | None = None
    check: Callable[[Any], str | None] | None = None


class Records(QType):
    """A list of records, each a mapping of a few fields (``servers: [{host, port, name}]``).

    Typed as one record per line or separated by ``;``, each ``field=value`` pairs or the fields in
    order separated by blanks or ``:`` (``omero.example.org:4064 Main``)."""

    name = "records"
    widget = "records"

    def __init__(self, *fields: Field, max_items: int = 50, positional: bool = False):
        self.fields = fields
        self.max_items = max_items
        self.positional = positional  # shown as typed: ``host[:port] [name]`` (the fields in order)

    def schema(self, q):
        props: dict[str, Any] = {}
        for f in self.fields:
            props[f.name] = ({"type": "integer", "minimum": f.minimum, "maximum": f.maximum} if f.integer
                             else {"type": "string", "maxLength": 255})
            if not f.required:  # empty: the field's default; a required field must have a value
                props[f.name]["type"] = [props[f.name]["type"], "null"]
        item = {"type": "object", "additionalProperties": False, "properties": props,
                "required": [f.name for f in self.fields if f.required]}
        return {"type": "array", "items": item, "maxItems": self.max_items}

    def allowed(self, q):
        names = ", ".join(f.name for f in self.fields)
        return f"a list of {{{names}}}"

    def normalise(self, value: Any) -> Any:
        """Defaults filled in (a default may follow another field: the name defaults to the host)."""
        if not isinstance(value, list):
            return value
        out = []
        for item in value:
            if not isinstance(item, dict):
                out.append(item)
                continue
            rec = dict(item)
            for f in self.fields:
                if rec.get(f.name) is None and f.default is not None:
                    rec[f.name] = f.default(rec) if callable(f.default) else f.default
            out.append(rec)
        return out

    def item_problems(self, value: Any) -> list[tuple[str, str]]:
        """(``[i].field``, message) for each field that its check refuses."""
        out: list[tuple[str, str]] = []
        for i, item in enumerate(value if isinstance(value, list) else []):
            if not isinstance(item, dict):
                continue
            for f in self.fields:
                v = item.get(f.name)
                if isinstance(v, str) and f.check is not None:  # a value of another type: the schema says so
                    msg = f.check(v)
                    if msg:
                        out.append((f"[{i}].{f.name}", f"{v!r} {msg}"))
        return out

    def model(self, q, value):
        return tuple(self.normalise(list(value or ())))

    def record_text(self, rec: Mapping[str, Any]) -> str:
        if self.positional:
            text = self._positional_text(rec)
            if text is not None and self.parse_record(text) == {k: v for k, v in rec.items() if v is not None}:
                return text
        return " ".join(f"{f.name}={rec.get(f.name)}" for f in self.fields if rec.get(f.name) is not None)

    def _positional_text(self, rec: Mapping[str, Any]) -> str | None:
        """``host:port rest`` as parse_record reads it (an address with a colon in brackets); None when a value
        could not be read back so (blanks in the first field, a separator in the last)."""
        values = [rec.get(f.name) for f in self.fields]
        first = str(values[0] or "")
        if not first or any(ch.isspace() for ch in first) or any(str(x).strip() != str(x) or ";" in str(x)
                                                                  for x in values[2:] if x is not None):
            return None
        text = f"[{first}]" if ":" in first else first
        if len(values) > 1 and values[1] is not None:
            text += f":{values[1]}"
        rest = [str(x) for x in values[2:] if x is not None]
        return " ".join([text, *rest])

    def as_text(self, q, value):
        return "; ".join(self.record_text(r) for r in value or () if isinstance(r, Mapping))

    def display(self, q, value):
        return self.as_text(q, value) or "(none)"

    def parse_record(self, text: str) -> dict[str, Any]:
        text = text.strip()
        rec: dict[str, Any] = {}
        words = text.split()
        if all("=" in w for w in words):
            for w in words:
                k, _, v = w.partition("=")
                if k not in {f.name for f in self.fields}:
                    raise ValueError(f"{k!r} is not a field (fields: {', '.join(f.name for f in self.fields)})")
                rec[k] = v
        else:
            # positional: host[:port] [name...]; an IPv6 address with a port in brackets: [::1]:4082
            first, *rest = words
            bracketed = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\](?::(\d+))?", first)
            if bracketed:
                parts = [bracketed.group(1), bracketed.group(2)] if bracketed.group(2) else [bracketed.group(1)]
            else:
                parts = first.rsplit(":", 1) if first.count(":") == 1 else [first]
            values = [*parts] if len(parts) == 2 else [parts[0], None]
            if rest:
                values.append(" ".join(rest))
            for f, v in zip(self.fields, values):
                if v is not None:
                    rec[f.name] = v
        for f in self.fields:
            if f.integer and rec.get(f.name) is not None:
                try:
                    rec[f.name] = int(rec[f.name])
                except ValueError:
                    raise ValueError(f"{f.name} {rec[f.name]!r} is not a whole number") from None
        return rec

    def parse(self, q, text):
        return [self.parse_record(part) for part in text.replace("\n", ";").split(";") if part.strip()]


@dataclass(frozen=True)
class Question:
    key: str
    prompt: str
    help: str
    type: QType
    step: str  # the front ends' step this question is asked in
    default: Any = None
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    check: Callable[[Any], str | None] | None = None
    allowed: str = ""
    when: Callable[[Flat], bool] = _always
    nullable: bool = False
    secret: bool = False  # masked wherever it is shown
    hidden: bool = False  # not even echoed while typed (a password)
    item_check: Callable[[Any], str | None] | None = None  # for lists
    unused: Any = field(default=..., compare=False)  # the value when ``when`` does not hold (...: its default)
    placeholder: str = ""

    @property
    def kind(self) -> str:
        return self.type.name

    def default_for(self, answers: Flat) -> Any:
        return self.default(answers) if callable(self.default) else self.default

    def allowed_text(self) -> str:
        return self.allowed or self.type.allowed(self)

    def parse(self, text: str) -> Any:
        return self.type.parse(self, text)

    def display(self, value: Any) -> str:
        return self.type.display(self, value)

    def as_text(self, value: Any) -> str:
        return self.type.as_text(self, value)

    @property
    def top(self) -> str:
        return self.key.split(".")[0]


TEXT, CHOICE, BOOL, INT, LIST, SIZE, MULTI = Text(), Choice(), Bool(), Int(), TextList(), Size(), MultiChoice()
SECRET = SecretText()
