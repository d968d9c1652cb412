/* Shared helpers of the L3 benchmark programs (reflector.c, pinger.c): port setup,
 * option parsing and frame-level constants. Plain DPDK, no fastloop code. */
#ifndef FL_L3_COMMON_H
#define FL_L3_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ether.h>
#include <rte_arp.h>
#include <rte_ip.h>
#include <rte_icmp.h>

#define BURST 32
#define NB_RXD 1024
#define NB_TXD 1024
#define NB_MBUFS 8191
#define MBUF_CACHE 256

static inline void die(const char *what, int rc)
{
    fprintf(stderr, "%s failed: %s (%d)\n", what, rte_strerror(rc < 0 ? -rc : rc), rc);
    rte_exit(EXIT_FAILURE, "%s\n", what);
}

/* The one port (the memif vdev), one rx and one tx queue. */
static inline uint16_t port_init(struct rte_mempool **pool_out)
{
    uint16_t port = RTE_MAX_ETHPORTS, p;
    RTE_ETH_FOREACH_DEV(p) { port = p; break; }
    if (port == RTE_MAX_ETHPORTS)
        rte_exit(EXIT_FAILURE, "no ethdev: pass --vdev=net_memif0,...\n");
    struct rte_mempool *pool = rte_pktmbuf_pool_create("l3_mbufs", NB_MBUFS, MBUF_CACHE, 0,
                                                       RTE_MBUF_DEFAULT_BUF_SIZE,
                                                       rte_socket_id());
    if (pool == NULL)
        die("rte_pktmbuf_pool_create", rte_errno);
    struct rte_eth_conf conf;
    memset(&conf, 0, sizeof(conf));
    int rc = rte_eth_dev_configure(port, 1, 1, &conf);
    if (rc < 0) die("rte_eth_dev_configure", rc);
    uint16_t nrx = NB_RXD, ntx = NB_TXD;
    rc = rte_eth_dev_adjust_nb_rx_tx_desc(port, &nrx, &ntx);
    if (rc < 0) die("rte_eth_dev_adjust_nb_rx_tx_desc", rc);
    rc = rte_eth_rx_queue_setup(port, 0, nrx, rte_eth_dev_socket_id(port), NULL, pool);
    if (rc < 0) die("rte_eth_rx_queue_setup", rc);
    rc = rte_eth_tx_queue_setup(port, 0, ntx, rte_eth_dev_socket_id(port), NULL);
    if (rc < 0) die("rte_eth_tx_queue_setup", rc);
    rc = rte_eth_dev_start(port);
    if (rc < 0) die("rte_eth_dev_start", rc);
    *pool_out = pool;
    return port;
}

static inline void port_close(uint16_t port)
{
    rte_eth_dev_stop(port);
    rte_eth_dev_close(port);
}

/* Send every mbuf: a bounded number of retries, then free what the PMD did not take. */
static inline uint16_t tx_all(uint16_t port, struct rte_mbuf **pkts, uint16_t n, uint64_t *dropped)
{
    uint16_t sent = 0;
    for (int tries = 0; sent < n && tries < 64; tries++)
        sent += rte_eth_tx_burst(port, 0, pkts + sent, n - sent);
    if (sent < n) {
        rte_pktmbuf_free_bulk(pkts + sent, n - sent);
        *dropped += n - sent;
    }
    return sent;
}

static inline int parse_ip(const char *s, uint32_t *out_be)
{
    struct in_addr a;
    if (inet_pton(AF_INET, s, &a) != 1)
        return -1;
    *out_be = a.s_addr;
    return 0;
}

/* Fill an ARP frame (request when op is RTE_ARP_OP_REQUEST, reply otherwise). */
static inline void build_arp(struct rte_mbuf *m, uint16_t op,
                             const struct rte_ether_addr *src_mac, uint32_t src_ip,
                             const struct rte_ether_addr *dst_mac, uint32_t dst_ip)
{
    struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
    struct rte_arp_hdr *arp = (struct rte_arp_hdr *)(eth + 1);
    if (op == RTE_ARP_OP_REQUEST)
        memset(&eth->dst_addr, 0xff, RTE_ETHER_ADDR_LEN);
    else
        rte_ether_addr_copy(dst_mac, &eth->dst_addr);
    rte_ether_addr_copy(src_mac, &eth->src_addr);
    eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP);
    arp->arp_hardware = rte_cpu_to_be_16(RTE_ARP_HRD_ETHER);
    arp->arp_protocol = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
    arp->arp_hlen = RTE_ETHER_ADDR_LEN;
    arp->arp_plen = 4;
    arp->arp_opcode = rte_cpu_to_be_16(op);
    rte_ether_addr_copy(src_mac, &arp->arp_data.arp_sha);
    arp->arp_data.arp_sip = src_ip;
    if (op == RTE_ARP_OP_REQUEST)
        memset(&arp->arp_data.arp_tha, 0, RTE_ETHER_ADDR_LEN);
    else
        rte_ether_addr_copy(dst_mac, &arp->arp_data.arp_tha);
    arp->arp_data.arp_tip = dst_ip;
    /* pad to the 60-byte minimum frame so no PMD has to */
    m->data_len = m->pkt_len = RTE_ETHER_MIN_LEN - RTE_ETHER_CRC_LEN;
    memset((char *)(arp + 1), 0, m->data_len - sizeof(*eth) - sizeof(*arp));
}

/* If `m` is an ARP request for `my_ip`, turn it into the reply in place and return 1. */
static inline int arp_answer_in_place(struct rte_mbuf *m, const struct rte_ether_addr *my_mac,
                                      uint32_t my_ip)
{
    if (m->data_len < sizeof(struct rte_ether_hdr) + sizeof(struct rte_arp_hdr))
        return 0;
    struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
    struct rte_arp_hdr *arp = (struct rte_arp_hdr *)(eth + 1);
    if (arp->arp_opcode != rte_cpu_to_be_16(RTE_ARP_OP_REQUEST)
        || arp->arp_hardware != rte_cpu_to_be_16(RTE_ARP_HRD_ETHER)
        || arp->arp_protocol != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4)
        || arp->arp_data.arp_tip != my_ip)
        return 0;
    struct rte_ether_addr peer_mac = arp->arp_data.arp_sha;
    uint32_t peer_ip = arp->arp_data.arp_sip;
    rte_ether_addr_copy(&peer_mac, &eth->dst_addr);
    rte_ether_addr_copy(my_mac, &eth->src_addr);
    arp->arp_opcode = rte_cpu_to_be_16(RTE_ARP_OP_REPLY);
    rte_ether_addr_copy(my_mac, &arp->arp_data.arp_sha);
    arp->arp_data.arp_sip = my_ip;
    rte_ether_addr_copy(&peer_mac, &arp->arp_data.arp_tha);
    arp->arp_data.arp_tip = peer_ip;
    return 1;
}

#endif
