# cython: language_level=3
# IPv4 addresses as text (dotted quads) and back, without the ipaddress module: a transport
# is given its peer's and its own address as strings, and a connect parses one, per
# connection (ipaddress took a fifth of a connect/exchange/close cycle's instructions).
from libc.stdint cimport uint32_t
from cpython.unicode cimport PyUnicode_FromFormat


cdef inline str ipv4_str(uint32_t a):
    """'10.0.0.1' for 0x0a000001 (host byte order), as str(ipaddress.IPv4Address(a))."""
    return PyUnicode_FromFormat(b"%u.%u.%u.%u", <unsigned int>(a >> 24),
                                <unsigned int>((a >> 16) & 0xff), <unsigned int>((a >> 8) & 0xff),
                                <unsigned int>(a & 0xff))


cdef inline bint ipv4_from_str(str s, uint32_t *out):
    """A canonical dotted quad (four decimal octets, no leading zeros, as ipaddress accepts)
    into *out; False for anything else, which the caller hands to ipaddress (its error)."""
    cdef Py_ssize_t n = len(s), i
    cdef uint32_t ch
    cdef uint32_t part = 0, addr = 0
    cdef int digits = 0, dots = 0
    if n < 7 or n > 15:
        return False
    for i in range(n):
        ch = <uint32_t>(<Py_UCS4>s[i])
        if ch == 0x2e:                             # '.'
            if digits == 0 or dots == 3:
                return False
            addr = (addr << 8) | part
            dots += 1
            part = 0
            digits = 0
        elif 0x30 <= ch <= 0x39:                   # '0'-'9'
            if digits and part == 0:
                return False                       # a leading zero
            part = part * 10 + (ch - 0x30)
            digits += 1
            if part > 255:
                return False
        else:
            return False
    if digits == 0 or dots != 3:
        return False
    out[0] = (addr << 8) | part
    return True
