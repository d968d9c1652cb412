"""Helpers for TCP tests: Python targets for CallbackSink, and kernel-socket peers."""
import hashlib
import os
import socket
import subprocess
import sys
import threading
import time

from fastloop.net.tcp.pysink import CallbackListener, CallbackSink


class Echo:
    """Sends back everything it reads; closes after the peer's FIN once all is sent."""

    def __init__(self):
        self.pending = bytearray()
        self.eof_seen = False
        self.errors = []
        self.closed_with = None
        self.received = 0

    def _flush(self, c):
        while self.pending:
            n = c.send(self.pending)
            if not n:
                return
            del self.pending[:n]
        if self.eof_seen:
            c.close()

    def data(self, c):
        chunk = c.recv(1 << 22)
        self.received += len(chunk)
        self.pending += chunk
        self._flush(c)

    def send_space(self, c):
        self._flush(c)

    def eof(self, c):
        self.eof_seen = True
        self._flush(c)

    def closed(self, c, error):
        self.closed_with = error


class Transfer:
    """Sends `payload`, then half-closes; hashes what comes back until the peer's FIN."""

    def __init__(self, payload):
        self.payload = memoryview(payload)
        self.sent = 0
        self.digest = hashlib.sha256()
        self.received = 0
        self.errors = []
        self.is_established = False
        self.eof_seen = False
        self.closed_with = None

    def _push(self, c):
        while self.sent < len(self.payload):
            n = c.send(self.payload[self.sent:self.sent + (1 << 20)])
            if not n:
                return
            self.sent += n
        if not c.info()["state"] in ("FIN_WAIT_1", "FIN_WAIT_2", "LAST_ACK", "CLOSING"):
            c.shutdown()

    def established(self, c):
        self.is_established = True
        self._push(c)

    def send_space(self, c):
        self._push(c)

    def data(self, c):
        chunk = c.recv(1 << 22)
        self.received += len(chunk)
        self.digest.update(chunk)

    def eof(self, c):
        self.eof_seen = True
        c.close()

    def closed(self, c, error):
        self.closed_with = error


def listen_echo(tcp, port):
    """A listener whose every connection echoes; returns (listener, list of Echo targets)."""
    targets = []

    def accept(c):
        targets.append(Echo())
        return targets[-1]
    return tcp.listen(port, CallbackListener(accept)), targets


def hash_until_eof(sock):
    """Read a socket to its end; returns (sha256 of what came, its length)."""
    h, n = hashlib.sha256(), 0
    while True:
        b = sock.recv(1 << 20)
        if not b:
            return h, n
        h.update(b)
        n += len(b)


def echo_until_eof(conn):
    """Send back all a socket reads until its EOF, then half-close and close it; returns
    the bytes echoed."""
    n = 0
    while True:
        b = conn.recv(1 << 20)
        if not b:
            break
        conn.sendall(b)
        n += len(b)
    conn.shutdown(socket.SHUT_WR)
    conn.close()
    return n


def kernel_echo_client(addr, port, payload, result, timeout=60):
    """Thread body: connect with a kernel socket, send payload, half-close, hash the echo."""
    try:
        s = socket.create_connection((addr, port), timeout=timeout)
        sender = threading.Thread(target=lambda: (s.sendall(payload), s.shutdown(socket.SHUT_WR)))
        sender.start()
        h, n = hash_until_eof(s)
        sender.join()
        s.close()
        result["digest"], result["received"] = h.digest(), n
    except BaseException as e:           # reported by the test, not lost in the thread
        result["error"] = e


def kernel_echo_server(sock, result, timeout=60):
    """Thread body: accept one connection on a listening kernel socket and echo it."""
    try:
        sock.settimeout(timeout)
        conn, _ = sock.accept()
        conn.settimeout(timeout)
        result["echoed"] = echo_until_eof(conn)
    except BaseException as e:
        result["error"] = e


def pump(stacks, until, timeout):
    """Poll every stack until until() is true or timeout seconds pass (timers need real time)."""
    deadline = time.monotonic() + timeout
    while not until():
        for _ in range(256):
            for s in stacks:
                s.poll()
        if time.monotonic() > deadline:
            return False
    return True


def payload(n, seed=0):
    """n bytes, reproducible, not compressible."""
    out = bytearray()
    block = hashlib.sha256(seed.to_bytes(8, "little")).digest()
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block * 64
    return bytes(out[:n])


HERE = os.path.dirname(os.path.abspath(__file__))


def kernel_peer(*args):
    """tests/kernel_peer.py in a process of its own (its docstring says why)."""
    return subprocess.Popen([sys.executable, os.path.join(HERE, "kernel_peer.py"), *args],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=os.pathsep.join((HERE, os.path.dirname(HERE)))))


def finish(proc):
    """The peer's last line of output and its exit status, reaping it in any case."""
    try:
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    assert proc.returncode == 0, err
    return out.split()
