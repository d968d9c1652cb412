"""A kernel-socket TCP peer in its own process (no GIL shared with the stack under test:
as a thread of the test process it reads only when the stack's loop lets the GIL go, and
Linux then delays its ACKs for the unread data, which makes a 10-20 ms RTT on a tap).

    kernel_peer.py client ADDR PORT SIZE SEED   send payload(SIZE, SEED), half-close, hash
                                                 the echo; prints "received N digest HEX"
    kernel_peer.py stream ADDR PORT SEED        send payload(1 MiB, SEED) over and over until a
                                                 line (or EOF) on stdin, half-close, hash both
                                                 ways; prints "sent N digest HEX received M
                                                 digest HEX"
    kernel_peer.py server ADDR                  listen, print "port P", echo one
                                                 connection; prints "echoed N"
    kernel_peer.py tls-client ADDR PORT SIZE SEED END [starttls]
        Python's ssl on the kernel socket (tests/certs, server name localhost): send
        payload(SIZE, SEED), read SIZE bytes back and hash them; END=wait: read on and tell
        how the peer ended the stream, END=poke: send one byte more first, then read on,
        END=unwrap: send close_notify first and wait for the peer's. Prints "received N digest HEX end HOW", HOW one of close_notify (the peer's
        close_notify, RFC 8446 §6.1), ragged (EOF without it), reset, unwrapped.
    kernel_peer.py tls-server ADDR [starttls]   listen, print "port P", TLS-echo one
                                                 connection until the client's close_notify,
                                                 answer it; prints "echoed N end HOW"
With starttls the TLS starts after a plain "STARTTLS\n" from the client and "OK\n" back.
"""
import hashlib
import os
import socket
import ssl
import sys
import threading

from tcp_util import echo_until_eof, hash_until_eof, payload

CERTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "certs")
TIMEOUT = 120


def client(addr, port, size, seed):
    data = payload(size, seed)
    s = socket.create_connection((addr, port), timeout=TIMEOUT)
    sender = threading.Thread(target=lambda: (s.sendall(data), s.shutdown(socket.SHUT_WR)))
    sender.start()
    h, n = hash_until_eof(s)
    sender.join()
    s.close()
    print(f"received {n} digest {h.hexdigest()}", flush=True)


def stream(addr, port, seed):
    """Keeps data flowing for as long as the test needs it, however fast the path is."""
    block = payload(1 << 20, seed)
    s = socket.create_connection((addr, port), timeout=TIMEOUT)
    stop, sent, sent_hash = threading.Event(), [0], hashlib.sha256()

    def send():
        while not stop.is_set():
            s.sendall(block)
            sent_hash.update(block)
            sent[0] += len(block)
        s.shutdown(socket.SHUT_WR)
    sender = threading.Thread(target=send)
    sender.start()
    threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()
    h, n = hash_until_eof(s)
    sender.join()
    s.close()
    print(f"sent {sent[0]} digest {sent_hash.hexdigest()} received {n} digest {h.hexdigest()}",
          flush=True)


def server(addr):
    ls = socket.create_server((addr, 0))
    ls.settimeout(TIMEOUT)
    print(f"port {ls.getsockname()[1]}", flush=True)
    conn, _ = ls.accept()
    conn.settimeout(TIMEOUT)
    n = echo_until_eof(conn)
    ls.close()
    print(f"echoed {n}", flush=True)


def _expect_line(s, want):
    """Read one line a byte at a time (nothing past it: TLS follows) and check it."""
    got = b""
    while not got.endswith(b"\n"):
        b = s.recv(1)
        assert b, f"closed before {want!r}"
        got += b
    assert got == want, got


def _starttls_client(s):
    s.sendall(b"STARTTLS\n")
    _expect_line(s, b"OK\n")


def _starttls_server(s):
    _expect_line(s, b"STARTTLS\n")
    s.sendall(b"OK\n")


def _read_end(s):
    """How the peer ends a TLS stream we read to its end."""
    try:
        rest = s.recv(1 << 16)
    except ssl.SSLEOFError:                      # TCP's FIN with no close_notify before it
        return "ragged"
    except ConnectionResetError:
        return "reset"
    assert rest == b"", f"{len(rest)} bytes past the echo"
    return "close_notify"                        # suppress_ragged_eofs=False: b"" is one


def tls_client(addr, port, size, seed, end, starttls):
    data = payload(size, seed)
    ctx = ssl.create_default_context(cafile=os.path.join(CERTS, "cert.pem"))
    raw = socket.create_connection((addr, port), timeout=TIMEOUT)
    if starttls:
        _starttls_client(raw)
    s = ctx.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False)
    s.sendall(data)               # the peer reads it all before it must write (no deadlock)
    h, n = hashlib.sha256(), 0
    while n < size:
        b = s.recv(min(1 << 20, size - n))
        assert b, f"the stream ended after {n} bytes"
        h.update(b)
        n += len(b)
    if end == "poke":
        s.sendall(b".")
    if end == "unwrap":
        s.unwrap().close()
        how = "unwrapped"
    else:
        how = _read_end(s)
        s.close()
    print(f"received {n} digest {h.hexdigest()} end {how}", flush=True)


def tls_server(addr, starttls):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(CERTS, "cert.pem"), os.path.join(CERTS, "key.pem"))
    ls = socket.create_server((addr, 0))
    ls.settimeout(TIMEOUT)
    print(f"port {ls.getsockname()[1]}", flush=True)
    raw, _ = ls.accept()
    raw.settimeout(TIMEOUT)
    if starttls:
        _starttls_server(raw)
    conn = ctx.wrap_socket(raw, server_side=True, suppress_ragged_eofs=False)
    n = 0
    try:
        while b := conn.recv(1 << 20):
            conn.sendall(b)
            n += len(b)
        conn.unwrap().close()                    # our close_notify answers the client's
        how = "close_notify"
    except ssl.SSLEOFError:
        how = "ragged"
        conn.close()
    ls.close()
    print(f"echoed {n} end {how}", flush=True)


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "client":
        client(args[0], int(args[1]), int(args[2]), int(args[3]))
    elif cmd == "stream":
        stream(args[0], int(args[1]), int(args[2]))
    elif cmd == "server":
        server(args[0])
    elif cmd == "tls-client":
        tls_client(args[0], int(args[1]), int(args[2]), int(args[3]), args[4],
                   args[5:] == ["starttls"])
    else:
        assert cmd == "tls-server", cmd
        tls_server(args[0], args[1:] == ["starttls"])
