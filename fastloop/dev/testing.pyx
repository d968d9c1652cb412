# cython: language_level=3, boundscheck=False, wraparound=False
"""Test support: push Python bytes through a Device's cdef burst interface and back.

Only for tests (Python objects per frame); the stack itself never calls these.
"""
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport malloc, realloc, free
from libc.string cimport memcpy
from fastloop.includes.dpdk cimport (
    fl_mbuf, fl_mbuf_alloc, fl_mbuf_append, fl_mbuf_free, fl_mbuf_pkt_len, fl_mbuf_read,
    fl_mbuf_chain, fl_mbuf_tx_offload, fl_mbuf_rx_ip_cksum_good, fl_mbuf_rx_l4_cksum_good,
    RTE_MBUF_F_RX_IP_CKSUM_GOOD, RTE_MBUF_F_RX_L4_CKSUM_GOOD)
from fastloop.dev.device cimport Device, Middleware


cdef fl_mbuf *_mbuf_from(Device dev, bytes frame, uint32_t seg) except NULL:
    """One mbuf chain holding `frame`, split into segments of at most `seg` bytes."""
    cdef const uint8_t[:] view = frame
    cdef uint32_t off = 0, total = len(frame), take
    cdef fl_mbuf *head = NULL
    cdef fl_mbuf *m
    cdef uint8_t *dst
    while off < total or head == NULL:
        m = fl_mbuf_alloc(dev.pool)
        take = min(seg, total - off)
        dst = fl_mbuf_append(m, <uint16_t>take) if m != NULL else NULL
        if dst == NULL:
            if m != NULL:
                fl_mbuf_free(m)
            if head != NULL:
                fl_mbuf_free(head)
            raise MemoryError("mempool exhausted or frame larger than an mbuf")
        if take:
            memcpy(dst, &view[off], take)
        off += take
        if head == NULL:
            head = m
        elif fl_mbuf_chain(head, m) != 0:
            fl_mbuf_free(m)
            fl_mbuf_free(head)
            raise MemoryError("too many segments")
    return head


def send_frames(Device dev, list frames, uint32_t segment=2048, offload=None):
    """tx_burst `frames`; returns how many the device took (the rest are freed here).

    `segment` splits each frame into a chain of mbufs of that many bytes; `offload`
    (l2_len, l3_len, ip_cksum, l4) requests checksum offload on every frame.
    """
    cdef uint16_t n = len(frames), k, i
    cdef fl_mbuf **pkts = <fl_mbuf **>malloc(sizeof(fl_mbuf *) * (n + 1))
    if pkts == NULL:
        raise MemoryError()
    try:
        for i in range(n):
            try:
                pkts[i] = _mbuf_from(dev, frames[i], segment)
            except MemoryError:
                for j in range(i):
                    fl_mbuf_free(pkts[j])
                raise
            if offload is not None:
                fl_mbuf_tx_offload(pkts[i], offload[0], offload[1], offload[2], offload[3])
        k = dev.tx_burst(pkts, n)
        for i in range(k, n):    # tx_burst leaves the untaken tail with the caller
            fl_mbuf_free(pkts[i])
        return k
    finally:
        free(pkts)


def recv_frames(Device dev, uint16_t max=64):
    """rx_burst up to `max` frames and return them as bytes (the mbufs are freed)."""
    cdef fl_mbuf **pkts = <fl_mbuf **>malloc(sizeof(fl_mbuf *) * (max + 1))
    cdef uint16_t r, i
    cdef uint32_t length
    cdef bytearray buf
    cdef const void *p
    if pkts == NULL:
        raise MemoryError()
    out = []
    try:
        r = dev.rx_burst(pkts, max)
        for i in range(r):
            length = fl_mbuf_pkt_len(pkts[i])
            buf = bytearray(length)
            p = fl_mbuf_read(pkts[i], 0, length, <char *>buf) if length else NULL
            if p != NULL and p != <const void *><char *>buf:
                memcpy(<char *>buf, p, length)
            out.append(bytes(buf))
            fl_mbuf_free(pkts[i])
    finally:
        free(pkts)
    return out


def recv_cksum_flags(Device dev, uint16_t max=64):
    """rx_burst; for each frame, (ip_cksum_good, l4_cksum_good) as the PMD flagged it."""
    cdef fl_mbuf **pkts = <fl_mbuf **>malloc(sizeof(fl_mbuf *) * (max + 1))
    cdef uint16_t r, i
    if pkts == NULL:
        raise MemoryError()
    r = dev.rx_burst(pkts, max)
    out = [(bool(fl_mbuf_rx_ip_cksum_good(pkts[i])), bool(fl_mbuf_rx_l4_cksum_good(pkts[i])))
           for i in range(r)]
    for i in range(r):
        fl_mbuf_free(pkts[i])
    free(pkts)
    return out


cdef class RxCksumGood(Middleware):
    """Marks every received frame's checksums good, like a PMD with rx checksum offload."""

    cdef uint16_t rx_burst(self, fl_mbuf **pkts, uint16_t n) noexcept:
        cdef uint16_t r = self.inner.rx_burst(pkts, n), i
        for i in range(r):
            pkts[i].ol_flags |= RTE_MBUF_F_RX_IP_CKSUM_GOOD | RTE_MBUF_F_RX_L4_CKSUM_GOOD
        return r


def recv_all(Device dev, uint16_t max=64):
    """recv_frames until the device returns nothing."""
    out = []
    while True:
        got = recv_frames(dev, max)
        if not got:
            return out
        out += got


def poll(Device dev, uint64_t now_ns):
    """One poll step of the device at time `now_ns`."""
    dev.poll(now_ns)


cdef class MbufHoard:
    """Every free mbuf of a device's pool, held until release(): to test pool exhaustion."""
    cdef fl_mbuf **pkts
    cdef readonly uint32_t count

    def __dealloc__(self):
        self.release()

    def release(self):
        cdef uint32_t i
        for i in range(self.count):
            fl_mbuf_free(self.pkts[i])
        self.count = 0
        free(self.pkts)
        self.pkts = NULL


def exhaust_pool(Device dev):
    """Allocate mbufs from dev's pool until it runs dry; returns the MbufHoard."""
    cdef MbufHoard h = MbufHoard.__new__(MbufHoard)
    cdef uint32_t cap = 1024
    cdef fl_mbuf *m
    h.pkts = <fl_mbuf **>malloc(sizeof(fl_mbuf *) * cap)
    while h.pkts != NULL:
        m = fl_mbuf_alloc(dev.pool)
        if m == NULL:
            return h
        if h.count == cap:
            cap *= 2
            h.pkts = <fl_mbuf **>realloc(h.pkts, sizeof(fl_mbuf *) * cap)
            if h.pkts == NULL:
                fl_mbuf_free(m)
                break
        h.pkts[h.count] = m
        h.count += 1
    raise MemoryError()
