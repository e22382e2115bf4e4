"""JMESPath expressions of the `json` layout, compiled once with the profile.

JMESPath (jmespath.org) is a specified, well-kept query language for JSON:
a profile author can test an expression on a saved response in any JMESPath
playground before it goes into a profile. A bad expression is refused when
the profile is compiled, naming the profile key.
"""

from __future__ import annotations

from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError
from jmespath.parser import ParsedResult

from pricegroups.errors import ConfigError

Expression = ParsedResult


def compile_expression(expr: Any, key: str) -> Expression:
    """A compiled JMESPath; ConfigError naming `key` when it is missing or does not compile."""
    if expr is None:
        raise ConfigError(f"profile key {key!r}: expected a JMESPath expression (required)")
    if not isinstance(expr, str) or not expr.strip():
        raise ConfigError(f"profile key {key!r}: expected a non-empty JMESPath expression, got {expr!r}")
    try:
        return jmespath.compile(expr)
    except JMESPathError as exc:
        detail = " ".join(str(exc).split())
        raise ConfigError(f"profile key {key!r}: expected a JMESPath expression, got {expr!r}"
                          f" (invalid JMESPath: {detail})") from exc


def optional_expression(expr: Any, key: str) -> Expression | None:
    return None if expr is None else compile_expression(expr, key)


def search(expression: Expression, document: Any) -> Any:
    """The expression's value on a document; a runtime type error (e.g. comparing a string with a number)
    is None, as a path that leads nowhere is."""
    try:
        return expression.search(document)
    except JMESPathError:
        return None


def truthy(value: Any) -> bool:
    """A marker's value as a yes/no: null, false, "", [], {}, 0, "0", "false", "no" are no."""
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    if isinstance(value, (list, dict)):
        return bool(value)
    return str(value).strip().lower() not in ("", "0", "false", "no")
