"""A benchmark's server in its own process: started from a script given to `python -c`,
waited for until it prints "ready", stopped by its PID (SIGTERM, then SIGKILL after a bound);
and a kernel client's connect that retries while a tap's address comes up."""
import contextlib
import signal
import socket
import subprocess
import sys
import time


@contextlib.contextmanager
def server(script, *args, stop_timeout=10):
    proc = subprocess.Popen([sys.executable, "-c", script, *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"benchmark server {args} did not start")
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(stop_timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def connect(host, port, attempts=200):
    """A TCP_NODELAY kernel socket to host:port (a tap's address appears asynchronously)."""
    for _ in range(attempts):
        try:
            s = socket.create_connection((host, port), timeout=10)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return s
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"could not connect to {host}:{port}")
