"""A corpus of hostile answers files, generated: every text answer with control characters, line
breaks, blanks around it, backslashes, Unicode look-alikes and huge values, and the YAML features
an answers file must not use (aliases bombs, merge keys, tags, deep nesting, duplicate and
non-string keys, several documents, characters YAML refuses). Each entry knows the key and line
the error must name. tests/e2e/test_safety.py runs every entry through the real CLI."""

from __future__ import annotations

from dataclasses import dataclass

from omerowizard.model.errors import printable


@dataclass(frozen=True)
class Entry:
    name: str
    body: bytes
    key: str  # the key the error names
    line: int | None  # the line it names (None: the file as a whole, e.g. too big)

    def expected(self, path: str) -> str:
        where = f"{path}:{self.line}" if self.line else path
        return f"{where}: {printable(self.key)}:"


def q(value: str) -> str:
    """``value`` as a YAML double-quoted scalar, every character outside printable text escaped."""
    out = []
    for ch in value:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif code < 0x20 or 0x7F <= code <= 0x9F or ch in "\u2028\u2029\ufeff\ufffe\uffff" or 0xD800 <= code <= 0xDFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _emit(tree: dict, indent: int = 0, lines: list[str] | None = None, where: dict | None = None,
          prefix: str = "") -> tuple[list[str], dict]:
    """Block YAML for a nested dict whose leaves are YAML text; ``where`` maps dotted keys to lines."""
    lines = [] if lines is None else lines
    where = {} if where is None else where
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        shown = key if key.replace(".", "").replace("_", "").isalnum() and key.isascii() else q(key)
        if isinstance(value, dict):
            lines.append(" " * indent + f"{shown}:")
            where[dotted] = len(lines)
            _emit(value, indent + 2, lines, where, dotted + ".")
        else:
            lines.append(" " * indent + f"{shown}: {value}")
            where[dotted] = len(lines)
    return lines, where


def _put(tree: dict, key: str, text: str) -> None:
    node = tree
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = text


# the good value of every text answer, the answers under which it applies, and the mutations
# that must be refused for it
TEXT_KEYS: dict[str, tuple[str, dict[str, str]]] = {
    "omero.user": ("omero-web", {}),
    "omero.venv": ("{venv}", {}),
    "omero.omerodir": ("{omerodir}", {}),
    "web_server.server_name": ("omero.example.org", {}),
    "web_server.max_body_size": ("100m", {}),
    "web_server.config_path": ("{site}", {}),
    "web_server.https.certificate": ("/etc/ssl/certs/omero.pem", {"web_server.https.key": "/etc/ssl/private/omero.key"}),
    "web_server.https.key": ("/etc/ssl/private/omero.key", {"web_server.https.certificate": "/etc/ssl/certs/omero.pem"}),
    "application_server.host": ("127.0.0.1", {}),
    "prefix": ("/omero", {}),
    "static_url": ("/omero/static/", {"prefix": "/omero"}),
    "sessions.location": ("redis://:pw@127.0.0.1:6379/0", {"sessions.backend": "redis"}),
    "sessions.clearsessions": ("daily", {}),
    "cors.origins[0]": ("https://a.example.org", {"cors.mode": "origins"}),
    "web_server.omero_web_version": ("5.2.8", {"platform": "windows"}),
    "web_server.omero_dist": ("C:\\omero_dist", {"platform": "windows", "web_server.omero_web_version": '"5.2.8"'}),
    "extra_config.omero.web.login_logo": ("/static/logo.png", {}),
    "apps.mapr_config": ("gene, phenotype", {"apps.enabled": "[mapr]"}),
    "apps.find_links": ("/srv/wheels", {}),
    "omero.web_version": ("5.33.2", {}),
    "apps.enabled[0]": ("figure", {}),
    "apps.versions.figure": ("==8.0.1", {"apps.enabled": "[figure]"}),
    "apps.custom[0].requirement": ("omero-gallery", {"apps.custom[0].app": "omero_gallery"}),
    "apps.custom[0].app": ("omero_gallery", {"apps.custom[0].requirement": "omero-gallery"}),
    "apps.custom[0].open_with": ('["gallery", "gallery_index", {"supported_objects": ["images"]}]',
                                 {"apps.custom[0].requirement": "omero-gallery", "apps.custom[0].app": "omero_gallery"}),
    "apps.custom[0].top_links": ('["Gallery", "gallery_index", {"title": "Gallery"}]',
                                 {"apps.custom[0].requirement": "omero-gallery", "apps.custom[0].app": "omero_gallery"}),
    "servers[0].host": ("omero.example.org", {"servers[0].port": "4064"}),
    "servers[0].name": ("Main", {"servers[0].host": "omero.example.org"}),
    "public.user": ("public", {"public.enabled": "true", "public.password": "secret-pw"}),
    "public.password": ("secret-pw", {"public.enabled": "true", "public.user": "public"}),
    "public.url_filter": ("^/webclient", {"public.enabled": "true", "public.user": "public",
                                          "public.password": "secret-pw"}),
    "public.server": ("Main", {"public.enabled": "true", "public.user": "public", "public.password": "secret-pw",
                               "servers": "[{host: omero.example.org, name: Main}]"}),
    "nodes.members[0].host": ("10.0.0.1", {"nodes.secret_key": "shared-secret-key-of-the-nodes-0123456789abcdefghij"}),
    "nodes.secret_key": ("shared-secret-key-of-the-nodes-0123456789abcdefghij", {"nodes.members": "[{host: 10.0.0.1}]"}),
}


def _lookalike(value: str) -> str:
    """The value with one letter or digit swapped for a look-alike (Cyrillic, fullwidth)."""
    swaps = {"o": "\u043e", "e": "\u0435", "a": "\u0430", "c": "\u0441", "p": "\u0440", "0": "\uff10", "1": "\uff11",
             "5": "\uff15", "2": "\uff12", "d": "\u0501", "m": "\uff4d", "s": "\u0455"}
    for i, ch in enumerate(value):
        if ch in swaps:
            return value[:i] + swaps[ch] + value[i + 1:]
    raise ValueError(value)


MUTATIONS = {
    "final-newline": lambda v: v + "\n",
    "final-cr": lambda v: v + "\r",
    "leading-newline": lambda v: "\n" + v,
    "inner-newline": lambda v: v[:2] + "\nx" + v[2:],
    "trailing-space": lambda v: v + " ",
    "leading-space": lambda v: " " + v,
    "tab": lambda v: v + "\t",
    "esc": lambda v: v[:1] + "\x1b[31m" + v[1:],
    "nul": lambda v: v + "\x00",
    "del": lambda v: v + "\x7f",
    "nel": lambda v: v + "\x85",
    "line-separator": lambda v: v + "\u2028",
    "bom-inside": lambda v: v + "\ufffe",
    "backslash": lambda v: v + "\\",
    "lookalike": _lookalike,
    "huge": lambda v: v + "x" * 5000,
    "jinja": lambda v: v[:1] + "{{ lookup('pipe', 'id') }}" + v[1:],
}
# what is a legitimate config value, or a legitimate Windows path, is not a mutation for that key; free
# text (a password, a label, a regular expression, JSON) may hold blanks, backslashes, any letter and
# "{{": such a value is written exactly and never templated (playbook marks it !unsafe)
FREE_TEXT = {"trailing-space", "leading-space", "backslash", "lookalike", "jinja"}
ACCEPTED = {
    "extra_config.omero.web.login_logo": {"trailing-space", "leading-space", "backslash", "lookalike", "huge", "jinja"},
    "web_server.omero_dist": {"backslash"},
    "apps.custom[0].requirement": {"trailing-space"},  # PEP 508 allows blanks around a requirement
    "apps.custom[0].open_with": {"trailing-space", "leading-space", "lookalike"},  # JSON: blanks, and a label
    "apps.custom[0].top_links": {"trailing-space", "leading-space", "lookalike"},
    "servers[0].name": FREE_TEXT,  # a label on the login page
    "public.user": FREE_TEXT,  # an OMERO user name (DOMAIN\\user, any script)
    "public.password": FREE_TEXT,
    "public.url_filter": FREE_TEXT - {"backslash"} | {"trailing-space", "leading-space"},  # a regular expression
    "nodes.secret_key": {"backslash"},  # printable ASCII
}


def per_key(venv: str, omerodir: str, site: str, every: int = 1) -> list[Entry]:
    """Every mutation of every text answer; with ``every=n`` one in n of them, spread so that each
    key and each mutation still appears (the CLI tier's selection; the unit tier takes all)."""
    fill = {"venv": venv, "omerodir": omerodir, "site": site}
    out = []
    for k, (key, (good, context)) in enumerate(TEXT_KEYS.items()):
        good = good.format(**fill) if good.startswith("{") else good
        for m, (name, mutate) in enumerate(MUTATIONS.items()):
            if name in ACCEPTED.get(key, set()) or (k + m) % every:
                continue
            value = mutate(good)
            tree: dict = {}
            if context.get("platform") != "windows":  # the deployment under test (its own entries override it)
                tree["omero"] = {"user": "omero-web", "venv": venv, "omerodir": omerodir}
            items: dict[str, dict[str, str]] = {}  # a list of one mapping (servers[0].host): its fields
            for ck, cv in {**context, key: None}.items():
                text = q(value) if cv is None else cv
                if "[0]." in ck:
                    lst, fld = ck.split("[0].")
                    items.setdefault(lst, {})[fld] = text
                elif ck.endswith("[0]"):
                    _put(tree, ck[:-3], f"[{text}]")
                elif ck.startswith("extra_config."):
                    tree.setdefault("extra_config", {})[ck[len("extra_config."):]] = text
                else:
                    _put(tree, ck, text)
            for lst, fields in items.items():
                _put(tree, lst, "[{" + ", ".join(f"{f}: {t}" for f, t in fields.items()) + "}]")
            lines, where = _emit(tree)
            if key.startswith("extra_config."):
                line = where["extra_config." + key[13:]]
            else:
                line = where[key.split("[")[0]]
            out.append(Entry(f"{key}-{name}", ("\n".join(lines) + "\n").encode(), key, line))
    return out


BOMB = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def yaml_features() -> list[Entry]:
    e = []

    def add(name: str, text: str | bytes, key: str, line: int | None) -> None:
        e.append(Entry(name, text if isinstance(text, bytes) else text.encode(), key, line))

    add("alias-bomb", BOMB, "(file)", 6)
    add("alias-bomb-in-extra", "x: &x [a, a, a, a, a, a, a, a, a, a]\n"
        + "".join(f"l{i}: &l{i} [{', '.join([f'*{p}' for p in ['x' if i == 0 else f'l{i - 1}'] * 10])}]\n"
                  for i in range(6)), "(file)", 5)
    add("101-aliases", "x: &x 1\nextra_config:\n  omero.web.y: [" + ", ".join(["*x"] * 101) + "]\n", "(file)", 3)
    add("merge-key", "base: &b {kind: nginx}\nweb_server:\n  <<: *b\n", "web_server.<<", 3)
    add("merge-key-top", "base: &b {prefix: /x}\n<<: *b\n", "<<", 2)
    for i, (tag, value) in enumerate([("!!set", "{a, b}"), ("!!binary", "aGVsbG8="), ("!!omap", "[a: 1]"),
                                      ("!!pairs", "[a: 1]"), ("!!timestamp", "2024-01-01"),
                                      ("!!python/tuple", "[1, 2]"), ("!!python/name:os.system", "''"),
                                      ("!!python/object/apply:os.system", "['id']"), ("!custom", "x"),
                                      ("!<tag:example.org,2024:x>", "x"), ("!!python/bytes", "aGk="),
                                      ("!!python/module:os", "''")]):
        add(f"tag-{i}", f"extra_config:\n  omero.web.x: {tag} {value}\n", "extra_config.omero.web.x", 2)
    add("tag-on-section", "web_server: !!python/object/apply:os.system ['id']\n", "web_server", 1)
    add("tag-on-key", "!!python/name:os.system x: 1\n", "x", 1)
    add("tag-shorthand", "%TAG !p! tag:yaml.org,2002:python/\n---\nprefix: !p!object/apply:os.system ['id']\n",
        "prefix", 3)
    add("implicit-date", "extra_config:\n  omero.web.x: 2024-01-01\n", "extra_config.omero.web.x", 2)
    add("deep-flow", "[" * 10000 + "]" * 10000 + "\n", "(file)", 1)
    add("deep-block", "a:\n" + "".join(" " * i + "b:\n" for i in range(1, 200)), "(file)", 20)
    add("deep-extra", "extra_config: {omero.web.x: " + "[" * 25 + "]" * 25 + "}\n", "(file)", 1)
    add("duplicate-top", "platform: unix\nplatform: windows\n", "platform", 2)
    add("duplicate-nested", "web_server:\n  kind: nginx\n  kind: apache\n", "web_server.kind", 3)
    add("duplicate-extra", "extra_config:\n  omero.web.x: 1\n  omero.web.x: 2\n", "extra_config.omero.web.x", 3)
    add("key-int", "1: x\n", "1", 1)
    add("key-bool", "true: x\n", "True", 1)
    add("key-null", "~: x\n", "None", 1)
    add("key-float", "1.5: x\n", "1.5", 1)
    add("key-list", "? [a, b]\n: 1\n", "(key)", 1)
    add("key-map", "? {a: b}\n: 1\n", "(key)", 1)
    add("key-nested-int", "web_server:\n  80: x\n", "web_server.80", 2)
    add("two-documents", "prefix: /a\n---\nprefix: /b\n", "(file)", 2)
    add("empty-documents", "---\n---\n", "(file)", 2)
    add("invalid-utf8", b"prefix: /omero\xff\xfe\n", "(file)", None)
    add("raw-esc", "prefix: /omero\x1b[2J\n", "(file)", 1)
    add("raw-nul", "prefix: /omero\nstart: true\x00\n", "(file)", 2)
    add("raw-bell-in-quotes", 'prefix: "/omero\x07"\n', "(file)", 1)
    add("raw-del", "prefix: /omero\x7f\n", "(file)", 1)
    add("raw-c1", "prefix: /omero\x9b31m\n", "(file)", 1)
    add("raw-nel-plain", "prefix: /omero\x85x\n", "(file)", 3)
    add("tab-indent", "web_server:\n\tkind: nginx\n", "(file)", 2)
    add("unclosed-quote", 'prefix: "/omero\n', "(file)", 2)
    add("unclosed-flow", "web_server: {kind: nginx\n", "(file)", 2)
    add("too-big", b"prefix: /omero\n" + b"#" * (1 << 20) + b"\n", "(file)", None)
    add("big-value", "prefix: /" + "a" * 300_000 + "\n", "prefix", 1)
    add("huge-key", "o" * 5000 + ": 1\n", "(file)", 1)  # PyYAML: a plain key is at most 1024 characters
    add("long-key", "o" * 1000 + ": 1\n", "o" * 1000, 1)
    add("many-keys", "extra_config: {" + ", ".join(f"omero.web.k{i}: 1" for i in range(600)) + "}\n",
        "extra_config", 1)
    add("scalar-file", "just a string\n", "(file)", 1)
    add("list-file", "- a\n- b\n", "(file)", 1)
    add("null-file", "~\n", "(file)", 1)
    add("anchor-to-hostile", 'x: &x "/omero\\n"\nprefix: *x\n', "prefix", 2)
    add("alias-self-cycle-key", "a: &a [*a]\n", "(file)", 1)
    add("bom-then-hostile", "\ufeffprefix: '/omero '\n", "prefix", 1)
    add("crlf-hostile", "prefix: /omero\r\nstatic_url: '/static'\r\n", "static_url", 2)
    add("directive-yaml-1.3", "%YAML 1.3\n---\nprefix: '/om ero'\n", "prefix", 3)
    add("fullwidth-port", "web_server:\n  port: \uff18\uff10\n", "web_server.port", 2)
    add("sexagesimal-string", "sessions:\n  clearsessions: 1:30\n", "sessions.clearsessions", 2)
    add("hex-bool", "start: 0x1\n", "start", 1)
    add("float-port", "web_server:\n  port: 80.0\n", "web_server.port", 2)
    add("base60-port", "web_server:\n  port: 1:20\n", "web_server.port", 2)
    add("octal-workers", "application_server:\n  workers: 017\n", "application_server.workers", 2)
    add("underscore-age", "sessions:\n  cookie_age: 86_400\n", "sessions.cookie_age", 2)
    add("inf-extra", "extra_config:\n  omero.web.x: .inf\n", "extra_config.omero.web.x", 2)
    add("yes-bool-for-string", "prefix: yes\n", "prefix", 1)
    add("null-in-list", "cors:\n  mode: origins\n  origins: [~]\n", "cors.origins[0]", 3)
    add("nested-list-origin", "cors:\n  mode: origins\n  origins: [[https://a.example.org]]\n", "cors.origins[0]", 3)
    add("extra-key-newline", 'extra_config:\n  "omero.web.x\\ny": 1\n', "extra_config.omero.web.x\ny", 2)
    add("extra-key-trailing-newline", 'extra_config:\n  "omero.web.x\\n": 1\n', "extra_config.omero.web.x\n", 2)
    add("extra-key-space", 'extra_config:\n  "omero.web.x ": 1\n', "extra_config.omero.web.x ", 2)
    add("extra-key-cyrillic", 'extra_config:\n  "omеro.web.x": 1\n', "extra_config.omеro.web.x", 2)
    add("extra-key-managed", "extra_config:\n  omero.web.prefix: /evil\n", "extra_config.omero.web.prefix", 2)
    add("extra-value-esc-nested", 'extra_config:\n  omero.web.x: {"a": ["\\e"]}\n', "extra_config.omero.web.x.a[0]", 2)
    add("extra-value-c1-key", 'extra_config:\n  omero.web.x: {"a\\x9b": 1}\n', "extra_config.omero.web.x.a\x9b", 2)
    # the newer sections: aliases across sections, nested duplicates, tags, huge numbers, look-alike keys,
    # a byte order mark, tabs, CRLF, document markers, keys that are numbers, booleans or null
    add("alias-across-sections", 'servers: [{host: &h "omero.example.org\\n", port: 4064}]\n'
        "public: {enabled: true, user: public, password: secret-pw, server: *h}\n", "servers[0].host", 1)
    # an alias's problem is named where its value is written (the anchor's line)
    add("alias-section-into-nodes", "apps: &a {enabled: [figure]}\nnodes: *a\n", "nodes.enabled", 1)
    add("alias-list-into-enabled", "x: &x [figure, '{{ 7*7 }}']\napps:\n  enabled: *x\n", "apps.enabled[1]", 1)
    add("duplicate-custom-app", "apps:\n  custom:\n    - requirement: omero-gallery\n      app: omero_gallery\n"
        "      app: omero_other\n", "apps.custom[0].app", 5)
    add("duplicate-public-user", "public:\n  enabled: true\n  user: public\n  user: root\n", "public.user", 4)
    add("duplicate-node-host", "nodes:\n  members:\n    - host: 10.0.0.1\n      host: 10.0.0.2\n",
        "nodes.members[0].host", 4)
    add("duplicate-versions", "apps:\n  enabled: [figure]\n  versions:\n    figure: ==8.0.1\n    figure: ==7.0\n",
        "apps.versions.figure", 5)
    add("tag-enabled", "apps: {enabled: !!python/tuple [figure]}\n", "apps.enabled", 1)
    add("tag-servers", "servers: !!set {omero.example.org}\n", "servers", 1)
    add("tag-password", "public: {enabled: true, user: public, password: !!binary aGVsbG8td29ybGQ=}\n",
        "public.password", 1)
    add("tag-secret-key", "nodes:\n  members: [{host: 10.0.0.1}]\n  secret_key: !!python/object/apply:os.getcwd []\n",
        "nodes.secret_key", 3)
    add("huge-https-port", "web_server:\n  https: {certificate: /etc/ssl/c.pem, key: /etc/ssl/k.pem, "
        "port: 99999999999999999999999}\n", "web_server.https.port", 2)
    add("huge-node-port", "nodes:\n  members: [{host: 10.0.0.1, port: 18446744073709551617}]\n",
        "nodes.members[0].port", 2)
    add("huge-server-port", "servers: [{host: omero.example.org, port: -4064}]\n", "servers[0].port", 1)
    add("int-with-5000-digits", "application_server:\n  timeout: " + "9" * 5000 + "\n", "application_server.timeout", 2)
    add("lookalike-section", "\u0430pps: {enabled: [figure]}\n", "\u0430pps", 1)
    add("lookalike-nested-key", "public: {enabled: true, us\u0435r: public}\n", "public.us\u0435r", 1)
    add("lookalike-app", "apps: {enabled: [figur\u0435]}\n", "apps.enabled[0]", 1)
    add("bom-then-apps", "\ufeffapps: {enabled: [figure, mapr], mapr_config: 'gene\\n'}\n", "apps.mapr_config", 1)
    add("tab-in-flow", "servers: [{host:\tomero.example.org\t, name: '\t'}]\n", "(file)", 1)
    add("tab-before-nested", "public:\n  enabled: true\n\tuser: public\n", "(file)", 3)
    add("crlf-apps", "apps:\r\n  enabled: [figure]\r\n  find_links: http://example.org/wheels\r\n",
        "apps.find_links", 3)
    add("document-start-apps", "apps: {enabled: [figure]}\n---\nnodes: {static: nodes}\n", "(file)", 2)
    add("document-end-then-more", "apps: {enabled: [figure]}\n...\nprefix: /x\n", "(file)", 3)
    add("key-int-in-public", "public: {1: x}\n", "public.1", 1)
    add("key-bool-in-apps", "apps: {true: x}\n", "apps.True", 1)
    add("key-null-in-server", "servers: [{host: omero.example.org, ~: x}]\n", "servers[0].None", 1)
    add("key-int-in-versions", "apps:\n  enabled: [figure]\n  versions: {8: ==8.0.1}\n", "apps.versions.8", 3)
    add("extra-web-version-https", "omero: {web_version: '{{ 5 }}'}\nweb_server: {https: {certificate: '/c.pem{{x}}', "
        "key: /k.pem}}\n", "omero.web_version", 1)
    add("jinja-node-host", "nodes: {members: [{host: '{{ ansible_host }}'}]}\n", "nodes.members[0].host", 1)
    add("jinja-extra-key", "extra_config: {'omero.web.{{ x }}': 1}\n", "extra_config.omero.web.{{ x }}", 1)
    add("jinja-mapr", "apps: {enabled: [mapr], mapr_config: '{{ 7*7 }}'}\n", "apps.mapr_config", 1)
    add("jinja-find-links", "apps: {find_links: '/srv/{{ x }}'}\n", "apps.find_links", 1)
    return e
