# cython: language_level=3
"""asyncio's BaseEventLoop methods, compiled: LoopAPI(LoopCore), the C base of fastloop's
`class Loop(LoopAPI, asyncio.SelectorEventLoop)` (loop.pyx).

Each method is CPython 3.11's Lib/asyncio/base_events.py (the interpreter fastloop is built
and tested on; 3.12's run_forever setup/cleanup split is followed), statement for statement,
with the loop's state in LoopCore's C fields. That is where the gain is: a method of an
extension type is called without binding a method object, `self._closed` is a load instead
of two dict lookups, and no bytecode runs. What asyncio calls through `self.` (run_forever
from run_until_complete, default_exception_handler from call_exception_handler, the task
factory) is still called through `self.`, so a subclass's or a test's override is seen; the
private checks (_check_closed, _check_running, _check_default_executor) are inlined.

Left to asyncio, as a compiled copy would repeat it line for line with no measurable gain:
getaddrinfo, getnameinfo (a thread-pool round trip through run_in_executor, which is
compiled: 42 us a call, of which the coroutine's own bytecode is about 1 us), and
shutdown_asyncgens, shutdown_default_executor (once per loop; the latter's signature
changed in 3.12).
"""
import concurrent.futures
import sys
import threading
import traceback
import types
import warnings

cimport cython
from asyncio import base_events, constants, events, futures, tasks

from cpython.exc cimport PyErr_CheckSignals
from fastloop.includes.dpdk cimport fl_now_ns
from fastloop.loop.core cimport LoopCore, heap_push
from fastloop.loop.handles cimport Handle, TimerHandle, new_handle, new_timer

# asyncio's module globals are looked up when called, as asyncio's code does (tests patch
# events._set_running_loop and base_events.logger), but for the C Future and Task (_asyncio)
cdef object _Future = futures.Future
cdef object _Task = tasks.Task
cdef object _CoroutineType = types.CoroutineType
cdef bint _HAS_RUN_FOREVER_SETUP = hasattr(base_events.BaseEventLoop, "_run_forever_setup")


def _run_until_complete_cb(fut):
    """base_events._run_until_complete_cb."""
    if not fut.cancelled():
        exc = fut.exception()
        if isinstance(exc, (SystemExit, KeyboardInterrupt)):
            return                          # run_forever() already finished (bpo-22429)
    try:                                    # futures._get_loop
        get_loop = fut.get_loop
    except AttributeError:
        loop = fut._loop
    else:
        loop = get_loop()
    loop.stop()


cdef inline int _check_closed(LoopCore loop) except -1:
    if loop._closed:
        raise RuntimeError("Event loop is closed")
    return 0


cdef int _check_running(LoopCore loop) except -1:
    if loop._thread_id is not None:
        raise RuntimeError("This event loop is already running")
    if events._get_running_loop() is not None:
        raise RuntimeError("Cannot run the event loop while another loop is running")
    return 0


cdef int _iterate(LoopCore loop) except -1:
    while True:
        loop.run_once()
        PyErr_CheckSignals()                # Ctrl-C between iterations, as in Python
        if loop._stopping:
            return 0


cdef TimerHandle _schedule(LoopCore loop, double when, object callback, tuple args,
                           object context, str method):
    """call_at and call_later: asyncio's checks, then a TimerHandle on the heap."""
    _check_closed(loop)
    if loop._debug:
        loop._check_thread()
        loop._check_callback(callback, method)
    cdef TimerHandle t = new_timer(when, callback, args, loop, context, loop._debug)
    heap_push(loop._scheduled, t)
    t._scheduled = True
    return t


@cython.auto_pickle(False)
cdef class LoopAPI(LoopCore):

    # ---- callbacks ---------------------------------------------------------------------
    def time(self):
        return fl_now_ns() * 1e-9               # CLOCK_MONOTONIC, as time.monotonic()

    @cython.binding(False)                      # bound, a builtin method: see Loop.__init__
    def call_soon(self, callback, *args, context=None):
        _check_closed(self)
        if self._debug:
            self._check_thread()
            self._check_callback(callback, "call_soon")
        # the source traceback (debug) ends at the caller: compiled frames are not in it
        cdef Handle h = new_handle(callback, args, self, context, self._debug)
        self.ready_append(h)
        return h

    def _call_soon(self, callback, args, context):
        cdef Handle h = new_handle(callback, tuple(args), self, context, self._debug)
        self.ready_append(h)
        return h

    def call_soon_threadsafe(self, callback, *args, context=None):
        _check_closed(self)
        if self._debug:
            self._check_callback(callback, "call_soon_threadsafe")
        cdef Handle h = new_handle(callback, args, self, context, self._debug)
        self.ready_append(h)                    # deque.append: atomic under the GIL
        self.wake()
        return h

    def call_at(self, when, callback, *args, context=None):
        if when is None:
            raise TypeError("when cannot be None")
        return _schedule(self, when, callback, args, context, "call_at")

    def call_later(self, delay, callback, *args, context=None):
        if delay is None:
            raise TypeError("delay must not be None")
        # asyncio's call_later is its call_at: the checks name call_at
        return _schedule(self, fl_now_ns() * 1e-9 + delay, callback, args, context,
                         "call_at")

    def _timer_handle_cancelled(self, handle):
        if type(handle) is TimerHandle:
            if (<TimerHandle>handle)._scheduled:
                self._timer_cancelled_count += 1
        elif handle._scheduled:
            self._timer_cancelled_count += 1

    # ---- futures and tasks -------------------------------------------------------------
    def create_future(self):
        return _Future(loop=self)

    def create_task(self, coro, *, name=None, context=None):
        _check_closed(self)
        if self._task_factory is None:
            if name is None and context is None:    # Task's defaults: a smaller kwargs dict
                task = _Task(coro, loop=self)
            else:
                task = _Task(coro, loop=self, name=name, context=context)
            if task._source_traceback:
                del task._source_traceback[-1]
        else:
            if context is None:
                task = self._task_factory(self, coro)   # the legacy factory signature
            else:
                task = self._task_factory(self, coro, context=context)
            tasks._set_task_name(task, name)
        return task

    def set_task_factory(self, factory):
        if factory is not None and not callable(factory):
            raise TypeError("task factory must be a callable or None")
        self._task_factory = factory

    def get_task_factory(self):
        return self._task_factory

    # ---- running -----------------------------------------------------------------------
    def is_running(self):
        return self._thread_id is not None

    def is_closed(self):
        return self._closed

    def _check_closed(self):
        _check_closed(self)

    def _check_running(self):
        _check_running(self)

    def run_forever(self):
        """asyncio's run_forever, with the iterations in C."""
        if _HAS_RUN_FOREVER_SETUP:              # Python 3.12+: asyncio's own setup, cleanup
            self._run_forever_setup()
            try:
                _iterate(self)
            finally:
                self._run_forever_cleanup()
            return
        _check_closed(self)
        _check_running(self)
        self._set_coroutine_origin_tracking(self._debug)
        old_agen_hooks = sys.get_asyncgen_hooks()
        try:
            self._thread_id = threading.get_ident()
            sys.set_asyncgen_hooks(firstiter=self._asyncgen_firstiter_hook,
                                   finalizer=self._asyncgen_finalizer_hook)
            events._set_running_loop(self)
            _iterate(self)
        finally:
            self._stopping = False
            self._thread_id = None
            events._set_running_loop(None)
            self._set_coroutine_origin_tracking(False)
            sys.set_asyncgen_hooks(*old_agen_hooks)

    def run_until_complete(self, future):
        _check_closed(self)
        _check_running(self)
        if type(future) is _CoroutineType:     # tasks.ensure_future's coroutine case
            new_task = True
            try:
                future = self.create_task(future)
            except RuntimeError:
                future.close()
                raise
        else:
            new_task = not futures.isfuture(future)
            future = tasks.ensure_future(future, loop=self)
        if new_task:
            # an exception is raised if it did not complete: no "destroy pending task" log
            future._log_destroy_pending = False
        future.add_done_callback(_run_until_complete_cb)
        try:
            self.run_forever()
        except:
            if new_task and future.done() and not future.cancelled():
                # the coroutine raised a BaseException: consume it, not to log a warning,
                # as the caller has no access to the task
                future.exception()
            raise
        finally:
            future.remove_done_callback(_run_until_complete_cb)
        if not future.done():
            raise RuntimeError("Event loop stopped before Future completed.")
        return future.result()

    def stop(self):
        self._stopping = True

    def close(self):
        """_UnixSelectorEventLoop.close, BaseSelectorEventLoop.close and
        BaseEventLoop.close, in one."""
        if self._thread_id is not None:
            raise RuntimeError("Cannot close a running event loop")
        if not self._closed:
            self._close_self_pipe()
            if self._debug:
                base_events.logger.debug("Close %r", self)
            self._closed = True
            self.ready.clear()
            self._scheduled.clear()
            self._executor_shutdown_called = True
            executor = self._default_executor
            if executor is not None:
                self._default_executor = None
                executor.shutdown(wait=False)
            if self._selector is not None:
                self._selector.close()
                self._selector = None
            self.epfd = -1                      # closed with the selector
            self.fd_to_key = None
        # asyncio's unix loop removes its signal handlers on every close(), a second too
        if not sys.is_finalizing():
            for sig in list(self._signal_handlers):
                self.remove_signal_handler(sig)
        elif self._signal_handlers:
            warnings.warn(f"Closing the loop {self!r} on interpreter shutdown stage, "
                          f"skipping signal handlers removal", ResourceWarning, source=self)
            self._signal_handlers.clear()

    # ---- debug mode --------------------------------------------------------------------
    def get_debug(self):
        return self._debug

    def set_debug(self, enabled):
        self._debug = enabled
        if self.is_running():
            self.call_soon_threadsafe(self._set_coroutine_origin_tracking, enabled)

    def _set_coroutine_origin_tracking(self, enabled):
        if bool(enabled) == bool(self._coroutine_origin_tracking_enabled):
            return
        if enabled:
            self._coroutine_origin_tracking_saved_depth = (
                sys.get_coroutine_origin_tracking_depth())
            sys.set_coroutine_origin_tracking_depth(constants.DEBUG_STACK_DEPTH)
        else:
            sys.set_coroutine_origin_tracking_depth(
                self._coroutine_origin_tracking_saved_depth)
        self._coroutine_origin_tracking_enabled = enabled

    # ---- the executor ------------------------------------------------------------------
    def run_in_executor(self, executor, func, *args):
        _check_closed(self)
        if self._debug:
            self._check_callback(func, "run_in_executor")
        if executor is None:
            executor = self._default_executor
            if self._executor_shutdown_called:  # only checked for the default executor
                raise RuntimeError("Executor shutdown has been called")
            if executor is None:
                executor = concurrent.futures.ThreadPoolExecutor(thread_name_prefix="asyncio")
                self._default_executor = executor
        return futures.wrap_future(executor.submit(func, *args), loop=self)

    # ---- the exception handler ---------------------------------------------------------
    def get_exception_handler(self):
        return self._exception_handler

    def set_exception_handler(self, handler):
        if handler is not None and not callable(handler):
            raise TypeError(f"A callable object or None is expected, got {handler!r}")
        self._exception_handler = handler

    def default_exception_handler(self, context):
        message = context.get("message")
        if not message:
            message = "Unhandled exception in event loop"
        exception = context.get("exception")
        if exception is not None:
            exc_info = (type(exception), exception, exception.__traceback__)
        else:
            exc_info = False
        if ("source_traceback" not in context and self._current_handle is not None
                and self._current_handle._source_traceback):
            context["handle_traceback"] = self._current_handle._source_traceback
        log_lines = [message]
        for key in sorted(context):
            if key in {"message", "exception"}:
                continue
            value = context[key]
            if key == "source_traceback":
                tb = "".join(traceback.format_list(value))
                value = "Object created at (most recent call last):\n"
                value += tb.rstrip()
            elif key == "handle_traceback":
                tb = "".join(traceback.format_list(value))
                value = "Handle created at (most recent call last):\n"
                value += tb.rstrip()
            else:
                value = repr(value)
            log_lines.append(f"{key}: {value}")
        base_events.logger.error("\n".join(log_lines), exc_info=exc_info)

    def call_exception_handler(self, context):
        if self._exception_handler is None:
            try:
                self.default_exception_handler(context)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException:
                # the second layer, for a subclass's default_exception_handler too
                base_events.logger.error("Exception in default exception handler",
                                         exc_info=True)
        else:
            try:
                self._exception_handler(self, context)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                try:                            # the user's handler failed: the default's turn
                    self.default_exception_handler({
                        "message": "Unhandled error in exception handler",
                        "exception": exc,
                        "context": context,
                    })
                except (SystemExit, KeyboardInterrupt):
                    raise
                except BaseException:
                    base_events.logger.error(
                        "Exception in default exception handler while handling an "
                        "unexpected error in custom exception handler", exc_info=True)
