/* net_tap's receive trigger in DPDK 22.11 and what fastloop does about it (fl_tap.c).
 * Private to the shim's C files. */
#ifndef FL_TAP_H
#define FL_TAP_H

typedef void (*fl_rx_kick_fn)(int);

/* Turns the tap queue's per-frame signal off and returns the PMD's trigger function, to be
 * called before each rx burst; NULL (the PMD's signal kept) when anything is not as expected
 * or FASTLOOP_TAP_RX_SIGNAL=1. */
fl_rx_kick_fn fl_tap_quiet_rx(int rx_fd);

#endif
