# cython: language_level=3
# Congestion control behind a small interface (ARCHITECTURE rule 3): one C struct per
# connection and plain functions called per ACK, per loss signal and per RTO. No Python
# objects, no clock: `now` is uint64 nanoseconds from the caller, like all of net/tcp.
#
# Windows are in bytes (RFC 5681 §2 cwnd/ssthresh; RFC 9438 §4.1 allows bytes for CUBIC,
# "factoring in the maximum segment size wherever necessary"). CUBIC's curve is in double
# precision: every byte count below 2**53 is exact (windows stop at 2**30), a cube is three
# multiplies per ACK, and the one cube root (libm cbrt, < 1 ulp) is taken once per epoch,
# so no fixed-point approximation is needed. About 10-25 ns per ACK (benchmarks/cc_trace.py).
#
# Invariants kept by every function below (tests/test_congestion.py checks them under
# random event sequences):
#   smss <= cwnd <= CC_CWND_MAX
#   ssthresh >= 2*smss           (CC_SSTHRESH_INF until the first congestion signal)
#   0 <= k, w_est <= CC_CWND_MAX, all doubles finite
#
# How the sender drives it:
#   cc_init                  at connection establishment (SMSS known from the MSS option);
#                            cc_on_syn_lost first if the SYN or SYN/ACK was retransmitted
#   cc_on_ack                for every ACK (bytes_acked 0 for a duplicate); flight_size is
#                            what was outstanding when it arrived; cwnd_limited says the
#                            sender had data that cwnd held back since the previous ACK
#   cc_on_congestion         entering fast recovery (3 dup ACKs, RFC 6675 loss detection);
#                            ignored while already in recovery (RFC 6582 §3.2: once per window)
#   cc_on_recovery_exit      when snd_una reaches `recover` (full ACK): cwnd = ssthresh.
#                            Meanwhile the sender may lower st.cwnd itself (PRR, RFC 6937)
#   cc_on_rto                on retransmission timeout
#   cc_on_spurious           when a loss signal is proved spurious (D-SACK, timestamps, F-RTO)
#   cc_on_send/idle_restart  cc_on_send on every transmission of data; cc_on_idle_restart
#                            before sending new data with nothing in flight
from libc.stdint cimport uint32_t, uint64_t


cdef extern from *:
    """
    /* RFC 9438 §4.1.1 / §5: C = 0.4 segments/s^3, beta_cubic = 0.7,
       alpha_cubic = 3 * (1 - beta_cubic) / (1 + beta_cubic) = 0.9 / 1.7 (§4.3). */
    #define FL_CUBIC_C      0.4
    #define FL_CUBIC_BETA   0.7
    #define FL_CUBIC_ALPHA  (3.0 * (1.0 - FL_CUBIC_BETA) / (1.0 + FL_CUBIC_BETA))
    /* (1 + beta_cubic) / 2: fast convergence, §4.7 */
    #define FL_CUBIC_FC     ((1.0 + FL_CUBIC_BETA) / 2.0)
    /* "Arbitrarily high" initial ssthresh (RFC 5681 §3.1): the largest uint32. */
    #define FL_CC_SSTHRESH_INF 0xFFFFFFFFu
    """
    const double FL_CUBIC_C
    const double FL_CUBIC_BETA
    const double FL_CUBIC_ALPHA
    const double FL_CUBIC_FC
    const uint32_t CC_SSTHRESH_INF "FL_CC_SSTHRESH_INF"


cdef enum CcAlgorithm:
    CC_NEWRENO = 0
    CC_CUBIC = 1


cdef enum:
    # Largest cwnd: 2**30 bytes, the largest window RFC 7323 §2.3 scaling can advertise
    # (65535 << 14 < 2**30). Every increase saturates here, so nothing wraps.
    CC_CWND_MAX = 1 << 30
    CC_SMSS_MAX = 65535         # the MSS option is 16 bits (RFC 9293 §3.7.1)


cdef struct CongestionState:
    CcAlgorithm algorithm
    uint32_t smss               # sender MSS, bytes, 1..65535
    uint32_t cwnd               # bytes
    uint32_t ssthresh           # bytes; CC_SSTHRESH_INF until the first congestion signal
    uint32_t iw                 # initial window (RFC 6928), also the restart window base
    uint64_t ca_acked           # bytes acked in congestion avoidance toward the next SMSS
                                # (RFC 3465 §2.1 "bytes_acked"), NewReno
    uint64_t srtt_ns            # last RTT the caller reported (0: none yet)
    uint64_t last_ack_ns        # time of the last cc_on_ack
    uint64_t last_send_ns       # time of the last cc_on_send
    bint in_recovery            # between cc_on_congestion and cc_on_recovery_exit
    bint rto_pending            # RTO with no forward progress since: hold ssthresh (RFC 5681 §3.1)
    bint after_rto              # slow start after an RTO: L = 1*SMSS (RFC 3465 §2.3)
    # CUBIC, RFC 9438 §4.1.2 (windows in bytes, times in seconds unless _ns)
    bint fast_convergence       # §4.7, on by default
    bint epoch_valid            # a congestion-avoidance epoch is running
    bint rto_epoch              # next epoch is the first after a timeout: K = 0 (§4.8)
    uint64_t epoch_start_ns     # t_epoch
    uint32_t cwnd_epoch         # cwnd at t_epoch
    uint32_t cwnd_prior         # cwnd when ssthresh was last set by a congestion signal
    double w_max                # bytes: cwnd just before the last reduction (after §4.7)
    double origin               # bytes: plateau of this epoch's curve, max(W_max, cwnd_epoch)
    double k                    # seconds from t_epoch to the plateau (§4.2 eq. 2)
    double w_est                # bytes: Reno-friendly estimate (§4.3 eq. 4)
    double cwnd_acc             # fractional bytes of (target - cwnd)/cwnd growth not yet in cwnd
    # Undo (RFC 9438 §4.9): the values before the last reduction
    bint undo_valid
    bint undo_epoch_valid
    bint undo_rto_epoch
    uint32_t undo_cwnd
    uint32_t undo_ssthresh
    uint32_t undo_cwnd_prior
    uint32_t undo_cwnd_epoch
    uint64_t undo_epoch_start_ns
    double undo_w_max
    double undo_origin
    double undo_k
    double undo_w_est
    # Counters
    uint64_t n_acks             # ACKs that acknowledged new data
    uint64_t n_app_limited      # of those, ACKs that did not grow cwnd: not cwnd-limited
    uint64_t n_congestion       # reductions on fast-recovery entry
    uint64_t n_rto
    uint64_t n_undo
    uint64_t n_idle_restart
    uint64_t n_epochs           # CUBIC congestion-avoidance epochs started


cdef void cc_init(CongestionState *st, CcAlgorithm algorithm, uint32_t smss,
                  uint64_t now) noexcept nogil
cdef void cc_on_ack(CongestionState *st, uint32_t bytes_acked, uint32_t flight_size,
                    uint64_t rtt_ns, uint64_t now, bint cwnd_limited) noexcept nogil
cdef void cc_on_congestion(CongestionState *st, uint32_t flight_size, uint64_t now) noexcept nogil
cdef void cc_on_recovery_exit(CongestionState *st, uint64_t now) noexcept nogil
cdef void cc_on_rto(CongestionState *st, uint32_t flight_size, uint64_t now) noexcept nogil
cdef bint cc_on_spurious(CongestionState *st, uint64_t now) noexcept nogil
cdef bint cc_on_idle_restart(CongestionState *st, uint64_t now, uint64_t rto_ns) noexcept nogil
cdef void cc_on_syn_lost(CongestionState *st) noexcept nogil
cdef double cc_w_cubic(const CongestionState *st, double t) noexcept nogil


cdef inline void cc_on_send(CongestionState *st, uint64_t now) noexcept nogil:
    """Data went out at `now` (the idle timer of RFC 5681 §4.1 counts from here)."""
    st.last_send_ns = now


cdef inline bint cc_in_slow_start(const CongestionState *st) noexcept nogil:
    return st.cwnd < st.ssthresh        # RFC 5681 §3.1


cdef inline bint cc_window_full(const CongestionState *st, uint32_t flight_size) noexcept nogil:
    """Whether `flight_size` bytes in flight use the window (RFC 7661 §4.3 in spirit).

    Slow start may double cwnd in a round, so there half of it in flight counts as used
    (Linux tcp_is_cwnd_limited does the same); in congestion avoidance, the window is used
    when not even one more full segment fits.
    """
    if st.cwnd < st.ssthresh:
        return <uint64_t>flight_size * 2 >= st.cwnd
    return <uint64_t>flight_size + st.smss > st.cwnd
