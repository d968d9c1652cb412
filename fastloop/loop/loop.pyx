# cython: language_level=3
"""fastloop's event loop: asyncio's selector loop whose iteration is a DPDK poll step.

    class Loop(LoopAPI, asyncio.SelectorEventLoop)      (this file: the stack, routing)
    cdef class LoopAPI(LoopCore)                         (api.pyx: asyncio's API, compiled)
    cdef class LoopCore                                  (core.pyx: state, one iteration)

The two C bases come first in the MRO: their methods override asyncio's, and their C fields
are asyncio's own attributes (_ready, _stopping, _closed, _debug, ...), so the rest of
asyncio's Python code (sockets, pipes, subprocesses, servers) works on them unchanged.

One iteration (`run_once`, in C: fastloop/loop/core.pyx):
    1. rx phase: the device's rx burst → Ethernet/IP → TCP → transports → protocol callbacks,
       and the stack's timers (TCP's wheel);
    2. the kernel side: epoll (the selector) for kernel sockets, pipes, signals, subprocesses
       and the eventfd of call_soon_threadsafe — with a zero timeout while the stack is
       busy, and (idle="adaptive") a bounded sleep once it has been idle a while;
    3. due call_later/call_at handles join the ready queue, and the ready queue runs, the
       snapshot count, as asyncio does;
    4. tx phase: what the transports queued goes out in one batched tx burst.
The userspace stack comes up lazily, the first time an address routes to it
(fastloop/loop/routing.py).
"""
import asyncio
import errno
import selectors
import socket

from collections.abc import Iterable

from asyncio import base_events, sslproto, tasks

from fastloop.stack cimport Stack
from fastloop.loop.core cimport LoopCore

from fastloop.config import StackConfig
from fastloop.loop import routing
from fastloop.loop.api import LoopAPI
from fastloop.transports.tcp import ConnSink, ListenerSink, TcpTransport
from fastloop.transports.usocket import UserspaceListenSocket
from fastloop.transports.udp import DatagramSink, DatagramTransport

EPHEMERAL_LOW, EPHEMERAL_HIGH = 32768, 60999


class Loop(LoopAPI, asyncio.SelectorEventLoop):
    """An asyncio event loop whose network I/O runs on fastloop's userspace stack.

    stack: None (a StackConfig from the FASTLOOP_* environment, brought up on first use),
    a StackConfig, a running Stack (not closed with the loop), or False (kernel only).
    """

    def __init__(self, stack=None, *, selector=None):
        if selector is None:
            selector = selectors.EpollSelector()      # the core waits on its epoll fd
        super().__init__(selector)
        if type(self).call_soon is LoopAPI.call_soon:
            # asyncio's C Task and Future look call_soon up with getattr, which binds a new
            # method object per call (~300 instructions, 3% of a task's cost): one bound
            # builtin method in the instance dict is found instead, and called directly
            # (unless a subclass overrides call_soon). callgrind, per op: task 37.0k -> 35.5k,
            # future 9.55k -> 9.37k, call_soon 2.60k -> 2.65k (a dict hit, not unbound)
            self.call_soon = self.call_soon
        self._fl_stack = None
        self._fl_owns_stack = False
        self._fl_config = None
        self._fl_bound = {}                  # (host or None, port) -> UserspaceListenSocket
        self._fl_literals = {}               # IPv4 literal -> itself (stack) or "" (kernel)
        if stack is None:
            self._fl_config = StackConfig.from_env()
        elif isinstance(stack, StackConfig):
            self._fl_config = stack.validate()
        elif stack is False:
            self._fl_config = None
        else:
            self._fl_stack = stack
            self._fl_config = stack.config
        (<LoopCore>self).setup_core(self._selector, self._fl_config is not None
                                    and self._fl_config.idle == "busy-poll")
        if self._fl_stack is not None:
            (<LoopCore>self).attach_stack(self._fl_stack)

    # ---- the stack ---------------------------------------------------------------------
    @property
    def stack(self):
        """The userspace stack (brought up now if it is not yet); None when disabled."""
        if self._fl_stack is None and self._fl_config is not None:
            from fastloop.stack import Stack as _Stack
            self._fl_stack = _Stack(self._fl_config)
            self._fl_owns_stack = True
            (<LoopCore>self).attach_stack(self._fl_stack)
        return self._fl_stack

    def _fl_callback_error(self, exc, transport):
        """An exception from a protocol callback run inside the poll step."""
        if isinstance(exc, (SystemExit, KeyboardInterrupt)):
            if (<LoopCore>self).pending_exc is None:
                (<LoopCore>self).pending_exc = exc
            return
        self.call_exception_handler({"message": "Exception in a userspace transport callback",
                                     "exception": exc, "transport": transport})

    def close(self):
        if self.is_running():
            raise RuntimeError("Cannot close a running event loop")
        was_closed = self._closed
        cdef Stack stack = self._fl_stack
        if not was_closed and stack is not None and stack.tcp is not None:
            for c in stack.tcp.connection_list():   # transports left open warn, as asyncio's do
                c.sink = None
        super().close()
        if was_closed:
            return
        (<LoopCore>self).attach_stack(None)     # the selector (and its epoll fd) is closed
        for lsock in list(self._fl_bound.values()):
            lsock.close()
        self._fl_bound.clear()
        if stack is not None and self._fl_owns_stack:
            self._fl_stack = None
            stack.close()

    # ---- signals: the wakeup fd is asyncio's socketpair, made on first use (core.pyx) --
    def add_signal_handler(self, sig, callback, *args):
        if self._csock is None and not self._closed:
            self._fl_make_signal_pipe()
        return super().add_signal_handler(sig, callback, *args)

    # ---- TCP: connect ------------------------------------------------------------------
    def _fl_route_literal(self, host, family):
        """For an IPv4 literal: the address on the userspace stack, or "" for the kernel's
        (decided once per loop); None when host is a name (or the loop has no stack)."""
        if self._fl_config is None or family not in (0, socket.AF_INET):
            return ""
        literal = self._fl_literals.get(host)
        if literal is None and isinstance(host, str) and routing._ipv4(host) is not None:
            literal = self._fl_literals[host] = (
                str(host) if routing.connect_goes_to_stack(self._fl_config, host) else "")
            if len(self._fl_literals) > 4096:
                self._fl_literals.clear()
        return literal

    async def _fl_route(self, host, port, family):
        """The IPv4 address to connect to on the userspace stack, or None: the kernel's."""
        literal = self._fl_route_literal(host, family)
        if literal is not None:
            return literal or None
        if not isinstance(host, str):
            return None
        try:
            infos = await self.getaddrinfo(host, port, family=socket.AF_INET,
                                           type=socket.SOCK_STREAM)
        except OSError:
            return None                             # the kernel path reports it
        for *_, sockaddr in infos:
            if routing.connect_goes_to_stack(self._fl_config, sockaddr[0]):
                return sockaddr[0]
        return None

    async def create_connection(self, protocol_factory, host=None, port=None, *, ssl=None,
                                family=0, sock=None, local_addr=None, server_hostname=None,
                                ssl_handshake_timeout=None, ssl_shutdown_timeout=None, **kw):
        addr = None
        if sock is None and host is not None and port is not None:
            addr = self._fl_route_literal(host, family)    # a literal: no coroutine to await
            if addr is None:
                addr = await self._fl_route(host, port, family)
            addr = addr or None
        if addr is None:
            return await super().create_connection(
                protocol_factory, host, port, ssl=ssl, family=family, sock=sock,
                local_addr=local_addr, server_hostname=server_hostname,
                ssl_handshake_timeout=ssl_handshake_timeout,
                ssl_shutdown_timeout=ssl_shutdown_timeout, **kw)
        if server_hostname is not None and not ssl:
            raise ValueError("server_hostname is only meaningful with ssl")
        if server_hostname is None and ssl:
            server_hostname = host
        if ssl_handshake_timeout is not None and not ssl:
            raise ValueError("ssl_handshake_timeout is only meaningful with ssl")
        if ssl_shutdown_timeout is not None and not ssl:
            raise ValueError("ssl_shutdown_timeout is only meaningful with ssl")
        if local_addr is not None:
            local_addr = await self._fl_local_addr(local_addr)
        # the connect and the transport in this coroutine, not two more per connection
        lhost, lport = local_addr if local_addr else (None, 0)
        sink = ConnSink()
        waiter = sink.waiter = self.create_future()
        conn = self._fl_tcp_connect(addr, int(port), sink, lhost, lport)
        try:
            await waiter
        except BaseException:
            if conn.state_name != "CLOSED":
                conn.sink = None
                conn.abort()
            raise
        protocol = protocol_factory()
        if ssl:
            return await self._fl_make_transport(conn, sink, protocol, ssl, server_hostname,
                                                 ssl_handshake_timeout, ssl_shutdown_timeout)
        waiter = self.create_future()
        transport = TcpTransport(self, conn, sink, protocol, waiter=waiter)
        try:
            await waiter
        except BaseException:
            transport.close()
            raise
        return transport, protocol

    def _fl_tcp_connect(self, addr, port, sink, lhost, lport):
        """The stack's connect: the one place a create_connection takes the userspace stack
        (the conformance runner records calls here)."""
        return self.stack.tcp.connect(addr, port, sink, local_host=lhost or None,
                                      local_port=int(lport or 0))

    async def _fl_local_addr(self, local_addr):
        """local_addr as an IPv4 (host, port): a name is resolved, as asyncio does, and one
        with no IPv4 address is asyncio's OSError."""
        lhost, lport = local_addr
        if not lhost or routing._ipv4(lhost) is not None:
            return local_addr
        infos = await self.getaddrinfo(lhost, lport, family=socket.AF_INET,
                                       type=socket.SOCK_STREAM)
        for fam, *_, sockaddr in infos:
            if fam == socket.AF_INET:
                return sockaddr[0], sockaddr[1]
        raise OSError(f"no matching local address with family={socket.AF_INET} found")

    async def _fl_make_transport(self, conn, sink, protocol, ssl, server_hostname,
                                 ssl_handshake_timeout, ssl_shutdown_timeout):
        waiter = self.create_future()
        if ssl:
            sslcontext = None if isinstance(ssl, bool) else ssl
            if not sslcontext:
                sslcontext = sslproto._create_transport_context(False, server_hostname)
            ssl_protocol = sslproto.SSLProtocol(
                self, protocol, sslcontext, waiter, server_side=False,
                server_hostname=server_hostname, ssl_handshake_timeout=ssl_handshake_timeout,
                ssl_shutdown_timeout=ssl_shutdown_timeout)
            transport = TcpTransport(self, conn, sink, ssl_protocol)
            result = ssl_protocol._app_transport
        else:
            transport = result = TcpTransport(self, conn, sink, protocol, waiter=waiter)
        try:
            await waiter
        except BaseException:
            transport.close()
            raise
        return result, protocol

    # ---- TCP: servers ------------------------------------------------------------------
    async def create_server(self, protocol_factory, host=None, port=None, *,
                            family=socket.AF_UNSPEC, flags=socket.AI_PASSIVE, sock=None,
                            backlog=100, ssl=None, reuse_address=None, reuse_port=None,
                            ssl_handshake_timeout=None, ssl_shutdown_timeout=None,
                            start_serving=True, **kw):
        stack_hosts = False                        # False: the kernel's; else where to bind
        if (sock is None and self._fl_config is not None and (host, port) != (None, None)
                and family in (socket.AF_UNSPEC, socket.AF_INET)):
            stack_hosts = await self._fl_listen_hosts(host, port, flags)
        if stack_hosts is False:
            return await super().create_server(
                protocol_factory, host, port, family=family, flags=flags, sock=sock,
                backlog=backlog, ssl=ssl, reuse_address=reuse_address, reuse_port=reuse_port,
                ssl_handshake_timeout=ssl_handshake_timeout,
                ssl_shutdown_timeout=ssl_shutdown_timeout, start_serving=start_serving, **kw)
        if isinstance(ssl, bool):
            raise TypeError("ssl argument must be an SSLContext or None")
        if ssl_handshake_timeout is not None and ssl is None:
            raise ValueError("ssl_handshake_timeout is only meaningful with ssl")
        if ssl_shutdown_timeout is not None and ssl is None:
            raise ValueError("ssl_shutdown_timeout is only meaningful with ssl")
        lsocks = []
        try:
            for stack_host in stack_hosts:
                lsocks.append(self._fl_bind(stack_host, int(port or 0)))
        except BaseException:
            for lsock in lsocks:                    # as asyncio: all the hosts or none
                self._stop_serving(lsock)
            raise
        for lsock in lsocks:
            lsock.reuse_port = bool(reuse_port)     # what getsockopt() answers, as asyncio's
        server = base_events.Server(self, lsocks, protocol_factory, ssl, backlog,
                                    ssl_handshake_timeout, ssl_shutdown_timeout)
        if start_serving:
            server._start_serving()
            await tasks.sleep(0)                    # as asyncio: let the server start
        return server

    async def _fl_listen_hosts(self, host, port, flags):
        """Where create_server(host) listens on the userspace stack: the hosts to bind (None:
        the wildcard), or False: the kernel's. A list of hosts (asyncio takes one) is the
        stack's when every host in it is; a list that mixes in a kernel address, the kernel's."""
        if isinstance(host, str) or host is None or not isinstance(host, Iterable):
            hosts = [host]
        else:
            hosts = list(host)
        binds = []
        for h in hosts:
            if h in routing.WILDCARDS:
                where = None
            elif isinstance(h, str) and routing._ipv4(h) is None:
                where = await self._fl_listen_name(h, port, flags, socket.SOCK_STREAM)
            elif routing.listen_goes_to_stack(self._fl_config, h):
                where = h
            else:
                return False
            if where is False:
                return False
            if where not in binds:
                binds.append(where)
        return binds or False

    async def _fl_listen_name(self, host, port, flags, type):
        """A host name listens where its IPv4 address routes, as create_connection resolves
        one: start_server(cb, 'localhost') and open_connection('localhost') must meet.
        The address to bind on the stack, or False: the kernel's (which reports errors)."""
        try:
            infos = await self.getaddrinfo(host, port, family=socket.AF_INET, type=type,
                                           flags=flags)
        except OSError:
            return False
        for fam, *_, sockaddr in infos:
            if fam == socket.AF_INET and routing.listen_goes_to_stack(self._fl_config,
                                                                      sockaddr[0]):
                return sockaddr[0]
        return False

    def _fl_bind(self, host, int port):
        """Reserve a userspace TCP port (EADDRINUSE as bind(2) would say it)."""
        stack = self.stack
        if not 0 <= port < 65536:
            raise OverflowError("port must be 0-65535.")
        if port == 0:
            for p in range(EPHEMERAL_LOW, EPHEMERAL_HIGH + 1):
                if not self._fl_port_taken(host, p):
                    port = p
                    break
            else:
                raise OSError(errno.EADDRINUSE, "no free userspace TCP port left")
        elif self._fl_port_taken(host, port):
            raise OSError(errno.EADDRINUSE, f"error while attempting to bind on address "
                                            f"{(host or '0.0.0.0', port)!r}: address already in use")
        lsock = UserspaceListenSocket(stack, host, port)
        self._fl_bound[(host, port)] = lsock
        return lsock

    def _fl_port_taken(self, host, port):
        if host is None:
            return any(p == port for (_, p) in self._fl_bound)
        return (host, port) in self._fl_bound or (None, port) in self._fl_bound

    def _start_serving(self, protocol_factory, sock, sslcontext=None, server=None,
                       backlog=100, ssl_handshake_timeout=None, ssl_shutdown_timeout=None):
        if not isinstance(sock, UserspaceListenSocket):
            return super()._start_serving(protocol_factory, sock, sslcontext, server, backlog,
                                          ssl_handshake_timeout, ssl_shutdown_timeout)
        if sock.listener is not None or sock.closed:
            return
        sink = ListenerSink(self, protocol_factory, sslcontext, server, ssl_handshake_timeout,
                            ssl_shutdown_timeout)
        sock.listener = sock.stack.tcp.listen(sock.port, sink, host=sock.host, backlog=backlog)

    def _stop_serving(self, sock):
        if not isinstance(sock, UserspaceListenSocket):
            return super()._stop_serving(sock)
        sock.close()
        if self._fl_bound.get((sock.host, sock.port)) is sock:
            del self._fl_bound[(sock.host, sock.port)]

    # ---- UDP ---------------------------------------------------------------------------
    async def create_datagram_endpoint(self, protocol_factory, local_addr=None,
                                       remote_addr=None, *, family=0, sock=None, **kw):
        route = None
        if (sock is None and self._fl_config is not None
                and family in (0, socket.AF_INET) and (local_addr or remote_addr)
                and not isinstance(local_addr, str) and not isinstance(remote_addr, str)):
            route = await self._fl_udp_route(local_addr, remote_addr, family)
        if route is None:
            return await super().create_datagram_endpoint(
                protocol_factory, local_addr, remote_addr, family=family, sock=sock, **kw)
        lhost, raddr = route
        ep = self._fl_udp_bind(lhost, int(local_addr[1] or 0) if local_addr else 0)
        address = None
        try:
            if raddr is not None:
                ep.connect(raddr, int(remote_addr[1]))
                address = (raddr, int(remote_addr[1]))
            protocol = protocol_factory()
        except BaseException:
            ep.close()
            raise
        waiter = self.create_future()
        transport = DatagramTransport(self, ep, ep.sink, protocol, address, waiter)
        try:
            await waiter
        except BaseException:
            transport.close()
            raise
        return transport, protocol

    async def _fl_udp_route(self, local_addr, remote_addr, family):
        """(local host to bind, None: every address; remote IPv4 or None) when the endpoint
        is the userspace stack's, else None. Names are resolved first, as for TCP: both
        ends must route to the stack (the connect rule for remote_addr, the listen rule for
        local_addr)."""
        raddr = None
        if remote_addr:
            raddr = await self._fl_route(remote_addr[0], remote_addr[1], family)
            if raddr is None:
                return None
        lhost = local_addr[0] if local_addr else None
        if lhost in routing.WILDCARDS:
            return None, raddr
        if isinstance(lhost, str) and routing._ipv4(lhost) is None:
            lhost = await self._fl_listen_name(lhost, local_addr[1], 0, socket.SOCK_DGRAM)
            return None if lhost is False else (lhost, raddr)
        return (lhost, raddr) if routing.listen_goes_to_stack(self._fl_config, lhost) else None

    def _fl_udp_bind(self, host, int port):
        return self.stack.udp.bind(DatagramSink(), host=host, port=port)
