"""JSON conversion of the values that cross to the manager: step results, outputs, inputs of
child runs, payloads, log fields.

One encoder serves every message: compact, ASCII-only (so a message's length in characters is
its length in bytes), no NaN or infinity, and dataclasses converted with
``dataclasses.asdict``. Tuples become lists, as ``json`` does anyway. When a value does not
encode, :func:`why_not_json` names the first offending value and where it sits.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any, Dict, List, Optional

__all__ = ["dumps", "why_not_json", "log_fields"]


def _convert(value: object) -> Any:
    """The encoder's fallback: dataclass instances become dicts; anything else is refused."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False, default=_convert)

dumps = _ENCODER.encode
"""``dumps(value) -> str``: the value as compact JSON; raises TypeError, ValueError or
RecursionError when it is not JSON."""


def why_not_json(value: object, root: str) -> str:
    """Says why ``value`` does not encode, naming the first offending value by its type and
    its place under ``root``: ``a set at result["ids"]``."""
    problem = _find_problem(value, root, [])
    return problem or f"{root} does not encode as JSON"


def _find_problem(value: object, path: str, parents: List[int]) -> Optional[str]:
    if value is None or isinstance(value, (str, bool, int)):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{value} at {path} (JSON has no NaN or infinity)"
    if id(value) in parents:
        return f"a circular reference at {path}"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    parents.append(id(value))
    try:
        if isinstance(value, dict):
            for key, item in value.items():
                if not (key is None or isinstance(key, (str, int, float, bool))):
                    return f"a key of type {type(key).__name__} at {path} (JSON keys are strings)"
                problem = _find_problem(item, f"{path}[{key!r}]", parents)
                if problem:
                    return problem
            return None
        if isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                problem = _find_problem(item, f"{path}[{i}]", parents)
                if problem:
                    return problem
            return None
    finally:
        parents.pop()
    return f"{_article(type(value).__name__)} at {path}"


def _article(noun: str) -> str:
    return ("an " if noun[:1].lower() in "aeiou" else "a ") + noun


def log_fields(fields: Dict[str, Any]) -> Dict[str, Any]:
    """``ctx.log``'s fields as JSON values: those that do not encode are shown with ``str()``."""
    out: Dict[str, Any] = {}
    for key, value in fields.items():
        try:
            dumps(value)
            out[key] = value
        except (TypeError, ValueError, RecursionError):
            out[key] = str(value)
    return out
