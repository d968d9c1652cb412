# cython: language_level=3
"""What the Python-facing sinks (tcp/pysink, udp/pysink) do when a handler raises."""
import sys
import traceback


cdef void report_handler_error(object target, str what) noexcept:
    """A handler raised: keep the exception on the target (tests look) and print it."""
    try:
        exc = sys.exc_info()[1]
        errors = getattr(target, "errors", None)
        if isinstance(errors, list):
            errors.append(exc)
        print(f"fastloop: exception in {what} of {target!r}", file=sys.stderr)
        traceback.print_exc()
    except BaseException:
        pass
