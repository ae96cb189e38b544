"""The app's own modules (kyoukai_h2fast.process.app_modules): which modules a reload imports afresh
(the app's, not the standard library's, an installed package's or kyoukai_h2fast's), that
they are read anew, and that a failed import leaves sys.modules as it was."""
from __future__ import annotations

import importlib
import sys
import types

import pytest

import kyoukai_h2fast.process.reload
from kyoukai_h2fast.process.app_modules import AppModules


@pytest.fixture
def app_dir(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "am_app.py").write_text("import am_helper\nVERSION = 1\n")
    (tmp_path / "am_helper.py").write_text("NAME = 'one'\n")
    yield tmp_path
    for name in ("am_app", "am_helper"):
        sys.modules.pop(name, None)


def load():
    return importlib.import_module("am_app")


def test_fresh_reads_the_apps_modules_anew_and_leaves_libraries(app_dir):
    for name in ("colorsys", "am_app", "am_helper"):
        sys.modules.pop(name, None)
    modules = AppModules()
    first = load()
    import colorsys  # a standard library module imported by the app after the snapshot
    assert set(modules.app_modules()) == {"am_app", "am_helper"}
    (app_dir / "am_app.py").write_text("import am_helper\nVERSION = 22\n")
    (app_dir / "am_helper.py").write_text("NAME = 'second'\n")
    second = modules.fresh(load)
    assert second is not first and (second.VERSION, second.am_helper.NAME) == (22, "second")
    assert (first.VERSION, first.am_helper.NAME) == (1, "one")  # the old app keeps its own
    assert sys.modules["colorsys"] is colorsys


def test_a_failed_fresh_import_puts_the_old_modules_back(app_dir):
    modules = AppModules()
    first = load()
    helper = sys.modules["am_helper"]
    (app_dir / "am_helper.py").write_text("NAME = 'broken'\n")
    (app_dir / "am_app.py").write_text("import am_helper\nraise RuntimeError('boom')\n")
    with pytest.raises(RuntimeError, match="boom"):
        modules.fresh(load)
    assert sys.modules["am_app"] is first and sys.modules["am_helper"] is helper
    assert importlib.import_module("am_helper").NAME == "one"


def test_modules_imported_before_are_not_the_apps(app_dir):
    first = load()
    modules = AppModules()  # made after the import: nothing is the app's
    assert modules.app_modules() == {}
    assert modules.fresh(load) is first


def test_kyoukai_h2fasts_own_modules_are_never_the_apps(app_dir):
    """(kyoukai_h2fast runs from a source tree in development: outside site-packages too)"""
    modules = AppModules()
    ours = kyoukai_h2fast.process.reload.__file__
    assert not modules.is_app_module("kyoukai_h2fast.not_imported_yet",
                                     types.SimpleNamespace(__file__=ours))
    assert modules.is_app_module("somebody_else", types.SimpleNamespace(__file__=ours))
    assert not modules.is_app_module("no_file", types.SimpleNamespace())
