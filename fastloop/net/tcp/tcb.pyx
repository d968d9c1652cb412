# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Connections, listeners and sinks as the application sees them (see tcb.pxd).

The methods here only move bytes and set flags; anything that must send or change state
asks the layer (TcpLayerBase.conn_*), which runs the protocol.
"""
import errno

from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE, PyBUF_WRITABLE
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING
from fastloop.net.wire.addr cimport ipv4_str
from fastloop.net.timer_wheel cimport timer_init, timer_armed
from fastloop.net.tcp.sndbuf cimport (
    sndbuf_init, sndbuf_write, sndbuf_write_ref, sndbuf_space, SNDBUF_REF_MIN)
from fastloop.net.tcp.rcvbuf cimport rcvbuf_read

cdef object _immutable_owner(object data):
    """The bytes object whose memory `data` is, when nothing can change or free it while we
    hold a reference: bytes, or a memoryview of bytes; else None (the data is copied)."""
    if type(data) is bytes:
        return data
    if type(data) is memoryview:
        owner = data.obj
        if type(owner) is bytes:
            return owner
    return None


STATE_NAMES = ("CLOSED", "LISTEN", "SYN_SENT", "SYN_RECEIVED", "ESTABLISHED", "FIN_WAIT_1",
               "FIN_WAIT_2", "CLOSE_WAIT", "CLOSING", "LAST_ACK", "TIME_WAIT")


cdef class TcpSink:
    cdef void on_established(self, TcpConnection c) noexcept:
        pass

    cdef void on_data(self, TcpConnection c) noexcept:
        pass

    cdef void on_eof(self, TcpConnection c) noexcept:
        pass

    cdef void on_send_space(self, TcpConnection c) noexcept:
        pass

    cdef void on_closed(self, TcpConnection c, int error) noexcept:
        pass


cdef class TcpListenerSink:
    cdef TcpSink on_accept(self, TcpListener l, TcpConnection c):
        return None


cdef class TcpListener:
    def close(self):
        """Stop accepting; connections already accepted live on."""
        if not self.closed:
            self.layer.listener_close(self)

    def __repr__(self):
        return f"<TcpListener {ipv4_str(self.addr)}:{self.port}>"


cdef class TcpConnection:
    def __cinit__(self):
        cdef void *me = <void *>self
        timer_init(&self.t_retransmit, T_RETRANSMIT, me)
        timer_init(&self.t_delayed_ack, T_DELAYED_ACK, me)
        timer_init(&self.t_persist, T_PERSIST, me)
        timer_init(&self.t_keepalive, T_KEEPALIVE, me)
        timer_init(&self.t_lifetime, T_TIME_WAIT, me)
        timer_init(&self.t_loss_probe, T_LOSS_PROBE, me)
        sndbuf_init(&self.snd, 0)

    cdef uint32_t flight(self) noexcept:
        """FlightSize (RFC 5681 §2): sent and not yet acknowledged."""
        return self.snd_max - self.snd_una

    cdef void schedule_output(self) noexcept:
        if not self.in_output_list and self.layer is not None:
            self.in_output_list = True
            self.layer.output_list.append(self)

    cdef void schedule_data(self) noexcept:
        """New in-order data: the sink hears once, after the rx burst (one data_received for
        every segment of a burst, as a kernel socket's reader gets what queued meanwhile)."""
        if not self.in_data_list and self.layer is not None:
            self.in_data_list = True
            self.layer.data_list.append(self)

    cdef void deliver_data(self) noexcept:
        """Tell the sink of data scheduled and not yet told: at the end of the burst, and
        first thing before EOF or the end of the connection, so that order is kept."""
        if not self.in_data_list:
            return
        self.in_data_list = False
        if self.sink is not None and not self.reading_paused and self.rcv.bytes:
            self.sink.on_data(self)

    cdef seq_t fin_seq(self) noexcept:
        """Where our FIN goes (or went): after the last byte written."""
        return self.snd_una + self.snd.len

    cdef void notify_closed(self, int error) noexcept:
        cdef TcpSink sink = self.sink
        self.in_data_list = False          # the layer's list may still hold it: a no-op there
        self.sink = None
        if sink is not None:
            sink.on_closed(self, error)

    # ---- the application's side ------------------------------------------------------
    def send(self, data):
        """Take as much of `data` as the send buffer holds; returns the bytes taken. A large
        bytes object (or a memoryview of one) is kept by reference, anything else copied."""
        return self.send_from(data)

    def recv(self, Py_ssize_t n=65536):
        """Up to n bytes of in-order data (b'' when none is waiting)."""
        return self.recv_bytes(n)

    def recv_into(self, buffer):
        """Copy waiting data into a writable buffer (BufferedProtocol); returns bytes copied."""
        return self.recv_to(buffer)

    cdef Py_ssize_t send_from(self, object data) except -1:
        cdef Py_buffer view
        cdef uint32_t n, want
        if self.state not in (ESTABLISHED, CLOSE_WAIT, SYN_SENT, SYN_RECEIVED) or self.fin_queued:
            raise BrokenPipeError(errno.EPIPE, "the connection is closed for sending")
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            want = <uint32_t>min(<Py_ssize_t>0xffffffff, view.len)
            owner = _immutable_owner(data) if want >= SNDBUF_REF_MIN else None
            if owner is not None:
                n = sndbuf_write_ref(&self.snd, owner, <const uint8_t *>view.buf, want)
            else:
                n = sndbuf_write(&self.snd, <const uint8_t *>view.buf, want)
        finally:
            PyBuffer_Release(&view)
        if n:
            self.layer.conn_written(self)
        elif view.len:
            self.send_space_wanted = True
        return n

    cdef bytes recv_bytes(self, Py_ssize_t n):
        cdef uint32_t avail = min(<Py_ssize_t>self.rcv.bytes, n)
        if avail == 0:
            return b""
        cdef bytes out = PyBytes_FromStringAndSize(NULL, avail)
        rcvbuf_read(&self.rcv, <uint8_t *>PyBytes_AS_STRING(out), avail, self.layer.iface)
        self.rcv_copied += avail
        self.layer.conn_read(self)
        return out

    cdef Py_ssize_t recv_to(self, object buffer) except -1:
        cdef Py_buffer view
        cdef uint32_t n
        PyObject_GetBuffer(buffer, &view, PyBUF_WRITABLE)
        try:
            n = rcvbuf_read(&self.rcv, <uint8_t *>view.buf,
                            <uint32_t>min(<Py_ssize_t>self.rcv.bytes, view.len), self.layer.iface)
        finally:
            PyBuffer_Release(&view)
        if n:
            self.rcv_copied += n
            self.layer.conn_read(self)
        return n

    def readable(self):
        """In-order bytes waiting to be read."""
        return self.rcv.bytes

    def send_space(self):
        return sndbuf_space(&self.snd)

    def unsent(self):
        """Bytes written and not yet acknowledged by the peer."""
        return self.snd.len

    def set_keepalive(self, double idle, double interval=75.0, int count=9):
        """SO_KEEPALIVE with TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT (seconds; idle 0: off):
        probe after `idle` without a segment from the peer, every `interval`, and give up
        with ETIMEDOUT after `count` unanswered probes (RFC 1122 §4.2.3.6). Works at any
        time, also on an established or accepted connection."""
        self.keepalive_idle_ns = <uint64_t>(idle * 1e9)
        self.keepalive_interval_ns = <uint64_t>(interval * 1e9)
        self.keepalive_count = count
        self.keepalive_probes = 0
        if self.layer is None or self.state == CLOSED:
            return
        self.layer.wheel.cancel(&self.t_keepalive)
        if self.keepalive_idle_ns and (self.state == ESTABLISHED or self.state == CLOSE_WAIT):
            self.layer.wheel.arm(&self.t_keepalive, self.last_activity + self.keepalive_idle_ns)

    def shutdown(self):
        """Half-close: a FIN after the data already written (SHUT_WR)."""
        self.layer.conn_shutdown(self)

    def close(self):
        """Orderly close: FIN after the data; a reset instead if unread data is waiting
        (RFC 9293 §3.10.4, RFC 2525 §2.17)."""
        self.layer.conn_close(self)

    def abort(self):
        """Reset the connection now; unsent data is dropped."""
        self.layer.conn_abort(self)

    @property
    def state_name(self):
        return STATE_NAMES[self.state]

    @property
    def local(self):
        return (ipv4_str(self.local_addr), self.local_port)

    @property
    def remote(self):
        return (ipv4_str(self.remote_addr), self.remote_port)

    def info(self):
        """Like TCP_INFO: the connection's protocol variables."""
        return {"state": STATE_NAMES[self.state], "mss": self.mss, "peer_mss": self.peer_mss,
                "snd_wscale": self.snd_wscale if self.rcv_wscale_ok else None,
                "rcv_wscale": self.rcv_wscale if self.rcv_wscale_ok else None,
                "timestamps": self.ts_ok, "sack": self.sack_ok,
                "srtt_us": self.srtt_ns // 1000, "rttvar_us": self.rttvar_ns // 1000,
                "rto_ms": self.rto_ns // 1000000, "cwnd": self.cc.cwnd,
                "ssthresh": self.cc.ssthresh, "snd_wnd": self.snd_wnd,
                "unacked": self.snd_max - self.snd_una, "unsent": self.snd.len,
                "readable": self.rcv.bytes, "out_of_order": self.rcv.ooo_bytes,
                "rcvbuf": self.rcv.limit, "sndbuf": self.snd.limit,
                "snd_una": self.snd_una, "snd_nxt": self.snd_nxt, "rcv_nxt": self.rcv_nxt,
                "in_output_list": self.in_output_list, "send_space_wanted": self.send_space_wanted,
                "fin_queued": self.fin_queued, "app_closed": self.app_closed,
                "dupacks": self.dupacks, "in_recovery": self.in_recovery,
                "timers": [name for name, armed in (
                    ("retransmit", timer_armed(&self.t_retransmit)),
                    ("delayed_ack", timer_armed(&self.t_delayed_ack)),
                    ("persist", timer_armed(&self.t_persist)),
                    ("keepalive", timer_armed(&self.t_keepalive)),
                    ("lifetime", timer_armed(&self.t_lifetime)),
                    ("loss_probe", timer_armed(&self.t_loss_probe))) if armed]}

    def __repr__(self):
        l, r = self.local, self.remote
        return f"<TcpConnection {l[0]}:{l[1]} -> {r[0]}:{r[1]} {STATE_NAMES[self.state]}>"


cdef class TcpLayerBase(L4Protocol):
    cdef void conn_written(self, TcpConnection c) noexcept:
        pass

    cdef void conn_read(self, TcpConnection c) noexcept:
        pass

    cdef void conn_shutdown(self, TcpConnection c) noexcept:
        pass

    cdef void conn_close(self, TcpConnection c) noexcept:
        pass

    cdef void conn_abort(self, TcpConnection c) noexcept:
        pass

    cdef void listener_close(self, TcpListener l) noexcept:
        pass
