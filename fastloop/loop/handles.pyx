# cython: language_level=3
"""asyncio's Handle and TimerHandle, compiled (see handles.pxd).

Behaviour follows asyncio/events.py line for line (repr, cancel, debug-mode source
tracebacks, exception reporting); what changes is the cost: creation fills the struct
directly, and run() enters the handle's context with the C API instead of Context.run.
Like uvloop's, these are not subclasses of asyncio.Handle (a C type cannot inherit a Python
class); asyncio itself never checks.
"""
import sys

cimport cython
from asyncio import format_helpers
from cpython.contextvars cimport PyContext_CopyCurrent, PyContext_Enter, PyContext_Exit


@cython.freelist(256)                   # one per call_soon: recycled, as uvloop's are
cdef class Handle:
    def __init__(self, callback, args, loop, context=None):
        _fill(self, callback, tuple(args), loop, context, loop.get_debug())

    def _repr_info(self):
        info = [self.__class__.__name__]
        if self._cancelled:
            info.append("cancelled")
        if self._callback is not None:
            info.append(format_helpers._format_callback_source(self._callback, self._args))
        if self._source_traceback:
            frame = self._source_traceback[-1]
            info.append(f"created at {frame[0]}:{frame[1]}")
        return info

    def __repr__(self):
        if self._repr is not None:
            return self._repr
        return "<{}>".format(" ".join(self._repr_info()))

    def get_context(self):
        return self._context

    def cancel(self):
        self.cancel_c()

    cdef int cancel_c(self) except -1:
        if not self._cancelled:
            self._cancelled = True
            if self._loop.get_debug():
                self._repr = repr(self)       # keep what it was, for the slow-callback log
            self._callback = None
            self._args = None
        return 0

    def cancelled(self):
        return self._cancelled

    def _run(self):
        self.run()

    cdef int run(self) except -1:
        cdef object context = self._context
        cdef object args = self._args
        PyContext_Enter(context)
        try:
            if type(args) is not tuple or len(<tuple>args) > 1:
                self._callback(*args)
            elif len(<tuple>args) == 0:     # vectorcalls, without unpacking a tuple
                self._callback()
            else:
                self._callback((<tuple>args)[0])
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            cb = format_helpers._format_callback_source(self._callback, self._args)
            info = {"message": f"Exception in callback {cb}", "exception": exc,
                    "handle": self}
            if self._source_traceback:
                info["source_traceback"] = self._source_traceback
            self._loop.call_exception_handler(info)
        finally:
            PyContext_Exit(context)
        return 0


cdef class TimerHandle(Handle):         # (a freelist is the base class's only, in Cython)
    def __init__(self, when, callback, args, loop, context=None):
        _fill(self, callback, tuple(args), loop, context, loop.get_debug())
        if self._source_traceback:
            del self._source_traceback[-1]
        self._when = when
        self._scheduled = False

    def _repr_info(self):
        info = Handle._repr_info(self)
        info.insert(2 if self._cancelled else 1, f"when={self._when}")
        return info

    def __hash__(self):
        return hash(self._when)

    def __lt__(self, other):
        if isinstance(other, TimerHandle):
            return self._when < (<TimerHandle>other)._when
        return NotImplemented

    def __le__(self, other):
        if isinstance(other, TimerHandle):
            return self._when < (<TimerHandle>other)._when or self.__eq__(other)
        return NotImplemented

    def __gt__(self, other):
        if isinstance(other, TimerHandle):
            return self._when > (<TimerHandle>other)._when
        return NotImplemented

    def __ge__(self, other):
        if isinstance(other, TimerHandle):
            return self._when > (<TimerHandle>other)._when or self.__eq__(other)
        return NotImplemented

    def __eq__(self, other):
        if isinstance(other, TimerHandle):
            return (self._when == (<TimerHandle>other)._when
                    and self._callback == other._callback and self._args == other._args
                    and self._cancelled == other._cancelled)
        return NotImplemented

    def cancel(self):
        if not self._cancelled:
            self._loop._timer_handle_cancelled(self)
        self.cancel_c()

    def when(self):
        """The absolute time it is scheduled for, on loop.time()'s clock."""
        return self._when


cdef inline void _fill(Handle h, object callback, tuple args, object loop, object context,
                       bint debug):
    h._callback = callback
    h._args = args
    h._loop = loop
    h._context = PyContext_CopyCurrent() if context is None else context
    h._cancelled = False
    if debug:
        h._source_traceback = format_helpers.extract_stack(sys._getframe(0))   # Cython adds no frames


cdef Handle new_handle(object callback, tuple args, object loop, object context, bint debug):
    cdef Handle h = Handle.__new__(Handle)
    _fill(h, callback, args, loop, context, debug)
    return h


cdef TimerHandle new_timer(double when, object callback, tuple args, object loop,
                           object context, bint debug):
    cdef TimerHandle h = TimerHandle.__new__(TimerHandle)
    _fill(h, callback, args, loop, context, debug)
    h._when = when
    h._scheduled = False
    return h
