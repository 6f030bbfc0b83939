# macOS and BSD live capture through /dev/bpf, with the standard library only.
#
# Strategy: the device is configured with ioctls in the order the kernel requires
# (BIOCSBLEN must precede BIOCSETIF, which attaches the descriptor to an interface),
# then read with reads of exactly the buffer length; each read returns a run of
# records, each a bpf_hdr then the packet, the next record starting at
# BPF_WORDALIGN(bh_hdrlen + bh_caplen). The header differs by platform: macOS and
# OpenBSD use 32-bit seconds and microseconds ("timeval32", 4-byte alignment); FreeBSD,
# NetBSD and DragonFly on 64-bit use a native struct timeval ("timeval64", 8-byte
# alignment). The ioctl numbers are encoded with the BSD _IOC rule from <sys/ioccom.h>.
# The encoding and the buffer walking are pure functions, tested with synthetic buffers
# on any machine; only BpfSource touches the device.
from __future__ import annotations

import errno
import fcntl
import os
import select
import socket
import struct
import sys
import threading
from collections.abc import Callable

from ._compat import if_nameindex, readv
from .errors import CaptureError
from .format import Packet
from .linktypes import RAW

# <sys/ioccom.h>
IOCPARM_MASK = 0x1FFF
IOC_VOID = 0x20000000
IOC_OUT = 0x40000000
IOC_IN = 0x80000000
IOC_INOUT = IOC_IN | IOC_OUT


def _IOC(inout: int, group: str | int, num: int, length: int) -> int:
    g = ord(group) if isinstance(group, str) else group
    return inout | ((length & IOCPARM_MASK) << 16) | (g << 8) | num


def _IO(group: str | int, num: int) -> int:
    return _IOC(IOC_VOID, group, num, 0)


def _IOR(group: str | int, num: int, length: int) -> int:
    return _IOC(IOC_OUT, group, num, length)


def _IOW(group: str | int, num: int, length: int) -> int:
    return _IOC(IOC_IN, group, num, length)


def _IOWR(group: str | int, num: int, length: int) -> int:
    return _IOC(IOC_INOUT, group, num, length)


POINTER_SIZE = struct.calcsize("P")
IFREQ_SIZE = 32  # struct ifreq on the BSDs: 16-byte name + 16-byte union
SIZEOF_U_INT = 4


def bpf_ioctls(pointer_size: int = POINTER_SIZE, timeval_size: int | None = None) -> dict[str, int]:
    """The BIOC* request numbers for a platform with the given pointer size."""
    program = SIZEOF_U_INT if pointer_size == 4 else 8  # struct bpf_program: u_int, then a pointer
    program += pointer_size
    if timeval_size is None:
        timeval_size = 2 * pointer_size  # struct timeval {time_t/long; suseconds_t/int} padded
    return {
        "BIOCGBLEN": _IOR("B", 102, SIZEOF_U_INT),
        "BIOCSBLEN": _IOWR("B", 102, SIZEOF_U_INT),
        "BIOCSETF": _IOW("B", 103, program),
        "BIOCFLUSH": _IO("B", 104),
        "BIOCPROMISC": _IO("B", 105),
        "BIOCGDLT": _IOR("B", 106, SIZEOF_U_INT),
        "BIOCGETIF": _IOR("B", 107, IFREQ_SIZE),
        "BIOCSETIF": _IOW("B", 108, IFREQ_SIZE),
        "BIOCSRTIMEOUT": _IOW("B", 109, timeval_size),
        "BIOCGSTATS": _IOR("B", 111, 8),  # struct bpf_stat {u_int bs_recv, bs_drop}
        "BIOCIMMEDIATE": _IOW("B", 112, SIZEOF_U_INT),
    }


SIOCGIFFLAGS = _IOWR("i", 17, IFREQ_SIZE)
IFF_UP = 0x1

# bpf_hdr layouts: (struct format, size of the fixed part, BPF_ALIGNMENT, ticks per second)
LAYOUTS = {
    "timeval32": (struct.Struct("=IIIIH"), 1_000_000, 4),  # macOS, OpenBSD: u32 sec, u32 usec
    "timeval64": (struct.Struct("=qqIIH"), 1_000_000, 8),  # FreeBSD/NetBSD LP64: long sec, long usec
}


def platform_layout(platform: str = sys.platform, pointer_size: int = POINTER_SIZE) -> str:
    if platform == "darwin" or platform.startswith("openbsd") or pointer_size == 4:
        return "timeval32"
    return "timeval64"


def bpf_wordalign(n: int, alignment: int) -> int:
    return (n + alignment - 1) & ~(alignment - 1)


def walk_buffer(buf: bytes | bytearray | memoryview, nbytes: int, layout: str
                ) -> list[tuple[int, int, int, int]]:
    """The records in the first ``nbytes`` of a /dev/bpf read:
    (time_ns, caplen, original length, offset of the packet data)."""
    hdr, ticks, align = LAYOUTS[layout]
    unpack = hdr.unpack_from
    fixed = hdr.size
    scale = 1_000_000_000 // ticks
    out = []
    p = 0
    nbytes = min(nbytes, len(buf))
    while p + fixed <= nbytes:
        sec, frac, caplen, datalen, hdrlen = unpack(buf, p)
        end = p + hdrlen + caplen
        if hdrlen < fixed or end > nbytes:
            raise CaptureError(f"corrupt /dev/bpf buffer: record at offset {p} has header length "
                               f"{hdrlen} and {caplen} bytes, beyond the {nbytes} read")
        out.append((sec * 1_000_000_000 + frac * scale, caplen, datalen, p + hdrlen))
        p = bpf_wordalign(end, align)
    return out


def decode_buffer(buf: bytes | bytearray | memoryview, nbytes: int, layout: str, frame: int,
                  linktype: int, snaplen: int) -> list[Packet]:
    """Packets from a /dev/bpf read; frame numbers continue after ``frame``."""
    out = []
    for time_ns, caplen, length, off in walk_buffer(buf, nbytes, layout):
        caplen = min(caplen, snaplen)
        frame += 1
        out.append(Packet(frame, time_ns, caplen, length, linktype, 0, bytes(buf[off:off + caplen])))
    return out


def dlt_to_linktype(dlt: int, platform: str = sys.platform) -> int:
    """LINKTYPE_ value for a BSD DLT_ value (they differ only for a few raw-IP codes)."""
    if dlt == 12 and not platform.startswith("openbsd"):
        return RAW  # DLT_RAW is 12 on most BSDs; files use LINKTYPE_RAW
    if dlt == 14 and platform.startswith("openbsd"):
        return RAW
    return dlt


def device_names() -> list[tuple[int, str]]:
    return sorted(if_nameindex())


def interface_up(name: str) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16s16s", name.encode(), b"")
        try:
            res = fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, req)
        except OSError:
            return False
        return bool(struct.unpack_from("=H", res, 16)[0] & IFF_UP)


def _open_device() -> int:
    try:
        return os.open("/dev/bpf", os.O_RDWR | os.O_CLOEXEC)  # cloning device (FreeBSD, macOS 10.x+)
    except FileNotFoundError:
        pass
    for i in range(256):
        try:
            return os.open(f"/dev/bpf{i}", os.O_RDWR | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno == errno.EBUSY:
                continue
            raise
    raise CaptureError("every /dev/bpf device is busy")


class BpfSource:
    """An open /dev/bpf capture (untested here: this machine is Linux)."""

    method = "bpf"

    def __init__(self, interface: str, *, snaplen: int, promisc: bool, immediate: bool,
                 buffer_size: int, program_for: Callable[[int], list]) -> None:
        import ctypes
        self.interface = interface
        self.snaplen = snaplen
        self.layout = platform_layout()
        self._io = bpf_ioctls()
        self._last = (0, 0)
        self._wake_lock = threading.Lock()
        self._wake_r = self._wake_w = -1
        self.fd = _open_device()
        try:
            self._wake_r, self._wake_w = os.pipe()
            io = self._io
            fcntl.ioctl(self.fd, io["BIOCSBLEN"], struct.pack("=I", min(buffer_size, 1 << 21)))
            fcntl.ioctl(self.fd, io["BIOCSETIF"], struct.pack("16s16s", interface.encode(), b""))
            if immediate:
                fcntl.ioctl(self.fd, io["BIOCIMMEDIATE"], struct.pack("=I", 1))
            dlt = struct.unpack("=I", fcntl.ioctl(self.fd, io["BIOCGDLT"], b"\0" * 4))[0]
            self.linktype = dlt_to_linktype(dlt)
            program = program_for(self.linktype)
            code = b"".join(struct.pack("=HBBI", c, jt, jf, k) for c, jt, jf, k in program)
            insns = ctypes.create_string_buffer(code, len(code))
            fcntl.ioctl(self.fd, io["BIOCSETF"], struct.pack("@IP", len(program), ctypes.addressof(insns)))
            if promisc:
                fcntl.ioctl(self.fd, io["BIOCPROMISC"])  # undone by the kernel on close
            self.blen = struct.unpack("=I", fcntl.ioctl(self.fd, io["BIOCGBLEN"], b"\0" * 4))[0]
            os.set_blocking(self.fd, False)
            os.set_blocking(self._wake_w, False)
            self._buf = bytearray(self.blen)
            self._poll = select.poll()
            self._poll.register(self.fd, select.POLLIN)
            self._poll.register(self._wake_r, select.POLLIN)
        except BaseException:
            self.close()
            raise

    def wait(self, timeout_ms: int | None) -> bool:
        # Without immediate mode the descriptor is readable only when a buffer fills, so
        # wake up now and then to take what is there.
        cap = 100 if timeout_ms is None else min(timeout_ms, 100)
        events = self._poll.poll(cap)
        for fd, _ in events:
            if fd == self._wake_r:
                os.read(self._wake_r, 64)
                return False
        return True

    def read_batch(self, frame: int) -> list[Packet]:
        try:
            n = readv(self.fd, [self._buf])  # exactly the buffer length
        except BlockingIOError:
            return []
        return decode_buffer(self._buf, n, self.layout, frame, self.linktype, self.snaplen)

    def wakeup(self) -> None:
        # See LinuxSource.wakeup: never write to a descriptor number close() freed.
        if not self._wake_lock.acquire(blocking=False):
            return
        try:
            if self._wake_w >= 0:
                os.write(self._wake_w, b"x")
        except OSError:
            pass
        finally:
            self._wake_lock.release()

    def kernel_stats(self) -> tuple[int, int]:
        """Increments since the last call (BIOCGSTATS counts are cumulative)."""
        recv, drop = struct.unpack("=II", fcntl.ioctl(self.fd, self._io["BIOCGSTATS"], b"\0" * 8))
        last_recv, last_drop = self._last
        self._last = (recv, drop)
        return recv - last_recv, drop - last_drop

    def close(self) -> None:
        with self._wake_lock:
            for name in ("fd", "_wake_r", "_wake_w"):
                fd = getattr(self, name, -1)
                if fd >= 0:
                    setattr(self, name, -1)
                    os.close(fd)

