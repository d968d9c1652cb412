"""FaultInjector: seeded, reproducible faults on rx and tx, and no mbuf leaks."""
import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from conftest_dev import (books, eal, frames, index_of, make_pair, pair,  # noqa: F401
                          small_pair)
from fastloop.config import parse_faults
from fastloop.dev.faults import FaultInjector
from fastloop.dev.testing import (RxCksumGood, exhaust_pool, poll, recv_all, recv_cksum_flags,
                                  send_frames)

MS = 1_000_000


def through_tx(a, b, sent, **faults):
    """Send `sent` through an injector on a's tx; return (frames b got, counters)."""
    fi = FaultInjector(a, **faults)
    assert send_frames(fi, sent) == len(sent), "the injector takes every frame"
    got = recv_all(b)
    return got, fi


def through_rx(a, b, sent, **faults):
    """b sends `sent`; return (frames read through an injector on a's rx, injector)."""
    fi = FaultInjector(a, **faults)
    assert send_frames(b, sent) == len(sent)
    return recv_all(fi), fi


def bit_diff(x, y):
    """(byte offset, bit) of every differing bit of two equal-length frames."""
    assert len(x) == len(y)
    return [(i, bit) for i in range(len(x)) for bit in range(8) if (x[i] ^ y[i]) >> bit & 1]


@pytest.mark.parametrize("through", [through_tx, through_rx])
def test_no_faults_passes_everything(pair, books, through):
    sent = frames(20)
    got, fi = through(*pair, sent)
    assert got == sent
    assert set(fi.counters.values()) == {0}
    fi.close()
    books.check()


@pytest.mark.parametrize("through,side", [(through_tx, "tx"), (through_rx, "rx")])
def test_loss_1_delivers_nothing(pair, books, through, side):
    got, fi = through(*pair, frames(20), loss=1.0)
    assert got == []
    assert fi.counters[f"{side}_dropped"] == 20
    fi.close()
    books.check()


def lost_indices(seed, direction, bursts=(50,)):
    """Indices of 50 frames lost at loss=0.3 with `seed`, sent in the given burst sizes."""
    a, b = make_pair()
    try:
        fi = FaultInjector(a, loss=0.3, seed=seed)
        sent, start = frames(50), 0
        for n in bursts:
            if direction == "tx":
                send_frames(fi, sent[start:start + n])
            else:
                send_frames(b, sent[start:start + n])
            start += n
        got = recv_all(b) if direction == "tx" else recv_all(fi)
        fi.close()
        return sorted(set(range(50)) - {index_of(f) for f in got})
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("direction", ["tx", "rx"])
def test_loss_is_reproducible_from_the_seed(books, direction):
    first = lost_indices(7, direction)
    assert 0 < len(first) < 50
    assert lost_indices(7, direction) == first
    assert lost_indices(7, direction, bursts=(3, 17, 1, 29)) == first, "burst size is irrelevant"
    assert lost_indices(8, direction) != first
    books.check()


def test_rx_and_tx_draw_from_separate_streams(pair, books):
    a, b = pair
    fi = FaultInjector(a, loss=0.5, seed=3)
    sent = frames(40)
    send_frames(fi, sent)
    tx_kept = [index_of(f) for f in recv_all(b)]
    send_frames(b, sent)
    rx_kept = [index_of(f) for f in recv_all(fi)]
    assert tx_kept != rx_kept
    fi.close()
    books.check()


@pytest.mark.parametrize("through,side", [(through_tx, "tx"), (through_rx, "rx")])
def test_dup_1_doubles(pair, books, through, side):
    sent = frames(10)
    got, fi = through(*pair, sent, dup=1.0)
    assert got == [f for f in sent for _ in range(2)]
    assert fi.counters[f"{side}_duplicated"] == 10
    assert fi.counters[f"{side}_clone_failed"] == 0
    fi.close()
    books.check()


def test_dup_counts_a_failed_clone_and_delivers_the_original(pair, books):
    a, b = pair
    fi = FaultInjector(a, dup=1.0)
    sent = frames(5)
    send_frames(b, sent)
    hoard = exhaust_pool(a)                  # no mbuf left to copy into
    try:
        got = recv_all(fi)
    finally:
        hoard.release()
    assert got == sent
    assert fi.counters["rx_clone_failed"] == 5 and fi.counters["rx_duplicated"] == 0
    fi.close()
    books.check()


@pytest.mark.parametrize("through,side", [(through_tx, "tx"), (through_rx, "rx")])
def test_reorder_swaps_and_poll_releases_the_last(pair, books, through, side):
    a, b = pair
    sent = frames(5)
    got, fi = through(a, b, sent, reorder=1.0)
    assert got == [sent[1], sent[0], sent[3], sent[2]], "each held frame follows the next one"
    assert fi.held == 1
    poll(fi, 1 * MS)                 # nothing came to overtake frame 4: released
    assert recv_all(b if side == "tx" else fi) == [sent[4]]
    assert fi.counters[f"{side}_reordered"] == 3
    fi.close()
    books.check()


@pytest.mark.parametrize("through,side", [(through_tx, "tx"), (through_rx, "rx")])
@pytest.mark.parametrize("segment", [2048, 64])
def test_corrupt_1_flips_one_bit_past_ethernet(pair, books, through, side, segment):
    a, b = pair
    sent = frames(30, size=200)
    fi = FaultInjector(a, corrupt=1.0, seed=11)
    if side == "tx":
        send_frames(fi, sent, segment=segment)
        got = recv_all(b)
    else:
        send_frames(b, sent, segment=segment)
        got = recv_all(fi)
    assert len(got) == 30
    offsets = set()
    for s, g in zip(sent, got):
        diff = bit_diff(s, g)
        assert len(diff) == 1 and diff[0][0] >= 14
        offsets.add(diff[0][0])
    assert len(offsets) > 10, "the byte is chosen at random"
    assert fi.counters[f"{side}_corrupted"] == 30
    fi.close()
    books.check()


def test_tx_corrupt_finalises_offloaded_checksums_first(pair, books):
    a, b = pair
    pkts = [Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
            / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1000 + i, dport=9) / (b"x" * 40)
            for i in range(10)]
    wire = [bytes(p) for p in pkts]                   # scapy fills in correct checksums
    unsummed = []
    for p in pkts:
        q = p.copy()
        q[IP].chksum, q[UDP].chksum = 0, 0             # the PMD would fill these in
        unsummed.append(bytes(q))
    fi = FaultInjector(a, corrupt=1.0, seed=5)
    send_frames(fi, unsummed, offload=(14, 20, 1, 1))  # ask for IPv4 + UDP checksum offload
    got = recv_all(b)                                  # net_ring computes nothing itself
    for w, g in zip(wire, got):
        assert len(bit_diff(w, g)) == 1, "checksums final, then exactly one bit flipped"
    fi.close()
    books.check()


@pytest.mark.parametrize("corrupt,flags", [(0.0, (True, True)), (1.0, (False, False))])
def test_rx_corrupt_forgets_the_pmd_checksum_verdict(pair, books, corrupt, flags):
    a, b = pair
    fi = FaultInjector(RxCksumGood(a), corrupt=corrupt)
    send_frames(b, frames(4))
    assert recv_cksum_flags(fi) == [flags] * 4, "a corrupted frame must be re-verified"
    fi.close()
    books.check()


@pytest.mark.parametrize("side", ["tx", "rx"])
def test_delay_holds_until_poll_at_now_plus_delay(pair, books, side):
    a, b = pair
    fi = FaultInjector(a, delay_ms=5)
    t0 = 1000 * MS
    poll(fi, t0)
    sent = frames(3)
    rx_dev = b if side == "tx" else fi
    send_frames(fi if side == "tx" else b, sent)
    assert recv_all(rx_dev) == []
    poll(fi, t0 + 5 * MS - 1)
    assert recv_all(rx_dev) == []
    assert fi.held == 3
    poll(fi, t0 + 5 * MS)
    assert recv_all(rx_dev) == sent
    assert fi.counters[f"{side}_delayed"] == 3
    fi.close()
    books.check()


def test_tx_queue_keeps_what_the_device_refused_and_drops_beyond_bound(small_pair, books):
    a, b = small_pair                       # the ring takes 31 frames
    fi = FaultInjector(a, queue=8)
    sent = frames(50)
    assert send_frames(fi, sent) == 50
    assert fi.counters["tx_queue_overflow"] == 50 - 31 - 8
    assert recv_all(b) == sent[:31]
    poll(fi, 1 * MS)                        # retries the 8 queued frames
    assert recv_all(b) == sent[31:39]
    assert fi.held == 0
    fi.close()
    books.check()


def test_close_frees_every_held_frame(pair, books):
    a, b = pair
    fi = FaultInjector(a, delay_ms=1000, reorder=0.5, dup=0.5, seed=9)
    poll(fi, 1 * MS)
    send_frames(fi, frames(20))
    send_frames(b, frames(20, start=20))
    assert recv_all(fi) == []               # pulled into the delay queue
    assert fi.held > 20
    fi.close()
    assert a.closed
    books.check()


def test_accepts_a_parse_faults_dict(pair, books):
    a, b = pair
    fi = FaultInjector(a, parse_faults("loss=1.0,dup=0.5,seed=3"))
    assert (fi.loss, fi.dup, fi.seed) == (1.0, 0.5, 3)
    send_frames(fi, frames(4))
    assert recv_all(b) == []
    assert sorted(fi.counters) == sorted(
        f"{d}_{c}" for d in ("rx", "tx") for c in (
            "dropped", "duplicated", "reordered", "corrupted", "delayed", "clone_failed",
            "queue_overflow"))
    fi.close()
    books.check()


@pytest.mark.parametrize("bad", [dict(loss=1.5), dict(dup=-0.1), dict(delay_ms=-1)])
def test_rejects_bad_parameters(pair, books, bad):
    with pytest.raises(ValueError):
        FaultInjector(pair[0], **bad)
    with pytest.raises(ValueError):
        FaultInjector(pair[0], {"bogus": 1})
    books.check()
