"""Smoke test of the L3 ping-pong benchmark: the plain DPDK reflector and pinger really
exchange ARP and ICMP echo over net_memif between two processes, and every reply verifies."""
import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _have_dpdk():
    return (shutil.which("pkg-config") and shutil.which("make") and shutil.which("gcc")
            and subprocess.run(["pkg-config", "--exists", "libdpdk"]).returncode == 0)


pytestmark = [
    pytest.mark.skipif(not _have_dpdk(), reason="needs DPDK (libdpdk-dev), pkg-config, make, gcc"),
    pytest.mark.skipif(os.geteuid() != 0, reason="DPDK EAL needs root"),
]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("l3_pingpong", REPO / "benchmarks" / "l3_pingpong.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.build()
    return mod


def test_reflector_and_pinger_exchange_icmp_over_memif(bench, tmp_path):
    cpus = sorted(os.sched_getaffinity(0))
    server_cpu, client_cpu = (cpus[1], cpus[0]) if len(cpus) > 1 else (None, None)
    r = bench.run_one("c-reflector", tmp_path, "smoke", seconds=0.3, window=32, warmup=0.05,
                      server_cpu=server_cpu, client_cpu=client_cpu)
    p, srv = r["pinger"], r["server_counters"]
    assert p["ok"] is True
    for mode in ("pingpong", "window"):
        assert p[mode]["replies"] > 0, mode
        assert p[mode]["verified"] == p[mode]["replies"], mode
        assert p[mode]["sent"] >= p[mode]["replies"], mode
    assert p["bad"] == 0, p["bad_by_reason"]
    assert p["pingpong"]["p50_ns"] > 0
    # the replies came from the other process: the reflector counted the echoes and one ARP
    assert srv is not None and srv["server"] == "c-reflector"
    assert srv["arp"] >= 1
    assert srv["icmp_echo"] >= p["pingpong"]["replies"] + p["window"]["replies"]
    assert srv["tx_dropped"] == 0
    # cleaned up: no socket file, no EAL runtime directories left behind
    assert not (tmp_path / "smoke.sock").exists()
    assert not list(Path("/var/run/dpdk").glob(f"fll3-{os.getpid()}-smoke-*"))
