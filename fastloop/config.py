"""Stack configuration: the `StackConfig` dataclass and the FASTLOOP_* environment overrides.

Every environment variable overrides the field of the same name; a bad value raises
`ConfigError` naming the variable and the forms it accepts.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
import re
import shlex
from dataclasses import dataclass, field

DEFAULT_ADDRESS = "10.77.0.2/24"
DEFAULT_TAP_PEER = "10.77.0.1"
DEFAULT_TAP_NAME = "fl0"
IDLE_POLICIES = ("adaptive", "busy-poll")
MIN_MTU, MAX_MTU = 576, 65000               # IPv4's smallest datagram every host takes (RFC
                                            # 791); the largest whose frame fits one mbuf

IFACE_FORMS = ("tap", "tap:NAME", "memif:/path/to.sock[,role=server|client][,id=N]",
               "af_packet:IFNAME", "pci:0000:01:00.0", "vdev:<DPDK devargs>")


class ConfigError(ValueError):
    """A configuration value is not one of the accepted forms."""


@dataclass(frozen=True)
class IfaceSpec:
    """A parsed FASTLOOP_IFACE: which PMD, and the devargs to hot-plug it with."""
    kind: str                      # tap | memif | af_packet | pci | vdev
    target: str = ""               # tap/af_packet interface, memif socket, PCI address
    options: tuple = ()            # extra key=value devargs

    def devargs(self, index: int, buffer_size: int = 2048) -> str:
        """DPDK devargs; `index` keeps vdev names unique within the process. A memif's ring
        buffers are `buffer_size` bytes (bsize, unless the spec gives one): one whole frame of
        the MTU each, so a frame is one descriptor and one mbuf, never a chain."""
        options = self.options
        if self.kind == "memif" and buffer_size > 2048 and "bsize" not in dict(options):
            options = options + (("bsize", str(buffer_size)),)
        opts = "".join(f",{k}={v}" for k, v in options)
        if self.kind == "tap":
            return f"net_tap{index},iface={self.target}{opts}"
        if self.kind == "memif":
            return f"net_memif{index},socket={self.target}{opts}"
        if self.kind == "af_packet":
            return f"net_af_packet{index},iface={self.target}{opts}"
        if self.kind == "pci":
            return self.target + opts
        return self.target

    @property
    def kernel_ifname(self):
        return self.target if self.kind in ("tap", "af_packet") else None


def parse_iface(spec: str, var: str = "FASTLOOP_IFACE") -> IfaceSpec:
    def bad(why):
        return ConfigError(f"{var}={spec!r}: {why}; accepted forms: {', '.join(IFACE_FORMS)}")

    kind, _, rest = spec.strip().partition(":")
    if kind == "tap":
        name = rest or DEFAULT_TAP_NAME
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,15}", name):
            raise bad("a tap name is 1-15 letters, digits, '_', '.' or '-'")
        return IfaceSpec("tap", name)
    if kind == "memif":
        path, *opts = rest.split(",")
        if not path.startswith("/"):
            raise bad("memif needs an absolute socket path")
        options = []
        for o in opts:
            k, eq, v = o.partition("=")
            if not eq or k not in ("role", "id", "zero-copy", "bsize", "rsize", "mac",
                                   "socket-abstract"):
                raise bad(f"unknown memif option {o!r}")
            if k == "role" and v not in ("server", "client"):
                raise bad("memif role is server or client")
            if k in ("id", "bsize", "rsize") and not v.isdigit():
                raise bad(f"memif {k} is a whole number")
            if k in ("zero-copy", "socket-abstract") and v not in ("yes", "no"):
                raise bad(f"memif {k} is yes or no")
            options.append((k, v))
        return IfaceSpec("memif", path, tuple(options))
    if kind == "af_packet":
        if not re.fullmatch(r"[A-Za-z0-9_.@-]{1,15}", rest):
            raise bad("af_packet needs a kernel interface name")
        return IfaceSpec("af_packet", rest)
    if kind == "pci":
        if not re.fullmatch(r"([0-9a-fA-F]{4}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]", rest):
            raise bad("a PCI address looks like 0000:01:00.0")
        return IfaceSpec("pci", rest)
    if kind == "vdev":
        if not rest:
            raise bad("vdev needs DPDK devargs")
        return IfaceSpec("vdev", rest)
    raise bad("unknown interface kind")


def parse_faults(text: str, var: str = "FASTLOOP_FAULTS") -> dict:
    """'loss=0.02,dup=0.01,reorder=0.02,corrupt=0.005,delay_ms=5,seed=1' -> dict."""
    keys = {"loss": float, "dup": float, "reorder": float, "corrupt": float,
            "delay_ms": float, "seed": int}
    out = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        k, eq, v = item.partition("=")
        if not eq or k not in keys:
            raise ConfigError(f"{var}: unknown item {item!r}; accepted: "
                              + ", ".join(f"{k}=N" for k in keys))
        try:
            out[k] = keys[k](v)
        except ValueError:
            raise ConfigError(f"{var}: {k} needs a number, got {v!r}") from None
        if not math.isfinite(out[k]):
            raise ConfigError(f"{var}: {k} needs a finite number, got {v!r}")
        if k in ("loss", "dup", "reorder", "corrupt") and not 0.0 <= out[k] <= 1.0:
            raise ConfigError(f"{var}: {k} is a probability between 0 and 1, got {v}")
        if k == "delay_ms" and out[k] < 0:
            raise ConfigError(f"{var}: delay_ms cannot be negative")
    return out


@dataclass
class StackConfig:
    """How to bring a stack up. Environment variables (FASTLOOP_<FIELD>) override fields."""
    iface: str = "tap"
    address: str = DEFAULT_ADDRESS            # our address, CIDR
    gateway: str | None = None                # default route; None: connected subnet only
    tap_peer: str | None = DEFAULT_TAP_PEER   # kernel side of a tap (same subnet); None: leave it
    mtu: int | None = None                    # None: the device's MTU (memif: 1500); above
                                              # it only on memif and ring ports (see README)
    mac: str | None = None                    # None: the device's address
    eal_args: list = field(default_factory=list)
    pcap: str | None = None                   # write every frame in and out to this file
    faults: str | dict | None = None          # fault injector, see parse_faults
    mempool_size: int = 16383
    checksum_offload: bool = True             # use the PMD's checksum offloads when it has them
    loopback: bool = False                    # 127.0.0.0/8 served by the userspace stack
    arp_timeout: float = 60.0                 # seconds an ARP entry stays valid
    arp_queue: int = 16                       # frames held per unresolved neighbour
    arp_queue_total: int = 256                # ... and for all unresolved neighbours together
    tcp: bool = True                          # attach the TCP layer (segments to closed ports: RST)
    tcp_congestion: str = "cubic"             # or "newreno"
    tcp_sndbuf: int = 262144                  # bytes per connection (SO_SNDBUF) at first
    tcp_rcvbuf: int = 262144                  # bytes per connection (SO_RCVBUF): the window
    tcp_sndbuf_max: int = 4 << 20             # what a fast flow's buffers grow to (as Linux's
    tcp_rcvbuf_max: int = 4 << 20             # tcp_wmem/tcp_rmem autotuning); = the above: fixed
    tcp_delayed_ack: float = 0.04             # seconds (RFC 1122 §4.2.3.2: at most 0.5)
    tcp_time_wait: float = 60.0               # seconds, 2*MSL
    tcp_time_wait_max: int = 65536            # TIME-WAIT entries at most (then closed at once)
    tcp_syncookies: bool = True               # when a listener's SYN backlog is full
    tcp_reassembly_mbufs: int | None = None   # out-of-order segments held by all connections
                                              # together; None: a quarter of mempool_size
    idle: str = "adaptive"                    # the event loop when idle: adaptive | busy-poll
    udp: bool = True                          # attach the UDP layer (datagrams to closed ports:
                                              # ICMP port unreachable either way)
    udp_rcvbuf: int = 212992                  # bytes an endpoint holds while reading is paused

    ENV = {"iface": "FASTLOOP_IFACE", "address": "FASTLOOP_ADDRESS",
           "gateway": "FASTLOOP_GATEWAY", "mtu": "FASTLOOP_MTU",
           "eal_args": "FASTLOOP_EAL_ARGS", "pcap": "FASTLOOP_PCAP",
           "faults": "FASTLOOP_FAULTS", "tap_peer": "FASTLOOP_TAP_PEER",
           "mac": "FASTLOOP_MAC", "loopback": "FASTLOOP_LOOPBACK",
           "mempool_size": "FASTLOOP_MEMPOOL_SIZE", "idle": "FASTLOOP_IDLE"}

    @classmethod
    def from_env(cls, env=None, **overrides) -> "StackConfig":
        """Defaults, then `overrides`, then the environment; validated."""
        env = os.environ if env is None else env
        cfg = cls(**overrides)
        for name, var in cls.ENV.items():
            if var in env:
                setattr(cfg, name, _convert(name, var, env[var]))
        cfg.validate()
        return cfg

    def validate(self) -> "StackConfig":
        self.iface_spec()
        self.interface()
        self.gateway_address()
        self.fault_params()
        self.tap_peer_address()
        if self.mtu is not None and not MIN_MTU <= int(self.mtu) <= MAX_MTU:
            raise ConfigError(f"FASTLOOP_MTU={self.mtu}: the MTU is a number from {MIN_MTU} "
                              f"to {MAX_MTU}")
        if self.mac is not None:
            if not re.fullmatch(r"([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}", self.mac):
                raise ConfigError(f"FASTLOOP_MAC={self.mac!r}: a MAC looks like 02:00:00:00:00:01")
            if int(self.mac[:2], 16) & 1 or self.mac == "00:00:00:00:00:00":
                raise ConfigError(f"FASTLOOP_MAC={self.mac!r}: our own address must be a non-zero "
                                  "unicast MAC (even first byte), e.g. 02:00:00:00:00:01")
        if self.tcp_congestion not in ("cubic", "newreno"):
            raise ConfigError(f"tcp_congestion={self.tcp_congestion!r}: 'cubic' or 'newreno'")
        if not 0 < float(self.tcp_delayed_ack) <= 0.5:
            raise ConfigError("tcp_delayed_ack: seconds, above 0 and at most 0.5 (RFC 1122)")
        if not 4096 <= int(self.tcp_sndbuf) <= (1 << 30) or not 4096 <= int(self.tcp_rcvbuf) <= (1 << 30):
            raise ConfigError("tcp_sndbuf/tcp_rcvbuf: bytes, from 4096 to 2**30")
        if not int(self.tcp_sndbuf) <= int(self.tcp_sndbuf_max) <= (1 << 30) or \
                not int(self.tcp_rcvbuf) <= int(self.tcp_rcvbuf_max) <= (1 << 30):
            raise ConfigError("tcp_sndbuf_max/tcp_rcvbuf_max: bytes, from tcp_sndbuf/tcp_rcvbuf "
                              "(no growth) to 2**30")
        if not 0 <= int(self.tcp_time_wait_max) <= (1 << 24):
            raise ConfigError(f"tcp_time_wait_max={self.tcp_time_wait_max}: connections, from 0 "
                              "(none kept in TIME-WAIT) to 16777216")
        if self.idle not in IDLE_POLICIES:
            raise ConfigError(f"FASTLOOP_IDLE={self.idle!r}: one of {', '.join(IDLE_POLICIES)} "
                              "(busy-poll spins one core for the lowest latency; adaptive spins "
                              "briefly, then sleeps)")
        if not 4096 <= int(self.udp_rcvbuf) <= (1 << 30):
            raise ConfigError("udp_rcvbuf: bytes, from 4096 to 2**30")
        if not 1023 <= int(self.mempool_size) <= (1 << 24):
            raise ConfigError(f"FASTLOOP_MEMPOOL_SIZE={self.mempool_size}: a number of mbufs "
                              "from 1023 to 16777216")
        if not 1 <= int(self.arp_queue) <= 64:
            raise ConfigError(f"arp_queue={self.arp_queue}: frames per neighbour, 1 to 64")
        if not int(self.arp_queue) <= int(self.arp_queue_total) <= 65536:
            raise ConfigError(f"arp_queue_total={self.arp_queue_total}: frames, from arp_queue "
                              f"({self.arp_queue}) to 65536")
        if (self.tcp_reassembly_mbufs is not None
                and not 0 <= int(self.tcp_reassembly_mbufs) <= int(self.mempool_size)):
            raise ConfigError(f"tcp_reassembly_mbufs={self.tcp_reassembly_mbufs}: mbufs, from 0 "
                              f"to mempool_size ({self.mempool_size})")
        return self

    def reassembly_mbufs(self) -> int:
        """The out-of-order budget: a quarter of the pool by default, so hostile or lossy
        connections can never take the mbufs that receiving and sending need."""
        if self.tcp_reassembly_mbufs is not None:
            return int(self.tcp_reassembly_mbufs)
        return int(self.mempool_size) // 4

    def iface_spec(self) -> IfaceSpec:
        return parse_iface(self.iface)

    def interface(self) -> ipaddress.IPv4Interface:
        try:
            itf = ipaddress.IPv4Interface(self.address)
        except ValueError:
            raise ConfigError(f"FASTLOOP_ADDRESS={self.address!r}: an IPv4 address in CIDR form, "
                              "e.g. 10.77.0.2/24") from None
        if "/" not in str(self.address):
            raise ConfigError(f"FASTLOOP_ADDRESS={self.address!r}: give the prefix length too, "
                              "e.g. 10.77.0.2/24")
        net = itf.network
        if net.prefixlen <= 30 and itf.ip in (net.network_address, net.broadcast_address):
            raise ConfigError(f"FASTLOOP_ADDRESS={self.address!r}: {itf.ip} is the network or "
                              f"broadcast address of {net}; use a host address, e.g. "
                              f"{net.network_address + 2}/{net.prefixlen}")
        return itf

    def gateway_address(self):
        if self.gateway in (None, ""):
            return None
        gw = _ip("gateway", "FASTLOOP_GATEWAY", self.gateway)
        _on_subnet("FASTLOOP_GATEWAY", "the gateway", gw, self.interface())
        return gw

    def tap_peer_address(self):
        """The kernel side of a tap: on our subnet, not our own address. Ignored off tap."""
        if self.tap_peer in (None, ""):
            return None
        peer = _ip("tap_peer", "FASTLOOP_TAP_PEER", self.tap_peer)
        if self.iface_spec().kind == "tap":
            _on_subnet("FASTLOOP_TAP_PEER", "the tap's kernel-side address", peer,
                       self.interface())
        return peer

    def fault_params(self) -> dict:
        if not self.faults:
            return {}
        if isinstance(self.faults, dict):
            return parse_faults(",".join(f"{k}={v}" for k, v in self.faults.items()), "faults")
        return parse_faults(self.faults)

    def replace(self, **changes) -> "StackConfig":
        return dataclasses.replace(self, **changes)


def _ip(name, var, value):
    try:
        return ipaddress.IPv4Address(value)
    except ValueError:
        raise ConfigError(f"{var}={value!r}: an IPv4 address, e.g. 10.77.0.1") from None


def _on_subnet(var, what, addr, itf):
    net = itf.network
    if addr not in net or addr == itf.ip or (
            net.prefixlen <= 30 and addr in (net.network_address, net.broadcast_address)):
        hosts = (h for h in net.hosts() if h != itf.ip)
        example = next(hosts, None)
        raise ConfigError(f"{var}={addr}: {what} must be another host on the connected subnet "
                          f"{net} (we are {itf.ip})"
                          + (f", e.g. {example}" if example is not None else ""))


_INT_RANGES = {"mtu": f"a whole number from {MIN_MTU} to {MAX_MTU}, or empty for the device's "
                      "MTU",
               "mempool_size": "a whole number of mbufs from 1023 to 16777216"}


def _convert(name, var, raw):
    if name == "eal_args":
        try:
            return shlex.split(raw)
        except ValueError as e:
            raise ConfigError(f"{var}={raw!r}: {e}; EAL arguments are split like a shell "
                              "command line, e.g. '-l 0 --log-level=eal:debug'") from None
    if name == "mtu" and raw.strip() == "":
        return None
    if name in ("mtu", "mempool_size"):
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{var}={raw!r}: {_INT_RANGES[name]}") from None
    if name == "loopback":
        if raw.lower() not in ("0", "1", "yes", "no", "true", "false", ""):
            raise ConfigError(f"{var}={raw!r}: 1/0, yes/no or true/false")
        return raw.lower() in ("1", "yes", "true")
    if name in ("gateway", "tap_peer", "pcap", "faults", "mac") and raw == "":
        return None
    return raw
