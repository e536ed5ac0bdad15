#!/usr/bin/env bash
# Set up greencoder on a fresh Debian/Ubuntu machine, idempotently:
#   - Debian packages the sandboxed executor needs (g++, a JDK 17, Boost headers, bubblewrap),
#   - a virtual environment in .venv,
#   - torch pinned to 2.13.0 *first* (an unpinned torch pulls several GB of CUDA packages),
#   - greencoder itself (editable), with the test extras when called with --dev.
set -euo pipefail
cd "$(dirname "$0")/.."

extras=""
[ "${1:-}" = "--dev" ] && extras="[test]"

# python3-sortedcontainers: LeetCode code (and its references) may use SortedList, as on LeetCode;
# python3-numpy: HumanEval-X's reference harness imports numpy for solutions that use it.
# The sandbox runs the system python3, so both modules must be installed there.
packages="g++ openjdk-17-jdk-headless libboost-dev libssl-dev bubblewrap python3-sortedcontainers python3-numpy"
python3 -c "import ensurepip" 2>/dev/null || packages="$packages python3-venv"
if command -v dpkg >/dev/null 2>&1; then
    missing=""
    for package in $packages; do
        dpkg -s "$package" >/dev/null 2>&1 || missing="$missing $package"
    done
    if [ -n "$missing" ]; then
        sudo=""
        [ "$(id -u)" = 0 ] || sudo="sudo"
        echo "bootstrap: installing Debian packages:$missing" >&2
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null
    fi
else
    echo "bootstrap: not a Debian-like system; install g++, a JDK 17, Boost headers and bubblewrap yourself" >&2
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check torch==2.13.0
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".$extras"
echo "bootstrap: ready (.venv/bin/greencoder)" >&2
