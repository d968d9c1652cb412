"""A buffer that ends exactly at an unmapped page, so a parser reading past n faults."""
import ctypes
import mmap

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                       ctypes.c_int, ctypes.c_long]
_libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]

PAGE = mmap.PAGESIZE
PROT_NONE = 0


class GuardedBuffer:
    """Two pages, the second PROT_NONE; data is placed to end at the boundary."""

    def __init__(self):
        addr = _libc.mmap(None, 2 * PAGE, mmap.PROT_READ | mmap.PROT_WRITE,
                          mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, -1, 0)
        if addr in (None, ctypes.c_void_p(-1).value):
            raise OSError(ctypes.get_errno(), "mmap")
        if _libc.mprotect(addr + PAGE, PAGE, PROT_NONE) != 0:
            raise OSError(ctypes.get_errno(), "mprotect")
        self.end = addr + PAGE            # first unreadable byte

    def place(self, data):
        """A memoryview of exactly len(data) bytes whose next byte is unmapped."""
        n = len(data)
        assert n <= PAGE
        start = self.end - n
        ctypes.memmove(start, bytes(data), n)
        return memoryview((ctypes.c_ubyte * n).from_address(start)).cast("B")


_guard = None


def guarded(data):
    global _guard
    if _guard is None:
        _guard = GuardedBuffer()
    return _guard.place(data)
