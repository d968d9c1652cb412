"""Every example in examples/ runs its own self-test on a fresh tap and exits 0."""
import os
import subprocess
import sys

import pytest

from conftest import unique_ifname, unique_subnet

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
CASES = {"tcp_echo.py": "echoed 2 lines: ok", "aiohttp_hello.py": "Hello, ",
         "udp_dns.py": "anything.test -> ", "tcp_proxy.py": "relayed: ok",
         "tls_echo.py": ": ok"}


@pytest.mark.parametrize("name", sorted(CASES))
def test_example_runs(name):
    ifname, net = unique_ifname(), unique_subnet()
    env = dict(os.environ, FASTLOOP_IFACE=f"tap:{ifname}", FASTLOOP_ADDRESS=f"{net}.2/24",
               FASTLOOP_TAP_PEER=f"{net}.1")
    args = ["--once"] if name == "aiohttp_hello.py" else []
    r = subprocess.run([sys.executable, os.path.join(EXAMPLES, name), *args], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert CASES[name] in r.stdout, r.stdout
    assert "Traceback" not in r.stderr, r.stderr
    assert not os.path.exists(f"/sys/class/net/{ifname}")
