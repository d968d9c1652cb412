/* net_memif tears a connection down on EAL's interrupt thread when the peer leaves:
 * memif_disconnect, from the control channel's callback. In DPDK 22.11 that races with
 * the process using the port in two ways, both seen here as a SIGSEGV or EAL's "Error:
 * Invalid memory":
 *
 * 1. rx/tx bursts. memif_disconnect clears the CONNECTED flag, then takes the driver's
 *    control-channel lock (cc_lock), sends the goodbye, lets the lock go and unmaps the
 *    shared rings. A burst that passed the flag check before it was cleared reads the
 *    unmapped ring (a core dump showed the load of the ring's head). So a burst holds
 *    cc_lock: the teardown cannot get past the lock while a burst runs, and a burst that
 *    gets the lock after the teardown had it sees the flag cleared and touches nothing.
 *    cc_lock is in the driver's private struct; its place is checked against what the
 *    port was created with before it is used (fl_memif_datapath_lock).
 * 2. close. dev_stop runs memif_disconnect too, and only the control-channel part of it
 *    is locked: the two free the same regions. EAL's interrupt thread runs callbacks one
 *    at a time, so the close is done from a callback of our own on that thread
 *    (fl_memif_close). (Not an EAL alarm: once one is set, rte_eal_cleanup wakes that
 *    thread while it unmaps the memory the thread's sources live in.) */
#include "fl_shim.h"
#include "fl_memif.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/eventfd.h>

#include <rte_dev.h>
#include <rte_devargs.h>
#include <rte_interrupts.h>
#include <rte_spinlock.h>
#include <rte_version.h>

int fl_is_memif(uint16_t port) {
    struct rte_eth_dev_info dev;
    return rte_eth_dev_info_get(port, &dev) == 0 && dev.driver_name &&
           strcmp(dev.driver_name, "net_memif") == 0;
}

/* ---- 1. the bursts' lock ------------------------------------------------------------ */

/* Private layouts of DPDK 22.11, as far as needed to reach net_memif's cc_lock: the
 * ethdev's (lib/ethdev/ethdev_driver.h, not installed) and the head of the driver's
 * struct pmd_internals (drivers/net/memif/rte_eth_memif.h). Every step is checked against
 * what the public API says of the port before the lock is used. */
struct eth_dev_data_22_11 {
    char name[RTE_ETH_NAME_MAX_LEN];
    void **rx_queues;
    void **tx_queues;
    uint16_t nb_rx_queues;
    uint16_t nb_tx_queues;
    struct { uint8_t active, nb_q_per_pool; uint16_t def_vmdq_idx, def_pool_q_idx; } sriov;
    void *dev_private;
};

struct eth_dev_22_11 {
    void *burst_fns[6];          /* rx, tx, tx_prepare, rx_queue_count, rx/tx desc status */
    struct eth_dev_data_22_11 *data;
    void *process_private;
    const void *dev_ops;
    struct rte_device *device;
    void *intr_handle;
    void *link_intr_cbs[2];
    void *post_rx_burst_cbs[RTE_MAX_QUEUES_PER_PORT];
    void *pre_tx_burst_cbs[RTE_MAX_QUEUES_PER_PORT];
    int state;
    void *security_ctx;
    uint64_t reserved_64s[4];
    void *reserved_ptrs[4];
} __rte_cache_aligned;

extern struct eth_dev_22_11 rte_eth_devices[];   /* librte_ethdev, version INTERNAL */

struct memif_internals_22_11 {
    uint32_t id;                 /* memif_interface_id_t */
    int role;                    /* enum memif_role_t: 0 server, 1 client */
    uint32_t flags;              /* ETH_MEMIF_FLAG_*: bits 0-4 */
    char *socket_filename;
    char secret[24];             /* ETH_MEMIF_SECRET_SIZE */
    void *cc;                    /* struct memif_control_channel * */
    rte_spinlock_t cc_lock;
};

/* The value of `key=` in a devargs string ("socket=/x.sock,role=client,id=3"), or NULL. */
static const char *devarg(const char *args, const char *key, char *out, size_t size) {
    size_t klen = strlen(key);
    for (const char *p = args; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
        if (strncmp(p, key, klen) == 0 && p[klen] == '=') {
            const char *v = p + klen + 1;
            size_t n = strcspn(v, ",");
            if (n >= size) return NULL;
            memcpy(out, v, n);
            out[n] = 0;
            return out;
        }
    }
    return NULL;
}

void *fl_memif_datapath_lock(uint16_t port) {
    struct rte_eth_dev_info info;
    char name[RTE_ETH_NAME_MAX_LEN];
    if (strncmp(rte_version(), "DPDK 22.11", 10) != 0) goto unknown;
    if (rte_eth_dev_info_get(port, &info) != 0 || info.device == NULL ||
        rte_eth_dev_get_name_by_port(port, name) != 0) goto unknown;
    const struct rte_devargs *da = rte_dev_devargs(info.device);
    if (da == NULL || da->args == NULL) goto unknown;
    char sock[256], id[16], role[16];
    if (devarg(da->args, "socket", sock, sizeof(sock)) == NULL) goto unknown;
    long want_id = devarg(da->args, "id", id, sizeof(id)) ? strtol(id, NULL, 10) : 0;
    int want_role = devarg(da->args, "role", role, sizeof(role)) &&
                    strcmp(role, "client") == 0;
    /* the ethdev: its device, its name and its rx queue as the public API has them */
    struct eth_dev_22_11 *dev = &rte_eth_devices[port];
    struct eth_dev_data_22_11 *data = dev->data;
    if (dev->device != info.device || data == NULL || strcmp(data->name, name) != 0 ||
        data->nb_rx_queues != 1 || data->rx_queues == NULL ||
        data->rx_queues[0] != rte_eth_fp_ops[port].rxq.data[0]) goto unknown;
    /* the driver's own: the socket, id and role the port was created with */
    struct memif_internals_22_11 *pmd = data->dev_private;
    if (pmd == NULL || pmd->socket_filename == NULL ||
        strcmp(pmd->socket_filename, sock) != 0 || pmd->id != (uint32_t)want_id ||
        pmd->role != want_role || (pmd->flags & ~0x1fu) != 0 ||
        (pmd->cc_lock.locked != 0 && pmd->cc_lock.locked != 1))
        goto unknown;
    return &pmd->cc_lock;
unknown:
    fprintf(stderr, "fastloop: %s: net_memif's private layout is not the one known from "
                    "DPDK 22.11; a peer that leaves while this process polls may crash it\n",
            rte_version());
    return NULL;
}

/* ---- 2. close on the interrupt thread ----------------------------------------------- */

typedef struct close_job {
    uint16_t port;
    int detach;
    int efd;
    int rc;
    int done;
} close_job;

static void close_callback(void *arg) {
    close_job *job = arg;
    uint64_t n;
    if (__atomic_load_n(&job->done, __ATOMIC_ACQUIRE)) return;
    ssize_t got = read(job->efd, &n, sizeof(n));   /* level-triggered: consume the wake-up */
    (void)got;
    job->rc = fl_port_close_now(job->port, job->detach);
    __atomic_store_n(&job->done, 1, __ATOMIC_RELEASE);
}

#define CLOSE_WAIT_US (10 * 1000 * 1000)

int fl_memif_close(uint16_t port, int detach) {
    close_job job = {port, detach, -1, 0, 0};
    struct rte_intr_handle *ih = rte_intr_instance_alloc(RTE_INTR_INSTANCE_F_PRIVATE);
    job.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (ih == NULL || job.efd < 0 || rte_intr_fd_set(ih, job.efd) ||
        rte_intr_type_set(ih, RTE_INTR_HANDLE_EXT) ||
        rte_intr_callback_register(ih, close_callback, &job) < 0) {
        rte_intr_instance_free(ih);
        if (job.efd >= 0) close(job.efd);
        return fl_port_close_now(port, detach);
    }
    uint64_t one = 1;
    if (write(job.efd, &one, sizeof(one)) == sizeof(one)) {
        for (int waited = 0; waited < CLOSE_WAIT_US &&
                             !__atomic_load_n(&job.done, __ATOMIC_ACQUIRE); waited += 50)
            usleep(50);
    }
    /* waits while the callback runs; afterwards it can no longer start */
    rte_intr_callback_unregister_sync(ih, close_callback, &job);
    rte_intr_instance_free(ih);
    close(job.efd);
    /* the interrupt thread is stuck elsewhere: close from here after all */
    if (!__atomic_load_n(&job.done, __ATOMIC_ACQUIRE)) return fl_port_close_now(port, detach);
    return job.rc;
}
