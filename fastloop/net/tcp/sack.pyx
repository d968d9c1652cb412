# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The sender's SACK scoreboard and RFC 6675 §4's routines: Update(), IsLost(), SetPipe(),
NextSeg(). Declarations and invariants are in sack.pxd; the recovery procedure that uses
them (RFC 6675 §5) is in input.pyx (ACKs) and output.pyx (what to send)."""
from libc.string cimport memmove
from fastloop.net.tcp.seq cimport seq_lt, seq_le, seq_gt, seq_ge, seq_min, seq_max

cdef uint32_t SACK_SPAN_MAX = 1 << 30      # no window is larger (RFC 7323 §2.3)


cdef void sack_clear(SackScoreboard *sb) noexcept nogil:
    sb.n = 0
    sb.sacked = 0
    sb.rescue_valid = False


cdef void _remove(SackScoreboard *sb, uint32_t i, uint32_t count) noexcept nogil:
    memmove(&sb.r[i], &sb.r[i + count], (sb.n - i - count) * sizeof(SackRange))
    sb.n -= count


cdef uint32_t _insert(SackScoreboard *sb, seq_t left, seq_t right) noexcept nogil:
    """Merge [left, right) into the ranges; returns the octets newly SACKed."""
    cdef uint32_t i = 0, j, k, added, covered = 0
    while i < sb.n and seq_lt(sb.r[i].right, left):
        i += 1
    if i == sb.n or seq_gt(sb.r[i].left, right):   # a range of its own at i
        if sb.n == SACK_RANGES_MAX:
            if i == sb.n:
                return 0                           # full, and the farthest: forget it
            sb.sacked -= sb.r[sb.n - 1].right - sb.r[sb.n - 1].left
            sb.n -= 1                              # forget the farthest (sack.pxd)
        memmove(&sb.r[i + 1], &sb.r[i], (sb.n - i) * sizeof(SackRange))
        sb.r[i].left = left
        sb.r[i].right = right
        sb.n += 1
        sb.sacked += right - left
        return right - left
    # overlaps or touches r[i] (and perhaps the ranges after it): one range from i to j
    left = seq_min(left, sb.r[i].left)
    j = i
    while j + 1 < sb.n and seq_le(sb.r[j + 1].left, right):
        j += 1
    right = seq_max(right, sb.r[j].right)
    for k in range(i, j + 1):
        covered += sb.r[k].right - sb.r[k].left
    added = (right - left) - covered
    sb.r[i].left = left
    sb.r[i].right = right
    if j > i:
        _remove(sb, i + 1, j - i)
    sb.sacked += added
    return added


cdef uint32_t sack_update(SackScoreboard *sb, const TcpSackBlock *blocks, uint32_t count,
                          seq_t snd_una, seq_t snd_max) noexcept nogil:
    """RFC 6675 §4 Update(): mark the octets of each valid block SACKed; returns how many
    were not already. A block is used only if it lies within SND.UNA..SND.MAX: RFC 2018 §3
    blocks report data received, and nothing above what we sent can have been; an empty or
    inverted block, or one reaching past SND.MAX, is bogus and ignored (counted). A block
    wholly at or below SND.UNA is a D-SACK (RFC 2883 §4, a duplicate received): no news for
    the scoreboard, counted. One straddling SND.UNA is used from SND.UNA up."""
    cdef uint32_t i, added = 0
    cdef seq_t left, right
    for i in range(count):
        left = blocks[i].left
        right = blocks[i].right
        if not seq_lt(left, right) or <uint32_t>(right - left) > SACK_SPAN_MAX \
                or seq_gt(right, snd_max):
            sb.bogus += 1
            continue
        if seq_le(right, snd_una):
            sb.dsack += 1
            continue
        if seq_lt(left, snd_una):
            left = snd_una
        added += _insert(sb, left, right)
    return added


cdef void sack_advance(SackScoreboard *sb, seq_t snd_una) noexcept nogil:
    """The cumulative ACK moved to snd_una: what lies below it leaves the scoreboard."""
    cdef uint32_t drop = 0
    while drop < sb.n and seq_le(sb.r[drop].right, snd_una):
        sb.sacked -= sb.r[drop].right - sb.r[drop].left
        drop += 1
    if drop:
        _remove(sb, 0, drop)
    if sb.n and seq_lt(sb.r[0].left, snd_una):
        sb.sacked -= snd_una - sb.r[0].left
        sb.r[0].left = snd_una


cdef inline bint _lost(uint32_t ranges_above, uint32_t octets_above, uint32_t smss) noexcept nogil:
    """RFC 6675 §4 IsLost(): DupThresh discontiguous SACKed sequences above, or more than
    (DupThresh - 1) * SMSS octets SACKed above."""
    return ranges_above >= DUP_THRESH or octets_above > (DUP_THRESH - 1) * smss


cdef bint sack_is_lost(const SackScoreboard *sb, seq_t seq, uint32_t smss) noexcept nogil:
    cdef uint32_t octets = 0, ranges = 0
    cdef int i = <int>sb.n - 1
    while i >= 0 and seq_lt(seq, sb.r[i].left):
        octets += sb.r[i].right - sb.r[i].left
        ranges += 1
        i -= 1
    return _lost(ranges, octets, smss)


cdef uint32_t sack_pipe(const SackScoreboard *sb, seq_t snd_una, seq_t snd_max,
                        uint32_t smss) noexcept nogil:
    """RFC 6675 §4 SetPipe(): each unSACKed octet in [SND.UNA, SND.MAX) counts once unless
    IsLost(), and once more if it was retransmitted (below HighRxt). IsLost() is the same
    for every octet of a hole, so the walk is per hole, from the top down."""
    cdef uint32_t pipe = 0, octets_above = 0, ranges_above = 0
    cdef seq_t top = snd_max, low
    cdef int i = <int>sb.n - 1
    while True:
        low = sb.r[i].right if i >= 0 else snd_una
        if seq_lt(low, top):
            if not _lost(ranges_above, octets_above, smss):
                pipe += top - low
            if seq_gt(sb.high_rxt, low):
                pipe += seq_min(top, sb.high_rxt) - low
        if i < 0:
            return pipe
        octets_above += sb.r[i].right - sb.r[i].left
        ranges_above += 1
        top = sb.r[i].left
        i -= 1


cdef uint32_t sack_unsacked(const SackScoreboard *sb, seq_t start, seq_t end) noexcept nogil:
    """Octets of [start, end) not SACKed."""
    cdef uint32_t n = end - start if seq_lt(start, end) else 0
    cdef uint32_t i
    cdef seq_t a, b
    for i in range(sb.n):
        a = seq_max(sb.r[i].left, start)
        b = seq_min(sb.r[i].right, end)
        if seq_lt(a, b):
            n -= b - a
    return n


cdef SackRule sack_next_seg(const SackScoreboard *sb, seq_t snd_una, uint32_t smss,
                            seq_t *seq, uint32_t *length) noexcept nogil:
    """RFC 6675 §4 NextSeg() rules (1) and (3): the first unSACKed octet at or above HighRxt
    and below the highest SACKed one; rule (1) if IsLost() holds for it, else the rule (3)
    candidate, which the sender uses only when rule (2) has no new data to send. Since
    IsLost() only weakens going up, the first such hole decides. At most one SMSS, and never
    into SACKed octets."""
    cdef uint32_t i, octets_above = sb.sacked
    cdef seq_t low = snd_una, start
    for i in range(sb.n):
        start = seq_max(low, sb.high_rxt)
        if seq_lt(start, sb.r[i].left):
            seq[0] = start
            length[0] = min(<uint32_t>(sb.r[i].left - start), smss)
            return SACK_RULE_LOST if _lost(sb.n - i, octets_above, smss) else SACK_RULE_HOLE
        octets_above -= sb.r[i].right - sb.r[i].left
        low = sb.r[i].right
    return SACK_NONE


cdef bint sack_rescue(SackScoreboard *sb, seq_t snd_una, seq_t snd_max, seq_t recovery_point,
                      uint32_t smss, seq_t *seq, uint32_t *length) noexcept nogil:
    """RFC 6675 §4 NextSeg() rule (4): once per recovery (while HighACK has not passed
    RescueRxt), one segment ending with the highest outstanding unSACKed octet; RescueRxt
    becomes RecoveryPoint, HighRxt is left alone."""
    cdef seq_t top = snd_max, low
    cdef int i = <int>sb.n - 1
    if sb.rescue_valid and not seq_gt(snd_una, sb.rescue_rxt):
        return False
    if i >= 0 and sb.r[i].right == snd_max:        # the tail is SACKed: the hole below it
        top = sb.r[i].left
        i -= 1
    low = sb.r[i].right if i >= 0 else snd_una
    if not seq_lt(low, top):
        return False
    if top - low > smss:
        low = top - smss
    seq[0] = low
    length[0] = top - low
    sb.rescue_rxt = recovery_point
    sb.rescue_valid = True
    return True


cdef seq_t sack_skip(const SackScoreboard *sb, seq_t seq) noexcept nogil:
    """seq, or the end of the SACKed range holding it."""
    cdef uint32_t i
    for i in range(sb.n):
        if seq_lt(seq, sb.r[i].left):
            return seq
        if seq_lt(seq, sb.r[i].right):
            return sb.r[i].right
    return seq


cdef uint32_t sack_hole_len(const SackScoreboard *sb, seq_t seq) noexcept nogil:
    """Octets from an unSACKed seq to the next SACKed range; UINT32_MAX if none is above."""
    cdef uint32_t i
    for i in range(sb.n):
        if seq_lt(seq, sb.r[i].left):
            return sb.r[i].left - seq
    return 0xFFFFFFFF
