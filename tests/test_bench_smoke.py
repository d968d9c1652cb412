"""Smoke test of `python -m fastloop bench --quick`: one tiny case of each kind (echo over
Protocol and streams, aiohttp under wrk, bulk, connections/s) on every loop — fastloop over
net_memif (http: net_tap), uvloop and asyncio over kernel loopback. Every echo reply and the
bulk stream's length and CRC-32 are verified by the harness (a mismatch fails the run); here
the JSON must hold sane, nonzero numbers for every loop, and every child process, EAL runtime
directory and tap must be gone afterwards."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path


REPO = Path(__file__).resolve().parents[1]
LOOPS = ("fastloop", "uvloop", "asyncio")
CASES = ("echo-proto 64B c1", "echo-stream 64B c1", "http c32", "bulk", "conn x8")



def test_wrk_is_installed():
    """scripts/setup.sh installs wrk; without it the http case cannot run (never skipped)."""
    assert shutil.which("wrk"), "wrk is missing: apt-get install wrk (scripts/setup.sh does)"


def test_bench_quick_runs_every_kind_on_every_loop(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("FASTLOOP_EAL_ARGS", None)
    r = subprocess.run([sys.executable, "-m", "fastloop", "bench", "--quick",
                        "--cases", ",".join(CASES),
                        "--bulk-bytes", str(8 << 20), "--out", str(tmp_path)],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-4000:]
    doc = json.loads((tmp_path / "bench_quick.json").read_text())
    assert doc["failures"] == []
    assert doc["meta"]["fastloop_idle"] == "busy-poll"
    summary = doc["summary"]
    assert sorted(summary) == sorted(CASES)
    for cid in CASES:
        for loop in LOOPS:
            v = summary[cid][loop]
            assert v["runs"] == 1, (cid, loop)
            if cid == "bulk":
                assert 0.001 < v["gbit_per_s"] < 1000, (cid, loop, v)
            else:
                assert 0 < v["req_per_s"] < 1e8, (cid, loop, v)
                assert 0 < v["p50_us"] <= v["p99_us"] <= v["p999_us"] < 10e6, (cid, loop, v)
            assert v["server_cpu_us_per_req"] is not None and v["server_cpu_us_per_req"] >= 0
        assert summary[cid]["ratio"]["req_per_s"] > 0
        assert summary[cid]["targets"], cid          # each kind has a target, checked
    for run in doc["runs"]:
        res = run["result"]
        assert res["ok"] is True and res["bad_replies"] == 0 and not res["errors"], run
        if run["kind"] == "bulk":
            assert res["bytes"] == 8 << 20
    md = (tmp_path / "bench_quick.md").read_text()
    assert "busy-poll" in md and "fastloop/uvloop" in md
    for section in ("echo-proto", "echo-stream", "http", "bulk", "conn"):
        png = tmp_path / f"bench_quick_{section}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", section
    # nothing outlives the run: children, their EAL runtime dirs, taps, memif sockets
    pids = {run["result"]["server"]["pid"] for run in doc["runs"]}
    pids |= {run["result"]["client_pid"] for run in doc["runs"] if "client_pid" in run["result"]}
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or _zombie_or_other(pid), pid
        assert not Path(f"/var/run/dpdk/fastloop-{pid}").exists(), pid
    taps = [run["result"]["tap"] for run in doc["runs"] if run["result"].get("tap")]
    assert taps and not any(Path(f"/sys/class/net/{t}").exists() for t in taps), taps


def _zombie_or_other(pid):
    """A PID reused by an unrelated process is not ours; ours would run bench_peer.py."""
    try:
        return "bench_peer.py" not in Path(f"/proc/{pid}/cmdline").read_text()
    except OSError:
        return True
