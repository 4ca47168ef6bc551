"""The curated public API: every module of ``runtime`` declares ``__all__`` truthfully.

Like anyio's ``test_all_attributes``: a name in ``__all__`` must exist, and a
name that ``runtime.cache`` re-exports must be public where it is defined.
Written generically, so modules added later are checked without edits here.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

import pytest

import runtime
import runtime.cache


def _module_names() -> list[str]:
    names = ["runtime"]
    for info in pkgutil.walk_packages(runtime.__path__, prefix="runtime."):
        names.append(info.name)
    return sorted(names)


MODULES = _module_names()


def test_the_package_walk_finds_the_seed_modules() -> None:
    for name in (
        "runtime.domain",
        "runtime.cache",
        "runtime.cache.codecs",
        "runtime.cache.exceptions",
        "runtime.cache.models",
    ):
        assert name in MODULES


def _import(name: str) -> ModuleType:
    return importlib.import_module(name)


@pytest.mark.parametrize("name", MODULES)
def test_module_declares_all(name: str) -> None:
    module = _import(name)
    exported = getattr(module, "__all__", None)
    assert isinstance(exported, list | tuple), f"{name} has no __all__"
    assert len(set(exported)) == len(exported), f"{name}.__all__ repeats a name"


@pytest.mark.parametrize("name", MODULES)
def test_every_name_in_all_exists(name: str) -> None:
    module = _import(name)
    missing = [attr for attr in getattr(module, "__all__", ()) if not hasattr(module, attr)]
    assert not missing, f"{name}.__all__ names what it lacks: {missing}"


def test_cache_package_exports_only_importable_names() -> None:
    namespace: dict[str, object] = {}
    exec("from runtime.cache import *", namespace)  # the star import is the point
    assert set(runtime.cache.__all__) <= set(namespace)


@pytest.mark.parametrize("attr", sorted(runtime.cache.__all__))
def test_reexported_name_is_public_where_it_is_defined(attr: str) -> None:
    value = getattr(runtime.cache, attr)
    if isinstance(value, ModuleType):
        return
    home_name = getattr(value, "__module__", None)
    assert isinstance(home_name, str), f"runtime.cache.{attr} does not say where it lives"
    home = _import(home_name)
    assert attr in getattr(home, "__all__", ()), f"{attr} is not in {home_name}.__all__"
