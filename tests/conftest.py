"""The tests' fixtures: thin wrappers around tests.support (writing test audio files, running the `idaw` command as a
user would, a private JACK server, the built plugin and a private X server for its editor)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.audio import WriteAudio, audio_writer
from tests.support.idaw_command import RunIdaw
from tests.support.idaw_command import run_idaw as run_idaw_command
from tests.support.jack_server import JackServer, serving
from tests.support.plugin import PluginBuild, plugin_build, xvfb_display


@pytest.fixture(scope="module")
def jack_server() -> Iterator[JackServer]:
    """A private dummy JACK server at 48 kHz, period 256, shared by one test module (skips without JACK locally)."""
    with serving(48000, 256) as server:
        yield server


@pytest.fixture
def write_audio(tmp_path: Path) -> WriteAudio:
    """A function (name, data, rate, subtype="FLOAT") -> Path writing `data` under tmp_path."""
    return audio_writer(tmp_path)


@pytest.fixture
def run_idaw() -> RunIdaw:
    """A function (*args, stderr=None) -> CompletedProcess running `python -m idaw.cli ARGS` in the repo."""
    return run_idaw_command


@pytest.fixture(scope="module")
def build() -> PluginBuild:
    """The built plugin and its test host, shared by one test module (skip, or fail in CI, when missing)."""
    return plugin_build()


@pytest.fixture(scope="module")
def xvfb() -> Iterator[str]:
    """A private X server for the plugin's editor, shared by one test module; yields its DISPLAY."""
    with xvfb_display() as display:
        yield display
