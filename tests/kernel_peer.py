"""A kernel-socket TCP peer in its own process (no GIL shared with the stack under test:
as a thread of the test process it reads only when the stack's loop lets the GIL go, and
Linux then delays its ACKs for the unread data, which makes a 10-20 ms RTT on a tap).

    kernel_peer.py client ADDR PORT SIZE SEED   send payload(SIZE, SEED), half-close, hash
                                                 the echo; prints "received N digest HEX"
    kernel_peer.py server ADDR                  listen, print "port P", echo one
                                                 connection; prints "echoed N"
"""
import hashlib
import socket
import sys
import threading

from tcp_util import payload


def client(addr, port, size, seed):
    data = payload(size, seed)
    s = socket.create_connection((addr, port), timeout=120)
    sender = threading.Thread(target=lambda: (s.sendall(data), s.shutdown(socket.SHUT_WR)))
    sender.start()
    h, n = hashlib.sha256(), 0
    while True:
        b = s.recv(1 << 20)
        if not b:
            break
        h.update(b)
        n += len(b)
    sender.join()
    s.close()
    print(f"received {n} digest {h.hexdigest()}", flush=True)


def server(addr):
    ls = socket.create_server((addr, 0))
    ls.settimeout(120)
    print(f"port {ls.getsockname()[1]}", flush=True)
    conn, _ = ls.accept()
    conn.settimeout(120)
    n = 0
    while True:
        b = conn.recv(1 << 20)
        if not b:
            break
        conn.sendall(b)
        n += len(b)
    conn.shutdown(socket.SHUT_WR)
    conn.close()
    ls.close()
    print(f"echoed {n}", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "client":
        client(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    else:
        server(sys.argv[2])
