"""One rule language for the numbers users give (flags, keyword options, table fields).

A rule is a short string: ``"> 0"``, ``">= 1"``, ``"(0, 1]"``, ``"[0, 1)"``, ``"number"`` (any finite
number), optionally prefixed by ``"integer"`` (``"integer >= 0"``). ``check_number`` raises the
given error type with one line, ``"<where>: <name> must be <rule>, got <value>"``, and returns the value,
so every command can check all its parameters before it writes anything.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from functools import cache
from typing import Any

import numpy as np

from nnunetv2.exceptions import NnUNetError

_COMPARISON = re.compile(r"^(>=|<=|>|<)\s*(\S+)$")
_INTERVAL = re.compile(r"^([\[(])\s*([^,\s]+)\s*,\s*([^\])\s]+)\s*([\])])$")


def _is_number(value: Any) -> bool:
    # bool is an int subclass, but True as a step size is a mistake, not 1
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return False
    return math.isfinite(float(value))


def _is_integer(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


@cache
def _parse(rule: str) -> tuple[bool, str, Any]:
    """Return (integer only, requirement text, accepts(x) on a number) for a rule string."""
    text = rule.strip()
    integer = text.startswith("integer")
    body = text[len("integer") :].strip() if integer else text
    if body in ("", "number"):
        return integer, "an integer" if integer else "a number", lambda x: True
    match = _COMPARISON.match(body)
    if match:
        op, bound = match.group(1), float(match.group(2))
        tests = {
            ">": lambda x: x > bound,
            ">=": lambda x: x >= bound,
            "<": lambda x: x < bound,
            "<=": lambda x: x <= bound,
        }
        what = f"an integer {body}" if integer else f"a number {body}"
        return integer, what, tests[op]
    match = _INTERVAL.match(body)
    if match:
        left, low, high, right = match.group(1), float(match.group(2)), float(match.group(3)), match.group(4)

        def accepts(x: float) -> bool:
            above = x >= low if left == "[" else x > low
            below = x <= high if right == "]" else x < high
            return above and below

        what = f"an integer in {body}" if integer else f"a number in {body}"
        return integer, what, accepts
    raise ValueError(f"not a parameter rule: {rule!r}")  # a programming error, not a user's


def requirement(rule: str) -> str:
    """Return what a rule demands in words, e.g. ``'a number in (0, 1]'``."""
    return _parse(rule)[1]


def is_valid(value: Any, rule: str) -> bool:
    """Return True when ``value`` satisfies ``rule`` (finite, integer if asked, in range)."""
    integer, _, accepts = _parse(rule)
    if not (_is_integer(value) if integer else _is_number(value)):
        return False
    return bool(accepts(float(value)))


def check_number(
    name: str,
    value: Any,
    rule: str,
    *,
    where: str | None = None,
    error: type[NnUNetError] = NnUNetError,
    optional: bool = False,
) -> Any:
    """Return ``value`` unchanged; raise ``error`` (one line naming ``name``) unless it satisfies ``rule``.

    ``optional``: None is accepted too (meaning "use the default").
    """
    if optional and value is None:
        return value
    if not is_valid(value, rule):
        prefix = f"{where}: " if where else ""
        raise error(f"{prefix}{name} must be {requirement(rule)}, got {value!r}")
    return value


def check_numbers(
    rules: Mapping[str, str],
    values: Mapping[str, Any],
    *,
    where: str | None = None,
    error: type[NnUNetError] = NnUNetError,
    optional: bool = False,
) -> None:
    """Check every ``values[name]`` against ``rules[name]`` (names without a rule are an error of the caller)."""
    for name, value in values.items():
        check_number(name, value, rules[name], where=where, error=error, optional=optional)
