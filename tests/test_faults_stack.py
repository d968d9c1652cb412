"""Stacks over a net_ring pair with the fault injector in the stack (config `faults`):
total loss, seeded reproducible loss, and corruption caught by the checksums."""
import pytest
from scapy.layers.l2 import ARP, Ether

from fastloop.config import StackConfig
from fastloop.dev.device import ring_pair
from fastloop.dev.faults import FaultInjector
from fastloop.stack import Stack

A, B = "10.9.7.1", "10.9.7.2"


class Pair:
    """s1 (A) and s2 (B) over a ring pair; `faults1`/`faults2` go through StackConfig."""

    def __init__(self, faults1=None, faults2=None, env1=None):
        a, b = ring_pair("flt")
        try:
            if env1 is not None:
                cfg1 = StackConfig.from_env(env=env1, address=f"{A}/24", tap_peer=None)
            else:
                cfg1 = StackConfig(address=f"{A}/24", tap_peer=None, faults=faults1)
            self.s1 = Stack(cfg1, device=a)
        except BaseException:
            a.close()
            b.close()
            raise
        try:
            self.s2 = Stack(StackConfig(address=f"{B}/24", tap_peer=None, faults=faults2),
                            device=b)
        except BaseException:
            self.s1.close()
            b.close()
            raise

    def pump(self, steps=20):
        for _ in range(steps):
            self.s1.poll()
            self.s2.poll()

    def prime_arp(self):
        """Teach each stack the other's MAC by injecting an ARP request straight into its
        receive path (past the injector): no ARP retries on a 1 s wall-clock timer, so what
        follows is a pure function of the frames and the seed."""
        for me, other, my_ip, other_ip in ((self.s1, self.s2, A, B), (self.s2, self.s1, B, A)):
            req = Ether(dst="ff:ff:ff:ff:ff:ff", src=other.mac) / ARP(
                op=1, hwsrc=other.mac, psrc=other_ip, hwdst="00:00:00:00:00:00", pdst=my_ip)
            me.iface.inject(bytes(req))
        self.pump()
        assert self.s1.iface.arp_entries()[B][0] == self.s2.mac
        assert self.s2.iface.arp_entries()[A][0] == self.s1.mac

    def echo_round(self, seqs, size=56):
        """Send each echo from s1 to s2 and pump; returns the seqs answered, in order."""
        _, mark = self.s1.iface.echo_replies()
        for seq in seqs:
            self.s1.iface.send_echo(B, seq, size)
            self.pump()
        replies, _ = self.s1.iface.echo_replies(mark)
        return [r[1] for r in replies]

    def close(self):
        self.s1.close()
        self.s2.close()


@pytest.fixture
def pairs():
    made = []

    def make(**kw):
        made.append(Pair(**kw))
        return made[-1]
    yield make
    for p in made:
        p.close()


@pytest.mark.parametrize("side", ["pinger", "responder"])
def test_total_loss_answers_nothing_and_the_injector_counts_it(eal, pairs, side):
    p = pairs(**{("faults1" if side == "pinger" else "faults2"): "loss=1.0"})
    faulty = p.s1 if side == "pinger" else p.s2
    assert isinstance(faulty.device, FaultInjector) and faulty.device.loss == 1.0
    assert p.s1.ping(B, count=3, timeout=0.1) == [None, None, None]
    p.pump()
    c1, c2, fc = p.s1.counters(), p.s2.counters(), faulty.device.counters
    assert c1["icmp_echo_replies_in"] == 0
    if side == "pinger":       # everything s1 sent died in its own tx injector
        assert fc["tx_dropped"] == c1["tx_frames"] > 0
        assert c2["rx_frames"] == 0
        assert fc["rx_dropped"] == c2["tx_frames"]    # s2's gratuitous ARP, lost on rx
    else:                      # everything s1 sent died in s2's rx injector
        assert fc["rx_dropped"] == c1["tx_frames"] > 0
        assert c2["rx_frames"] == 0 and c2["icmp_echo_requests_in"] == 0
        assert fc["tx_dropped"] == c2["tx_frames"]
    assert c1["arp_requests_out"] >= 1 and c1["arp_replies_in"] == 0


def answered_with(pairs, faults, seqs=range(40)):
    p = pairs(faults1=faults)
    p.prime_arp()
    f0 = p.s1.device.counters
    answered = p.echo_round(seqs)
    f1, c2 = p.s1.device.counters, p.s2.counters()
    # a request lost on s1's tx never reached s2; a reply lost on s1's rx was answered unseen
    assert c2["icmp_echo_requests_in"] == len(seqs) - (f1["tx_dropped"] - f0["tx_dropped"])
    assert len(answered) == c2["icmp_echo_replies_out"] - (f1["rx_dropped"] - f0["rx_dropped"])
    return answered


def test_half_loss_is_reproducible_from_the_seed(eal, pairs):
    first = answered_with(pairs, "loss=0.5,seed=7")
    second = answered_with(pairs, "loss=0.5,seed=7")
    other = answered_with(pairs, "loss=0.5,seed=8")
    assert first == second, "two fresh stacks with one seed lost different echoes"
    assert other != first, "seed 8 lost exactly what seed 7 did"
    assert 0 < len(first) < 40 and 0 < len(other) < 40     # about a quarter get through


def test_faults_from_the_environment(eal, pairs):
    p = pairs(env1={"FASTLOOP_FAULTS": "loss=0.5,seed=7"})
    assert p.s1.config.faults == "loss=0.5,seed=7"
    fi = p.s1.device
    assert isinstance(fi, FaultInjector) and (fi.loss, fi.seed) == (0.5, 7)
    p.prime_arp()
    from_env = p.echo_round(range(40))
    assert from_env == answered_with(pairs, {"loss": 0.5, "seed": 7})


VALIDATION_DROPS = ("ip_checksum", "icmp_checksum", "ip_version", "ip_header_length",
                    "ip_total_length", "ip_truncated", "icmp_truncated")


@pytest.mark.parametrize("size", [56, 1000], ids=["small", "large"])
def test_corrupted_frames_are_dropped_by_a_check_never_answered(eal, pairs, size):
    p = pairs(faults2="corrupt=1.0,seed=3")
    p.prime_arp()
    before2, fc_before = p.s2.counters(), p.s2.device.counters
    n = 50
    assert p.echo_round(range(n), size) == []
    c2, fc = p.s2.counters(), p.s2.device.counters
    corrupted = fc["rx_corrupted"] - fc_before["rx_corrupted"]
    assert corrupted == n                             # every echo request had one bit flipped
    drops = {k: c2["drops"][k] - before2["drops"][k] for k in c2["drops"]}
    assert sum(drops.values()) == n, {k: v for k, v in drops.items() if v}
    assert sum(drops[k] for k in VALIDATION_DROPS) == n, {k: v for k, v in drops.items() if v}
    # with 20 header bytes out of 20 + 8 + size, most flips land in the ICMP message
    assert drops["icmp_checksum"] > 0
    assert c2["icmp_echo_requests_in"] == before2["icmp_echo_requests_in"]
    assert c2["icmp_echo_replies_out"] == before2["icmp_echo_replies_out"]
    assert c2["tx_frames"] == before2["tx_frames"]    # no reply, no ICMP error, nothing
