"""`python -m fastloop up` as a user runs it: on a tap, pinged by the kernel, stopped by
Ctrl-C (SIGINT) or by --duration; a bad FASTLOOP_IFACE is exit 2 naming the variable."""
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import unique_ifname, unique_subnet
from peer_proc import UpProcess, answered_in, final_line


def kernel_ping(dst, count=5):
    r = subprocess.run(["ping", "-n", "-c", str(count), "-i", "0.05", "-W", "2", dst],
                       capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout + r.stderr


@pytest.mark.parametrize("stop", ["sigint", "duration"])
def test_up_on_a_tap_answers_the_kernel_and_stops_cleanly(stop):
    ifname, net = unique_ifname(), unique_subnet()
    duration = "30" if stop == "sigint" else "3"     # 30: only SIGINT can end it in time
    with UpProcess({"FASTLOOP_IFACE": f"tap:{ifname}", "FASTLOOP_ADDRESS": f"{net}.2/24",
                    "FASTLOOP_TAP_PEER": f"{net}.1"}, args=("--duration", duration)) as up:
        lines = up.wait_ready()
        started = time.monotonic()
        m = re.match(r"fastloop up: (\S+) \(", lines[0])
        assert m, lines
        printed = m.group(1)
        assert printed == f"{net}.2"
        assert any(f"try: ping {printed}" in l for l in lines), lines
        assert os.path.exists(f"/sys/class/net/{ifname}")
        rc, out = kernel_ping(printed)
        assert rc == 0 and "5 received" in out, out
        rc, lines, err = up.finish(signal.SIGINT if stop == "sigint" else None, timeout=20)
        elapsed = time.monotonic() - started
    assert rc == 0, (lines, err)
    assert "Traceback" not in err, err
    assert answered_in(final_line(lines)) == 5, lines
    if stop == "sigint":
        assert elapsed < 25, "SIGINT did not stop it; --duration did"
    else:
        assert elapsed >= 2.5, f"stopped after {elapsed:.1f}s of --duration 3"
    assert not os.path.exists(f"/sys/class/net/{ifname}"), "the tap outlived the process"
    assert not os.path.exists(up.runtime_dir)


@pytest.mark.parametrize("bad", ["tap:this-name-is-too-long", "memif:relative.sock", "wifi:wlan0"])
def test_bad_iface_is_exit_2_naming_the_variable(bad):
    with UpProcess({"FASTLOOP_IFACE": bad}) as up:
        rc, lines, err = up.finish(timeout=30)
    assert rc == 2, (lines, err)
    assert "FASTLOOP_IFACE" in err and repr(bad) in err, err
    assert not os.path.exists(up.runtime_dir), "EAL must not start for a bad configuration"
