# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The TCP layer of one interface: the connection table, listeners, ephemeral ports, the
timer wheel, and the non-blocking, callback-driven API the event loop builds transports on.

    layer = TcpLayer(stack.iface)
    listener = layer.listen(8080, listener_sink)      # TcpListenerSink.on_accept -> TcpSink
    conn = layer.connect("10.77.0.1", 80, sink)       # TcpSink gets on_established, on_data...
"""
import errno
import ipaddress
import os

from libc.errno cimport ECONNABORTED
from libc.stdint cimport uint8_t
from fastloop.includes.dpdk cimport fl_mbuf, fl_now_ns
from fastloop.net.wire.ipv4 cimport Ipv4Header
from fastloop.net.wire.addr cimport ipv4_from_str
from fastloop.net.timer_wheel cimport TimerWheel
from fastloop.net.tcp.isn cimport tcp_secrets_from_bytes, tcp_isn
from fastloop.net.tcp.rcvbuf cimport rcvbuf_held, rcvbuf_release
from fastloop.net.tcp.sndbuf cimport sndbuf_free
from fastloop.net.tcp.congestion cimport CC_NEWRENO, CC_CUBIC
from fastloop.net.tcp.output cimport tcp_output, rcv_window, send_syn
from fastloop.net.tcp.lifecycle cimport conn_new, conn_remove, conn_reset
from fastloop.net.tcp.timers cimport tcp_timers
from fastloop.net.tcp.input cimport tcp_input
from fastloop.net.tcp.counters cimport TCP_STAT_COUNT, TCP_ACTIVE_OPENS, tcp_stat_name
from fastloop.net.tcp.tcb cimport *
from fastloop.net.tcp.conn_table cimport ConnTable

cdef uint32_t _addr(str host) except? 0:
    cdef uint32_t a
    if ipv4_from_str(host, &a):
        return a
    return int(ipaddress.IPv4Address(host))      # the rest, and ipaddress's error


EPHEMERAL_LOW = 32768                 # Linux's ip_local_port_range
EPHEMERAL_HIGH = 60999
MS = 1000000


cdef class TcpLayer(TcpLayerBase):
    def __init__(self, Interface iface, *, uint32_t sndbuf=262144, uint32_t rcvbuf=262144,
                 sndbuf_max=None, rcvbuf_max=None,
                 double rto_min=0.2, double rto_max=60.0, double rto_initial=1.0,
                 double delayed_ack=0.04, double time_wait=60.0, uint32_t time_wait_max=65536,
                 double connect_timeout=75.0,
                 int syn_retries=6, int retries=15, str congestion="cubic",
                 int challenge_ack_limit=1000, bint syncookies=True,
                 uint32_t reassembly_mbufs=4095, now_ns=None):
        """Attach TCP to an interface. Times in seconds; RTO bounds per RFC 6298 §2 (a 200 ms
        minimum, as Linux, instead of the RFC's conservative 1 s). Buffers start at
        sndbuf/rcvbuf bytes and grow to *_max (None: the same, no growth) for a fast flow."""
        cdef bytes secret = os.urandom(32)
        if congestion not in ("cubic", "newreno"):
            raise ValueError("congestion is 'cubic' or 'newreno'")
        self.iface = iface
        self.wheel = TimerWheel(MS, fl_now_ns() if now_ns is None else now_ns)
        tcp_secrets_from_bytes(&self.secrets, <const uint8_t *>secret)
        self.connections = ConnTable()
        self.listeners = {}
        self.output_list = []
        self.output_spare = []
        self.data_list = []
        self.next_ephemeral = EPHEMERAL_LOW + (int.from_bytes(os.urandom(2), "little")
                                              % (EPHEMERAL_HIGH - EPHEMERAL_LOW))
        self.sndbuf_size = sndbuf
        self.rcvbuf_size = rcvbuf
        self.sndbuf_max = max(sndbuf, sndbuf_max or 0)
        self.rcvbuf_max = max(rcvbuf, rcvbuf_max or 0)
        self.rto_min_ns = <uint64_t>(rto_min * 1e9)
        self.rto_max_ns = <uint64_t>(rto_max * 1e9)
        self.rto_initial_ns = <uint64_t>(rto_initial * 1e9)
        self.delayed_ack_ns = <uint64_t>(delayed_ack * 1e9)
        self.time_wait_ns = <uint64_t>(time_wait * 1e9)
        self.time_wait_max = time_wait_max
        self.time_wait_count = 0
        self.connect_timeout_ns = <uint64_t>(connect_timeout * 1e9)
        self.syn_retries_max = syn_retries
        self.retries_max = retries
        self.cc_algorithm = CC_CUBIC if congestion == "cubic" else CC_NEWRENO
        self.challenge_ack_limit = challenge_ack_limit
        self.syncookies = syncookies
        self.ooo_budget.held = 0
        self.ooo_budget.limit = reassembly_mbufs
        iface.tcp = self

    # ---- what the interface calls ----------------------------------------------------
    cdef void input(self, fl_mbuf *m, Ipv4Header *ip, bint broadcast, uint64_t now) noexcept:
        tcp_input(self, m, ip, now)

    cdef void rx_done(self, uint64_t now) noexcept:
        cdef list todo = self.data_list
        cdef TcpConnection c
        if not todo:
            return
        self.data_list = []
        for c in todo:
            c.deliver_data()

    cdef void timers(self, uint64_t now) noexcept:
        tcp_timers(self, now)

    cdef void output(self, uint64_t now) noexcept:
        cdef list todo = self.output_list
        cdef TcpConnection c
        if not todo:
            return
        # two lists taking turns: no list allocated per poll step (nor for the GC to count)
        self.output_list = self.output_spare if self.output_spare is not None else []
        self.output_spare = None
        for c in todo:
            c.in_output_list = False
            if c.state != CLOSED:
                tcp_output(self, c, now)
        todo.clear()
        self.output_spare = todo

    cdef int64_t held(self) noexcept:
        cdef int64_t n = 0
        cdef TcpConnection c
        for c in self.connections.values():
            n += rcvbuf_held(&c.rcv)
        return n

    cdef void release_all(self) noexcept:
        """The interface is closing: every connection ends here, without a word on the wire."""
        cdef TcpConnection c
        for c in list(self.connections.values()):
            conn_remove(self, c, ECONNABORTED)
        self.listeners.clear()

    # ---- what connections ask (TcpConnection's methods) -------------------------------
    cdef void conn_written(self, TcpConnection c) noexcept:
        if c.state == ESTABLISHED or c.state == CLOSE_WAIT:
            c.schedule_output()

    cdef void conn_read(self, TcpConnection c) noexcept:
        """Reading made room: a window update goes at once only if the window the peer knows
        is at most half the largest and the new one at least doubles it (as Linux); else
        the next ACK carries it, so ACKs stay delayed (RFC 1122 §4.2.3.2, RFC 9293
        §3.8.6.2.2: the update is owed when the window was closing, not per MSS read)."""
        cdef uint32_t cur = c.rcv_adv - c.rcv_nxt
        cdef uint32_t most = min(c.rcv.limit, <uint32_t>65535 << c.rcv_wscale)
        cdef uint32_t new
        if c.state == ESTABLISHED or c.state == FIN_WAIT_1 or c.state == FIN_WAIT_2:
            new = rcv_window(c)
            if new > cur and cur <= most // 2 and new >= 2 * cur:
                c.ack_pending = True
                c.schedule_output()

    cdef void conn_shutdown(self, TcpConnection c) noexcept:
        if c.fin_queued or c.state == CLOSED or c.state == TIME_WAIT:
            return
        if c.state == SYN_SENT:                    # RFC 9293 §3.10.4: nothing to tell the peer
            conn_remove(self, c, 0)
            return
        c.fin_queued = True
        if c.state == ESTABLISHED or c.state == SYN_RECEIVED:
            c.state = FIN_WAIT_1 if c.state == ESTABLISHED else c.state
        elif c.state == CLOSE_WAIT:
            c.state = LAST_ACK
        c.schedule_output()

    cdef void conn_close(self, TcpConnection c) noexcept:
        if c.state == CLOSED:
            return
        c.app_closed = True
        if c.rcv.bytes:                            # unread data: reset (RFC 2525 §2.17)
            conn_reset(self, c, 0, fl_now_ns())
            return
        self.conn_shutdown(c)

    cdef void conn_abort(self, TcpConnection c) noexcept:
        if c.state != CLOSED:
            conn_reset(self, c, ECONNABORTED, fl_now_ns())

    cdef void listener_close(self, TcpListener l) noexcept:
        l.closed = True
        if self.listeners.get((l.addr, l.port)) is l:
            del self.listeners[(l.addr, l.port)]

    # ---- the API ------------------------------------------------------------------------
    def listen(self, int port, TcpListenerSink sink, str host=None, int backlog=128):
        """Accept connections on port (host None: every address of the interface)."""
        cdef uint32_t addr = _addr(host) if host else 0
        if not 0 < port < 65536:
            raise OSError(errno.EINVAL, f"port {port} out of range")
        if (addr, port) in self.listeners:
            raise OSError(errno.EADDRINUSE, f"port {port} is already listening")
        cdef TcpListener l = TcpListener.__new__(TcpListener)
        l.addr = addr
        l.port = port
        l.backlog = max(1, backlog)
        l.sink = sink
        l.layer = self
        self.listeners[(addr, port)] = l
        return l

    def connect(self, str host, int port, TcpSink sink, str local_host=None, int local_port=0,
                now_ns=None, iss=None):
        """Open a connection (SYN now, on the next flush); the sink hears how it goes.
        now_ns (virtual clock) and iss (our initial sequence number) are for tests."""
        cdef uint32_t raddr = _addr(host)
        cdef uint32_t laddr
        cdef uint64_t now = fl_now_ns() if now_ns is None else now_ns
        if not 0 < port < 65536:
            raise OSError(errno.EINVAL, f"port {port} out of range")
        if local_host:
            laddr = _addr(local_host)
        elif (raddr >> 24) == 127:
            laddr = raddr if raddr != 0x7f000000 else 0x7f000001
        else:
            laddr = self.iface.addr
        cdef uint16_t lport = local_port or self._ephemeral(laddr, raddr, port)
        if self.connections.find(laddr, lport, raddr, port) != NULL:
            raise OSError(errno.EADDRINUSE, f"{host}:{port} from port {lport} is in use")
        cdef TcpConnection c = conn_new(self, laddr, lport, raddr, port, SYN_SENT, now)
        c.sink = sink
        c.iss = tcp_isn(&self.secrets, laddr, lport, raddr, port, now) if iss is None else iss
        c.snd_una = c.iss
        c.snd_nxt = c.iss + 1
        c.snd_max = c.snd_nxt
        c.rtt_start = now
        send_syn(self, c, now)
        self.wheel.arm(&c.t_lifetime, now + self.connect_timeout_ns)
        self.stats[TCP_ACTIVE_OPENS] += 1
        return c

    def _ephemeral(self, uint32_t laddr, uint32_t raddr, int rport):
        cdef int span = EPHEMERAL_HIGH - EPHEMERAL_LOW + 1
        for _ in range(span):
            port = self.next_ephemeral
            self.next_ephemeral = EPHEMERAL_LOW + (port + 1 - EPHEMERAL_LOW) % span
            if self.connections.find(laddr, port, raddr, rport) == NULL:
                return port
        raise OSError(errno.EADDRNOTAVAIL, "no ephemeral port left")

    def counters(self):
        out = {tcp_stat_name(i).decode(): self.stats[i] for i in range(TCP_STAT_COUNT)}
        states = {}
        for c in self.connections.values():
            states[c.state_name] = states.get(c.state_name, 0) + 1
        out["established"] = states.get("ESTABLISHED", 0)
        out["states"] = states
        out["timers_armed"] = self.wheel.count
        out["reassembly_mbufs"] = self.ooo_budget.held
        out["reassembly_mbufs_max"] = self.ooo_budget.limit
        out["time_wait"] = self.time_wait_count
        out["time_wait_max"] = self.time_wait_max
        return out

    def next_timer_ns(self):
        """The earliest moment a TCP timer may be due (None: none armed). A virtual clock
        advances to it to fire timers at their own time; it may be early, never late."""
        return self.wheel.next_expiry_ns() if self.wheel.count else None

    def connection_list(self):
        return list(self.connections.values())

    @property
    def listener_count(self):
        return len(self.listeners)
