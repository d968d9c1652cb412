/* fastloop's DPDK shim: the only code that includes rte_*.h.
 *
 * Cython cannot call DPDK's static-inline fast path (rte_eth_rx_burst, rte_pktmbuf_*,
 * rte_raw_cksum ...) through a plain extern declaration without the headers, and the
 * stack must not see DPDK types beyond an opaque mbuf. So the fast path is re-exported
 * here as `static inline` wrappers (no call overhead once compiled into a module) and the
 * slow path (EAL, mempool, port set-up, hot-plug) lives in fl_shim.c, fl_memif.c
 * (net_memif's teardown races) and fl_tap.c (net_tap's rx trigger), compiled once and
 * linked into each module (setup.py); they keep no state of their own (what they touch is
 * EAL's and the PMDs'), so the copies do not disagree.
 */
#ifndef FL_SHIM_H
#define FL_SHIM_H

#include <stdint.h>
#include <string.h>
#include <time.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <rte_byteorder.h>
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_tcp.h>
#include <rte_udp.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_spinlock.h>

typedef struct rte_mbuf fl_mbuf;
typedef struct rte_mempool fl_pool;

/* Offload capabilities of a port, reduced to what the stack needs to know. */
typedef struct fl_port_info {
    uint8_t mac[6];
    uint16_t mtu;
    uint32_t if_index;          /* kernel ifindex for tap/af_packet, 0 otherwise */
    uint8_t tx_ipv4_cksum;      /* enabled on the port */
    uint8_t tx_udp_cksum;
    uint8_t tx_tcp_cksum;
    uint8_t rx_cksum;           /* the PMD classifies L3/L4 checksums on receive */
    uint8_t tso;
    uint8_t has_rx_intr;        /* rx_fd is readable when frames wait (epoll) */
    int rx_fd;                  /* -1: poll only */
    char driver[64];
    void *datapath_lock;        /* net_memif: the lock bursts hold (fl_memif.c), else NULL */
    void (*rx_kick)(int);       /* net_tap: its rx trigger, called before bursts (fl_tap.c) */
} fl_port_info;

/* ---- slow path (fl_shim.c) ---- */
int fl_eal_init(int argc, char **argv);         /* 0 or -errno */
int fl_eal_cleanup(void);
const char *fl_strerror(int err);
const char *fl_dpdk_version(void);
fl_pool *fl_pool_create(const char *name, unsigned n, unsigned cache, uint16_t data_room);
void fl_pool_free(fl_pool *pool);
int fl_dev_probe(const char *devargs);          /* rte_dev_probe; 0 or -errno */
int fl_port_by_name(const char *name, uint16_t *port);
int fl_port_setup(uint16_t port, fl_pool *pool, uint16_t nb_rxd, uint16_t nb_txd,
                  int want_offloads, fl_port_info *info);
int fl_port_close(uint16_t port, int detach);   /* stop, close, and hot-unplug */
int fl_ring_pair(const char *name_a, const char *name_b, unsigned size,
                 uint16_t *port_a, uint16_t *port_b);
int fl_ring_pair_release(const char *name_a, const char *name_b); /* both ports closed; frames freed */
int fl_port_stats(uint16_t port, uint64_t out[6]); /* ipackets opackets ibytes obytes imissed oerrors */
int fl_port_link_up(uint16_t port);             /* 1 up, 0 down (memif: no peer), -errno */

/* ---- fast path ---- */
/* Queue 0's rx and tx bursts, holding the port's datapath lock when there is one (net_memif:
 * see fl_memif.c for why; NULL for every other PMD), and pulling net_tap's rx trigger
 * (fl_tap.c) first. */
static inline uint16_t fl_rx_burst_port(const fl_port_info *info, uint16_t port,
                                        fl_mbuf **pkts, uint16_t n) {
    void *lock = info->datapath_lock;
    if (info->rx_kick != NULL) info->rx_kick(0);
    if (lock == NULL) return rte_eth_rx_burst(port, 0, pkts, n);
    rte_spinlock_lock((rte_spinlock_t *)lock);
    uint16_t got = rte_eth_rx_burst(port, 0, pkts, n);
    rte_spinlock_unlock((rte_spinlock_t *)lock);
    return got;
}
static inline uint16_t fl_tx_burst_port(const fl_port_info *info, uint16_t port,
                                        fl_mbuf **pkts, uint16_t n) {
    void *lock = info->datapath_lock;
    if (lock == NULL) return rte_eth_tx_burst(port, 0, pkts, n);
    rte_spinlock_lock((rte_spinlock_t *)lock);
    uint16_t sent = rte_eth_tx_burst(port, 0, pkts, n);
    rte_spinlock_unlock((rte_spinlock_t *)lock);
    return sent;
}
static inline uint16_t fl_tx_prepare(uint16_t port, fl_mbuf **pkts, uint16_t n) {
    return rte_eth_tx_prepare(port, 0, pkts, n);
}
static inline fl_mbuf *fl_mbuf_alloc(fl_pool *pool) { return rte_pktmbuf_alloc(pool); }
static inline int fl_mbuf_alloc_bulk(fl_pool *pool, fl_mbuf **m, unsigned n) {
    return rte_pktmbuf_alloc_bulk(pool, m, n);
}
static inline void fl_mbuf_free(fl_mbuf *m) { rte_pktmbuf_free(m); }
static inline void fl_mbuf_free_bulk(fl_mbuf **m, unsigned n) { rte_pktmbuf_free_bulk(m, n); }
static inline fl_mbuf *fl_mbuf_clone(fl_mbuf *m, fl_pool *pool) { return rte_pktmbuf_copy(m, pool, 0, UINT32_MAX); }
static inline uint8_t *fl_mbuf_data(fl_mbuf *m) { return rte_pktmbuf_mtod(m, uint8_t *); }
static inline uint16_t fl_mbuf_data_len(const fl_mbuf *m) { return m->data_len; }
static inline uint32_t fl_mbuf_pkt_len(const fl_mbuf *m) { return m->pkt_len; }
static inline uint16_t fl_mbuf_nb_segs(const fl_mbuf *m) { return m->nb_segs; }
static inline uint16_t fl_mbuf_headroom(const fl_mbuf *m) { return rte_pktmbuf_headroom(m); }
static inline uint16_t fl_mbuf_tailroom(const fl_mbuf *m) { return rte_pktmbuf_tailroom(m); }
static inline uint8_t *fl_mbuf_prepend(fl_mbuf *m, uint16_t n) { return (uint8_t *)rte_pktmbuf_prepend(m, n); }
static inline uint8_t *fl_mbuf_append(fl_mbuf *m, uint16_t n) { return (uint8_t *)rte_pktmbuf_append(m, n); }
static inline uint8_t *fl_mbuf_adj(fl_mbuf *m, uint16_t n) { return (uint8_t *)rte_pktmbuf_adj(m, n); }
static inline int fl_mbuf_trim(fl_mbuf *m, uint16_t n) { return rte_pktmbuf_trim(m, n); }
static inline int fl_mbuf_linearize(fl_mbuf *m) { return rte_pktmbuf_linearize(m); }
/* Append tail's segments to head (head owns them after); 0 or -EOVERFLOW. */
static inline int fl_mbuf_chain(fl_mbuf *head, fl_mbuf *tail) { return rte_pktmbuf_chain(head, tail); }
static inline void fl_mbuf_reset_data(fl_mbuf *m) { rte_pktmbuf_reset(m); }
static inline const void *fl_mbuf_read(const fl_mbuf *m, uint32_t off, uint32_t len, void *buf) {
    return rte_pktmbuf_read(m, off, len, buf);
}
/* Offload requests and results, as plain flags the stack can test. */
static inline int fl_mbuf_rx_ip_cksum_bad(const fl_mbuf *m) {
    return (m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK) == RTE_MBUF_F_RX_IP_CKSUM_BAD;
}
static inline int fl_mbuf_rx_ip_cksum_good(const fl_mbuf *m) {
    return (m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK) == RTE_MBUF_F_RX_IP_CKSUM_GOOD;
}
static inline int fl_mbuf_rx_l4_cksum_bad(const fl_mbuf *m) {
    return (m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK) == RTE_MBUF_F_RX_L4_CKSUM_BAD;
}
static inline int fl_mbuf_rx_l4_cksum_good(const fl_mbuf *m) {
    return (m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK) == RTE_MBUF_F_RX_L4_CKSUM_GOOD;
}
/* Ask the PMD to fill the IPv4 header checksum (and the L4 one: 1 = UDP, 2 = TCP). */
static inline void fl_mbuf_tx_offload(fl_mbuf *m, uint8_t l2, uint8_t l3, int ip_cksum, int l4) {
    m->l2_len = l2;
    m->l3_len = l3;
    uint64_t f = RTE_MBUF_F_TX_IPV4;
    if (ip_cksum) f |= RTE_MBUF_F_TX_IP_CKSUM;
    if (l4 == 1) f |= RTE_MBUF_F_TX_UDP_CKSUM;
    if (l4 == 2) f |= RTE_MBUF_F_TX_TCP_CKSUM;
    m->ol_flags |= f;
}
static inline void fl_mbuf_clear_offload(fl_mbuf *m) { m->ol_flags = 0; }
static inline uint64_t fl_mbuf_tx_cksum_requested(const fl_mbuf *m) {
    return m->ol_flags & (RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_L4_MASK);
}
/* Forget what the PMD said about rx checksums, so the stack verifies them in software
 * (the fault injector does this after corrupting a frame the PMD had already checked). */
static inline void fl_mbuf_rx_cksum_unknown(fl_mbuf *m) {
    m->ol_flags &= ~(RTE_MBUF_F_RX_IP_CKSUM_MASK | RTE_MBUF_F_RX_L4_CKSUM_MASK);
}
/* The IPv4 pseudo-header sum a PMD expects in the L4 checksum field before L4 offload. */
static inline uint16_t fl_ipv4_phdr_cksum(const void *ip_hdr, uint64_t ol_flags) {
    return rte_ipv4_phdr_cksum((const struct rte_ipv4_hdr *)ip_hdr, ol_flags);
}
/* Compute in software the checksums an mbuf asked the PMD to offload, and clear the
 * requests: for a port without the offload, and for the fault injector, which must
 * corrupt a frame after its checksums are final. Single-segment frames only. */
static inline void fl_mbuf_sw_cksum(fl_mbuf *m) {
    uint64_t f = m->ol_flags;
    if (!(f & (RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_L4_MASK))) return;
    struct rte_ipv4_hdr *ip = rte_pktmbuf_mtod_offset(m, struct rte_ipv4_hdr *, m->l2_len);
    void *l4 = (uint8_t *)ip + m->l3_len;
    if (f & RTE_MBUF_F_TX_IP_CKSUM) {
        ip->hdr_checksum = 0;
        ip->hdr_checksum = rte_ipv4_cksum(ip);
    }
    if ((f & RTE_MBUF_F_TX_L4_MASK) == RTE_MBUF_F_TX_UDP_CKSUM) {
        struct rte_udp_hdr *udp = (struct rte_udp_hdr *)l4;
        udp->dgram_cksum = 0;
        udp->dgram_cksum = rte_ipv4_udptcp_cksum(ip, udp);
    } else if ((f & RTE_MBUF_F_TX_L4_MASK) == RTE_MBUF_F_TX_TCP_CKSUM) {
        struct rte_tcp_hdr *tcp = (struct rte_tcp_hdr *)l4;
        tcp->cksum = 0;
        tcp->cksum = rte_ipv4_udptcp_cksum(ip, tcp);
    }
    m->ol_flags &= ~(RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_L4_MASK | RTE_MBUF_F_TX_IPV4);
}

/* Internet checksum (RFC 1071) over a flat buffer, before the final fold/complement: the
 * value __rte_raw_cksum's sum of 16-bit words folds to (machine byte order, an odd last byte
 * as the first of a zero-padded word), 64 bytes a step. Ones' complement addition is
 * addition mod 0xffff, and 2^16 = 1 mod 0xffff (RFC 1071 §2 (B), (C)): 32-bit words summed
 * into 64-bit lanes, folded with end-around carries, give the same checksum. __rte_raw_cksum
 * adds one 16-bit word at a time: a fifth of a bulk receiver's instructions at MTU 1500. */
static inline uint32_t fl_cksum_add(uint32_t sum, const void *buf, size_t len) {
    const uint8_t *p = (const uint8_t *)buf;
    uint64_t s = sum;
#if defined(__SSE2__)
    const __m128i zero = _mm_setzero_si128();
    __m128i a = zero, b = zero, c = zero, d = zero, v;
    while (len >= 64) {                       /* four lane pairs: no add waits on another */
        v = _mm_loadu_si128((const __m128i *)p);
        a = _mm_add_epi64(a, _mm_unpacklo_epi32(v, zero));
        b = _mm_add_epi64(b, _mm_unpackhi_epi32(v, zero));
        v = _mm_loadu_si128((const __m128i *)(p + 16));
        c = _mm_add_epi64(c, _mm_unpacklo_epi32(v, zero));
        d = _mm_add_epi64(d, _mm_unpackhi_epi32(v, zero));
        v = _mm_loadu_si128((const __m128i *)(p + 32));
        a = _mm_add_epi64(a, _mm_unpacklo_epi32(v, zero));
        b = _mm_add_epi64(b, _mm_unpackhi_epi32(v, zero));
        v = _mm_loadu_si128((const __m128i *)(p + 48));
        c = _mm_add_epi64(c, _mm_unpacklo_epi32(v, zero));
        d = _mm_add_epi64(d, _mm_unpackhi_epi32(v, zero));
        p += 64;
        len -= 64;
    }
    while (len >= 16) {
        v = _mm_loadu_si128((const __m128i *)p);
        a = _mm_add_epi64(a, _mm_unpacklo_epi32(v, zero));
        b = _mm_add_epi64(b, _mm_unpackhi_epi32(v, zero));
        p += 16;
        len -= 16;
    }
    a = _mm_add_epi64(_mm_add_epi64(a, b), _mm_add_epi64(c, d));
    s += (uint64_t)_mm_cvtsi128_si64(a) + (uint64_t)_mm_cvtsi128_si64(_mm_unpackhi_epi64(a, a));
#endif
    while (len >= 4) {
        uint32_t w;
        memcpy(&w, p, 4);
        s += w;
        p += 4;
        len -= 4;
    }
    if (len >= 2) {
        uint16_t w;
        memcpy(&w, p, 2);
        s += w;
        p += 2;
        len -= 2;
    }
    if (len) {
        uint16_t left = 0;
        memcpy(&left, p, 1);
        s += left;
    }
    s = (s & 0xffffffffu) + (s >> 32);       /* 2^32 = 1 mod 0xffff: end-around carries */
    s = (s & 0xffffffffu) + (s >> 32);       /* (a sum below 2^33 - 1 needs two) */
    return (uint32_t)s;
}
static inline uint16_t fl_cksum_fold(uint32_t sum) { return __rte_raw_cksum_reduce(sum); }

static inline uint16_t fl_htons(uint16_t x) { return rte_cpu_to_be_16(x); }
static inline uint16_t fl_ntohs(uint16_t x) { return rte_be_to_cpu_16(x); }
static inline uint32_t fl_htonl(uint32_t x) { return rte_cpu_to_be_32(x); }
static inline uint32_t fl_ntohl(uint32_t x) { return rte_be_to_cpu_32(x); }

static inline uint64_t fl_pool_in_use(const fl_pool *p) { return rte_mempool_in_use_count(p); }
static inline uint64_t fl_pool_avail(const fl_pool *p) { return rte_mempool_avail_count(p); }

/* Monotonic nanoseconds: the stack's only clock, read once per poll step. */
static inline uint64_t fl_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
static inline uint64_t fl_wall_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#endif
