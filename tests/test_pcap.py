"""PcapTracer: the trace holds exactly the frames that went in and out, in order."""
import os
import struct
import time

import pytest

from scapy.utils import RawPcapReader, rdpcap

from conftest_dev import books, eal, frames, pair, small_pair  # noqa: F401 (fixtures)
from fastloop.dev.pcap import PcapTracer
from fastloop.dev.testing import poll, recv_all, recv_frames, send_frames


def read_trace(path):
    return [bytes(p) for p in rdpcap(str(path))]


def test_file_header_is_classic_nanosecond_pcap_ethernet(pair, books, tmp_path):
    a, _ = pair
    path = tmp_path / "h.pcap"
    t = PcapTracer(a, path)
    t.close()
    magic, major, minor, _zone, _sig, snaplen, linktype = struct.unpack(
        "=IHHiIII", path.read_bytes()[:24])
    assert (magic, major, minor, snaplen, linktype) == (0xa1b23c4d, 2, 4, 65535, 1)
    assert a.closed, "close() closes the inner device too"
    books.check()


def test_trace_shows_frames_sent_and_received_in_order(pair, books, tmp_path):
    a, b = pair
    path = tmp_path / "t.pcap"
    t = PcapTracer(a, path)
    out1, inbound, out2 = frames(5), frames(3, start=100, size=200), frames(2, start=200)
    assert send_frames(t, out1) == 5
    assert send_frames(b, inbound) == 3
    assert recv_all(t) == inbound
    assert send_frames(t, out2) == 2
    assert recv_all(b) == out1 + out2
    assert t.frames == 10
    t.close()
    assert read_trace(path) == out1 + inbound + out2
    books.check()


def test_timestamps_are_wall_clock_nanoseconds(pair, books, tmp_path):
    a, b = pair
    path = tmp_path / "ts.pcap"
    t = PcapTracer(a, path)
    send_frames(t, frames(1))
    recv_all(b)
    t.close()
    reader = RawPcapReader(str(path))
    (_data, meta), = list(reader)
    reader.close()
    ts = meta.sec * 10**9 + meta.usec       # scapy calls the nanoseconds field usec too
    assert abs(time.time_ns() - ts) < 60 * 10**9
    books.check()


def test_tx_records_only_frames_the_device_took(small_pair, books, tmp_path):
    a, b = small_pair
    path = tmp_path / "partial.pcap"
    t = PcapTracer(a, path)
    sent = frames(40)
    k = send_frames(t, sent)
    assert 0 < k < 40, "the 31-slot ring must refuse part of the burst"
    assert t.frames == k
    assert recv_all(b) == sent[:k]
    assert send_frames(t, sent[k:]) == 40 - k    # the caller retries the rest
    assert recv_all(b) == sent[k:]
    t.close()
    assert read_trace(path) == sent, "every frame once, in order"
    books.check()


def test_multi_segment_frames_are_recorded_flat(pair, books, tmp_path):
    a, b = pair
    path = tmp_path / "seg.pcap"
    t = PcapTracer(a, path)
    sent = frames(4, size=300)
    assert send_frames(t, sent, segment=64) == 4       # 5 segments each
    assert send_frames(b, sent, segment=100) == 4
    assert recv_all(t) == sent
    assert recv_all(b) == sent
    t.close()
    assert read_trace(path) == sent + sent
    books.check()


def test_poll_flushes_at_most_every_100ms(pair, books, tmp_path):
    a, b = pair
    path = tmp_path / "flush.pcap"
    t = PcapTracer(a, path)
    header = os.path.getsize(path)
    send_frames(t, frames(3))
    assert os.path.getsize(path) == header, "records stay in the stdio buffer"
    t0 = 10**9
    poll(t, t0)
    size = os.path.getsize(path)
    assert size > header
    send_frames(t, frames(3, start=3))
    poll(t, t0 + 50_000_000)
    assert os.path.getsize(path) == size, "no flush within 100 ms of the last"
    poll(t, t0 + 100_000_000)
    assert os.path.getsize(path) > size
    assert len(recv_all(b)) == 6
    t.close()
    assert t.frames == 6
    books.check()


def test_empty_bursts_record_nothing(pair, books, tmp_path):
    a, _ = pair
    path = tmp_path / "empty.pcap"
    t = PcapTracer(a, path)
    assert recv_frames(t) == []
    assert send_frames(t, []) == 0
    t.close()
    assert t.frames == 0 and read_trace(path) == []
    books.check()


def test_unwritable_path_raises_oserror(pair, books, tmp_path):
    a, _ = pair
    with pytest.raises(OSError, match="cannot open pcap file"):
        PcapTracer(a, tmp_path / "no" / "such" / "dir.pcap")
    books.check()
