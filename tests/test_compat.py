# purepcap._compat: the libc fallbacks used where a Python lacks the standard library's
# call (CPython 3.9: os.eventfd; PyPy 3.9: also os.readv, socket.if_nameindex). Each is
# checked against the standard library's own where this Python has it, and on its own
# terms everywhere.
from __future__ import annotations

import os
import signal
import socket
import sys
import threading

import pytest

from purepcap import _compat as C

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="eventfd is Linux's")


def test_if_nameindex_fallback_lists_what_the_kernel_lists() -> None:
    got = C._libc_if_nameindex()
    assert (1, "lo") in got or any(name.startswith("lo") for _, name in got)
    assert len({i for i, _ in got}) == len(got)
    if hasattr(socket, "if_nameindex"):
        assert sorted(got) == sorted(socket.if_nameindex())
    if os.path.isdir("/proc/self/net"):  # this process's network namespace, as if_nameindex sees it
        with open("/proc/self/net/dev") as f:
            names = {line.split(":")[0].strip() for line in f.readlines()[2:]}
        assert {name for _, name in got} == names


@linux
def test_eventfd_fallback_counts_and_does_not_block() -> None:
    fd = C._libc_eventfd()
    try:
        assert os.get_inheritable(fd) is False and os.get_blocking(fd) is False
        with pytest.raises(BlockingIOError):
            C._libc_eventfd_read(fd)
        C._libc_eventfd_write(fd, 1)
        C._libc_eventfd_write(fd, 41)
        if hasattr(os, "eventfd_read"):  # the two speak the same 8-byte counter
            assert os.eventfd_read(fd) == 42
            os.eventfd_write(fd, 7)
        else:
            assert C._libc_eventfd_read(fd) == 42
            C._libc_eventfd_write(fd, 7)
        assert C._libc_eventfd_read(fd) == 7
    finally:
        os.close(fd)


def test_readv_fallback_fills_one_buffer_with_one_read() -> None:
    r, w = os.pipe()
    try:
        os.write(w, b"0123456789")
        buf = bytearray(4)
        assert C._libc_readv(r, [buf]) == 4 and buf == b"0123"
        view = memoryview(bytearray(16))
        assert C._libc_readv(r, [view]) == 6 and view[:6] == b"456789"
        os.set_blocking(r, False)
        with pytest.raises(BlockingIOError):
            C._libc_readv(r, [buf])
        os.close(w)
        w = -1
        assert C._libc_readv(r, [buf]) == 0  # end of file
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs setitimer")
def test_readv_fallback_goes_on_after_a_signal() -> None:
    # A signal whose handler returns interrupts read() with EINTR; like os.readv
    # (PEP 475), the fallback reads again instead of raising.
    r, w = os.pipe()
    hits = []
    old = signal.signal(signal.SIGALRM, lambda *_: hits.append(1))
    timer = threading.Timer(0.3, os.write, (w, b"late"))
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        timer.start()
        buf = bytearray(8)
        assert C._libc_readv(r, [buf]) == 4 and buf[:4] == b"late"
        assert hits == [1]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        timer.join()
        os.close(r)
        os.close(w)


def test_the_chosen_names_are_the_standard_librarys_where_it_has_them() -> None:
    assert C.readv is getattr(os, "readv", C._libc_readv)
    assert C.if_nameindex is getattr(socket, "if_nameindex", C._libc_if_nameindex)
    if hasattr(os, "eventfd"):
        assert C.eventfd_read is os.eventfd_read and C.eventfd is C._os_eventfd
    else:
        assert C.eventfd is C._libc_eventfd
