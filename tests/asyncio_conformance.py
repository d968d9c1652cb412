"""CPython's own asyncio tests (Lib/test/test_asyncio) run against fastloop's loop.

    python tests/asyncio_conformance.py --mode stdlib|kernel|stack-loopback [--json OUT]
                                        [--modules test_events,test_streams] [-k PATTERN]

Modes:
  stdlib          the baseline: the same modules on the interpreter's own asyncio loop;
  kernel          fastloop loops with a userspace stack attached (a ring pair: its poll step
                  runs every iteration) but every test address (127/8, Unix sockets) routed
                  to the kernel;
  stack-loopback  fastloop loops whose 127.0.0.0/8 is served by the userspace stack, so the
                  tests' TCP connections to 127.0.0.1 cross fastloop's TCP.

How the tests get a fastloop loop: the default policy (asyncio.new_event_loop(), asyncio.run(),
and every `set_event_loop_policy(None)` the modules' tearDownModule do) makes fastloop loops,
and the test classes that build `asyncio.SelectorEventLoop(<selector>)` themselves (the
test_events / test_sock_lowlevel / test_sendfile mixins, the functional tests' new_loop) get a
fastloop Loop over the same selector instead. Test ids stay CPython's, so the outcome of each
test is compared with the baseline's per id (tests/test_asyncio_conformance.py does).

Output: one JSON line per test, written as it finishes (a hang leaves the started one last):
{"id":..., "outcome": "pass|fail|error|skip|xfail|xpass", "detail": ..., "leaked_mbufs": n,
"stack_tcp_opens": n, "stack_tcp_bytes": n, "stack_udp_bytes": n, "calls": [...]} (TCP
connections the test's loops opened on the userspace stack, the TCP and UDP payload bytes they
received, and each create_connection / create_server / create_datagram_endpoint the test made
by address — not with sock= — as [api, host(s), "stack" or "kernel", raised]: where the
loop sent it).
"""
from __future__ import annotations

import argparse
import asyncio
import contextvars
import faulthandler
import gc
import importlib
import itertools
import json
import os
import re
import selectors
import sys
import time
import traceback
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))      # the worktree's fastloop, built in place
sys.path.insert(0, HERE)

from asyncio_exclusions import NOT_RUN, matches  # noqa: E402

MODES = ("stdlib", "kernel", "stack-loopback")

# The CPython test modules run (the list first, then cheap ones that also drive a loop).
MODULES = (
    "test_events", "test_sock_lowlevel", "test_streams", "test_server", "test_buffered_proto",
    "test_sendfile", "test_context", "test_futures", "test_futures2", "test_tasks",
    "test_locks", "test_queues", "test_pep492", "test_protocols", "test_runners",
    "test_taskgroups", "test_timeouts", "test_waitfor", "test_threads", "test_transports",
    "test_sslproto", "test_ssl",
)

# Test classes that build their loop themselves: class name -> selector their loop uses.
SELECTOR_CLASSES = {
    "test_events": {"EPollEventLoopTests": selectors.EpollSelector,
                    "PollEventLoopTests": selectors.PollSelector,
                    "SelectEventLoopTests": selectors.SelectSelector},
    "test_sock_lowlevel": {"EPollEventLoopTests": selectors.EpollSelector,
                           "PollEventLoopTests": selectors.PollSelector,
                           "SelectEventLoopTests": selectors.SelectSelector},
    "test_sendfile": {"EPollEventLoopTests": selectors.EpollSelector,
                      "PollEventLoopTests": selectors.PollSelector,
                      "SelectEventLoopTests": selectors.SelectSelector},
    "test_server": {"SelectorStartServerTests": None},
    "test_buffered_proto": {"BufferedProtocolSelectorTests": None},
    "test_sslproto": {"SelectorStartTLSTests": None},
}


class LoopFactory:
    """Makes the mode's fastloop loops: each with its own Stack over a ring pair (127/8 never
    reaches the device, so the ring carries nothing but is polled every iteration)."""

    def __init__(self, mode):
        from fastloop.dev.eal import eal_init
        self.mode = mode
        self.pid = os.getpid()
        self.eal = eal_init()
        self._loops = itertools.count()
        self.loop_class = _make_loop_class(self)
        self.tcp_opens = 0          # userspace TCP connections opened by every closed loop
        self.tcp_bytes = 0          # and the bytes they carried (in)
        self.udp_bytes = 0          # UDP payload bytes received by every closed loop
        self.calls = []             # the by-address calls of the running test (CallRecord)

    def __call__(self, selector=None):
        from fastloop.config import StackConfig
        from fastloop.dev.device import ring_pair
        from fastloop.stack import Stack
        from fastloop.loop.loop import Loop
        n = next(self._loops) % (50 * 256)
        if os.getpid() != self.pid:          # a fork() child (ProcessPoolExecutor) cannot use
            return Loop(StackConfig(address=f"10.{200 + n // 256}.{n % 256}.2/24",
                                    tap_peer=None, loopback=self.mode == "stack-loopback"),
                        selector=selector)   # the parent's DPDK: a lazy stack, as a user's
        a, peer = ring_pair(f"conf{n}")     # names are EAL-global: one per live loop
        try:
            cfg = StackConfig(address=f"10.{200 + n // 256}.{n % 256}.2/24", tap_peer=None,
                              loopback=self.mode == "stack-loopback")
            stack = Stack(cfg, device=a)
        except BaseException:
            a.close()
            peer.close()
            raise
        return self.loop_class(stack, peer, selector)


# The by-address call a task is inside: the stack-side methods it reaches mark it "stack".
_CALL = contextvars.ContextVar("conformance_call", default=None)


def _host_repr(host):
    """A host (or a UDP address pair, or a list of hosts) as JSON can hold it."""
    if host is None or isinstance(host, (str, int)):
        return host
    if isinstance(host, (list, tuple)):
        return [_host_repr(h) for h in host]
    return repr(host)


def _make_loop_class(factory):
    from fastloop.loop.loop import Loop

    class ConformanceLoop(Loop):
        """A fastloop Loop that closes its ring-pair stack with itself, and records where each
        by-address call of the test went."""

        def __init__(self, stack, peer, selector=None):
            self._conf_devices = (stack, peer)
            super().__init__(stack, selector=selector)

        def close(self):
            super().close()
            if self.is_closed() and self._conf_devices is not None:
                stack, peer = self._conf_devices
                self._conf_devices = None
                counters = stack.counters()
                tcp, udp = counters["tcp"], counters["udp"]
                factory.tcp_opens += tcp["active_opens"] + tcp["passive_opens"]
                factory.tcp_bytes += tcp["bytes_in"]
                factory.udp_bytes += udp["bytes_in"]
                stack.close()
                peer.close()

        async def _conf_track(self, api, host, sock, coro):
            if sock is not None:                  # a ready-made kernel socket: not routed
                return await coro
            rec = [api, _host_repr(host), "kernel", False]
            factory.calls.append(rec)
            token = _CALL.set(rec)
            try:
                return await coro
            except BaseException:
                rec[3] = True
                raise
            finally:
                _CALL.reset(token)

        def _conf_mark(self):
            rec = _CALL.get()
            if rec is not None:
                rec[2] = "stack"

        async def create_connection(self, protocol_factory, host=None, port=None, *a,
                                    sock=None, **kw):
            return await self._conf_track("create_connection", host, sock, super()
                .create_connection(protocol_factory, host, port, *a, sock=sock, **kw))

        async def create_server(self, protocol_factory, host=None, port=None, *a, sock=None,
                                **kw):
            return await self._conf_track("create_server", host, sock, super()
                .create_server(protocol_factory, host, port, *a, sock=sock, **kw))

        async def create_datagram_endpoint(self, protocol_factory, local_addr=None,
                                           remote_addr=None, *a, sock=None, **kw):
            return await self._conf_track(
                "create_datagram_endpoint", (local_addr, remote_addr), sock,
                super().create_datagram_endpoint(protocol_factory, local_addr, remote_addr,
                                                 *a, sock=sock, **kw))

        def _fl_tcp_connect(self, *a):
            self._conf_mark()
            return super()._fl_tcp_connect(*a)

        def _fl_bind(self, *a):
            self._conf_mark()
            return super()._fl_bind(*a)

        def _fl_udp_bind(self, *a):
            self._conf_mark()
            return super()._fl_udp_bind(*a)

    return ConformanceLoop


def install(factory):
    """Make fastloop loops everywhere the tests get a loop."""
    import fastloop

    class ConformancePolicy(fastloop.EventLoopPolicy):
        def _loop_factory(self):
            return factory()

    # asyncio.set_event_loop_policy(None) (every module's tearDownModule) falls back to
    # `asyncio.DefaultEventLoopPolicy()`, looked up at that moment: ours.
    asyncio.DefaultEventLoopPolicy = ConformancePolicy
    asyncio.set_event_loop_policy(ConformancePolicy())


def patch_module(modname, module, factory):
    for clsname, selector_class in SELECTOR_CLASSES.get(modname, {}).items():
        cls = getattr(module, clsname, None)
        if cls is None:
            continue
        for meth in ("create_event_loop", "new_loop"):
            if meth in cls.__dict__:
                def make(self, _sel=selector_class):
                    return factory(_sel() if _sel is not None else None)
                setattr(cls, meth, make)


def iter_tests(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from iter_tests(t)
        else:
            yield t


class LineResult(unittest.TextTestResult):
    """Writes one JSON line per test; counts the mbufs a test left in use."""

    def __init__(self, out, factory, timeout, *a, **kw):
        super().__init__(*a, **kw)
        self.out = out
        self.factory = factory
        self.eal = factory.eal if factory is not None else None
        self.timeout = timeout
        self.outcome = self.detail = self.pending = None

    def _in_use(self):
        return self.eal.mempool.in_use if self.eal is not None else 0

    def startTest(self, test):
        self.flush()
        super().startTest(test)
        self.outcome, self.detail = "pass", None
        faulthandler.dump_traceback_later(self.timeout, exit=True)   # a hang: stacks, exit
        self.t0 = time.monotonic()
        self.in_use0 = self._in_use()
        self.stack0 = self._stack()
        if self.factory is not None:
            self.factory.calls = []

    def _stack(self):
        f = self.factory
        return (f.tcp_opens, f.tcp_bytes, f.udp_bytes) if f is not None else (0, 0, 0)

    def _set(self, outcome, err=None, text=None):
        if self.outcome in ("fail", "error"):   # a failure in tearDown after a pass, etc.
            return
        self.outcome = outcome
        if err is not None:
            self.detail = "".join(traceback.format_exception(*err))[-3000:]
        elif text is not None:
            self.detail = text

    def addError(self, test, err):
        super().addError(test, err)
        self._set("error", err)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._set("fail", err)

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._set("skip", text=reason)

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._set("xfail")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._set("xpass")

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            failure = issubclass(err[0], test.failureException)
            self._set("fail" if failure else "error", err)

    def stopTest(self, test):
        super().stopTest(test)
        self.pending = {"id": test.id(), "outcome": self.outcome, "detail": self.detail,
                        "seconds": round(time.monotonic() - self.t0, 3)}

    def flush(self):
        """Write the last test's line, with the mbufs it left in use: counted only now, as
        IsolatedAsyncioTestCase closes its loop after stopTest()."""
        rec, self.pending = self.pending, None
        if rec is not None:
            if self._in_use() != self.in_use0:
                gc.collect()                      # a loop dropped unclosed frees its stack
            rec["leaked_mbufs"] = self._in_use() - self.in_use0
            opens, tcp_bytes, udp_bytes = self._stack()     # what crossed the userspace stack
            rec["stack_tcp_opens"] = opens - self.stack0[0]
            rec["stack_tcp_bytes"] = tcp_bytes - self.stack0[1]
            rec["stack_udp_bytes"] = udp_bytes - self.stack0[2]
            rec["calls"] = self.factory.calls if self.factory is not None else []
            self.out.write(json.dumps(rec) + "\n")
            self.out.flush()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mode", choices=MODES, required=True)
    ap.add_argument("--json", help="write the per-test JSON lines here (default: stdout)")
    ap.add_argument("--modules", help="comma-separated CPython test modules "
                                      f"(default: {','.join(MODULES)})")
    ap.add_argument("-k", dest="pattern", help="only test ids matching this regex")
    ap.add_argument("--timeout", type=float, default=120,
                    help="per-test limit: dump every thread's stack and exit (a hang)")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)

    modnames = args.modules.split(",") if args.modules else list(MODULES)
    factory = None
    if args.mode != "stdlib":
        factory = LoopFactory(args.mode)
        install(factory)
    suite = unittest.TestSuite()
    for name in modnames:
        module = importlib.import_module(f"test.test_asyncio.{name}")
        if factory is not None:
            patch_module(name, module, factory)
        for t in iter_tests(unittest.defaultTestLoader.loadTestsFromModule(module)):
            tid = t.id()
            if matches(tid[len("test.test_asyncio."):], NOT_RUN):
                continue
            if args.pattern and not re.search(args.pattern, tid):
                continue
            suite.addTest(t)

    out = open(args.json, "w") if args.json else sys.stdout
    stream = sys.stderr
    runner = unittest.TextTestRunner(
        stream=stream, verbosity=2 if args.verbose else 0,
        resultclass=lambda *a, **kw: LineResult(out, factory, args.timeout, *a, **kw))
    faulthandler.enable()
    result = runner.run(suite)
    result.flush()
    faulthandler.cancel_dump_traceback_later()
    if out is not sys.stdout:
        out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
