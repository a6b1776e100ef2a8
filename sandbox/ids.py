"""Deterministic hashing and id helpers shared by every emulator.

Synthetic data must be a pure function of the seed so a million-message workspace can be
generated lazily by index and two runs with the same seed agree byte for byte. ``random.Random``
is too slow to build per message, so a splitmix64 finaliser does the mixing instead.
"""

from __future__ import annotations

import hashlib

__all__ = ["MASK64", "derive_key", "make_id", "mix64", "unit"]

MASK64 = (1 << 64) - 1
_ID_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def mix64(value: int) -> int:
    """splitmix64 finaliser: a cheap, well-distributed 64-bit hash of an integer."""
    z = (value + 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def derive_key(*parts: object) -> int:
    """A stable 64-bit key from any printable parts (seed, names, counters)."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def unit(value: int, shift: int = 0, bits: int = 16) -> float:
    """A float in [0, 1) from ``bits`` bits of ``value`` starting at ``shift``."""
    return ((value >> shift) & ((1 << bits) - 1)) / float(1 << bits)


def make_id(prefix: str, *parts: object, length: int = 10) -> str:
    """A provider-style id (``U04ABC...``): prefix plus base36 digits derived from ``parts``."""
    key = derive_key(prefix, *parts)
    chars = []
    for _ in range(length):
        key, digit = divmod(key, 36)
        chars.append(_ID_ALPHABET[digit])
        if key == 0:
            key = derive_key(key, *parts, len(chars))
    return prefix + "".join(chars)
