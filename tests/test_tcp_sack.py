"""SACK-based loss recovery (RFC 6675), segment by segment, on a virtual clock.

The stack (our sender) sits on side a of a net_ring pair; side b is a scripted peer: frames
built with scapy, frames the stack sends parsed with scapy. The clock is virtual
(Stack(start_ns=...), poll(now_ns)), so "no RTO was needed" and "within one RTT" are exact.
SimReceiver plays a receiver that drops chosen first transmissions and answers every segment
with an ACK carrying RFC 2018 SACK blocks (the most recent block first), one RTT later.
"""
import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import ARP, Ether

from fastloop.config import StackConfig
from fastloop.dev.device import ring_pair
from fastloop.dev.testing import recv_all, send_frames
from fastloop.net.tcp.pysink import CallbackSink
from fastloop.stack import Stack

US_MAC, US = "02:00:00:00:aa:01", "10.9.8.1"
PEER_MAC, PEER = "02:00:00:00:bb:02", "10.9.8.2"
MS = 1_000_000
T0 = 1_000_000_000_000           # the virtual clock's start, ns
ISS = 100_000                    # our initial sequence number (connect(iss=))
PEER_ISS = 5_000
MSS = 1000                       # the peer's MSS option: no timestamps, so segments are 1000 B
RTT = 10 * MS
PORT = 8080


class Sink:
    def __init__(self):
        self.errors = []
        self.is_established = False
        self.closed_with = None

    def established(self, c):
        self.is_established = True

    def closed(self, c, error):
        self.closed_with = error


class SackLink:
    """Our stack as the sender on a ring pair, and the raw frames of the peer."""

    def __init__(self, sack=True, congestion="newreno", data=b""):
        self.a, self.b = ring_pair()
        self.now = T0
        self.stack = Stack(StackConfig(address=f"{US}/24", tap_peer=None, mac=US_MAC,
                                       tcp_congestion=congestion), device=self.a, start_ns=T0)
        self.sent = []                                # (time, seq, payload length, flags)
        recv_all(self.b)                              # the gratuitous ARP
        self.frame(Ether(dst=US_MAC, src=PEER_MAC) / ARP(
            op=1, hwsrc=PEER_MAC, psrc=PEER, hwdst="00:00:00:00:00:00", pdst=US))
        self.step()
        assert [s for s in self.segments()] == []     # the ARP reply is not TCP
        self.sink = Sink()
        self.conn = self.stack.tcp.connect(PEER, PORT, CallbackSink(self.sink), now_ns=self.now,
                                           iss=ISS)
        self.step()
        syn = self.segments()
        assert len(syn) == 1 and syn[0][TCP].flags == "S"
        opts = [("MSS", MSS), ("WScale", 0)] + ([("SAckOK", b"")] if sack else [])
        self.rcv_nxt = PEER_ISS + 1
        self.peer(ISS + 1, flags="SA", seq=PEER_ISS, options=opts, window=65535)
        self.advance(RTT)
        assert self.conn.info()["sack"] == sack
        assert self.conn.info()["mss"] == MSS
        self.segments()                               # the handshake's ACK
        self.data = data
        if data:
            assert self.conn.send(data) == len(data)
            self.step()

    # ---- the peer's side ------------------------------------------------------------
    def frame(self, f):
        assert send_frames(self.b, [bytes(f)]) == 1

    def peer(self, ack, sack=(), flags="A", seq=None, options=None, window=65535):
        opts = list(options or [])
        if sack:
            opts = [("NOP", None), ("NOP", None),
                    ("SAck", tuple(x for blk in sack for x in blk))] + opts
        self.frame(Ether(dst=US_MAC, src=PEER_MAC) / IP(src=PEER, dst=US) / TCP(
            sport=PORT, dport=self.conn.local_port, seq=self.rcv_nxt if seq is None else seq,
            ack=ack, flags=flags, window=window, options=opts))

    def step(self):
        self.stack.poll(self.now)

    def advance(self, ns):
        self.now += ns
        self.step()

    def segments(self):
        """What the stack sent since the last call, as scapy packets; data segments are
        recorded in self.sent with the virtual time they left."""
        out = []
        for raw in recv_all(self.b):
            p = Ether(raw)
            if TCP in p:
                out.append(p)
                if len(p[TCP].payload):
                    self.sent.append((self.now, p[TCP].seq, len(p[TCP].payload),
                                      str(p[TCP].flags)))
        return out

    def counters(self):
        return self.stack.counters()["tcp"]

    def close(self):
        self.stack.close()
        self.b.close()


def seg(i):
    """Sequence number of the i-th data segment."""
    return ISS + 1 + i * MSS


class SimReceiver:
    """A receiver holding what arrived: cumulative ACK and SACK blocks (RFC 2018 §4: the
    block with the most recent segment first, then the others; at most 4, all that fit in
    the option space without timestamps)."""

    def __init__(self, link, base, drop_first=(), drop_times=None):
        self.link = link
        self.rcv_nxt = base
        self.ooo = {}                 # seq -> length
        self.drop_first = set(drop_first)
        self.drop_times = dict(drop_times or {})   # seq -> how many transmissions to drop
        self.seen = {}
        self.recent = None

    def deliver(self, seq, n):
        k = self.seen.get(seq, 0)
        self.seen[seq] = k + 1
        if seq in self.drop_first and k == 0 or k < self.drop_times.get(seq, 0):
            return False
        if seq == self.rcv_nxt:
            self.rcv_nxt += n
            while self.rcv_nxt in self.ooo:
                self.rcv_nxt += self.ooo.pop(self.rcv_nxt)
        elif seq > self.rcv_nxt:
            self.ooo[seq] = n
            self.recent = seq
        return True

    def blocks(self):
        runs, keys = [], sorted(k for k in self.ooo if k >= self.rcv_nxt)
        for k in keys:
            if runs and runs[-1][1] == k:
                runs[-1][1] = k + self.ooo[k]
            else:
                runs.append([k, k + self.ooo[k]])
        first = [r for r in runs if r[0] <= (self.recent or 0) < r[1]]
        rest = [r for r in runs if r not in first]
        return [tuple(r) for r in (first + rest)[:4]]


def run(link, recv, until_acked, rounds=200, rtt=RTT):
    """Segments the stack sends at t arrive, and their ACKs return, at t + rtt; each
    segment earns one ACK. Returns when everything up to until_acked is acknowledged."""
    pending = []                                      # (due, seq, n)
    for _ in range(rounds):
        for p in link.segments():
            n = len(p[TCP].payload)
            if n:
                pending.append((link.now + rtt, p[TCP].seq, n))
        if recv.rcv_nxt >= until_acked and not pending:
            return True
        link.now = max(link.now, min((d for d, _, _ in pending), default=link.now + rtt))
        now_due = [p for p in pending if p[0] <= link.now]
        pending = [p for p in pending if p[0] > link.now]
        for _, seq, n in now_due:
            if recv.deliver(seq, n):
                link.peer(recv.rcv_nxt, sack=recv.blocks())
        link.step()
    return False


@pytest.fixture
def link_factory(eal):
    made = []

    def make(**kw):
        made.append(SackLink(**kw))
        return made[-1]
    yield make
    for l in made:
        l.close()


def retransmitted(link):
    """Sequence numbers sent more than once, with their counts."""
    count = {}
    for _, s, _, _ in link.sent:
        count[s] = count.get(s, 0) + 1
    return {s: k for s, k in count.items() if k > 1}


# ---- whole recoveries against a simulated receiver -------------------------------------------
def test_two_holes_both_retransmitted_in_one_recovery_without_rto(link_factory):
    link = link_factory(data=bytes(30 * MSS))
    recv = SimReceiver(link, ISS + 1, drop_first={seg(1), seg(4)})
    assert run(link, recv, ISS + 1 + 30 * MSS)
    assert retransmitted(link) == {seg(1): 2, seg(4): 2}
    tcp = link.counters()
    assert tcp["retransmits_rto"] == 0
    assert tcp["sack_recoveries"] == 1
    assert tcp["retransmits_fast"] == 1 and tcp["retransmits_sack"] == 1
    assert tcp["retransmits_partial"] == 0                # not NewReno
    first = {s: t for t, s, _, _ in reversed(link.sent)}
    again = {s: t for t, s, _, _ in link.sent}
    # both holes go again one round trip after they were first sent: the dupacks of the
    # segments behind them, not a timer
    assert again[seg(1)] - first[seg(1)] == RTT
    assert again[seg(4)] - first[seg(4)] == RTT
    assert link.conn.info()["state"] == "ESTABLISHED"


def test_sacked_data_is_never_retransmitted(link_factory):
    drops = {seg(i) for i in range(2, 120, 7)}
    link = link_factory(data=bytes(120 * MSS))
    recv = SimReceiver(link, ISS + 1, drop_first=drops)
    assert run(link, recv, ISS + 1 + 120 * MSS, rounds=2000)
    assert set(retransmitted(link)) == drops             # exactly the holes, each once more
    assert all(k == 2 for k in retransmitted(link).values())
    assert link.counters()["retransmits_rto"] == 0


def test_lost_retransmission_is_sent_again_without_rto(link_factory):
    link = link_factory(data=bytes(60 * MSS))
    recv = SimReceiver(link, ISS + 1, drop_times={seg(3): 2})   # the first resend is lost too
    assert run(link, recv, ISS + 1 + 60 * MSS, rounds=1000)
    assert retransmitted(link) == {seg(3): 3}
    tcp = link.counters()
    assert tcp["retransmits_rto"] == 0
    assert tcp["sack_lost_retransmits"] == 1
    times = [t for t, s, _, _ in link.sent if s == seg(3)]
    assert times[1] - times[0] == RTT
    # sent again once the first resend had an RTT and a quarter to be acknowledged
    assert RTT + RTT // 4 <= times[2] - times[1] <= 2 * RTT + RTT // 4


def test_without_sack_the_peer_gets_newreno(link_factory):
    link = link_factory(sack=False, data=bytes(30 * MSS))
    recv = SimReceiver(link, ISS + 1, drop_first={seg(1), seg(4)})
    assert run(link, recv, ISS + 1 + 30 * MSS)
    assert retransmitted(link) == {seg(1): 2, seg(4): 2}
    tcp = link.counters()
    assert tcp["retransmits_partial"] == 1 and tcp["sack_recoveries"] == 0


def test_many_holes_beyond_the_scoreboard_size_still_recover(link_factory):
    """More disjoint SACKed ranges than the scoreboard keeps (32): the farthest are
    forgotten, the transfer completes and nothing is lost."""
    drops = {seg(i) for i in range(1, 160, 2)}           # every other segment: 80 holes
    link = link_factory(data=bytes(160 * MSS))
    recv = SimReceiver(link, ISS + 1, drop_first=drops)
    assert run(link, recv, ISS + 1 + 160 * MSS, rounds=5000)
    assert drops <= set(retransmitted(link))
    assert recv.rcv_nxt == ISS + 1 + 160 * MSS


# ---- hand-fed ACKs: pipe, entering recovery, bogus blocks, RTO ------------------------------
def test_pipe_limits_what_goes_out_in_recovery(link_factory):
    """NewReno's halving, so the numbers are round: IW10 out, the first segment lost."""
    link = link_factory(data=bytes(40 * MSS))
    first = link.segments()
    assert [p[TCP].seq for p in first] == [seg(i) for i in range(10)]   # IW10
    link.advance(RTT)
    link.peer(seg(0), sack=[(seg(1), seg(2))])
    link.peer(seg(0), sack=[(seg(1), seg(3))])
    link.step()
    # two dupacks: limited transmit (RFC 6675 §5 (2.3)), governed by cwnd - pipe:
    # 10000 - (10000 - 2000 SACKed) = two new segments
    assert [p[TCP].seq for p in link.segments() if len(p[TCP].payload)] == [seg(10), seg(11)]
    assert link.counters()["sack_recoveries"] == 0
    link.peer(seg(0), sack=[(seg(1), seg(4))])           # DupThresh, and IsLost(seg 0)
    link.step()
    out = link.segments()
    # (4.2) cwnd = FlightSize/2 = 12000/2; (4.3) seg 0 again; pipe = 8 segments not SACKed
    # above it + the resend = 9000 > cwnd: nothing else may go
    assert [(p[TCP].seq, len(p[TCP].payload)) for p in out] == [(seg(0), MSS)]
    info = link.conn.info()
    assert info["cwnd"] == 6 * MSS and info["ssthresh"] == 6 * MSS
    # each further dupack SACKs one more segment: pipe falls by 1000 each time down to 5000
    # = cwnd - 1 SMSS, and from then on each ACK lets exactly one new segment go (§5 (C))
    sent_per_ack = []
    for k in range(5, 11):
        link.peer(seg(0), sack=[(seg(1), seg(k))])
        link.step()
        sent_per_ack.append([p[TCP].seq for p in link.segments() if len(p[TCP].payload)])
    assert sent_per_ack == [[], [], [], [seg(12)], [seg(13)], [seg(14)]]
    # the resend arrives: the cumulative ACK covers RecoveryPoint (seg 12): recovery ends
    link.advance(RTT)
    link.peer(seg(12))
    link.step()
    assert link.counters()["retransmits_rto"] == 0
    assert link.conn.info()["cwnd"] == 6 * MSS         # cwnd = ssthresh at the exit
    assert link.counters()["sack_recoveries"] == 1
    assert retransmitted(link) == {seg(0): 2}


def test_islost_enters_recovery_before_three_dupacks(link_factory):
    """One ACK SACKing three segments above SND.UNA: IsLost(HighACK + 1) (RFC 6675 §5 (2.2))."""
    link = link_factory(data=bytes(10 * MSS))
    link.segments()
    link.advance(RTT)
    link.peer(seg(0), sack=[(seg(1), seg(4))])
    link.step()
    out = [p for p in link.segments() if len(p[TCP].payload)]
    assert [p[TCP].seq for p in out] == [seg(0)]
    assert link.counters()["sack_recoveries"] == 1 and link.conn.info()["cwnd"] == 5 * MSS


def test_bogus_and_dsack_blocks_are_ignored_and_counted(link_factory):
    link = link_factory(data=bytes(10 * MSS))
    link.segments()
    link.advance(RTT)
    top = seg(10)
    # on cumulative ACKs, so that RFC 5681's duplicate ACK count stays out of it
    link.peer(seg(1), sack=[(seg(2), top + 1)])          # beyond SND.MAX
    link.peer(seg(2), sack=[(seg(5), seg(3))])           # inverted
    link.peer(seg(3), sack=[(seg(4), seg(4))])           # empty
    link.step()
    tcp = link.counters()
    assert tcp["sack_blocks_bogus"] == 3
    assert tcp["sack_recoveries"] == 0 and tcp["dupacks_in"] == 0
    link.peer(seg(4), sack=[(seg(0), seg(1))])           # D-SACK below the cumulative ACK
    link.step()
    assert link.counters()["dsack_blocks_in"] == 1
    assert link.counters()["sack_recoveries"] == 0 and link.counters()["dupacks_in"] == 0
    # the ACKs themselves were taken, and nothing was resent
    assert not retransmitted(link) and link.conn.info()["state"] == "ESTABLISHED"


def test_loss_probe_then_rto_discards_the_scoreboard_then_skips_what_is_sacked_again(
        link_factory):
    """One dupack, then silence. At PTO = 2*SRTT after the last transmission (RFC 8985
    §7.2) RACK's rule finds SND.UNA lost (a later segment was SACKed): fast recovery, one
    resend. Still nothing: the RTO. RFC 6675 §5.1 / RFC 2018 §8: after the RTO the SACKed
    bits are off (the peer may have reneged), so SND.UNA's segment goes first; SACK blocks
    on the following ACKs are used again, and what they SACK is not resent."""
    link = link_factory(data=bytes(10 * MSS))
    link.segments()
    link.advance(RTT)
    link.peer(seg(0), sack=[(seg(2), seg(3))])           # one dupack: no recovery
    link.step()
    assert link.counters()["sack_recoveries"] == 0
    assert [p for p in link.segments() if len(p[TCP].payload)] == []
    link.advance(RTT - MS)
    assert [p for p in link.segments() if len(p[TCP].payload)] == []
    link.advance(MS)                                     # 2 * SRTT since the data left
    assert [p[TCP].seq for p in link.segments() if len(p[TCP].payload)] == [seg(0)]
    tcp = link.counters()
    assert tcp["sack_recoveries"] == 1 and tcp["loss_probes"] == 0
    rto = link.conn.info()["rto_ms"] * MS
    link.advance(rto - 2 * RTT - MS)
    assert [p for p in link.segments() if len(p[TCP].payload)] == []   # one probe per ACK
    link.advance(MS)
    out = [p for p in link.segments() if len(p[TCP].payload)]
    assert [p[TCP].seq for p in out] == [seg(0)]          # cwnd = 1 SMSS
    assert link.counters()["retransmits_rto"] == 1
    # the peer got seg 0 (and had 2, and 5..9): ACK seg 1, SACK them: the resend after the
    # RTO sends 1 and 3 (cwnd is 2 SMSS now), then 4, never 2 or 5..9
    link.advance(RTT)
    link.peer(seg(1), sack=[(seg(5), seg(10)), (seg(2), seg(3))])
    link.step()
    out = [p[TCP].seq for p in link.segments() if len(p[TCP].payload)]
    assert out == [seg(1), seg(3)]
    link.advance(RTT)
    link.peer(seg(4), sack=[(seg(5), seg(10))])
    link.step()
    out = [p[TCP].seq for p in link.segments() if len(p[TCP].payload)]
    assert out == [seg(4)]
    link.advance(RTT)
    link.peer(seg(10))
    link.step()
    assert link.counters()["retransmits_rto"] == 1
    assert retransmitted(link) == {seg(0): 3, seg(1): 2, seg(3): 2, seg(4): 2}


def test_tail_loss_is_repaired_by_a_loss_probe_not_the_rto(link_factory):
    """The last segment of a flight is lost: no duplicate ACK can come. PTO = 2*SRTT after
    the ACK of the rest (RFC 8985 §7.2), with no new data the last segment goes again
    (§7.3), and that repairs it, 170 ms before the RTO would have."""
    link = link_factory(data=bytes(3 * MSS))
    recv = SimReceiver(link, ISS + 1, drop_first={seg(2)})
    assert run(link, recv, ISS + 1 + 3 * MSS)
    assert retransmitted(link) == {seg(2): 2}
    tcp = link.counters()
    assert tcp["loss_probes"] == 1 and tcp["retransmits_rto"] == 0
    times = [t for t, s, _, _ in link.sent if s == seg(2)]
    assert times[1] - times[0] == RTT + 2 * RTT          # the ACK of seg 0-1, then PTO
