# cython: language_level=3
# The receive buffer: in-order data waiting for the application, and out-of-order segments
# waiting for a hole to fill (RFC 9293 §3.10.7.4, seventh step). Both hold the received
# mbufs themselves, trimmed to their payload: data is copied once, when the application reads.
from libc.stdint cimport uint8_t, uint16_t, uint32_t
from fastloop.includes.dpdk cimport fl_mbuf
from fastloop.net.link cimport Link
from fastloop.net.tcp.seq cimport seq_t
from fastloop.net.wire.tcp cimport TcpSackBlock

cdef enum:
    OOO_MAX = 256              # out-of-order segments kept (a 256 KiB window of 1 KiB+ segments)
    SACK_BLOCKS_MAX = 4

# The layer's bound on out-of-order mbufs, all connections together: each connection's own
# bound (OOO_MAX, the window) times many hostile connections would otherwise drain the pool.
cdef struct OooBudget:
    uint32_t held
    uint32_t limit

cdef enum OooResult:
    OOO_KEPT = 0
    OOO_DUPLICATE              # nothing new: all of it is already held
    OOO_QUEUE_FULL             # this connection holds OOO_MAX segments
    OOO_BUDGET_FULL            # the layer's OooBudget is spent

cdef struct OooSegment:
    seq_t seq
    uint32_t len
    fl_mbuf *m

cdef struct RecvBuffer:
    fl_mbuf **q                # ring of in-order mbufs
    uint32_t qcap
    uint32_t qhead
    uint32_t qlen
    uint32_t head_off          # bytes of q[qhead] the application has already read
    uint32_t bytes             # in-order bytes not yet read
    uint32_t limit             # SO_RCVBUF: in-order plus out-of-order bytes
    OooSegment *ooo            # OOO_MAX entries, allocated at the first out-of-order segment
                               # (most connections never see one: 4 KiB each saved)
    uint32_t ooo_n
    uint32_t ooo_bytes
    seq_t ooo_last_seq         # start of the most recently received out-of-order segment
    OooBudget *budget          # the layer's, shared by every connection

cdef bint rcvbuf_init(RecvBuffer *b, uint32_t limit, OooBudget *budget) noexcept
cdef void rcvbuf_release(RecvBuffer *b, Link link) noexcept
cdef bint rcvbuf_append(RecvBuffer *b, fl_mbuf *m, uint32_t n, Link link) noexcept
cdef uint32_t rcvbuf_read(RecvBuffer *b, uint8_t *dst, uint32_t n, Link link) noexcept
cdef OooResult ooo_insert(RecvBuffer *b, seq_t seq, fl_mbuf *m, uint32_t n, Link link) noexcept
cdef seq_t ooo_pull(RecvBuffer *b, seq_t rcv_nxt, Link link) noexcept
cdef uint32_t ooo_sack_blocks(const RecvBuffer *b, TcpSackBlock *blocks,
                              uint32_t max_blocks) noexcept

cdef inline uint32_t rcvbuf_space(const RecvBuffer *b) noexcept nogil:
    cdef uint32_t used = b.bytes + b.ooo_bytes
    return b.limit - used if b.limit > used else 0

cdef inline uint32_t rcvbuf_held(const RecvBuffer *b) noexcept nogil:
    return b.qlen + b.ooo_n
