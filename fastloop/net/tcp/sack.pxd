# cython: language_level=3
# The SACK scoreboard of a sender (RFC 6675 §3): which octets above SND.UNA the peer has
# selectively acknowledged (RFC 2018), as a small fixed array of sequence ranges in the TCB.
# No Python objects, no allocation; every function below is O(SACK_RANGES_MAX).
#
# Invariants (sack.pyx keeps them, tests/test_tcp_sack.py checks them through the stack):
#   r[0..n) ascending, disjoint and not touching: r[i].right < r[i+1].left
#   snd_una <= r[i].left < r[i].right <= snd_max for the snd_una/snd_max last given
#   sacked == sum of (right - left)
# When the array is full, the range farthest from SND.UNA is forgotten: forgetting SACK
# information is always safe (the octets are just treated as not yet received, RFC 6675 §1:
# "a sender ... may retransmit data that has already been SACKed"), and the low ranges are
# the ones that decide IsLost() for the next holes.
#
# Sequence numbers here are "one past" ends, as everywhere in net/tcp: RFC 6675's HighRxt
# (the highest octet retransmitted) is high_rxt - 1, and HighData is snd_max - 1.
from libc.stdint cimport uint32_t, uint64_t
from fastloop.net.tcp.seq cimport seq_t
from fastloop.net.wire.tcp cimport TcpSackBlock

cdef enum:
    SACK_RANGES_MAX = 32       # a 256 KiB window of 1448-byte segments has at most ~90 holes,
                               # but a lossy path seldom has more than a handful at once
    DUP_THRESH = 3             # RFC 6675 §2 DupThresh (RFC 5681's three duplicate ACKs)

cdef enum SackRule:            # which NextSeg() rule (RFC 6675 §4) chose a segment
    SACK_NONE = 0
    SACK_RULE_LOST = 1         # (1) the first lost, not yet retransmitted, octet
    SACK_RULE_NEW = 2          # (2) new data (decided by the sender: window and data)
    SACK_RULE_HOLE = 3         # (3) a hole not yet known to be lost
    SACK_RULE_RESCUE = 4       # (4) rescue retransmission of the highest unSACKed octet

cdef struct SackRange:
    seq_t left                 # first octet SACKed
    seq_t right                # one past the last

cdef struct SackScoreboard:
    SackRange r[SACK_RANGES_MAX]
    uint32_t n
    uint32_t sacked            # octets in r[]
    seq_t high_rxt             # one past RFC 6675's HighRxt (valid during recovery)
    seq_t rescue_rxt           # RFC 6675's RescueRxt
    bint rescue_valid          # RescueRxt is defined (RFC 6675 §4 NextSeg (4))
    uint32_t dsack             # blocks at or below SND.UNA seen (D-SACK, RFC 2883 §4)
    uint32_t bogus             # blocks rejected as invalid (RFC 2018 §3, RFC 6675 §5.1)
    uint64_t rxt_ns            # when the last retransmission below high_rxt left
    bint probe_sent            # the loss probe timer acted, no new ACK since (recovery.pyx)

cdef void sack_clear(SackScoreboard *sb) noexcept nogil
cdef uint32_t sack_update(SackScoreboard *sb, const TcpSackBlock *blocks, uint32_t count,
                          seq_t snd_una, seq_t snd_max) noexcept nogil
cdef void sack_advance(SackScoreboard *sb, seq_t snd_una) noexcept nogil
cdef bint sack_is_lost(const SackScoreboard *sb, seq_t seq, uint32_t smss) noexcept nogil
cdef uint32_t sack_pipe(const SackScoreboard *sb, seq_t snd_una, seq_t snd_max,
                        uint32_t smss) noexcept nogil
cdef uint32_t sack_unsacked(const SackScoreboard *sb, seq_t start, seq_t end) noexcept nogil
cdef SackRule sack_next_seg(const SackScoreboard *sb, seq_t snd_una, uint32_t smss,
                            seq_t *seq, uint32_t *length) noexcept nogil
cdef bint sack_rescue(SackScoreboard *sb, seq_t snd_una, seq_t snd_max, seq_t recovery_point,
                      uint32_t smss, seq_t *seq, uint32_t *length) noexcept nogil
cdef seq_t sack_skip(const SackScoreboard *sb, seq_t seq) noexcept nogil
cdef uint32_t sack_hole_len(const SackScoreboard *sb, seq_t seq) noexcept nogil


cdef inline seq_t sack_highest(const SackScoreboard *sb, seq_t snd_una) noexcept nogil:
    """One past the highest octet SACKed (snd_una when nothing is)."""
    return sb.r[sb.n - 1].right if sb.n else snd_una
