# cython: language_level=3
# The transmission control block (RFC 9293 §3.3.1) and the TCP layer's shared state.
# Data only: the behaviour lives in input.pyx (segment arrival), output.pyx (what to send),
# timers.pyx (retransmission, delayed ACK, persist, keepalive, TIME-WAIT) and layer.pyx.
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from fastloop.net.l4 cimport L4Protocol
from fastloop.net.iface cimport Interface
from fastloop.net.timer_wheel cimport TimerWheel, TimerNode
from fastloop.net.tcp.seq cimport seq_t
from fastloop.net.tcp.sndbuf cimport SendBuffer
from fastloop.net.tcp.rcvbuf cimport RecvBuffer, OooBudget
from fastloop.net.tcp.congestion cimport CongestionState
from fastloop.net.tcp.sack cimport SackScoreboard
from fastloop.net.tcp.isn cimport TcpSecrets
from fastloop.net.tcp.conn_table cimport ConnTable
from fastloop.net.tcp.counters cimport TCP_STAT_COUNT

cdef enum TcpState:
    CLOSED = 0
    LISTEN
    SYN_SENT
    SYN_RECEIVED
    ESTABLISHED
    FIN_WAIT_1
    FIN_WAIT_2
    CLOSE_WAIT
    CLOSING
    LAST_ACK
    TIME_WAIT

cdef enum TimerKind:               # TimerNode.kind: which timer of a connection fired
    T_RETRANSMIT = 1
    T_DELAYED_ACK
    T_PERSIST
    T_KEEPALIVE
    T_TIME_WAIT                    # also the connect / SYN-RECEIVED lifetime bound
    T_LOSS_PROBE                   # SACK: tail loss probe / lost retransmission (recovery.pyx)

cdef class TcpSink:
    """What a connection reports upward (ARCHITECTURE: the narrow sink). Transports and
    tests subclass it; every method is called after the connection's state is updated."""
    cdef void on_established(self, TcpConnection c) noexcept
    cdef void on_data(self, TcpConnection c) noexcept       # c.readable() bytes are waiting
    cdef void on_eof(self, TcpConnection c) noexcept        # the peer sent FIN
    cdef void on_send_space(self, TcpConnection c) noexcept # the send buffer drained below half
    cdef void on_closed(self, TcpConnection c, int error) noexcept  # 0 or an errno

cdef class TcpListenerSink:
    # a new connection finished its handshake; return the sink that will own it (None: reset)
    cdef TcpSink on_accept(self, TcpListener l, TcpConnection c)

cdef class TcpListener:
    cdef readonly uint32_t addr    # 0: every address of the interface
    cdef readonly uint16_t port
    cdef readonly uint32_t backlog
    cdef uint32_t half_open        # connections in SYN-RECEIVED from this listener
    cdef TcpListenerSink sink
    cdef TcpLayerBase layer
    cdef readonly bint closed

cdef class TcpConnection:
    cdef TcpLayerBase layer
    cdef public TcpSink sink
    cdef TcpListener listener      # set while in SYN-RECEIVED from a passive open
    cdef readonly uint32_t local_addr
    cdef readonly uint32_t remote_addr
    cdef readonly uint16_t local_port
    cdef readonly uint16_t remote_port
    cdef readonly int state
    cdef readonly int error        # errno of an abnormal end

    # send sequence space (RFC 9293 §3.3.1)
    cdef seq_t iss
    cdef seq_t snd_una
    cdef seq_t snd_nxt
    cdef seq_t snd_max             # highest sequence number sent (snd_nxt moves back on RTO)
    cdef seq_t snd_wl1
    cdef seq_t snd_wl2
    cdef uint32_t snd_wnd          # bytes, scaled
    cdef uint32_t max_snd_wnd
    # receive sequence space
    cdef seq_t irs
    cdef seq_t rcv_nxt
    cdef seq_t rcv_adv             # right edge of the window we last advertised
    cdef uint32_t rcv_wnd_last     # the window last advertised, bytes

    # options negotiated on the SYNs
    cdef uint16_t mss              # most payload per segment we send (options excluded)
    cdef uint16_t peer_mss         # the MSS the peer announced (536 when it did not)
    cdef uint16_t rcv_mss          # the MSS we announce: our MTU less 40
    cdef bint rcv_wscale_ok        # both sides sent Window Scale: windows are scaled
    cdef uint8_t snd_wscale        # the peer's shift, applied to windows it sends
    cdef uint8_t rcv_wscale        # our shift
    cdef bint ts_ok                # RFC 7323 timestamps on every segment
    cdef bint sack_ok              # RFC 2018
    cdef uint32_t ts_recent        # RFC 7323 §4.3: TS.Recent
    cdef uint64_t ts_recent_time   # when TS.Recent was updated (PAWS's 24-day rule)
    cdef uint32_t ts_offset        # per-connection random offset of our TSval (RFC 7323 §5.4)

    # round-trip time (RFC 6298)
    cdef uint64_t srtt_ns
    cdef uint64_t rttvar_ns
    cdef uint64_t rto_ns
    cdef uint8_t backoff           # exponential backoff shift
    cdef uint8_t syn_retries
    cdef seq_t rtt_seq             # Karn: the segment being timed (no timestamps)
    cdef uint64_t rtt_start
    cdef bint rtt_active

    # loss recovery: RFC 6675 with SACK (recovery.pyx), else NewReno (RFC 5681, RFC 6582)
    cdef uint32_t dupacks
    cdef seq_t recover             # RFC 6582 recover; RFC 6675 RecoveryPoint (one past)
    cdef bint in_recovery
    cdef SackScoreboard sb         # what the peer SACKed (sack_ok only)
    cdef CongestionState cc

    cdef SendBuffer snd
    cdef RecvBuffer rcv
    cdef uint32_t rcv_copied       # bytes the application read since rcv_tune_time
    cdef uint64_t rcv_tune_time    # (autotune.pyx)

    # flags
    cdef bint fin_queued           # the application shut down its side: FIN after the data
    cdef bint fin_received
    cdef bint app_closed           # close() was called: nobody reads any more
    cdef bint ooo_fin              # a FIN arrived ahead of a hole; ooo_fin_seq is its place
    cdef seq_t ooo_fin_seq
    cdef bint ack_pending          # an ACK must go out this step
    cdef uint8_t segs_unacked      # full segments received since our last ACK (delayed ACK)
    cdef uint8_t quickacks         # segments still acknowledged at once (start of connection)
    cdef public bint nodelay       # TCP_NODELAY: Nagle off
    cdef public bint reading_paused
    cdef bint in_output_list
    cdef bint in_data_list         # new in-order data: on_data at the end of the rx burst
    cdef bint send_space_wanted
    cdef bint sws_override         # the persist timer lets a short, window-limited segment go
    cdef uint64_t last_activity    # for keepalive
    cdef public uint64_t keepalive_idle_ns   # 0: keepalive off
    cdef public uint64_t keepalive_interval_ns
    cdef public uint32_t keepalive_count
    cdef uint32_t keepalive_probes
    cdef uint32_t persist_backoff

    cdef TimerNode t_retransmit
    cdef TimerNode t_delayed_ack
    cdef TimerNode t_persist
    cdef TimerNode t_keepalive
    cdef TimerNode t_lifetime      # TIME-WAIT, connect timeout, SYN-RECEIVED bound
    cdef TimerNode t_loss_probe    # sack_ok: PTO after the last transmission (recovery.pyx)

    cdef uint32_t flight(self) noexcept
    cdef void schedule_output(self) noexcept
    cdef void schedule_data(self) noexcept
    cdef void deliver_data(self) noexcept
    cdef seq_t fin_seq(self) noexcept
    cdef void notify_closed(self, int error) noexcept
    # the application's side, for C callers (transports); send()/recv()/recv_into() wrap them
    cdef Py_ssize_t send_from(self, object data) except -1
    cdef bytes recv_bytes(self, Py_ssize_t n)
    cdef Py_ssize_t recv_to(self, object buffer) except -1

cdef class TcpLayerBase(L4Protocol):
    """State shared by every TCP module: the interface, the timer wheel, the table."""
    cdef Interface iface
    cdef TimerWheel wheel
    cdef TcpSecrets secrets
    cdef ConnTable connections     # (laddr, lport, raddr, rport) -> TcpConnection
    cdef TcpConnection last_conn   # the last one a segment found: a burst is mostly one flow
    cdef dict listeners            # (addr, port) -> TcpListener
    cdef list output_list          # connections with something to send this step
    cdef list output_spare         # the other list of the pair (layer.pyx output())
    cdef list data_list            # connections with new data for on_data, this rx burst
    cdef uint16_t next_ephemeral
    cdef uint64_t stats[TCP_STAT_COUNT]
    cdef uint64_t held_mbufs
    cdef OooBudget ooo_budget      # out-of-order mbufs, all connections together
    cdef uint32_t time_wait_count  # connections in TIME-WAIT now
    # configuration (StackConfig)
    cdef public uint32_t sndbuf_size     # a connection's buffers start this large
    cdef public uint32_t rcvbuf_size
    cdef public uint32_t sndbuf_max      # and may grow to this (autotune.pyx)
    cdef public uint32_t rcvbuf_max
    cdef public uint64_t rto_min_ns
    cdef public uint64_t rto_max_ns
    cdef public uint64_t rto_initial_ns
    cdef public uint64_t delayed_ack_ns
    cdef public uint64_t time_wait_ns
    cdef public uint32_t time_wait_max   # TIME-WAIT entries kept at most (memory's bound)
    cdef public uint64_t connect_timeout_ns
    cdef public uint32_t syn_retries_max
    cdef public uint32_t retries_max
    cdef public int cc_algorithm
    cdef public uint32_t challenge_ack_limit  # per second (RFC 5961 §7)
    cdef uint32_t challenge_acks
    cdef uint64_t challenge_window_start
    cdef public bint syncookies              # when a listener's half-open queue is full

    # what the application asks of a connection (layer.pyx implements them)
    cdef void conn_written(self, TcpConnection c) noexcept
    cdef void conn_read(self, TcpConnection c) noexcept
    cdef void conn_shutdown(self, TcpConnection c) noexcept
    cdef void conn_close(self, TcpConnection c) noexcept
    cdef void conn_abort(self, TcpConnection c) noexcept
    cdef void listener_close(self, TcpListener l) noexcept
