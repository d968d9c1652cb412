/* net_memif's two teardown races in DPDK 22.11 and what fastloop does about them
 * (fl_memif.c). Private to the shim's C files. */
#ifndef FL_MEMIF_H
#define FL_MEMIF_H

#include <stdint.h>

int fl_port_close_now(uint16_t port, int detach);   /* fl_shim.c: stop, close, unplug */
int fl_is_memif(uint16_t port);
int fl_memif_close(uint16_t port, int detach);      /* from EAL's interrupt thread */
void *fl_memif_datapath_lock(uint16_t port);        /* the lock bursts hold, or NULL */

#endif
