# cython: language_level=3, boundscheck=False, wraparound=False
"""Devices: a DPDK ethdev (any PMD) behind a small rx/tx burst interface.

`open_device` turns a FASTLOOP_IFACE spec into a hot-plugged DPDK port. `ring_pair` makes two
ports joined back to back by rte_rings (net_ring): two stacks in one process, for tests.
"""
from libc.string cimport memcpy
from fastloop.includes.dpdk cimport (
    fl_rx_burst_port, fl_tx_burst_port, fl_dev_probe, fl_port_by_name, fl_port_setup,
    fl_port_close, fl_ring_pair, fl_ring_pair_release, fl_strerror, fl_port_stats,
    fl_port_link_up, fl_mbuf_free_bulk)
from fastloop.dev.eal import eal_init, data_room_for_mtu, DEFAULT_MEMPOOL_SIZE

import os

DEFAULT_RING_SIZE = 1024
# PMDs that carry a frame of any length, so the MTU is ours to choose (StackConfig.mtu):
# memif copies a frame over as many of its ring buffers as it needs, a ring passes the mbuf
JUMBO_ANY_MTU = ("net_memif", "net_ring")


class DeviceError(OSError):
    """A device could not be attached or configured; the message says what to do."""


def _check(int rc, str what, str hint=""):
    if rc < 0:
        msg = f"{what}: {fl_strerror(rc).decode()}"
        raise DeviceError(-rc, msg + (f" ({hint})" if hint else ""))


cdef class Device:
    cdef uint16_t rx_burst(self, fl_mbuf **pkts, uint16_t n) noexcept:
        return 0

    cdef uint16_t tx_burst(self, fl_mbuf **pkts, uint16_t n) noexcept:
        return 0

    cdef void poll(self, uint64_t now) noexcept:
        pass

    cpdef close(self):
        self.closed = True

    @property
    def mac(self):
        return ":".join(f"{self.info.mac[i]:02x}" for i in range(6))

    @property
    def mac_bytes(self):
        return bytes([self.info.mac[i] for i in range(6)])

    @property
    def mtu(self):
        return self.info.mtu

    @property
    def driver(self):
        return self.info.driver.decode()

    @property
    def rx_wakeup_fd(self):
        """A descriptor epoll reports readable when frames wait (net_tap), or -1: poll."""
        return self.info.rx_fd

    @property
    def rx_signal_free(self):
        """net_tap: receiving costs no signal per frame (fl_tap.c); False elsewhere."""
        return self.info.rx_kick != NULL

    @property
    def offloads(self):
        """Checksum offloads enabled on the port (the stack does the rest in software)."""
        return {"tx_ipv4_cksum": bool(self.info.tx_ipv4_cksum),
                "tx_udp_cksum": bool(self.info.tx_udp_cksum),
                "tx_tcp_cksum": bool(self.info.tx_tcp_cksum),
                "rx_cksum": bool(self.info.rx_cksum)}

    def __repr__(self):
        return f"<{type(self).__name__} {self.name} {self.driver} {self.mac} mtu={self.mtu}>"


cdef class EthDevice(Device):
    cdef uint16_t rx_burst(self, fl_mbuf **pkts, uint16_t n) noexcept:
        return fl_rx_burst_port(&self.info, self.port_id, pkts, n)

    cdef uint16_t tx_burst(self, fl_mbuf **pkts, uint16_t n) noexcept:
        return fl_tx_burst_port(&self.info, self.port_id, pkts, n)

    cpdef close(self):
        """Stop the port and hot-unplug it (a tap interface disappears with it)."""
        if self.closed:
            return
        self.closed = True
        self.drain()
        fl_port_close(self.port_id, 1)
        self.eal.unregister(self)
        cdef EthDevice peer = self.ring_peer
        if peer is not None and peer.closed:
            # frames sent into the ring after the other end closed would otherwise leak
            fl_ring_pair_release(self.name.encode(), peer.name.encode())
            peer.ring_peer = None
            self.ring_peer = None

    cdef void drain(self) noexcept:
        """Free what is still waiting in the rx queue: a ring keeps its frames past close."""
        cdef fl_mbuf *pkts[32]
        cdef uint16_t n
        cdef int rounds = 0
        while rounds < 1024:
            n = fl_rx_burst_port(&self.info, self.port_id, pkts, 32)
            if n == 0:
                return
            fl_mbuf_free_bulk(pkts, n)
            rounds += 1

    @property
    def link_up(self):
        """The port's link status as the PMD reports it now (net_memif: a peer is connected)."""
        cdef int rc = fl_port_link_up(self.port_id)
        _check(rc, f"link status of {self.name}")
        return rc == 1

    @property
    def teardown_guarded(self):
        """net_memif: bursts hold the driver's lock against its teardown (fl_memif.c)."""
        return self.info.datapath_lock != NULL

    def stats(self):
        cdef uint64_t s[6]
        _check(fl_port_stats(self.port_id, s), f"stats of {self.name}")
        return dict(zip(("ipackets", "opackets", "ibytes", "obytes", "imissed", "oerrors"),
                        [s[i] for i in range(6)]))


cdef EthDevice _attach(Eal eal, uint16_t port, str port_name, bint offloads, unsigned ring_size,
                       Mempool pool, mtu):
    cdef EthDevice dev = EthDevice.__new__(EthDevice)
    dev.eal = eal
    dev.name = port_name
    dev.port_id = port
    dev.mempool = pool
    dev.pool = pool.pool
    dev.kernel_ifname = None
    rc = fl_port_setup(port, dev.pool, ring_size, ring_size, offloads, &dev.info)
    if rc < 0:
        fl_port_close(port, 1)
        _check(rc, f"cannot start DPDK port {port_name}")
    if mtu is not None and mtu > dev.info.mtu and dev.driver in JUMBO_ANY_MTU:
        dev.info.mtu = mtu               # no MTU to set on the PMD; the pool holds such frames
    eal.register(dev)
    return dev


cdef Mempool _pool_for(Eal eal, mtu, mempool_size):
    return eal.mempool_for(data_room_for_mtu(mtu), mempool_size or DEFAULT_MEMPOOL_SIZE)


_HINTS = {
    "net_tap": "needs root and /dev/net/tun; the interface name must be free",
    "net_af_packet": "needs root and an existing kernel interface (e.g. a veth)",
    "net_memif": "needs a socket path the process can create or reach",
}


def open_device(str devargs, *, Eal eal=None, bint offloads=True,
                unsigned ring_size=DEFAULT_RING_SIZE, str kernel_ifname=None, mtu=None,
                mempool_size=None):
    """Hot-plug a device by DPDK devargs ('net_tap0,iface=fl0', '0000:01:00.0') and start it.

    `mtu` above the PMD's own: memif and ring ports take it (JUMBO_ANY_MTU), with mbufs
    from a pool that holds such a frame whole; other PMDs keep theirs (the stack clamps).
    """
    if eal is None:
        eal = eal_init()
    driver = devargs.split(",", 1)[0]
    kind = driver.rstrip("0123456789")
    if kind == "net_tap" and not os.path.exists("/dev/net/tun"):
        raise DeviceError(2, "net_tap needs /dev/net/tun: load the tun module (modprobe tun) "
                             "or run the container with --device /dev/net/tun")
    _check(fl_dev_probe(devargs.encode()), f"cannot attach DPDK device {devargs!r}",
           _HINTS.get(kind, "check the devargs and that the device is bound to a DPDK driver"))
    cdef uint16_t port
    _check(fl_port_by_name(driver.encode(), &port), f"no DPDK port named {driver}")
    if kind not in JUMBO_ANY_MTU:
        mtu = None
    cdef EthDevice dev = _attach(eal, port, driver, offloads, ring_size,
                                 _pool_for(eal, mtu, mempool_size), mtu)
    dev.kernel_ifname = kernel_ifname
    return dev


def ring_pair(str name="ring", *, Eal eal=None, unsigned ring_size=DEFAULT_RING_SIZE, mtu=None,
              mempool_size=None):
    """Two net_ring ports wired back to back: what one transmits, the other receives.
    `mtu`: both ends carry frames that large (mbufs from a pool that holds them)."""
    if eal is None:
        eal = eal_init()
    cdef uint16_t a, b
    n = eal.new_device_id()
    na, nb = f"{name}{n}a", f"{name}{n}b"
    _check(fl_ring_pair(na.encode(), nb.encode(), ring_size * 2, &a, &b),
           "cannot create a net_ring pair")
    cdef Mempool pool = _pool_for(eal, mtu, mempool_size)
    cdef EthDevice da = _attach(eal, a, na, False, ring_size, pool, mtu)
    cdef EthDevice db = _attach(eal, b, nb, False, ring_size, pool, mtu)
    da.ring_peer, db.ring_peer = db, da
    return da, db


cdef class Middleware(Device):
    def __init__(self, Device inner):
        self.inner = inner
        self.eal = inner.eal
        self.name = inner.name
        self.pool = inner.pool
        self.mempool = inner.mempool
        memcpy(&self.info, &inner.info, sizeof(self.info))

    cdef uint16_t rx_burst(self, fl_mbuf **pkts, uint16_t n) noexcept:
        return self.inner.rx_burst(pkts, n)

    cdef uint16_t tx_burst(self, fl_mbuf **pkts, uint16_t n) noexcept:
        return self.inner.tx_burst(pkts, n)

    cdef void poll(self, uint64_t now) noexcept:
        self.inner.poll(now)

    cpdef close(self):
        self.closed = True
        self.inner.close()

    @property
    def kernel_ifname(self):
        return getattr(self.inner, "kernel_ifname", None)

    def stats(self):
        return self.inner.stats()
