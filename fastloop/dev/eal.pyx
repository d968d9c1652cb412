# cython: language_level=3
"""The one per-process DPDK environment: EAL and the mbuf mempool.

EAL can be initialised once per process and never again (rte_eal_init refuses a second
call), so it is brought up lazily by the first stack and shared by every device after it.
Every process gets its own --file-prefix, so several fastloop processes and test runs
coexist; --no-huge is added when no hugepages are available.
"""
import atexit
import os
import shutil

from libc.stdlib cimport malloc, free
from fastloop.includes.dpdk cimport (
    fl_eal_init, fl_eal_cleanup, fl_strerror, fl_dpdk_version, fl_pool_create,
    fl_pool_in_use, fl_pool_avail, FL_DEBUG)

DEFAULT_MEMPOOL_SIZE = 16383       # 2^n - 1 is the mempool's most efficient size
MBUF_HEADROOM = 128                # RTE_PKTMBUF_HEADROOM
DEFAULT_DATA_ROOM = 2048 + MBUF_HEADROOM   # RTE_MBUF_DEFAULT_BUF_SIZE: one 1500-byte frame
MAX_DATA_ROOM = 65535              # an mbuf's data room is 16 bits
MEMPOOL_CACHE = 256
ETH_FRAME_OVERHEAD = 14            # the Ethernet header (no FCS: PMDs strip it)

cdef Eal _eal = None               # the per-process EAL (allowed: see ARCHITECTURE.md)
cdef object _eal_error = None      # EAL cannot be retried after a failed rte_eal_init
cdef object _eal_pid = None        # the process that started it: a fork() child must not use it


class EalError(OSError):
    """DPDK's environment could not be brought up; the message says what to do."""


def debug_build():
    """True when built with FASTLOOP_DEBUG=1 (mbuf books kept and checked)."""
    return bool(FL_DEBUG)


def dpdk_version():
    return fl_dpdk_version().decode()


def frame_buffer_for_mtu(mtu):
    """The bytes one frame of an `mtu`-byte IP packet needs in one mbuf: 2048 up to an MTU of
    2034, else the frame rounded up to whole KiB (memif's `bsize` is this too)."""
    if mtu is None or mtu + ETH_FRAME_OVERHEAD <= DEFAULT_DATA_ROOM - MBUF_HEADROOM:
        return DEFAULT_DATA_ROOM - MBUF_HEADROOM
    return min(-(-(mtu + ETH_FRAME_OVERHEAD) // 1024) * 1024, MAX_DATA_ROOM - MBUF_HEADROOM)


def data_room_for_mtu(mtu):
    """The mbuf data room that holds a whole frame at `mtu` after the headroom."""
    return frame_buffer_for_mtu(mtu) + MBUF_HEADROOM


def hugepages_available():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("HugePages_Free:"):
                    return int(line.split()[1]) > 0
    except OSError:
        pass
    return False


cdef class Mempool:
    """The process's mbuf pool; `in_use` is what every test checks is back to its start."""

    @property
    def in_use(self):
        return fl_pool_in_use(self.pool)

    @property
    def available(self):
        return fl_pool_avail(self.pool)

    def __repr__(self):
        return f"<Mempool {self.name} size={self.size} in_use={self.in_use}>"


def _explain(int rc, list args):
    err = -rc
    reason = fl_strerror(rc).decode()
    hints = []
    if os.geteuid() != 0:
        hints.append("DPDK needs root (or CAP_SYS_ADMIN, CAP_NET_ADMIN, CAP_IPC_LOCK): run as root")
    if err in (11, 16):   # EAGAIN/EBUSY: another primary holds the runtime directory lock
        hints.append("another DPDK process uses this --file-prefix: choose another in FASTLOOP_EAL_ARGS")
    if err == 12:
        hints.append("not enough memory: lower mempool_size or raise -m in FASTLOOP_EAL_ARGS")
    if not hints:
        hints.append("check FASTLOOP_EAL_ARGS and run `python -m fastloop doctor`")
    return EalError(err, f"DPDK EAL failed to start ({reason}) with args {' '.join(args)}: "
                         + "; ".join(hints))


def eal_args_for(unsigned mempool_size, extra=(), str file_prefix=None, pci=(),
                 unsigned data_room=DEFAULT_DATA_ROOM):
    """The EAL command line fastloop uses; `extra` (FASTLOOP_EAL_ARGS) comes last and wins.

    PCI devices are scanned only when the configuration names one (`pci`): the host's own
    NICs are never touched by accident.
    """
    extra = list(extra)
    if file_prefix is None:
        file_prefix = f"fastloop-{os.getpid()}"
    args = ["fastloop"]
    if not any(a.startswith("--file-prefix") for a in extra):
        args.append(f"--file-prefix={file_prefix}")
    if not hugepages_available() and "--no-huge" not in extra:
        # mbufs plus the PMDs' rings and EAL's own heap
        # (with --no-huge, -m is address space EAL reserves: only what it touches is resident)
        mem_mb = max(256, (mempool_size * (data_room + 256)) // (1 << 20) * 2 + 128)
        args += ["--no-huge", "-m", str(mem_mb)]
    if not any(a.startswith("--log-level") for a in extra):
        args += ["--log-level=*:warning", "--log-level=pmd.net.tap:critical"]
    if pci:
        args += [f"--allow={addr}" for addr in pci]
    elif not any(a.startswith(("-a", "--allow", "-b", "--block")) for a in extra):
        args.append("--no-pci")
    args += ["--no-telemetry"]
    return args + extra


def eal_init(unsigned mempool_size=DEFAULT_MEMPOOL_SIZE, extra_args=(), str file_prefix=None,
             pci=(), unsigned data_room=DEFAULT_DATA_ROOM):
    """Bring EAL up once for this process (later calls return the same Eal); its first mempool
    has `data_room`-byte mbufs (a stack needing larger ones gets a pool of its own)."""
    global _eal, _eal_error, _eal_pid
    if _eal is not None:
        _check_not_forked()
        return _eal
    if _eal_error is not None:
        raise _eal_error
    args = eal_args_for(mempool_size, extra_args, file_prefix, pci, data_room)
    cdef int argc = len(args)
    cdef char **argv = <char **>malloc(sizeof(char *) * (argc + 1))
    encoded = [a.encode() for a in args]
    for i in range(argc):
        argv[i] = encoded[i]
    argv[argc] = NULL
    # EAL pins the calling thread to its main lcore; an asyncio app must keep its own affinity.
    affinity = os.sched_getaffinity(0)
    cdef int rc = fl_eal_init(argc, argv)
    free(argv)
    os.sched_setaffinity(0, affinity)
    if rc != 0:
        _eal_error = _explain(rc, args)
        raise _eal_error
    cdef Eal eal = Eal.__new__(Eal)
    eal.args = args
    eal.file_prefix = next(a.split("=", 1)[1] for a in args if a.startswith("--file-prefix="))
    eal.devices = set()
    eal.next_device_id = 0
    eal.pools = []
    eal.mempool = _new_pool(eal, "fastloop_mbufs", mempool_size, data_room)
    _eal = eal
    _eal_pid = os.getpid()
    atexit.register(_shutdown)
    return eal


cdef Mempool _new_pool(Eal eal, str name, unsigned size, unsigned data_room):
    cdef Mempool pool = Mempool.__new__(Mempool)
    pool.name = name
    pool.size = size
    pool.data_room = data_room
    pool.pool = fl_pool_create(name.encode(), size, MEMPOOL_CACHE, data_room)
    if pool.pool == NULL:
        raise EalError(12, f"cannot create a mempool of {size} mbufs of {data_room} B: lower "
                           "mempool_size or raise -m in FASTLOOP_EAL_ARGS")
    eal.pools.append(pool)
    return pool


def _check_not_forked():
    """A fork() child shares the parent's DPDK memory (rings, mempool, device tables) but not
    its lcore state: using it there corrupts the parent's (DPDK supports no fork after
    rte_eal_init). Raise instead: a loop made in a child works on the kernel until
    something routes to the userspace stack, which then fails with this error."""
    if _eal_pid != os.getpid():
        raise EalError(1, f"EAL was started by process {_eal_pid}; a forked child "
                          f"({os.getpid()}) cannot use it")


def current_eal():
    """The process's Eal, or None before the first stack (and in a forked child)."""
    if _eal is not None and _eal_pid != os.getpid():
        return None
    return _eal


def _shutdown():
    """At exit: close every device still open (removing taps), then EAL and its files.

    rte_eal_cleanup runs only with hugepages, to give their files back: DPDK 22.11's
    cleanup unmaps EAL's memory while its interrupt thread still runs, and that thread,
    woken by the cleanup's own unregistering, then walks its sources in unmapped memory
    (a SIGSEGV at exit in about one `fastloop up` in 60 beside a flooding memif peer; core:
    rte_intr_fd_get on eal-intr-thread, the main thread in munmap). With --no-huge it
    would free nothing that the exit does not; the runtime directory is removed here."""
    if _eal is None or _eal_pid != os.getpid():     # a forked child: the parent's to close
        return
    for dev in list(_eal.devices):
        try:
            dev.close()
        except Exception:
            pass
    if "--no-huge" not in _eal.args:
        fl_eal_cleanup()
    shutil.rmtree(f"/var/run/dpdk/{_eal.file_prefix}", ignore_errors=True)


cdef class Eal:
    """Handle on the per-process EAL: its mempool and the devices attached to it."""

    def new_device_id(self):
        self.next_device_id += 1
        return self.next_device_id - 1

    def register(self, dev):
        self.devices.add(dev)

    def unregister(self, dev):
        self.devices.discard(dev)

    def mempool_for(self, unsigned data_room, unsigned size=DEFAULT_MEMPOOL_SIZE):
        """A pool whose mbufs have at least `data_room` bytes: the process's first one when
        it is large enough (the usual case), else one made for this size (jumbo frames on a
        stack in a process whose first stack used 1500)."""
        cdef Mempool pool
        for pool in self.pools:
            if pool.data_room >= data_room:
                return pool
        return _new_pool(self, f"fastloop_mbufs_{data_room}", size, data_room)

    @property
    def mbufs_in_use(self):
        """Mbufs in use in every pool: what a test checks is back where it started."""
        cdef Mempool pool
        cdef unsigned long n = 0
        for pool in self.pools:
            n += fl_pool_in_use(pool.pool)
        return n
