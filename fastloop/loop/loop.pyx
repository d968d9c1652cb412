# cython: language_level=3
"""fastloop's event loop: asyncio's selector loop whose iteration is a DPDK poll step.

One iteration (`_run_once`, compiled):
    1. rx phase: the device's rx burst → Ethernet/IP → TCP → transports → protocol callbacks,
       and the stack's timers (TCP's wheel);
    2. the kernel side: epoll (the selector) for kernel sockets, pipes, signals, subprocesses
       and the self-pipe of call_soon_threadsafe — with a zero timeout while the stack is
       busy, and (idle="adaptive") a bounded sleep once it has been idle a while;
    3. due call_later/call_at handles join the ready queue, and the ready queue runs, the
       snapshot count, as asyncio does;
    4. tx phase: what the transports queued goes out in one batched tx burst.
Everything kernel-side is asyncio's SelectorEventLoop, inherited; the userspace stack comes
up lazily, the first time an address routes to it (fastloop/loop/routing.py).
"""
import asyncio
import errno
import heapq
import socket

from asyncio import base_events, sslproto, tasks
from asyncio.log import logger

from libc.stdint cimport uint32_t, uint64_t, UINT64_MAX
from fastloop.includes.dpdk cimport fl_now_ns
from fastloop.stack cimport Stack

from fastloop.config import StackConfig
from fastloop.loop import routing
from fastloop.transports.tcp import ConnSink, ListenerSink, TcpTransport
from fastloop.transports.usocket import UserspaceListenSocket

cdef uint64_t ADAPTIVE_SPIN_NS = 200000      # idle this long (200 us) before sleeping
cdef double ADAPTIVE_MAX_SLEEP = 0.001       # a device without rx wake-ups is polled each 1 ms
cdef int MIN_SCHEDULED = base_events._MIN_SCHEDULED_TIMER_HANDLES
cdef double MIN_CANCELLED_FRACTION = base_events._MIN_CANCELLED_TIMER_HANDLES_FRACTION
cdef double MAXIMUM_SELECT_TIMEOUT = base_events.MAXIMUM_SELECT_TIMEOUT
EPHEMERAL_LOW, EPHEMERAL_HIGH = 32768, 60999


class Loop(asyncio.SelectorEventLoop):
    """An asyncio event loop whose network I/O runs on fastloop's userspace stack.

    stack: None (a StackConfig from the FASTLOOP_* environment, brought up on first use),
    a StackConfig, a running Stack (not closed with the loop), or False (kernel only).
    """

    def __init__(self, stack=None, *, selector=None):
        super().__init__(selector)
        self._fl_stack = None
        self._fl_owns_stack = False
        self._fl_config = None
        self._fl_pending_exc = None
        self._fl_bound = {}                  # (host or None, port) -> UserspaceListenSocket
        self._fl_last_work = 0
        if stack is None:
            self._fl_config = StackConfig.from_env()
        elif isinstance(stack, StackConfig):
            self._fl_config = stack.validate()
        elif stack is False:
            self._fl_config = None
        else:
            self._fl_stack = stack
            self._fl_config = stack.config
        self._fl_busy_poll = (self._fl_config is not None
                              and self._fl_config.idle == "busy-poll")

    # ---- the stack ---------------------------------------------------------------------
    @property
    def stack(self):
        """The userspace stack (brought up now if it is not yet); None when disabled."""
        if self._fl_stack is None and self._fl_config is not None:
            from fastloop.stack import Stack as _Stack
            self._fl_stack = _Stack(self._fl_config)
            self._fl_owns_stack = True
        return self._fl_stack

    def _fl_callback_error(self, exc, transport):
        """An exception from a protocol callback run inside the poll step."""
        if isinstance(exc, (SystemExit, KeyboardInterrupt)):
            if self._fl_pending_exc is None:
                self._fl_pending_exc = exc
            return
        self.call_exception_handler({"message": "Exception in a userspace transport callback",
                                     "exception": exc, "transport": transport})

    def close(self):
        if self.is_running():
            raise RuntimeError("Cannot close a running event loop")
        if self.is_closed():
            return
        cdef Stack stack = self._fl_stack
        if stack is not None and stack.tcp is not None:
            for c in stack.tcp.connection_list():   # transports left open warn, as asyncio's do
                c.sink = None
        super().close()
        for lsock in list(self._fl_bound.values()):
            lsock.close()
        self._fl_bound.clear()
        if stack is not None and self._fl_owns_stack:
            self._fl_stack = None
            stack.close()

    # ---- one iteration -------------------------------------------------------------------
    def _run_once(self):
        cdef Stack stack = self._fl_stack
        cdef uint64_t now = 0, wake
        cdef uint32_t got = 0
        cdef Py_ssize_t sched_count, ntodo, i
        if stack is not None:
            now = fl_now_ns()
            got = stack.rx_phase(now)
            if got:
                self._fl_last_work = now
            if self._fl_pending_exc is not None:
                exc, self._fl_pending_exc = self._fl_pending_exc, None
                stack.tx_phase(fl_now_ns())
                raise exc

        scheduled = self._scheduled
        sched_count = len(scheduled)
        if (sched_count > MIN_SCHEDULED and
                self._timer_cancelled_count / sched_count > MIN_CANCELLED_FRACTION):
            scheduled = [h for h in scheduled if not h._cancelled or _unschedule(h)]
            heapq.heapify(scheduled)
            self._scheduled = scheduled
            self._timer_cancelled_count = 0
        else:
            while scheduled and scheduled[0]._cancelled:
                self._timer_cancelled_count -= 1
                handle = heapq.heappop(scheduled)
                handle._scheduled = False

        ready = self._ready
        timeout = None
        if ready or self._stopping:
            timeout = 0
        elif scheduled:
            timeout = min(max(0, scheduled[0]._when - self.time()), MAXIMUM_SELECT_TIMEOUT)
        if stack is not None and timeout != 0:
            if self._fl_busy_poll or now - <uint64_t>self._fl_last_work < ADAPTIVE_SPIN_NS:
                timeout = 0
            else:                                   # adaptive: sleep, bounded by the stack
                wake = stack.next_timer()
                bound = ADAPTIVE_MAX_SLEEP
                if wake != UINT64_MAX:
                    bound = min(bound, (wake - now) / 1e9 if wake > now else 0.0)
                timeout = bound if timeout is None else min(timeout, bound)

        event_list = self._selector.select(timeout)
        self._process_events(event_list)
        event_list = None

        end_time = self.time() + self._clock_resolution
        while scheduled:
            handle = scheduled[0]
            if handle._when >= end_time:
                break
            handle = heapq.heappop(scheduled)
            handle._scheduled = False
            ready.append(handle)

        ntodo = len(ready)
        if stack is not None and ntodo:
            self._fl_last_work = now
        for i in range(ntodo):
            handle = ready.popleft()
            if handle._cancelled:
                continue
            if self._debug:
                self._fl_run_debug(handle)
            else:
                handle._run()
        handle = None
        if stack is not None:
            stack.tx_phase(fl_now_ns())

    def _fl_run_debug(self, handle):
        try:
            self._current_handle = handle
            t0 = self.time()
            handle._run()
            dt = self.time() - t0
            if dt >= self.slow_callback_duration:
                logger.warning("Executing %s took %.3f seconds",
                               base_events._format_handle(handle), dt)
        finally:
            self._current_handle = None

    # ---- TCP: connect ------------------------------------------------------------------
    async def _fl_route(self, host, port, family):
        """The IPv4 address to connect to on the userspace stack, or None: the kernel's."""
        if self._fl_config is None or family not in (0, socket.AF_INET):
            return None
        if routing.connect_goes_to_stack(self._fl_config, host):
            return str(host)
        if routing._ipv4(host) is not None or not isinstance(host, str):
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
            addr = await self._fl_route(host, port, family)
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
        conn, sink = await self._fl_connect(addr, int(port), local_addr)
        return await self._fl_make_transport(conn, sink, protocol_factory(), ssl,
                                             server_hostname, ssl_handshake_timeout,
                                             ssl_shutdown_timeout)

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

    async def _fl_connect(self, addr, port, local_addr):
        stack = self.stack
        sink = ConnSink()
        waiter = self.create_future()
        sink.waiter = waiter
        lhost, lport = local_addr if local_addr else (None, 0)
        conn = stack.tcp.connect(addr, port, sink, local_host=lhost or None,
                                 local_port=int(lport or 0))
        try:
            await waiter
        except BaseException:
            if conn.state_name != "CLOSED":
                conn.sink = None
                conn.abort()
            raise
        return conn, sink

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
        stack_host = False                          # False: the kernel's; else where to bind
        if (sock is None and self._fl_config is not None
                and family in (socket.AF_UNSPEC, socket.AF_INET)):
            if host in routing.WILDCARDS:
                stack_host = None
            elif isinstance(host, str) and routing._ipv4(host) is None:
                stack_host = await self._fl_listen_name(host, port, flags)
            elif routing.listen_goes_to_stack(self._fl_config, host):
                stack_host = host
        if stack_host is False:
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
        lsock = self._fl_bind(stack_host, int(port or 0))
        lsock.reuse_port = bool(reuse_port)         # what getsockopt() answers, as asyncio's
        server = base_events.Server(self, [lsock], protocol_factory, ssl, backlog,
                                    ssl_handshake_timeout, ssl_shutdown_timeout)
        if start_serving:
            server._start_serving()
            await tasks.sleep(0)                    # as asyncio: let the server start
        return server

    async def _fl_listen_name(self, host, port, flags):
        """A host name listens where its IPv4 address routes, as create_connection resolves
        one: start_server(cb, 'localhost') and open_connection('localhost') must meet.
        The address to bind on the stack, or False: the kernel's (which reports errors)."""
        try:
            infos = await self.getaddrinfo(host, port, family=socket.AF_INET,
                                           type=socket.SOCK_STREAM, flags=flags)
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


def _unschedule(handle):
    handle._scheduled = False
    return False
