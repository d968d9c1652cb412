# cython: language_level=3
# Callback handles: asyncio.Handle and asyncio.TimerHandle's interface (and attribute names,
# which asyncio's own code reads: _callback, _args, _cancelled, _when, _scheduled), as C
# structs the loop creates and runs without going through Python-level __init__ or
# Context.run.

cdef class Handle:
    cdef public object _callback
    cdef public object _args            # a tuple
    cdef public object _context         # contextvars.Context
    cdef public object _loop
    cdef public object _source_traceback
    cdef public object _repr
    cdef public bint _cancelled
    cdef object __weakref__

    cdef int run(self) except -1        # SystemExit/KeyboardInterrupt propagate; others go
                                        # to the loop's exception handler
    cdef int cancel_c(self) except -1   # Handle.cancel (TimerHandle.cancel's second half)

cdef class TimerHandle(Handle):
    cdef public double _when
    cdef public bint _scheduled

cdef Handle new_handle(object callback, tuple args, object loop, object context, bint debug)
cdef TimerHandle new_timer(double when, object callback, tuple args, object loop,
                           object context, bint debug)
