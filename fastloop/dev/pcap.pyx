# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""PcapTracer: a device middleware that writes every frame in and out to a pcap file.

The file is classic libpcap with nanosecond timestamps (magic 0xa1b23c4d, linktype 1
Ethernet, snaplen 65535), which tcpdump -r, tshark and scapy read. Timestamps are wall clock
(fl_wall_ns), read once per burst: frames of one burst share a timestamp.

Received frames are recorded after the inner device returns them. Transmitted frames are
recorded *before* the inner tx_burst, because the PMD may free or hand off an mbuf once it
accepts it; the records are staged in a C buffer and only the first k (the ones the PMD
took) are written, so frames the caller retries never appear twice.

Checksum offload: a frame whose IP/TCP/UDP checksums are offloaded to the PMD is recorded
before the PMD fills them in, so the trace shows the pseudo-header sum (or zero) there and
Wireshark flags it as a bad checksum; that is the trace being early, not the wire being wrong.

Writes are buffered C stdio, flushed in poll() at most every FLUSH_NS and on close().
No Python object is created per packet.
"""
from libc.stdint cimport int32_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdio cimport FILE, fopen, fwrite, fflush, fclose, setvbuf, _IOFBF
from libc.stdlib cimport malloc, realloc, free
from libc.string cimport memcpy
from libc.errno cimport errno
from fastloop.includes.dpdk cimport (
    fl_mbuf, fl_mbuf_pkt_len, fl_mbuf_read, fl_wall_ns)
from fastloop.dev.device cimport Device, Middleware

import os

cdef uint32_t PCAP_MAGIC_NS = 0xa1b23c4d   # classic pcap, nanosecond timestamps
cdef enum:
    SNAPLEN = 65535
    LINKTYPE_ETHERNET = 1
    REC_HDR = 16                  # ts_sec, ts_nsec, incl_len, orig_len
FLUSH_NS = 100_000_000            # at most one fflush per 100 ms of poll steps
cdef uint64_t _FLUSH_NS = FLUSH_NS
cdef size_t _STDIO_BUF = 1 << 20

cdef packed struct pcap_file_hdr:
    uint32_t magic
    uint16_t version_major
    uint16_t version_minor
    int32_t thiszone
    uint32_t sigfigs
    uint32_t snaplen
    uint32_t linktype

cdef packed struct pcap_rec_hdr:
    uint32_t ts_sec
    uint32_t ts_nsec
    uint32_t incl_len
    uint32_t orig_len


cdef class PcapTracer(Middleware):
    def __init__(self, Device inner, path):
        Middleware.__init__(self, inner)
        self.path = os.fspath(path)
        self.fp = fopen(os.fsencode(self.path), b"wb")
        if self.fp == NULL:
            raise OSError(errno, f"cannot open pcap file {self.path}: {os.strerror(errno)}")
        setvbuf(self.fp, NULL, _IOFBF, _STDIO_BUF)
        cdef pcap_file_hdr h
        h.magic = PCAP_MAGIC_NS          # written in host order: readers detect the byte order
        h.version_major = 2
        h.version_minor = 4
        h.thiszone = 0
        h.sigfigs = 0
        h.snaplen = SNAPLEN
        h.linktype = LINKTYPE_ETHERNET
        if fwrite(&h, sizeof(h), 1, self.fp) != 1 or fflush(self.fp) != 0:
            fclose(self.fp)
            self.fp = NULL
            raise OSError(errno, f"cannot write pcap file {self.path}: {os.strerror(errno)}")
        self.last_flush = 0

    def __dealloc__(self):
        # Only C resources here: the mbufs belong to the caller or the inner device.
        if self.fp != NULL:
            fclose(self.fp)
            self.fp = NULL
        free(self.stage)
        free(self.offs)

    cdef int _reserve(self, uint16_t n, size_t nbytes) noexcept:
        """Grow the staging buffers to n records / nbytes; 0, or -1 out of memory."""
        cdef void *p
        if n > self.offs_cap:
            p = realloc(self.offs, n * sizeof(size_t))
            if p == NULL:
                return -1
            self.offs = <size_t *>p
            self.offs_cap = n
        if nbytes > self.stage_cap:
            p = realloc(self.stage, nbytes)
            if p == NULL:
                return -1
            self.stage = <uint8_t *>p
            self.stage_cap = nbytes
        return 0

    cdef int _stage(self, fl_mbuf **pkts, uint16_t n) noexcept:
        """Copy n frames as pcap records into the staging buffer; -1 if out of memory."""
        cdef uint64_t ts = fl_wall_ns()
        cdef size_t need = 0, pos = 0
        cdef uint16_t i
        cdef uint32_t length, cap
        cdef pcap_rec_hdr rec
        cdef const void *p
        for i in range(n):
            need += REC_HDR + min(fl_mbuf_pkt_len(pkts[i]), <uint32_t>SNAPLEN)
        if self._reserve(n, need) < 0:
            return -1
        rec.ts_sec = <uint32_t>(ts // 1000000000)
        rec.ts_nsec = <uint32_t>(ts % 1000000000)
        for i in range(n):
            length = fl_mbuf_pkt_len(pkts[i])
            cap = min(length, <uint32_t>SNAPLEN)
            rec.incl_len = cap
            rec.orig_len = length
            memcpy(self.stage + pos, &rec, REC_HDR)
            pos += REC_HDR
            # fl_mbuf_read copies a multi-segment frame flat, or points into a single one
            p = fl_mbuf_read(pkts[i], 0, cap, self.stage + pos) if cap else NULL
            if p != NULL and p != <const void *>(self.stage + pos):
                memcpy(self.stage + pos, p, cap)
            pos += cap
            self.offs[i] = pos
        return 0

    cdef void _commit(self, uint16_t k) noexcept:
        """Write the first k staged records."""
        if k == 0 or self.fp == NULL:
            return
        if fwrite(self.stage, 1, self.offs[k - 1], self.fp) == self.offs[k - 1]:
            self.frames += k
        else:
            self.write_errors += k

    cdef uint16_t rx_burst(self, fl_mbuf **pkts, uint16_t n) noexcept:
        cdef uint16_t r = self.inner.rx_burst(pkts, n)
        if r and self.fp != NULL:
            if self._stage(pkts, r) == 0:
                self._commit(r)
            else:
                self.write_errors += r
        return r

    cdef uint16_t tx_burst(self, fl_mbuf **pkts, uint16_t n) noexcept:
        cdef int staged = -1
        cdef uint16_t k
        if n and self.fp != NULL:
            staged = self._stage(pkts, n)    # before the PMD may free what it accepts
        k = self.inner.tx_burst(pkts, n)
        if staged == 0:
            self._commit(k)
        elif k and self.fp != NULL:
            self.write_errors += k
        return k

    cdef void poll(self, uint64_t now) noexcept:
        # `now` may be a virtual clock: a step backwards also counts as time to flush
        if self.fp != NULL and (now >= self.last_flush + _FLUSH_NS or now < self.last_flush):
            fflush(self.fp)
            self.last_flush = now
        self.inner.poll(now)

    def flush(self):
        """Write buffered records to the file now."""
        if self.fp != NULL and fflush(self.fp) != 0:
            raise OSError(errno, f"cannot write pcap file {self.path}: {os.strerror(errno)}")

    cpdef close(self):
        """Flush and close the file, then close the inner device."""
        if self.closed:
            return
        cdef int rc = 0
        if self.fp != NULL:
            rc = fclose(self.fp)
            self.fp = NULL
        Middleware.close(self)
        if rc != 0:
            raise OSError(errno, f"cannot write pcap file {self.path}: {os.strerror(errno)}")
