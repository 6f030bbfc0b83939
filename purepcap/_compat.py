# What some supported Pythons lack, in one place: each name here is the standard
# library's own where the running interpreter has it, and otherwise the same system
# call made through libc with ctypes. CPython 3.9 has no os.eventfd (3.10); PyPy 3.9
# has neither that nor os.readv nor socket.if_nameindex. Only live capture needs
# these, so nothing here is on the file-reading hot paths.
from __future__ import annotations

import ctypes
import errno
import os
import socket
import sys

__all__ = ["eventfd", "eventfd_read", "eventfd_write", "if_nameindex", "readv"]

_libc = None


def _c():
    """libc (the running process's symbols), loaded on first use."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def _raise_errno(what: str) -> None:
    err = ctypes.get_errno()
    raise OSError(err, f"{what}: {os.strerror(err)}")  # OSError picks the subclass (BlockingIOError, ...)


def _os_eventfd() -> int:
    return os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)


def _libc_eventfd() -> int:
    # the kernel defines EFD_NONBLOCK and EFD_CLOEXEC as O_NONBLOCK and O_CLOEXEC
    fd = _c().eventfd(0, os.O_NONBLOCK | os.O_CLOEXEC)
    if fd < 0:
        _raise_errno("eventfd")
    return fd


def _libc_eventfd_read(fd: int) -> int:
    return int.from_bytes(os.read(fd, 8), sys.byteorder)


def _libc_eventfd_write(fd: int, value: int) -> None:
    os.write(fd, value.to_bytes(8, sys.byteorder))


def _libc_readv(fd: int, buffers: list) -> int:
    """os.readv for what purepcap passes: one writable buffer, filled by one read()
    system call (a BPF device hands out its whole buffer or nothing)."""
    (buf,) = buffers
    view = memoryview(buf).cast("B")
    dest = (ctypes.c_char * len(view)).from_buffer(view)
    while True:
        n = _c().read(fd, dest, len(view))
        if n >= 0:
            return n
        if ctypes.get_errno() != errno.EINTR:  # as os.readv, retried after a signal (PEP 475)
            _raise_errno("read")


class _IfNameIndex(ctypes.Structure):
    _fields_ = [("if_index", ctypes.c_uint), ("if_name", ctypes.c_char_p)]


def _libc_if_nameindex() -> list[tuple[int, str]]:
    """(index, name) of every interface in this process's network namespace."""
    libc = ctypes.CDLL(None, use_errno=True)  # a private handle: its restype is set here
    libc.if_nameindex.restype = ctypes.POINTER(_IfNameIndex)
    first = libc.if_nameindex()
    if not first:
        _raise_errno("if_nameindex")
    try:
        out = []
        i = 0
        while first[i].if_index != 0 or first[i].if_name is not None:
            out.append((first[i].if_index, os.fsdecode(first[i].if_name)))
            i += 1
        return out
    finally:
        libc.if_freenameindex(first)


# A non-blocking, close-on-exec eventfd with the count 0, and its read and write.
if hasattr(os, "eventfd"):
    eventfd, eventfd_read, eventfd_write = _os_eventfd, os.eventfd_read, os.eventfd_write
else:
    eventfd, eventfd_read, eventfd_write = _libc_eventfd, _libc_eventfd_read, _libc_eventfd_write
readv = getattr(os, "readv", _libc_readv)
if_nameindex = getattr(socket, "if_nameindex", _libc_if_nameindex)
