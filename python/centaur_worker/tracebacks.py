"""Tracebacks as a workflow author wants to read them.

Frames of the worker and of the ``api`` package are left out, so a traceback goes from the
author's code to the line that failed. Source lines of workflow files come from the revision
that ran (a loader's ``source_line``), never from the file on disk, which may have changed
since.
"""

from __future__ import annotations

import itertools
import linecache
import os
import traceback
from types import FrameType, TracebackType
from typing import List, Optional, Set, Tuple

import api

__all__ = ["exception_message", "format_exception", "innermost_frame"]

_HIDDEN = (
    os.path.dirname(os.path.abspath(__file__)) + os.sep,
    os.path.dirname(os.path.abspath(api.__file__)) + os.sep,
    "<frozen importlib",
)
_CAUSE = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT = "\nDuring handling of the above exception, another exception occurred:\n\n"


def format_exception(exc: BaseException) -> str:
    """The exception and its chain (``__cause__``, ``__context__``) formatted as Python does,
    without the worker's own frames."""
    parts: List[str] = []
    _format_chain(exc, parts, set())
    return "".join(parts)


def exception_message(exc: BaseException) -> str:
    """str(exc), or the class name when that is empty (or when str() itself fails)."""
    try:
        text = str(exc)
    except Exception:
        text = ""
    return text or type(exc).__name__


def _format_chain(exc: BaseException, parts: List[str], seen: Set[int]) -> None:
    seen.add(id(exc))
    cause, context = exc.__cause__, exc.__context__
    if cause is not None and id(cause) not in seen:
        _format_chain(cause, parts, seen)
        parts.append(_CAUSE)
    elif context is not None and not exc.__suppress_context__ and id(context) not in seen:
        _format_chain(context, parts, seen)
        parts.append(_CONTEXT)
    frames = [
        traceback.FrameSummary(frame.f_code.co_filename, lineno, frame.f_code.co_name, line=_source_line(frame, lineno))
        for frame, lineno in traceback.walk_tb(exc.__traceback__)
        if not frame.f_code.co_filename.startswith(_HIDDEN)
    ]
    if frames:
        parts.append("Traceback (most recent call last):\n")
        parts.extend(traceback.StackSummary.from_list(frames).format())
    parts.extend(traceback.format_exception_only(type(exc), exc))


def _source_line(frame: FrameType, lineno: int) -> str:
    """The line's text: from the revision's loader for workflow files, else from linecache."""
    loader = frame.f_globals.get("__loader__")
    source_line = getattr(loader, "source_line", None)
    if source_line is not None:
        return str(source_line(frame.f_code.co_filename, lineno))
    return linecache.getline(frame.f_code.co_filename, lineno, frame.f_globals)


def innermost_frame(tb: Optional[TracebackType], files: Set[str]) -> Optional[Tuple[str, int, int]]:
    """File, line and column (1-based; 0 when Python does not know it) of the innermost frame
    of ``tb`` whose file is one of ``files``, or None."""
    found = None
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_filename in files:
            found = (code.co_filename, tb.tb_lineno, _column(tb))
        tb = tb.tb_next
    return found


def _column(tb: TracebackType) -> int:
    positions = getattr(tb.tb_frame.f_code, "co_positions", None)  # Python 3.11+
    if positions is None or tb.tb_lasti < 0:
        return 0
    position = next(itertools.islice(positions(), tb.tb_lasti // 2, None), None)
    return position[2] + 1 if position and position[2] is not None else 0
