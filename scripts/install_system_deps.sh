#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages idaw needs (only the missing ones; sudo when not root).
#   scripts/install_system_deps.sh          build + run: compiler, CMake, PortAudio, JSON, fluidsynth, drum kits
#   scripts/install_system_deps.sh --test   also JACK (server + headers) and doctest for the test suite
set -euo pipefail

packages=(build-essential cmake ninja-build pkg-config libportaudio2 nlohmann-json3-dev
  fluidsynth fluid-soundfont-gm hydrogen-data)
if [[ "${1:-}" == "--test" ]]; then
  # JACK for the live tests, doctest for the C++ tests, recorded instruments and drums for training tests.
  packages+=(jackd2 libjack-jackd2-dev doctest-dev lmms-common)
  # The JUCE plugin (VST3 + Standalone), its sidecar link, and a virtual screen for the editor test.
  packages+=(juce-modules-source libzmq3-dev cppzmq-dev libsoxr-dev xvfb fonts-dejavu-core)
fi
# Debian splits venv/ensurepip out of the interpreter package.
if ! python3 -c "import venv, ensurepip" >/dev/null 2>&1; then
  packages+=(python3-venv)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "idaw: these packages are missing and this is not a Debian/Ubuntu system: ${missing[*]}" >&2
  exit 1
fi
sudo=""
if [[ $(id -u) -ne 0 ]]; then
  sudo="sudo"
fi
echo "idaw: installing system packages: ${missing[*]}" >&2
$sudo apt-get update -qq
# jackd2 asks about real-time priority; the default answer is fine for tests.
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
