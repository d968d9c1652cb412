# cython: language_level=3
# UDP counters, like `netstat -su` (names in counters.pyx). Every datagram IP hands to UDP
# ends in exactly one of: DATAGRAMS_IN, NO_PORT, IGNORED_BROADCAST, IN_SHORT, IN_BAD_LENGTH,
# IN_BAD_CHECKSUM, RCVBUF_ERRORS.
cdef enum:
    UDP_DATAGRAMS_IN = 0       # delivered to an endpoint (or queued on it while paused)
    UDP_DATAGRAMS_OUT
    UDP_BYTES_IN               # payload
    UDP_BYTES_OUT
    UDP_NO_PORT                # unicast to a port nobody bound: ICMP port unreachable sent
    UDP_IGNORED_BROADCAST      # broadcast/multicast nobody takes: no ICMP (RFC 1122 §4.1.3.1)
    UDP_IN_SHORT               # shorter than the 8-byte header
    UDP_IN_BAD_LENGTH          # length field below 8 or past the IP payload
    UDP_IN_BAD_CHECKSUM        # by our check or the PMD's
    UDP_RCVBUF_ERRORS          # reading paused and the endpoint's queue full
    UDP_NO_CHECKSUM_IN         # accepted with checksum 0: the sender computed none (RFC 768)
    UDP_SEND_ERRORS            # refused: EMSGSIZE, ENETUNREACH, ENOBUFS, EDESTADDRREQ
                               # (not bad arguments: EINVAL, EBADF)
    UDP_ICMP_ERRORS_IN         # an ICMP error reported to an endpoint
    UDP_ICMP_ERRORS_UNMATCHED  # about no endpoint of ours (or a malformed quote)
    UDP_STAT_COUNT

cdef const char *udp_stat_name(int i) noexcept
