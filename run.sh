#!/usr/bin/env bash
# ./run.sh main   set up, then run the main job (aiohttp on the userspace stack, default tap)
# ./run.sh test   set up, then run the test suite
# ./run.sh bench  set up, then run the benchmarks
set -euo pipefail
cd "$(dirname "$0")"
what=${1:-main}
shift || true
if [ "$(id -u)" -ne 0 ]; then
    echo "fastloop drives a DPDK port and creates tap interfaces: run as root (sudo $0 $what)" >&2
    exit 1
fi
./scripts/setup.sh
case "$what" in
    main)  exec .venv/bin/python -m fastloop demo "$@" ;;
    test)  # the debug build (mbuf books checked every step) first, then the release build
           FASTLOOP_DEBUG=1 .venv/bin/python setup.py -q build_ext --inplace --force -j 2 >/dev/null 2>&1
           .venv/bin/python scripts/check_build.py --debug
           .venv/bin/python -m pytest -q -p no:cacheprovider "$@" tests
           .venv/bin/python setup.py -q build_ext --inplace --force -j 2 >/dev/null 2>&1
           .venv/bin/python scripts/check_build.py --release
           exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@" tests ;;
    bench) exec .venv/bin/python benchmarks/run.py "$@" ;;
    *)     echo "usage: $0 main|test|bench" >&2; exit 2 ;;
esac
