#!/usr/bin/env bash
# Configures, builds and runs the C++ tests (ctest) in the normal, ASan+UBSan and TSan builds.
#
# Usage: plugin_cpp/tests/run_cpp_tests.sh [normal|address|thread ...]    (no argument: all three, in that order)
#
# Build folders: build/cpp, build/asan and build/tsan under the repository root (reused between runs). Every
# requested build is attempted even after a failure; the exit status is non-zero if any configure, build or test
# step failed. Each build ends with ctest's own summary, and the run ends with a table of results and wall times.
#
# Environment: IDAW_JOBS (parallel jobs for the build and for ctest; default: number of cores),
# IDAW_RING_ITEMS and IDAW_STRESS_FRAMES (sizes of the stress tests; see test_spsc_ring.cpp, engine_stress.h).
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
jobs=${IDAW_JOBS:-$(nproc)}
kinds=("$@")
if [[ ${#kinds[@]} -eq 0 ]]; then
  kinds=(normal address thread)
fi

results=()
failed=0
for kind in "${kinds[@]}"; do
  case "$kind" in
    normal) dir=cpp sanitizer="" build_type=Release ;;
    # Sanitizer builds keep -O2 but add -g, so reports carry file and line.
    address) dir=asan sanitizer=address build_type=RelWithDebInfo ;;
    thread) dir=tsan sanitizer=thread build_type=RelWithDebInfo ;;
    *)
      echo "usage: $0 [normal|address|thread ...]" >&2
      exit 2
      ;;
  esac
  build="$repo/build/$dir"
  echo "=== $kind: $build"
  start=$(date +%s%N)
  status=passed
  if ! cmake -S "$repo" -B "$build" -G Ninja -DIDAW_BUILD_TESTS=ON -DIDAW_SANITIZER="$sanitizer" \
      -DCMAKE_BUILD_TYPE="$build_type" >/dev/null; then
    status="configure failed"
  elif ! cmake --build "$build" -j "$jobs"; then
    status="build failed"
  # enable_testing() lives in plugin_cpp/CMakeLists.txt, so the tests are registered under build/X/plugin_cpp.
  elif ! (cd "$build/plugin_cpp" && ctest --output-on-failure -j "$jobs"); then
    status="tests failed"
  fi
  tenths=$((($(date +%s%N) - start) / 100000000))
  results+=("$(printf '%-8s %-16s %5d.%d s' "$kind" "$status" $((tenths / 10)) $((tenths % 10)))")
  [[ "$status" == passed ]] || failed=1
done

echo "=== summary (wall time includes configure and build)"
printf '%s\n' "${results[@]}"
exit "$failed"
