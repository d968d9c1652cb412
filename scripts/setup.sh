#!/usr/bin/env bash
# Everything a fresh Debian machine needs for fastloop: DPDK and tools from apt, a virtualenv
# with the build and test dependencies, and the Cython extensions built in place.
# Idempotent: a second run only rebuilds what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

APT_PACKAGES=(dpdk libdpdk-dev pkg-config gcc make iproute2 iputils-ping curl tshark procps util-linux python3-venv wrk)
missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    $SUDO apt-get update -qq
    # tshark asks whether non-root users may capture: answer no without a prompt
    echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -r requirements-dev.txt
.venv/bin/python setup.py -q build_ext --inplace -j 2 2>&1 | grep -E "error|Error" || true
.venv/bin/python scripts/check_build.py || { echo "setup: the build failed"; exit 1; }
echo "setup: ready (.venv, DPDK $(pkg-config --modversion libdpdk))"
