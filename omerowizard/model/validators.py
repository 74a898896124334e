"""Validators for answer values. Each returns None when the value is fine, else what is wrong.

They are strict on purpose: a value that reaches a template or a command line has
passed one of these, so no answer can end a directive or open a block in a rendered
file. Values are refused, never escaped.
"""

from __future__ import annotations

import ipaddress
import json
import re
import unicodedata
from urllib.parse import urlsplit

from crontab import CronSlices

_LABEL = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
HOSTNAME = re.compile(rf"{_LABEL}(\.{_LABEL})*\.?")
USERNAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
SAFE_PATH = re.compile(r"/[A-Za-z0-9._/+@-]*")
WIN_PATH = re.compile(r"[A-Za-z]:\\[A-Za-z0-9._\\ +@()-]*")
PREFIX = re.compile(r"/([A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*)?")
STATIC_URL = re.compile(r"/([A-Za-z0-9._~-]+/)*")
BODY_SIZE = re.compile(r"[0-9]{1,9}[kKmMgG]?")
CRON_FIELD = re.compile(r"(\*|[0-9]{1,2}(-[0-9]{1,2})?)(/[0-9]{1,2})?(,(\*|[0-9]{1,2}(-[0-9]{1,2})?)(/[0-9]{1,2})?)*")
EXTRA_KEY = re.compile(r"omero\.web\.[a-z0-9_]+(\.[a-z0-9_]+)*")
CRON_RANGES = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]


def hostname(value: str) -> str | None:
    if len(value) > 253 or not HOSTNAME.fullmatch(value):
        return "is not a host name (letters, digits, '-' and '.' only)"
    if value.rstrip(".").rsplit(".", 1)[-1].isdigit():
        return "is not a host name (its last label is all digits) nor an IP address"
    return None


def host_or_ip(value: str) -> str | None:
    if not re.fullmatch(r"[A-Za-z0-9.:-]+", value):  # no IPv6 zone (%...), which ipaddress takes nearly as is
        return "is not an IP address nor a host name (letters, digits, '-', '.' and ':' only)"
    try:
        ipaddress.ip_address(value)
        return None
    except ValueError:
        return hostname(value)


def username(value: str) -> str | None:
    if not USERNAME.fullmatch(value):
        return "is not a valid user name (lower-case letters, digits, '_' and '-', starting with a letter or '_')"
    if value == "root":
        return "must not be root: OMERO.web refuses to run as root"
    return None


def unix_path(value: str) -> str | None:
    if not SAFE_PATH.fullmatch(value):
        return "must be an absolute path of letters, digits and . _ - / + @ (no spaces, quotes or ';')"
    if any(part == ".." for part in value.split("/")):
        return "must not contain '..'"
    if len(value) > 1024 or any(len(part) > 255 for part in value.split("/")):
        return "is too long (at most 1024 characters, 255 between two '/')"
    return None


def any_path(value: str) -> str | None:
    """A Unix path, or a Windows path (for files rendered for IIS)."""
    if value.startswith("/"):
        return unix_path(value)
    if WIN_PATH.fullmatch(value) and ".." not in value.split("\\") and value == value.strip():
        return None
    return "must be an absolute path (/... or C:\\...) without quotes, ';' or '..'"


def file_path(value: str) -> str | None:
    """A path to a file (not a directory): any_path, not ending in a separator or '.'."""
    msg = any_path(value)
    if msg:
        return msg
    if value.endswith(("/", "\\", "/.", "\\.")):
        return "must name a file, not a directory (it ends with a separator or '.')"
    return None


def prefix(value: str) -> str | None:
    if not PREFIX.fullmatch(value) or any(p in {".", ".."} for p in value.split("/")):
        return "must be '/' or a path such as /omero (letters, digits, . _ ~ -; no trailing slash, no spaces, no '..')"
    return None


def static_url(value: str) -> str | None:
    if not STATIC_URL.fullmatch(value) or any(p in {".", ".."} for p in value.split("/")):
        return "must be a path that starts and ends with '/', such as /omero/static/"
    return None


def body_size(value: str) -> str | None:
    if not BODY_SIZE.fullmatch(str(value)):
        return "must be a size such as 0 (no limit), 512k, 100m or 2g"
    return None


def origin(value: str) -> str | None:
    """scheme://host[:port], exactly what django-cors-headers accepts as an origin."""
    if not isinstance(value, str):
        return "must be a string such as https://example.org"
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        return "must be an origin scheme://host[:port], e.g. https://example.org"
    if parts.path or parts.query or parts.fragment or "@" in parts.netloc:
        return "must be only scheme://host[:port], without a path, query or user"
    # urlsplit drops surrounding blanks, and tabs or line breaks anywhere: the exact text decides
    if not re.fullmatch(r"https?://[A-Za-z0-9.:\[\]-]+", value):
        return "must be exactly scheme://host[:port] (lower-case http or https, no blanks), e.g. https://example.org"
    host = parts.hostname or ""
    try:
        port = parts.port
    except ValueError:
        return "has an invalid port"
    if port is not None and not (1 <= port <= 65535):
        return "has a port out of range"
    if host_or_ip(host.strip("[]")) is not None:
        return "has an invalid host name"
    return None


def redis_url(value: str) -> str | None:
    if any(c.isspace() or not c.isprintable() for c in value):  # urlsplit would drop some of them
        return "must not contain spaces, tabs, line breaks or control characters"
    parts = urlsplit(value)
    if parts.scheme not in {"redis", "rediss"}:
        return "must be a Redis URL such as redis://127.0.0.1:6379/0 (or rediss:// with TLS)"
    try:
        port = parts.port
    except ValueError:
        return "has an invalid port"
    if not parts.hostname or host_or_ip(parts.hostname) is not None:
        return "has an invalid host"
    if port is not None and not 1 <= port <= 65535:
        return "has a port out of range"
    if parts.path not in {"", "/"} and not re.fullmatch(r"/[0-9]{1,2}", parts.path):
        return "must end with a database number such as /0"
    if parts.query or parts.fragment or any(c in value for c in " \"'\\{}"):
        return "must not contain spaces, quotes, braces or a query"
    return None


def memcached_location(value: str) -> str | None:
    m = re.fullmatch(r"(?P<host>[A-Za-z0-9.-]+):(?P<port>[0-9]{1,5})", value)
    if not m or host_or_ip(m["host"]) is not None or not 1 <= int(m["port"]) <= 65535:
        return "must be host:port of a Memcached server, e.g. 127.0.0.1:11211"
    return None


def schedule(value: str) -> str | None:
    if value in {"daily", "hourly", "off"}:
        return None
    fields = str(value).split(" ")
    if len(fields) != 5:
        return ("must be daily, hourly, off or five cron fields separated by single spaces, such as '30 3 * * *'")
    for text, (lo, hi) in zip(fields, CRON_RANGES):
        if not CRON_FIELD.fullmatch(text):
            return f"has an invalid cron field {text!r}"
        for num in re.findall(r"[0-9]+", text.split("/")[0]):
            if not lo <= int(num) <= hi:
                return f"has {num} out of range {lo}-{hi} in cron field {text!r}"

    if not CronSlices.is_valid(value):
        return "is not a schedule cron accepts (a step of 0, a range that runs backwards, ...)"
    return None


def extra_key(value: str) -> str | None:
    if not EXTRA_KEY.fullmatch(value):
        return "must be an omero.web.* configuration key (lower-case, dotted)"
    return None


def config_value(value: object) -> str | None:
    """A value that can be stored as one line in the OMERO config."""
    if isinstance(value, (dict, list)):
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            return "cannot be written as JSON"
        return None
    if isinstance(value, bool) or value is None or isinstance(value, (int, float)):
        return None
    if isinstance(value, str):
        return text(value)
    return None


def _unicode_name(ch: str) -> str:

    return f"U+{ord(ch):04X}" + (f" ({unicodedata.name(ch)})" if unicodedata.name(ch, "") else "")


def text(value: str) -> str | None:
    """Characters no answer may hold: what XML (config.xml) cannot store, control characters
    (line breaks, tabs, ESC, DEL, C1), line and paragraph separators. Every string is checked."""

    for i, ch in enumerate(value):
        cat = unicodedata.category(ch)
        if cat in {"Cc", "Cs", "Zl", "Zp"} or ch in "\ufffe\uffff":
            what = {"\n": "a line break", "\r": "a line break", "\t": "a tab"}.get(ch, _unicode_name(ch))
            return (f"holds {what} at position {i + 1}: control characters, line breaks and characters "
                    f"XML cannot store are not allowed")
    return None


VERSION = re.compile(r"[0-9]{1,3}(\.[0-9]{1,4}){0,3}")


def version(value: str) -> str | None:
    if not VERSION.fullmatch(str(value)):
        return "must be a version number such as 5.2.8 or 5.33.2"
    return None
