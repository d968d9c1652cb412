# cython: language_level=3
"""Test support: a Python object owning one CongestionState, and a per-ACK cost loop.

Only for tests, simulations and benchmarks; the stack calls the cdef functions directly.
"""
from libc.stdint cimport uint32_t, uint64_t
from fastloop.net.tcp.congestion cimport (
    CongestionState, CcAlgorithm, CC_NEWRENO, CC_CUBIC, CC_CWND_MAX, CC_SMSS_MAX,
    CC_SSTHRESH_INF, FL_CUBIC_C, FL_CUBIC_BETA, FL_CUBIC_ALPHA, FL_CUBIC_FC,
    cc_init, cc_on_ack, cc_on_congestion, cc_on_recovery_exit, cc_on_rto, cc_on_spurious,
    cc_on_idle_restart, cc_on_syn_lost, cc_on_send, cc_w_cubic, cc_in_slow_start,
    cc_window_full)

NEWRENO = CC_NEWRENO
CUBIC = CC_CUBIC
CWND_MAX = CC_CWND_MAX
SMSS_MAX = CC_SMSS_MAX
SSTHRESH_INF = CC_SSTHRESH_INF
CUBIC_C = FL_CUBIC_C
BETA_CUBIC = FL_CUBIC_BETA
ALPHA_CUBIC = FL_CUBIC_ALPHA
FAST_CONVERGENCE_FACTOR = FL_CUBIC_FC

_COUNTERS = ("n_acks", "n_app_limited", "n_congestion", "n_rto", "n_undo",
             "n_idle_restart", "n_epochs")


cdef class CongestionControl:
    """One connection's congestion state; every method is the cc_* function of its name."""
    cdef CongestionState st

    def __init__(self, int algorithm=CC_NEWRENO, uint32_t smss=1460, uint64_t now=0):
        if algorithm not in (CC_NEWRENO, CC_CUBIC):
            raise ValueError(f"unknown algorithm {algorithm}")
        cc_init(&self.st, <CcAlgorithm>algorithm, smss, now)

    def on_ack(self, uint32_t bytes_acked, uint32_t flight_size, uint64_t rtt_ns=0,
               uint64_t now=0, bint cwnd_limited=True):
        cc_on_ack(&self.st, bytes_acked, flight_size, rtt_ns, now, cwnd_limited)

    def on_congestion(self, uint32_t flight_size, uint64_t now=0):
        cc_on_congestion(&self.st, flight_size, now)

    def on_recovery_exit(self, uint64_t now=0):
        cc_on_recovery_exit(&self.st, now)

    def on_rto(self, uint32_t flight_size, uint64_t now=0):
        cc_on_rto(&self.st, flight_size, now)

    def on_spurious(self, uint64_t now=0):
        return cc_on_spurious(&self.st, now)

    def on_idle_restart(self, uint64_t now, uint64_t rto_ns):
        return cc_on_idle_restart(&self.st, now, rto_ns)

    def on_send(self, uint64_t now):
        cc_on_send(&self.st, now)

    def on_syn_lost(self):
        cc_on_syn_lost(&self.st)

    def w_cubic(self, double t):
        """W_cubic(t) in bytes for the current epoch, t in seconds since t_epoch."""
        return cc_w_cubic(&self.st, t)

    def window_full(self, uint32_t flight_size):
        return cc_window_full(&self.st, flight_size)

    @property
    def in_slow_start(self):
        return cc_in_slow_start(&self.st)

    @property
    def state(self):
        """The whole struct as a dict (Cython converts struct fields by name)."""
        return self.st

    def counters(self):
        cdef dict d = self.st
        return {name: d[name] for name in _COUNTERS}

    @property
    def fast_convergence(self):
        return self.st.fast_convergence

    @fast_convergence.setter
    def fast_convergence(self, bint on):
        self.st.fast_convergence = on

    # The fields tests read most, by their RFC names.
    @property
    def algorithm(self): return <int>self.st.algorithm
    @property
    def smss(self): return self.st.smss
    @property
    def cwnd(self): return self.st.cwnd
    @cwnd.setter
    def cwnd(self, uint32_t value):
        """As a sender's PRR (RFC 6937) would during recovery; kept within the invariant."""
        self.st.cwnd = max(self.st.smss, min(value, CC_CWND_MAX))
    @property
    def ssthresh(self): return self.st.ssthresh
    @property
    def iw(self): return self.st.iw
    @property
    def w_max(self): return self.st.w_max
    @property
    def origin(self): return self.st.origin
    @property
    def k(self): return self.st.k
    @property
    def w_est(self): return self.st.w_est
    @property
    def cwnd_prior(self): return self.st.cwnd_prior
    @property
    def cwnd_epoch(self): return self.st.cwnd_epoch
    @property
    def epoch_start_ns(self): return self.st.epoch_start_ns if self.st.epoch_valid else None
    @property
    def in_recovery(self): return bool(self.st.in_recovery)


def bench_acks(int algorithm, uint64_t n, uint32_t smss=1460, uint64_t rtt_ns=10_000_000):
    """n calls of cc_on_ack in congestion avoidance, one SMSS each, ACK-clocked time; no
    Python between them. Returns the final cwnd (so the work is not optimised away)."""
    cdef CongestionState st
    cdef uint64_t i, now = 0
    cdef uint64_t step
    cc_init(&st, <CcAlgorithm>algorithm, smss, 0)
    st.cwnd = 1000 * smss
    cc_on_congestion(&st, st.cwnd, 0)
    cc_on_recovery_exit(&st, 0)
    with nogil:
        for i in range(n):
            step = rtt_ns * smss // st.cwnd     # an RTT's worth of ACKs per RTT
            now += step
            cc_on_ack(&st, smss, st.cwnd, rtt_ns, now, True)
            if st.cwnd >= 2000 * smss:          # keep it in the steady state
                cc_on_congestion(&st, st.cwnd, now)
                cc_on_recovery_exit(&st, now)
    return st.cwnd
