"""Registries fail loudly and accept plug-ins through entry points."""

from __future__ import annotations

import sys
import types
from importlib import metadata

import pytest

from suite.core.registry import Registry, SuiteError


def test_duplicate_name_is_an_error():
    reg = Registry("model", "rnnsuite.test-group")
    reg.register("a")(type("A", (), {}))
    with pytest.raises(SuiteError, match="already registered"):
        reg.register("a")(type("B", (), {}))


def test_unknown_name_suggests_and_lists():
    reg = Registry("model", "rnnsuite.test-group")
    reg.register("lstm")(type("A", (), {}))
    reg.register("gru")(type("B", (), {}))
    with pytest.raises(SuiteError, match=r"unknown model 'lstn'; did you mean 'lstm'\? \(valid: gru, lstm\)"):
        reg.get("lstn")


def test_entry_point_plugins_are_imported(monkeypatch):
    reg = Registry("model", "rnnsuite.test-plugins")
    module = types.ModuleType("fake_plugin")
    module.loaded = False

    def load():
        reg.register("plugged")(type("P", (), {}))
        return module

    ep = types.SimpleNamespace(name="plugged", value="fake_plugin", load=load)
    monkeypatch.setattr(metadata, "entry_points", lambda group: [ep] if group == "rnnsuite.test-plugins" else [])
    assert reg.names() == ["plugged"]


def test_broken_plugin_is_a_clear_error(monkeypatch):
    reg = Registry("model", "rnnsuite.test-broken")

    def load():
        raise ImportError("no module named 'missing_dep'")

    ep = types.SimpleNamespace(name="broken", value="broken_plugin", load=load)
    monkeypatch.setattr(metadata, "entry_points", lambda group: [ep])
    with pytest.raises(SuiteError, match="plug-in 'broken'.*failed to import"):
        reg.get("anything")
    assert "broken_plugin" not in sys.modules
