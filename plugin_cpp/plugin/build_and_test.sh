#!/usr/bin/env bash
# Builds the JUCE plugin (VST3 + Standalone), its test host and the real-time checker into build/plugin, then runs
# the plugin's tests (tests/test_plugin_*.py: host, pedalboard, sidecar, sidecar settings).
#
# Usage: plugin_cpp/plugin/build_and_test.sh [--build-only] [pytest arguments ...]
#
# Needs JUCE 7 (Debian: juce-modules-source), the -dev packages the README lists under "The plugin", xvfb for the
# editor test and the venv (make setup). pedalboard is pip-installed into the venv when missing.
# Environment: IDAW_JOBS (parallel compile jobs, default 2), IDAW_PLUGIN_BUILD_DIR (default build/plugin),
# IDAW_PYTHON (default .venv/bin/python). With IDAW_REQUIRE_ALL=1 (CI) no plugin test may be skipped.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${IDAW_PLUGIN_BUILD_DIR:-$repo/build/plugin}
jobs=${IDAW_JOBS:-2}
python=${IDAW_PYTHON:-$repo/.venv/bin/python}
build_only=0
if [[ "${1:-}" == "--build-only" ]]; then
  build_only=1
  shift
fi

start=$(date +%s)
# IDAW_BUILD_TESTS=ON for libidaw_rtcheck.so (the allocation/lock checker); only the targets below are built.
cmake -S "$repo" -B "$build" -G Ninja -DIDAW_BUILD_PLUGIN=ON -DIDAW_BUILD_TESTS=ON -DCMAKE_BUILD_TYPE=Release \
  -DIDAW_PYTHON="$python" >/dev/null
cmake --build "$build" -j "$jobs" --target idaw_plugin_VST3 idaw_plugin_Standalone idaw_plugin_nets idaw_plugin_host idaw_rtcheck
echo "=== plugin built in $(($(date +%s) - start)) s: $build/plugin_cpp/plugin/idaw_plugin_artefacts/Release"
if [[ $build_only -eq 1 ]]; then
  exit 0
fi

if ! "$python" -c "import pedalboard" >/dev/null 2>&1; then
  echo "=== installing pedalboard into the venv (the pedalboard tests load the VST3 with it)"
  "$python" -m pip install -q pedalboard
fi
cd "$repo"
IDAW_PLUGIN_BUILD_DIR="$build" "$python" -m pytest tests/test_plugin_*.py "$@"
