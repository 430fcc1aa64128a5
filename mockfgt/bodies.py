"""Reading JSON request bodies the way a device must: whatever the client sends, never a crash.

``json.loads`` raises ``RecursionError`` (not ``ValueError``) on a body like ``[[[[...]]]]`` a few
thousand levels deep, and a body just shallow enough to parse still breaks every recursive walk
after it (copying, redacting, filtering, answering). :func:`loads` refuses both kinds as invalid
JSON, so the wire layers answer them with the device's usual error for a malformed body.
"""

from __future__ import annotations

import json

#: The devices' request body limit: larger bodies are refused (413) by their length, unread.
MAX_BODY = 16 * 1024 * 1024
#: Deeper bodies are refused as invalid. No FortiOS or JSON-RPC request nests more than a handful of
#: levels (a filter of filters); 64 leaves room for any client and stays far below Python's recursion limit.
MAX_DEPTH = 64


class BodyError(ValueError):
    """The body is not JSON the device accepts (syntax, encoding or nesting)."""


def loads(data: bytes | str):
    """The parsed JSON body, or :class:`BodyError` for bad syntax, bad UTF-8 or nesting past ``MAX_DEPTH``."""
    too_deep = BodyError(f"JSON nested too deeply (at most {MAX_DEPTH} levels)")
    try:
        value = json.loads(data)
    except RecursionError:  # thousands deep: the parser's own stack gave out
        raise too_deep from None
    except ValueError as exc:  # UnicodeDecodeError is a ValueError
        raise BodyError(f"not JSON: {exc}") from None
    if depth(value) > MAX_DEPTH:
        raise too_deep
    return value


def depth(value) -> int:
    """How deeply lists and objects nest in ``value`` (a scalar is 0), without recursing."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, level)
        if level <= MAX_DEPTH:  # past the limit the answer is known; stop walking
            stack.extend((child, level + 1) for child in children)
    return deepest
