"""Loading revisions: the digest, import isolation, and load failures (PROTOCOL.md, "Revisions
and the digest" and "Loading").

Each revision's files become modules of a synthetic package of its own,
``_centaur_rev_<first 16 digits of the digest>``: the entry ``nightly_report.py`` is
``_centaur_rev_3f9a....nightly_report``, the helper ``_util.py`` is ``_centaur_rev_3f9a...._util``
and ``pkg/sub.py`` is ``_centaur_rev_3f9a....pkg.sub``. A finder on ``sys.meta_path`` serves
those names from the bundle's text (nothing is read from disk, no bytecode is written), and the
revision's modules get a ``__builtins__`` of their own whose ``__import__`` maps the bundle's
top-level helper names (``_util``, ``pkg``) to the synthetic ones. So two revisions' ``_util``
never collide, ``api`` and every other import are ordinary imports, and a bundle directory
named ``api/`` never shadows the worker's ``api`` package. Code is compiled with the file's
path on disk (``dir + "/" + path``) as its file name, so tracebacks name the author's file.
"""

from __future__ import annotations

import builtins
import hashlib
import importlib.util
import linecache
import sys
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from api.webhooks import InvalidWebhook
from api.workflow_engine import InvalidSchedule
from centaur_worker.metadata import DeclarationError, InputDecl, read_workflow
from centaur_worker.jsonvalue import dumps
from centaur_worker.tracebacks import format_exception, innermost_frame

__all__ = ["LoadError", "Revision", "bundle_digest", "load_revision"]

PACKAGE_PREFIX = "_centaur_rev_"
_DIGEST_HEADER = b"centaur-python-revision/1\0"


def bundle_digest(origin: str, entry: str, files: Dict[str, str]) -> str:
    """The revision digest of a bundle: lower-case hex SHA-256 over its origin, entry and files
    in code-point order (PROTOCOL.md, "Revisions and the digest")."""
    h = hashlib.sha256(_DIGEST_HEADER + origin.encode() + b"\0" + entry.encode() + b"\0")
    for path in sorted(files):
        data = files[path].encode()
        h.update(path.encode() + b"\0" + str(len(data)).encode() + b"\0" + data)
    return h.hexdigest()


class LoadError(Exception):
    """A revision that does not load: the ``error`` object of ``load_failed``."""

    def __init__(self, reason: str, message: str, file: str = "", line: int = 0, column: int = 0, traceback: str = "") -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        self.traceback = traceback

    def to_json(self) -> Dict[str, Any]:
        """The ``error`` object of ``load_failed``."""
        return {"reason": self.reason, "file": self.file, "line": self.line, "column": self.column,
                "message": self.message, "traceback": self.traceback}


class Revision:
    """A loaded revision: its handler, its Input declaration and what ``loaded`` says of it."""

    __slots__ = ("digest", "handler", "input", "workflow_json", "_modules")

    def __init__(self, digest: str, handler: Callable[..., Any], input: Optional[InputDecl],
                 workflow_json: str, modules: _BundleModules) -> None:
        self.digest = digest
        self.handler = handler
        self.input = input
        self.workflow_json = workflow_json
        self._modules = modules

    def unload(self) -> None:
        """Forgets the revision's modules (sys.modules, the finder, linecache)."""
        self._modules.unload()


def load_revision(digest: str, revision: Optional[str], directory: str, bundle: Dict[str, Any]) -> Revision:
    """Verifies a bundle against its digest and revision name, imports its entry as a module of
    its own and reads its declarations. Raises LoadError."""
    origin, entry, files = bundle["origin"], bundle["entry"], bundle["files"]
    actual = bundle_digest(origin, entry, files)
    if actual != digest:
        raise LoadError("DigestMismatch", f"the bundle's digest is {actual}, not {digest}")
    check_revision_name(revision, digest)
    modules = _BundleModules(PACKAGE_PREFIX + digest[:16], directory.rstrip("/"), entry, files)
    try:
        module = modules.import_entry()
        workflow = read_workflow(vars(module))
    except DeclarationError as err:
        modules.unload()
        raise LoadError(err.reason, err.message, *modules.locate(err.symbol)) from None
    except BaseException as exc:
        modules.unload()
        raise modules.load_error(exc) from None
    return Revision(digest, workflow.handler, workflow.input, dumps(workflow.info), modules)


def check_revision_name(revision: Optional[str], digest: str) -> None:
    """Refuses a revision name that does not end with "-" and the digest's first 12 digits."""
    if revision is not None and not revision.endswith("-" + digest[:12]):
        raise LoadError("DigestMismatch", f'the revision name "{revision}" does not end with "-{digest[:12]}", '
                                          f"the start of the digest {digest}")


class _BundleModules:
    """One revision's files as modules under its synthetic package: the import loader of those
    modules, their per-revision builtins, and the way back from an exception to a file."""

    def __init__(self, package: str, directory: str, entry: str, files: Dict[str, str]) -> None:
        self.package = package
        self.directory = directory
        self.files = files
        self._lines: Dict[str, List[str]] = {}
        # Module name -> bundle path (None for a package without code), and package or not.
        self._table: Dict[str, Tuple[Optional[str], bool]] = {package: (None, True)}
        helpers: Set[str] = set()
        for path in files:
            if path == entry:
                continue
            self._check_path(path)
            top = path.split("/")[0]
            if top == "api":
                continue  # the worker's api package always wins
            helpers.add(top[:-3] if top.endswith(".py") else top)
            self._add_module(path)
        self._check_path(entry)
        if entry not in files:
            raise LoadError("LoadFailed", f'the bundle does not hold its entry "{entry}"')
        stem = entry[:-3].replace("/", ".")
        self.entry_name = f"{package}.{stem}" if f"{package}.{stem}" not in self._table else f"{package}.__entry__"
        self._table[self.entry_name] = (entry, False)
        self.builtins = dict(builtins.__dict__, __import__=_bundle_import(package, helpers))
        for path, text in files.items():
            shown = self.shown(path)
            self._lines[shown] = text.splitlines(True)
            # For warnings and debuggers; our tracebacks read self._lines.
            linecache.cache[shown] = (len(text), None, self._lines[shown], shown)
        _FINDER.bundles[package] = self

    @staticmethod
    def _check_path(path: str) -> None:
        parts = path.split("/")
        if not path.endswith(".py") or "" in parts or ".." in parts or "." in parts:
            raise LoadError("LoadFailed", f'the bundle holds "{path}", which is not a relative path of a .py file')

    def _add_module(self, path: str) -> None:
        parts = path[:-3].split("/")
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        for i in range(1, len(parts)):  # directories without __init__.py: namespace packages
            self._table.setdefault(f"{self.package}.{'.'.join(parts[:i])}", (None, True))
        self._table[f"{self.package}.{'.'.join(parts)}"] = (path, is_package)

    def shown(self, path: str) -> str:
        """The file name code of ``path`` is compiled with: its path on disk."""
        return f"{self.directory}/{path}"

    # The import protocol (importlib.abc.Loader), driven by _FINDER.

    def find_spec(self, name: str) -> Optional[ModuleSpec]:
        found = self._table.get(name)
        if found is None:
            return None
        path, is_package = found
        spec = ModuleSpec(name, self, origin=None if path is None else self.shown(path), is_package=is_package)
        spec.has_location = path is not None
        return spec

    def create_module(self, spec: ModuleSpec) -> Optional[ModuleType]:
        return None

    def exec_module(self, module: ModuleType) -> None:
        path = self._table[module.__name__][0]
        if path is None:
            return
        code = compile(self.files[path], self.shown(path), "exec", dont_inherit=True)
        module.__dict__["__builtins__"] = self.builtins
        exec(code, module.__dict__)

    def get_source(self, name: str) -> Optional[str]:
        path = self._table.get(name, (None, False))[0]
        return None if path is None else self.files[path]

    def source_line(self, shown: str, lineno: int) -> str:
        """Line ``lineno`` (1-based) of the file shown as ``shown``, as this revision has it."""
        lines = self._lines.get(shown, [])
        return lines[lineno - 1] if 0 < lineno <= len(lines) else ""

    # Loading and unloading.

    def import_entry(self) -> ModuleType:
        """Runs the entry's top level once, as a module registered under its synthetic name
        (dataclasses and typing.get_type_hints look their module up in sys.modules)."""
        importlib.import_module(self.package)
        spec = self.find_spec(self.entry_name)
        assert spec is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[self.entry_name] = module
        self.exec_module(module)
        return module

    def unload(self) -> None:
        """Forgets the modules: the finder's entry, sys.modules, linecache."""
        _FINDER.bundles.pop(self.package, None)
        for name in [n for n in sys.modules if n == self.package or n.startswith(self.package + ".")]:
            del sys.modules[name]
        for shown, lines in self._lines.items():
            if linecache.cache.get(shown, (None, None, None))[2] is lines:
                del linecache.cache[shown]

    # Load failures.

    def locate(self, symbol: str) -> Tuple[str, int, int]:
        """File, line and column of the entry's top-level statement that binds ``symbol``
        (0, 0 when there is none)."""
        entry_path = self._table[self.entry_name][0]
        assert entry_path is not None
        shown = self.shown(entry_path)
        if symbol:
            for number, line in enumerate(self._lines[shown], 1):
                stripped = line.split("#")[0]
                heads = (f"{symbol} =", f"{symbol}=", f"{symbol}:", f"def {symbol}(", f"async def {symbol}(", f"class {symbol}")
                for head in heads:
                    if stripped.startswith(head):
                        return shown, number, 1
        return shown, 0, 0

    def load_error(self, exc: BaseException) -> LoadError:
        """The load failure of an exception the top level raised."""
        trace = format_exception(exc)
        if isinstance(exc, SyntaxError):
            return LoadError("SyntaxError", str(exc.msg), exc.filename or "", exc.lineno or 0, exc.offset or 0, trace)
        shown_files = {self.shown(p) for p in self.files}
        file, line, column = innermost_frame(exc.__traceback__, shown_files) or (self.locate("")[0], 0, 0)
        if isinstance(exc, (InvalidWebhook, InvalidSchedule)):
            return LoadError(type(exc).__name__, str(exc), file, line, column, trace)
        message = f"{type(exc).__name__}: {exc}".replace(self.package + ".", "")
        if isinstance(exc, ImportError):
            return LoadError("ImportError", message, file, line, column, trace.replace(self.package + ".", ""))
        return LoadError("LoadFailed", message, file, line, column, trace)


def _bundle_import(package: str, helpers: Set[str]) -> Callable[..., ModuleType]:
    """The ``__import__`` of a revision's modules: top-level helper names of the bundle resolve
    to the revision's own modules; everything else (``api`` included) is an ordinary import."""
    real_import = builtins.__import__

    def bundle_import(name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0) -> ModuleType:
        top = name.partition(".")[0]
        if level == 0 and top in helpers:
            module = real_import(f"{package}.{name}", globals, locals, fromlist, 0)
            return module if fromlist else sys.modules[f"{package}.{top}"]
        return real_import(name, globals, locals, fromlist, level)

    return bundle_import


class _RevisionFinder:
    """The sys.meta_path finder of every loaded revision's modules."""

    def __init__(self) -> None:
        self.bundles: Dict[str, _BundleModules] = {}

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Optional[ModuleSpec]:
        if not name.startswith(PACKAGE_PREFIX):
            return None
        bundle = self.bundles.get(name.partition(".")[0])
        return None if bundle is None else bundle.find_spec(name)

    def invalidate_caches(self) -> None:
        pass


_FINDER = _RevisionFinder()
sys.meta_path.insert(0, _FINDER)  # type: ignore[arg-type]
