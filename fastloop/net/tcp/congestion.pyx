# cython: language_level=3, cdivision=True
"""Congestion control: NewReno (RFC 5681, RFC 6582, RFC 3465) and CUBIC (RFC 9438).

Declarations, invariants and the calling contract are in congestion.pxd. Choices made here:

- Initial window: RFC 6928 §2, IW = min(10*SMSS, max(2*SMSS, 14600)), as Linux does, rather
  than RFC 5681 §3.1's 2-4 segments: on today's paths IW10 saves round trips on short flows
  and RFC 6928 was written for exactly this.
- Recovery is SACK/pipe based (RFC 6675): on entering it cwnd = ssthresh, no window
  inflation per duplicate ACK, no growth until the full ACK (RFC 6675 §5 step 4.2).
- Slow start counts bytes (RFC 3465 §2.2, L = 2*SMSS; L = 1*SMSS after an RTO, §2.3), and
  NewReno's congestion avoidance counts bytes too (RFC 3465 §2.1): one SMSS per cwnd's worth
  of acknowledged bytes, which is RFC 5681 eq. 3 (SMSS*SMSS/cwnd per ACK) without its
  dependence on ACK size and delayed ACKs.
- CUBIC's curve in doubles (see the .pxd header); cwnd itself stays an integer and the
  fractional growth is carried in cwnd_acc so that small increments are not lost.
- cwnd grows only when the window was used: `cwnd_limited` from the sender, or enough in
  flight (cc_window_full). RFC 7661 in spirit; for CUBIC the app-limited time is also taken
  out of t (RFC 9438 §5.8), by moving t_epoch forward.
"""
from libc.math cimport cbrt, floor
from libc.stdint cimport uint32_t, uint64_t
from libc.string cimport memset


cdef inline uint32_t _min32(uint64_t a, uint64_t b) noexcept nogil:
    return <uint32_t>(a if a < b else b)


cdef inline uint32_t _max32(uint32_t a, uint32_t b) noexcept nogil:
    return a if a > b else b


cdef inline uint64_t _reduced(const CongestionState *st, uint32_t flight_size) noexcept nogil:
    """flight_size * beta: 1/2 for NewReno (RFC 5681 §3.1 eq. 4, §3.2), 0.7 for CUBIC
    (RFC 9438 §4.6), floored at 2*SMSS, capped at CC_CWND_MAX."""
    cdef uint64_t s
    if st.algorithm == CC_CUBIC:
        s = <uint64_t>flight_size * 7 // 10
    else:
        s = flight_size // 2
    if s < 2 * <uint64_t>st.smss:
        s = 2 * <uint64_t>st.smss
    return s if s < CC_CWND_MAX else CC_CWND_MAX


cdef void cc_init(CongestionState *st, CcAlgorithm algorithm, uint32_t smss,
                  uint64_t now) noexcept nogil:
    memset(st, 0, sizeof(CongestionState))
    smss = 1 if smss == 0 else (CC_SMSS_MAX if smss > CC_SMSS_MAX else smss)
    st.algorithm = CC_CUBIC if algorithm == CC_CUBIC else CC_NEWRENO
    st.smss = smss
    st.iw = _min32(10 * <uint64_t>smss, _max32(2 * smss, 14600))      # RFC 6928 §2
    st.cwnd = st.iw
    st.ssthresh = CC_SSTHRESH_INF                                    # RFC 5681 §3.1
    st.fast_convergence = True                                      # RFC 9438 §4.7 SHOULD
    st.last_ack_ns = now
    st.last_send_ns = now


cdef void cc_on_syn_lost(CongestionState *st) noexcept nogil:
    """The SYN or SYN/ACK was retransmitted: the initial window is one segment
    (RFC 5681 §3.1; RFC 6928 §2 keeps that rule). Call before any data is sent."""
    st.iw = st.smss
    if st.cwnd > st.smss:
        st.cwnd = st.smss


# -- ACKs ---------------------------------------------------------------------------------

cdef void cc_on_ack(CongestionState *st, uint32_t bytes_acked, uint32_t flight_size,
                    uint64_t rtt_ns, uint64_t now, bint cwnd_limited) noexcept nogil:
    """An ACK arrived. bytes_acked: newly acknowledged bytes (0 for a duplicate ACK);
    flight_size: bytes outstanding when it arrived, before removing bytes_acked; rtt_ns: the
    smoothed RTT (0: unknown, keep the last one); cwnd_limited: the sender had data that cwnd
    held back since the previous ACK."""
    cdef uint64_t prev = st.last_ack_ns
    st.last_ack_ns = now
    if rtt_ns != 0:
        st.srtt_ns = rtt_ns
    if bytes_acked == 0:
        return                      # duplicate ACK: the sender's loss detection counts it
    st.n_acks += 1
    st.rto_pending = False          # forward progress: a later RTO is a new loss
    if st.in_recovery:
        return                      # RFC 6675 §5 / RFC 6582 §3.2: no growth during recovery
    if not (cwnd_limited or cc_window_full(st, flight_size)):
        st.n_app_limited += 1       # RFC 7661: do not grow a window that is not used
        if st.epoch_valid and now > prev:
            st.epoch_start_ns += now - prev     # RFC 9438 §5.8: t excludes app-limited time
            if st.epoch_start_ns > now:
                st.epoch_start_ns = now
        return
    if st.cwnd < st.ssthresh:
        bytes_acked = _slow_start(st, bytes_acked)
        if bytes_acked == 0:
            return
    if st.algorithm == CC_CUBIC:
        _cubic_avoid(st, bytes_acked, now)
    else:
        _reno_avoid(st, bytes_acked)


cdef uint32_t _slow_start(CongestionState *st, uint32_t bytes_acked) noexcept nogil:
    """RFC 5681 §3.1 with appropriate byte counting (RFC 3465 §2.2): cwnd += min(N, L).
    Stops at ssthresh; returns the acknowledged bytes left over for congestion avoidance."""
    cdef uint32_t limit = st.smss if st.after_rto else 2 * st.smss     # RFC 3465 §2.2, §2.3
    cdef uint32_t inc = bytes_acked if bytes_acked < limit else limit
    cdef uint32_t room = st.ssthresh - st.cwnd
    if inc < room:
        st.cwnd = _min32(<uint64_t>st.cwnd + inc, CC_CWND_MAX)
        return 0
    st.cwnd = _min32(st.ssthresh, CC_CWND_MAX)
    st.after_rto = False
    return bytes_acked - room if bytes_acked > room else 0


cdef void _reno_avoid(CongestionState *st, uint32_t bytes_acked) noexcept nogil:
    """RFC 5681 §3.1 eq. 3 by byte counting (RFC 3465 §2.1): when a cwnd's worth of bytes
    has been acknowledged, cwnd += SMSS. That is 1 SMSS per RTT whatever the ACK pattern."""
    st.ca_acked += bytes_acked
    if st.ca_acked >= st.cwnd:
        st.ca_acked -= st.cwnd
        st.cwnd = _min32(<uint64_t>st.cwnd + st.smss, CC_CWND_MAX)
        if st.ca_acked > st.cwnd:
            st.ca_acked = st.cwnd   # a stretch ACK of several windows earns one SMSS per ACK


cdef double cc_w_cubic(const CongestionState *st, double t) noexcept nogil:
    """RFC 9438 §4.2 eq. 1 in bytes: W_cubic(t) = C*(t - K)^3 + W_max, t in seconds."""
    cdef double d = t - st.k
    return FL_CUBIC_C * st.smss * d * d * d + st.origin


cdef void _cubic_epoch_start(CongestionState *st, uint64_t now) noexcept nogil:
    """A congestion-avoidance stage begins (RFC 9438 §4.2): t_epoch, cwnd_epoch, K, W_est."""
    cdef double c = st.cwnd
    st.epoch_valid = True
    st.epoch_start_ns = now
    st.cwnd_epoch = st.cwnd
    if st.rto_epoch or st.w_max <= c:
        # §4.8 first stage after a timeout, §4.10 slow start ended without a loss (and any
        # stale W_max below cwnd): K = 0 and W_max = cwnd_epoch, so the curve is all convex.
        st.w_max = c
        st.origin = c
        st.k = 0.0
    else:
        st.origin = st.w_max
        st.k = cbrt((st.w_max - c) / (FL_CUBIC_C * st.smss))        # §4.2 eq. 2, segments
    st.rto_epoch = False
    st.w_est = c                                                    # §4.3
    st.cwnd_acc = 0.0
    st.n_epochs += 1


cdef void _cubic_avoid(CongestionState *st, uint32_t bytes_acked, uint64_t now) noexcept nogil:
    """RFC 9438 §4.2-4.5 for one new ACK of bytes_acked bytes in congestion avoidance."""
    cdef double cwnd, per_cwnd, t, w_t, target, alpha, inc
    if not st.epoch_valid:
        _cubic_epoch_start(st, now)
    cwnd = st.cwnd
    per_cwnd = bytes_acked / cwnd           # segments_acked / cwnd, unit-free
    t = (now - st.epoch_start_ns) * 1e-9 if now > st.epoch_start_ns else 0.0
    # §4.3 eq. 4 in bytes: W_est += alpha * segments_acked / cwnd (segments). alpha_cubic
    # until W_est reaches cwnd_prior, then 1 (Reno's own rate).
    alpha = 1.0 if st.w_est >= st.cwnd_prior else FL_CUBIC_ALPHA
    st.w_est += alpha * st.smss * per_cwnd
    if st.w_est > CC_CWND_MAX:
        st.w_est = CC_CWND_MAX
    w_t = cc_w_cubic(st, t)
    if w_t < st.w_est:
        # Reno-friendly region: cwnd = W_est (never lowered: cwnd may already be above
        # W_est, having tracked W_cubic(t + RTT) >= W_cubic(t)).
        if st.w_est > cwnd:
            st.cwnd = <uint32_t>st.w_est
        return
    # §4.2 target = W_cubic(t + RTT), clamped to [cwnd, 1.5*cwnd]; §4.4 concave and §4.5
    # convex regions alike: cwnd += (target - cwnd)/cwnd per segment acknowledged.
    target = cc_w_cubic(st, t + st.srtt_ns * 1e-9)
    if target < cwnd:
        target = cwnd
    elif target > 1.5 * cwnd:
        target = 1.5 * cwnd
    st.cwnd_acc += (target - cwnd) * per_cwnd
    if st.cwnd_acc >= 1.0:
        inc = floor(st.cwnd_acc)
        st.cwnd_acc -= inc
        st.cwnd = _min32(<uint64_t>st.cwnd + <uint64_t>inc, CC_CWND_MAX)


# -- Congestion signals -------------------------------------------------------------------

cdef void _save_undo(CongestionState *st) noexcept nogil:
    """RFC 9438 §4.9: the values a spurious-loss undo restores."""
    st.undo_valid = True
    st.undo_cwnd = st.cwnd
    st.undo_ssthresh = st.ssthresh
    st.undo_cwnd_prior = st.cwnd_prior
    st.undo_w_max = st.w_max
    st.undo_origin = st.origin
    st.undo_k = st.k
    st.undo_epoch_valid = st.epoch_valid
    st.undo_epoch_start_ns = st.epoch_start_ns
    st.undo_cwnd_epoch = st.cwnd_epoch
    st.undo_w_est = st.w_est
    st.undo_rto_epoch = st.rto_epoch


cdef void cc_on_congestion(CongestionState *st, uint32_t flight_size, uint64_t now) noexcept nogil:
    """Entering fast recovery (RFC 5681 §3.2 step 2, RFC 6675 §5 step 4): ssthresh =
    max(flight*beta, 2*SMSS), cwnd = ssthresh. Once per recovery (RFC 6582 §3.2)."""
    if st.in_recovery:
        return
    _save_undo(st)
    if st.algorithm == CC_CUBIC and st.fast_convergence and st.cwnd < st.w_max:
        st.w_max = st.cwnd * FL_CUBIC_FC        # RFC 9438 §4.7: release bandwidth sooner
    else:
        st.w_max = st.cwnd                      # §4.6: cwnd before the reduction
    st.cwnd_prior = st.cwnd
    st.ssthresh = <uint32_t>_reduced(st, flight_size)
    st.cwnd = st.ssthresh
    st.in_recovery = True
    st.epoch_valid = False                      # the next ACK after recovery starts an epoch
    st.ca_acked = 0
    st.n_congestion += 1


cdef void cc_on_recovery_exit(CongestionState *st, uint64_t now) noexcept nogil:
    """Full ACK: RFC 6582 §3.2 step 3 option (2), cwnd = ssthresh (and PRR, RFC 6937 §3,
    ends there too). Congestion avoidance, and CUBIC's epoch, begin with the next ACK."""
    if not st.in_recovery:
        return
    st.in_recovery = False
    st.cwnd = _min32(st.ssthresh, CC_CWND_MAX)


cdef void cc_on_rto(CongestionState *st, uint32_t flight_size, uint64_t now) noexcept nogil:
    """Retransmission timeout: RFC 5681 §3.1 eq. 4, ssthresh = max(FlightSize/2, 2*SMSS)
    (CUBIC: flight*0.7, RFC 9438 §4.8), then cwnd = LW = 1 SMSS. When the same data times
    out again with no ACK in between, ssthresh is held (RFC 5681 §3.1)."""
    if not st.rto_pending:
        if not st.in_recovery:          # in recovery, the snapshot before that loss stands
            _save_undo(st)
            st.cwnd_prior = st.cwnd
        st.ssthresh = <uint32_t>_reduced(st, flight_size)
    st.cwnd = st.smss
    st.in_recovery = False
    st.rto_pending = True
    st.after_rto = True
    st.epoch_valid = False
    st.rto_epoch = True                 # RFC 9438 §4.8: next epoch K = 0, W_max = cwnd_epoch
    st.ca_acked = 0
    st.n_rto += 1


cdef bint cc_on_spurious(CongestionState *st, uint64_t now) noexcept nogil:
    """The last loss signal was spurious (D-SACK, timestamps, F-RTO): restore the state
    before it, RFC 9438 §4.9, if cwnd is still below cwnd_prior (RFC 4015 §3.2 likewise for
    NewReno's cwnd and ssthresh). Returns whether it undid anything. One undo per signal."""
    if not st.undo_valid:
        return False
    st.undo_valid = False
    if st.cwnd >= st.cwnd_prior:
        return False                    # detected too late: keep the current values
    st.cwnd = st.undo_cwnd
    st.ssthresh = st.undo_ssthresh
    st.cwnd_prior = st.undo_cwnd_prior
    st.w_max = st.undo_w_max
    st.origin = st.undo_origin
    st.k = st.undo_k
    st.epoch_valid = st.undo_epoch_valid
    st.epoch_start_ns = st.undo_epoch_start_ns
    st.cwnd_epoch = st.undo_cwnd_epoch
    st.w_est = st.undo_w_est
    st.rto_epoch = st.undo_rto_epoch
    st.in_recovery = False
    st.rto_pending = False
    st.after_rto = False
    st.ca_acked = 0
    st.cwnd_acc = 0.0
    st.n_undo += 1
    return True


cdef bint cc_on_idle_restart(CongestionState *st, uint64_t now, uint64_t rto_ns) noexcept nogil:
    """About to send with nothing in flight. If nothing was sent for more than an RTO,
    cwnd = RW = min(IW, cwnd) (RFC 5681 §4.1); ssthresh keeps 3/4 of the old cwnd so slow
    start climbs back (RFC 2861 §3, as Linux does). CUBIC's t skips the idle time (RFC 9438
    §5.8). Returns whether cwnd was reduced."""
    cdef uint64_t idle = now - st.last_send_ns if now > st.last_send_ns else 0
    cdef uint32_t keep
    if idle <= rto_ns:
        return False
    if st.epoch_valid:
        st.epoch_start_ns += idle
        if st.epoch_start_ns > now:
            st.epoch_start_ns = now
    if st.cwnd <= st.iw:
        return False
    keep = <uint32_t>((<uint64_t>st.cwnd * 3) // 4)
    if st.ssthresh < keep:
        st.ssthresh = keep
    st.cwnd = st.iw
    st.epoch_valid = False              # slow start, then a new congestion-avoidance stage
    st.ca_acked = 0
    st.n_idle_restart += 1
    return True
