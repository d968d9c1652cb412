# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Ethernet and ARP: frame demux, neighbour resolution with a bounded wait queue, tx backlog.

The network layer (iface.pyx) subclasses Link and overrides ipv4_input.
"""
from libc.stdlib cimport calloc, free
from libc.string cimport memcpy, memset
from fastloop.includes.dpdk cimport (
    FL_DEBUG, fl_mbuf_alloc, fl_mbuf_free, fl_mbuf_data, fl_mbuf_data_len, fl_mbuf_pkt_len,
    fl_mbuf_nb_segs, fl_mbuf_adj, fl_mbuf_append, fl_mbuf_prepend, fl_mbuf_trim)
from fastloop.net.counters cimport *
from fastloop.net.arp_cache cimport (ArpCache, ArpEntry, ARP_FREE, ARP_INCOMPLETE,
                                     ARP_REACHABLE, ARP_TABLE_SIZE)
from fastloop.net.wire.ethernet cimport (
    EthHeader, eth_parse, eth_emit, mac_is_multicast, mac_is_broadcast, mac_equal, mac_is_zero,
    ETH_HDR_LEN, ETHERTYPE_ARP, ETHERTYPE_IPV4)
from fastloop.net.wire.arp cimport ArpPacket, arp_parse, arp_emit, ARP_LEN, ARP_OP_REQUEST, ARP_OP_REPLY

cdef uint8_t BROADCAST_MAC[6]
BROADCAST_MAC[:] = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
cdef uint8_t ZERO_MAC[6]
ZERO_MAC[:] = [0, 0, 0, 0, 0, 0]

ARP_RETRIES = 3


cdef inline bint arp_sender_invalid(uint32_t spa) noexcept:
    """RFC 1122 §3.2.1.3: no host has an address in 0/8 (0.0.0.0 itself is an RFC 5227
    probe), 127/8, multicast, class E or broadcast; such a sender gets no reply and no entry."""
    cdef uint32_t top = spa >> 24
    return (top == 0 and spa != 0) or top == 127 or top >= 224
cdef uint64_t ARP_SCAN_NS = 100 * 1000 * 1000


cdef class Link:
    def __cinit__(self):
        self.txq_cap = 4096
        self.txq = <fl_mbuf **>calloc(self.txq_cap, sizeof(fl_mbuf *))
        if self.txq == NULL:
            raise MemoryError()
        self.arp = ArpCache()

    def __dealloc__(self):
        free(self.txq)

    # ---- mbuf ownership ---------------------------------------------------------------
    cdef fl_mbuf *mbuf_alloc(self) noexcept:
        cdef fl_mbuf *m = fl_mbuf_alloc(self.pool)
        if m == NULL:
            self.drops[DROP_NO_MBUF] += 1
        elif FL_DEBUG:
            self.books.allocated += 1
        return m

    cdef void mbuf_free(self, fl_mbuf *m) noexcept:
        if FL_DEBUG:
            self.books.freed += 1
        fl_mbuf_free(m)

    cdef void drop(self, fl_mbuf *m, int reason) noexcept:
        self.drops[reason] += 1
        self.mbuf_free(m)

    cdef int64_t held(self) noexcept:
        """Mbufs owned right now: the tx backlog and frames waiting for ARP."""
        cdef uint32_t i
        cdef int64_t n = self.txq_len
        for i in range(ARP_TABLE_SIZE):
            if self.arp.slot(i).state != ARP_FREE:
                n += self.arp.slot(i).qlen
        return n

    cdef void check_books(self) noexcept:
        """Debug builds, once per poll step: what came in and was not let go is still held."""
        cdef MbufBooks *b = &self.books
        if b.received + b.allocated - b.freed - b.transmitted != self.held():
            b.mismatches += 1

    def mbuf_books(self):
        """The debug build's mbuf books (all zero in a release build)."""
        return {"received": self.books.received, "allocated": self.books.allocated,
                "freed": self.books.freed, "transmitted": self.books.transmitted,
                "held": self.held(), "mismatches": self.books.mismatches,
                "enabled": bool(FL_DEBUG)}

    # ---- transmit -------------------------------------------------------------------
    cdef void tx_enqueue(self, fl_mbuf *m) noexcept:
        if self.txq_len == self.txq_cap:
            self.drop(m, DROP_TX_BACKLOG_FULL)
            return
        self.txq[(self.txq_head + self.txq_len) % self.txq_cap] = m
        self.txq_len += 1

    cdef uint32_t flush(self) noexcept:
        """Hand the backlog to the PMD in bursts; stop at the first burst it does not finish."""
        cdef uint32_t sent = 0, chunk, k, i
        while self.txq_len > 0:
            chunk = min(self.txq_len, self.txq_cap - self.txq_head, TX_BURST)
            for i in range(chunk):
                self.stats[STAT_TX_BYTES] += fl_mbuf_pkt_len(self.txq[self.txq_head + i])
            k = self.device.tx_burst(&self.txq[self.txq_head], <uint16_t>chunk)
            for i in range(k, chunk):     # not taken: uncount, they go again next time
                self.stats[STAT_TX_BYTES] -= fl_mbuf_pkt_len(self.txq[self.txq_head + i])
            self.stats[STAT_TX_FRAMES] += k
            if FL_DEBUG:
                self.books.transmitted += k
            sent += k
            self.txq_head = (self.txq_head + k) % self.txq_cap
            self.txq_len -= k
            if k < chunk:
                break
        return sent

    # ---- receive --------------------------------------------------------------------
    cdef void link_input(self, fl_mbuf *m, uint64_t now) noexcept:
        """Ethernet II demux; consumes m."""
        cdef EthHeader eth
        if FL_DEBUG:
            self.books.received += 1
        self.stats[STAT_RX_FRAMES] += 1
        self.stats[STAT_RX_BYTES] += fl_mbuf_pkt_len(m)
        if fl_mbuf_nb_segs(m) > 1:                       # jumbo frames are not enabled
            self.drop(m, DROP_MULTISEG)
            return
        if not eth_parse(fl_mbuf_data(m), fl_mbuf_data_len(m), &eth):
            self.drop(m, DROP_ETH_TRUNCATED)
            return
        if mac_is_multicast(eth.src):                     # IEEE 802: a source is unicast
            self.drop(m, DROP_ETH_SRC_INVALID)
            return
        cdef bint broadcast = False
        if not mac_equal(eth.dst, self.mac):
            broadcast = mac_is_broadcast(eth.dst)
            if not broadcast:
                self.drop(m, DROP_ETH_MULTICAST if mac_is_multicast(eth.dst)
                          else DROP_ETH_NOT_OUR_MAC)
                return
        if eth.ethertype == ETHERTYPE_IPV4:
            fl_mbuf_adj(m, ETH_HDR_LEN)
            self.ipv4_input(m, broadcast, now)
        elif eth.ethertype == ETHERTYPE_ARP:
            self.arp_input(m, now)
        else:
            self.drop(m, DROP_ETH_TYPE)

    cdef void ipv4_input(self, fl_mbuf *m, bint link_broadcast, uint64_t now) noexcept:
        self.drop(m, DROP_IP_PROTOCOL)                   # the network layer overrides this

    # ---- ARP (RFC 826) --------------------------------------------------------------
    cdef void arp_input(self, fl_mbuf *m, uint64_t now) noexcept:
        cdef ArpPacket a
        cdef uint8_t *frame = fl_mbuf_data(m)
        if not arp_parse(frame + ETH_HDR_LEN, fl_mbuf_data_len(m) - ETH_HDR_LEN, &a):
            self.drop(m, DROP_ARP_MALFORMED)
            return
        self.stats[STAT_ARP_REQUESTS_IN if a.op == ARP_OP_REQUEST else STAT_ARP_REPLIES_IN] += 1
        if (mac_is_multicast(a.sha) or arp_sender_invalid(a.spa)
                or (a.spa == self.addr and not mac_equal(a.sha, self.mac))):
            self.drop(m, DROP_ARP_SRC_INVALID)           # a bad sender, or an address conflict
            return
        cdef ArpEntry *e = NULL
        if a.spa != 0:                                    # spa 0 is a probe (RFC 5227 §2.1.1)
            e = self.arp.lookup(a.spa)
            if e != NULL:                                 # RFC 826: the merge flag
                self.arp_learn(e, a.sha, now)
        if a.tpa != self.addr:
            if e == NULL:
                self.drop(m, DROP_ARP_NOT_FOR_US)
            else:
                self.mbuf_free(m)
            return
        if e == NULL and a.spa != 0:
            e = self.arp.insert(a.spa)
            if e == NULL:
                self.drops[DROP_ARP_TABLE_FULL] += 1      # still answer below
            else:
                self.arp_learn(e, a.sha, now)
        if a.op != ARP_OP_REQUEST:
            self.mbuf_free(m)
            return
        # answer in place: the request's mbuf becomes the reply, without what followed the
        # 28 ARP bytes (Ethernet padding, a trailer): the reply is ours, not an echo of theirs
        if fl_mbuf_data_len(m) > ETH_HDR_LEN + ARP_LEN:
            fl_mbuf_trim(m, fl_mbuf_data_len(m) - (ETH_HDR_LEN + ARP_LEN))
        memcpy(a.tha, a.sha, 6)
        a.tpa = a.spa
        memcpy(a.sha, self.mac, 6)
        a.spa = self.addr
        a.op = ARP_OP_REPLY
        eth_emit(frame, a.tha, self.mac, ETHERTYPE_ARP)
        arp_emit(frame + ETH_HDR_LEN, &a)
        self.stats[STAT_ARP_REPLIES_OUT] += 1
        self.tx_enqueue(m)

    cdef void arp_learn(self, ArpEntry *e, const uint8_t *mac, uint64_t now) noexcept:
        """Record the neighbour's address and release the frames that waited for it."""
        cdef uint16_t i
        cdef uint8_t *frame
        memcpy(e.mac, mac, 6)
        e.state = ARP_REACHABLE
        e.deadline = now + self.arp_ttl_ns
        e.probes = 0
        for i in range(e.qlen):
            frame = fl_mbuf_prepend(e.queue[i], ETH_HDR_LEN)
            eth_emit(frame, e.mac, self.mac, ETHERTYPE_IPV4)
            self.tx_enqueue(e.queue[i])
        self.arp_queued -= e.qlen
        e.qlen = 0

    cdef void arp_send(self, uint16_t op, const uint8_t *dst_mac, const uint8_t *tha,
                       uint32_t tpa) noexcept:
        cdef ArpPacket a
        cdef fl_mbuf *m = self.mbuf_alloc()
        if m == NULL:
            return
        cdef uint8_t *frame = fl_mbuf_append(m, ETH_HDR_LEN + ARP_LEN)
        a.op = op
        memcpy(a.sha, self.mac, 6)
        a.spa = self.addr
        memcpy(a.tha, tha, 6)
        a.tpa = tpa
        eth_emit(frame, dst_mac, self.mac, ETHERTYPE_ARP)
        arp_emit(frame + ETH_HDR_LEN, &a)
        self.tx_enqueue(m)

    def send_gratuitous_arp(self):
        """Announce our address (RFC 5227 §3): a request with sender = target = us."""
        self.arp_send(ARP_OP_REQUEST, BROADCAST_MAC, ZERO_MAC, self.addr)
        self.stats[STAT_ARP_GRATUITOUS_OUT] += 1

    cdef void neighbour_output(self, fl_mbuf *m, uint32_t nexthop, bint broadcast,
                               uint64_t now) noexcept:
        """Frame an IPv4 packet for nexthop; wait for ARP if it is not known yet. Consumes m."""
        cdef ArpEntry *e
        cdef uint8_t *frame
        if broadcast:
            frame = fl_mbuf_prepend(m, ETH_HDR_LEN)
            eth_emit(frame, BROADCAST_MAC, self.mac, ETHERTYPE_IPV4)
            self.tx_enqueue(m)
            return
        e = self.arp.lookup(nexthop)
        if e != NULL and e.state == ARP_REACHABLE:
            frame = fl_mbuf_prepend(m, ETH_HDR_LEN)
            eth_emit(frame, e.mac, self.mac, ETHERTYPE_IPV4)
            self.tx_enqueue(m)
            return
        if e == NULL:
            e = self.arp.insert(nexthop)
            if e == NULL:
                self.drop(m, DROP_ARP_TABLE_FULL)
                return
            e.probes = 1
            e.deadline = now + self.arp_retry_ns
            self.arp_send(ARP_OP_REQUEST, BROADCAST_MAC, ZERO_MAC, nexthop)
            self.stats[STAT_ARP_REQUESTS_OUT] += 1
        if e.qlen >= self.arp_queue_limit:
            self.drop(m, DROP_ARP_QUEUE_FULL)
            return
        if self.arp_queued >= self.arp_queued_limit:   # many unresolved neighbours at once
            self.drop(m, DROP_ARP_QUEUES_FULL)          # (e.g. replies to spoofed sources)
            return
        e.queue[e.qlen] = m
        e.qlen += 1
        self.arp_queued += 1

    cdef void arp_timers(self, uint64_t now) noexcept:
        """Every 100 ms: retransmit requests, give up after ARP_RETRIES, expire old entries."""
        if now < self.next_arp_scan:
            return
        self.next_arp_scan = now + ARP_SCAN_NS
        cdef uint32_t i = 0
        cdef ArpEntry *e
        while i < ARP_TABLE_SIZE:
            e = self.arp.slot(i)
            if e.state == ARP_FREE or now < e.deadline:
                i += 1
                continue
            if e.state == ARP_INCOMPLETE and e.probes < ARP_RETRIES:
                e.probes += 1
                e.deadline = now + self.arp_retry_ns
                self.arp_send(ARP_OP_REQUEST, BROADCAST_MAC, ZERO_MAC, e.ip)
                self.stats[STAT_ARP_REQUESTS_OUT] += 1
                i += 1
                continue
            # unresolved, or expired (RFC 1122 §2.3.2.1): drop what waited, free the slot
            while e.qlen > 0:
                e.qlen -= 1
                self.arp_queued -= 1
                self.drop(e.queue[e.qlen], DROP_ARP_UNRESOLVED)
            self.arp.remove(e)                  # may shift a later entry into slot i: look again

    cdef void release_all(self) noexcept:
        """Free every mbuf we hold (backlog and ARP queues): on close."""
        cdef uint32_t i
        cdef ArpEntry *e
        while self.txq_len > 0:
            self.mbuf_free(self.txq[self.txq_head])
            self.txq_head = (self.txq_head + 1) % self.txq_cap
            self.txq_len -= 1
        for i in range(ARP_TABLE_SIZE):
            e = self.arp.slot(i)
            while e.state != ARP_FREE and e.qlen > 0:
                e.qlen -= 1
                self.mbuf_free(e.queue[e.qlen])
        self.arp_queued = 0

    def arp_entries(self):
        import ipaddress
        return {str(ipaddress.IPv4Address(ip)): (":".join(f"{b:02x}" for b in mac), state)
                for ip, mac, state in self.arp.entries()}

    def held_mbufs(self):
        """Mbufs the link layer owns right now: the tx backlog and frames waiting for ARP."""
        return {"tx_backlog": self.txq_len, "arp_queues": self.held() - self.txq_len}
