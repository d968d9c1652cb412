# cython: language_level=3, boundscheck=False, wraparound=False
"""Test support: a NIC's checksum offloads, played in software on a device without them
(a net_ring pair), so the stack's offload path can be tested stack to stack.

OffloadingNic completes checksums the way hardware does: from what the stack left in the
field (for L4, the pseudo-header sum), not from scratch, so a wrong pseudo-header sum goes
out as a wrong checksum and the receiver's software check catches it.
RxL4Verdict stamps every received frame with an L4 checksum verdict, right or not, to test
that the stack trusts the PMD.
"""
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from fastloop.includes.dpdk cimport (
    fl_mbuf, fl_mbuf_data, fl_mbuf_data_len, fl_cksum_add, fl_cksum_fold,
    RTE_MBUF_F_TX_IP_CKSUM, RTE_MBUF_F_TX_L4_MASK, RTE_MBUF_F_TX_UDP_CKSUM,
    RTE_MBUF_F_TX_TCP_CKSUM, RTE_MBUF_F_TX_IPV4, RTE_MBUF_F_RX_L4_CKSUM_GOOD,
    RTE_MBUF_F_RX_L4_CKSUM_BAD, RTE_MBUF_F_RX_L4_CKSUM_MASK)
from fastloop.dev.device cimport Device, Middleware
from fastloop.net.wire.bytes cimport load16, store_raw16


cdef inline uint16_t complement_sum(const uint8_t *p, size_t n) noexcept:
    return <uint16_t>(~fl_cksum_fold(fl_cksum_add(0, p, n)) & 0xffff)


cdef void hardware_checksums(fl_mbuf *m) noexcept:
    """What a NIC does with the requests on an Ethernet + IPv4 frame (single segment)."""
    cdef uint64_t f = m.ol_flags
    cdef uint8_t *ip = fl_mbuf_data(m) + 14
    cdef uint32_t ihl = (ip[0] & 0x0f) * 4
    cdef uint32_t l4_len = load16(ip + 2) - ihl
    cdef uint16_t c
    if f & RTE_MBUF_F_TX_IP_CKSUM:
        store_raw16(ip + 10, 0)
        store_raw16(ip + 10, complement_sum(ip, ihl))
    if (f & RTE_MBUF_F_TX_L4_MASK) == RTE_MBUF_F_TX_UDP_CKSUM:
        c = complement_sum(ip + ihl, l4_len)          # the field holds the pseudo-header sum
        store_raw16(ip + ihl + 6, c if c != 0 else 0xffff)   # RFC 768: 0 is sent as ones
    elif (f & RTE_MBUF_F_TX_L4_MASK) == RTE_MBUF_F_TX_TCP_CKSUM:
        store_raw16(ip + ihl + 16, complement_sum(ip + ihl, l4_len))
    m.ol_flags &= ~(RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_L4_MASK | RTE_MBUF_F_TX_IPV4)


cdef class OffloadingNic(Middleware):
    """Advertises IPv4/UDP/TCP tx checksum offload and honours it on the way out."""

    def __init__(self, Device inner):
        Middleware.__init__(self, inner)
        self.info.tx_ipv4_cksum = 1
        self.info.tx_udp_cksum = 1
        self.info.tx_tcp_cksum = 1

    cdef uint16_t tx_burst(self, fl_mbuf **pkts, uint16_t n) noexcept:
        cdef uint16_t i
        for i in range(n):
            if pkts[i].ol_flags & (RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_L4_MASK):
                hardware_checksums(pkts[i])
        return self.inner.tx_burst(pkts, n)


cdef class RxL4Verdict(Middleware):
    """Every received frame's L4 checksum flagged good (good=True) or bad, whatever it is."""
    cdef bint good

    def __init__(self, Device inner, bint good):
        Middleware.__init__(self, inner)
        self.good = good

    cdef uint16_t rx_burst(self, fl_mbuf **pkts, uint16_t n) noexcept:
        cdef uint16_t r = self.inner.rx_burst(pkts, n), i
        for i in range(r):
            pkts[i].ol_flags = (pkts[i].ol_flags & ~RTE_MBUF_F_RX_L4_CKSUM_MASK) | (
                RTE_MBUF_F_RX_L4_CKSUM_GOOD if self.good else RTE_MBUF_F_RX_L4_CKSUM_BAD)
        return r
