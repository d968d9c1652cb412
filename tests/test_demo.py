"""`python -m fastloop demo`, the README's main job, as a user runs it: aiohttp served by the
userspace stack on a tap, fetched by curl from the kernel side, stopped by Ctrl-C."""
import os
import signal
import subprocess

from conftest import unique_ifname, unique_subnet
from peer_proc import UpProcess


def demo_env():
    ifname, net = unique_ifname(), unique_subnet()
    return ifname, net, {"FASTLOOP_IFACE": f"tap:{ifname}", "FASTLOOP_ADDRESS": f"{net}.2/24",
                         "FASTLOOP_TAP_PEER": f"{net}.1"}


def test_demo_check_fetches_every_route_and_exits_0():
    ifname, net, env = demo_env()
    with UpProcess(env, args=("--check", "--port", "8090"), command="demo") as demo:
        rc, lines, err = demo.finish(timeout=90)
    assert rc == 0, (lines, err)
    assert f"  from the host: curl http://{net}.2:8090/" in lines, lines
    for route in ("GET /", "GET /json", "GET /stream", "POST /upload"):
        assert any(l.startswith(f"check: {route}") and ": ok (" in l for l in lines), lines
    assert "check: all routes answered correctly" in lines
    assert "Traceback" not in err, err
    assert not os.path.exists(f"/sys/class/net/{ifname}"), "the tap outlived the demo"
    assert not os.path.exists(demo.runtime_dir)


def test_demo_serves_curl_and_stops_on_ctrl_c():
    ifname, net, env = demo_env()
    with UpProcess(env, command="demo") as demo:
        demo.wait_line(lambda l: "from the host: curl" in l, timeout=30)
        r = subprocess.run(["curl", "-sS", "--max-time", "10", f"http://{net}.2:8080/json"],
                           capture_output=True, text=True, timeout=20)
        assert r.returncode == 0 and '"hello": "world"' in r.stdout, (r.stdout, r.stderr)
        assert f'"peer": "{net}.1"' in r.stdout
        rc, lines, err = demo.finish(signal.SIGINT, timeout=20)
    assert rc == 0, (lines, err)
    assert lines[-1] == "fastloop demo: stopped; port closed, interface removed", lines
    assert any('"GET /json HTTP/1.1" 200' in l for l in lines + err.splitlines()), (lines, err)
    assert not os.path.exists(f"/sys/class/net/{ifname}")
