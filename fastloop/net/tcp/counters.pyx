# cython: language_level=3
"""Names of the TCP counters (see counters.pxd), as `Stack.counters()['tcp']` shows them."""

_NAMES = [
    b"segments_in", b"segments_out", b"bytes_in", b"bytes_out",
    b"retransmits_rto", b"retransmits_fast", b"retransmits_partial", b"retransmits_sack",
    b"retransmits_syn", b"duplicate_segments_in", b"out_of_order_in", b"out_of_order_dropped",
    b"dupacks_in", b"rst_in", b"rst_out", b"active_opens", b"passive_opens", b"failed_connects",
    b"established_resets", b"timeouts", b"bad_checksum", b"bad_header", b"no_listener",
    b"paws_dropped", b"out_of_window", b"challenge_acks", b"challenge_acks_limited",
    b"syncookies_sent", b"syncookies_ok", b"syncookies_failed", b"listen_overflows",
    b"delayed_acks", b"window_probes", b"keepalive_probes", b"time_wait_reused",
    b"zero_window_advertised", b"sack_recoveries", b"sack_lost_retransmits",
    b"retransmits_rescue", b"sack_blocks_bogus", b"dsack_blocks_in",
    b"loss_probes", b"reassembly_budget_dropped", b"rcvbuf_grown", b"sndbuf_grown",
    b"time_wait_overflows",
]
assert len(_NAMES) == TCP_STAT_COUNT
cdef list _keep = _NAMES


cdef const char *tcp_stat_name(int i) noexcept:
    if i < 0 or i >= TCP_STAT_COUNT:
        return b"?"
    return <bytes>_keep[i]


def tcp_stat_names():
    return [n.decode() for n in _NAMES]
