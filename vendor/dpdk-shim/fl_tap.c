/* net_tap's receive trigger (DPDK 22.11 drivers/net/tap/rte_eth_tap.c).
 *
 * The PMD opens its queue fd with O_ASYNC and F_SETSIG to a free real-time signal, whose
 * handler (tap_trigger_cb) bumps a process-wide counter; pmd_rx_burst returns 0 without a
 * readv while the counter equals what the queue saw at its last drain. So every received
 * frame costs a signal delivery (a kernel signal frame, the handler, sigreturn): without it
 * an aiohttp server over tap serves ~25 % more requests (benchmarks/RESULTS.md). fastloop
 * knows when it wants to read (every rx step of a polling loop; after epoll reports the fd
 * readable when it sleeps), so it turns O_ASYNC off on the queue and calls the trigger
 * function itself before each burst: the burst then reads until EAGAIN, as it would after a
 * signal, and no signal is sent. Everything used is public (fcntl F_GETSIG/F_GETFL,
 * sigaction) and each step is checked; on any surprise the PMD is left as it was.
 */
#define _GNU_SOURCE
#include "fl_tap.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

fl_rx_kick_fn fl_tap_quiet_rx(int rx_fd) {
    const char *keep = getenv("FASTLOOP_TAP_RX_SIGNAL");
    if (keep && strcmp(keep, "1") == 0) return NULL;
    if (rx_fd < 0) return NULL;
    int flags = fcntl(rx_fd, F_GETFL);
    int signo = fcntl(rx_fd, F_GETSIG);
    /* no signal set up: the PMD found no free one and reads on every burst already */
    if (flags < 0 || signo <= 0 || !(flags & O_ASYNC)) return NULL;
    struct sigaction sa;
    if (sigaction(signo, NULL, &sa) != 0 || (sa.sa_flags & SA_SIGINFO) ||
        sa.sa_handler == SIG_DFL || sa.sa_handler == SIG_IGN) {
        fprintf(stderr, "fastloop: net_tap's rx signal %d has no trigger handler: "
                "keeping the PMD's per-frame signal\n", signo);
        return NULL;
    }
    fl_rx_kick_fn kick = sa.sa_handler;
    kick(signo);                     /* the first burst reads whatever came before this */
    if (fcntl(rx_fd, F_SETFL, flags & ~O_ASYNC) < 0) return NULL;
    return kick;
}
