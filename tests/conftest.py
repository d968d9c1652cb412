"""Shared fixtures: one EAL per test process, and the mempool books checked after every test."""
import itertools
import os

import pytest

from fastloop.dev.eal import eal_init, current_eal

_names = itertools.count()


def unique_ifname(prefix="flt"):
    """A kernel interface name no other test run on this machine uses (15 chars max)."""
    return f"{prefix}{os.getpid() % 100000}{next(_names)}"[:15]


def unique_subnet():
    """A /24 for one test: 10.200-249.x.0 so parallel runs and the default 10.77/24 never meet."""
    n = (os.getpid() * 7 + next(_names)) % (50 * 256)
    return f"10.{200 + n // 256}.{n % 256}"


@pytest.fixture(scope="session")
def eal():
    return eal_init()


@pytest.fixture(autouse=True)
def mempool_balanced():
    """Every test leaves the mempools exactly where it found them: no leaked mbufs."""
    eal = current_eal()
    before = eal.mbufs_in_use if eal else 0
    yield
    eal = current_eal()
    if eal is not None:
        after = eal.mbufs_in_use
        assert after == before, f"mempools in use: {before} before the test, {after} after"
