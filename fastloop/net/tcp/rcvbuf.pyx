# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Receive buffer and reassembly (see rcvbuf.pxd)."""
from libc.stdlib cimport calloc, free
from libc.string cimport memcpy, memmove
from fastloop.includes.dpdk cimport (
    fl_mbuf_data, fl_mbuf_data_len, fl_mbuf_adj, fl_mbuf_trim, fl_mbuf_tailroom, fl_mbuf_append)
from fastloop.net.tcp.seq cimport seq_lt, seq_le, seq_gt, seq_ge

cdef uint32_t Q_INIT = 16
cdef uint32_t COALESCE_MAX = 512    # copy a small segment into the previous mbuf's tailroom


cdef bint rcvbuf_init(RecvBuffer *b, uint32_t limit, OooBudget *budget) noexcept:
    b.q = <fl_mbuf **>calloc(Q_INIT, sizeof(fl_mbuf *))
    b.qcap = Q_INIT if b.q != NULL else 0
    b.qhead = b.qlen = b.head_off = b.bytes = 0
    b.limit = limit
    b.ooo = NULL
    b.ooo_n = b.ooo_bytes = 0
    b.budget = budget
    return b.q != NULL


cdef void rcvbuf_release(RecvBuffer *b, Link link) noexcept:
    """Free everything held (connection gone)."""
    while b.qlen:
        link.mbuf_free(b.q[b.qhead])
        b.qhead = (b.qhead + 1) % b.qcap
        b.qlen -= 1
    while b.ooo_n:
        b.ooo_n -= 1
        b.budget.held -= 1
        link.mbuf_free(b.ooo[b.ooo_n].m)
    free(b.ooo)
    b.ooo = NULL
    free(b.q)
    b.q = NULL
    b.qcap = 0
    b.bytes = b.ooo_bytes = b.head_off = 0


cdef bint _q_grow(RecvBuffer *b) noexcept:
    cdef fl_mbuf **q = <fl_mbuf **>calloc(b.qcap * 2, sizeof(fl_mbuf *))
    cdef uint32_t i
    if q == NULL:
        return False
    for i in range(b.qlen):
        q[i] = b.q[(b.qhead + i) % b.qcap]
    free(b.q)
    b.q = q
    b.qhead = 0
    b.qcap *= 2
    return True


cdef bint rcvbuf_append(RecvBuffer *b, fl_mbuf *m, uint32_t n, Link link) noexcept:
    """Queue m (its data is exactly n payload bytes) in order. Small segments are copied into
    the previous mbuf when it has room, so a trickle of tiny segments holds few mbufs."""
    cdef fl_mbuf *tail
    cdef uint8_t *dst
    if b.qlen:
        tail = b.q[(b.qhead + b.qlen - 1) % b.qcap]
        if n <= COALESCE_MAX and fl_mbuf_tailroom(tail) >= n:
            dst = fl_mbuf_append(tail, <uint16_t>n)
            memcpy(dst, fl_mbuf_data(m), n)
            link.mbuf_free(m)
            b.bytes += n
            return True
    if b.qlen == b.qcap and not _q_grow(b):
        link.mbuf_free(m)
        return False
    b.q[(b.qhead + b.qlen) % b.qcap] = m
    b.qlen += 1
    b.bytes += n
    return True


cdef uint32_t rcvbuf_read(RecvBuffer *b, uint8_t *dst, uint32_t n, Link link) noexcept:
    """Copy up to n in-order bytes out, freeing mbufs as they empty; returns bytes copied."""
    cdef uint32_t done = 0, avail, take
    cdef fl_mbuf *m
    while done < n and b.qlen:
        m = b.q[b.qhead]
        avail = fl_mbuf_data_len(m) - b.head_off
        take = min(avail, n - done)
        memcpy(dst + done, fl_mbuf_data(m) + b.head_off, take)
        done += take
        b.head_off += take
        if b.head_off == fl_mbuf_data_len(m):
            link.mbuf_free(m)
            b.qhead = (b.qhead + 1) % b.qcap
            b.qlen -= 1
            b.head_off = 0
    b.bytes -= done
    return done


cdef void _ooo_remove(RecvBuffer *b, uint32_t i) noexcept:
    b.ooo_bytes -= b.ooo[i].len
    b.budget.held -= 1
    memmove(&b.ooo[i], &b.ooo[i + 1], (b.ooo_n - i - 1) * sizeof(OooSegment))
    b.ooo_n -= 1


cdef OooResult ooo_insert(RecvBuffer *b, seq_t seq, fl_mbuf *m, uint32_t n,
                          Link link) noexcept:
    """Keep an out-of-order segment [seq, seq+n), trimmed against what is already held
    (old data wins). Consumes m; anything but OOO_KEPT says why nothing new was kept."""
    cdef seq_t end = seq + n
    cdef uint32_t i = 0
    if b.ooo == NULL:
        b.ooo = <OooSegment *>calloc(OOO_MAX, sizeof(OooSegment))
        if b.ooo == NULL:
            link.mbuf_free(m)
            return OOO_QUEUE_FULL           # no memory for the array: as if full
    while i < b.ooo_n and seq_lt(b.ooo[i].seq, seq):
        i += 1
    if i > 0:                                      # overlap with the segment before
        if seq_ge(b.ooo[i - 1].seq + b.ooo[i - 1].len, end):
            link.mbuf_free(m)
            return OOO_DUPLICATE
        if seq_gt(b.ooo[i - 1].seq + b.ooo[i - 1].len, seq):
            fl_mbuf_adj(m, <uint16_t>(b.ooo[i - 1].seq + b.ooo[i - 1].len - seq))
            seq = b.ooo[i - 1].seq + b.ooo[i - 1].len
    while i < b.ooo_n and seq_le(b.ooo[i].seq + b.ooo[i].len, end):
        link.mbuf_free(b.ooo[i].m)                 # wholly covered by the new segment
        _ooo_remove(b, i)
    if i < b.ooo_n and seq_lt(b.ooo[i].seq, end):
        fl_mbuf_trim(m, <uint16_t>(end - b.ooo[i].seq))
        end = b.ooo[i].seq
    if not seq_lt(seq, end):
        link.mbuf_free(m)
        return OOO_DUPLICATE
    if b.ooo_n == OOO_MAX or b.budget.held >= b.budget.limit:
        link.mbuf_free(m)
        return OOO_QUEUE_FULL if b.ooo_n == OOO_MAX else OOO_BUDGET_FULL
    memmove(&b.ooo[i + 1], &b.ooo[i], (b.ooo_n - i) * sizeof(OooSegment))
    b.ooo[i].seq = seq
    b.ooo[i].len = end - seq
    b.ooo[i].m = m
    b.ooo_n += 1
    b.ooo_bytes += end - seq
    b.budget.held += 1
    b.ooo_last_seq = seq
    return OOO_KEPT


cdef seq_t ooo_pull(RecvBuffer *b, seq_t rcv_nxt, Link link) noexcept:
    """Move segments that rcv_nxt has reached into the in-order queue; returns the new rcv_nxt."""
    cdef OooSegment s
    while b.ooo_n and seq_le(b.ooo[0].seq, rcv_nxt):
        s = b.ooo[0]
        _ooo_remove(b, 0)
        if seq_le(s.seq + s.len, rcv_nxt):
            link.mbuf_free(s.m)
            continue
        fl_mbuf_adj(s.m, <uint16_t>(rcv_nxt - s.seq))
        rcvbuf_append(b, s.m, s.seq + s.len - rcv_nxt, link)
        rcv_nxt = s.seq + s.len
    return rcv_nxt


cdef uint32_t ooo_sack_blocks(const RecvBuffer *b, TcpSackBlock *blocks,
                              uint32_t max_blocks) noexcept:
    """SACK blocks for what we hold out of order (RFC 2018 §4): contiguous runs merged, the
    run holding the most recently received segment first, then the others in order."""
    cdef seq_t run_l[OOO_MAX]
    cdef seq_t run_r[OOO_MAX]
    cdef uint32_t i = 0, runs = 0, recent = 0, out = 0
    while i < b.ooo_n:
        run_l[runs] = b.ooo[i].seq
        run_r[runs] = b.ooo[i].seq + b.ooo[i].len
        i += 1
        while i < b.ooo_n and b.ooo[i].seq == run_r[runs]:
            run_r[runs] = b.ooo[i].seq + b.ooo[i].len
            i += 1
        if seq_le(run_l[runs], b.ooo_last_seq) and seq_lt(b.ooo_last_seq, run_r[runs]):
            recent = runs
        runs += 1
    if runs == 0 or max_blocks == 0:
        return 0
    blocks[0].left = run_l[recent]
    blocks[0].right = run_r[recent]
    out = 1
    i = 0
    while i < runs and out < max_blocks:
        if i != recent:
            blocks[out].left = run_l[i]
            blocks[out].right = run_r[i]
            out += 1
        i += 1
    return out
