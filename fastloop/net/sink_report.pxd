# cython: language_level=3
cdef void report_handler_error(object target, str what) noexcept
