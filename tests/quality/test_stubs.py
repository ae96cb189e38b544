"""The ``.pyi`` stubs of the compiled modules cannot drift from the code.

Each compiled module ``kyoukai_h2fast._<name>_c`` (or the one ``_switch.HOT_PATHS`` names, e.g.
``kyoukai_h2fast.websocket._frames_c``) has a stub next to it (``kyoukai_h2fast/_<name>_c.pyi``)
(what type checkers read: the selector modules import their names from it) and a pure twin
``kyoukai_h2fast._<name>_py``. For every name the stub declares, this test compares, by
``inspect.signature`` against the stub parsed with ``ast``:

* the public names: the stub's ``__all__`` is the compiled module's; the twin has all of them
  (but the compiled-only names listed in :data:`COMPILED_ONLY`);
* functions and methods: the parameter names, kinds (positional, keyword-only, ``*args``), which
  have defaults and the default values (an ``@overload`` may leave a default out, as a narrower
  case, but not add one);
* classes: the members the compiled class has (methods, properties, attributes) are exactly the
  stub's; the twin has each of them (it may have more: the ``hpack`` classes it extends);
  constructors too (the compiled one from the signature Cython embeds in the class docstring).

The pure twin is always compared; the compiled module when it is built (the CI build is), and
then also by mypy's ``stubtest`` (runtime introspection of the compiled module against the
stub: argument names, properties, ``@final``/disjoint bases), with
``tests/quality/stubtest_allowlist.txt`` for Cython's own additions.
"""
from __future__ import annotations

import ast
import importlib.util
import inspect
import os
import subprocess
import sys
from typing import Any

import pytest

import kyoukai_h2fast
from kyoukai_h2fast import _switch
from kyoukai_h2fast.config import ServerConfig

PACKAGE_DIR = os.path.dirname(kyoukai_h2fast.__file__)
MODULES = ["frames", "hpack", "headers", "environ", "engine", "websocket", "http1"]

#: Names of the compiled modules that have no pure twin, by module (``Class.member`` for
#: members): the engine's state tables and its introspection for tests and debugging.
COMPILED_ONLY = {
    "engine": {"stream_transitions", "connection_transitions", "STREAM_STATES",
               "STREAM_INPUTS", "OUTCOMES", "CONNECTION_PHASES", "CONNECTION_INPUTS",
               "MAX_CLOSED_STREAMS", "Engine.open_streams", "Engine.closed_streams_remembered",
               "Engine.stream_state", "Engine.phase"},
}

#: How to make an instance of each class, to see the attributes set in ``__init__``.
FACTORIES: dict[str, Any] = {
    "Engine": lambda cls: cls(ServerConfig()),
    "Framing": lambda cls: cls(200, None, False, False, True),
    "Exchange": lambda cls: cls(None, False, True, None),
}

#: How the stub may declare a constructor (``__new__`` for a cdef class made by ``__cinit__``);
#: compared with the twin's ``__init__`` and the signature Cython embeds.
CONSTRUCTORS = {"__init__", "__new__"}

#: Special methods that are part of a class's API when the stub declares them.
DUNDERS = {"__iter__", "__next__", "__len__", "__call__", "__enter__", "__exit__"}

EMPTY = inspect.Parameter.empty


# -- the stub, parsed --------------------------------------------------------------------------
class StubFunction:
    """One ``def`` of the stub (each ``@overload`` is one)."""

    def __init__(self, node: ast.FunctionDef, method: bool) -> None:
        args = node.args
        positional = args.posonlyargs + args.args
        defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults))
        defaults += list(args.defaults)
        kind = inspect.Parameter
        self.params: list[tuple[str, Any, Any]] = []
        for i, (arg, default) in enumerate(zip(positional, defaults, strict=True)):
            k = kind.POSITIONAL_ONLY if i < len(args.posonlyargs) else kind.POSITIONAL_OR_KEYWORD
            self.params.append((arg.arg, k, _default(default)))
        if args.vararg:
            self.params.append((args.vararg.arg, kind.VAR_POSITIONAL, EMPTY))
        for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
            self.params.append((arg.arg, kind.KEYWORD_ONLY, _default(default)))
        if args.kwarg:
            self.params.append((args.kwarg.arg, kind.VAR_KEYWORD, EMPTY))
        if method and self.params and self.params[0][0] in ("self", "cls"):
            self.params = self.params[1:]
        self.overload = any(_name(d) == "overload" for d in node.decorator_list)
        self.property = any(_name(d) == "property" for d in node.decorator_list)
        self.line = node.lineno


class _Unknown:
    """A default the stub writes as ``...``: any runtime default matches it."""

    def __repr__(self) -> str:
        return "..."


UNKNOWN = _Unknown()


def _default(node: ast.expr | None) -> Any:
    if node is None:
        return EMPTY
    if isinstance(node, ast.Constant) and node.value is Ellipsis:
        return UNKNOWN
    return ast.literal_eval(node)


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


class Stub:
    """The top-level names of one ``.pyi``: functions (with overloads), classes (their
    members), variables and re-exported imports."""

    def __init__(self, path: str) -> None:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        self.all: list[str] = []
        self.functions: dict[str, list[StubFunction]] = {}
        self.classes: dict[str, dict[str, list[StubFunction] | str]] = {}
        self.variables: set[str] = set()
        self.imports: set[str] = set()
        for node in tree.body:
            if isinstance(node, ast.Assign) and _targets(node) == ["__all__"]:
                self.all = ast.literal_eval(node.value)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                self.variables.add(node.target.id)
            elif isinstance(node, ast.Assign):
                pass                                  # private aliases (``_Data = ...``)
            elif isinstance(node, ast.FunctionDef):
                self.functions.setdefault(node.name, []).append(StubFunction(node, False))
            elif isinstance(node, ast.ClassDef):
                self.classes[node.name] = _members(node)
            elif isinstance(node, ast.ImportFrom):
                # only ``import X as X`` re-exports a name (PEP 484)
                self.imports.update(a.asname for a in node.names if a.asname == a.name)

    def names(self) -> set[str]:
        return (set(self.functions) | set(self.classes) | self.variables | self.imports)


def _targets(node: ast.Assign) -> list[str]:
    return [t.id for t in node.targets if isinstance(t, ast.Name)]


def _members(node: ast.ClassDef) -> dict[str, list[StubFunction] | str]:
    members: dict[str, list[StubFunction] | str] = {}
    for item in node.body:
        if isinstance(item, ast.FunctionDef):
            fn = StubFunction(item, True)
            if fn.property:
                members[item.name] = "property"
            elif not any(_name(d) == "setter" for d in item.decorator_list):
                entry = members.setdefault(item.name, [])
                assert isinstance(entry, list)
                entry.append(fn)
        elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
            members[item.target.id] = "attribute"
    return members


# -- the runtime side --------------------------------------------------------------------------
def _runtime_params(obj: Any, method: bool) -> list[tuple[str, Any, Any]] | None:
    """``(name, kind, default)`` of a callable, or None when it has no signature to read."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    params = [(p.name, p.kind, p.default) for p in sig.parameters.values()]
    if method and params and params[0][0] == "self":
        params = params[1:]
    if [k for _, k, _ in params] == [inspect.Parameter.VAR_POSITIONAL,
                                      inspect.Parameter.VAR_KEYWORD]:
        return None                                  # a slot wrapper: ``(*args, **kwargs)``
    return params


def _embedded_constructor(cls: type) -> list[tuple[str, Any, Any]] | None:
    """The constructor signature Cython embeds as the first line of a cdef class's docstring
    (``Decoder(max_header_list_size=0x10000)``), when it is there and plain Python."""
    first = (cls.__doc__ or "").split("\n", 1)[0]
    if not first.startswith(cls.__name__ + "("):
        return None
    try:
        tree = ast.parse(f"def f{first[len(cls.__name__):]}: pass")
    except SyntaxError:
        return None                                  # C-typed parameters
    node = tree.body[0]
    assert isinstance(node, ast.FunctionDef)
    return StubFunction(node, False).params


def _constructor(cls: type, compiled: bool) -> list[tuple[str, Any, Any]] | None:
    if compiled:
        return _embedded_constructor(cls)
    return _runtime_params(cls.__init__, True)


def _same(stub: list[tuple[str, Any, Any]], runtime: list[tuple[str, Any, Any]],
          overload: bool) -> str | None:
    """None when the stub's parameters describe the runtime ones, else what differs."""
    kind = inspect.Parameter
    names = [(n, k) for n, k, _ in stub]
    runtime_names = [(n, k) for n, k, _ in runtime]
    # A compiled def's positional parameters may be given by keyword too.
    relaxed = [(n, kind.POSITIONAL_OR_KEYWORD if k == kind.POSITIONAL_ONLY else k)
               for n, k in names]
    if names != runtime_names and relaxed != runtime_names:
        return f"parameters ({_fmt(stub)}) in the stub, ({_fmt(runtime)}) in the code"
    for (name, _, default), (_, _, actual) in zip(stub, runtime, strict=True):
        if default is EMPTY:
            if actual is not EMPTY and not overload:
                return f"{name}: the stub has no default, the code has {actual!r}"
        elif actual is EMPTY:
            return f"{name}: the stub has a default ({default!r}), the code has none"
        elif default is not UNKNOWN and (default != actual or type(default) is not type(actual)):
            return f"{name}: default {default!r} in the stub, {actual!r} in the code"
    return None


def _fmt(params: list[tuple[str, Any, Any]]) -> str:
    kind = inspect.Parameter
    prefix = {kind.VAR_POSITIONAL: "*", kind.VAR_KEYWORD: "**"}
    return ", ".join(prefix.get(k, "") + n + ("" if d is EMPTY else f"={d!r}")
                     for n, k, d in params)


def _check_function(where: str, stub: list[StubFunction], obj: Any, method: bool) -> list[str]:
    runtime = _runtime_params(obj, method)
    if runtime is None:
        return []
    problems = []
    for fn in stub:
        difference = _same(fn.params, runtime, fn.overload)
        if difference:
            problems.append(f"{where} (stub line {fn.line}): {difference}")
    return problems


# -- the tests ---------------------------------------------------------------------------------
def _compiled_module(name: str) -> str:
    """The compiled module's dotted name (from ``_switch.HOT_PATHS``)."""
    return _switch.HOT_PATHS[name][0]


def _stub(name: str) -> Stub:
    module = _compiled_module(name)
    path = os.path.join(os.path.dirname(PACKAGE_DIR), *module.split(".")) + ".pyi"
    assert os.path.exists(path), f"no stub for {module} at {path}"
    return Stub(path)


def _implementations(name: str) -> list[tuple[str, Any]]:
    found = [("pure", _switch.pure(name))]
    compiled = _switch.compiled(name)
    if compiled is not None:
        found.append(("compiled", compiled))
    return found


@pytest.mark.parametrize("name", MODULES)
def test_the_stub_declares_every_public_name_and_nothing_else(name):
    stub = _stub(name)
    assert stub.all, f"_{name}_c.pyi has no __all__"
    missing = set(stub.all) - stub.names()
    assert not missing, f"_{name}_c.pyi lists names in __all__ it does not declare: {missing}"
    extra = {n for n in stub.names() if not n.startswith("_")} - set(stub.all)
    assert not extra, f"_{name}_c.pyi declares public names not in __all__: {extra}"
    compiled = _switch.compiled(name)
    if compiled is not None:
        assert list(stub.all) == list(compiled.__all__)
    twin = _switch.pure(name)
    only = {n for n in COMPILED_ONLY.get(name, ()) if "." not in n}
    assert set(stub.all) - only <= set(twin.__all__), (
        f"the pure twin lacks {set(stub.all) - only - set(twin.__all__)}")
    for label, module in _implementations(name):
        for n in stub.all:
            if label == "pure" and n in only:
                continue
            obj = getattr(module, n)
            if n in stub.classes:
                assert inspect.isclass(obj), f"{label} {n} is not a class"
            elif n in stub.functions:
                assert callable(obj) and not inspect.isclass(obj), f"{label} {n}: not a function"
            elif n in stub.variables:
                assert not callable(obj), f"{label} {n}: the stub says a variable"


@pytest.mark.parametrize("name", MODULES)
def test_function_signatures_match_the_stub(name):
    stub = _stub(name)
    only = COMPILED_ONLY.get(name, set())
    problems = []
    for label, module in _implementations(name):
        for fname, overloads in stub.functions.items():
            if label == "pure" and fname in only:
                continue
            problems += _check_function(f"{label} {module.__name__}.{fname}", overloads,
                                        getattr(module, fname), False)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", MODULES)
def test_classes_match_the_stub(name):
    stub = _stub(name)
    only = COMPILED_ONLY.get(name, set())
    problems = []
    for label, module in _implementations(name):
        for cname, members in stub.classes.items():
            cls = getattr(module, cname)
            where = f"{label} {module.__name__}.{cname}"
            instance = FACTORIES.get(cname, lambda c: c())(cls)
            if label == "compiled":
                public = {m for m in dir(cls) if not m.startswith("_")}
                public |= {m for m in DUNDERS if m in members}
                declared = {m for m in members if m not in CONSTRUCTORS}
                if public != declared:
                    problems.append(f"{where}: members {sorted(public)} != the stub's "
                                    f"{sorted(declared)}")
            for member, entry in members.items():
                if label == "pure" and f"{cname}.{member}" in only:
                    continue
                if member in CONSTRUCTORS:
                    assert isinstance(entry, list)
                    runtime = _constructor(cls, label == "compiled")
                    for fn in entry:
                        diff = None if runtime is None else _same(fn.params, runtime, fn.overload)
                        if diff:
                            problems.append(f"{where}.{member}: {diff}")
                    continue
                if not hasattr(instance, member):
                    problems.append(f"{where} has no {member!r}")
                    continue
                if isinstance(entry, list):
                    problems += _check_function(f"{where}.{member}", entry,
                                                getattr(cls, member), True)
                elif callable(getattr(instance, member)):
                    problems.append(f"{where}.{member}: a method, the stub says {entry}")
    assert not problems, "\n".join(problems)


def test_the_checker_catches_a_drifted_stub(tmp_path):
    """The comparison itself: a renamed parameter, a changed default and a missing default
    are each reported."""
    def problems(source: str, runtime: Any) -> str | None:
        (tmp_path / "x.pyi").write_text(source)
        fn = Stub(str(tmp_path / "x.pyi")).functions["f"][0]
        params = _runtime_params(runtime, False)
        assert params is not None
        return _same(fn.params, params, fn.overload)

    def f(data, max_frame_size=16384):
        return data, max_frame_size

    assert problems("def f(data: bytes, max_frame_size: int = 16384) -> None: ...", f) is None
    assert problems("def f(data: bytes, max_frame_size: int = ...) -> None: ...", f) is None
    assert "parameters" in problems("def f(buf: bytes, max_frame_size: int = 16384) -> None: ...",
                                    f)
    assert "default" in problems("def f(data: bytes, max_frame_size: int = 4096) -> None: ...", f)
    assert "no default" in problems("def f(data: bytes, max_frame_size: int) -> None: ...", f)


def test_stubtest_passes_on_the_compiled_build():
    """``python -m mypy.stubtest`` over the compiled modules (needs mypy: the test extra)."""
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed (pip install -e '.[test]')")
    modules = [_compiled_module(name) for name in MODULES]
    missing = [m for m in MODULES if _switch.compiled(m) is None]
    if missing:
        pytest.skip(f"not compiled: {missing}")
    allowlist = os.path.join(os.path.dirname(__file__), "stubtest_allowlist.txt")
    done = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "--allowlist", allowlist, *modules],
        cwd=os.path.dirname(PACKAGE_DIR), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
