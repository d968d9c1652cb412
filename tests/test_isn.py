"""SipHash-2-4 against the paper's vectors, and RFC 6528 initial sequence numbers."""
import hashlib

import pytest
from hypothesis import given, settings, strategies as st

from fastloop.net.tcp import isn_testing as T

KEY = bytes(range(16))
# SipHash-2-4 test vectors, key 00..0f, message 00..n-1 for n = 0..63 (Aumasson & Bernstein,
# "SipHash: a fast short-input PRF", appendix; the reference vectors.h): the output bytes.
VECTORS = """
310e0edd47db6f72 fd67dc93c539f874 5a4fa9d909806c0d 2d7efbd796666785
b7877127e09427cf 8da699cd64557618 cee3fe586e46c9cb 37d1018bf50002ab
6224939a79f5f593 b0e4a90bdf82009e f3b9dd94c5bb5d7a a7ad6b22462fb3f4
fbe50e86bc8f1e75 903d84c02756ea14 eef27a8e90ca23f7 e545be4961ca29a1
db9bc2577fcc2a3f 9447be2cf5e99a69 9cd38d96f0b3c14b bd6179a71dc96dbb
98eea21af25cd6be c7673b2eb0cbf2d0 883ea3e395675393 c8ce5ccd8c030ca8
94af49f6c650adb8 eab8858ade92e1bc f315bb5bb835d817 adcf6b0763612e2f
a5c91da7acaa4dde 716595876650a2a6 28ef495c53a387ad 42c341d8fa92d832
ce7cf2722f512771 e37859f94623f3a7 381205bb1ab0e012 ae97a10fd434e015
b4a31508beff4d31 81396229f0907902 4d0cf49ee5d4dcca 5c73336a76d8bf9a
d0a704536ba93e0e 925958fcd6420cad a915c29bc8067318 952b79f3bc0aa6d4
f21df2e41d4535f9 87577519048f53a9 10a56cf5dfcd9adb eb75095ccd986cd0
51a9cb9ecba312e6 96afadfc2ce666c7 72fe52975a4364ee 5a1645b276d592a1
b274cb8ebf87870a 6f9bb4203de7b381 eaecb2a30b22a87f 9924a43cc1315724
bd838d3aafbf8db7 0b1a2a3265d51aea 135079a3231ce660 932b2846e4d70666
e1915f5cb1eca46c f325965ca16d629f 575ff28e60381be5 724506eb4c328a95
""".split()
M32 = 0xFFFFFFFF
K0 = int.from_bytes(KEY[:8], "little")
K1 = int.from_bytes(KEY[8:], "little")


def secrets(tag=b"fastloop"):
    return T.Secrets(hashlib.sha256(tag).digest())


def words_le(b):
    return [int.from_bytes(b[i:i + 8], "little") for i in range(0, len(b), 8)]


u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, M32)
u64 = st.integers(0, 2**64 - 1)


# --- SipHash ---------------------------------------------------------------------------------

def test_there_are_64_vectors():
    assert len(VECTORS) == 64 and all(len(v) == 16 for v in VECTORS)


@pytest.mark.parametrize("n", range(64))
def test_siphash_reference_vector(n):
    out = T.siphash(KEY, bytes(range(n)))
    assert out.to_bytes(8, "little").hex() == VECTORS[n]


@pytest.mark.parametrize("nwords", range(8))
def test_siphash_words_matches_vectors(nwords):
    """The word form is the byte form over the little-endian encoding."""
    assert T.siphash_words(K0, K1, words_le(bytes(range(8 * nwords)))) == \
        int.from_bytes(bytes.fromhex(VECTORS[8 * nwords]), "little")


@given(k0=u64, k1=u64, words=st.lists(u64, max_size=8))
def test_siphash_words_equals_bytes(k0, k1, words):
    key = k0.to_bytes(8, "little") + k1.to_bytes(8, "little")
    msg = b"".join(w.to_bytes(8, "little") for w in words)
    assert T.siphash_words(k0, k1, words) == T.siphash(key, msg)


@given(k0=u64, k1=u64, saddr=u32, sport=u16, daddr=u32, dport=u16, x=u32, y=u64)
def test_siphash_tuple_layout(k0, k1, saddr, sport, daddr, dport, x, y):
    """The documented three-word layout of the 4-tuple and the extra words."""
    words = [saddr << 32 | daddr, sport << 48 | dport << 32 | x, y]
    assert T.siphash_tuple(k0, k1, saddr, sport, daddr, dport, x, y) == \
        T.siphash_words(k0, k1, words)


def test_siphash_every_key_bit_matters():
    msg = bytes(range(24))
    base = T.siphash(KEY, msg)
    outs = set()
    for bit in range(128):
        key = (int.from_bytes(KEY, "little") ^ (1 << bit)).to_bytes(16, "little")
        outs.add(T.siphash(key, msg))
    assert base not in outs and len(outs) == 128


def test_siphash_key_length_checked():
    with pytest.raises(ValueError):
        T.siphash(b"short", b"")


# --- secrets ---------------------------------------------------------------------------------

def test_secrets_are_little_endian_words():
    raw = bytes(range(32))
    assert T.Secrets(raw).words == tuple(words_le(raw))
    with pytest.raises(ValueError):
        T.Secrets(bytes(31))
    assert T.SECRETS_BYTES == 32


# --- ISN (RFC 6528 §3) -----------------------------------------------------------------------

TUPLE = (0x0A4D0001, 8080, 0x0A4D0002, 43210)
SEC = 10**9


def isn(sec, tup, now):
    return T.isn(sec, *tup, now)


def seq_diff(later, earlier):
    return (later - earlier) & M32


@pytest.mark.parametrize("now", [0, 1, 3999, 12345678901, 2**40 + 17, 2**63])
def test_isn_advances_250k_per_second(now):
    s = secrets()
    assert T.ISN_TICK_NS == 4000
    assert seq_diff(isn(s, TUPLE, now + SEC), isn(s, TUPLE, now)) == 250_000
    assert seq_diff(isn(s, TUPLE, now + 60 * SEC), isn(s, TUPLE, now)) == 15_000_000


def test_isn_ticks_every_4_microseconds():
    s = secrets()
    t0 = 4000 * 1_000_003
    base = isn(s, TUPLE, t0)
    assert isn(s, TUPLE, t0 + 3999) == base
    assert isn(s, TUPLE, t0 + 4000) == (base + 1) & M32
    assert isn(s, TUPLE, t0 - 1) == (base - 1) & M32
    assert [seq_diff(isn(s, TUPLE, t0 + 4000 * k), base) for k in range(10)] == list(range(10))


def test_isn_is_timer_plus_hash():
    """ISN - M is the same F for all time, including after M wraps (2**32 ticks, ~4.77 h)."""
    s = secrets()
    f = isn(s, TUPLE, 0)
    for now in (1, 4000 * 12345, 4000 * (2**32 - 1), 4000 * 2**32, 4000 * 2**32 + 4000 * 7):
        assert seq_diff(isn(s, TUPLE, now), f) == (now // 4000) & M32
    assert f == T.siphash_tuple(*s.words[:2], *TUPLE, 0, 0) & M32


@given(raw=st.binary(min_size=32, max_size=32), saddr=u32, sport=u16, daddr=u32, dport=u16,
       now=u64)
def test_isn_is_deterministic(raw, saddr, sport, daddr, dport, now):
    a, b = T.Secrets(raw), T.Secrets(bytes(raw))
    assert T.isn(a, saddr, sport, daddr, dport, now) == T.isn(b, saddr, sport, daddr, dport, now)


@given(saddr=u32, sport=u16, daddr=u32, dport=u16, field=st.integers(0, 3),
       delta=st.integers(1, 0xFFFF), now=st.integers(0, 2**62))
def test_isn_changes_with_any_tuple_field(saddr, sport, daddr, dport, field, delta, now):
    s = secrets()
    tup = [saddr, sport, daddr, dport]
    other = list(tup)
    other[field] = (other[field] + delta) & (M32 if field % 2 == 0 else 0xFFFF)
    assert isn(s, tup, now) != isn(s, other, now)


def test_isn_differs_across_tuples_and_looks_uniform():
    """4096 neighbouring tuples: distinct ISNs, and every bit set about half the time (a
    keyed PRF; a sum or xor of the fields would fail both)."""
    s = secrets()
    values = [isn(s, (0x0A000001, 80, 0x0A000002, port), 10**12) for port in range(4096)]
    assert len(set(values)) == 4096
    for bit in range(32):
        ones = sum((v >> bit) & 1 for v in values)
        assert 0.45 * 4096 < ones < 0.55 * 4096, f"bit {bit}: {ones} of 4096"
    # Direction matters: the reverse tuple is a different connection's ISN.
    assert isn(s, TUPLE, 0) != isn(s, (TUPLE[2], TUPLE[3], TUPLE[0], TUPLE[1]), 0)


def test_isn_differs_across_secrets_and_uses_only_the_isn_key():
    base_raw = hashlib.sha256(b"k").digest()
    base = isn(T.Secrets(base_raw), TUPLE, 5 * SEC)
    changed = set()
    for bit in range(128):              # every bit of k0, k1
        raw = (int.from_bytes(base_raw, "little") ^ (1 << bit)).to_bytes(32, "little")
        changed.add(isn(T.Secrets(raw), TUPLE, 5 * SEC))
    assert base not in changed and len(changed) == 128
    for bit in range(128, 256):         # the cookie key c0, c1 does not enter the ISN
        raw = (int.from_bytes(base_raw, "little") ^ (1 << bit)).to_bytes(32, "little")
        assert isn(T.Secrets(raw), TUPLE, 5 * SEC) == base
    assert isn(secrets(b"stack A"), TUPLE, 0) != isn(secrets(b"stack B"), TUPLE, 0)
