# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""IPv4 (RFC 791, RFC 1122 §3) and ICMP (RFC 792) on top of the link layer.

Choices:
- Fragments are dropped and counted (`ip_fragment`), never reassembled: everything we send
  has DF set, TCP's MSS is clamped to the MTU, and reassembly is a memory-exhaustion target.
- Options are validated and then ignored (counted `ip_options_seen`); malformed ones drop.
- Broadcast pings are not answered (as Linux's icmp_echo_ignore_broadcasts).
- Packets to our own address, and to 127.0.0.0/8 when `loopback` is on, never touch the
  device: they go through `loopq` and are received at the next poll step.
"""
import ipaddress
from libc.stdlib cimport calloc, free
from libc.string cimport memcpy, memset
from fastloop.includes.dpdk cimport (
    FL_DEBUG, fl_mbuf, fl_pool, fl_mbuf_data, fl_mbuf_data_len,
    fl_mbuf_pkt_len, fl_mbuf_adj, fl_mbuf_append, fl_mbuf_prepend, fl_mbuf_trim,
    fl_mbuf_headroom, fl_mbuf_rx_ip_cksum_good, fl_mbuf_rx_ip_cksum_bad,
    fl_mbuf_tx_offload, fl_mbuf_sw_cksum, fl_mbuf_clear_offload, fl_now_ns)
from fastloop.dev.device cimport Device
from fastloop.net.counters cimport *
from fastloop.net.link cimport Link, RX_BURST
from fastloop.net.wire.bytes cimport load16, load_raw16, store_raw16
from fastloop.net.wire.checksum cimport checksum_adjust16, inet_checksum
from fastloop.net.wire.ethernet cimport ETH_HDR_LEN
from fastloop.net.wire.ipv4 cimport (
    Ipv4Header, ipv4_parse, ipv4_emit, ipv4_is_fragment, IPV4_OK, IPV4_TRUNCATED,
    IPV4_BAD_VERSION, IPV4_BAD_IHL, IPV4_BAD_TOTAL_LENGTH, IPV4_BAD_CHECKSUM, IPV4_BAD_OPTIONS,
    IPV4_HDR_LEN, IPV4_FLAG_DF, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP)
from fastloop.net.wire.icmp cimport (
    IcmpHeader, icmp_parse, icmp_emit, ICMP_OK, ICMP_TRUNCATED, ICMP_HDR_LEN,
    ICMP_ECHO_REQUEST, ICMP_ECHO_REPLY, ICMP_DEST_UNREACH, ICMP_TIME_EXCEEDED,
    ICMP_CODE_PORT_UNREACH, ICMP_CODE_PROTO_UNREACH)

DEFAULT_TTL = 64

cdef int[7] IPV4_DROP
IPV4_DROP[:] = [0, DROP_IP_TRUNCATED, DROP_IP_VERSION, DROP_IP_HEADER_LENGTH,
                DROP_IP_TOTAL_LENGTH, DROP_IP_CHECKSUM, DROP_IP_OPTIONS]


cdef inline bint is_martian_source(uint32_t src) noexcept:
    """RFC 1122 §3.2.1.3: no host sends from 0/8, 127/8, multicast, class E or broadcast."""
    cdef uint32_t top = src >> 24
    return top == 0 or top == 127 or top >= 224


cdef class Interface(Link):
    def __init__(self, Device device, str address, str gateway=None, *, mac=None, mtu=None,
                 bint loopback=False, bint checksum_offload=True, double arp_timeout=60.0,
                 int arp_queue=16, int arp_queue_total=256, uint16_t echo_ident=0):
        itf = ipaddress.IPv4Interface(address)
        self.device = device
        self.pool = device.pool
        cdef bytes mac_bytes = bytes.fromhex(mac.replace(":", "")) if mac else device.mac_bytes
        memcpy(self.mac, <const char *>mac_bytes, 6)
        self.addr = int(itf.ip)
        self.netmask = int(itf.network.netmask)
        self.network = int(itf.network.network_address)
        self.broadcast = int(itf.network.broadcast_address)
        self.gateway = int(ipaddress.IPv4Address(gateway)) if gateway else 0
        self.mtu = min(mtu or device.mtu, device.mtu)
        self.loopback = loopback
        self.tx_ip_cksum = checksum_offload and device.offloads["tx_ipv4_cksum"]
        self.tx_l4_cksum = (checksum_offload and device.offloads["tx_tcp_cksum"]
                            and device.offloads["tx_udp_cksum"])
        self.arp_ttl_ns = <uint64_t>(arp_timeout * 1e9)
        self.arp_retry_ns = 1000 * 1000 * 1000
        if not 1 <= arp_queue <= 64:
            raise ValueError("arp_queue is 1 to 64 frames")
        self.arp_queue_limit = arp_queue
        if not arp_queue <= arp_queue_total <= 65536:
            raise ValueError(f"arp_queue_total is arp_queue ({arp_queue}) to 65536 frames")
        self.arp_queued_limit = arp_queue_total
        self.loopq_cap = 1024
        self.loopq = <fl_mbuf **>calloc(self.loopq_cap, sizeof(fl_mbuf *))
        if self.loopq == NULL:
            raise MemoryError()
        self.echo_ident = echo_ident or (id(self) & 0xffff)

    def __dealloc__(self):
        free(self.loopq)

    # ---- one poll step -----------------------------------------------------------------
    cdef uint32_t rx_step(self, uint64_t now) noexcept:
        """Receive one burst from the device and what looped back; returns frames handled."""
        cdef fl_mbuf *pkts[RX_BURST]
        cdef uint16_t n = self.device.rx_burst(pkts, RX_BURST), i
        for i in range(n):
            self.link_input(pkts[i], now)
        cdef uint32_t k = self.loopq_len     # only what was queued before this step
        cdef fl_mbuf *m
        cdef Ipv4Header ip
        for i in range(k):
            m = self.loopq[self.loopq_head]
            self.loopq_head = (self.loopq_head + 1) % self.loopq_cap
            self.loopq_len -= 1
            self.stats[STAT_LOOPBACK_FRAMES] += 1
            ipv4_parse(fl_mbuf_data(m), fl_mbuf_data_len(m), &ip, False)   # built by us
            self.ipv4_deliver(m, &ip, False, now)
        if self.tcp is not None:
            self.tcp.rx_done(now)
        return n + k

    cdef int64_t held(self) noexcept:
        cdef int64_t n = Link.held(self) + self.loopq_len
        if self.tcp is not None:
            n += self.tcp.held()
        if self.udp is not None:
            n += self.udp.held()
        return n

    cdef void timers(self, uint64_t now) noexcept:
        self.arp_timers(now)
        if self.tcp is not None:
            self.tcp.timers(now)
        if self.udp is not None:
            self.udp.timers(now)
        if FL_DEBUG:
            self.check_books()

    cdef uint32_t step(self, uint64_t now) noexcept:
        """One run-to-completion step: device → rx → timers → transports' output → tx."""
        self.device.poll(now)
        cdef uint32_t n = self.rx_step(now)
        self.timers(now)
        if self.tcp is not None:
            self.tcp.output(now)
        if self.udp is not None:
            self.udp.output(now)
        self.flush()
        return n

    def poll(self, now_ns=None):
        """One step from Python (at now_ns, for tests on a virtual clock). Returns frames received."""
        return self.step(fl_now_ns() if now_ns is None else now_ns)

    # ---- input (RFC 1122 §3.2.1) -------------------------------------------------------
    cdef bint is_local(self, uint32_t dst) noexcept:
        return dst == self.addr or (self.loopback and (dst >> 24) == 127)

    cdef bint has_route(self, uint32_t dst) noexcept:
        """Whether ip_output can send to dst (ourselves, a broadcast, the subnet, or via the
        gateway); 127.0.0.0/8 only when it is ours, never through the gateway."""
        if self.is_local(dst) or dst == 0xffffffff or dst == self.broadcast:
            return True
        if (dst >> 24) == 127 or (dst >> 24) == 0:
            return False
        return (dst & self.netmask) == self.network or self.gateway != 0

    cdef void ipv4_input(self, fl_mbuf *m, bint link_broadcast, uint64_t now) noexcept:
        cdef Ipv4Header ip
        cdef uint32_t n = fl_mbuf_data_len(m)
        if fl_mbuf_rx_ip_cksum_bad(m):
            self.drop(m, DROP_IP_CHECKSUM)
            return
        cdef int err = ipv4_parse(fl_mbuf_data(m), n, &ip, not fl_mbuf_rx_ip_cksum_good(m))
        if err != IPV4_OK:
            self.drop(m, IPV4_DROP[err])
            return
        if ip.ttl == 0:
            self.drop(m, DROP_IP_TTL_ZERO)
            return
        if ipv4_is_fragment(&ip):
            self.drop(m, DROP_IP_FRAGMENT)
            return
        if is_martian_source(ip.src) or ip.src == self.broadcast or ip.src == self.addr:
            self.drop(m, DROP_IP_SRC_INVALID)
            return
        cdef bint broadcast = (ip.dst == 0xffffffff or ip.dst == self.broadcast
                               or (ip.dst >> 28) == 14)
        if not broadcast and (link_broadcast or not self.is_local(ip.dst)):
            # RFC 1122 §3.3.6: unicast IP in a link broadcast is discarded; we do not forward
            self.drop(m, DROP_IP_BROADCAST if link_broadcast else DROP_IP_NOT_FOR_US)
            return
        if ip.header_len > IPV4_HDR_LEN:
            self.stats[STAT_IP_OPTIONS_SEEN] += 1
        if n > ip.total_len:                     # Ethernet pads short frames to 60 bytes
            fl_mbuf_trim(m, <uint16_t>(n - ip.total_len))
        self.ipv4_deliver(m, &ip, broadcast, now)

    cdef void ipv4_deliver(self, fl_mbuf *m, Ipv4Header *ip, bint broadcast,
                           uint64_t now) noexcept:
        """Hand a valid packet (m at its IP header) to its protocol."""
        self.stats[STAT_IP_DELIVERED] += 1
        if ip.protocol == IPPROTO_ICMP:
            if broadcast:
                self.drop(m, DROP_IP_BROADCAST)
            else:
                self.icmp_input(m, ip, now)
        elif ip.protocol == IPPROTO_TCP and self.tcp is not None and not broadcast:
            fl_mbuf_adj(m, ip.header_len)
            self.tcp.input(m, ip, False, now)
        elif ip.protocol == IPPROTO_UDP and self.udp is not None:
            fl_mbuf_adj(m, ip.header_len)
            self.udp.input(m, ip, broadcast, now)
        elif ip.protocol == IPPROTO_UDP:
            if not broadcast:                    # RFC 1122 §4.1.3.1: port unreachable
                self.icmp_send_unreachable(m, ip, ICMP_CODE_PORT_UNREACH, now)
            self.drop(m, DROP_L4_UNHANDLED)
        elif ip.protocol == IPPROTO_TCP:         # TCP never answers broadcasts (RFC 1122 §4.2.3.10)
            self.drop(m, DROP_L4_UNHANDLED if not broadcast else DROP_IP_BROADCAST)
        else:
            if not broadcast:                    # RFC 1122 §3.2.2.1: protocol unreachable
                self.icmp_send_unreachable(m, ip, ICMP_CODE_PROTO_UNREACH, now)
            self.drop(m, DROP_IP_PROTOCOL)

    # ---- output ------------------------------------------------------------------------
    cdef void ip_output(self, fl_mbuf *m, uint32_t src, uint32_t dst, uint8_t protocol,
                        int l4_offload, uint64_t now) noexcept:
        """Send the L4 message in m (data at its first byte) to dst. Consumes m.

        l4_offload: 0 none, 1 UDP, 2 TCP (the L4 checksum field holds the pseudo-header sum).
        """
        cdef Ipv4Header ip
        cdef uint32_t nexthop = 0
        cdef bint local = self.is_local(dst)
        cdef bint bcast = dst == 0xffffffff or dst == self.broadcast
        if not local and not bcast:
            if (dst & self.netmask) == self.network:
                nexthop = dst
            elif self.gateway != 0:
                nexthop = self.gateway
            else:
                self.drop(m, DROP_NO_ROUTE)
                return
        if fl_mbuf_pkt_len(m) + IPV4_HDR_LEN > self.mtu and not local:
            self.drop(m, DROP_IP_TOO_BIG)        # the PMD would refuse it, and block the queue
            return
        ip.tos = 0
        ip.total_len = <uint16_t>(fl_mbuf_pkt_len(m) + IPV4_HDR_LEN)
        self.ip_ident += 1
        ip.ident = self.ip_ident
        ip.frag = IPV4_FLAG_DF                   # we never fragment (RFC 1191 path MTU)
        ip.ttl = DEFAULT_TTL
        ip.protocol = protocol
        ip.src = src if src != 0 else self.addr
        ip.dst = dst
        cdef uint8_t *hdr = fl_mbuf_prepend(m, IPV4_HDR_LEN)
        self.stats[STAT_IP_OUT] += 1
        if local:                                # never leaves the stack: checksums final
            ipv4_emit(hdr, &ip, True)
            if l4_offload:
                fl_mbuf_tx_offload(m, 0, IPV4_HDR_LEN, 0, l4_offload)
                fl_mbuf_sw_cksum(m)
            self.loop_enqueue(m)
            return
        ipv4_emit(hdr, &ip, not self.tx_ip_cksum)
        if self.tx_ip_cksum or l4_offload:
            fl_mbuf_tx_offload(m, ETH_HDR_LEN, IPV4_HDR_LEN, self.tx_ip_cksum, l4_offload)
        self.neighbour_output(m, nexthop, bcast, now)

    cdef void loop_enqueue(self, fl_mbuf *m) noexcept:
        if self.loopq_len == self.loopq_cap:
            self.drop(m, DROP_TX_BACKLOG_FULL)
            return
        self.loopq[(self.loopq_head + self.loopq_len) % self.loopq_cap] = m
        self.loopq_len += 1

    # ---- ICMP (RFC 792) ----------------------------------------------------------------
    cdef void icmp_input(self, fl_mbuf *m, Ipv4Header *ip, uint64_t now) noexcept:
        cdef IcmpHeader h
        cdef uint16_t word, cksum
        fl_mbuf_adj(m, ip.header_len)
        cdef uint8_t *msg = fl_mbuf_data(m)
        cdef int err = icmp_parse(msg, fl_mbuf_data_len(m), &h)
        if err != ICMP_OK:
            self.drop(m, DROP_ICMP_TRUNCATED if err == ICMP_TRUNCATED else DROP_ICMP_CHECKSUM)
            return
        if h.type == ICMP_ECHO_REQUEST:
            # RFC 1122 §3.2.2.6: the reply carries the request's data; reuse the mbuf
            self.stats[STAT_ICMP_ECHO_REQUESTS_IN] += 1
            # the type/code word as summed (machine order, RFC 1071 §2), before and after:
            # right on either byte order, where constant 8 and 0 were right on little-endian only
            word = load_raw16(msg)
            msg[0] = ICMP_ECHO_REPLY
            cksum = checksum_adjust16(load_raw16(msg + 2), word, load_raw16(msg))
            if cksum == 0xffff:            # a zero sum: +0 or -0 only a full sum can tell apart
                store_raw16(msg + 2, 0)
                cksum = inet_checksum(msg, fl_mbuf_data_len(m))
            store_raw16(msg + 2, cksum)
            fl_mbuf_clear_offload(m)
            self.stats[STAT_ICMP_ECHO_REPLIES_OUT] += 1
            self.ip_output(m, ip.dst, ip.src, IPPROTO_ICMP, 0, now)
        elif h.type == ICMP_ECHO_REPLY:
            self.echo_reply_input(m, ip.src, &h, now)
        elif h.type == ICMP_DEST_UNREACH or h.type == ICMP_TIME_EXCEEDED:
            self.stats[STAT_ICMP_ERRORS_IN] += 1
            self.icmp_error_input(m, &h, now)
        else:
            self.drop(m, DROP_ICMP_TYPE)

    cdef void icmp_error_input(self, fl_mbuf *m, IcmpHeader *h, uint64_t now) noexcept:
        """RFC 1122 §3.2.2: pass the error to the transport named in the quoted header."""
        cdef uint8_t *quote = fl_mbuf_data(m) + ICMP_HDR_LEN
        cdef uint32_t n = fl_mbuf_data_len(m) - ICMP_HDR_LEN
        cdef L4Protocol proto = None
        if n >= IPV4_HDR_LEN + 8:
            if quote[9] == IPPROTO_TCP:
                proto = self.tcp
            elif quote[9] == IPPROTO_UDP:
                proto = self.udp
        if proto is not None:
            proto.icmp_error(h.type, h.code, quote, n, now)
        self.mbuf_free(m)

    cdef void echo_reply_input(self, fl_mbuf *m, uint32_t src, IcmpHeader *h,
                               uint64_t now) noexcept:
        cdef uint64_t sent
        cdef EchoResult *r
        if h.ident != self.echo_ident or fl_mbuf_data_len(m) < ICMP_HDR_LEN + 8:
            self.drop(m, DROP_ICMP_UNMATCHED_REPLY)
            return
        memcpy(&sent, fl_mbuf_data(m) + ICMP_HDR_LEN, 8)     # our send time, echoed back
        self.stats[STAT_ICMP_ECHO_REPLIES_IN] += 1
        r = &self.echo_results[self.echo_count % ECHO_RESULTS]
        r.src = src
        r.seq = h.seq
        r.size = fl_mbuf_data_len(m) - ICMP_HDR_LEN
        r.rtt_ns = now - sent if now > sent else 0
        self.echo_count += 1
        self.mbuf_free(m)

    cdef void icmp_send_unreachable(self, fl_mbuf *orig, Ipv4Header *ip, uint8_t code,
                                    uint64_t now) noexcept:
        """RFC 792: the IP header and first 8 data bytes of the offending datagram."""
        cdef IcmpHeader h
        cdef uint32_t quote = min(<uint32_t>ip.header_len + 8, fl_mbuf_data_len(orig))
        cdef fl_mbuf *m = self.mbuf_alloc()
        if m == NULL:
            return
        cdef uint8_t *msg = fl_mbuf_append(m, <uint16_t>(ICMP_HDR_LEN + quote))
        memcpy(msg + ICMP_HDR_LEN, fl_mbuf_data(orig), quote)
        h.type = ICMP_DEST_UNREACH
        h.code = code
        h.ident = 0
        h.seq = 0
        icmp_emit(msg, ICMP_HDR_LEN + quote, &h)
        self.stats[STAT_ICMP_UNREACH_OUT] += 1
        self.ip_output(m, ip.dst, ip.src, IPPROTO_ICMP, 0, now)

    def send_echo(self, str dst, uint16_t seq, int size=56):
        """Send one echo request (ping); the first 8 data bytes carry the send time."""
        if not 8 <= size <= self.mtu - IPV4_HDR_LEN - ICMP_HDR_LEN:
            raise ValueError(f"echo size is 8 to {self.mtu - 28} bytes")
        cdef uint32_t daddr = int(ipaddress.IPv4Address(dst))
        cdef IcmpHeader h
        cdef uint64_t now = fl_now_ns()
        cdef fl_mbuf *m = self.mbuf_alloc()
        if m == NULL:
            raise MemoryError("mempool exhausted")
        cdef uint8_t *msg = fl_mbuf_append(m, <uint16_t>(ICMP_HDR_LEN + size))
        cdef int i
        memcpy(msg + ICMP_HDR_LEN, &now, 8)
        for i in range(8, size):
            msg[ICMP_HDR_LEN + i] = i & 0xff
        h.type = ICMP_ECHO_REQUEST
        h.code = 0
        h.ident = self.echo_ident
        h.seq = seq
        icmp_emit(msg, ICMP_HDR_LEN + size, &h)
        self.stats[STAT_ICMP_ECHO_REQUESTS_OUT] += 1
        self.ip_output(m, 0, daddr, IPPROTO_ICMP, 0, now)

    def echo_replies(self, uint32_t since=0):
        """[(src, seq, size, rtt_ns)] for replies numbered since..echo_count; and echo_count."""
        cdef uint32_t i
        cdef EchoResult *r
        out = []
        since = max(since, self.echo_count - ECHO_RESULTS if self.echo_count > ECHO_RESULTS else 0)
        for i in range(since, self.echo_count):
            r = &self.echo_results[i % ECHO_RESULTS]
            out.append((str(ipaddress.IPv4Address(r.src)), r.seq, r.size, r.rtt_ns))
        return out, self.echo_count

    # ---- for Python and tests ----------------------------------------------------------
    def inject(self, bytes frame, now_ns=None):
        """Run the receive path on one raw Ethernet frame, as if the device had delivered it
        (at now_ns, for tests on a virtual clock)."""
        cdef fl_mbuf *m = self.mbuf_alloc()
        if m == NULL:
            raise MemoryError("mempool exhausted")
        cdef uint8_t *p = fl_mbuf_append(m, len(frame))
        if p == NULL:
            self.mbuf_free(m)
            raise ValueError("frame longer than an mbuf")
        memcpy(p, <const char *>frame, len(frame))
        if FL_DEBUG:          # it enters as a received frame, not as one we allocated
            self.books.allocated -= 1
        cdef uint64_t now = fl_now_ns() if now_ns is None else now_ns
        self.link_input(m, now)
        if self.tcp is not None:
            self.tcp.rx_done(now)

    def counters(self):
        drops = {drop_name(i).decode(): self.drops[i] for i in range(DROP_COUNT)}
        out = {stat_name(i).decode(): self.stats[i] for i in range(STAT_COUNT)}
        out["drops"] = drops
        out["dropped"] = sum(drops.values())
        return out

    def held_mbufs(self):
        held = Link.held_mbufs(self)
        tcp = self.tcp.held() if self.tcp is not None else 0
        udp = self.udp.held() if self.udp is not None else 0
        held["arp_queues"] -= self.loopq_len + tcp + udp
        held["loopback"] = self.loopq_len
        held["tcp"] = tcp
        held["udp"] = udp
        return held

    def close(self):
        """Free every mbuf the interface holds."""
        if self.tcp is not None:
            self.tcp.release_all()
        if self.udp is not None:
            self.udp.release_all()
        self.release_all()
        while self.loopq_len > 0:
            self.mbuf_free(self.loopq[self.loopq_head])
            self.loopq_head = (self.loopq_head + 1) % self.loopq_cap
            self.loopq_len -= 1

    @property
    def address(self):
        return str(ipaddress.IPv4Address(self.addr))

    @property
    def mac_address(self):
        return ":".join(f"{self.mac[i]:02x}" for i in range(6))

    @property
    def ident(self):
        return self.echo_ident
