/* fastloop's DPDK shim, slow path: EAL, mempool, port set-up and hot-plug.
 * Every function returns 0 or a negative errno so Cython can turn it into an OSError. */
#include "fl_shim.h"
#include "fl_memif.h"
#include "fl_tap.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>

#include <rte_bus_vdev.h>
#include <rte_dev.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_eth_ring.h>
#include <rte_ring.h>
#include <rte_version.h>

/* EAL's own threads (interrupts, multi-process, telemetry) are made with SIGIO and the
 * real-time signals blocked: net_tap asks the kernel for a signal per received frame (a
 * real-time one, F_SETSIG; its rx burst reads only after one), and a process-directed
 * signal goes to any thread that takes it. Delivered to a sleeping EAL thread it is a
 * wake-up and two context switches per frame (7 % of the aiohttp server's CPU under
 * wrk, perf); the polling thread, which reads the frame anyway, takes them all. */
int fl_eal_init(int argc, char **argv) {
    sigset_t quiet, saved;
    sigemptyset(&quiet);
    sigaddset(&quiet, SIGIO);
    for (int sig = SIGRTMIN; sig <= SIGRTMAX; sig++) sigaddset(&quiet, sig);
    int masked = pthread_sigmask(SIG_BLOCK, &quiet, &saved) == 0;
    int rc = rte_eal_init(argc, argv);
    int err = rte_errno;
    if (masked) pthread_sigmask(SIG_SETMASK, &saved, NULL);
    return rc < 0 ? -(err ? err : EINVAL) : 0;
}

int fl_eal_cleanup(void) { return rte_eal_cleanup(); }

const char *fl_strerror(int err) { return rte_strerror(err < 0 ? -err : err); }

const char *fl_dpdk_version(void) { return rte_version(); }

fl_pool *fl_pool_create(const char *name, unsigned n, unsigned cache, uint16_t data_room) {
    return rte_pktmbuf_pool_create(name, n, cache, 0, data_room, (int)rte_socket_id());
}

void fl_pool_free(fl_pool *pool) { rte_mempool_free(pool); }

int fl_dev_probe(const char *devargs) {
    int rc = rte_dev_probe(devargs);
    return rc < 0 ? rc : 0;
}

int fl_port_by_name(const char *name, uint16_t *port) {
    return rte_eth_dev_get_port_by_name(name, port);
}

/* One rx and one tx queue; checksum offloads switched on only where the PMD offers them. */
int fl_port_setup(uint16_t port, fl_pool *pool, uint16_t nb_rxd, uint16_t nb_txd,
                  int want_offloads, fl_port_info *info) {
    struct rte_eth_dev_info dev;
    struct rte_eth_conf conf;
    struct rte_ether_addr mac;
    int rc;

    memset(info, 0, sizeof(*info));
    memset(&conf, 0, sizeof(conf));
    rc = rte_eth_dev_info_get(port, &dev);
    if (rc < 0) return rc;
    if (want_offloads) {
        uint64_t tx = dev.tx_offload_capa;
        uint64_t rx = dev.rx_offload_capa;
        uint64_t rx_ck = RTE_ETH_RX_OFFLOAD_IPV4_CKSUM | RTE_ETH_RX_OFFLOAD_UDP_CKSUM |
                         RTE_ETH_RX_OFFLOAD_TCP_CKSUM;
        conf.txmode.offloads = tx & (RTE_ETH_TX_OFFLOAD_IPV4_CKSUM | RTE_ETH_TX_OFFLOAD_UDP_CKSUM |
                                     RTE_ETH_TX_OFFLOAD_TCP_CKSUM);
        if ((rx & rx_ck) == rx_ck) conf.rxmode.offloads = rx_ck;
    }
    /* net_tap's rx queue is a tun fd: with rx interrupts on, EAL exposes it so an idle
     * loop can sleep in epoll until a frame arrives (fl_port_info.rx_fd). */
    int is_tap = dev.driver_name && strcmp(dev.driver_name, "net_tap") == 0;
    if (is_tap) conf.intr_conf.rxq = 1;
    rc = rte_eth_dev_configure(port, 1, 1, &conf);
    if (rc < 0) return rc;
    rc = rte_eth_dev_adjust_nb_rx_tx_desc(port, &nb_rxd, &nb_txd);
    if (rc < 0) return rc;
    int socket = rte_eth_dev_socket_id(port);
    if (socket < 0) socket = (int)rte_socket_id();
    struct rte_eth_rxconf rxq = dev.default_rxconf;
    rxq.offloads = conf.rxmode.offloads;
    rc = rte_eth_rx_queue_setup(port, 0, nb_rxd, (unsigned)socket, &rxq, pool);
    if (rc < 0) return rc;
    struct rte_eth_txconf txq = dev.default_txconf;
    txq.offloads = conf.txmode.offloads;
    rc = rte_eth_tx_queue_setup(port, 0, nb_txd, (unsigned)socket, &txq);
    if (rc < 0) return rc;
    rc = rte_eth_dev_start(port);
    if (rc < 0) return rc;
    rte_eth_promiscuous_disable(port); /* may be unsupported (ring, memif): ignored */

    rc = rte_eth_macaddr_get(port, &mac);
    if (rc < 0) return rc;
    if (rte_is_zero_ether_addr(&mac)) {
        /* net_ring and friends have no address: make a locally administered one */
        rte_eth_random_addr(mac.addr_bytes);
    }
    memcpy(info->mac, mac.addr_bytes, 6);
    if (rte_eth_dev_get_mtu(port, &info->mtu) < 0 || info->mtu == 0) info->mtu = 1500;
    info->if_index = dev.if_index;
    info->tx_ipv4_cksum = !!(conf.txmode.offloads & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM);
    info->tx_udp_cksum = !!(conf.txmode.offloads & RTE_ETH_TX_OFFLOAD_UDP_CKSUM);
    info->tx_tcp_cksum = !!(conf.txmode.offloads & RTE_ETH_TX_OFFLOAD_TCP_CKSUM);
    info->rx_cksum = conf.rxmode.offloads != 0;
    info->tso = !!(dev.tx_offload_capa & RTE_ETH_TX_OFFLOAD_TCP_TSO);
    info->rx_fd = is_tap ? rte_eth_dev_rx_intr_ctl_q_get_fd(port, 0) : -1;
    if (info->rx_fd < 0) info->rx_fd = -1;
    info->has_rx_intr = info->rx_fd >= 0;
    snprintf(info->driver, sizeof(info->driver), "%s", dev.driver_name ? dev.driver_name : "?");
    info->datapath_lock = fl_is_memif(port) ? fl_memif_datapath_lock(port) : NULL;
    info->rx_kick = is_tap ? fl_tap_quiet_rx(info->rx_fd) : NULL;
    return 0;
}

int fl_port_close_now(uint16_t port, int detach) {
    struct rte_eth_dev_info dev;
    struct rte_device *device = NULL;
    if (rte_eth_dev_info_get(port, &dev) == 0) device = dev.device;
    int rc = rte_eth_dev_stop(port);
    if (rc < 0 && rc != -ENODEV) return rc;
    rc = rte_eth_dev_close(port);
    if (rc < 0) return rc;
    /* a ring pair has no bus device behind it; everything else is hot-unplugged */
    if (detach && device) rte_dev_remove(device);
    return 0;
}

int fl_port_close(uint16_t port, int detach) {
    if (fl_is_memif(port)) return fl_memif_close(port, detach);
    return fl_port_close_now(port, detach);
}

int fl_ring_pair(const char *name_a, const char *name_b, unsigned size,
                 uint16_t *port_a, uint16_t *port_b) {
    char rn[RTE_RING_NAMESIZE];
    struct rte_ring *ab, *ba;
    snprintf(rn, sizeof(rn), "%s_tx", name_a);
    ab = rte_ring_create(rn, size, (int)rte_socket_id(), RING_F_SP_ENQ | RING_F_SC_DEQ);
    if (!ab) return -rte_errno;
    snprintf(rn, sizeof(rn), "%s_tx", name_b);
    ba = rte_ring_create(rn, size, (int)rte_socket_id(), RING_F_SP_ENQ | RING_F_SC_DEQ);
    if (!ba) { rte_ring_free(ab); return -rte_errno; }
    /* a transmits into ab, b receives from it; and the other way round */
    int a = rte_eth_from_rings(name_a, &ba, 1, &ab, 1, rte_socket_id());
    if (a < 0) return -rte_errno;
    int b = rte_eth_from_rings(name_b, &ab, 1, &ba, 1, rte_socket_id());
    if (b < 0) return -rte_errno;
    *port_a = (uint16_t)a;
    *port_b = (uint16_t)b;
    return 0;
}

int fl_ring_pair_release(const char *name_a, const char *name_b) {
    /* net_ring never frees rings it was given (rte_eth_from_rings): once both ports are
     * closed, nobody will dequeue what is left, so free the frames and then the rings. */
    char rn[RTE_RING_NAMESIZE];
    const char *names[2] = {name_a, name_b};
    int freed = 0;
    for (int i = 0; i < 2; i++) {
        snprintf(rn, sizeof(rn), "%s_tx", names[i]);
        struct rte_ring *r = rte_ring_lookup(rn);
        void *m;
        if (!r) continue;
        while (rte_ring_dequeue(r, &m) == 0) {
            rte_pktmbuf_free((struct rte_mbuf *)m);
            freed++;
        }
        rte_ring_free(r);
    }
    return freed;
}

int fl_port_link_up(uint16_t port) {
    struct rte_eth_link link;
    int rc = rte_eth_link_get_nowait(port, &link);
    return rc < 0 ? rc : link.link_status == RTE_ETH_LINK_UP;
}

int fl_port_stats(uint16_t port, uint64_t out[6]) {
    struct rte_eth_stats s;
    int rc = rte_eth_stats_get(port, &s);
    if (rc < 0) return rc;
    out[0] = s.ipackets; out[1] = s.opackets; out[2] = s.ibytes;
    out[3] = s.obytes; out[4] = s.imissed; out[5] = s.oerrors;
    return 0;
}
