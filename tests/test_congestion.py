"""Congestion control (fastloop/net/tcp/congestion.pyx): NewReno and CUBIC, with explicit time.

The sender is simulated by ACK clocking: a round sends one window at time `now`, and its ACKs
come back spread evenly over the next RTT (each one reporting the window as the flight).
"""
import math

import pytest
from hypothesis import given, settings, strategies as st

from fastloop.net.tcp.congestion_testing import (
    ALPHA_CUBIC, BETA_CUBIC, CUBIC, CUBIC_C, CWND_MAX, NEWRENO, SSTHRESH_INF,
    CongestionControl, bench_acks)

SMSS = 1460
MS = 1_000_000
S = 1_000_000_000
ALGORITHMS = [pytest.param(NEWRENO, id="newreno"), pytest.param(CUBIC, id="cubic")]
BETA = {NEWRENO: 0.5, CUBIC: 0.7}


def ack_round(cc, now, rtt_ns, ack_bytes=SMSS, limited=True):
    """One RTT of ACK clocking for the window sent at `now`; returns the round's end time."""
    flight = cc.cwnd
    acked = 0
    while acked < flight:
        b = min(ack_bytes, flight - acked)
        acked += b
        cc.on_ack(b, flight, rtt_ns, now + rtt_ns * acked // flight, limited)
    return now + rtt_ns


def grown(algorithm, rounds, smss=SMSS):
    """A connection after `rounds` rounds of slow start from IW (no loss): IW * 2**rounds."""
    cc = CongestionControl(algorithm, smss, 0)
    now = 0
    for _ in range(rounds):
        now = ack_round(cc, now, 10 * MS, smss)
    return cc, now


def after_loss(algorithm, rounds, rtt_ns):
    """Slow start for `rounds` rounds, a loss with the whole window in flight, recovery done
    one RTT later. Returns (cc, now, window before the loss)."""
    cc, now = grown(algorithm, rounds)
    w = cc.cwnd
    cc.on_congestion(w, now)
    now += rtt_ns
    cc.on_recovery_exit(now)
    return cc, now, w


# -- Initial window ------------------------------------------------------------------------

@pytest.mark.parametrize("smss, iw", [
    (536, 5360), (1024, 10240), (1460, 14600), (4000, 14600), (8960, 17920),
    (9000, 18000), (65535, 131070),
])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_initial_window_is_rfc6928_iw10(algorithm, smss, iw):
    cc = CongestionControl(algorithm, smss, 123)
    assert iw == min(10 * smss, max(2 * smss, 14600))
    assert (cc.cwnd, cc.iw, cc.smss) == (iw, iw, smss)
    assert cc.ssthresh == SSTHRESH_INF and cc.in_slow_start and not cc.in_recovery


def test_smss_is_clamped_to_a_16_bit_mss():
    assert CongestionControl(NEWRENO, 0).smss == 1
    assert CongestionControl(NEWRENO, 100_000).smss == 65535
    with pytest.raises(ValueError):
        CongestionControl(7, 1460)


def test_syn_loss_means_a_one_segment_initial_window():
    cc = CongestionControl(CUBIC, SMSS)
    cc.on_syn_lost()
    assert cc.cwnd == SMSS and cc.iw == SMSS


# -- Slow start ------------------------------------------------------------------------------

@pytest.mark.parametrize("segments_per_ack", [1, 2])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_slow_start_doubles_per_rtt(algorithm, segments_per_ack):
    """RFC 5681 §3.1 with byte counting (RFC 3465): per-segment and delayed ACKs double alike."""
    cc = CongestionControl(algorithm, SMSS)
    now = 0
    for _ in range(8):
        before = cc.cwnd
        now = ack_round(cc, now, 20 * MS, segments_per_ack * SMSS)
        assert cc.cwnd == 2 * before
    assert cc.cwnd == 14600 * 256 and cc.in_slow_start


def test_slow_start_counts_at_most_two_smss_per_ack():
    """RFC 3465 §2.2, L = 2*SMSS: a stretch ACK of 4 segments earns 2 -> x1.5 per round."""
    cc = CongestionControl(NEWRENO, SMSS)
    now = ack_round(cc, 0, 20 * MS, 4 * SMSS)
    # 14600 = 2 ACKs of 4 segments and one of 2: 2*2920 + 2920
    assert cc.cwnd == 14600 + 3 * 2 * SMSS


def test_slow_start_stops_at_ssthresh_and_the_rest_goes_to_avoidance():
    cc, now, w = after_loss(NEWRENO, 4, 10 * MS)       # ssthresh = 116800
    cc.on_rto(cc.cwnd, now)                           # ssthresh = 58400, cwnd = 1460
    ssthresh = cc.ssthresh
    assert ssthresh == 116800 // 2
    now += 10 * MS
    for _ in range(40):
        now = ack_round(cc, now, 10 * MS)
        if not cc.in_slow_start:
            break
    # slow start ends exactly at ssthresh; congestion avoidance then adds 1 SMSS per round
    assert cc.cwnd - ssthresh in range(0, SMSS + 1)
    c = cc.cwnd
    ack_round(cc, now, 10 * MS)
    assert cc.cwnd in (c + SMSS, c + 2 * SMSS)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_slow_start_after_rto_counts_one_smss_per_ack(algorithm):
    """RFC 3465 §2.3: L = 1*SMSS after a timeout, so delayed ACKs grow x1.5 per round."""
    cc, now = grown(algorithm, 6)
    cc.on_rto(cc.cwnd, now)
    cc.on_ack(2 * SMSS, 2 * SMSS, 0, now + 1)         # acks the retransmission and one more
    assert cc.cwnd == 2 * SMSS
    cc.on_ack(2 * SMSS, 2 * SMSS, 0, now + 2)
    assert cc.cwnd == 3 * SMSS


# -- Loss: fast recovery and RTO ---------------------------------------------------------------

@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_fast_recovery_entry_sets_ssthresh_and_cwnd(algorithm):
    cc, now = grown(algorithm, 5)
    w = cc.cwnd
    assert w == 467200
    cc.on_congestion(w, now)
    expected = int(w * BETA[algorithm])
    assert cc.ssthresh == expected and cc.cwnd == expected
    assert cc.w_max == w and cc.cwnd_prior == w
    assert cc.in_recovery and cc.counters()["n_congestion"] == 1


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_ssthresh_follows_flight_size_not_cwnd(algorithm):
    """RFC 5681 §3.1 eq. 4 / RFC 9438 §4.6 use FlightSize; and never below 2*SMSS."""
    cc, now = grown(algorithm, 5)
    cc.on_congestion(100_000, now)
    assert cc.ssthresh == int(100_000 * BETA[algorithm]) == cc.cwnd
    cc2, now = grown(algorithm, 5)
    cc2.on_congestion(SMSS, now)
    assert cc2.ssthresh == 2 * SMSS == cc2.cwnd


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_no_growth_during_recovery_and_one_reduction_per_recovery(algorithm):
    cc, now = grown(algorithm, 5)
    cc.on_congestion(cc.cwnd, now)
    c, s = cc.cwnd, cc.ssthresh
    for i in range(50):
        cc.on_ack(SMSS, c, 10 * MS, now + i)
    cc.on_congestion(c, now + 100)                    # a second loss in the same window
    assert (cc.cwnd, cc.ssthresh) == (c, s)
    assert cc.counters()["n_congestion"] == 1
    cc.on_recovery_exit(now + 200)
    assert not cc.in_recovery and cc.cwnd == s
    cc.on_ack(SMSS, c, 10 * MS, now + 300)            # congestion avoidance again
    assert cc.cwnd >= s


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_recovery_exit_sets_cwnd_to_ssthresh(algorithm):
    """RFC 6582 §3.2 step 3 (2); also undoes a sender's PRR (RFC 6937) reduction of cwnd."""
    cc, now = grown(algorithm, 5)
    cc.on_congestion(cc.cwnd, now)
    cc.cwnd = 3 * SMSS                                # the sender's PRR lowered it
    cc.on_recovery_exit(now + 1)
    assert cc.cwnd == cc.ssthresh
    cc.cwnd = 3 * SMSS
    cc.on_recovery_exit(now + 2)                      # not in recovery: nothing
    assert cc.cwnd == 3 * SMSS


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_rto_collapses_to_one_smss(algorithm):
    cc, now = grown(algorithm, 5)
    w = cc.cwnd
    cc.on_rto(w, now)
    assert cc.cwnd == SMSS
    assert cc.ssthresh == max(int(w * BETA[algorithm]), 2 * SMSS)
    # the same data times out again, no ACK in between: ssthresh held (RFC 5681 §3.1)
    s = cc.ssthresh
    cc.on_rto(SMSS, now + S)
    assert cc.cwnd == SMSS and cc.ssthresh == s
    # after progress, a new timeout reduces again
    cc.on_ack(SMSS, SMSS, 0, now + 2 * S)
    cc.on_rto(cc.cwnd, now + 3 * S)
    assert cc.ssthresh == 2 * SMSS and cc.cwnd == SMSS
    assert cc.counters()["n_rto"] == 3


def test_rto_during_recovery_ends_recovery():
    cc, now = grown(CUBIC, 5)
    cc.on_congestion(cc.cwnd, now)
    cc.on_rto(cc.cwnd, now + S)
    assert not cc.in_recovery and cc.cwnd == SMSS
    cc.on_ack(SMSS, SMSS, 0, now + S + 1)
    assert cc.cwnd == 2 * SMSS                         # slow start again


# -- NewReno congestion avoidance --------------------------------------------------------------

def test_newreno_adds_exactly_one_smss_per_rtt():
    cc, now, w = after_loss(NEWRENO, 5, 20 * MS)
    start = cc.cwnd
    for i in range(1, 31):
        now = ack_round(cc, now, 20 * MS)
        assert cc.cwnd == start + i * SMSS


def test_newreno_linear_growth_does_not_depend_on_delayed_acks():
    cc, now, w = after_loss(NEWRENO, 5, 20 * MS)
    start = cc.cwnd
    for _ in range(30):
        now = ack_round(cc, now, 20 * MS, 2 * SMSS)
    # byte counting (RFC 3465 §2.1): 1 SMSS per window of bytes, whatever the ACK size
    assert abs((cc.cwnd - start) / SMSS - 30) <= 1


# -- CUBIC ------------------------------------------------------------------------------------

def w_cubic_segments(t, w_max, k):
    return CUBIC_C * (t - k) ** 3 + w_max


def test_cubic_k_is_cbrt_of_wmax_times_one_minus_beta_over_c():
    cc, now, w = after_loss(CUBIC, 7, 100 * MS)
    assert w == 1280 * SMSS and cc.cwnd == 896 * SMSS
    assert cc.k == 0.0 and cc.epoch_start_ns is None   # the epoch starts with the first ACK
    cc.on_ack(SMSS, cc.cwnd, 100 * MS, now + MS)
    k = math.cbrt(1280 * (1 - BETA_CUBIC) / CUBIC_C)   # 9.865 s
    assert cc.k == pytest.approx(k, rel=1e-12)
    assert cc.epoch_start_ns == now + MS and cc.cwnd_epoch == 896 * SMSS
    assert cc.origin == cc.w_max == w and cc.w_est >= 896 * SMSS
    assert cc.w_cubic(0.0) == pytest.approx(896 * SMSS) and cc.w_cubic(k) == pytest.approx(w)


def test_cubic_follows_w_cubic_concave_then_convex():
    """RTT 100 ms, W_max 1280 segments: cubic beats the Reno estimate for the whole run.

    Tolerance: cwnd aims at W_cubic(t + RTT) and gets there over the following RTT of ACKs,
    so at a round boundary it sits between W_cubic(t - RTT) and W_cubic(t + RTT); allow that
    span plus 2 SMSS for integer steps and the in-round change of cwnd.
    """
    rtt = 100 * MS
    cc, now, w = after_loss(CUBIC, 7, rtt)
    wmax = w / SMSS
    k = math.cbrt(wmax * (1 - BETA_CUBIC) / CUBIC_C)
    samples = []
    while True:
        now = ack_round(cc, now, rtt)
        t = (now - cc.epoch_start_ns) / S
        if t > 2 * k:
            break
        c = cc.cwnd / SMSS
        lo = w_cubic_segments(t - rtt / S, wmax, k)
        hi = w_cubic_segments(t + rtt / S, wmax, k)
        assert lo - 2 <= c <= hi + 2, (t, c, lo, hi)
        assert cc.w_est / SMSS < c                    # never in the Reno-friendly region here
        samples.append((t, c))
    growth = [(t, c1 - c0) for (_, c0), (t, c1) in zip(samples, samples[1:])]

    def mean_growth(a, b):
        g = [d for t, d in growth if a * k <= t < b * k]
        return sum(g) / len(g)

    # concave: growth slows toward W_max; plateau near K; convex: speeds up again
    assert mean_growth(0, 0.3) > 3 * mean_growth(0.7, 1.0)
    assert mean_growth(1.7, 2.0) > 3 * mean_growth(1.0, 1.3)
    at_k = min(samples, key=lambda s: abs(s[0] - k))[1]
    assert abs(at_k - wmax) < 0.01 * wmax
    assert all(d >= 0 for _, d in growth)


def test_cubic_target_is_clamped_to_one_and_a_half_cwnd():
    """RFC 9438 §4.2: far past K, W_cubic(t + RTT) is huge; growth per round is at most x1.5."""
    cc, now, w = after_loss(CUBIC, 3, 100 * MS)      # small window, huge convex jump ahead
    now = ack_round(cc, now, 100 * MS)               # starts the epoch
    now += 60 * S                                    # a minute later, t - K >> 0
    for _ in range(5):
        before = cc.cwnd
        now = ack_round(cc, now, 100 * MS)
        assert before < cc.cwnd <= 1.5 * before + SMSS


def test_cubic_reno_friendly_region_when_rtt_is_short():
    """RTT 1 ms, W_max 100 segments: W_cubic hardly moves in a few tens of ms, W_est
    grows alpha_cubic = 0.53 SMSS per RTT, then 1 SMSS per RTT once past cwnd_prior (§4.3)."""
    rtt = MS
    cc, now = grown(CUBIC, 0)
    while cc.cwnd < 100 * SMSS:
        now = ack_round(cc, now, rtt)
    cc.on_congestion(cc.cwnd, now)
    cc.on_recovery_exit(now + rtt)
    now += rtt
    prior = cc.cwnd_prior
    start = cc.cwnd
    for _ in range(40):
        now = ack_round(cc, now, rtt)
    t = (now - cc.epoch_start_ns) / S
    assert cc.cwnd > cc.w_cubic(t) + 10 * SMSS        # well above the cubic curve
    assert cc.cwnd == int(cc.w_est)                   # cwnd = W_est
    per_rtt = (cc.cwnd - start) / SMSS / 40
    assert ALPHA_CUBIC * 0.85 < per_rtt < ALPHA_CUBIC * 1.05
    while cc.w_est < prior:
        now = ack_round(cc, now, rtt)
    start = cc.cwnd
    for _ in range(40):
        now = ack_round(cc, now, rtt)
    per_rtt = (cc.cwnd - start) / SMSS / 40
    assert 0.9 < per_rtt < 1.05                       # alpha = 1 past cwnd_prior


@pytest.mark.parametrize("fast_convergence", [True, False])
def test_cubic_fast_convergence(fast_convergence):
    rtt = 100 * MS
    cc, now, w1 = after_loss(CUBIC, 7, rtt)
    cc.fast_convergence = fast_convergence
    for _ in range(20):                               # 2 s: still well below W_max
        now = ack_round(cc, now, rtt)
    c2 = cc.cwnd
    assert c2 < w1
    cc.on_congestion(c2, now)
    if fast_convergence:                              # RFC 9438 §4.7
        assert cc.w_max == pytest.approx(c2 * (1 + BETA_CUBIC) / 2)
    else:
        assert cc.w_max == c2
    cc.on_recovery_exit(now + rtt)
    now = ack_round(cc, now + rtt, rtt)
    assert cc.k == pytest.approx(math.cbrt((cc.w_max - int(c2 * 0.7)) / SMSS / CUBIC_C))


def test_cubic_no_fast_convergence_when_loss_is_past_w_max():
    rtt = 100 * MS
    cc, now, w1 = after_loss(CUBIC, 7, rtt)
    while cc.cwnd <= w1 + 10 * SMSS:
        now = ack_round(cc, now, rtt)
    c2 = cc.cwnd
    cc.on_congestion(c2, now)
    assert cc.w_max == c2


def test_cubic_after_rto_k_is_zero_and_w_max_is_cwnd_epoch():
    """RFC 9438 §4.8: the first avoidance stage after a timeout is all convex from cwnd,
    even though the W_max of the earlier loss (1280 segments) is far above."""
    rtt = 50 * MS
    cc, now, w = after_loss(CUBIC, 7, rtt)
    for _ in range(5):
        now = ack_round(cc, now, rtt)
    assert cc.w_max == w
    cc.on_rto(cc.cwnd, now)
    assert cc.ssthresh < w * 0.7 * 0.75
    while cc.in_slow_start:
        now = ack_round(cc, now, rtt)
    now = ack_round(cc, now, rtt)
    assert cc.k == 0.0
    assert cc.w_max == cc.origin == cc.cwnd_epoch == cc.ssthresh
    assert cc.w_est >= cc.cwnd_epoch
    w0 = cc.cwnd_epoch / SMSS
    growth = []
    while now - cc.epoch_start_ns < 12 * S:
        c = cc.cwnd
        now = ack_round(cc, now, rtt)
        growth.append(cc.cwnd - c)
    # first the Reno-friendly estimate leads (the curve is flat at its origin), then the
    # convex curve C*t^3 + cwnd_epoch takes over; with K = 1280-segment W_max it would
    # instead be on its plateau near 1280 segments at t = 12 s
    assert sum(growth[:10]) / SMSS / 10 == pytest.approx(ALPHA_CUBIC, rel=0.1)
    assert sum(growth[-10:]) > 5 * sum(growth[:10])
    t = (now - cc.epoch_start_ns) / S
    c = cc.cwnd / SMSS
    assert w_cubic_segments(t - rtt / S, w0, 0) - 2 <= c <= w_cubic_segments(t + rtt / S, w0, 0) + 2


# -- Application-limited ---------------------------------------------------------------------

@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_app_limited_does_not_grow(algorithm):
    cc = CongestionControl(algorithm, SMSS)
    for i in range(100):                              # slow start, 2 segments in flight of 10
        cc.on_ack(SMSS, 2 * SMSS, 10 * MS, i * MS, False)
    assert cc.cwnd == 14600 and cc.counters()["n_app_limited"] == 100
    cc.on_ack(SMSS, 5 * SMSS, 10 * MS, 200 * MS, False)   # half the window in flight: used
    assert cc.cwnd == 14600 + SMSS
    cc2, now, w = after_loss(algorithm, 5, 10 * MS)
    c = cc2.cwnd
    for i in range(1000):                             # avoidance, a tenth of cwnd in flight
        cc2.on_ack(SMSS, c // 10, 10 * MS, now + i * MS, False)
    assert cc2.cwnd == c


def test_cubic_app_limited_time_is_not_in_t():
    """RFC 9438 §5.8: t_epoch moves forward by the app-limited time."""
    rtt = 100 * MS
    cc, now, w = after_loss(CUBIC, 7, rtt)
    now = ack_round(cc, now, rtt)
    epoch = cc.epoch_start_ns
    c = cc.cwnd
    for i in range(1, 101):                           # 10 s of ACKs for little data
        cc.on_ack(SMSS, SMSS, rtt, now + i * rtt, False)
    assert cc.cwnd == c
    assert cc.epoch_start_ns == epoch + 100 * rtt


# -- Idle restart ------------------------------------------------------------------------------

@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_idle_restart_window(algorithm):
    cc, now = grown(algorithm, 4)
    c = cc.cwnd
    rto = 200 * MS
    cc.on_send(now)
    assert not cc.on_idle_restart(now + rto, rto)     # not idle for more than an RTO
    assert cc.cwnd == c
    assert cc.on_idle_restart(now + rto + 1, rto)     # RFC 5681 §4.1: RW = min(IW, cwnd)
    assert cc.cwnd == 14600 and cc.ssthresh == SSTHRESH_INF
    cc3, now3, w = after_loss(algorithm, 1, 10 * MS)   # loss at 20 segments
    while cc3.cwnd * 3 // 4 <= cc3.ssthresh:          # grow well past ssthresh
        now3 = ack_round(cc3, now3, 10 * MS)
    c3 = cc3.cwnd
    cc3.on_send(now3)
    assert cc3.on_idle_restart(now3 + S, rto)
    # ssthresh keeps 3/4 of the old window (RFC 2861 §3), so slow start climbs back
    assert cc3.cwnd == 14600 and cc3.ssthresh == c3 * 3 // 4
    assert cc3.counters()["n_idle_restart"] == 1
    small = CongestionControl(algorithm, SMSS)        # cwnd = IW already: nothing to do
    assert not small.on_idle_restart(10 * S, rto) and small.cwnd == 14600


# -- Spurious-loss undo --------------------------------------------------------------------------

@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("signal", ["congestion", "rto"])
def test_spurious_loss_undo_restores_the_state_before(algorithm, signal):
    rtt = 50 * MS
    cc, now, w = after_loss(algorithm, 6, rtt)
    for _ in range(5):
        now = ack_round(cc, now, rtt)
    before = cc.state
    getattr(cc, "on_" + signal)(cc.cwnd, now)
    assert cc.cwnd < before["cwnd"]
    cc.on_recovery_exit(now + rtt)                    # the news comes late: after recovery,
    now = ack_round(cc, now + rtt, rtt)               # a round later (new CUBIC epoch)
    assert cc.cwnd < cc.cwnd_prior == before["cwnd"]
    assert cc.on_spurious(now)                        # RFC 9438 §4.9
    after = cc.state
    for f in ("cwnd", "ssthresh", "cwnd_prior", "w_max", "origin", "k", "w_est",
              "epoch_valid", "epoch_start_ns", "rto_epoch"):
        assert after[f] == before[f], f
    assert not cc.in_recovery and cc.counters()["n_undo"] == 1
    assert not cc.on_spurious(now + 2 * rtt)          # one undo per signal


def test_late_spurious_detection_keeps_current_values():
    rtt = 50 * MS
    cc, now = grown(NEWRENO, 5)
    cc.on_congestion(cc.cwnd, now)
    cc.on_recovery_exit(now)
    while cc.cwnd < cc.cwnd_prior:
        now = ack_round(cc, now, rtt)
    c = cc.cwnd
    assert not cc.on_spurious(now)
    assert cc.cwnd == c


# -- Bounds ------------------------------------------------------------------------------------

@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_cwnd_saturates_at_cwnd_max(algorithm):
    smss = 65535
    cc = CongestionControl(algorithm, smss)
    now, prev = 0, cc.cwnd
    for i in range(20_000):
        now += 10 * MS
        cc.on_ack(0xFFFFFFFF, 0xFFFFFFFF, 10 * MS, now)
        assert prev <= cc.cwnd <= CWND_MAX
        prev = cc.cwnd
    assert cc.cwnd == CWND_MAX
    cc.on_congestion(0xFFFFFFFF, now)                 # flight beyond any window
    assert cc.cwnd == cc.ssthresh <= CWND_MAX
    cc.on_recovery_exit(now)
    for i in range(2000):                             # avoidance, hours later: still capped
        now += 10 * S
        cc.on_ack(0xFFFFFFFF, 0xFFFFFFFF, 10 * MS, now)
        assert cc.cwnd <= CWND_MAX and cc.w_est <= CWND_MAX
    assert cc.cwnd == CWND_MAX


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_cwnd_never_below_one_smss(algorithm):
    cc = CongestionControl(algorithm, SMSS)
    for i in range(50):
        cc.on_rto(0, i * S)
        assert cc.cwnd == SMSS and cc.ssthresh >= 2 * SMSS
        cc.on_congestion(0, i * S + 1)
        assert cc.cwnd == 2 * SMSS == cc.ssthresh
        cc.on_recovery_exit(i * S + 2)


# -- Random sequences --------------------------------------------------------------------------

op = st.one_of(
    st.tuples(st.just("ack"), st.integers(0, (1 << 32) - 1), st.integers(0, (1 << 32) - 1),
              st.integers(0, 10 * S), st.integers(0, 10 * S), st.booleans()),
    st.tuples(st.just("ack"), st.integers(0, 3 * 65535), st.integers(0, 1 << 22),
              st.integers(0, S), st.integers(0, 100 * MS), st.booleans()),
    st.tuples(st.just("congestion"), st.integers(0, (1 << 32) - 1), st.integers(0, S)),
    st.tuples(st.just("rto"), st.integers(0, (1 << 32) - 1), st.integers(0, 10 * S)),
    st.tuples(st.just("exit"), st.integers(0, S)),
    st.tuples(st.just("spurious"), st.integers(0, S)),
    st.tuples(st.just("idle"), st.integers(0, 100 * S), st.integers(0, 10 * S)),
    st.tuples(st.just("send"), st.integers(0, S)),
)


@settings(max_examples=400, deadline=None)
@given(algorithm=st.sampled_from([NEWRENO, CUBIC]), smss=st.integers(1, 65535),
       start=st.integers(0, 1 << 62), fast_convergence=st.booleans(),
       ops=st.lists(op, max_size=120))
def test_random_events_keep_the_invariants(algorithm, smss, start, fast_convergence, ops):
    cc = CongestionControl(algorithm, smss, start)
    cc.fast_convergence = fast_convergence
    now = start
    for o in ops:
        kind = o[0]
        if kind == "ack":
            _, acked, flight, rtt, dt, limited = o
            now += dt
            before = cc.cwnd
            cc.on_ack(acked, flight, rtt, now, limited)
            if cc.in_recovery or acked == 0:
                assert cc.cwnd == before
            else:
                assert cc.cwnd >= before              # ACKs never shrink the window
        elif kind == "congestion":
            was = cc.in_recovery
            now += o[2]
            cc.on_congestion(o[1], now)
            assert cc.in_recovery
            if not was:
                assert cc.cwnd == cc.ssthresh
        elif kind == "rto":
            now += o[2]
            cc.on_rto(o[1], now)
            assert cc.cwnd == smss and not cc.in_recovery
        elif kind == "exit":
            now += o[1]
            cc.on_recovery_exit(now)
            assert not cc.in_recovery
        elif kind == "spurious":
            now += o[1]
            cc.on_spurious(now)
        elif kind == "idle":
            now += o[1]
            cc.on_idle_restart(now, o[2])
        else:
            now += o[1]
            cc.on_send(now)
        s = cc.state
        assert smss <= cc.cwnd <= CWND_MAX
        assert cc.ssthresh >= 2 * smss
        assert s["ca_acked"] <= max(cc.cwnd, 1 << 32)
        for f in ("w_max", "origin", "k", "w_est", "cwnd_acc"):
            assert math.isfinite(s[f]) and s[f] >= 0, f
        assert s["w_est"] <= CWND_MAX and s["cwnd_acc"] < 1.0 + 1e-9
        if s["epoch_valid"]:
            assert s["epoch_start_ns"] <= now


def test_per_ack_cost_loop_runs():
    """The C loop the benchmark times: ends in a sane steady state for both algorithms."""
    for algorithm in (NEWRENO, CUBIC):
        cwnd = bench_acks(algorithm, 100_000)
        assert 500 * 1460 <= cwnd <= 2000 * 1460
