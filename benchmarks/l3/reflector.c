/* reflector: the plain DPDK baseline of the L3 ping-pong benchmark.
 *
 *   reflector <EAL args> -- --ip A.B.C.D
 *
 * One port, one rx/tx queue, busy-poll, burst 32. Answers ARP requests for --ip and ICMP
 * echo requests to --ip in place (swap MACs and IPs, type 0, incremental ICMP checksum;
 * the IPv4 checksum is unchanged by a swap). Everything else is freed. On SIGINT/SIGTERM it
 * stops and closes the port, cleans up EAL and prints its counters as one JSON line.
 */
#include <signal.h>
#include <stdbool.h>
#include <getopt.h>

#include "common.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig) { (void)sig; stop = 1; }

struct counters {
    uint64_t rx, icmp_echo, arp, other, tx, tx_dropped;
};

/* If `m` is an ICMP echo request to `my_ip`, turn it into the echo reply in place. */
static inline int icmp_echo_in_place(struct rte_mbuf *m, uint32_t my_ip)
{
    struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
    struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eth + 1);
    if (m->data_len < sizeof(*eth) + sizeof(*ip) + sizeof(struct rte_icmp_hdr))
        return 0;
    unsigned ihl = (ip->version_ihl & 0x0f) * 4u;
    if ((ip->version_ihl >> 4) != 4 || ihl < sizeof(*ip) || ip->next_proto_id != IPPROTO_ICMP
        || ip->dst_addr != my_ip || m->data_len < sizeof(*eth) + ihl + sizeof(struct rte_icmp_hdr)
        || (ip->fragment_offset & rte_cpu_to_be_16(RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK)))
        return 0;
    struct rte_icmp_hdr *icmp = (struct rte_icmp_hdr *)((char *)ip + ihl);
    if (icmp->icmp_type != RTE_IP_ICMP_ECHO_REQUEST || icmp->icmp_code != 0)
        return 0;
    struct rte_ether_addr tmp_mac = eth->src_addr;
    eth->src_addr = eth->dst_addr;
    eth->dst_addr = tmp_mac;
    uint32_t tmp_ip = ip->src_addr;
    ip->src_addr = ip->dst_addr;
    ip->dst_addr = tmp_ip;
    icmp->icmp_type = RTE_IP_ICMP_ECHO_REPLY;
    /* RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), m = type 8 << 8, m' = type 0 << 8 */
    uint32_t sum = (uint16_t)~icmp->icmp_cksum;
    sum += (uint16_t)~rte_cpu_to_be_16(RTE_IP_ICMP_ECHO_REQUEST << 8);
    sum += rte_cpu_to_be_16(RTE_IP_ICMP_ECHO_REPLY << 8);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    icmp->icmp_cksum = (uint16_t)~sum;
    return 1;
}

int main(int argc, char **argv)
{
    int used = rte_eal_init(argc, argv);
    if (used < 0)
        rte_exit(EXIT_FAILURE, "rte_eal_init failed: %s\n", rte_strerror(rte_errno));
    argc -= used;
    argv += used;

    uint32_t my_ip = 0;
    static const struct option opts[] = {{"ip", required_argument, NULL, 'i'}, {0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c != 'i' || parse_ip(optarg, &my_ip) < 0)
            rte_exit(EXIT_FAILURE, "usage: reflector <EAL args> -- --ip A.B.C.D\n");
    }
    if (my_ip == 0)
        rte_exit(EXIT_FAILURE, "usage: reflector <EAL args> -- --ip A.B.C.D\n");

    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    struct rte_mempool *pool;
    uint16_t port = port_init(&pool);
    struct rte_ether_addr my_mac;
    rte_eth_macaddr_get(port, &my_mac);
    char mac_s[RTE_ETHER_ADDR_FMT_SIZE];
    rte_ether_format_addr(mac_s, sizeof(mac_s), &my_mac);
    fprintf(stderr, "reflector: port %u mac %s ready\n", port, mac_s);

    struct counters k = {0};
    struct rte_mbuf *rx[BURST], *out[BURST], *drop[BURST];
    while (!stop) {
        uint16_t n = rte_eth_rx_burst(port, 0, rx, BURST);
        if (n == 0)
            continue;
        uint16_t nout = 0, ndrop = 0;
        k.rx += n;
        for (uint16_t i = 0; i < n; i++) {
            struct rte_mbuf *m = rx[i];
            struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
            if (m->data_len >= sizeof(*eth)) {
                if (eth->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4)
                    && icmp_echo_in_place(m, my_ip)) {
                    k.icmp_echo++;
                    out[nout++] = m;
                    continue;
                }
                if (eth->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP)
                    && arp_answer_in_place(m, &my_mac, my_ip)) {
                    k.arp++;
                    out[nout++] = m;
                    continue;
                }
            }
            k.other++;
            drop[ndrop++] = m;
        }
        if (ndrop)
            rte_pktmbuf_free_bulk(drop, ndrop);
        if (nout)
            k.tx += tx_all(port, out, nout, &k.tx_dropped);
    }

    port_close(port);
    printf("{\"server\": \"c-reflector\", \"rx\": %" PRIu64 ", \"icmp_echo\": %" PRIu64
           ", \"arp\": %" PRIu64 ", \"other\": %" PRIu64 ", \"tx\": %" PRIu64
           ", \"tx_dropped\": %" PRIu64 "}\n",
           k.rx, k.icmp_echo, k.arp, k.other, k.tx, k.tx_dropped);
    fflush(stdout);
    rte_mempool_free(pool);
    rte_eal_cleanup();
    return 0;
}
