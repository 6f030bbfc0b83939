# Category codes for strings (hosts, protocols, MACs): small integers against one
# table per call, so that a string is made once per distinct value, not per packet.
#
# Strategy: IPv4 addresses and MACs are integer keys looked up in hash tables made of
# numpy arrays (vectorised over a batch); IPv6 addresses are byte-string keys looked
# up once per distinct key of a batch.
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["_Table", "_Coder", "_BytesCoder", "_code_type", "_mac_str"]


class _Table:
    """Strings to category codes, in order of first appearance."""

    __slots__ = ("codes", "names")

    def __init__(self) -> None:
        self.codes: dict[str, int] = {}
        self.names: list[str] = []

    def code(self, s: str | None) -> int:
        if s is None:
            return -1
        c = self.codes.get(s)
        if c is None:
            c = self.codes[s] = len(self.names)
            self.names.append(s)
        return c


def _mac_str(v: int) -> str:
    return ":".join(f"{(v >> s) & 255:02x}" for s in (40, 32, 24, 16, 8, 0))


def _code_type(n_names: int) -> Any:
    """The code type pandas itself picks for n categories (so it keeps our array)."""
    return np.int8 if n_names < 127 else np.int16 if n_names < 32767 else np.int32


class _Coder:
    """Integer keys (IPv4 addresses, MACs) to category codes, vectorised.

    A batch is looked up in hash tables made of numpy arrays (slot -> key, slot -> code):
    a multiply, two gathers and a compare per key, a quarter of what sorting the batch
    costs. Each key has a slot in each of two tables (two hash functions) and sits in
    the first of them that was free, so nearly every key is found by the first or the
    second lookup. The rare key whose two slots other keys took is kept in a dict.
    Keys never seen are found in a sorted array of every key seen so far, and only
    they are made into strings.
    """

    _MIN_BITS = 12
    _MAX_BITS = 18  # two tables of 256K slots (6 MiB for MACs); past that, more keys take the sorted path
    # Fibonacci hashing (the top bits of key * 2**64 / golden ratio), and a second odd multiplier
    _MULTIPLIERS = (0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F)

    def __init__(self, table: _Table, fmt: Any, dtype: Any) -> None:
        self.table, self.fmt = table, fmt
        self.dtype = np.dtype(dtype)
        self._width = self.dtype.itemsize * 8
        self._mults = [self.dtype.type(m >> (64 - self._width)) for m in self._MULTIPLIERS]
        self.keys = np.zeros(0, dtype=dtype)  # every key seen, sorted
        self.vals = np.zeros(0, dtype=np.int32)
        self._resize(self._MIN_BITS)

    def _slots(self, keys: np.ndarray, mult: Any) -> np.ndarray:
        # as intp: numpy gathers by any other index type several times slower
        return ((keys * mult) >> self.dtype.type(self._width - self._bits)).astype(np.intp)

    def _resize(self, bits: int) -> None:
        self._bits = bits
        self._tables = [(mult, np.zeros(1 << bits, dtype=self.dtype), np.full(1 << bits, -1, dtype=np.int32))
                        for mult in self._mults]
        self._homeless: dict[int, int] = {}
        self._place(self.keys, self.vals)

    def _place(self, keys: np.ndarray, codes: np.ndarray) -> None:
        """Put each key in the first table where its slot is free, one key per slot."""
        for mult, slot_key, slot_code in self._tables:
            if not len(keys):
                return
            slots = self._slots(keys, mult)
            free = np.flatnonzero(slot_code[slots] < 0)
            taken, first = np.unique(slots[free], return_index=True)
            slot_key[taken] = keys[free[first]]
            slot_code[taken] = codes[free[first]]
            left = np.ones(len(keys), dtype=bool)
            left[free[first]] = False
            keys, codes = keys[left], codes[left]
        self._homeless.update(zip(keys.tolist(), codes.tolist()))

    def codes(self, keys: np.ndarray) -> np.ndarray:
        out = np.empty(len(keys), dtype=np.int32)
        at = None  # rows not found yet; None: all of them
        for mult, slot_key, slot_code in self._tables:
            look = keys if at is None else keys[at]
            slots = self._slots(look, mult)
            found = slot_code[slots]
            lost = (slot_key[slots] != look) | (found < 0)
            if at is None:
                out[:] = found
                at = np.flatnonzero(lost)
            else:
                out[at] = found
                at = at[lost]
            if not len(at):
                return out
        if len(at) <= 64:  # a few keys: dict lookups cost less than numpy calls
            found = [self._homeless.get(k, -1) for k in keys[at].tolist()]
            out[at] = found
            if -1 not in found:
                return out
            at = at[out[at] < 0]
        out[at] = self._sorted_codes(keys[at])
        return out

    def _sorted_codes(self, keys: np.ndarray) -> np.ndarray:
        # sorting a batch's keys is cheaper than searching each of them
        uniq, inv = np.unique(keys, return_inverse=True)
        idx = np.searchsorted(self.keys, uniq)
        if len(self.keys):
            np.minimum(idx, len(self.keys) - 1, out=idx)
            new = uniq[self.keys[idx] != uniq]
        else:
            new = uniq
        if len(new):
            fmt, table = self.fmt, self.table
            codes = np.array([table.code(fmt(v)) for v in new.tolist()], dtype=np.int32)
            allkeys = np.concatenate([self.keys, new])
            order = np.argsort(allkeys, kind="stable")
            self.keys, self.vals = allkeys[order], np.concatenate([self.vals, codes])[order]
            idx = np.searchsorted(self.keys, uniq)
            # an eighth full at most: about one key in sixteen misses its first slot
            if 8 * len(self.keys) > (1 << self._bits) and self._bits < self._MAX_BITS:
                self._resize(min(self._MAX_BITS, (8 * len(self.keys)).bit_length()))
            else:
                self._place(new, codes)
        return self.vals[idx][inv.reshape(-1)]


class _BytesCoder:
    """Byte-string keys (IPv6 addresses) to category codes: one dict lookup per
    distinct key of a batch."""

    def __init__(self, table: _Table, fmt: Any) -> None:
        self.table, self.fmt = table, fmt
        self.known: dict[bytes, int] = {}

    def codes(self, keys: np.ndarray) -> np.ndarray:
        uniq, inv = np.unique(keys, return_inverse=True)
        known, table, fmt = self.known, self.table, self.fmt
        out = np.empty(len(uniq), dtype=np.int32)
        # the void view keeps trailing zero bytes, which the bytes type would strip
        for k, raw in enumerate(uniq.view(f"V{uniq.dtype.itemsize}").tolist()):
            c = known.get(raw)
            if c is None:
                c = known[raw] = table.code(fmt(raw))
            out[k] = c
        return out[inv.reshape(-1)]
