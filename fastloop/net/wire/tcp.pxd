# cython: language_level=3
# TCP header (RFC 9293 §3.1) and its options: MSS, window scale, timestamps, SACK.
# Parsing validates the framing only; what a field means for a connection is tcp/'s business.
from libc.stdint cimport uint8_t, int8_t, uint16_t, uint32_t
from libc.string cimport memset
from fastloop.includes.dpdk cimport fl_cksum_add, fl_cksum_fold
from fastloop.net.wire.bytes cimport load16, load32, store16, store32
from fastloop.net.wire.ipv4 cimport ipv4_pseudo_sum, IPPROTO_TCP
from fastloop.net.tcp.seq cimport seq_t

cdef enum:
    TCP_HDR_LEN = 20
    TCP_MAX_HDR_LEN = 60
    TCP_MAX_OPT_LEN = 40
    TCP_CHECKSUM_OFFSET = 16
    TCP_MAX_SACK = 4
    TCP_MAX_WSCALE = 14
    # the flags byte (RFC 9293 §3.1; ECE and CWR from RFC 3168 §6.1)
    TCP_FIN = 0x01
    TCP_SYN = 0x02
    TCP_RST = 0x04
    TCP_PSH = 0x08
    TCP_ACK = 0x10
    TCP_URG = 0x20
    TCP_ECE = 0x40
    TCP_CWR = 0x80
    # option kinds and their fixed lengths
    TCPOPT_EOL = 0
    TCPOPT_NOP = 1
    TCPOPT_MSS = 2
    TCPOPT_WSCALE = 3
    TCPOPT_SACK_PERM = 4
    TCPOPT_SACK = 5
    TCPOPT_TIMESTAMP = 8
    TCPOLEN_MSS = 4
    TCPOLEN_WSCALE = 3
    TCPOLEN_SACK_PERM = 2
    TCPOLEN_TIMESTAMP = 10
    TCPOLEN_SACK_BASE = 2
    TCPOLEN_SACK_BLOCK = 8

# parse results: 0 or why the segment is malformed
cdef enum TcpError:
    TCP_OK = 0
    TCP_TRUNCATED           # shorter than the fixed header
    TCP_BAD_DATA_OFFSET     # data offset < 5 words, or past the end of the segment
    TCP_BAD_OPTION          # an option's length is illegal or runs past the header

cdef struct TcpSackBlock:
    seq_t left              # first sequence number of the block
    seq_t right             # the one after its last

cdef struct TcpOptions:
    uint16_t mss            # 0: absent
    int8_t wscale           # -1: absent; otherwise 0..14
    bint sack_permitted
    bint has_timestamps
    uint32_t ts_val
    uint32_t ts_ecr
    uint8_t sack_count      # 0..4 blocks in sack[]
    TcpSackBlock sack[4]

cdef struct TcpHeader:
    uint16_t src_port
    uint16_t dst_port
    seq_t seq
    seq_t ack
    uint8_t header_len      # bytes, options included; the payload starts here
    uint8_t flags
    uint16_t window         # as on the wire, not scaled
    uint16_t urgent
    TcpOptions opt

cdef inline void tcp_options_clear(TcpOptions *o) noexcept nogil:
    memset(o, 0, sizeof(TcpOptions))
    o.wscale = -1

cdef inline bint tcp_option_read(const uint8_t *p, uint8_t length, TcpOptions *o) noexcept nogil:
    """One kind-length-value option, length already within bounds; False if illegal."""
    cdef uint8_t kind = p[0], i
    if kind == TCPOPT_MSS:                          # RFC 9293 §3.7.1
        if length != TCPOLEN_MSS:
            return False
        o.mss = load16(p + 2)
    elif kind == TCPOPT_WSCALE:                     # RFC 7323 §2.3: use 14 for larger shifts
        if length != TCPOLEN_WSCALE:
            return False
        o.wscale = <int8_t>(p[2] if p[2] < TCP_MAX_WSCALE else TCP_MAX_WSCALE)
    elif kind == TCPOPT_SACK_PERM:                  # RFC 2018 §2
        if length != TCPOLEN_SACK_PERM:
            return False
        o.sack_permitted = True
    elif kind == TCPOPT_SACK:                       # RFC 2018 §3: 8n + 2 bytes, n >= 1
        if (length < TCPOLEN_SACK_BASE + TCPOLEN_SACK_BLOCK
                or (length - TCPOLEN_SACK_BASE) % TCPOLEN_SACK_BLOCK != 0
                or (length - TCPOLEN_SACK_BASE) // TCPOLEN_SACK_BLOCK > TCP_MAX_SACK):
            return False
        o.sack_count = (length - TCPOLEN_SACK_BASE) // TCPOLEN_SACK_BLOCK
        for i in range(o.sack_count):
            o.sack[i].left = load32(p + 2 + 8 * i)
            o.sack[i].right = load32(p + 6 + 8 * i)
    elif kind == TCPOPT_TIMESTAMP:                  # RFC 7323 §3.2
        if length != TCPOLEN_TIMESTAMP:
            return False
        o.has_timestamps = True
        o.ts_val = load32(p + 2)
        o.ts_ecr = load32(p + 6)
    return True                                     # RFC 9293 §3.2 MUST-6: skip unknown kinds

cdef inline int tcp_options_parse(const uint8_t *p, size_t n, TcpOptions *o) noexcept nogil:
    """EOL ends the list, NOP is one byte, the rest carry a length (RFC 9293 §3.2, MUST-7)."""
    cdef size_t i = 0
    cdef uint8_t length
    tcp_options_clear(o)
    while i < n:
        if p[i] == TCPOPT_EOL:
            break
        if p[i] == TCPOPT_NOP:
            i += 1
            continue
        if i + 1 >= n:
            return TCP_BAD_OPTION
        length = p[i + 1]
        if length < 2 or length > n - i:
            return TCP_BAD_OPTION
        if not tcp_option_read(p + i, length, o):
            return TCP_BAD_OPTION
        i += length
    return TCP_OK

cdef inline int tcp_parse(const uint8_t *buf, size_t n, TcpHeader *h) noexcept nogil:
    """Fixed header and options of an n-byte segment; the payload is buf + h.header_len."""
    if n < TCP_HDR_LEN:
        return TCP_TRUNCATED
    h.header_len = (buf[12] >> 4) * 4
    if h.header_len < TCP_HDR_LEN or h.header_len > n:
        return TCP_BAD_DATA_OFFSET
    h.src_port = load16(buf)
    h.dst_port = load16(buf + 2)
    h.seq = load32(buf + 4)
    h.ack = load32(buf + 8)
    h.flags = buf[13]
    h.window = load16(buf + 14)
    h.urgent = load16(buf + 18)
    return tcp_options_parse(buf + TCP_HDR_LEN, h.header_len - TCP_HDR_LEN, &h.opt)

# ---- emit: Linux's aligned layouts (tcp_options_write), so traces read the same ----------

cdef inline size_t tcp_options_len_nosack(const TcpOptions *o) noexcept nogil:
    cdef size_t n = 0
    if o.mss != 0:
        n += 4                                      # MSS
    if o.has_timestamps:
        n += 12                                     # SACK-perm + TS, or NOP NOP TS
    elif o.sack_permitted:
        n += 4                                      # NOP NOP SACK-perm
    if o.wscale >= 0:
        n += 4                                      # NOP WS
    return n

cdef inline uint8_t tcp_sack_fit(const TcpOptions *o) noexcept nogil:
    """SACK blocks sent: the first ones, as many as fit in 40 bytes (RFC 2018 §3)."""
    cdef size_t used = tcp_options_len_nosack(o) + 4    # NOP NOP kind length
    cdef size_t k
    if o.sack_count == 0 or used >= TCP_MAX_OPT_LEN:
        return 0
    k = (TCP_MAX_OPT_LEN - used) // TCPOLEN_SACK_BLOCK
    if k > o.sack_count:
        k = o.sack_count
    return <uint8_t>(k if k < TCP_MAX_SACK else TCP_MAX_SACK)

cdef inline size_t tcp_options_len(const TcpOptions *o) noexcept nogil:
    """Bytes tcp_options_emit writes: a multiple of 4, at most 40."""
    cdef uint8_t k = tcp_sack_fit(o)
    return tcp_options_len_nosack(o) + (4 + TCPOLEN_SACK_BLOCK * k if k else 0)

cdef inline void tcp_put4(uint8_t *p, uint8_t a, uint8_t b, uint8_t c, uint8_t d) noexcept nogil:
    p[0] = a
    p[1] = b
    p[2] = c
    p[3] = d

cdef inline size_t tcp_options_emit(uint8_t *p, const TcpOptions *o) noexcept nogil:
    """Write the options 4-byte aligned with NOPs, in Linux's order; returns the length."""
    cdef size_t n = 0
    cdef uint8_t i, k = tcp_sack_fit(o)
    if o.mss != 0:
        tcp_put4(p, TCPOPT_MSS, TCPOLEN_MSS, o.mss >> 8, o.mss & 0xff)
        n = 4
    if o.has_timestamps:
        if o.sack_permitted:
            tcp_put4(p + n, TCPOPT_SACK_PERM, TCPOLEN_SACK_PERM, TCPOPT_TIMESTAMP, TCPOLEN_TIMESTAMP)
        else:
            tcp_put4(p + n, TCPOPT_NOP, TCPOPT_NOP, TCPOPT_TIMESTAMP, TCPOLEN_TIMESTAMP)
        store32(p + n + 4, o.ts_val)
        store32(p + n + 8, o.ts_ecr)
        n += 12
    elif o.sack_permitted:
        tcp_put4(p + n, TCPOPT_NOP, TCPOPT_NOP, TCPOPT_SACK_PERM, TCPOLEN_SACK_PERM)
        n += 4
    if o.wscale >= 0:                               # RFC 7323 §2.3: never more than 14
        tcp_put4(p + n, TCPOPT_NOP, TCPOPT_WSCALE, TCPOLEN_WSCALE,
                 <uint8_t>(o.wscale if o.wscale < TCP_MAX_WSCALE else TCP_MAX_WSCALE))
        n += 4
    if k:
        tcp_put4(p + n, TCPOPT_NOP, TCPOPT_NOP, TCPOPT_SACK, TCPOLEN_SACK_BASE + TCPOLEN_SACK_BLOCK * k)
        n += 4
        for i in range(k):
            store32(p + n, o.sack[i].left)
            store32(p + n + 4, o.sack[i].right)
            n += 8
    return n

cdef inline size_t tcp_emit(uint8_t *buf, const TcpHeader *h) noexcept nogil:
    """Header and options with the checksum zero; the data offset comes from the options,
    not h.header_len. Returns the header length."""
    cdef size_t hl = TCP_HDR_LEN + tcp_options_emit(buf + TCP_HDR_LEN, &h.opt)
    store16(buf, h.src_port)
    store16(buf + 2, h.dst_port)
    store32(buf + 4, h.seq)
    store32(buf + 8, h.ack)
    buf[12] = <uint8_t>((hl // 4) << 4)
    buf[13] = h.flags
    store16(buf + 14, h.window)
    buf[16] = 0
    buf[17] = 0
    store16(buf + 18, h.urgent)
    return hl

# ---- checksum over the IPv4 pseudo-header (RFC 9293 §3.1) ---------------------------------
# Values are in machine order, like inet_checksum: store them with store_raw16.

cdef inline uint16_t tcp_pseudo_header_sum(uint32_t src, uint32_t dst, uint16_t tcp_len) noexcept nogil:
    """What a PMD expects in the checksum field for L4 offload: the folded, not complemented,
    pseudo-header sum, as rte_ipv4_phdr_cksum (tcp_len 0 for TSO)."""
    return fl_cksum_fold(ipv4_pseudo_sum(src, dst, IPPROTO_TCP, tcp_len))

cdef inline uint16_t tcp_checksum(uint32_t src, uint32_t dst, const uint8_t *seg,
                                  size_t n) noexcept nogil:
    """The checksum of an n-byte segment whose checksum field is zero."""
    cdef uint32_t s = fl_cksum_add(ipv4_pseudo_sum(src, dst, IPPROTO_TCP, <uint16_t>n), seg, n)
    return <uint16_t>(~fl_cksum_fold(s) & 0xffff)

cdef inline bint tcp_checksum_ok(uint32_t src, uint32_t dst, const uint8_t *seg,
                                 size_t n) noexcept nogil:
    cdef uint32_t s = fl_cksum_add(ipv4_pseudo_sum(src, dst, IPPROTO_TCP, <uint16_t>n), seg, n)
    return fl_cksum_fold(s) == 0xffff
