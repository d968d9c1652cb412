"""Waking the loop: call_soon_threadsafe writes an eventfd in the loop's epoll set, signals
still arrive through asyncio's wakeup socketpair (fastloop/loop/core.pyx's module comment).

Two fastloop loops: "kernel" (stack=False), whose idle sleep has no bound of its own, so only
a wake-up ends it; "adaptive" (a ring-pair stack, idle="adaptive"), which sleeps in bounded
epoll waits. A test waits until the loop thread is blocked in epoll_wait(2) on the loop's
epoll fd, read from /proc (no other way to see a thread asleep), before it acts.
"""
import asyncio
import contextlib
import os
import signal
import threading
import time

import pytest

import fastloop
from fastloop.dev.device import ring_pair
from fastloop.stack import Stack
from fastloop.config import StackConfig
from conftest import unique_subnet
from loop_testbase import any_loop, make_case  # noqa: F401

KINDS = ("kernel", "adaptive")
SYS_EPOLL_WAIT = {232, 281}         # x86_64: epoll_wait, epoll_pwait
TEST_BOUND = 30                     # seconds: a loop that is never woken fails, not hangs


@contextlib.contextmanager
def idle_loop(kind):
    if kind == "kernel":
        loop = fastloop.new_event_loop(False)
        try:
            yield loop
        finally:
            loop.close()
    else:
        with make_case("fastloop") as case:
            yield case.loop


def epoll_timeout(tid, epfd):
    """The timeout (ms, -1: none) of the epoll_wait on epfd thread tid is blocked in, or
    None if it is not blocked in one."""
    try:
        with open(f"/proc/self/task/{tid}/syscall") as f:
            fields = f.read().split()
    except OSError:
        return None
    if not fields or not fields[0].isdigit() or int(fields[0]) not in SYS_EPOLL_WAIT:
        return None
    epoll_fd, timeout = int(fields[1], 16), int(fields[4], 16) & 0xFFFFFFFF
    if epoll_fd != epfd:
        return None
    return timeout - (1 << 32) if timeout >= 1 << 31 else timeout


def wait_asleep(tid, epfd):
    """Poll /proc until thread tid sleeps in epoll_wait on epfd; return that wait's timeout."""
    deadline = time.monotonic() + TEST_BOUND
    while time.monotonic() < deadline:
        timeout = epoll_timeout(tid, epfd)
        if timeout is not None and timeout != 0:
            return timeout
        time.sleep(0.0005)
    raise AssertionError("the loop never went to sleep in epoll_wait")


def epoll_fds(epfd):
    with open(f"/proc/self/fdinfo/{epfd}") as f:
        return [int(line.split()[1]) for line in f if line.startswith("tfd:")]


def eventfd_count(fd):
    with open(f"/proc/self/fdinfo/{fd}") as f:
        for line in f:
            if line.startswith("eventfd-count:"):
                return int(line.split()[1], 16)
    raise AssertionError(f"fd {fd} is not an eventfd")


def run_with_thread(loop, fut, target):
    """Run the loop (here, the main thread) until fut is done, target running in a thread."""
    loop.call_later(TEST_BOUND, loop.stop)
    t = threading.Thread(target=target)
    t.start()
    try:
        return loop.run_until_complete(fut)
    finally:
        t.join()


@pytest.mark.parametrize("kind", KINDS)
def test_the_wake_fd_is_an_eventfd_in_the_epoll_set_the_loop_sleeps_on(eal, kind):
    with idle_loop(kind) as loop:
        fd = loop._fl_wake_fd
        assert os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:[eventfd]"
        assert fd in epoll_fds(loop._selector._selector.fileno())
        # the loop's one internal fd until a signal handler needs asyncio's socketpair
        assert loop._internal_fds == 1
        assert loop._csock is None and loop._ssock is None


@pytest.mark.parametrize("kind", KINDS)
def test_a_call_from_another_thread_wakes_the_sleeping_loop(eal, kind):
    with idle_loop(kind) as loop:
        tid, epfd, wake_fd = threading.get_native_id(), loop._selector._selector.fileno(), \
            loop._fl_wake_fd
        done = loop.create_future()
        first_ran = threading.Event()
        seen = {}

        def other():
            seen["sleep"] = wait_asleep(tid, epfd)
            loop.call_soon_threadsafe(first_ran.set)
            assert first_ran.wait(TEST_BOUND)
            wait_asleep(tid, epfd)                  # asleep again: it read the eventfd
            seen["count"] = eventfd_count(wake_fd)
            loop.call_soon_threadsafe(done.set_result, threading.get_ident())

        assert run_with_thread(loop, done, other) != threading.get_ident()
        if kind == "kernel":
            assert seen["sleep"] > 1000             # bounded by TEST_BOUND's call_later only
        else:
            assert seen["sleep"] > 0
        assert seen["count"] == 0


def test_many_threads_many_calls_each_run_exactly_once_in_order(any_loop):
    loop = any_loop.loop
    threads_n, calls = 8, 2000
    got = []
    done = loop.create_future()
    start = threading.Barrier(threads_n)

    def record(i, j):
        got.append((i, j))
        if len(got) == threads_n * calls:
            done.set_result(None)

    def worker(i):
        start.wait()
        for j in range(calls):
            loop.call_soon_threadsafe(record, i, j)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(threads_n)]
    for t in threads:
        t.start()
    try:
        any_loop.run(done)
    finally:
        for t in threads:
            t.join()
    any_loop.run(asyncio.sleep(0.01))               # a duplicate would have run by now
    assert len(got) == threads_n * calls
    assert sorted(got) == [(i, j) for i in range(threads_n) for j in range(calls)]
    for i in range(threads_n):                      # each thread's calls run in its order
        assert [j for k, j in got if k == i] == list(range(calls))


@pytest.mark.parametrize("kind", KINDS)
def test_a_signal_handler_runs_while_the_loop_sleeps(eal, kind):
    with idle_loop(kind) as loop:
        tid, epfd = threading.get_native_id(), loop._selector._selector.fileno()
        got = loop.create_future()
        loop.add_signal_handler(signal.SIGUSR1, lambda: got.set_result(threading.get_ident()))
        try:
            assert loop._internal_fds == 2          # the eventfd, and now the socketpair
            assert signal.set_wakeup_fd(-1) == loop._csock.fileno()
            signal.set_wakeup_fd(loop._csock.fileno())

            def other():
                wait_asleep(tid, epfd)
                os.kill(os.getpid(), signal.SIGUSR1)

            assert run_with_thread(loop, got, other) == threading.get_ident()
        finally:
            assert loop.remove_signal_handler(signal.SIGUSR1)
        assert os.readlink(f"/proc/self/fd/{loop._fl_wake_fd}") == "anon_inode:[eventfd]"


def _open_fds():
    return sorted(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("kind", KINDS)
def test_close_closes_the_eventfd_and_the_signal_socketpair(eal, kind):
    stack = peer = None
    if kind == "adaptive":
        a, peer = ring_pair()
        stack = Stack(StackConfig(address=f"{unique_subnet()}.2/24", tap_peer=None,
                                  loopback=True), device=a)
    try:
        before = _open_fds()
        loop = fastloop.new_event_loop(False if stack is None else stack)
        wake_fd = loop._fl_wake_fd
        loop.add_signal_handler(signal.SIGUSR1, lambda: None)
        loop.run_until_complete(asyncio.sleep(0))
        loop.close()
        assert loop._fl_wake_fd == -1
        assert loop._internal_fds == 0 and loop._csock is None and loop._ssock is None
        assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL    # close removed it
        assert _open_fds() == before, f"eventfd was {wake_fd}"
        loop.close()                                 # a second close is a no-op
        assert _open_fds() == before
    finally:
        if stack is not None:
            stack.close()
            peer.close()


def test_call_soon_threadsafe_on_a_closed_loop_raises(eal):
    loop = fastloop.new_event_loop(False)
    loop.close()
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.call_soon_threadsafe(print)
    loop._write_to_self()                            # after close: writes nothing, no error
