# cython: language_level=3
# DPDK as fastloop sees it: every foreign declaration, once (vendor/dpdk-shim/fl_shim.h).
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t

cdef extern from "fl_shim.h" nogil:
    ctypedef struct fl_mbuf:
        fl_mbuf *next
        uint64_t ol_flags
    ctypedef struct fl_pool:
        pass

    ctypedef struct fl_port_info:
        uint8_t mac[6]
        uint16_t mtu
        uint32_t if_index
        uint8_t tx_ipv4_cksum
        uint8_t tx_udp_cksum
        uint8_t tx_tcp_cksum
        uint8_t rx_cksum
        uint8_t tso
        uint8_t has_rx_intr
        int rx_fd
        char driver[64]
        void *datapath_lock
        void (*rx_kick)(int)

    int fl_eal_init(int argc, char **argv)
    int fl_eal_cleanup()
    const char *fl_strerror(int err)
    const char *fl_dpdk_version()
    fl_pool *fl_pool_create(const char *name, unsigned n, unsigned cache, uint16_t data_room)
    void fl_pool_free(fl_pool *pool)
    int fl_dev_probe(const char *devargs)
    int fl_port_by_name(const char *name, uint16_t *port)
    int fl_port_setup(uint16_t port, fl_pool *pool, uint16_t nb_rxd, uint16_t nb_txd,
                      int want_offloads, fl_port_info *info)
    int fl_port_close(uint16_t port, int detach)
    int fl_ring_pair(const char *name_a, const char *name_b, unsigned size,
                     uint16_t *port_a, uint16_t *port_b)
    int fl_ring_pair_release(const char *name_a, const char *name_b)
    int fl_port_stats(uint16_t port, uint64_t out[6])
    int fl_port_link_up(uint16_t port)

    uint16_t fl_rx_burst_port(const fl_port_info *info, uint16_t port, fl_mbuf **pkts, uint16_t n)
    uint16_t fl_tx_burst_port(const fl_port_info *info, uint16_t port, fl_mbuf **pkts, uint16_t n)
    uint16_t fl_tx_prepare(uint16_t port, fl_mbuf **pkts, uint16_t n)
    fl_mbuf *fl_mbuf_alloc(fl_pool *pool)
    int fl_mbuf_alloc_bulk(fl_pool *pool, fl_mbuf **m, unsigned n)
    void fl_mbuf_free(fl_mbuf *m)
    void fl_mbuf_free_bulk(fl_mbuf **m, unsigned n)
    fl_mbuf *fl_mbuf_clone(fl_mbuf *m, fl_pool *pool)
    uint8_t *fl_mbuf_data(fl_mbuf *m)
    uint16_t fl_mbuf_data_len(const fl_mbuf *m)
    uint32_t fl_mbuf_pkt_len(const fl_mbuf *m)
    uint16_t fl_mbuf_nb_segs(const fl_mbuf *m)
    uint16_t fl_mbuf_headroom(const fl_mbuf *m)
    uint16_t fl_mbuf_tailroom(const fl_mbuf *m)
    uint8_t *fl_mbuf_prepend(fl_mbuf *m, uint16_t n)
    uint8_t *fl_mbuf_append(fl_mbuf *m, uint16_t n)
    uint8_t *fl_mbuf_adj(fl_mbuf *m, uint16_t n)
    int fl_mbuf_trim(fl_mbuf *m, uint16_t n)
    int fl_mbuf_linearize(fl_mbuf *m)
    int fl_mbuf_chain(fl_mbuf *head, fl_mbuf *tail)
    void fl_mbuf_reset_data(fl_mbuf *m)
    const void *fl_mbuf_read(const fl_mbuf *m, uint32_t off, uint32_t len, void *buf)
    int fl_mbuf_rx_ip_cksum_bad(const fl_mbuf *m)
    int fl_mbuf_rx_ip_cksum_good(const fl_mbuf *m)
    int fl_mbuf_rx_l4_cksum_bad(const fl_mbuf *m)
    int fl_mbuf_rx_l4_cksum_good(const fl_mbuf *m)
    void fl_mbuf_tx_offload(fl_mbuf *m, uint8_t l2, uint8_t l3, int ip_cksum, int l4)
    void fl_mbuf_clear_offload(fl_mbuf *m)
    uint64_t fl_mbuf_tx_cksum_requested(const fl_mbuf *m)
    void fl_mbuf_rx_cksum_unknown(fl_mbuf *m)
    # rx checksum verdict flags (a PMD with rx checksum offload sets them; tests fake one)
    const uint64_t RTE_MBUF_F_RX_IP_CKSUM_GOOD
    const uint64_t RTE_MBUF_F_RX_L4_CKSUM_GOOD
    const uint64_t RTE_MBUF_F_RX_L4_CKSUM_BAD
    const uint64_t RTE_MBUF_F_RX_L4_CKSUM_MASK
    # tx offload requests (a test middleware plays the NIC that honours them)
    const uint64_t RTE_MBUF_F_TX_IP_CKSUM
    const uint64_t RTE_MBUF_F_TX_L4_MASK
    const uint64_t RTE_MBUF_F_TX_UDP_CKSUM
    const uint64_t RTE_MBUF_F_TX_TCP_CKSUM
    const uint64_t RTE_MBUF_F_TX_IPV4
    uint16_t fl_ipv4_phdr_cksum(const void *ip_hdr, uint64_t ol_flags)
    void fl_mbuf_sw_cksum(fl_mbuf *m)

    uint32_t fl_cksum_add(uint32_t sum, const void *buf, size_t len)
    uint16_t fl_cksum_fold(uint32_t sum)
    uint16_t fl_htons(uint16_t x)
    uint16_t fl_ntohs(uint16_t x)
    uint32_t fl_htonl(uint32_t x)
    uint32_t fl_ntohl(uint32_t x)

    uint64_t fl_pool_in_use(const fl_pool *p)
    uint64_t fl_pool_avail(const fl_pool *p)
    uint64_t fl_now_ns()
    uint64_t fl_wall_ns()

# Debug builds (FASTLOOP_DEBUG=1 at build time) keep books of the objects the stack owns.
cdef extern from *:
    """
    #ifndef FL_DEBUG
    #define FL_DEBUG 0
    #endif
    """
    const int FL_DEBUG
