"""Code identity: what of the user's code decides an alpha's numbers, as one digest.

A saved result is reused when its fingerprint equals the config's current one, so the
fingerprint must change exactly when the numbers could.  Hashing only the alpha class's
own source misses code the computation runs without it appearing there: a ``compute``
inherited from a base class, a helper function it calls, a module constant it reads.
Hashing whole files goes too far: adding a config to the spec file that also defines
the alpha would recompute every config already there.

So ``code_digest(obj)`` walks what ``obj`` reaches *in user code*:

- a class: its own source text, the values of its class attributes, every method's
  references, and each base class in its MRO that is user code;
- a function: its source text, its defaults, its closure cells, and every global name
  its code object (and the code objects nested in it: comprehensions, inner functions,
  lambdas) loads, looked up in the function's ``__globals__``; attribute access on a
  user module (``helpers.signal``, ``import pkg.mod`` inside the function) follows the
  attribute;
- recursively, through every function and class of user modules reached that way.

A *user module* has a Python source file that is neither under the standard library,
``site-packages`` / ``dist-packages``, nor inside alphadev itself (an editable install
in the user's own folder is user code).  Objects from other modules enter as
``module:QualName`` only (their code is the installed library's business); module
constants enter as a stable description of their value (numbers, strings, containers
of them, numpy arrays by dtype, shape and bytes, ...; any other object by the identity
of its type, never by a repr with a memory address).  Source text is used because it
is the same on every machine and Python version; the code object is the fallback when
no source can be found.

``identity_name(obj)`` is how fingerprints name a class or function: ``QualName@digest``
for user code, so the same file imported as ``alphadev_spec_x`` by ``--spec`` or as
``x`` by a script has one identity, and ``module:QualName`` for installed libraries.

Digests are cached per process (a sweep fingerprints thousands of configs with one
alpha class).  The source of a module is read once per import of that module: a module
imported again (``importlib.reload``, a spec file that ``load_spec`` executes again
after it changed, a fresh process) is read again, while a module still in memory keeps
describing the text it was first read with -- the code that actually runs -- even if
its file has been edited since (a sweep's worker still running yesterday's helper must
not label its results with today's text).
"""

from __future__ import annotations

import ast
import contextlib
import contextvars
import dataclasses
import datetime as dt
import decimal
import dis
import enum
import fractions
import functools
import hashlib
import os
import sys
import sysconfig
import tokenize
import types
from collections.abc import Iterator
from pathlib import PurePath
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["code_digest", "identity_name", "identity_names", "is_user_module", "naming_identity"]

_MAX_DEPTH = 40
_LONG_TEXT = 200
_DUNDER_GLOBALS = frozenset({
    "__name__", "__spec__", "__loader__", "__package__", "__builtins__", "__cached__",
    "__file__", "__doc__", "__path__",
})
_GLOBAL_OPS = frozenset({"LOAD_GLOBAL", "LOAD_NAME", "STORE_GLOBAL", "DELETE_GLOBAL"})
_ATTR_OPS = frozenset({"LOAD_ATTR", "LOAD_METHOD", "STORE_ATTR", "DELETE_ATTR",
                       "IMPORT_FROM", "LOAD_SUPER_ATTR"})
_STABLE_REPR = (dt.date, dt.time, dt.timedelta, dt.timezone, decimal.Decimal,
                fractions.Fraction, PurePath, range, slice, pd.Timestamp, pd.Timedelta,
                np.dtype)

_BUILTIN_CALLABLES = (types.BuiltinFunctionType, types.MethodDescriptorType,
                      types.WrapperDescriptorType, types.ClassMethodDescriptorType, np.ufunc)

_NAMING = contextvars.ContextVar("alphadev_identity_naming", default=False)


# ---------------------------------------------------------------------- user code
def _library_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {paths.get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    roots.add(os.path.dirname(os.path.abspath(__file__)))  # alphadev itself
    return tuple(sorted(os.path.realpath(r) + os.sep for r in roots if r))


_ROOTS = _library_roots()
_USER_PATHS: dict[str, bool] = {}


def _is_user_path(filename: str | None) -> bool:
    if not filename or not filename.endswith((".py", ".pyw")):
        return False  # no file, an extension module, or "<stdin>" / "<string>"
    known = _USER_PATHS.get(filename)
    if known is None:
        real = os.path.realpath(filename)
        parts = set(real.split(os.sep))
        known = (
            os.path.isfile(real)
            and not real.startswith(_ROOTS)
            and not parts & {"site-packages", "dist-packages"}
        )
        _USER_PATHS[filename] = known
    return known


def is_user_module(module: Any) -> bool:
    """True for a module with a source file outside the stdlib, installed packages and alphadev."""
    return isinstance(module, types.ModuleType) and _is_user_path(getattr(module, "__file__", None))


def _module_of(obj: Any) -> types.ModuleType | None:
    return sys.modules.get(getattr(obj, "__module__", None) or "")


def _file_of(obj: Any) -> str | None:
    if isinstance(obj, types.FunctionType):
        return obj.__code__.co_filename
    if isinstance(obj, type):  # a method's file is where the class was defined
        prefix = obj.__qualname__ + "."
        for value in vars(obj).values():
            func = _unwrap_member(value)
            if isinstance(func, types.FunctionType) and func.__qualname__.startswith(prefix):
                return func.__code__.co_filename
    return getattr(_module_of(obj), "__file__", None)


def _is_user_object(obj: Any) -> bool:
    return isinstance(obj, (type, types.FunctionType)) and _is_user_path(_file_of(obj))


# ---------------------------------------------------------------------- source text
@dataclasses.dataclass
class _Source:
    """The text of one module file as read for one import of that module."""

    token: Any  # module.__spec__ (a new object per import), or the module itself
    stat: tuple[int, int] | None
    lines: list[str]
    defs: dict[int, tuple[int, int, str]]  # first line -> (start, end, name) of a def
    lambdas: dict[int, tuple[int, int]]
    classes: dict[str, list[tuple[int, int]]]  # qualname -> spans


_SOURCES: dict[tuple[str, int], _Source] = {}  # (file, id(token)) -> text


def _stat(filename: str) -> tuple[int, int] | None:
    try:
        st = os.stat(filename)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def _token(module: types.ModuleType | None) -> Any:
    if module is None:
        return None
    return getattr(module, "__spec__", None) or module


def _source(filename: str, module: types.ModuleType | None) -> _Source | None:
    """The module's text, read once per import (or per change of a module-less file)."""
    token = _token(module)
    key = (filename, id(token) if token is not None else 0)
    known = _SOURCES.get(key)
    if known is not None and known.token is token:
        if token is not None or known.stat == _stat(filename):
            return known
    try:
        with tokenize.open(filename) as fh:
            text = fh.read()
        tree = ast.parse(text, filename)
    except (OSError, SyntaxError, ValueError, UnicodeDecodeError):
        _SOURCES.pop(key, None)
        return None
    source = _Source(token, _stat(filename), text.splitlines(), {}, {}, {})
    _index(tree, source, "")
    _SOURCES[key] = source
    return source


def _index(node: ast.AST, source: _Source, prefix: str) -> None:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            first = min([child.lineno] + [d.lineno for d in child.decorator_list])
            span = (first, child.end_lineno or child.lineno)
            qualname = prefix + child.name
            if isinstance(child, ast.ClassDef):
                source.classes.setdefault(qualname, []).append(span)
                _index(child, source, qualname + ".")
            else:
                source.defs.setdefault(first, (*span, child.name))
                _index(child, source, qualname + ".<locals>.")
        elif isinstance(child, ast.Lambda):
            source.lambdas.setdefault(child.lineno, (child.lineno, child.end_lineno or 0))
            _index(child, source, prefix)
        else:
            _index(child, source, prefix)


def _text(source: _Source, spans: list[tuple[int, int]]) -> str:
    return "\n".join(
        line.rstrip() for start, end in spans for line in source.lines[start - 1:end]
    )


def _code_text(code: types.CodeType) -> str:
    """Fallback when no source is found: the code object itself (Python-version bound)."""
    consts = [
        _code_text(c) if isinstance(c, types.CodeType) else f"{type(c).__name__}:{c!r}"
        for c in code.co_consts
    ]
    return "|".join([code.co_name, code.co_code.hex(), *consts, *code.co_names,
                     *code.co_varnames])


# ---------------------------------------------------------------------- the walk
def _unwrap_member(value: Any) -> Any:
    if isinstance(value, (staticmethod, classmethod)):
        return value.__func__
    if isinstance(value, functools.cached_property):
        return value.func
    return value


def _code_refs(code: types.CodeType) -> tuple[list[str], set[str], list[str]]:
    """(global names, attribute names, imported module names) of code and nested code."""
    globals_: list[str] = []
    attrs: set[str] = set()
    imports: list[str] = []
    stack = [code]
    while stack:
        current = stack.pop()
        for ins in dis.get_instructions(current):
            if ins.opname in _GLOBAL_OPS:
                globals_.append(ins.argval)
            elif ins.opname in _ATTR_OPS:
                attrs.add(ins.argval)
            elif ins.opname == "IMPORT_NAME":
                imports.append(ins.argval)
        stack.extend(c for c in current.co_consts if isinstance(c, types.CodeType))
    return sorted(set(globals_)), attrs, sorted(set(imports))


class _Walk:
    """One depth-first walk from a root; ``parts`` in visiting order make the digest."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.seen: set[Any] = set()
        self.active: set[int] = set()
        self.sources: dict[tuple[str, int], tuple[Any, _Source | None]] = {}

    def emit(self, *fields: str) -> None:
        self.parts.append("\x1f".join(fields))

    def source(self, filename: str, module: types.ModuleType | None) -> _Source | None:
        key = (filename, id(module))
        if key not in self.sources:
            self.sources[key] = (module, _source(filename, module))
        return self.sources[key][1]

    # -- code
    def function(self, fn: types.FunctionType, *, method_of: str | None = None) -> None:
        if ("fn", id(fn)) in self.seen:
            return
        self.seen.add(("fn", id(fn)))
        code = fn.__code__
        if method_of is None:  # a method's text is part of its class's text
            module = _module_of(fn)
            if getattr(module, "__file__", None) != code.co_filename:
                module = None
            source = self.source(code.co_filename, module)
            text = None
            if source is not None:
                if code.co_name == "<lambda>":
                    span = source.lambdas.get(code.co_firstlineno)
                    text = _text(source, [span]) if span else None
                else:
                    found = source.defs.get(code.co_firstlineno)
                    if found and found[2] == code.co_name:
                        text = _text(source, [found[:2]])
            self.emit("function", fn.__qualname__, text if text else _code_text(code))
        defaults = [fn.__defaults__ or (), fn.__kwdefaults__ or {}]
        if defaults != [(), {}]:
            self.emit("defaults", fn.__qualname__, self.describe(defaults))
        self.code(code, fn.__globals__, fn.__closure__)

    def code(self, code: types.CodeType, globals_: dict, closure: tuple | None) -> None:
        names, attrs, imports = _code_refs(code)
        for name in names:
            if name in _DUNDER_GLOBALS or name not in globals_:
                continue  # a builtin, or a name the function defines itself
            key = ("global", id(globals_), name)
            if key in self.seen:
                continue
            self.seen.add(key)
            value = globals_[name]
            self.emit("global", name, self.describe(value))
            self.module_attrs(value, attrs)
        for dotted in imports:
            parts = dotted.split(".")
            for k in range(1, len(parts) + 1):
                self.module_attrs(sys.modules.get(".".join(parts[:k])), attrs)
        for var, cell in zip(code.co_freevars, closure or ()):
            try:
                contents = cell.cell_contents
            except ValueError:
                continue  # an empty cell
            self.emit("closure", var, self.describe(contents))

    def module_attrs(self, module: Any, attrs: set[str]) -> None:
        """Attributes of a user module that the code reads (``helpers.signal``)."""
        if not is_user_module(module):
            return
        namespace = vars(module)
        for attr in sorted(attrs):
            if attr in namespace and attr not in _DUNDER_GLOBALS:
                key = ("global", id(namespace), attr)
                if key in self.seen:
                    continue
                self.seen.add(key)
                value = namespace[attr]
                self.emit("attribute", attr, self.describe(value))
                self.module_attrs(value, attrs)

    def klass(self, cls: type) -> None:
        if ("cls", id(cls)) in self.seen:
            return
        self.seen.add(("cls", id(cls)))
        firstline = getattr(cls, "__firstlineno__", None)
        filename = _file_of(cls)
        module = _module_of(cls)
        source = self.source(filename, module) if filename else None
        text = None
        if source is not None:
            spans = source.classes.get(cls.__qualname__, [])
            if firstline is not None:
                spans = [s for s in spans if s[0] <= firstline <= s[1]] or spans
            text = _text(source, spans) if spans else None
        self.emit("class", cls.__qualname__, text or "")
        prefix = cls.__qualname__ + "."
        for name in sorted(vars(cls)):
            value = vars(cls)[name]
            members = (
                [value.fget, value.fset, value.fdel] if isinstance(value, property)
                else [_unwrap_member(value)]
            )
            funcs = [m for m in members if isinstance(m, types.FunctionType)]
            if funcs:
                for func in funcs:
                    if func.__qualname__.startswith(prefix) and _file_of(func) == filename:
                        self.function(func, method_of=cls.__qualname__)
                        if not text:
                            self.emit("method", func.__qualname__, _code_text(func.__code__))
                    else:
                        self.emit("member", name, self.describe(func))
            elif not (name.startswith("__") and name.endswith("__")) and name != "_abc_impl":
                self.emit("member", name, self.describe(value))
        for base in cls.__mro__[1:]:
            self.emit("base", self.describe(base))

    # -- values
    def describe(self, value: Any, depth: int = 0) -> str:
        """A stable description; user functions and classes are walked as a side effect."""
        try:
            return self._describe(value, depth)
        except Exception:  # noqa: BLE001 - an exotic global must never fail a fingerprint
            return f"object {type(value).__qualname__}"

    def _describe(self, value: Any, depth: int) -> str:
        if isinstance(value, enum.Enum):
            return f"enum {self.describe(type(value), depth + 1)}.{value.name}"
        if value is None or isinstance(value, (bool, int, float, complex)):
            return f"{type(value).__name__}:{value!r}"
        if isinstance(value, (str, bytes)):
            if len(value) > _LONG_TEXT:
                data = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else value
                return f"{type(value).__name__}#{hashlib.sha256(data).hexdigest()}"
            return f"{type(value).__name__}:{value!r}"
        if isinstance(value, np.generic):
            return f"np.{value.dtype.str}:{value.item()!r}"
        if isinstance(value, _STABLE_REPR):
            return f"{type(value).__qualname__}:{value!r}"
        if isinstance(value, types.FunctionType):
            if _is_user_object(value):
                self.function(value)
                return f"function {value.__qualname__}"
            return f"external {_external_name(value)}"
        if isinstance(value, type):
            if _is_user_object(value):
                self.klass(value)
                return f"class {value.__qualname__}"
            return f"external {_external_name(value)}"
        if isinstance(value, types.ModuleType):
            return "user module" if is_user_module(value) else f"module {value.__name__}"
        if isinstance(value, types.MethodType):
            return f"method {self.describe(value.__func__, depth + 1)}"
        if isinstance(value, functools.partial):
            inner = [value.func, value.args, value.keywords]
            return f"partial {self.describe(inner, depth + 1)}"
        if depth > _MAX_DEPTH or id(value) in self.active:
            return f"<deep {type(value).__qualname__}>"
        if isinstance(value, np.ndarray):
            if value.dtype.hasobject:
                return f"ndarray object {value.shape}"
            data = np.ascontiguousarray(value).tobytes()
            return f"ndarray {value.dtype.str} {value.shape} {hashlib.sha256(data).hexdigest()}"
        if isinstance(value, (pd.Series, pd.DataFrame, pd.Index)):
            hashed = pd.util.hash_pandas_object(value, index=True).to_numpy().tobytes()
            shape = f"{type(value).__name__} {value.shape} {self.describe(_pandas_meta(value))}"
            return f"{shape} {hashlib.sha256(hashed).hexdigest()}"
        self.active.add(id(value))
        try:
            if isinstance(value, (list, tuple)):
                joined = ",".join(self.describe(v, depth + 1) for v in value)
                return f"{type(value).__name__}[{joined}]"
            if isinstance(value, dict):
                pairs = sorted(
                    f"{self.describe(k, depth + 1)}={self.describe(v, depth + 1)}"
                    for k, v in value.items()
                )
                return "dict{" + ",".join(pairs) + "}"
            if isinstance(value, (set, frozenset)):
                members = sorted(self.describe(v, depth + 1) for v in value)
                return f"{type(value).__name__}{{{','.join(members)}}}"
        finally:
            self.active.discard(id(value))
        wrapped = getattr(value, "__wrapped__", None) or getattr(value, "py_func", None)
        if isinstance(wrapped, types.FunctionType):  # a decorated or numba-jitted function
            body = self.describe(wrapped, depth + 1)
            return f"wrapper {self.describe(type(value), depth + 1)} of {body}"
        if isinstance(value, _BUILTIN_CALLABLES):  # math.log, np.log, str.lower
            return f"external {_external_name(value)}"
        return f"object {self.describe(type(value), depth + 1)}"


def _pandas_meta(value: Any) -> list:
    if isinstance(value, pd.DataFrame):
        return [list(map(str, value.columns)), list(map(str, value.dtypes))]
    return [str(value.name), str(value.dtype)]


def _external_name(obj: Any) -> str:
    module = getattr(obj, "__module__", None) or type(obj).__module__
    name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
    return f"{module}:{name}" if name else f"{module}:{type(obj).__qualname__}"


# ---------------------------------------------------------------------- public API
@dataclasses.dataclass
class _Entry:
    obj: Any  # held so that id(obj) is not reused while the entry lives
    digest: str
    sources: list[tuple[str, types.ModuleType | None, _Source | None]]


_DIGESTS: dict[int, _Entry] = {}


def _still_valid(entry: _Entry) -> bool:
    for filename, module, source in entry.sources:
        if _source(filename, module) is not source:
            return False
    return True


def code_digest(obj: Any) -> str:
    """Digest of ``obj``'s code and of the user code and constants it reaches.

    ``obj`` is a class or function (its own source is hashed even when it lives outside
    user modules, e.g. in a notebook or an installed package).  Equal code gives equal
    digests in every process and machine, whatever module name the file was imported as.
    """
    entry = _DIGESTS.get(id(obj))
    if entry is not None and entry.obj is obj and _still_valid(entry):
        return entry.digest
    walk = _Walk()
    if isinstance(obj, type):
        walk.klass(obj)
    elif isinstance(obj, types.FunctionType):
        walk.function(obj)
    else:
        walk.emit("value", walk.describe(obj))
    digest = hashlib.sha256("\x1e".join(walk.parts).encode("utf-8", "surrogatepass"))
    sources = [(key[0], module, src) for key, (module, src) in walk.sources.items()]
    result = digest.hexdigest()[:24]
    _DIGESTS[id(obj)] = _Entry(obj, result, sources)
    return result


def identity_name(obj: Any) -> str:
    """``QualName@digest`` for user code, ``module:QualName`` for everything else."""
    if _is_user_object(obj):
        return f"{obj.__qualname__}@{code_digest(obj)}"
    return f"{obj.__module__}:{obj.__qualname__}"


def naming_identity() -> bool:
    """Whether descriptions are being built for an identity (see ``identity_names``)."""
    return _NAMING.get()


@contextlib.contextmanager
def identity_names() -> Iterator[None]:
    """Within this block, ``to_dict()`` names classes and functions by ``identity_name``.

    Fingerprints and panel keys describe a config this way; ``config.json`` keeps the
    human ``module:QualName``.
    """
    token = _NAMING.set(True)
    try:
        yield
    finally:
        _NAMING.reset(token)
