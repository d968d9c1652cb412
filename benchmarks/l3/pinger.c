/* pinger: the client of the L3 ping-pong benchmark (memif role=client).
 *
 *   pinger <EAL args> -- --ip A.B.C.D --server-ip A.B.C.D [--seconds S] [--window W]
 *                        [--warmup S] [--arp-timeout S] [--linger S]
 *
 * Resolves the server's MAC with ARP (one request every 20 ms until answered, bounded by
 * --arp-timeout), then measures, each for --seconds after an uncounted --warmup:
 *   (a) ping-pong: one ICMP echo request outstanding; round trips/s and p50/p99 RTT (ns,
 *       rte_rdtsc, 1 ns histogram buckets up to 131 us);
 *   (b) windowed: W requests kept in flight; replies/s.
 * Rates are also given over the time without gaps >= 50 us ("_unpreempted"): on a shared
 * vCPU those gaps are another process's timeslice, not the server's per-packet cost.
 * Every reply is verified: IPv4 and ICMP checksums, addresses, type 0, our ident, an
 * outstanding seq, and the payload echoed byte for byte. Anything else is counted.
 * It answers ARP requests for --ip, so a server that resolves before replying works too.
 * Prints one JSON line on stdout; exit status 0 when both modes got verified replies.
 *
 * --linger S: after the JSON line, keep the port open (not polling) until the server goes
 * away or S seconds pass. DPDK 22.11's memif server segfaults in rx_burst when the client
 * disconnects while it polls (its control thread unmaps the regions under the datapath), so
 * the runner reads the JSON, stops the server, and only then lets the client close.
 */
#include <getopt.h>
#include <time.h>
#include <unistd.h>

#include <rte_cycles.h>

#include "common.h"

#define FRAME_LEN 60                                      /* 64-byte frames on the wire */
#define HDRS_LEN (RTE_ETHER_HDR_LEN + sizeof(struct rte_ipv4_hdr) + sizeof(struct rte_icmp_hdr))
#define PAYLOAD_LEN (FRAME_LEN - HDRS_LEN)                 /* 18 bytes: magic, seq, pad */
#define HIST_NS 131072                                    /* RTT histogram: 1 ns buckets */
#define MAX_WINDOW 4096
#define STALL_MS 50                                       /* no reply for this long: lost */
#define PREEMPT_NS 50000           /* a gap this long is the vCPU taken away, not our work */
static const char MAGIC[8] = {'f', 'l', 'L', '3', 'p', 'i', 'n', 'g'};

enum bad_reason { B_IP_CKSUM, B_ICMP_CKSUM, B_TYPE, B_ADDR, B_IDENT, B_PAYLOAD, B_SEQ, B_N };
static const char *BAD_NAMES[B_N] = {"ip_cksum", "icmp_cksum", "type", "addr", "ident",
                                     "payload", "seq"};

struct ctx {
    uint16_t port;
    struct rte_mempool *pool;
    struct rte_ether_addr my_mac, srv_mac;
    uint32_t my_ip, srv_ip;
    uint16_t ident;
    uint64_t hz;
    /* counters over the whole run */
    uint64_t bad[B_N], other, arp_answered, tx_dropped;
};

struct result {
    double seconds;
    uint64_t sent, replies, lost, stale;
    uint64_t hist_overflow, max_ns, sum_ns;
    uint64_t preempt_n, preempt_ns;   /* gaps >= PREEMPT_NS: RTTs in (a), rx loop gaps in (b) */
    uint32_t *hist;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* One echo request with `seq`, 64 bytes on the wire, both checksums in software. */
static void build_echo(struct ctx *c, struct rte_mbuf *m, uint16_t seq)
{
    struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
    struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eth + 1);
    struct rte_icmp_hdr *icmp = (struct rte_icmp_hdr *)(ip + 1);
    uint8_t *pl = (uint8_t *)(icmp + 1);
    rte_ether_addr_copy(&c->srv_mac, &eth->dst_addr);
    rte_ether_addr_copy(&c->my_mac, &eth->src_addr);
    eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
    ip->version_ihl = RTE_IPV4_VHL_DEF;
    ip->type_of_service = 0;
    ip->total_length = rte_cpu_to_be_16(FRAME_LEN - RTE_ETHER_HDR_LEN);
    ip->packet_id = rte_cpu_to_be_16(seq);
    ip->fragment_offset = 0;
    ip->time_to_live = 64;
    ip->next_proto_id = IPPROTO_ICMP;
    ip->src_addr = c->my_ip;
    ip->dst_addr = c->srv_ip;
    ip->hdr_checksum = 0;
    ip->hdr_checksum = rte_ipv4_cksum(ip);
    icmp->icmp_type = RTE_IP_ICMP_ECHO_REQUEST;
    icmp->icmp_code = 0;
    icmp->icmp_ident = rte_cpu_to_be_16(c->ident);
    icmp->icmp_seq_nb = rte_cpu_to_be_16(seq);
    memcpy(pl, MAGIC, 8);
    uint64_t s64 = seq * 0x9E3779B97F4A7C15ull;           /* payload varies with seq */
    memcpy(pl + 8, &s64, 8);
    pl[16] = pl[17] = 0;
    icmp->icmp_cksum = 0;
    icmp->icmp_cksum = ~rte_raw_cksum(icmp, sizeof(*icmp) + PAYLOAD_LEN);
    m->data_len = m->pkt_len = FRAME_LEN;
}

/* Answer ARP requests for our IP; free everything else that is not an echo reply. */
static void handle_other(struct ctx *c, struct rte_mbuf *m)
{
    struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
    if (eth->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP)
        && arp_answer_in_place(m, &c->my_mac, c->my_ip)) {
        c->arp_answered++;
        tx_all(c->port, &m, 1, &c->tx_dropped);
        return;
    }
    c->other++;
    rte_pktmbuf_free(m);
}

/* 1: a verified echo reply (seq in *seq); 0: not an echo reply (handled); -1: bad (counted). */
static int check_reply(struct ctx *c, struct rte_mbuf *m, uint16_t *seq)
{
    struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
    struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eth + 1);
    struct rte_icmp_hdr *icmp = (struct rte_icmp_hdr *)(ip + 1);
    if (m->data_len < HDRS_LEN || eth->ether_type != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4)
        || ip->next_proto_id != IPPROTO_ICMP || ip->version_ihl != RTE_IPV4_VHL_DEF) {
        handle_other(c, m);
        return 0;
    }
    int why = -1;
    uint16_t icmp_len = rte_be_to_cpu_16(ip->total_length) - sizeof(*ip);
    /* a header with a correct checksum sums to 0xffff (RFC 1071) */
    if (rte_raw_cksum(ip, sizeof(*ip)) != 0xffff)
        why = B_IP_CKSUM;
    else if (icmp_len != sizeof(*icmp) + PAYLOAD_LEN || m->data_len < HDRS_LEN + PAYLOAD_LEN)
        why = B_PAYLOAD;
    else if (rte_raw_cksum(icmp, icmp_len) != 0xffff)
        why = B_ICMP_CKSUM;
    else if (icmp->icmp_type != RTE_IP_ICMP_ECHO_REPLY || icmp->icmp_code != 0)
        why = B_TYPE;
    else if (ip->src_addr != c->srv_ip || ip->dst_addr != c->my_ip
             || !rte_is_same_ether_addr(&eth->dst_addr, &c->my_mac))
        why = B_ADDR;
    else if (icmp->icmp_ident != rte_cpu_to_be_16(c->ident))
        why = B_IDENT;
    else {
        uint16_t s = rte_be_to_cpu_16(icmp->icmp_seq_nb);
        const uint8_t *pl = (const uint8_t *)(icmp + 1);
        uint64_t s64 = s * 0x9E3779B97F4A7C15ull;
        if (memcmp(pl, MAGIC, 8) != 0 || memcmp(pl + 8, &s64, 8) != 0 || pl[16] || pl[17])
            why = B_PAYLOAD;
        else
            *seq = s;
    }
    rte_pktmbuf_free(m);
    if (why >= 0) {
        c->bad[why]++;
        return -1;
    }
    return 1;
}

static void wait_link(struct ctx *c, double timeout)
{
    struct rte_eth_link link;
    double end = now_s() + timeout;
    do {
        memset(&link, 0, sizeof(link));
        rte_eth_link_get_nowait(c->port, &link);
        if (link.link_status == RTE_ETH_LINK_UP)
            return;
        rte_delay_us_block(1000);
    } while (now_s() < end);
    printf("{\"ok\": false, \"error\": \"link down after %.1f s (is the server up?)\"}\n", timeout);
    fflush(stdout);
    rte_exit(2, "link down\n");
}

static void resolve(struct ctx *c, double timeout)
{
    double end = now_s() + timeout, next_req = 0;
    struct rte_mbuf *rx[BURST];
    while (now_s() < end) {
        if (now_s() >= next_req) {
            struct rte_mbuf *m = rte_pktmbuf_alloc(c->pool);
            if (m) {
                build_arp(m, RTE_ARP_OP_REQUEST, &c->my_mac, c->my_ip, NULL, c->srv_ip);
                tx_all(c->port, &m, 1, &c->tx_dropped);
            }
            next_req = now_s() + 0.02;
        }
        uint16_t n = rte_eth_rx_burst(c->port, 0, rx, BURST);
        for (uint16_t i = 0; i < n; i++) {
            struct rte_ether_hdr *eth = rte_pktmbuf_mtod(rx[i], struct rte_ether_hdr *);
            struct rte_arp_hdr *arp = (struct rte_arp_hdr *)(eth + 1);
            if (eth->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP)
                && rx[i]->data_len >= sizeof(*eth) + sizeof(*arp)
                && arp->arp_opcode == rte_cpu_to_be_16(RTE_ARP_OP_REPLY)
                && arp->arp_data.arp_sip == c->srv_ip) {
                c->srv_mac = arp->arp_data.arp_sha;
                rte_pktmbuf_free_bulk(rx + i, n - i);
                return;
            }
            handle_other(c, rx[i]);
        }
    }
    printf("{\"ok\": false, \"error\": \"no ARP reply from the server in %.1f s\"}\n", timeout);
    fflush(stdout);
    rte_exit(2, "ARP timeout\n");
}

/* (a) one request outstanding. */
static void pingpong(struct ctx *c, double seconds, uint16_t *seq, struct result *r)
{
    struct rte_mbuf *rx[BURST];
    const uint64_t stall = c->hz * STALL_MS / 1000;
    const double ns_per_cycle = 1e9 / (double)c->hz;
    double t_start = now_s();
    uint64_t end = rte_rdtsc() + (uint64_t)(seconds * c->hz);
    uint64_t t0 = rte_rdtsc();
    while (t0 < end) {
        struct rte_mbuf *m = rte_pktmbuf_alloc(c->pool);
        if (m == NULL)
            rte_exit(EXIT_FAILURE, "mbuf pool empty\n");
        uint16_t want = (*seq)++;
        build_echo(c, m, want);
        t0 = rte_rdtsc();
        if (tx_all(c->port, &m, 1, &c->tx_dropped) == 0) {
            r->lost++;
            continue;
        }
        r->sent++;
        int got = 0;
        uint64_t t1 = t0;
        while (!got && t1 - t0 < stall) {
            uint16_t n = rte_eth_rx_burst(c->port, 0, rx, BURST);
            t1 = rte_rdtsc();
            for (uint16_t i = 0; i < n; i++) {
                uint16_t s;
                if (check_reply(c, rx[i], &s) == 1) {
                    if (s == want)
                        got = 1;
                    else
                        r->stale++;
                }
            }
        }
        if (!got) {
            r->lost++;
            continue;
        }
        uint64_t ns = (uint64_t)((t1 - t0) * ns_per_cycle);
        r->replies++;
        if (ns >= PREEMPT_NS) {
            r->preempt_n++;
            r->preempt_ns += ns;
        }
        r->sum_ns += ns;
        if (ns > r->max_ns)
            r->max_ns = ns;
        if (ns < HIST_NS)
            r->hist[ns]++;
        else
            r->hist_overflow++;
        t0 = t1;
    }
    r->seconds = now_s() - t_start;
}

static uint16_t send_new(struct ctx *c, uint16_t count, uint16_t *seq, uint8_t *inflight)
{
    struct rte_mbuf *ms[BURST];
    uint16_t done = 0;
    while (done < count) {
        uint16_t k = RTE_MIN(count - done, BURST);
        if (rte_pktmbuf_alloc_bulk(c->pool, ms, k) != 0)
            rte_exit(EXIT_FAILURE, "mbuf pool empty\n");
        for (uint16_t i = 0; i < k; i++) {
            inflight[*seq] = 1;
            build_echo(c, ms[i], (*seq)++);
        }
        uint16_t sent = tx_all(c->port, ms, k, &c->tx_dropped);
        for (uint16_t i = sent; i < k; i++)
            inflight[(uint16_t)(*seq - k + i)] = 0;
        done += k;
        if (sent < k)
            break;
    }
    return done;
}

/* (b) `window` requests kept in flight; what stalls for STALL_MS is counted lost. */
static void windowed(struct ctx *c, double seconds, uint16_t window, uint16_t *seq,
                     uint8_t *inflight, struct result *r)
{
    struct rte_mbuf *rx[BURST];
    const uint64_t stall = c->hz * STALL_MS / 1000;
    const uint64_t preempt = c->hz / 1000000 * (PREEMPT_NS / 1000);
    const double ns_per_cycle = 1e9 / (double)c->hz;
    uint32_t outstanding = 0;
    double t_start = now_s();
    uint64_t now = rte_rdtsc(), end = now + (uint64_t)(seconds * c->hz), last = now;
    while (now < end) {
        if (outstanding < window) {
            uint16_t k = send_new(c, window - outstanding, seq, inflight);
            r->sent += k;
            outstanding += k;
        }
        uint16_t n = rte_eth_rx_burst(c->port, 0, rx, BURST);
        uint64_t prev = now;
        now = rte_rdtsc();
        if (now - prev >= preempt) {
            r->preempt_n++;
            r->preempt_ns += (uint64_t)((now - prev) * ns_per_cycle);
        }
        for (uint16_t i = 0; i < n; i++) {
            uint16_t s;
            if (check_reply(c, rx[i], &s) != 1)
                continue;
            if (inflight[s]) {
                inflight[s] = 0;
                outstanding--;
                r->replies++;
                last = now;
            } else {
                r->stale++;
            }
        }
        if (outstanding && now - last > stall && n == 0) {      /* give the window up as lost */
            r->lost += outstanding;
            memset(inflight, 0, 65536);
            outstanding = 0;
            last = now;
        }
    }
    r->seconds = now_s() - t_start;
    /* drain the tail uncounted, so the next phase starts with nothing in flight */
    uint64_t drain_end = rte_rdtsc() + stall;
    while (outstanding && rte_rdtsc() < drain_end) {
        uint16_t n = rte_eth_rx_burst(c->port, 0, rx, BURST);
        for (uint16_t i = 0; i < n; i++) {
            uint16_t s;
            if (check_reply(c, rx[i], &s) == 1 && inflight[s]) {
                inflight[s] = 0;
                outstanding--;
            }
        }
    }
    memset(inflight, 0, 65536);
}

/* Wait for the link to go down (the server closed), polling nothing; bounded by `timeout`. */
static void linger(struct ctx *c, double timeout)
{
    struct rte_eth_link link;
    double end = now_s() + timeout;
    while (now_s() < end) {
        memset(&link, 0, sizeof(link));
        rte_eth_link_get_nowait(c->port, &link);
        if (link.link_status != RTE_ETH_LINK_UP)
            return;
        rte_delay_us_sleep(1000);
    }
}

/* The rate over the time the pinger had its vCPU and got answers in time: the wall time
 * minus gaps >= PREEMPT_NS (on a shared 2-vCPU guest a neighbour's 4-20 ms timeslice would
 * otherwise dominate the mean). */
static double unpreempted(const struct result *r, uint64_t count)
{
    double t = r->seconds - r->preempt_ns * 1e-9;
    return t > 0 ? count / t : 0.0;
}

static uint64_t percentile(const struct result *r, double p)
{
    uint64_t rank = (uint64_t)(p * (r->replies - 1)), acc = 0;
    for (uint64_t ns = 0; ns < HIST_NS; ns++) {
        acc += r->hist[ns];
        if (acc > rank)
            return ns;
    }
    return r->max_ns;
}

static void usage(void)
{
    rte_exit(EXIT_FAILURE, "usage: pinger <EAL args> -- --ip A.B.C.D --server-ip A.B.C.D "
             "[--seconds S] [--window W<=%d] [--warmup S] [--arp-timeout S] [--linger S]\n", MAX_WINDOW);
}

int main(int argc, char **argv)
{
    int used = rte_eal_init(argc, argv);
    if (used < 0)
        rte_exit(EXIT_FAILURE, "rte_eal_init failed: %s\n", rte_strerror(rte_errno));
    argc -= used;
    argv += used;

    struct ctx c;
    memset(&c, 0, sizeof(c));
    double seconds = 2.0, warmup = 0.2, arp_timeout = 5.0, linger_s = 0;
    long window = 32;
    static const struct option opts[] = {
        {"ip", required_argument, NULL, 'i'}, {"server-ip", required_argument, NULL, 's'},
        {"seconds", required_argument, NULL, 't'}, {"window", required_argument, NULL, 'w'},
        {"warmup", required_argument, NULL, 'u'}, {"arp-timeout", required_argument, NULL, 'a'},
        {"linger", required_argument, NULL, 'l'}, {0}};
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'i': if (parse_ip(optarg, &c.my_ip) < 0) usage(); break;
        case 's': if (parse_ip(optarg, &c.srv_ip) < 0) usage(); break;
        case 't': seconds = atof(optarg); break;
        case 'w': window = atol(optarg); break;
        case 'u': warmup = atof(optarg); break;
        case 'a': arp_timeout = atof(optarg); break;
        case 'l': linger_s = atof(optarg); break;
        default: usage();
        }
    }
    if (!c.my_ip || !c.srv_ip || seconds <= 0 || seconds > 3600 || window < 1
        || window > MAX_WINDOW || warmup < 0 || arp_timeout <= 0 || linger_s < 0 || linger_s > 600)
        usage();

    c.port = port_init(&c.pool);
    rte_eth_macaddr_get(c.port, &c.my_mac);
    c.ident = (uint16_t)getpid();
    c.hz = rte_get_tsc_hz();
    uint8_t *inflight = calloc(65536, 1);
    struct result a = {0}, b = {0}, w = {0};
    a.hist = calloc(HIST_NS, sizeof(uint32_t));
    w.hist = calloc(HIST_NS, sizeof(uint32_t));
    if (!inflight || !a.hist || !w.hist)
        rte_exit(EXIT_FAILURE, "out of memory\n");

    wait_link(&c, 10.0);
    resolve(&c, arp_timeout);
    uint16_t seq = 0;
    if (warmup > 0)
        pingpong(&c, warmup, &seq, &w);
    pingpong(&c, seconds, &seq, &a);
    if (warmup > 0) {
        struct result w2 = {0};
        windowed(&c, warmup, (uint16_t)window, &seq, inflight, &w2);
    }
    windowed(&c, seconds, (uint16_t)window, &seq, inflight, &b);

    uint64_t bad = 0;
    for (int i = 0; i < B_N; i++)
        bad += c.bad[i];
    char mac_s[RTE_ETHER_ADDR_FMT_SIZE];
    rte_ether_format_addr(mac_s, sizeof(mac_s), &c.srv_mac);
    int ok = a.replies > 0 && b.replies > 0 && bad == 0;
    printf("{\"ok\": %s, \"server_mac\": \"%s\", \"tsc_hz\": %" PRIu64 ", \"frame_bytes\": %d, "
           "\"pingpong\": {\"seconds\": %.4f, \"sent\": %" PRIu64 ", \"replies\": %" PRIu64
           ", \"verified\": %" PRIu64 ", \"lost\": %" PRIu64 ", \"stale\": %" PRIu64
           ", \"rt_per_s\": %.1f, \"mean_ns\": %.1f, \"p50_ns\": %" PRIu64 ", \"p99_ns\": %"
           PRIu64 ", \"max_ns\": %" PRIu64 ", \"preempt_n\": %" PRIu64 ", \"preempt_ns\": %"
           PRIu64 ", \"rt_per_s_unpreempted\": %.1f}, ",
           ok ? "true" : "false", mac_s, c.hz, FRAME_LEN + RTE_ETHER_CRC_LEN,
           a.seconds, a.sent, a.replies, a.replies, a.lost, a.stale,
           a.replies / a.seconds, a.replies ? (double)a.sum_ns / a.replies : 0.0,
           a.replies ? percentile(&a, 0.50) : 0, a.replies ? percentile(&a, 0.99) : 0, a.max_ns,
           a.preempt_n, a.preempt_ns, unpreempted(&a, a.replies - a.preempt_n));
    printf("\"window\": {\"window\": %ld, \"seconds\": %.4f, \"sent\": %" PRIu64
           ", \"replies\": %" PRIu64 ", \"verified\": %" PRIu64 ", \"lost\": %" PRIu64
           ", \"stale\": %" PRIu64 ", \"replies_per_s\": %.1f, \"preempt_n\": %" PRIu64
           ", \"preempt_ns\": %" PRIu64 ", \"replies_per_s_unpreempted\": %.1f}, ",
           window, b.seconds, b.sent, b.replies, b.replies, b.lost, b.stale,
           b.replies / b.seconds, b.preempt_n, b.preempt_ns, unpreempted(&b, b.replies));
    printf("\"bad\": %" PRIu64 ", \"bad_by_reason\": {", bad);
    for (int i = 0; i < B_N; i++)
        printf("%s\"%s\": %" PRIu64, i ? ", " : "", BAD_NAMES[i], c.bad[i]);
    printf("}, \"other\": %" PRIu64 ", \"arp_answered\": %" PRIu64 ", \"tx_dropped\": %" PRIu64
           "}\n", c.other, c.arp_answered, c.tx_dropped);
    fflush(stdout);

    if (linger_s > 0)
        linger(&c, linger_s);
    port_close(c.port);
    rte_mempool_free(c.pool);
    free(inflight);
    free(a.hist);
    free(w.hist);
    rte_eal_cleanup();
    return ok ? 0 : 1;
}
