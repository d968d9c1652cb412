# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Datagram arrival (RFC 768, RFC 1122 §4.1.3) and ICMP errors about datagrams we sent.

udp_input validates (length, checksum), demultiplexes on the port, and either hands the
payload to the endpoint's sink (a pointer into the mbuf: the sink makes the one copy), queues
it while the endpoint's reading is paused, or answers port unreachable.
"""
from libc.errno cimport (
    ECONNREFUSED, EHOSTUNREACH, ENETUNREACH, EMSGSIZE, ENOPROTOOPT, EOPNOTSUPP, EHOSTDOWN,
    ENONET)
from libc.stdint cimport uint16_t, uint32_t, uint64_t
from libc.stdlib cimport realloc
from fastloop.includes.dpdk cimport (
    fl_mbuf, fl_mbuf_data, fl_mbuf_data_len, fl_mbuf_adj, fl_mbuf_trim, fl_mbuf_prepend,
    fl_mbuf_rx_l4_cksum_bad, fl_mbuf_rx_l4_cksum_good)
from fastloop.net.wire.bytes cimport load16, load32
from fastloop.net.wire.ipv4 cimport Ipv4Header, IPV4_HDR_LEN
from fastloop.net.wire.icmp cimport (
    ICMP_DEST_UNREACH, ICMP_TIME_EXCEEDED, ICMP_CODE_PORT_UNREACH)
from fastloop.net.wire.udp cimport (
    UdpHeader, udp_parse, UDP_OK, UDP_TRUNCATED, UDP_BAD_LENGTH, UDP_BAD_CHECKSUM, UDP_HDR_LEN)
from fastloop.net.udp.counters cimport *
from fastloop.net.udp.endpoint cimport (
    UdpLayerBase, UdpEndpoint, UdpSink, QueuedDatagram, ep_accepts, UDP_QUEUE_CHARGE)

# ICMP destination-unreachable codes (RFC 792, RFC 1122 §3.2.2.1, RFC 1812 §5.2.7.1) as the
# errno an application sees: Linux's icmp_err_convert table
cdef int[16] UNREACH_ERRNO
UNREACH_ERRNO[:] = [ENETUNREACH, EHOSTUNREACH, ENOPROTOOPT, ECONNREFUSED, EMSGSIZE, EOPNOTSUPP,
                    ENETUNREACH, EHOSTDOWN, ENONET, ENETUNREACH, EHOSTUNREACH, ENETUNREACH,
                    EHOSTUNREACH, EHOSTUNREACH, EHOSTUNREACH, EHOSTUNREACH]


cdef int icmp_errno(int type, int code) noexcept:
    if type == ICMP_DEST_UNREACH:
        return UNREACH_ERRNO[code] if 0 <= code < 16 else EHOSTUNREACH
    if type == ICMP_TIME_EXCEEDED:
        return EHOSTUNREACH
    return 0


cdef UdpEndpoint lookup(UdpLayerBase L, uint32_t dst, uint16_t dport, uint32_t src,
                        uint16_t sport, bint broadcast):
    """The endpoint for the datagram; with no SO_REUSEADDR at most one can match."""
    cdef void *p = L.port_head[dport]
    cdef UdpEndpoint ep
    while p != NULL:
        ep = <UdpEndpoint>p
        if ep_accepts(ep, dst, src, sport, broadcast):
            return ep
        p = ep.next_on_port
    return None


cdef void udp_input(UdpLayerBase L, fl_mbuf *m, Ipv4Header *ip, bint broadcast,
                    uint64_t now) noexcept:
    """m is at the UDP header and trimmed to the IP payload; consumes m."""
    cdef UdpHeader h
    cdef bint pmd_bad = fl_mbuf_rx_l4_cksum_bad(m)
    cdef bint verify = not pmd_bad and not fl_mbuf_rx_l4_cksum_good(m)
    cdef int err = udp_parse(fl_mbuf_data(m), fl_mbuf_data_len(m), &h, ip.src, ip.dst, verify)
    if err == UDP_OK and pmd_bad and h.checksum != 0:    # checksum 0 is none (RFC 768)
        err = UDP_BAD_CHECKSUM
    if err != UDP_OK:
        L.stats[UDP_IN_SHORT if err == UDP_TRUNCATED else
                UDP_IN_BAD_LENGTH if err == UDP_BAD_LENGTH else UDP_IN_BAD_CHECKSUM] += 1
        L.iface.mbuf_free(m)
        return
    if h.checksum == 0:
        L.stats[UDP_NO_CHECKSUM_IN] += 1
    # multicast: we join no group, so no endpoint takes it
    cdef UdpEndpoint ep = None
    if (ip.dst >> 28) != 14:
        ep = lookup(L, ip.dst, h.dst_port, ip.src, h.src_port, broadcast)
    if ep is None:
        if broadcast:                                   # RFC 1122 §4.1.3.1: no ICMP
            L.stats[UDP_IGNORED_BROADCAST] += 1
        else:
            L.stats[UDP_NO_PORT] += 1
            fl_mbuf_prepend(m, ip.header_len)           # the quote starts at the IP header
            L.iface.icmp_send_unreachable(m, ip, ICMP_CODE_PORT_UNREACH, now)
        L.iface.mbuf_free(m)
        return
    fl_mbuf_adj(m, UDP_HDR_LEN)
    if fl_mbuf_data_len(m) > h.length - UDP_HDR_LEN:    # bytes past the UDP length are not ours
        fl_mbuf_trim(m, <uint16_t>(fl_mbuf_data_len(m) - (h.length - UDP_HDR_LEN)))
    deliver(L, ep, m, ip.src, h.src_port)


cdef void deliver(UdpLayerBase L, UdpEndpoint ep, fl_mbuf *m, uint32_t addr,
                  uint16_t port) noexcept:
    """m is at the payload; consumes m. Queued (in order) while the endpoint is paused."""
    cdef uint32_t n = fl_mbuf_data_len(m)
    if ep.reading_paused or ep.q_len:
        if not enqueue(L, ep, m, addr, port):
            L.stats[UDP_RCVBUF_ERRORS] += 1
            L.iface.mbuf_free(m)
            return
        L.stats[UDP_DATAGRAMS_IN] += 1
        L.stats[UDP_BYTES_IN] += n
        return
    L.stats[UDP_DATAGRAMS_IN] += 1
    L.stats[UDP_BYTES_IN] += n
    cdef UdpSink sink = ep.sink         # a reference: the sink may close the endpoint
    if sink is not None:
        sink.on_datagram(ep, fl_mbuf_data(m), n, addr, port)
    L.iface.mbuf_free(m)


cdef bint enqueue(UdpLayerBase L, UdpEndpoint ep, fl_mbuf *m, uint32_t addr,
                  uint16_t port) noexcept:
    cdef uint32_t charge = fl_mbuf_data_len(m) + UDP_QUEUE_CHARGE
    cdef uint32_t cap, i
    cdef QueuedDatagram *q
    if ep.q_charged + charge > L.rcvbuf_size:
        return False
    if ep.q_len == ep.q_cap:                            # grow the ring, unrolled to the front
        cap = ep.q_cap * 2 if ep.q_cap else 16
        q = <QueuedDatagram *>realloc(ep.queue, cap * sizeof(QueuedDatagram))
        if q == NULL:
            return False
        for i in range(ep.q_head):                      # entries that wrapped move up
            q[ep.q_cap + i] = q[i]
        ep.queue = q
        ep.q_cap = cap
    q = &ep.queue[(ep.q_head + ep.q_len) % ep.q_cap]
    q.m = m
    q.addr = addr
    q.port = port
    ep.q_len += 1
    ep.q_charged += charge
    L.queued += 1
    return True


cdef void udp_icmp_error(UdpLayerBase L, int type, int code, const unsigned char *quote,
                         size_t n) noexcept:
    """RFC 1122 §4.1.3.3: pass the error to the endpoint that sent the quoted datagram
    (its source port), connected or not, with the destination it was sent to."""
    cdef uint32_t ihl = (quote[0] & 0x0f) * 4
    cdef int err = icmp_errno(type, code)
    cdef UdpEndpoint ep = None
    if (quote[0] >> 4) == 4 and ihl >= IPV4_HDR_LEN and n >= ihl + 8 and err != 0:
        # the quoted datagram went from us (src) to the peer (dst): seen from the peer's side
        ep = lookup(L, load32(quote + 12), load16(quote + ihl), load32(quote + 16),
                    load16(quote + ihl + 2), False)
    if ep is None:
        L.stats[UDP_ICMP_ERRORS_UNMATCHED] += 1
        return
    L.stats[UDP_ICMP_ERRORS_IN] += 1
    cdef UdpSink sink = ep.sink
    if sink is not None:
        sink.on_error(ep, err, load32(quote + 16), load16(quote + ihl + 2))
