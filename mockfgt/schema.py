"""A small declarative checker for scenario files: every error names the file, the key and what is allowed.

Specs are plain objects (:class:`Str`, :class:`Int`, :class:`Table`...). ``spec.check(value, key)``
returns the value with defaults filled in, or raises :class:`SchemaError` with the dotted key.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class SchemaError(ValueError):
    def __init__(self, key: str, message: str):
        super().__init__(f"{key}: {message}" if key else message)
        self.key, self.message = key, message


def _join(key: str, name: str | int) -> str:
    if isinstance(name, int):
        return f"{key}[{name}]"
    return f"{key}.{name}" if key else name


#: How much of a value an error message repeats: enough to recognise it, never a whole upload.
ECHO_LIMIT = 100


def shown(value) -> str:
    """``value`` as an error message repeats it: at most ``ECHO_LIMIT`` characters, then its length."""
    text = str(value)
    return text if len(text) <= ECHO_LIMIT else f"{text[:ECHO_LIMIT]}... ({len(text)} characters)"


def suggest(word: object, options) -> str:  # word: whatever the file held
    if len(str(word)) > ECHO_LIMIT:  # nothing that long is close to a name; difflib would only burn CPU
        return ""
    import difflib  # only a mistake pays for it

    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _range(low, high) -> str:
    """'0..10', or 'at least 1' / 'at most 9' for a range open at one end."""
    if high is None:
        return f"(at least {low})"
    if low is None:
        return f"(at most {high})"
    return f"{low}..{high}"


def _type_name(value) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "a table"}.get(type(value), type(value).__name__)


@dataclass
class Spec:
    default: Any = None
    doc: str = ""

    def check(self, value, key: str):
        raise NotImplementedError

    def fill(self):
        """The value used when the key is absent."""
        return self.default() if callable(self.default) else self.default


@dataclass
class Any_(Spec):
    """Anything TOML can hold; checked later by whoever uses it."""

    def check(self, value, key):
        return value


#: Longest string a scenario value may be: summaries and passwords fit; a pasted file does not.
MAX_STR = 4096
#: Largest integer anywhere: what a 32-bit signed field on the device holds.
MAX_INT = 2**31 - 1
#: Longest duration in seconds (a day): a stall or a timeout longer than that is a typo.
MAX_SECONDS = 86400.0


@dataclass
class Str(Spec):
    choices: dict | tuple | None = None
    max_length: int = MAX_STR

    def check(self, value, key):
        if not isinstance(value, str):
            raise SchemaError(key, f"expected a string, got {_type_name(value)}")
        if len(value) > self.max_length:
            raise SchemaError(key, f"{len(value)} characters; at most {self.max_length} are allowed")
        if self.choices is not None and value not in self.choices:
            allowed = ", ".join(self.choices)
            raise SchemaError(key, f"'{shown(value)}' is not allowed; allowed: {allowed}{suggest(value, self.choices)}")
        return value


@dataclass
class Parsed(Str):
    """A string that ``parse`` accepts (a version, a network): its ValueError becomes the message."""

    parse: Callable[[str], Any] | None = None
    what: str = "valid here"

    def check(self, value, key):
        value = super().check(value, key)
        assert self.parse is not None, "every Parsed names its parser"  # a default only for field order
        try:
            self.parse(value)
        except ValueError as exc:
            reason = f": {exc}" if str(exc) else ""
            raise SchemaError(key, f"'{shown(value)}' is not {self.what}{reason}") from None
        return value


def _host_name(text: str) -> None:
    # Letters, digits, dots and hyphens: the name goes into the device's certificate as a DNS name.
    if not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,33}[A-Za-z0-9])?", text):
        raise ValueError("use 1 to 35 letters, digits, '.' or '-', starting and ending with a letter or digit")


def HostName(default: str, doc: str = "the device's host name (FortiOS allows 35 characters)") -> Parsed:
    return Parsed(default, doc=doc, max_length=35, parse=_host_name, what="a host name")


@dataclass
class Int(Spec):
    min: int | None = None
    max: int | None = None

    def check(self, value, key):
        if not isinstance(value, int) or isinstance(value, bool):
            raise SchemaError(key, f"expected an integer, got {_type_name(value)}")
        high = MAX_INT if self.max is None else self.max
        if (self.min is not None and value < self.min) or value > high:
            what = value if abs(value) < 10**12 else "a very large integer"  # str() of 10**5000 raises
            raise SchemaError(key, f"{what} is out of range {_range(self.min, high)}")
        return value


@dataclass
class Float(Spec):
    """A duration in seconds: finite, from ``min`` to ``max``."""

    min: float = 0.0
    max: float = MAX_SECONDS

    def check(self, value, key):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise SchemaError(key, f"expected a number, got {_type_name(value)}")
        if not math.isfinite(value) or not self.min <= value <= self.max:  # nan fails every comparison
            raise SchemaError(key, f"{value} is out of range {self.min:g}..{self.max:g}")
        return float(value)


@dataclass
class Bool(Spec):
    def check(self, value, key):
        if not isinstance(value, bool):
            raise SchemaError(key, f"expected true or false, got {_type_name(value)}")
        return value


@dataclass
class Code(Spec):
    """An expected outcome: 'ok' or one of the error families (written as a number or a string)."""

    choices: tuple = ()

    def check(self, value, key):
        small = isinstance(value, str) or (isinstance(value, int) and abs(value) < 10**9)
        text = str(value) if small and not isinstance(value, bool) else None
        if text not in self.choices:
            allowed = ", ".join(self.choices)
            what = shown(value) if small else _type_name(value)  # str() of a huge integer raises
            raise SchemaError(key, f"'{what}' is not an expected code; allowed: {allowed}{suggest(what, self.choices)}")
        return text


@dataclass
class List(Spec):
    item: Spec = field(default_factory=Spec)
    unique: bool = False
    nonempty: bool = False

    def check(self, value, key):
        if not isinstance(value, list):
            raise SchemaError(key, f"expected a list, got {_type_name(value)}")
        if self.nonempty and not value:
            raise SchemaError(key, "must not be empty")
        items = [self.item.check(v, _join(key, i)) for i, v in enumerate(value)]
        if self.unique and len(set(map(str, items))) != len(items):
            raise SchemaError(key, "lists the same value twice")
        return items


@dataclass
class Table(Spec):
    """A TOML table with known keys. ``required`` keys must be present after defaults."""

    fields: dict[str, Spec] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    validate: Callable[[dict, str], None] | None = None

    def check(self, value, key):
        if not isinstance(value, dict):
            raise SchemaError(key, f"expected a table, got {_type_name(value)}")
        for name in value:
            if name not in self.fields:
                allowed = ", ".join(self.fields)
                raise SchemaError(_join(key, shown(name)), f"unknown key; allowed here: {allowed}{suggest(name, self.fields)}")
        out = {}
        for name, spec in self.fields.items():
            if name in value:
                out[name] = spec.check(value[name], _join(key, name))
            elif name in self.required:
                raise SchemaError(_join(key, name), f"is required{': ' + spec.doc if spec.doc else ''}")
            else:
                out[name] = spec.fill()
        if self.validate:
            self.validate(out, key)
        return out

    def fill(self):
        return self.check({}, "") if self.default is None else super().fill()


@dataclass
class MapOf(Spec):
    """A table whose keys are names the user chooses, each value checked by ``value``."""

    value: Spec = field(default_factory=Spec)

    def check(self, value, key):
        if not isinstance(value, dict):
            raise SchemaError(key, f"expected a table, got {_type_name(value)}")
        return {name: self.value.check(v, _join(key, name)) for name, v in value.items()}

    def fill(self):
        return {} if self.default is None else super().fill()


@dataclass
class OneOf(Spec):
    """A table chosen by its ``op`` key (used for device operations in setup and remedies)."""

    variants: dict[str, Table] = field(default_factory=dict)
    tag: str = "op"

    def check(self, value, key):
        if not isinstance(value, dict):
            raise SchemaError(key, f"expected a table with '{self.tag}', got {_type_name(value)}")
        op = value.get(self.tag)
        if op not in self.variants:
            allowed = ", ".join(self.variants)
            raise SchemaError(_join(key, self.tag), f"'{shown(op)}' is not a known operation; allowed: {allowed}{suggest(op, self.variants)}")
        body = {k: v for k, v in value.items() if k != self.tag}
        return {self.tag: op, **self.variants[op].check(body, key)}
