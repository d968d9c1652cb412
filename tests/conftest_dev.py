"""Fixtures for device-layer tests: a ring pair, frames, and the mbuf books.

Named conftest_dev.py (imported by the test modules) so the lead's conftest.py stays free.
"""
import pytest

from fastloop.dev.eal import eal_init
from fastloop.dev.device import ring_pair


class Books:
    """The mempool's in_use count at the start of a test; check() asserts it is back."""

    def __init__(self, eal):
        self.eal = eal
        self.start = eal.mempool.in_use

    def check(self):
        assert self.eal.mempool.in_use == self.start, "mbufs leaked or double-freed"


@pytest.fixture
def eal():
    return eal_init()


@pytest.fixture
def books(eal):
    return Books(eal)


def make_pair(ring_size=1024):
    return ring_pair("mw", ring_size=ring_size)


@pytest.fixture
def pair():
    """Two net_ring ports back to back: what a transmits, b receives."""
    a, b = make_pair()
    yield a, b
    a.close()
    b.close()


@pytest.fixture
def small_pair():
    """A ring pair whose rings hold only 31 frames, so tx_burst takes part of a burst."""
    a, b = make_pair(ring_size=16)
    yield a, b
    a.close()
    b.close()


SRC_MAC = bytes.fromhex("020000000001")
DST_MAC = bytes.fromhex("020000000002")


def frame(i, size=64):
    """A distinct Ethernet frame (IPv4 ethertype) carrying its index; at least 60 bytes."""
    body = f"frame-{i:05d}-".encode()
    body += bytes((i + j) & 0xFF for j in range(max(0, size - 14 - len(body))))
    return DST_MAC + SRC_MAC + b"\x08\x00" + body


def frames(n, size=64, start=0):
    return [frame(i, size) for i in range(start, start + n)]


def index_of(data):
    """The index a frame() carries (for frames that were not corrupted)."""
    return int(data[14 + 6:14 + 11])
