"""Socket-like objects for connections and listeners on the userspace stack.

asyncio code reaches a transport's socket through `get_extra_info('socket')` and a server's
through `Server.sockets`: aiohttp sets TCP_NODELAY there, others set keepalive. These objects
answer what a socket would, and the options act on the userspace connection. There is no
file descriptor (fileno() is -1): the data path never touches the kernel.
"""
from __future__ import annotations

import errno
import socket

# Linux's defaults (tcp_keepalive_time/intvl/probes) for a connection that turns SO_KEEPALIVE on
KEEPIDLE_DEFAULT = 7200
KEEPINTVL_DEFAULT = 75
KEEPCNT_DEFAULT = 9


class _UserspaceSocketBase:
    family = socket.AF_INET
    type = socket.SOCK_STREAM
    proto = socket.IPPROTO_TCP

    def fileno(self):
        return -1

    def setblocking(self, flag):
        pass

    def gettimeout(self):
        return 0.0

    def _unsupported(self, level, optname):
        return OSError(errno.ENOPROTOOPT, f"socket option ({level}, {optname}) is not "
                                          "supported on the userspace stack")


class UserspaceSocket(_UserspaceSocketBase):
    """What `transport.get_extra_info('socket')` returns for a userspace TCP connection."""

    def __init__(self, conn):
        self._conn = conn
        self._keepalive = False
        self._keepidle = KEEPIDLE_DEFAULT
        self._keepintvl = KEEPINTVL_DEFAULT
        self._keepcnt = KEEPCNT_DEFAULT

    def __repr__(self):
        l, r = self._conn.local, self._conn.remote
        return f"<fastloop.UserspaceSocket laddr={l} raddr={r}>"

    def getsockname(self):
        return self._conn.local

    def getpeername(self):
        return self._conn.remote

    def _apply_keepalive(self):
        self._conn.set_keepalive(self._keepidle if self._keepalive else 0,
                                 self._keepintvl, self._keepcnt)

    def setsockopt(self, level, optname, value, optlen=None):
        v = int.from_bytes(value, "little") if isinstance(value, (bytes, bytearray)) else int(value)
        c = self._conn
        if level == socket.IPPROTO_TCP and optname == socket.TCP_NODELAY:
            c.nodelay = bool(v)
        elif level == socket.SOL_SOCKET and optname == socket.SO_KEEPALIVE:
            self._keepalive = bool(v)
            self._apply_keepalive()
        elif level == socket.IPPROTO_TCP and optname == getattr(socket, "TCP_KEEPIDLE", -1):
            self._keepidle = max(1, v)
            self._apply_keepalive()
        elif level == socket.IPPROTO_TCP and optname == getattr(socket, "TCP_KEEPINTVL", -1):
            self._keepintvl = max(1, v)
            self._apply_keepalive()
        elif level == socket.IPPROTO_TCP and optname == getattr(socket, "TCP_KEEPCNT", -1):
            self._keepcnt = max(1, v)
            self._apply_keepalive()
        elif level == socket.SOL_SOCKET and optname in (socket.SO_REUSEADDR, socket.SO_SNDBUF,
                                                        socket.SO_RCVBUF, socket.SO_LINGER):
            pass          # accepted and ignored: the stack's buffers are set in StackConfig
        else:
            raise self._unsupported(level, optname)

    def getsockopt(self, level, optname, buflen=None):
        c = self._conn
        if level == socket.IPPROTO_TCP and optname == socket.TCP_NODELAY:
            return int(c.nodelay)
        if level == socket.SOL_SOCKET and optname == socket.SO_KEEPALIVE:
            return int(self._keepalive)
        if level == socket.IPPROTO_TCP and optname == getattr(socket, "TCP_KEEPIDLE", -1):
            return self._keepidle
        if level == socket.IPPROTO_TCP and optname == getattr(socket, "TCP_KEEPINTVL", -1):
            return self._keepintvl
        if level == socket.IPPROTO_TCP and optname == getattr(socket, "TCP_KEEPCNT", -1):
            return self._keepcnt
        if level == socket.SOL_SOCKET and optname == socket.SO_TYPE:
            return socket.SOCK_STREAM
        if level == socket.SOL_SOCKET and optname == socket.SO_ERROR:
            return c.error
        raise self._unsupported(level, optname)


class UserspaceListenSocket(_UserspaceSocketBase):
    """A bound userspace TCP port, as asyncio's Server holds its sockets.

    Server.start_serving() calls listen(), then the loop's _start_serving(), which attaches
    the listener sink; Server.close() calls the loop's _stop_serving(), which calls close().
    """

    def __init__(self, stack, host, port):
        self.stack = stack
        self.host = host                  # None: every address of the interface
        self.port = port
        self.listener = None
        self.backlog = 100
        self.closed = False
        self.reuse_port = False           # create_server(reuse_port=): reported, not needed

    def __repr__(self):
        return f"<fastloop.UserspaceListenSocket {self.getsockname()} listening={self.listener is not None}>"

    def getsockname(self):
        return (self.host or "0.0.0.0", self.port)

    def getpeername(self):
        raise OSError(errno.ENOTCONN, "a listening socket has no peer")

    def listen(self, backlog=100):
        self.backlog = backlog

    def setsockopt(self, level, optname, value, optlen=None):
        pass

    def getsockopt(self, level, optname, buflen=None):
        if level == socket.SOL_SOCKET and optname == socket.SO_TYPE:
            return socket.SOCK_STREAM
        if level == socket.SOL_SOCKET and optname == socket.SO_ACCEPTCONN:
            return int(self.listener is not None)
        if level == socket.SOL_SOCKET and optname == socket.SO_REUSEADDR:
            return 1                      # asyncio sets it on every POSIX server socket
        if level == socket.SOL_SOCKET and optname == getattr(socket, "SO_REUSEPORT", -1):
            return int(self.reuse_port)
        raise self._unsupported(level, optname)

    def close(self):
        if self.closed:
            return
        self.closed = True
        if self.listener is not None:
            self.listener.close()
            self.listener = None
