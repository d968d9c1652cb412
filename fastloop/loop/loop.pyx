# cython: language_level=3
"""fastloop's event loop: asyncio's selector loop whose iteration is a DPDK poll step.

One iteration (`_run_once`, in C: fastloop/loop/core.pyx):
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
import selectors
import socket
import sys
import threading

from asyncio import base_events, events, sslproto, tasks
from asyncio.log import logger

from cpython.exc cimport PyErr_CheckSignals
from fastloop.includes.dpdk cimport fl_now_ns
from fastloop.stack cimport Stack
from fastloop.loop.handles cimport Handle, TimerHandle, new_handle, new_timer
from fastloop.loop.core cimport LoopCore

from fastloop.config import StackConfig
from fastloop.loop import routing
from fastloop.transports.tcp import ConnSink, ListenerSink, TcpTransport
from fastloop.transports.usocket import UserspaceListenSocket
from fastloop.transports.udp import DatagramSink, DatagramTransport

EPHEMERAL_LOW, EPHEMERAL_HIGH = 32768, 60999
heappush = heapq.heappush
_Future = asyncio.Future                         # the C implementations (_asyncio)
_Task = asyncio.Task


cdef TimerHandle _schedule(object loop, double when, object callback, tuple args,
                           object context, str method):
    """call_at and call_later: asyncio's checks, then a TimerHandle on the heap."""
    cdef LoopCore core = loop._fl_core
    if core.closed:
        raise RuntimeError("Event loop is closed")
    if core.debug:
        loop._check_thread()
        loop._check_callback(callback, method)
    cdef TimerHandle t = new_timer(when, callback, args, loop, context, core.debug)
    heappush(core.scheduled, t)
    t._scheduled = True
    return t


cdef int _iterate(LoopCore core, object loop) except -1:
    while True:
        core.run_once()
        PyErr_CheckSignals()                    # Ctrl-C between iterations, as in Python
        if loop._stopping:
            return 0


class Loop(asyncio.SelectorEventLoop):
    """An asyncio event loop whose network I/O runs on fastloop's userspace stack.

    stack: None (a StackConfig from the FASTLOOP_* environment, brought up on first use),
    a StackConfig, a running Stack (not closed with the loop), or False (kernel only).
    """

    def __init__(self, stack=None, *, selector=None):
        if selector is None:
            selector = selectors.EpollSelector()      # the core waits on its epoll fd
        super().__init__(selector)
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
        self._fl_core = LoopCore(self, selector, self._fl_config is not None
                                 and self._fl_config.idle == "busy-poll")
        if self._fl_stack is not None:
            (<LoopCore>self._fl_core).attach_stack(self._fl_stack)

    # ---- the stack ---------------------------------------------------------------------
    @property
    def stack(self):
        """The userspace stack (brought up now if it is not yet); None when disabled."""
        if self._fl_stack is None and self._fl_config is not None:
            from fastloop.stack import Stack as _Stack
            self._fl_stack = _Stack(self._fl_config)
            self._fl_owns_stack = True
            (<LoopCore>self._fl_core).attach_stack(self._fl_stack)
        return self._fl_stack

    def _fl_callback_error(self, exc, transport):
        """An exception from a protocol callback run inside the poll step."""
        if isinstance(exc, (SystemExit, KeyboardInterrupt)):
            core = <LoopCore>self._fl_core
            if core.pending_exc is None:
                core.pending_exc = exc
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
        (<LoopCore>self._fl_core).closed = True
        (<LoopCore>self._fl_core).stack = None      # the selector (and its epoll fd) is closed
        for lsock in list(self._fl_bound.values()):
            lsock.close()
        self._fl_bound.clear()
        if stack is not None and self._fl_owns_stack:
            self._fl_stack = None
            stack.close()

    # ---- callbacks: asyncio's call_soon/call_at/call_later, compiled ---------------------
    def time(self):
        return fl_now_ns() * 1e-9                   # CLOCK_MONOTONIC, as time.monotonic()

    def call_soon(self, callback, *args, context=None):
        cdef LoopCore core = self._fl_core
        if core.closed:
            raise RuntimeError("Event loop is closed")
        if core.debug:
            self._check_thread()
            self._check_callback(callback, "call_soon")
        cdef Handle h = new_handle(callback, args, self, context, core.debug)
        core.ready.append(h)
        return h

    def _call_soon(self, callback, args, context):
        cdef Handle h = new_handle(callback, tuple(args), self, context,
                                  (<LoopCore>self._fl_core).debug)
        (<LoopCore>self._fl_core).ready.append(h)
        return h

    def call_at(self, when, callback, *args, context=None):
        if when is None:
            raise TypeError("when cannot be None")
        return _schedule(self, when, callback, args, context, "call_at")

    def call_later(self, delay, callback, *args, context=None):
        if delay is None:
            raise TypeError("delay must not be None")
        return _schedule(self, fl_now_ns() * 1e-9 + delay, callback, args, context,
                         "call_later")

    def create_future(self):
        return _Future(loop=self)

    def create_task(self, coro, *, name=None, context=None):
        if self._task_factory is not None:           # the factory's own rules, as asyncio's
            return super().create_task(coro, name=name, context=context)
        if (<LoopCore>self._fl_core).closed:
            raise RuntimeError("Event loop is closed")
        task = _Task(coro, loop=self, name=name, context=context)
        if task._source_traceback:
            del task._source_traceback[-1]
        return task

    # ---- one iteration ---------------------------------------------------------------
    def _run_once(self):
        (<LoopCore>self._fl_core).run_once()

    def run_forever(self):
        """asyncio's run_forever, with the iterations in C."""
        if hasattr(base_events.BaseEventLoop, "_run_forever_setup"):     # Python 3.12+
            self._run_forever_setup()
            try:
                _iterate(<LoopCore>self._fl_core, self)
            finally:
                self._run_forever_cleanup()
            return
        self._check_closed()
        self._check_running()
        self._set_coroutine_origin_tracking(self._debug)
        old_agen_hooks = sys.get_asyncgen_hooks()
        try:
            self._thread_id = threading.get_ident()
            sys.set_asyncgen_hooks(firstiter=self._asyncgen_firstiter_hook,
                                   finalizer=self._asyncgen_finalizer_hook)
            events._set_running_loop(self)
            _iterate(<LoopCore>self._fl_core, self)
        finally:
            self._stopping = False
            self._thread_id = None
            events._set_running_loop(None)
            self._set_coroutine_origin_tracking(False)
            sys.set_asyncgen_hooks(*old_agen_hooks)

    def set_debug(self, enabled):
        super().set_debug(enabled)
        core = getattr(self, "_fl_core", None)       # BaseEventLoop.__init__ calls us first
        if core is not None:
            (<LoopCore>core).debug = bool(enabled)

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
        conn = self.stack.tcp.connect(addr, int(port), sink, local_host=lhost or None,
                                      local_port=int(lport or 0))
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

    # ---- UDP ---------------------------------------------------------------------------
    async def create_datagram_endpoint(self, protocol_factory, local_addr=None,
                                       remote_addr=None, *, family=0, sock=None, **kw):
        raddr = None
        userspace = False
        if (sock is None and self._fl_config is not None
                and family in (0, socket.AF_INET) and (local_addr or remote_addr)
                and not isinstance(local_addr, str) and not isinstance(remote_addr, str)):
            if remote_addr:
                raddr = await self._fl_route(remote_addr[0], remote_addr[1], family)
                userspace = raddr is not None and (
                    not local_addr or routing.listen_goes_to_stack(self._fl_config,
                                                                   local_addr[0]))
            else:
                userspace = routing.listen_goes_to_stack(self._fl_config, local_addr[0])
        if not userspace:
            return await super().create_datagram_endpoint(
                protocol_factory, local_addr, remote_addr, family=family, sock=sock, **kw)
        stack = self.stack
        sink = DatagramSink()
        lhost, lport = local_addr if local_addr else (None, 0)
        ep = stack.udp.bind(sink, host=None if lhost in routing.WILDCARDS else lhost,
                            port=int(lport or 0))
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
        transport = DatagramTransport(self, ep, sink, protocol, address, waiter)
        try:
            await waiter
        except BaseException:
            transport.close()
            raise
        return transport, protocol
