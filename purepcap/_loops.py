# Which hot loops this interpreter runs: the one place that chooses (issue 21).
#
# purepcap.open()'s readers (format.Capture) cut records out of a buffer of the file.
# CPython and PyPy want that buffer made differently, so each has its own loops, both
# taking every container rule from _container and both run over every case of the
# conformance suite (tests/test_conformance.py flips LOOPS) on whichever interpreter
# runs the tests:
#
# - "cpython" (format.Capture._iter_pcap, _iter_pcapng): each read() is a fresh bytes
#   object of READ_SIZE (L2-cache sized) and each packet's data a slice of it. The
#   loops are shaped for CPython's interpreter: one unpack per record, locals only, a
#   Packet made without entering __init__, a pcapng block's trailer read together with
#   the next block's fields.
# - "pypy" (format.Capture._iter_pcap_pypy, _iter_pcapng_pypy): one bytearray, reused,
#   refilled in place by readinto(), each packet's data copied out of it as bytes. On
#   PyPy the fresh bytes of each read() are allocated outside the nursery and counted
#   towards the next major collection, so a 700 MB file set off a major collection
#   every few MB, each marking everything alive (all of purepcap and of what it
#   imports): reading mixed.pcap's 1M packets took 0.45-0.5 s of CPU with them and
#   0.2-0.25 s with the reused buffer (bench/RESULTS.md, "PyPy"). The JIT compiles the
#   plainer loops well, so they call _container's small functions (epb_fits) where
#   CPython's inline them, and read an enhanced packet block as seven 32-bit words
#   (_container.EPB_WORDS), not with the 64-bit field CPython's loop takes in one.
#
# records() walks an uncompressed file itself, with no Packet per row: on CPython
# _records._direct_rows (fresh bytes reads, one struct unpack of a packet's fixed-offset
# fields); on PyPy _records_pypy (the reused buffer of the "pypy" loops, the fields read
# byte by byte: PyPy's struct reads big-endian fields out of a bytearray ten times
# slower than out of bytes, and the byte reads compile to plain loads). The conformance
# suite and tests/test_records_direct.py run both walks.
#
# The choice is made at import from the running interpreter; PUREPCAP_LOOPS=cpython or
# =pypy in the environment overrides it (to compare them in one interpreter), and so
# may a test, by setting LOOPS before it opens a capture.
from __future__ import annotations

import os
import sys

__all__ = ["LOOPS", "CHOICES"]

CHOICES = ("cpython", "pypy")

LOOPS = os.environ.get("PUREPCAP_LOOPS", "") or ("pypy" if sys.implementation.name == "pypy" else "cpython")
if LOOPS not in CHOICES:
    raise ImportError(f"PUREPCAP_LOOPS={LOOPS!r}: the readers' loops are one of {', '.join(CHOICES)}")
