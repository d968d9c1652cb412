"""asyncio's loop API as fastloop compiles it (fastloop/loop/api.pyx), beside stdlib asyncio:
the same expectations on both, so that a difference is a failure of the port. (CPython's own
tests of these methods are in test_base_events, which build a BaseEventLoop, not ours.)"""
import asyncio
import concurrent.futures
import logging
import sys
import threading

import pytest

from asyncio import constants
from loop_testbase import strict_loop  # noqa: F401


def _asyncio_errors(caplog):
    return [r for r in caplog.records if r.name == "asyncio" and r.levelno == logging.ERROR]


# ---- the exception handler ---------------------------------------------------------------
def test_set_get_exception_handler(strict_loop):
    loop = strict_loop.loop
    assert loop.get_exception_handler() is None
    with pytest.raises(TypeError, match="A callable object or None is expected, got 1"):
        loop.set_exception_handler(1)
    calls = []

    def handler(lp, context):
        calls.append((lp, context))

    loop.set_exception_handler(handler)
    assert loop.get_exception_handler() is handler
    ctx = {"message": "m"}
    loop.call_exception_handler(ctx)
    assert calls == [(loop, ctx)] and calls[0][1] is ctx
    loop.set_exception_handler(None)
    assert loop.get_exception_handler() is None


def test_default_exception_handler_logs_the_context_sorted(strict_loop, caplog):
    loop = strict_loop.loop
    exc = ValueError("boom")
    loop.call_exception_handler({"message": "it broke", "exception": exc, "zeta": 1,
                                 "alpha": "a"})
    loop.call_exception_handler({"gamma": [1]})
    first, second = _asyncio_errors(caplog)
    assert first.getMessage() == "it broke\nalpha: 'a'\nzeta: 1"
    assert first.exc_info[1] is exc
    assert second.getMessage() == "Unhandled exception in event loop\ngamma: [1]"
    assert not second.exc_info


def test_a_failing_exception_handler_falls_back_to_the_default(strict_loop, caplog):
    loop = strict_loop.loop
    bad = RuntimeError("handler bug")

    def handler(lp, context):
        raise bad

    loop.set_exception_handler(handler)
    loop.call_exception_handler({"message": "original"})
    (rec,) = _asyncio_errors(caplog)
    assert rec.getMessage().startswith("Unhandled error in exception handler\ncontext: ")
    assert "'message': 'original'" in rec.getMessage()
    assert rec.exc_info[1] is bad


def test_a_failing_default_handler_is_logged_and_base_exceptions_propagate(strict_loop,
                                                                           caplog):
    loop = strict_loop.loop

    def broken_default(context):
        raise ZeroDivisionError

    loop.default_exception_handler = broken_default      # an instance's, as a subclass's
    loop.call_exception_handler({"message": "x"})
    (rec,) = _asyncio_errors(caplog)
    assert rec.getMessage() == "Exception in default exception handler"
    assert rec.exc_info[0] is ZeroDivisionError

    def interrupting(lp, context):
        raise KeyboardInterrupt

    loop.set_exception_handler(interrupting)
    with pytest.raises(KeyboardInterrupt):
        loop.call_exception_handler({"message": "y"})


def test_an_exception_in_a_callback_reaches_the_handler_with_its_handle(strict_loop):
    loop = strict_loop.loop
    seen = []
    loop.set_exception_handler(lambda lp, ctx: seen.append(ctx))
    err = KeyError("k")

    def cb():
        raise err

    h = loop.call_soon(cb)
    strict_loop.run(asyncio.sleep(0))
    (ctx,) = seen
    assert ctx["exception"] is err and ctx["handle"] is h
    assert ctx["message"].startswith("Exception in callback ")


# ---- debug mode --------------------------------------------------------------------------
def test_debug_mode_checks_and_coroutine_origin_tracking(strict_loop):
    loop = strict_loop.loop
    assert loop.get_debug() is False
    depth0 = sys.get_coroutine_origin_tracking_depth()

    async def main():
        assert sys.get_coroutine_origin_tracking_depth() == depth0
        loop.set_debug(True)                    # while running: applied on the next pass
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert sys.get_coroutine_origin_tracking_depth() == constants.DEBUG_STACK_DEPTH
        with pytest.raises(TypeError, match=r"coroutines cannot be used with call_soon\(\)"):
            loop.call_soon(main)
        for schedule in (lambda: loop.call_later(1, 42), lambda: loop.call_at(1, 42)):
            with pytest.raises(TypeError, match=r"a callable object was expected by "
                                                r"call_at\(\), got 42"):
                schedule()
        errors = []

        def from_a_thread():
            try:
                loop.call_soon(print)
            except RuntimeError as e:
                errors.append(str(e))

        t = threading.Thread(target=from_a_thread)
        t.start()
        t.join()
        assert errors == ["Non-thread-safe operation invoked on an event loop other than "
                          "the current one"]
        h = loop.call_soon(print)               # its source traceback ends at this line
        assert h._source_traceback[-1].lineno == sys._getframe().f_lineno - 1
        h.cancel()

    strict_loop.run(main())
    assert loop.get_debug() is True
    assert sys.get_coroutine_origin_tracking_depth() == depth0
    loop.set_debug(False)


# ---- tasks -------------------------------------------------------------------------------
def test_task_factory(strict_loop):
    loop = strict_loop.loop
    with pytest.raises(TypeError, match="task factory must be a callable or None"):
        loop.set_task_factory(1)
    calls = []

    def factory(lp, coro, **kw):
        calls.append((coro.__name__, kw))
        return asyncio.Task(coro, loop=lp, **kw)

    loop.set_task_factory(factory)
    assert loop.get_task_factory() is factory

    async def child():
        return 5

    async def main():
        t1 = loop.create_task(child(), name="one")
        import contextvars
        ctx = contextvars.copy_context()
        t2 = loop.create_task(child(), context=ctx)
        assert t1.get_name() == "one"
        assert [c for c in calls if c[0] == "child"] == [("child", {}),
                                                          ("child", {"context": ctx})]
        return await t1 + await t2

    assert strict_loop.run(main()) == 10
    loop.set_task_factory(None)
    assert loop.get_task_factory() is None
    t = loop.create_task(child(), name="plain")
    assert type(t) is asyncio.Task and t.get_name() == "plain"
    assert loop.run_until_complete(t) == 5


# ---- run_until_complete, run_forever, stop, close ----------------------------------------
def test_run_until_complete_accepts_futures_coroutines_and_awaitables(strict_loop):
    loop = strict_loop.loop

    class Awaitable:
        def __await__(self):
            yield from asyncio.sleep(0).__await__()
            return "awaited"

    async def coro():
        return "coro"

    fut = loop.create_future()
    loop.call_soon(fut.set_result, "future")
    assert loop.run_until_complete(fut) == "future"
    assert loop.run_until_complete(coro()) == "coro"
    assert loop.run_until_complete(Awaitable()) == "awaited"
    with pytest.raises(TypeError, match="An asyncio.Future, a coroutine or an awaitable"):
        loop.run_until_complete(42)
    other = asyncio.new_event_loop()
    try:
        with pytest.raises(ValueError, match="The future belongs to a different loop"):
            loop.run_until_complete(other.create_future())
    finally:
        other.close()


def test_run_until_complete_raises_when_stopped_early_or_running(strict_loop, caplog):
    loop = strict_loop.loop

    async def stops_the_loop():
        loop.stop()
        await asyncio.sleep(1)

    with pytest.raises(RuntimeError, match="Event loop stopped before Future completed."):
        loop.run_until_complete(stops_the_loop())

    async def reenters():
        with pytest.raises(RuntimeError, match="This event loop is already running"):
            loop.run_until_complete(loop.create_future())
        with pytest.raises(RuntimeError, match="This event loop is already running"):
            loop.run_forever()
        return "ok"

    assert loop.run_until_complete(reenters()) == "ok"

    async def raises_base_exception():
        raise GeneratorExit                     # a BaseException: consumed, not logged

    with pytest.raises(GeneratorExit):
        loop.run_until_complete(raises_base_exception())
    loop.run_until_complete(asyncio.sleep(0))
    assert not _asyncio_errors(caplog)


def test_stop_before_run_forever_runs_one_pass(strict_loop):
    loop = strict_loop.loop
    ran = []
    loop.stop()
    loop.call_soon(ran.append, 1)
    loop.run_forever()
    assert ran == [1] and not loop.is_running()
    loop.call_soon(loop.stop)                   # stop() from a callback: that pass completes
    loop.call_soon(ran.append, 2)
    loop.run_forever()
    assert ran == [1, 2]


def test_is_running_and_run_forever_in_another_loop(strict_loop):
    loop = strict_loop.loop
    assert not loop.is_running() and not loop.is_closed()

    async def main():
        assert loop.is_running()
        other = asyncio.new_event_loop()
        try:
            with pytest.raises(RuntimeError, match="Cannot run the event loop while another "
                                                   "loop is running"):
                other.run_until_complete(other.create_future())
        finally:
            other.close()

    strict_loop.run(main())
    assert not loop.is_running()


def test_close(strict_loop):
    loop = strict_loop.loop

    async def close_while_running():
        with pytest.raises(RuntimeError, match="Cannot close a running event loop"):
            loop.close()

    strict_loop.run(close_while_running())
    seen = []
    fut = loop.run_in_executor(None, lambda: threading.current_thread().name)
    assert loop.run_until_complete(fut).startswith("asyncio_")
    executor = loop._default_executor
    h = loop.call_soon(seen.append, 1)
    loop.close()
    assert loop.is_closed() and seen == [] and not h.cancelled()
    assert executor._shutdown
    loop.close()                                # idempotent
    for call in (lambda: loop.call_soon(print), lambda: loop.call_later(1, print),
                 lambda: loop.call_at(1, print), lambda: loop.call_soon_threadsafe(print),
                 lambda: loop.run_forever(), lambda: loop.run_in_executor(None, print)):
        with pytest.raises(RuntimeError, match="Event loop is closed"):
            call()
    coro = asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.create_task(coro)
    coro.close()
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.run_until_complete(coro)


def test_run_in_executor(strict_loop):
    loop = strict_loop.loop
    with concurrent.futures.ThreadPoolExecutor(thread_name_prefix="mine") as pool:
        name = strict_loop.run(loop.run_in_executor(
            pool, lambda a, b: (threading.current_thread().name, a + b), 2, 3))
    assert name[0].startswith("mine") and name[1] == 5
    loop.set_debug(True)
    try:
        async def coro_fn():
            pass
        with pytest.raises(TypeError, match=r"coroutines cannot be used with run_in_executor"):
            loop.run_in_executor(None, coro_fn)
    finally:
        loop.set_debug(False)
    strict_loop.run(loop.shutdown_default_executor())
    with pytest.raises(RuntimeError, match="Executor shutdown has been called"):
        loop.run_in_executor(None, print)
    with concurrent.futures.ThreadPoolExecutor() as pool:     # another executor still works
        assert strict_loop.run(loop.run_in_executor(pool, int, "7")) == 7


def test_call_soon_overridden_in_a_subclass_is_what_tasks_call(eal):
    # the loop keeps a bound call_soon in its __dict__ (loop.pyx): not over a subclass's
    from fastloop.loop.loop import Loop

    class Counting(Loop):
        calls = 0

        def call_soon(self, callback, *args, context=None):
            Counting.calls += 1
            return super().call_soon(callback, *args, context=context)

    loop = Counting(False)
    try:
        assert "call_soon" not in vars(loop)
        loop.run_until_complete(asyncio.sleep(0))     # the task's steps, via C's getattr
        assert Counting.calls >= 2
    finally:
        loop.close()
    plain = Loop(False)
    try:
        assert plain.call_soon.__self__ is plain
        plain.call_soon = calls = []                  # an instance's own still wins
        assert plain.call_soon is calls
    finally:
        plain.close()
