"""The public API in reflection/__init__.py: sorted, complete, and every name importable."""

from __future__ import annotations

import importlib
import importlib.resources

import reflection


def test_all_is_sorted_and_unique():
    assert reflection.__all__ == sorted(set(reflection.__all__))


def test_every_public_name_resolves():
    for name in reflection.__all__:
        assert getattr(reflection, name) is not None, name


def test_lazy_names_come_from_the_module_that_defines_them():
    # No re-export chains: each lazy name is looked up where it is defined.
    for name, module in reflection._LAZY.items():
        target = importlib.import_module(f"reflection.{module}")
        value = getattr(target, "parse" if name == "parse_oracle_reply" else name)
        assert getattr(value, "__module__", target.__name__) == target.__name__, name


def test_unknown_names_raise_attribute_error():
    try:
        reflection.no_such_thing  # noqa: B018
    except AttributeError as exc:
        assert "no_such_thing" in str(exc)
    else:
        raise AssertionError("an unknown name resolved")


def test_the_package_ships_py_typed():
    assert importlib.resources.files("reflection").joinpath("py.typed").is_file()
