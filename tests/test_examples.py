"""Every example in examples/ runs its own self-test on a fresh tap and exits 0."""
import os
import subprocess
import sys

import pytest

from conftest import unique_ifname, unique_subnet

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
CASES = {"tcp_echo.py": "echoed 2 lines: ok", "aiohttp_hello.py": "Hello, ",
         "udp_dns.py": "anything.test -> ", "tcp_proxy.py": "relayed: ok",
         "tls_echo.py": ": ok", "uvicorn_hello.py": "Hello from uvicorn on fastloop, "}


@pytest.mark.parametrize("name", sorted(CASES))
def test_example_runs(name):
    ifname, net = unique_ifname(), unique_subnet()
    env = dict(os.environ, FASTLOOP_IFACE=f"tap:{ifname}", FASTLOOP_ADDRESS=f"{net}.2/24",
               FASTLOOP_TAP_PEER=f"{net}.1")
    args = ["--once"] if name in ("aiohttp_hello.py", "uvicorn_hello.py") else []
    r = subprocess.run([sys.executable, os.path.join(EXAMPLES, name), *args], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert CASES[name] in r.stdout, r.stdout
    assert "Traceback" not in r.stderr, r.stderr
    assert not os.path.exists(f"/sys/class/net/{ifname}")


def test_uvicorn_cli_takes_fastloop_as_its_loop(tmp_path):
    """The command line the README gives: uvicorn --loop fastloop:new_event_loop."""
    ifname, net = unique_ifname(), unique_subnet()
    repo = os.path.dirname(EXAMPLES)
    env = dict(os.environ, FASTLOOP_IFACE=f"tap:{ifname}", FASTLOOP_ADDRESS=f"{net}.2/24",
               FASTLOOP_TAP_PEER=f"{net}.1", PYTHONPATH=repo)
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "uvicorn_hello:app", "--app-dir",
                             EXAMPLES, "--loop", "fastloop:new_event_loop", "--host", f"{net}.2",
                             "--port", "8000"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        for line in proc.stdout:                   # wait until uvicorn says it listens
            lines.append(line)
            if "Uvicorn running on" in line:
                break
        else:
            raise AssertionError("".join(lines))
        r = subprocess.run(["curl", "-sS", "-m", "10", f"http://{net}.2:8000/"],
                           capture_output=True, text=True, timeout=20)
        assert r.stdout == f"Hello from uvicorn on fastloop, {net}.1!\n", (r, lines)
    finally:
        proc.send_signal(2)                        # Ctrl-C: uvicorn shuts down, the tap goes
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, "".join(lines) + out
    assert "Traceback" not in out, out
    assert not os.path.exists(f"/sys/class/net/{ifname}")
