"""What a test needs from the machine: skip with a reason on a user's machine, fail in CI."""

from __future__ import annotations

import importlib
import os
import shutil
from types import ModuleType

import pytest


def require_all() -> bool:
    """True in CI (IDAW_REQUIRE_ALL=1), where nothing the project needs may be skipped."""
    return os.environ.get("IDAW_REQUIRE_ALL", "") not in ("", "0")


def need(available: bool, reason: str) -> None:
    """Skip (user's machine) or fail (CI) the calling test when `available` is false."""
    if available:
        return
    if require_all():
        pytest.fail(f"required but missing (IDAW_REQUIRE_ALL=1): {reason}")
    pytest.skip(reason)


def need_program(name: str, package: str) -> str:
    """Path of an executable, or skip/fail naming the package that provides it."""
    path = shutil.which(name)
    need(path is not None, f"'{name}' not found; install the Debian package {package}")
    assert path is not None
    return path


def need_module(name: str, install: str) -> ModuleType:
    """The Python module `name`, imported; without it, skip the calling test module (user's machine) or fail (CI),
    naming what to install. For a module-level import that a whole test file depends on."""
    try:
        return importlib.import_module(name)
    except ImportError as error:
        reason = f"Python module {name} cannot be imported ({error}); {install}"
        if require_all():
            pytest.fail(f"required but missing (IDAW_REQUIRE_ALL=1): {reason}", pytrace=False)
        pytest.skip(reason, allow_module_level=True)
