"""StackConfig.from_env and parse_iface: every FASTLOOP_* variable, good and bad."""
import pytest

from fastloop.config import (
    DEFAULT_ADDRESS, DEFAULT_TAP_NAME, DEFAULT_TAP_PEER, IFACE_FORMS, ConfigError, IfaceSpec,
    StackConfig, parse_faults, parse_iface)


def env_cfg(**env):
    return StackConfig.from_env(env)


def env_error(**env) -> str:
    with pytest.raises(ConfigError) as info:
        StackConfig.from_env(env)
    return str(info.value)


# ------------------------------------------------------------------------------ defaults

def test_empty_environment_gives_defaults():
    cfg = env_cfg()
    assert cfg.iface == "tap"
    assert cfg.iface_spec() == IfaceSpec("tap", DEFAULT_TAP_NAME)
    assert cfg.address == DEFAULT_ADDRESS
    assert str(cfg.interface()) == "10.77.0.2/24"
    assert cfg.gateway is None and cfg.gateway_address() is None
    assert cfg.tap_peer == DEFAULT_TAP_PEER
    assert cfg.mtu is None and cfg.mac is None and cfg.pcap is None
    assert cfg.eal_args == [] and cfg.fault_params() == {}
    assert cfg.loopback is False
    assert cfg.mempool_size == 16383


def test_from_env_reads_os_environ_when_no_env_given(monkeypatch):
    for var in StackConfig.ENV.values():
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("FASTLOOP_MTU", "1400")
    assert StackConfig.from_env().mtu == 1400


def test_environment_overrides_keyword_overrides():
    cfg = StackConfig.from_env({"FASTLOOP_MTU": "1280"}, mtu=9000, address="10.9.0.5/16",
                               iface="memif:/run/m.sock")
    assert cfg.mtu == 1280                    # the environment wins
    assert cfg.address == "10.9.0.5/16"       # an override without a variable stays


def test_every_field_in_env_table_is_a_field():
    fields = set(StackConfig.__dataclass_fields__)
    assert set(StackConfig.ENV) <= fields
    assert all(v == "FASTLOOP_" + k.upper() for k, v in StackConfig.ENV.items())


# ------------------------------------------------------------------------------ FASTLOOP_IFACE

@pytest.mark.parametrize("raw, spec", [
    ("tap", IfaceSpec("tap", "fl0")),
    ("tap:", IfaceSpec("tap", "fl0")),
    ("tap:veth-x.1", IfaceSpec("tap", "veth-x.1")),
    ("memif:/run/fl.sock", IfaceSpec("memif", "/run/fl.sock")),
    ("memif:/run/fl.sock,role=server,id=3",
     IfaceSpec("memif", "/run/fl.sock", (("role", "server"), ("id", "3")))),
    ("af_packet:eth0", IfaceSpec("af_packet", "eth0")),
    ("pci:0000:01:00.0", IfaceSpec("pci", "0000:01:00.0")),
    ("pci:03:00.1", IfaceSpec("pci", "03:00.1")),
    ("vdev:net_null0,size=64", IfaceSpec("vdev", "net_null0,size=64")),
])
def test_iface_good(raw, spec):
    assert env_cfg(FASTLOOP_IFACE=raw).iface_spec() == spec


@pytest.mark.parametrize("raw, why", [
    ("bogus", "unknown interface kind"),
    ("", "unknown interface kind"),
    ("tap:this-name-is-far-too-long", "1-15"),
    ("tap:bad name", "1-15"),
    ("memif:relative.sock", "absolute socket path"),
    ("memif:/run/fl.sock,colour=red", "unknown memif option"),
    ("memif:/run/fl.sock,role=master", "server or client"),
    ("memif:/run/fl.sock,id=abc", "whole number"),
    ("memif:/run/fl.sock,zero-copy=maybe", "yes or no"),
    ("af_packet:", "kernel interface name"),
    ("pci:01:00", "0000:01:00.0"),
    ("vdev:", "DPDK devargs"),
])
def test_iface_bad_names_variable_and_lists_forms(raw, why):
    msg = env_error(FASTLOOP_IFACE=raw)
    assert msg.startswith(f"FASTLOOP_IFACE={raw!r}")
    assert why in msg
    for form in IFACE_FORMS:
        assert form in msg


def test_parse_iface_names_the_given_variable():
    with pytest.raises(ConfigError, match=r"^PEER_IFACE='nope'"):
        parse_iface("nope", var="PEER_IFACE")


@pytest.mark.parametrize("raw, index, devargs", [
    ("tap", 0, "net_tap0,iface=fl0"),
    ("tap:fl7", 3, "net_tap3,iface=fl7"),
    ("memif:/run/fl.sock", 1, "net_memif1,socket=/run/fl.sock"),
    ("memif:/run/fl.sock,role=client,id=2", 0, "net_memif0,socket=/run/fl.sock,role=client,id=2"),
    ("af_packet:veth1", 2, "net_af_packet2,iface=veth1"),
    ("pci:0000:01:00.0", 5, "0000:01:00.0"),
    ("vdev:net_null0,size=64", 9, "net_null0,size=64"),
])
def test_devargs_for_each_kind(raw, index, devargs):
    assert parse_iface(raw).devargs(index) == devargs


def test_a_memif_gets_ring_buffers_for_its_frames():
    """Jumbo frames: each memif ring buffer holds one whole frame (bsize), unless the spec
    says otherwise; other kinds have no such argument."""
    assert parse_iface("memif:/run/fl.sock,role=client").devargs(0, buffer_size=9216) == \
        "net_memif0,socket=/run/fl.sock,role=client,bsize=9216"
    assert parse_iface("memif:/run/fl.sock").devargs(0, buffer_size=2048) == \
        "net_memif0,socket=/run/fl.sock"
    assert parse_iface("memif:/run/fl.sock,bsize=4096").devargs(0, buffer_size=9216) == \
        "net_memif0,socket=/run/fl.sock,bsize=4096"
    assert parse_iface("tap:fl7").devargs(3, buffer_size=9216) == "net_tap3,iface=fl7"


def test_buffer_limits_grow_from_the_initial_sizes():
    assert StackConfig().tcp_rcvbuf_max >= StackConfig().tcp_rcvbuf
    with pytest.raises(ConfigError, match="tcp_rcvbuf_max"):
        StackConfig(tcp_rcvbuf=1 << 20, tcp_rcvbuf_max=1 << 19).validate()
    StackConfig(tcp_sndbuf=1 << 20, tcp_sndbuf_max=1 << 20).validate()   # fixed: fine


def test_kernel_ifname_only_for_kernel_backed_kinds():
    assert parse_iface("tap:fl3").kernel_ifname == "fl3"
    assert parse_iface("af_packet:eth1").kernel_ifname == "eth1"
    assert parse_iface("memif:/run/x.sock").kernel_ifname is None
    assert parse_iface("pci:0000:01:00.0").kernel_ifname is None


# ------------------------------------------------------------------------------ FASTLOOP_ADDRESS

def test_address_good():
    cfg = env_cfg(FASTLOOP_ADDRESS="192.168.50.2/24", FASTLOOP_TAP_PEER="192.168.50.1")
    assert str(cfg.interface().ip) == "192.168.50.2"
    assert cfg.interface().network.prefixlen == 24


@pytest.mark.parametrize("raw, why", [
    ("10.77.0.2", "prefix length"),
    ("10.77.0.300/24", "CIDR"),
    ("10.77.0.2/33", "CIDR"),
    ("fe80::1/64", "CIDR"),
    ("localhost", "CIDR"),
    ("10.77.0.0/24", "network or broadcast"),
    ("10.77.0.255/24", "network or broadcast"),
])
def test_address_bad(raw, why):
    msg = env_error(FASTLOOP_ADDRESS=raw)
    assert msg.startswith(f"FASTLOOP_ADDRESS={raw!r}")
    assert why in msg
    assert "10.77.0.2/24" in msg                     # an example of the accepted form


# ------------------------------------------------------------------------------ FASTLOOP_GATEWAY

def test_gateway_good_and_empty():
    assert str(env_cfg(FASTLOOP_GATEWAY="10.77.0.1").gateway_address()) == "10.77.0.1"
    assert env_cfg(FASTLOOP_GATEWAY="").gateway is None


def test_gateway_off_subnet_names_the_subnet():
    msg = env_error(FASTLOOP_GATEWAY="10.78.0.1")
    assert msg.startswith("FASTLOOP_GATEWAY=10.78.0.1")
    assert "10.77.0.0/24" in msg


@pytest.mark.parametrize("raw", ["10.77.0.2", "10.77.0.255", "10.77.0.0"])
def test_gateway_cannot_be_us_or_the_subnet_broadcast(raw):
    msg = env_error(FASTLOOP_GATEWAY=raw)
    assert msg.startswith(f"FASTLOOP_GATEWAY={raw}") and "another host" in msg


def test_gateway_not_an_address():
    msg = env_error(FASTLOOP_GATEWAY="router")
    assert msg.startswith("FASTLOOP_GATEWAY='router'") and "IPv4 address" in msg


# ------------------------------------------------------------------------------ FASTLOOP_TAP_PEER

def test_tap_peer_good_and_empty():
    assert env_cfg(FASTLOOP_TAP_PEER="10.77.0.9").tap_peer == "10.77.0.9"
    assert env_cfg(FASTLOOP_TAP_PEER="").tap_peer is None


def test_tap_peer_must_follow_a_changed_address_on_tap():
    # The default peer 10.77.0.1 is not on 192.168.50.0/24: the kernel side would be unreachable.
    msg = env_error(FASTLOOP_ADDRESS="192.168.50.2/24")
    assert msg.startswith("FASTLOOP_TAP_PEER=10.77.0.1") and "192.168.50.1" in msg


def test_tap_peer_ignored_off_tap():
    cfg = env_cfg(FASTLOOP_ADDRESS="192.168.50.2/24", FASTLOOP_IFACE="memif:/run/x.sock")
    assert cfg.tap_peer == DEFAULT_TAP_PEER


def test_tap_peer_cannot_be_our_address():
    assert "another host" in env_error(FASTLOOP_TAP_PEER="10.77.0.2")


def test_tap_peer_not_an_address():
    assert env_error(FASTLOOP_TAP_PEER="x").startswith("FASTLOOP_TAP_PEER='x'")


# ------------------------------------------------------------------------------ FASTLOOP_MTU

@pytest.mark.parametrize("raw, mtu", [("576", 576), ("1500", 1500), ("9000", 9000),
                                      ("65000", 65000), ("", None)])
def test_mtu_good(raw, mtu):
    assert env_cfg(FASTLOOP_MTU=raw).mtu == mtu


@pytest.mark.parametrize("raw", ["575", "65001", "0", "-1500", "1500.0", "jumbo"])
def test_mtu_bad(raw):
    msg = env_error(FASTLOOP_MTU=raw)
    assert msg.startswith("FASTLOOP_MTU=")
    assert "576 to 65000" in msg


# ------------------------------------------------------------------------------ FASTLOOP_FAULTS

def test_faults_good():
    cfg = env_cfg(FASTLOOP_FAULTS="loss=0.02, dup=0.01,reorder=0.02,corrupt=0.005,delay_ms=5,seed=7")
    assert cfg.fault_params() == {"loss": 0.02, "dup": 0.01, "reorder": 0.02,
                                  "corrupt": 0.005, "delay_ms": 5.0, "seed": 7}
    assert isinstance(cfg.fault_params()["seed"], int)
    assert env_cfg(FASTLOOP_FAULTS="").fault_params() == {}


def test_faults_dict_override():
    assert StackConfig(faults={"loss": 0.5}).validate().fault_params() == {"loss": 0.5}
    with pytest.raises(ConfigError, match="probability"):
        StackConfig(faults={"loss": 2}).validate()


def test_faults_bad_key_lists_accepted_keys():
    msg = env_error(FASTLOOP_FAULTS="loss=0.1,jitter=3")
    assert msg.startswith("FASTLOOP_FAULTS") and "'jitter=3'" in msg
    for key in ("loss", "dup", "reorder", "corrupt", "delay_ms", "seed"):
        assert f"{key}=N" in msg


def test_faults_item_without_value():
    assert "unknown item 'loss'" in env_error(FASTLOOP_FAULTS="loss")


@pytest.mark.parametrize("raw", ["loss=1.5", "dup=-0.1", "reorder=2", "corrupt=1.0001"])
def test_faults_probability_out_of_range(raw):
    msg = env_error(FASTLOOP_FAULTS=raw)
    assert msg.startswith("FASTLOOP_FAULTS") and "between 0 and 1" in msg


def test_faults_negative_delay():
    assert "delay_ms cannot be negative" in env_error(FASTLOOP_FAULTS="delay_ms=-1")


@pytest.mark.parametrize("raw, key", [("loss=lots", "loss"), ("seed=1.5", "seed"),
                                      ("delay_ms=", "delay_ms")])
def test_faults_not_a_number(raw, key):
    msg = env_error(FASTLOOP_FAULTS=raw)
    assert msg.startswith("FASTLOOP_FAULTS") and f"{key} needs a number" in msg


@pytest.mark.parametrize("raw", ["delay_ms=nan", "delay_ms=inf", "loss=nan"])
def test_faults_not_finite(raw):
    # nan slipped through every range comparison (nan < 0 is False) before this was checked
    msg = env_error(FASTLOOP_FAULTS=raw)
    assert msg.startswith("FASTLOOP_FAULTS")


def test_parse_faults_names_the_given_variable():
    with pytest.raises(ConfigError, match="^OTHER: unknown item"):
        parse_faults("x=1", var="OTHER")


# ------------------------------------------------------------------------------ FASTLOOP_EAL_ARGS

@pytest.mark.parametrize("raw, args", [
    ("", []),
    ("-l 0", ["-l", "0"]),
    ("--log-level=eal:debug  -m 512", ["--log-level=eal:debug", "-m", "512"]),
    ("--vdev 'net_null0,size=64' --file-prefix=\"my run\"",
     ["--vdev", "net_null0,size=64", "--file-prefix=my run"]),
    (r"--huge-dir=/mnt/huge\ pages", ["--huge-dir=/mnt/huge pages"]),
])
def test_eal_args_split_like_a_shell(raw, args):
    assert env_cfg(FASTLOOP_EAL_ARGS=raw).eal_args == args


def test_eal_args_unbalanced_quote_is_a_config_error():
    # shlex's bare ValueError("No closing quotation") used to escape without the variable's name
    msg = env_error(FASTLOOP_EAL_ARGS='--vdev "net_null0')
    assert msg.startswith("FASTLOOP_EAL_ARGS=") and "No closing quotation" in msg


# ------------------------------------------------------------------------------ FASTLOOP_LOOPBACK

@pytest.mark.parametrize("raw, value", [("1", True), ("yes", True), ("TRUE", True), ("true", True),
                                        ("0", False), ("no", False), ("False", False), ("", False)])
def test_loopback_good(raw, value):
    assert env_cfg(FASTLOOP_LOOPBACK=raw).loopback is value


@pytest.mark.parametrize("raw", ["2", "on", "y", " 1"])
def test_loopback_bad(raw):
    msg = env_error(FASTLOOP_LOOPBACK=raw)
    assert msg.startswith(f"FASTLOOP_LOOPBACK={raw!r}") and "yes/no" in msg and "1/0" in msg


# ------------------------------------------------------------------------------ the rest

def test_pcap():
    assert env_cfg(FASTLOOP_PCAP="/tmp/fl.pcap").pcap == "/tmp/fl.pcap"
    assert env_cfg(FASTLOOP_PCAP="").pcap is None


@pytest.mark.parametrize("raw", ["02:00:00:00:00:01", "aa:BB:cc:00:11:22"])
def test_mac_good(raw):
    assert env_cfg(FASTLOOP_MAC=raw).mac == raw


@pytest.mark.parametrize("raw, why", [
    ("02:00:00:00:01", "looks like"),
    ("02-00-00-00-00-01", "looks like"),
    ("01:00:5e:00:00:01", "unicast"),            # multicast bit set
    ("ff:ff:ff:ff:ff:ff", "unicast"),
    ("00:00:00:00:00:00", "non-zero"),
])
def test_mac_bad(raw, why):
    msg = env_error(FASTLOOP_MAC=raw)
    assert msg.startswith(f"FASTLOOP_MAC={raw!r}") and why in msg
    assert "02:00:00:00:00:01" in msg


@pytest.mark.parametrize("raw, size", [("1023", 1023), ("65535", 65535), ("16777216", 1 << 24)])
def test_mempool_size_good(raw, size):
    assert env_cfg(FASTLOOP_MEMPOOL_SIZE=raw).mempool_size == size


@pytest.mark.parametrize("raw", ["1022", "16777217", "many", "1e6"])
def test_mempool_size_bad(raw):
    msg = env_error(FASTLOOP_MEMPOOL_SIZE=raw)
    assert msg.startswith("FASTLOOP_MEMPOOL_SIZE=") and "1023 to 16777216" in msg


def test_replace_keeps_other_fields():
    cfg = env_cfg(FASTLOOP_MTU="1400")
    other = cfg.replace(address="10.77.0.3/24")
    assert other.mtu == 1400 and other.address == "10.77.0.3/24" and cfg.address == DEFAULT_ADDRESS


def test_arp_reassembly_and_time_wait_bounds_are_validated():
    assert StackConfig().validate().reassembly_mbufs() == 16383 // 4
    assert StackConfig(tcp_time_wait_max=0).validate().tcp_time_wait_max == 0
    assert StackConfig(mempool_size=4095, tcp_reassembly_mbufs=0).validate().reassembly_mbufs() == 0
    for bad, match in ((dict(arp_queue=0), "arp_queue=0"),
                       (dict(arp_queue=16, arp_queue_total=8), "arp_queue_total=8"),
                       (dict(arp_queue_total=70000), "arp_queue_total=70000"),
                       (dict(tcp_reassembly_mbufs=20000), "tcp_reassembly_mbufs=20000"),
                       (dict(tcp_reassembly_mbufs=-1), "tcp_reassembly_mbufs=-1"),
                       (dict(tcp_time_wait_max=-1), "tcp_time_wait_max=-1"),
                       (dict(tcp_time_wait_max=1 << 25), "tcp_time_wait_max=33554432")):
        with pytest.raises(ConfigError, match=match):
            StackConfig(**bad).validate()
