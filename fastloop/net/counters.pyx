# cython: language_level=3
"""Names of the counters, as `Stack.counters()` shows them."""

cdef const char *_NAMES[35]
_NAMES[:] = [
    b"eth_truncated", b"eth_not_our_mac", b"eth_multicast", b"eth_type", b"eth_src_invalid",
    b"arp_malformed", b"arp_not_for_us", b"arp_src_invalid",
    b"ip_truncated", b"ip_version", b"ip_header_length", b"ip_total_length", b"ip_checksum",
    b"ip_ttl_zero", b"ip_fragment", b"ip_options", b"ip_src_invalid", b"ip_not_for_us",
    b"ip_broadcast", b"ip_protocol",
    b"icmp_truncated", b"icmp_checksum", b"icmp_type", b"icmp_unmatched_reply",
    b"l4_unhandled", b"no_route", b"arp_queue_full", b"arp_unresolved", b"arp_table_full",
    b"tx_backlog_full", b"no_mbuf", b"multiseg", b"ip_too_big", b"arp_queues_full", b"?",
]

assert DROP_COUNT == 34

cdef const char *drop_name(int reason) noexcept:
    if reason < 0 or reason >= DROP_COUNT:
        return b"?"
    return _NAMES[reason]


cdef const char *_STATS[20]
_STATS[:] = [
    b"rx_frames", b"rx_bytes", b"tx_frames", b"tx_bytes",
    b"arp_requests_in", b"arp_replies_in", b"arp_requests_out", b"arp_replies_out",
    b"arp_gratuitous_out", b"ip_delivered", b"ip_out", b"ip_options_seen",
    b"icmp_echo_requests_in", b"icmp_echo_replies_out", b"icmp_echo_requests_out",
    b"icmp_echo_replies_in", b"icmp_unreach_out", b"icmp_errors_in", b"loopback_frames", b"?",
]

assert STAT_COUNT == 19

cdef const char *stat_name(int stat) noexcept:
    if stat < 0 or stat >= STAT_COUNT:
        return b"?"
    return _STATS[stat]


def stat_names():
    return [stat_name(i).decode() for i in range(STAT_COUNT)]


def drop_names():
    return [drop_name(i).decode() for i in range(DROP_COUNT)]
