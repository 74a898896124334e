"""Reading YAML with the line of every key, and nothing but plain YAML.

PyYAML's safe composer with limits (nesting depth, aliases, the size of the tree once aliases are expanded, the
digits of a number) counted while the file is composed, so a bomb is refused before anything is built; then
plain values are built from the node tree: mappings, lists, strings, numbers, booleans and null. Any other tag
and merge keys are refused with the key and line, never converted. Ansible's ``!unsafe`` is read as the text it
tags (what `omerowizard answers` writes)."""

from __future__ import annotations

import re
from typing import Any

import yaml

from omerowizard.model import ansible_yaml
from omerowizard.model.errors import Problem

# ---------------------------------------------------------------------------- reading YAML with lines
MAX_DEPTH = 20  # the answers nest 4 deep; extra_config values a few more


MAX_ALIASES = 100


MAX_DIGITS = 100  # far above any answer's range, far below the 4300 digits Python reads into an int


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


def tag_name(tag: str) -> str:
    return "!!" + tag[len("tag:yaml.org,2002:"):] if tag.startswith("tag:yaml.org,2002:") else tag


class Reader:
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
        if node.tag in allowed or (node.tag == ansible_yaml.UNSAFE_TAG and isinstance(node, yaml.ScalarNode)):
            return True
        if node.tag == "tag:yaml.org,2002:merge":
            msg, hint = "is a merge key (<<), which omerowizard does not expand", "the keys written out"
        elif node.tag == "tag:yaml.org,2002:timestamp":
            msg, hint = "was read as a date or time: write the value in quotes", "a quoted string"
        else:
            msg = f"has the tag {tag_name(node.tag)}, which omerowizard does not read"
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
        if node.tag == ansible_yaml.UNSAFE_TAG:  # Ansible's "never template this": the text, exactly
            return node.value
        if not self._plain_number(node, where):
            return None
        return self._scalar(node)

    def _plain_number(self, node: yaml.Node, where: str) -> bool:
        """YAML 1.1 reads 0x1F, 017 (octal), 1_000, 1:20 (base 60), .inf and .nan as numbers: refuse
        them rather than let a port of 1:20 become 80. Plain decimal numbers only."""
        if node.tag == "tag:yaml.org,2002:int":
            ok = re.fullmatch(r"[-+]?(0|[1-9][0-9]*)", node.value)
            if ok and len(node.value) > MAX_DIGITS:  # Python refuses to read more than 4300 digits: a traceback
                self.problems.append(Problem(where or "(file)", f"is a number of {len(node.value)} digits",
                                             self.source, node.start_mark.line + 1,
                                             allowed=f"a number of at most {MAX_DIGITS} digits"))
                return False
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
