# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Sending a datagram (RFC 768): header, one copy of the payload, the checksum, then IP.

We never fragment (every datagram leaves with DF): what does not fit the MTU is refused with
EMSGSIZE. The checksum is the PMD's to fill when it offers L4 offload (the field then holds
the pseudo-header sum, as for TCP), ours otherwise.
"""
from libc.errno cimport EINVAL, EMSGSIZE, ENETUNREACH, ENOBUFS
from libc.string cimport memcpy
from fastloop.includes.dpdk cimport fl_mbuf, fl_mbuf_append
from fastloop.net.wire.bytes cimport store_raw16
from fastloop.net.wire.ipv4 cimport IPPROTO_UDP, IPV4_HDR_LEN
from fastloop.net.wire.udp cimport (
    UdpHeader, udp_emit, udp_checksum, udp_pseudo_header_sum, UDP_HDR_LEN, UDP_CHECKSUM_OFFSET)
from fastloop.net.udp.counters cimport *
from fastloop.net.udp.endpoint cimport UdpLayerBase


cdef int udp_send(UdpLayerBase L, uint32_t laddr, uint16_t lport, uint32_t raddr,
                  uint16_t rport, const uint8_t *data, uint32_t n, uint64_t now) noexcept:
    cdef UdpHeader h
    cdef uint32_t length = UDP_HDR_LEN + n
    cdef int err = 0
    cdef fl_mbuf *m = NULL
    cdef uint8_t *p = NULL
    if length + IPV4_HDR_LEN > L.iface.mtu:
        err = EMSGSIZE
    elif not L.iface.has_route(raddr):
        err = ENETUNREACH
    elif (laddr >> 24) == 127 and not L.iface.is_local(raddr):
        err = EINVAL                           # RFC 1122 §3.2.1.3: 127/8 never leaves the host
    else:
        m = L.iface.mbuf_alloc()
        if m == NULL:
            err = ENOBUFS
        else:
            p = fl_mbuf_append(m, <uint16_t>length)
            if p == NULL:                      # an MTU larger than one mbuf holds
                L.iface.mbuf_free(m)
                err = EMSGSIZE
    if err:
        L.stats[UDP_SEND_ERRORS] += 1
        return err
    if laddr == 0:
        laddr = L.source_for(raddr)
    h.src_port = lport
    h.dst_port = rport
    h.length = <uint16_t>length
    udp_emit(p, &h)
    if n:
        memcpy(p + UDP_HDR_LEN, data, n)
    cdef int offload = 0
    if L.iface.tx_l4_cksum:
        store_raw16(p + UDP_CHECKSUM_OFFSET, udp_pseudo_header_sum(laddr, raddr, <uint16_t>length))
        offload = 1
    else:
        store_raw16(p + UDP_CHECKSUM_OFFSET, udp_checksum(laddr, raddr, p, length))
    L.stats[UDP_DATAGRAMS_OUT] += 1
    L.stats[UDP_BYTES_OUT] += n
    L.iface.ip_output(m, laddr, raddr, IPPROTO_UDP, offload, now)
    return 0
