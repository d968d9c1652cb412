"""`python -m fastloop doctor`: is this machine ready to run fastloop, and if not, what to do.

Each check is a small function returning `(status, message, fix)`, where status is
"ok", "warn" or "FAIL" and fix is what to do about it ("" when there is nothing to do).
Checks read their inputs through keyword arguments defaulting to the real machine
(/proc, /dev, pkg-config, the built extension), so tests can hand them a fake one.
A FAIL is something fastloop needs; a warn is something it can do without.
"""
from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
from typing import NamedTuple

OK, WARN, FAIL = "ok", "warn", "FAIL"

MIN_PYTHON = (3, 10)
MIN_DPDK = (22, 11)
REQUIRED_PMDS = ("net_tap", "net_memif", "net_ring", "net_af_packet")
PMD_GLOBS = ("/usr/lib/*/dpdk/pmds-*", "/usr/lib64/dpdk/pmds-*", "/usr/local/lib/*/dpdk/pmds-*",
             "/usr/local/lib64/dpdk/pmds-*")
TUN_PATH = "/dev/net/tun"
MEMINFO = "/proc/meminfo"
PROC_STATUS = "/proc/self/status"
CAP_NET_ADMIN = 12
CAP_SYS_ADMIN = 21
DPDK_INSTALL = "apt-get install dpdk libdpdk-dev pkg-config"
BUILD = "python setup.py build_ext --inplace"


class Result(NamedTuple):
    name: str
    status: str
    message: str
    fix: str

    def line(self) -> str:
        text = f"{self.status:<4} {self.name:<10} {self.message}"
        if self.fix and self.status != OK:
            text += f" -> fix: {self.fix}"
        return text


# ---------------------------------------------------------------------------------- inputs

def pkg_config(*args) -> str | None:
    """`pkg-config ARGS libdpdk`, stripped; None when pkg-config or libdpdk is missing."""
    try:
        out = subprocess.run(["pkg-config", *args, "libdpdk"], capture_output=True,
                             text=True, check=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return out.strip()


def linked_dpdk_version() -> str:
    """The DPDK the built extension loads ('DPDK 22.11.11'); ImportError if not built."""
    from fastloop.dev.eal import dpdk_version
    return dpdk_version()


def _version_tuple(text: str) -> tuple:
    """'DPDK 22.11.11' or '22.11.11' -> (22, 11, 11); () when unreadable."""
    text = text.strip()
    if text.upper().startswith("DPDK"):
        text = text[4:].strip()
    m = re.match(r"\d+(?:\.\d+)*", text)
    return tuple(int(p) for p in m.group().split(".")) if m else ()


def _meminfo(path: str) -> dict:
    out = {}
    with open(path) as f:
        for line in f:
            key, _, value = line.partition(":")
            fields = value.split()
            if fields and fields[0].isdigit():
                out[key.strip()] = int(fields[0])
    return out


# ---------------------------------------------------------------------------------- checks

def check_python(version_info=None):
    v = tuple(version_info or sys.version_info)[:3]
    have = ".".join(map(str, v))
    need = ".".join(map(str, MIN_PYTHON))
    if v[:2] >= MIN_PYTHON:
        return OK, f"Python {have}", ""
    return FAIL, f"Python {have} is too old, fastloop needs {need} or newer", \
        f"run fastloop with Python {need}+"


def check_dpdk_pkgconfig(version=...):
    """The DPDK that pkg-config finds (what the extension builds against)."""
    if version is ...:
        version = pkg_config("--modversion")
    if not version:
        return FAIL, "pkg-config finds no libdpdk (needed to build the extension)", \
            DPDK_INSTALL
    if _version_tuple(version)[:2] < MIN_DPDK:
        return FAIL, f"pkg-config finds DPDK {version}, fastloop needs 22.11 or newer", \
            f"install DPDK 22.11+ ({DPDK_INSTALL}) and rebuild: {BUILD}"
    return OK, f"pkg-config finds DPDK {version}", ""


def check_dpdk_linked(linked=..., pkgconfig=...):
    """The DPDK the built extension actually loads, and whether it matches pkg-config's."""
    if linked is ...:
        try:
            linked = linked_dpdk_version()
        except ImportError as e:
            return FAIL, f"the fastloop extension is not built or cannot load ({e})", BUILD
    if pkgconfig is ...:
        pkgconfig = pkg_config("--modversion")
    have = _version_tuple(linked)
    if have[:2] < MIN_DPDK:
        return FAIL, f"the extension runs on {linked}, fastloop needs 22.11 or newer", \
            f"install DPDK 22.11+ and rebuild: {BUILD}"
    if pkgconfig and _version_tuple(pkgconfig)[:2] != have[:2]:
        return FAIL, (f"the extension runs on {linked} but pkg-config finds DPDK {pkgconfig}: "
                      "built against another DPDK"), f"rebuild: {BUILD}"
    if pkgconfig and _version_tuple(pkgconfig) != have:
        return OK, f"extension runs on {linked} (pkg-config: {pkgconfig}, same ABI)", ""
    return OK, f"extension runs on {linked}", ""


def find_pmds_dir(pmdsdir=..., globs=None):
    """DPDK's plugin directory: pkg-config's pmdsdir, else the newest /usr/lib/*/dpdk/pmds-*."""
    if pmdsdir is ...:
        pmdsdir = pkg_config("--variable=pmdsdir")
    if pmdsdir and os.path.isdir(pmdsdir):
        return pmdsdir
    found = sorted({d for g in (globs or PMD_GLOBS) for d in glob.glob(g) if os.path.isdir(d)},
                   key=lambda d: _version_tuple(d.rsplit("pmds-", 1)[-1]))
    return found[-1] if found else None


def check_pmds(pmds_dir=..., required=REQUIRED_PMDS):
    """The poll-mode drivers fastloop uses, present as plugins EAL loads at start."""
    if pmds_dir is ...:
        pmds_dir = find_pmds_dir()
    if not pmds_dir:
        return FAIL, "no DPDK plugin directory (pmds-*) found", DPDK_INSTALL
    missing = [p for p in required if not glob.glob(os.path.join(pmds_dir, f"librte_{p}.so*"))]
    if missing:
        pkgs = " ".join(f"librte-{p.replace('_', '-')}<ABI>" for p in missing)
        return FAIL, f"{pmds_dir} lacks {', '.join(missing)}", \
            f"apt-get install dpdk (Debian packages {pkgs})"
    return OK, f"{', '.join(required)} in {pmds_dir}", ""


def check_tun(path=None, needed=True):
    """/dev/net/tun, which net_tap opens to create the tap interface."""
    path = path or TUN_PATH
    bad = FAIL if needed else WARN
    why = "" if needed else " (only the tap interface needs it)"
    if not os.path.exists(path):
        return bad, f"{path} is missing{why}", \
            "modprobe tun, or run the container with --device /dev/net/tun"
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError as e:
        return bad, f"{path} cannot be opened: {e.strerror}{why}", \
            "run as root, or give the container --device /dev/net/tun --cap-add NET_ADMIN"
    os.close(fd)
    return OK, f"{path} opens", ""


def check_hugepages(meminfo=None):
    """Hugepages are optional: without them EAL runs with --no-huge (slower, still correct)."""
    meminfo = meminfo or MEMINFO
    try:
        info = _meminfo(meminfo)
    except OSError as e:
        return WARN, f"cannot read {meminfo} ({e.strerror}); fastloop will use --no-huge", ""
    total, free = info.get("HugePages_Total", 0), info.get("HugePages_Free", 0)
    size = info.get("Hugepagesize", 2048)
    reserve = (f"optional, for speed: echo 512 > "
               f"/sys/kernel/mm/hugepages/hugepages-{size}kB/nr_hugepages")
    if total == 0:
        return WARN, "no hugepages reserved; fastloop runs EAL with --no-huge", reserve
    if free == 0:
        return WARN, f"all {total} hugepages in use; fastloop runs EAL with --no-huge", reserve
    return OK, f"{free} of {total} hugepages of {size} kB free", ""


def check_privileges(euid=None, status_path=None):
    """Root, or CAP_NET_ADMIN + CAP_SYS_ADMIN (a tap needs the first, EAL the second).

    Root in a container that dropped these capabilities (Docker's default) is not enough,
    so the effective capability set decides whenever it can be read.
    """
    euid = os.geteuid() if euid is None else euid
    status_path = status_path or PROC_STATUS
    cap_eff = None
    try:
        with open(status_path) as f:
            for line in f:
                if line.startswith("CapEff:"):
                    cap_eff = int(line.split()[1], 16)
    except (OSError, ValueError, IndexError):
        pass
    who = "root" if euid == 0 else f"uid {euid}"
    if cap_eff is None:
        if euid == 0:
            return OK, f"{who} (capabilities unreadable)", ""
        return FAIL, f"running as {who}, capabilities unknown", \
            "run as root (sudo) or grant CAP_NET_ADMIN and CAP_SYS_ADMIN"
    missing = [n for n, bit in (("CAP_NET_ADMIN", CAP_NET_ADMIN), ("CAP_SYS_ADMIN", CAP_SYS_ADMIN))
               if not cap_eff >> bit & 1]
    if not missing:
        return OK, f"{who} with CAP_NET_ADMIN and CAP_SYS_ADMIN", ""
    if euid == 0:
        return FAIL, f"root, but without {' and '.join(missing)} (a container?)", \
            "run the container with --cap-add NET_ADMIN --cap-add SYS_ADMIN (or --privileged)"
    return FAIL, f"running as {who} without {' and '.join(missing)}", \
        ("run as root (sudo python -m fastloop ...), or grant the capabilities: "
         "setcap cap_net_admin,cap_sys_admin+ep <python binary>")


def check_ip_tool(which=None, needed=True):
    """iproute2's `ip`, used to address and bring up the tap's kernel side."""
    path = (which or shutil.which)("ip")
    if path:
        return OK, f"ip (iproute2) at {path}", ""
    why = "needed to configure the tap's kernel side" if needed else "only the tap interface needs it"
    return (FAIL if needed else WARN), f"no `ip` command ({why})", "apt-get install iproute2"


def check_config(env=None):
    """The FASTLOOP_* environment validates into a StackConfig."""
    from fastloop.config import ConfigError, StackConfig
    try:
        cfg = StackConfig.from_env(env)
    except ConfigError as e:
        return FAIL, str(e), "correct or unset that variable"
    spec = cfg.iface_spec()
    parts = [f"iface={spec.kind}:{spec.target}", f"address={cfg.address}"]
    if cfg.gateway:
        parts.append(f"gateway={cfg.gateway}")
    if spec.kind == "tap" and cfg.tap_peer:
        parts.append(f"tap_peer={cfg.tap_peer}")
    if cfg.fault_params():
        parts.append(f"faults={cfg.faults}")
    return OK, "configuration: " + " ".join(parts), ""


def check_probe(config=None):
    """Start EAL for real and open a net_ring pair: proves DPDK, the mempool and a PMD work."""
    from fastloop.config import StackConfig
    try:
        from fastloop.dev.device import DeviceError, ring_pair
        from fastloop.dev.eal import EalError, eal_init
    except ImportError as e:
        return FAIL, f"the fastloop extension is not built or cannot load ({e})", BUILD
    cfg = config or StackConfig()
    try:
        eal = eal_init(int(cfg.mempool_size), cfg.eal_args)
        a, b = ring_pair("doctor", eal=eal)
    except (EalError, DeviceError) as e:
        return FAIL, f"probe failed: {e}", \
            "fix what the message names, then run `python -m fastloop doctor --probe` again"
    try:
        pool = eal.mempool
        msg = (f"EAL up ({' '.join(eal.args[1:])}); ring pair {a.name}/{b.name} "
               f"started; mempool {pool.name}: {pool.size} mbufs of {pool.data_room} B, "
               f"{pool.in_use} in use, {pool.available} available")
    finally:
        a.close()
        b.close()
    return OK, msg, ""


# ---------------------------------------------------------------------------------- runner

def _config_or_none():
    from fastloop.config import ConfigError, StackConfig
    try:
        return StackConfig.from_env()
    except ConfigError:
        return None


def checks(probe=False):
    """The checks to run, as (name, zero-argument callable)."""
    cfg = _config_or_none()
    # tun and `ip` are needed for a tap (the default); with another valid interface they
    # are only worth a warning. An invalid configuration is its own FAIL below.
    tap = cfg is None or cfg.iface_spec().kind == "tap"
    out = [
        ("python", check_python),
        ("dpdk", check_dpdk_pkgconfig),
        ("extension", check_dpdk_linked),
        ("pmds", check_pmds),
        ("tun", lambda: check_tun(needed=tap)),
        ("hugepages", check_hugepages),
        ("privileges", check_privileges),
        ("ip", lambda: check_ip_tool(needed=tap)),
        ("config", check_config),
    ]
    if probe:
        out.append(("probe", lambda: check_probe(cfg)))
    return out


def run_checks(probe=False):
    """Run every check: (ok, [Result, ...]); ok is False when any check FAILed."""
    results = []
    for name, fn in checks(probe):
        try:
            status, message, fix = fn()
        except Exception as e:          # a broken check is a finding, not a crash
            status, message, fix = FAIL, f"check crashed: {type(e).__name__}: {e}", \
                "report this as a fastloop bug"
        results.append(Result(name, status, message, fix))
    return all(r.status != FAIL for r in results), results


def main(args=None) -> int:
    ok, results = run_checks(probe=bool(getattr(args, "probe", False)))
    for r in results:
        print(r.line())
    fails = sum(r.status == FAIL for r in results)
    warns = sum(r.status == WARN for r in results)
    print(f"{'ready' if ok else 'NOT ready'}: {fails} failed, {warns} warnings", file=sys.stderr)
    return 0 if ok else 1
