# Live capture: the public face of the platform back ends (_live_linux for AF_PACKET,
# _live_bsd for /dev/bpf). A capture is opened when capture() is called, so every
# problem (privilege, unknown or down interface, bad filter) is raised there, as a
# CaptureError subclass with a message a user can act on. Iteration hands out the same
# Packet objects that capture files give, in batches read from the kernel; the loop
# stops on count, timeout or stop(), which is safe from another thread or a signal
# handler because it only sets a flag and pokes a wake-up descriptor.
from __future__ import annotations

import math
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import CaptureError, FilterError, InterfaceDownError, NoPrivilegeError, NoSuchInterfaceError
from .format import Packet

__all__ = [
    "capture", "interfaces", "LiveCapture", "LiveInterface", "CaptureError",
    "NoPrivilegeError", "NoSuchInterfaceError", "InterfaceDownError", "MAX_SNAPLEN",
]

MAX_SNAPLEN = 262144
DEFAULT_BUFFER = 8 << 20
_LINUX = sys.platform.startswith("linux")

Program = Sequence[tuple[int, int, int, int]]

# poll() takes a C int of milliseconds; a longer timeout is waited for in pieces of this
_MAX_WAIT_MS = 3_600_000


def check_timeout(timeout: object) -> float | None:
    """``timeout`` as seconds (a finite number >= 0) or None; ValueError otherwise."""
    if timeout is None:
        return None
    if isinstance(timeout, (int, float)) and not isinstance(timeout, bool):
        try:
            seconds = float(timeout)
        except OverflowError:
            seconds = math.inf
        if math.isfinite(seconds) and seconds >= 0:
            return seconds
    raise ValueError(f"timeout must be a number of seconds >= 0 (finite), or None for no timeout, "
                     f"not {timeout!r}")


@dataclass(frozen=True)
class LiveInterface:
    """A capture device. ``linktype`` is what a capture on it will record (None where it
    cannot be known without opening it); ``addresses`` holds what is cheap to learn: the
    hardware address and the primary IPv4 address."""

    name: str
    index: int
    linktype: int | None
    up: bool
    running: bool = False
    loopback: bool = False
    promisc: bool = False
    mtu: int | None = None
    addresses: tuple[str, ...] = field(default=())

    def __str__(self) -> str:
        return self.name


def interfaces() -> list[LiveInterface]:
    """The devices of this network namespace, by index."""
    if _LINUX:
        from . import _live_linux as L
        out = []
        for name in L.device_names():
            info = L.device_info(name)
            if info is None:  # vanished meanwhile
                continue
            flags = info["flags"]
            addresses = []
            if any(info["hwaddr"]) and info["arphrd"] in (L.ARPHRD_ETHER,):
                addresses.append(":".join(f"{b:02x}" for b in info["hwaddr"]))
            if info["ipv4"]:
                addresses.append(info["ipv4"])
            out.append(LiveInterface(name, info["index"], L.linktype_for(info["arphrd"])[0],
                                     bool(flags & L.IFF_UP), bool(flags & L.IFF_RUNNING),
                                     bool(flags & L.IFF_LOOPBACK), bool(flags & L.IFF_PROMISC),
                                     info["mtu"], tuple(addresses)))
        return out
    from . import _live_bsd as B
    return [LiveInterface(name, index, None, B.interface_up(name))
            for index, name in B.device_names()]


def _interface_names() -> list[str]:
    import socket
    return [name for _, name in sorted(socket.if_nameindex())]


def _no_privilege(interface: str) -> NoPrivilegeError:
    return NoPrivilegeError(f"capturing on {interface} needs CAP_NET_RAW: run as root, "
                            f"or grant it with 'setcap cap_net_raw+ep <python>'")


def _no_such_interface(interface: str) -> NoSuchInterfaceError:
    names = _interface_names()
    listing = ", ".join(names) if names else "none"
    return NoSuchInterfaceError(f"no interface named {interface!r}: available interfaces are {listing}")


def _down(interface: str) -> InterfaceDownError:
    return InterfaceDownError(f"interface {interface} is down: bring it up first "
                              f"(ip link set {interface} up)")


def _program(filter: str | Program | None, linktype: int, snaplen: int, cooked: bool) -> list:
    """The cBPF program to attach: its return value is the snaplen."""
    if filter is None:
        return [(0x06, 0, 0, snaplen)]  # ret #snaplen
    if isinstance(filter, str):
        try:
            from .filter import compile_bpf
        except ImportError:
            raise CaptureError("filter= on a live capture needs the pcap-filter compiler "
                               "(purepcap.filter.compile_bpf), which is not available in this build") from None
        return list(compile_bpf(filter, linktype, snaplen, linux_cooked=cooked))
    # A ready cBPF program: check its shape and cap every constant return at snaplen.
    program = []
    for i, insn in enumerate(filter):
        try:
            code, jt, jf, k = (int(v) for v in insn)
        except (TypeError, ValueError):
            raise CaptureError(f"filter program instruction {i} is not (code, jt, jf, k): {insn!r}") from None
        if not (0 <= code <= 0xFFFF and 0 <= jt <= 255 and 0 <= jf <= 255 and -(1 << 31) <= k <= 0xFFFFFFFF):
            raise CaptureError(f"filter program instruction {i} is out of range: {insn!r}")
        if code == 0x06 and k & 0xFFFFFFFF > snaplen:
            k = snaplen
        program.append((code, jt, jf, k & 0xFFFFFFFF))
    if not program or len(program) > 4096:
        raise CaptureError(f"a filter program needs 1 to 4096 instructions, not {len(program)}")
    return program


# The tag protocol ids the `vlan` primitive looks for (filter/_codegen, Encap)
_VLAN_TPIDS = frozenset((0x8100, 0x88A8, 0x9100))


def _reads_vlan_tags(expression: str) -> bool:
    """Whether the expression tests VLAN tags: a `vlan` primitive, or `ether proto` (or
    `link proto`) naming a tag protocol id. Decided on the parsed expression, not its text."""
    from .filter import parse
    from .filter._codegen import ETHERTYPE
    from .filter._parser import And, Encap, Not, Or, Prim

    stack = [parse(expression)]
    while stack:
        node = stack.pop()
        if isinstance(node, (And, Or)):
            stack.extend(node.items)
        elif isinstance(node, Not):
            stack.append(node.item)
        elif isinstance(node, Encap) and node.name == "vlan":
            return True
        elif isinstance(node, Prim) and node.qual.addr == "proto" and node.qual.proto in ("ether", "link"):
            v = node.value
            if (v.number if v.kind == "num" else ETHERTYPE.get(v.text)) in _VLAN_TPIDS:
                return True
    return False


def _linux_filter(filter: str | Program | None, linktype: int, snaplen: int,
                  cooked: bool) -> tuple[list, Any]:
    """(the program for the kernel, a Python matcher or None) for an AF_PACKET socket.

    The kernel runs the expression unless it cannot see what the expression reads:
    - the outer VLAN tag, which the kernel takes off before socket filters run (the
      Packets get it back), so an expression that tests tags would never match there;
    - on a cooked socket, bytes of the LINUX_SLL header, which the kernel builds only
      for us (compile_bpf says so with a FilterError for linux_cooked=True, where the
      same expression compiles for the link type).
    Then only the snaplen stays in the kernel and the expression is matched in Python on
    the delivered bytes."""
    if not isinstance(filter, str):
        return _program(filter, linktype, snaplen, cooked), None
    from .filter import offline_matcher

    try:
        program = _program(filter, linktype, snaplen, cooked)
    except FilterError:
        if not cooked:
            raise
        _program(filter, linktype, snaplen, False)  # an error of the expression itself raises here
        program = None
    if program is not None and not cooked and _reads_vlan_tags(filter):
        program = None
    if program is None:
        return _program(None, linktype, snaplen, cooked), offline_matcher(filter)
    return program, None


class LiveCapture:
    """An open live capture; see :func:`capture`."""

    def __init__(self, interface: str, *, count: int | None = None, timeout: float | None = None,
                 chunksize: int | None = None, filter: str | Program | None = None,
                 snaplen: int = MAX_SNAPLEN, promisc: bool = True, immediate: bool = False,
                 buffer_size: int = DEFAULT_BUFFER, method: str = "auto") -> None:
        if not isinstance(interface, str) or not interface:
            raise CaptureError(f"interface must be a device name, not {interface!r}")
        for name, value in (("count", count), ("chunksize", chunksize)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ValueError(f"{name} must be a positive integer or None, not {value!r}")
        timeout = check_timeout(timeout)
        if not isinstance(snaplen, int) or not 1 <= snaplen <= MAX_SNAPLEN:
            raise ValueError(f"snaplen must be between 1 and {MAX_SNAPLEN}, not {snaplen!r}")
        if method not in ("auto", "ring", "recvmsg"):
            raise ValueError(f"method must be 'auto', 'ring' or 'recvmsg', not {method!r}")
        self.interface = interface
        self.snaplen = snaplen
        self.count = count
        self.timeout = timeout
        self.chunksize = chunksize
        self.filter = filter
        self.promisc = promisc
        self.immediate = immediate
        self._stopped = False
        self._done = False
        self._frame = 0
        self._captured = 0
        self._received = 0
        self._dropped = 0
        self._lock = threading.Lock()
        # Held while the source is read or waited on, so that close() from another thread
        # never closes it under a reader; re-entrant for a signal handler's close().
        self._io = threading.RLock()
        self._io_owner: int | None = None
        self._closing = False
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._src: Any = None
        self._userland_match: Any = None
        self._rejected = 0
        if _LINUX:
            self._src = self._open_linux(buffer_size, method)
        elif sys.platform == "darwin" or "bsd" in sys.platform or sys.platform.startswith("dragonfly"):
            self._src = self._open_bsd(buffer_size)
        else:
            raise CaptureError(f"live capture is not supported on {sys.platform}: it needs Linux "
                               f"(AF_PACKET) or macOS/BSD (/dev/bpf)")
        self.linktype: int = self._src.linktype
        self.method: str = self._src.method

    def _open_linux(self, buffer_size: int, method: str) -> Any:
        from . import _live_linux as L
        info = L.any_device_info() if self.interface == "any" else L.device_info(self.interface)
        if info is None:
            raise _no_such_interface(self.interface)
        if not info["flags"] & L.IFF_UP:
            raise _down(self.interface)
        linktype, cooked = L.linktype_for(info["arphrd"])
        program, self._userland_match = _linux_filter(self.filter, linktype, self.snaplen, cooked)
        try:
            return L.LinuxSource(self.interface, info, snaplen=self.snaplen, promisc=self.promisc,
                                 immediate=self.immediate, program=program,
                                 buffer_size=buffer_size, method=method)
        except PermissionError:
            raise _no_privilege(self.interface) from None
        except OSError as exc:
            import errno
            if exc.errno == errno.ENODEV:
                raise _no_such_interface(self.interface) from None
            if exc.errno == errno.ENETDOWN:
                raise _down(self.interface) from None
            if exc.errno == errno.EINVAL and self.filter is not None:
                raise CaptureError(f"the kernel rejected the filter program for {self.filter!r}: "
                                   f"{exc.strerror}") from None
            raise CaptureError(f"cannot capture on {self.interface}: {exc.strerror or exc}") from None

    def _open_bsd(self, buffer_size: int) -> Any:
        from . import _live_bsd as B
        if self.interface not in _interface_names():
            raise _no_such_interface(self.interface)
        if not B.interface_up(self.interface):
            raise _down(self.interface)
        try:
            return B.BpfSource(self.interface, snaplen=self.snaplen, promisc=self.promisc,
                               immediate=self.immediate, buffer_size=buffer_size,
                               program_for=lambda linktype: _program(self.filter, linktype,
                                                                     self.snaplen, False))
        except PermissionError:
            raise NoPrivilegeError(f"capturing on {self.interface} needs read access to /dev/bpf*: "
                                   f"run as root") from None
        except OSError as exc:
            raise CaptureError(f"cannot capture on {self.interface}: {exc.strerror or exc}") from None

    # -- context manager and iteration --

    def __enter__(self) -> LiveCapture:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def _next_batch(self) -> list[Packet] | None:
        """The packets ready now; [] after a wait; None once closed or past the deadline."""
        with self._io:
            src = self._src
            if src is None or self._closing:
                return None
            self._io_owner = threading.get_ident()
            try:
                batch = src.read_batch(self._frame)
                if batch and self._userland_match is not None:
                    batch = self._match(batch)
                if batch:
                    return batch
                if self._deadline is None:
                    wait_ms = None
                else:
                    left = self._deadline - time.monotonic()
                    if left <= 0:
                        return None
                    wait_ms = min(max(1, math.ceil(left * 1000)), _MAX_WAIT_MS)
                src.wait(wait_ms)
                return []
            finally:
                self._io_owner = None

    def _batches(self) -> Iterator[list[Packet]]:
        while not self._stopped and not self._done:
            batch = self._next_batch()
            if batch is None:
                break
            if not batch:
                continue
            if self.count is not None:
                left_count = self.count - self._captured
                if len(batch) >= left_count:
                    batch = batch[:left_count]
                    self._done = True
            self._frame += len(batch)
            self._captured += len(batch)
            yield batch
            if self._deadline is not None and time.monotonic() >= self._deadline:
                break
        self._finish()

    def _match(self, batch: list[Packet]) -> list[Packet]:
        match = self._userland_match
        kept = [p for p in batch if match(p)]
        self._rejected += len(batch) - len(kept)
        for number, pkt in enumerate(kept, self._frame + 1):
            pkt.frame = number
        return kept

    def _finish(self) -> None:
        self._done = True
        self.close()

    def __iter__(self) -> Iterator[Any]:
        if self.chunksize is None:
            return self._iter_packets()
        return self._iter_chunks(self.chunksize)

    def _iter_packets(self) -> Iterator[Packet]:
        for batch in self._batches():
            for pkt in batch:
                yield pkt
                if self._stopped:
                    # not delivered: the rest of this batch
                    self._captured -= batch[-1].frame - pkt.frame
                    self._finish()
                    return

    def _iter_chunks(self, size: int) -> Iterator[list[Packet]]:
        pending: list[Packet] = []
        for batch in self._batches():
            pending.extend(batch)
            while len(pending) >= size:
                yield pending[:size]
                del pending[:size]
                if self._stopped:
                    self._captured -= len(pending)
                    self._finish()
                    return
        if pending:
            yield pending

    def __next__(self) -> Any:
        if not hasattr(self, "_it"):
            self._it = iter(self)
        return next(self._it)

    # Deliberately no read(): records() and to_pandas() take anything with a read()
    # method for a binary file.
    def next_chunk(self) -> list[Packet]:
        """The next chunk (``chunksize`` packets, fewer at the end), or [] when finished."""
        if self.chunksize is None:
            raise ValueError("next_chunk() needs a capture opened with chunksize=N")
        try:
            return next(self)
        except StopIteration:
            return []

    # -- control --

    def stop(self) -> None:
        """End the capture: iteration finishes after the packet being delivered now.
        Safe to call from another thread or from a signal handler."""
        self._stopped = True
        src = self._src
        if src is not None:
            src.wakeup()

    @property
    def closed(self) -> bool:
        return self._src is None

    def close(self) -> None:
        """Close the capture. Safe from another thread: an iteration there ends after the
        batch in hand, and close() returns once the kernel side is released. From a signal
        handler that interrupted a read, the reading thread closes it on its way out."""
        self._closing = True
        src = self._src
        if src is not None:
            src.wakeup()  # a reader waiting in poll() lets go of the source
        if self._io_owner == threading.get_ident():
            return  # we interrupted our own read (a signal handler): it ends, then closes
        with self._io, self._lock:
            src, self._src = self._src, None
            if src is not None:
                try:
                    self._add_kernel_stats(src)
                finally:
                    src.close()
            self._done = True

    def _add_kernel_stats(self, src: Any) -> None:
        try:
            received, dropped = src.kernel_stats()
        except OSError:
            return
        self._received += received
        self._dropped += dropped

    @property
    def stats(self) -> dict[str, int]:
        """Counts so far, read from the kernel and accumulated (Linux resets its counters
        on every read): ``captured``, the Packets delivered; ``received``, the packets the
        kernel kept for this capture, dropped ones included (tcpdump's "received by
        filter"; on Linux only packets that passed the kernel filter are counted, on the
        BSDs ``bs_recv`` counts every packet the descriptor saw); ``filter_passed``, the
        same less packets rejected by a filter that had to run in Python (on Linux,
        expressions that test VLAN tags, which the kernel strips before socket filters
        run, or read a cooked socket's LINUX_SLL header);
        ``dropped``, packets lost because the buffer was full (tcpdump's "dropped by
        kernel")."""
        with self._lock:
            if self._src is not None:
                self._add_kernel_stats(self._src)
            return {"captured": self._captured, "received": self._received,
                    "filter_passed": self._received - self._rejected, "dropped": self._dropped}

    def __repr__(self) -> str:
        state = "closed" if self._src is None else "open"
        return (f"<LiveCapture {self.interface} linktype={self.linktype} snaplen={self.snaplen} "
                f"method={self.method} {state}>")


def capture(interface: str, *, count: int | None = None, timeout: float | None = None,
            chunksize: int | None = None, filter: str | Program | None = None,
            snaplen: int = MAX_SNAPLEN, promisc: bool = True, immediate: bool = False,
            buffer_size: int = DEFAULT_BUFFER, method: str = "auto") -> LiveCapture:
    """Capture packets from ``interface`` (on Linux also "any": every device, as
    LINUX_SLL, without promiscuous mode, as libpcap does).

    A context manager iterating :class:`purepcap.format.Packet` (frames numbered from 1,
    interface 0), or lists of up to ``chunksize`` Packets. It ends after ``count``
    packets, ``timeout`` seconds after capture() was called, or at
    :meth:`LiveCapture.stop`. ``filter`` is a
    pcap-filter expression (or a ready cBPF program as (code, jt, jf, k) tuples) run in
    the kernel; ``snaplen`` cuts each packet; ``promisc`` puts the device in promiscuous
    mode for the life of the capture; ``immediate`` delivers each packet at once rather
    than in blocks. ``buffer_size`` is the kernel ring size in bytes; ``method`` forces
    the ring ("ring") or plain recvmsg ("recvmsg") on Linux.

    On Linux the kernel takes the outer VLAN tag off before the socket filter runs; the
    tag is put back into the delivered bytes, and expressions that test tags (``vlan``,
    ``ether proto 0x8100``, ...) are matched on those bytes in Python, as are, on a cooked
    socket ("any", non-Ethernet devices), expressions that read the LINUX_SLL header the
    kernel filter never sees. Other expressions run in the kernel and, as with libpcap,
    also match tagged packets by their inner headers.

    Raises NoPrivilegeError, NoSuchInterfaceError, InterfaceDownError or another
    CaptureError.
    """
    return LiveCapture(interface, count=count, timeout=timeout, chunksize=chunksize, filter=filter,
                       snaplen=snaplen, promisc=promisc, immediate=immediate,
                       buffer_size=buffer_size, method=method)
