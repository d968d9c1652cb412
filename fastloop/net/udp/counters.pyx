# cython: language_level=3
"""Names of the UDP counters (see counters.pxd), as `Stack.counters()['udp']` shows them."""

_NAMES = [
    b"datagrams_in", b"datagrams_out", b"bytes_in", b"bytes_out", b"no_port",
    b"ignored_broadcast", b"in_short", b"in_bad_length", b"in_bad_checksum", b"rcvbuf_errors",
    b"no_checksum_in", b"send_errors", b"icmp_errors_in", b"icmp_errors_unmatched",
]
assert len(_NAMES) == UDP_STAT_COUNT
cdef list _keep = _NAMES


cdef const char *udp_stat_name(int i) noexcept:
    if i < 0 or i >= UDP_STAT_COUNT:
        return b"?"
    return <bytes>_keep[i]


def udp_stat_names():
    return [n.decode() for n in _NAMES]
