# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""FaultInjector: a device middleware that loses, duplicates, reorders, corrupts and delays
frames, independently on rx and tx, reproducibly from a seed.

Each direction has its own splitmix64 stream, and every frame draws the same five numbers
(loss, dup, reorder, corrupt, position) whatever the outcome, so a seed and a sequence of
frames give the same decisions on every run, whatever the other probabilities or the burst
boundaries. Per frame, in order:

- loss: the frame is freed (counted as dropped).
- corrupt: one random bit of one random byte after the 14-byte Ethernet header is flipped.
  On tx the checksums the frame asked the PMD to offload are computed in software first
  (fl_mbuf_sw_cksum), so the corruption is real; on rx the PMD's checksum verdict is
  forgotten (fl_mbuf_rx_cksum_unknown), so the stack re-verifies in software.
  Corruption writes the mbuf in place: the shim's clone is a deep copy, so a retransmit
  queue holding its own copy is not affected.
- dup: a copy (fl_mbuf_clone from the device's pool) follows the frame; a failed clone is
  counted and the frame goes alone.
- reorder: the frame is held back and delivered after the next frame, or at the next poll.
- delay: frames wait in a bounded FIFO until now + delay_ms.

Time is the `now` of the latest poll() (the stack reads its clock once per step), so a
virtual clock drives the delay deterministically. tx_burst takes every frame it is handed;
what the inner device does not accept waits in a bounded queue retried by later bursts and
poll(). rx pulls from the inner device only what its bounded queues can hold. Overflow of a
bounded queue frees the frame and counts queue_overflow. close() frees every held mbuf.
"""
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport malloc, free
from fastloop.includes.dpdk cimport (
    fl_mbuf, fl_mbuf_free, fl_mbuf_clone, fl_mbuf_data, fl_mbuf_data_len, fl_mbuf_pkt_len,
    fl_mbuf_nb_segs, fl_mbuf_linearize, fl_mbuf_tx_cksum_requested, fl_mbuf_sw_cksum,
    fl_mbuf_rx_cksum_unknown)
from fastloop.dev.device cimport Device, Middleware

DEFAULT_QUEUE = 4096
cdef enum:
    ETH_HLEN = 14
    DRAWS = 5                 # PRNG draws per frame, whatever the outcome
    MAX_OUT = 3               # frames one input can emit: itself, its copy, a held one
PROBABILITIES = ("loss", "dup", "reorder", "corrupt")
PARAMS = PROBABILITIES + ("delay_ms", "seed")


# ---- splitmix64 (Steele, Lea, Flood 2014): tiny state, good enough for fault decisions ----

cdef inline uint64_t _next(uint64_t *s) noexcept nogil:
    s[0] += <uint64_t>0x9E3779B97F4A7C15
    cdef uint64_t z = s[0]
    z = (z ^ (z >> 30)) * <uint64_t>0xBF58476D1CE4E5B9
    z = (z ^ (z >> 27)) * <uint64_t>0x94D049BB133111EB
    return z ^ (z >> 31)

cdef inline bint _hit(uint64_t r, double p) noexcept nogil:
    # top 53 bits as a double in [0, 1): p = 1.0 always hits, p = 0.0 never does
    return <double>(r >> 11) * (1.0 / 9007199254740992.0) < p


# ---- bounded mbuf FIFO ----

cdef int _q_init(MbufQueue *q, uint32_t cap) noexcept:
    q.m = <fl_mbuf **>malloc(cap * sizeof(fl_mbuf *))
    q.due = <uint64_t *>malloc(cap * sizeof(uint64_t))
    q.head = 0
    q.count = 0
    q.cap = cap
    return 0 if (q.m != NULL and q.due != NULL) else -1

cdef void _q_destroy(MbufQueue *q) noexcept:
    free(q.m)
    free(q.due)
    q.m = NULL
    q.due = NULL
    q.cap = q.count = 0

cdef inline bint _q_push(MbufQueue *q, fl_mbuf *m, uint64_t due) noexcept:
    if q.count >= q.cap:
        return False
    cdef uint32_t i = (q.head + q.count) % q.cap
    q.m[i] = m
    q.due[i] = due
    q.count += 1
    return True

cdef inline fl_mbuf *_q_pop(MbufQueue *q) noexcept:
    cdef fl_mbuf *m = q.m[q.head]
    q.head = (q.head + 1) % q.cap
    q.count -= 1
    return m

cdef void _q_drop_all(MbufQueue *q) noexcept:
    while q.count:
        fl_mbuf_free(_q_pop(q))


cdef int _dir_init(FaultDir *d, uint64_t rng, uint32_t cap) noexcept:
    d.rng = rng
    d.held = NULL
    return -1 if (_q_init(&d.delayq, cap) < 0 or _q_init(&d.outq, cap) < 0) else 0

cdef void _dir_free_mbufs(FaultDir *d) noexcept:
    if d.held != NULL:
        fl_mbuf_free(d.held)
        d.held = NULL
    _q_drop_all(&d.delayq)
    _q_drop_all(&d.outq)

cdef void _dir_destroy(FaultDir *d) noexcept:
    _q_destroy(&d.delayq)
    _q_destroy(&d.outq)


cdef dict _dir_counters(FaultDir *d, str prefix):
    return {prefix + "dropped": d.dropped, prefix + "duplicated": d.duplicated,
            prefix + "reordered": d.reordered, prefix + "corrupted": d.corrupted,
            prefix + "delayed": d.delayed, prefix + "clone_failed": d.clone_failed,
            prefix + "queue_overflow": d.queue_overflow}


def _params(loss, dup, reorder, corrupt, delay_ms, seed):
    """Keyword values, or one dict from fastloop.config.parse_faults in place of `loss`."""
    p = dict(loss=0.0, dup=0.0, reorder=0.0, corrupt=0.0, delay_ms=0.0, seed=1)
    if isinstance(loss, dict):
        unknown = set(loss) - set(PARAMS)
        if unknown:
            raise ValueError(f"unknown fault parameters {sorted(unknown)}; accepted: {PARAMS}")
        p.update(loss)
    else:
        p.update(loss=loss, dup=dup, reorder=reorder, corrupt=corrupt, delay_ms=delay_ms,
                 seed=seed)
    for k in PROBABILITIES:
        if not 0.0 <= float(p[k]) <= 1.0:
            raise ValueError(f"{k} is a probability between 0 and 1, got {p[k]}")
    if float(p["delay_ms"]) < 0:
        raise ValueError("delay_ms cannot be negative")
    return p


cdef class FaultInjector(Middleware):
    def __init__(self, Device inner, loss=0.0, dup=0.0, reorder=0.0, corrupt=0.0,
                 delay_ms=0.0, seed=1, *, uint32_t queue=DEFAULT_QUEUE):
        p = _params(loss, dup, reorder, corrupt, delay_ms, seed)
        if queue < MAX_OUT:
            raise ValueError(f"queue must hold at least {MAX_OUT} frames")
        Middleware.__init__(self, inner)
        self.info.rx_fd = -1          # it holds frames back: a sleeping loop must keep polling
        self.info.has_rx_intr = 0
        self.loss, self.dup = p["loss"], p["dup"]
        self.reorder, self.corrupt = p["reorder"], p["corrupt"]
        self.delay_ms = p["delay_ms"]
        self.delay_ns = <uint64_t>(self.delay_ms * 1e6)
        self.seed = <uint64_t>(int(p["seed"]) & 0xFFFFFFFFFFFFFFFF)
        self.queue = queue
        cdef uint64_t s = self.seed
        # two streams from one seed: rx traffic never shifts tx decisions
        if _dir_init(&self.rx, _next(&s), queue) < 0 or _dir_init(&self.tx, _next(&s), queue) < 0:
            raise MemoryError("cannot allocate the fault injector's queues")

    def __dealloc__(self):
        # Only the C arrays: mbufs go back to the pool in close(), while EAL is still up.
        _dir_destroy(&self.rx)
        _dir_destroy(&self.tx)

    cdef void _process(self, FaultDir *d, fl_mbuf *m, bint is_tx) noexcept:
        """Apply loss, corruption, duplication and reordering to one frame, then emit."""
        cdef uint64_t r_loss = _next(&d.rng), r_dup = _next(&d.rng)
        cdef uint64_t r_reorder = _next(&d.rng), r_corrupt = _next(&d.rng)
        cdef uint64_t r_pos = _next(&d.rng)
        cdef fl_mbuf *copy = NULL
        if _hit(r_loss, self.loss):
            fl_mbuf_free(m)
            d.dropped += 1
            return
        if _hit(r_corrupt, self.corrupt):
            self._corrupt(d, m, r_pos, is_tx)
        if _hit(r_dup, self.dup):
            copy = fl_mbuf_clone(m, self.pool)
            if copy == NULL:
                d.clone_failed += 1
            else:
                d.duplicated += 1
        if _hit(r_reorder, self.reorder) and d.held == NULL:
            d.held = m
            d.reordered += 1
        else:
            self._emit(d, m)
            m = NULL
        if copy != NULL:
            self._emit(d, copy)
        if m != NULL or d.held == NULL:
            return
        self._emit(d, d.held)       # the frame just emitted overtook the held one
        d.held = NULL

    cdef void _corrupt(self, FaultDir *d, fl_mbuf *m, uint64_t r, bint is_tx) noexcept:
        """Flip bit r & 7 of a byte after the Ethernet header chosen by r >> 3."""
        cdef uint32_t length = fl_mbuf_pkt_len(m), off
        cdef fl_mbuf *seg = m
        if length <= ETH_HLEN:
            return
        if is_tx and fl_mbuf_tx_cksum_requested(m):
            # the checksums must be final before the damage, or the PMD would "fix" it
            if fl_mbuf_nb_segs(m) > 1 and fl_mbuf_linearize(m) != 0:
                return
            fl_mbuf_sw_cksum(m)
        off = ETH_HLEN + <uint32_t>((r >> 3) % (length - ETH_HLEN))
        while off >= fl_mbuf_data_len(seg):
            off -= fl_mbuf_data_len(seg)
            seg = seg.next
        fl_mbuf_data(seg)[off] ^= <uint8_t>(1 << (r & 7))
        if not is_tx:
            fl_mbuf_rx_cksum_unknown(m)
        d.corrupted += 1

    cdef void _emit(self, FaultDir *d, fl_mbuf *m) noexcept:
        """Queue a frame that survived: into the delay FIFO, or out."""
        if self.delay_ns:
            if _q_push(&d.delayq, m, self.now + self.delay_ns):
                d.delayed += 1
                return
        else:
            if d.outq.count == d.outq.cap and d == &self.tx:
                self._tx_flush()
            if _q_push(&d.outq, m, 0):
                return
        fl_mbuf_free(m)
        d.queue_overflow += 1

    cdef void _release(self, FaultDir *d) noexcept:
        """Move delayed frames that are due to the out queue, in order, while it has room."""
        cdef MbufQueue *q = &d.delayq
        while q.count and q.due[q.head] <= self.now and d.outq.count < d.outq.cap:
            _q_push(&d.outq, _q_pop(q), 0)

    cdef void _tx_flush(self) noexcept:
        """Hand the tx out queue to the inner device until it stops accepting."""
        cdef MbufQueue *q = &self.tx.outq
        cdef uint32_t chunk
        cdef uint16_t k
        while q.count:
            chunk = min(q.count, q.cap - q.head, <uint32_t>0xFFFF)
            k = self.inner.tx_burst(&q.m[q.head], <uint16_t>chunk)
            q.head = (q.head + k) % q.cap
            q.count -= k
            if k < chunk:
                return

    cdef uint16_t tx_burst(self, fl_mbuf **pkts, uint16_t n) noexcept:
        cdef uint16_t i
        for i in range(n):
            self._process(&self.tx, pkts[i], True)
        self._release(&self.tx)
        self._tx_flush()
        return n                    # every frame is ours now: sent, queued, or dropped

    cdef uint16_t rx_burst(self, fl_mbuf **pkts, uint16_t n) noexcept:
        cdef FaultDir *d = &self.rx
        cdef MbufQueue *dest = &d.delayq if self.delay_ns else &d.outq
        cdef uint16_t r, i, out = 0
        self._release(d)
        # pull only what the queues can take even if every frame is copied and passes a held one
        cdef uint32_t room = (dest.cap - dest.count) // MAX_OUT
        if room:
            r = self.inner.rx_burst(pkts, <uint16_t>min(<uint32_t>n, room))
            for i in range(r):
                self._process(d, pkts[i], False)
        while out < n and d.outq.count:
            pkts[out] = _q_pop(&d.outq)
            out += 1
        return out

    cdef void _unhold(self, FaultDir *d) noexcept:
        """Emit the held frame: nothing came to overtake it before this poll."""
        if d.held != NULL:
            self._emit(d, d.held)
            d.held = NULL

    cdef void poll(self, uint64_t now) noexcept:
        self.now = now
        self._unhold(&self.rx)
        self._release(&self.rx)
        self._unhold(&self.tx)
        self._tx_flush()
        self._release(&self.tx)     # the flush made room in the out queue
        self._tx_flush()
        self.inner.poll(now)

    cpdef close(self):
        """Free every frame the injector holds, then close the inner device."""
        if self.closed:
            return
        _dir_free_mbufs(&self.rx)
        _dir_free_mbufs(&self.tx)
        Middleware.close(self)

    @property
    def counters(self):
        """rx_* and tx_* counts of dropped, duplicated, reordered, corrupted, delayed,
        clone_failed and queue_overflow frames."""
        c = _dir_counters(&self.rx, "rx_")
        c.update(_dir_counters(&self.tx, "tx_"))
        return c

    @property
    def held(self):
        """Frames the injector holds right now (reorder slot, delay FIFOs, out queues)."""
        return ((self.rx.held != NULL) + (self.tx.held != NULL) + self.rx.delayq.count
                + self.rx.outq.count + self.tx.delayq.count + self.tx.outq.count)
