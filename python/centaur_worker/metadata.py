"""What a loaded workflow file declares: the ``workflow`` object of PROTOCOL.md's ``loaded``.

:func:`read_workflow` reads a module's globals (``WORKFLOW_NAME``, ``handler``,
``DESCRIPTION``, ``EXAMPLE_INPUT``, ``Input``, ``WEBHOOKS``, ``SCHEDULES``, ``NAMESPACES``)
and refuses a malformed declaration with a :class:`DeclarationError` naming the global at fault,
which the loader turns into a load failure at that global's line. :class:`InputDecl` builds a
run's ``Input`` from its JSON input.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
import types
import typing
from typing import Any, Callable, Dict, List, Optional, Sequence

from api.webhooks import BodyTriggerKey, HeaderTriggerKey, HmacAuth, TokenAuth, WebhookSpec
from api.workflow_engine import Schedule, _seconds
from centaur_worker.jsonvalue import dumps, why_not_json

__all__ = ["DeclarationError", "InputDecl", "InvalidInput", "Workflow", "read_workflow"]

_WORKFLOW_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*\Z")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
_NONE_TYPE = type(None)
_UNIONS = (typing.Union, getattr(types, "UnionType", typing.Union))
_SCALARS = {str: "str", int: "int", float: "float", bool: "bool"}
_ZERO = {"str": "", "int": 0, "float": 0.0, "bool": False}


class DeclarationError(Exception):
    """A global of the file is malformed: ``reason`` is the load failure's reason, ``symbol``
    the global to point at ("" for none)."""

    def __init__(self, reason: str, message: str, symbol: str = "") -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.symbol = symbol


class InvalidInput(Exception):
    """A run's input does not build the file's ``Input``; the message names the field."""


@dataclasses.dataclass
class InputDecl:
    """The file's ``@dataclass class Input``: the class and its fields as PROTOCOL.md lists
    them (``{"name", "type", "required", "default"?}``)."""

    cls: type
    fields: List[Dict[str, Any]]

    def describe(self) -> str:
        """The fields as "channel (str), topic (str)"."""
        return ", ".join(f'{f["name"]} ({f["type"]})' for f in self.fields) or "(none)"

    def build(self, raw: Any) -> Any:
        """``Input(**raw)``, after checking that raw is an object of the declared fields
        (null counts as an empty object). Raises InvalidInput."""
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise InvalidInput(f"the input must be a JSON object with the fields {self.describe()}, got {_json_kind(raw)}")
        declared = {f["name"] for f in self.fields}
        for name in sorted(raw):
            if name not in declared:
                raise InvalidInput(f'unknown field "{name}": Input declares {self.describe()}')
        for f in self.fields:
            if f["required"] and f["name"] not in raw:
                raise InvalidInput(f'missing field "{f["name"]}" ({f["type"]}): Input declares {self.describe()}')
        try:
            return self.cls(**raw)
        except Exception as exc:
            raise InvalidInput(f"Input(...) raised {type(exc).__name__}: {exc}") from None


@dataclasses.dataclass
class Workflow:
    """A loaded file's declarations: ``info`` is the ``workflow`` object of ``loaded``."""

    info: Dict[str, Any]
    handler: Callable[..., Any]
    input: Optional[InputDecl]


def read_workflow(module_globals: Dict[str, Any]) -> Workflow:
    """Reads and checks a workflow module's declarations. Raises DeclarationError."""
    name = _workflow_name(module_globals)
    handler = _handler(module_globals.get("handler"))
    decl = _input_decl(module_globals) if "Input" in module_globals else None
    info = {
        "name": name,
        "description": _description(module_globals),
        "example_input": _example_input(module_globals, decl),
        "input": None if decl is None else decl.fields,
        "webhooks": _webhooks(module_globals.get("WEBHOOKS")),
        "schedules": _schedules(module_globals.get("SCHEDULES")),
        "namespaces": _namespaces(module_globals.get("NAMESPACES")),
    }
    return Workflow(info=info, handler=handler, input=decl)


def _workflow_name(module_globals: Dict[str, Any]) -> str:
    if "WORKFLOW_NAME" not in module_globals:
        raise DeclarationError(
            "MissingWorkflowName",
            'the file sets no WORKFLOW_NAME; add WORKFLOW_NAME = "my_workflow" (helper modules start with an underscore)',
        )
    name = module_globals["WORKFLOW_NAME"]
    if not isinstance(name, str) or not _WORKFLOW_NAME.match(name) or len(name) > 253:
        raise DeclarationError(
            "MissingWorkflowName",
            f"WORKFLOW_NAME must be a string of letters, digits, '_', '.' and '-', starting with a letter or digit, got {name!r}",
            "WORKFLOW_NAME",
        )
    return name


def _handler(handler: object) -> Callable[..., Any]:
    if handler is None:
        raise DeclarationError("MissingHandler", "the file defines no handler; define it as async def handler(inp, ctx)")
    try:
        inspect.signature(handler).bind(None, None)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise DeclarationError(
            "MissingHandler",
            "handler must take two parameters, the input and the context: async def handler(inp, ctx)",
            "handler",
        ) from None
    if not inspect.iscoroutinefunction(handler):
        raise DeclarationError(
            "SyncHandler",
            "handler is a plain function: write async def handler(inp, ctx), and await ctx's primitives "
            '(await ctx.step("name", fn))',
            "handler",
        )
    return handler  # type: ignore[return-value]


def _description(module_globals: Dict[str, Any]) -> str:
    if "DESCRIPTION" in module_globals:
        description = module_globals["DESCRIPTION"]
        if not isinstance(description, str):
            raise DeclarationError("LoadFailed", f"DESCRIPTION must be a string, got {type(description).__name__}", "DESCRIPTION")
        return description.strip()
    doc = module_globals.get("__doc__")
    return doc.strip() if isinstance(doc, str) else ""


def _example_input(module_globals: Dict[str, Any], decl: Optional[InputDecl]) -> Any:
    if "EXAMPLE_INPUT" in module_globals:
        return _json_copy(module_globals["EXAMPLE_INPUT"], "EXAMPLE_INPUT", "LoadFailed")
    if decl is None:
        return None
    return {f["name"]: f["default"] if "default" in f else _zero(f["type"]) for f in decl.fields}


def _zero(canonical: str) -> Any:
    if canonical.startswith("list["):
        return []
    if canonical.startswith("dict["):
        return {}
    return _ZERO.get(canonical)


def _input_decl(module_globals: Dict[str, Any]) -> InputDecl:
    cls = module_globals["Input"]
    if not isinstance(cls, type) or not dataclasses.is_dataclass(cls):
        raise DeclarationError("InvalidInputDeclaration", "Input must be a @dataclass class with typed fields", "Input")
    try:
        hints = typing.get_type_hints(cls, globalns=module_globals)
    except Exception as exc:
        message = f"Input's annotations do not resolve: {type(exc).__name__}: {exc}"
        raise DeclarationError("InvalidInputDeclaration", message, "Input") from None
    fields = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        try:
            entry: Dict[str, Any] = {"name": f.name, "type": canonical_type(hints[f.name]), "required": True}
        except TypeError as exc:
            raise DeclarationError("InvalidInputDeclaration", f'Input field "{f.name}": {exc}', "Input") from None
        what = f'the default of Input field "{f.name}"'
        if f.default is not dataclasses.MISSING:
            entry.update(required=False, default=_json_copy(f.default, what, "InvalidInputDeclaration", "Input"))
        elif f.default_factory is not dataclasses.MISSING:
            entry.update(required=False, default=_json_copy(f.default_factory(), what, "InvalidInputDeclaration", "Input"))
        fields.append(entry)
    return InputDecl(cls=cls, fields=fields)


def canonical_type(annotation: Any) -> str:
    """An Input field's annotation written canonically: ``str``, ``int``, ``float``, ``bool``,
    ``Any``, ``list[T]``, ``dict[str, T]`` or ``Optional[T]``. Raises TypeError otherwise."""
    if annotation is Any:
        return "Any"
    if annotation in _SCALARS:
        return _SCALARS[annotation]
    if annotation is list:
        return "list[Any]"
    if annotation is dict:
        return "dict[str, Any]"
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is list:
        return f"list[{canonical_type(args[0])}]" if args else "list[Any]"
    if origin is dict:
        if args and args[0] is not str:
            raise TypeError(f"{_show(annotation)}: dict keys must be str (JSON object keys are strings)")
        return f"dict[str, {canonical_type(args[1])}]" if args else "dict[str, Any]"
    if origin in _UNIONS:
        present = [a for a in args if a is not _NONE_TYPE]
        if len(present) == 1 and len(args) == 2:
            return f"Optional[{canonical_type(present[0])}]"
    raise TypeError(
        f"the type {_show(annotation)} is not supported: use str, int, float, bool, Any, list[...], "
        f"dict[str, ...] or Optional[...]"
    )


def _show(annotation: Any) -> str:
    return annotation.__name__ if isinstance(annotation, type) else str(annotation).replace("typing.", "")


def _webhooks(value: object) -> List[Dict[str, Any]]:
    specs = _declarations(value, WebhookSpec, "WEBHOOKS", "WebhookSpec(...)", "InvalidWebhook")
    out: List[Dict[str, Any]] = []
    for spec in specs:
        if any(w["slug"] == spec.slug for w in out):
            raise DeclarationError("InvalidWebhook", f'WEBHOOKS declares the slug "{spec.slug}" twice', "WEBHOOKS")
        out.append({
            "slug": spec.slug,
            "provider": spec.provider,
            "auth": _auth(spec.auth),
            "trigger_key": _trigger_header(spec.trigger_key),
            "allowed_methods": None if spec.allowed_methods is None else list(spec.allowed_methods),
            "allowed_content_types": None if spec.allowed_content_types is None else list(spec.allowed_content_types),
            "replay_protection": spec.replay_protection,
            "webhook_only": spec.webhook_only,
        })
        if isinstance(spec.trigger_key, BodyTriggerKey):  # only then, so older declarations keep their revision
            out[-1]["trigger_body_field"] = spec.trigger_key.field
    return out


def _trigger_header(key: object) -> object:
    """The header a trigger key names ("" for a BodyTriggerKey; a bare string as is)."""
    if isinstance(key, HeaderTriggerKey):
        return key.header
    if isinstance(key, BodyTriggerKey):
        return ""
    return key


_HMAC_FIELDS = ("algorithm", "encoding", "signed_template", "timestamp_header", "timestamp_key", "signature_key", "id_header",
                "timestamp_field")


def _auth(auth: object) -> Dict[str, Any]:
    """A webhook's auth as declared: the scheme is "" when the spec leaves it to provider."""
    if isinstance(auth, TokenAuth):
        return {"scheme": "token", "secret_ref": auth.secret_ref, "header": auth.header, "prefix": auth.prefix}
    if isinstance(auth, HmacAuth):
        out: Dict[str, Any] = {"scheme": auth.scheme, "secret_ref": auth.secret_ref, "header": auth.header, "prefix": auth.prefix}
        # Only the settings given, so that a declaration that gives none keeps its revision.
        out.update({name: getattr(auth, name) for name in _HMAC_FIELDS if getattr(auth, name)})
        if auth.timestamp_tolerance is not None:
            out["timestamp_tolerance"] = auth.timestamp_tolerance
        return out
    return {"scheme": "none" if auth == "none" else "", "secret_ref": "", "header": "", "prefix": ""}


def _schedules(value: object) -> List[Dict[str, Any]]:
    schedules = _declarations(value, Schedule, "SCHEDULES", "Schedule(...)", "InvalidSchedule")
    out: List[Dict[str, Any]] = []
    for i, s in enumerate(schedules):
        if s.name and any(o["name"] == s.name for o in out):
            raise DeclarationError("InvalidSchedule", f'SCHEDULES declares the name "{s.name}" twice', "SCHEDULES")
        out.append({
            "cron": s.cron,
            "time_zone": s.time_zone,
            "input": _json_copy(s.input, f"the input of SCHEDULES[{i}]", "InvalidSchedule", "SCHEDULES"),
            "name": s.name,
            "concurrency_policy": s.concurrency_policy,
            "catch_up": s.catch_up,
            "max_catch_up": s.max_catch_up,
            "starting_deadline": None if s.starting_deadline is None else _seconds(s.starting_deadline, "starting_deadline"),
            "jitter": None if s.jitter is None else _seconds(s.jitter, "jitter"),
        })
    return out


def _declarations(value: object, kind: type, symbol: str, spelled: str, reason: str) -> Sequence[Any]:
    """The items of a list global such as WEBHOOKS, each checked to be of ``kind``."""
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        raise DeclarationError(reason, f"{symbol} must be a list of {spelled}, got {type(value).__name__}", symbol)
    for i, item in enumerate(value):
        if not isinstance(item, kind):
            raise DeclarationError(reason, f"{symbol}[{i}] is a {type(item).__name__}, not a {spelled}", symbol)
    return value


def _namespaces(value: object) -> Optional[List[str]]:
    if value is None:
        return None
    names_ok = isinstance(value, (list, tuple)) and all(isinstance(n, str) and _DNS_LABEL.match(n) and len(n) <= 63 for n in value)
    if not names_ok:
        message = f'NAMESPACES must be a list of namespace names such as ["team-a"], got {value!r}'
        raise DeclarationError("LoadFailed", message, "NAMESPACES")
    return list(value)


def _json_copy(value: Any, what: str, reason: str, symbol: str = "") -> Any:
    """A JSON copy of a declared value (dataclasses converted). Raises DeclarationError."""
    try:
        return json.loads(dumps(value))
    except (TypeError, ValueError, RecursionError):
        raise DeclarationError(reason, f"{what} must be JSON: {why_not_json(value, what)}", symbol or what) from None


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return {str: "a string", list: "a list"}.get(type(value), type(value).__name__)
