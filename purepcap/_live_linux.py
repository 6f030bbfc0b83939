# Linux live capture through an AF_PACKET socket, with the standard library only.
#
# Strategy, following what libpcap does on Linux (see packet(7)):
# - The socket is created with protocol 0, so the kernel hooks it to no traffic until
#   bind(); the cBPF program (which also carries the snaplen as its return value) is
#   attached before bind(), so no packet that the filter would reject is ever queued.
# - Packets are read from a PACKET_RX_RING shared through mmap: TPACKET_V3 (variable
#   sized frames in blocks, one poll per block) by default, TPACKET_V2 (one frame per
#   packet, released at once) in immediate mode so a lone packet is seen within
#   milliseconds. When the ring cannot be set up, recvmsg() with PACKET_AUXDATA and
#   SO_TIMESTAMPNS is the fallback. Each of the three is a receiver class (RingV3,
#   RingV2, Recvmsg) that LinuxSource, which owns the socket, reads through.
# - Link type from the device's ARPHRD: Ethernet and loopback give EN10MB on a raw
#   socket; everything else uses a cooked (SOCK_DGRAM) socket and we build the 16-byte
#   LINUX_SLL header ourselves from the sockaddr_ll the kernel reports.
# - VLAN tags that the kernel stripped into metadata are put back into the bytes, as
#   libpcap does, so a capture shows what was on the wire.
# - Device facts come from ioctls on a socket (not /sys, which shows the namespace
#   that mounted it, not the caller's).
# The block/frame decoders are plain functions over a buffer so that tests can feed
# them synthetic rings.
from __future__ import annotations

import ctypes
import errno
import fcntl
import gc
import mmap
import os
import select
import socket
import struct
import threading
from collections.abc import Sequence

from .errors import CaptureError, InterfaceDownError
from .format import Packet, _new_packet
from .linktypes import EN10MB, LINUX_SLL

# <linux/if_ether.h>, <linux/if_packet.h>, <asm-generic/socket.h>, <linux/if_arp.h>
ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_DROP_MEMBERSHIP = 2
PACKET_RX_RING = 5
PACKET_STATISTICS = 6
PACKET_AUXDATA = 8
PACKET_VERSION = 10
PACKET_IGNORE_OUTGOING = 23
PACKET_MR_PROMISC = 1
PACKET_OUTGOING = 4
TPACKET_V2 = 1
TPACKET_V3 = 2
TP_STATUS_KERNEL = 0
TP_STATUS_USER = 1
TP_STATUS_VLAN_VALID = 1 << 4
TP_STATUS_VLAN_TPID_VALID = 1 << 6
SO_ATTACH_FILTER = 26
SO_TIMESTAMPNS = 35
SO_RCVBUFFORCE = 33
ARPHRD_ETHER = 1
ARPHRD_LOOPBACK = 772
SIOCGIFFLAGS = 0x8913
SIOCGIFADDR = 0x8915
SIOCGIFMTU = 0x8921
SIOCGIFHWADDR = 0x8927
SIOCGIFINDEX = 0x8933
IFF_UP = 0x1
IFF_LOOPBACK = 0x8
IFF_RUNNING = 0x40
IFF_PROMISC = 0x100

BPF_RET_K = 0x06
SLL_HDR_LEN = 16
PAGE = mmap.PAGESIZE

_IFREQ = struct.Struct("16s24s")
_INSN = struct.Struct("=HBBI")  # struct sock_filter
_FPROG = struct.Struct("@HP")  # struct sock_fprog {unsigned short len; sock_filter *filter}
_MREQ = struct.Struct("=iHH8s")  # struct packet_mreq
_REQ = struct.Struct("=7I")  # struct tpacket_req3 (a tpacket_req is its first 4 fields)
_STATS = struct.Struct("=II")  # tp_packets, tp_drops (the V3 struct adds tp_freeze_q_cnt)
_AUXDATA = struct.Struct("=IIIHHHH")  # status, len, snaplen, mac, net, vlan_tci, vlan_tpid
_TIMESPEC = struct.Struct("=qq")
# tpacket_block_desc: version, offset_to_priv, then tpacket_hdr_v1: block_status,
# num_pkts, offset_to_first_pkt, blk_len, ...
_BLOCK = struct.Struct("=8xIIII")
# tpacket3_hdr: next_offset, sec, nsec, snaplen, len, status, mac, (net, rxhash),
# vlan_tci (u32 in hv1), vlan_tpid
_V3 = struct.Struct("=IIIIIIH6xIH")
_V3_FAST = struct.Struct("=IIIIIIH6xI")  # the same without vlan_tpid (at offset 36)
_U16 = struct.Struct("=H")
_I32 = struct.Struct("=i")
_U32 = struct.Struct("=I")
V3_HDR_SIZE = 48  # sizeof(struct tpacket3_hdr), already TPACKET_ALIGNed
# tpacket2_hdr: status, len, snaplen, mac, net, sec, nsec, vlan_tci, vlan_tpid
_V2 = struct.Struct("=IIIHHIIHH")
V2_HDR_SIZE = 32
# sockaddr_ll as it follows the frame header: family, protocol (network order),
# ifindex, hatype, pkttype, halen, addr[8]
_SLL_ADDR = struct.Struct("=H2siHBB8s")
_SLL_HDR = struct.Struct(">HHH8s2s")
_VLAN = struct.Struct(">HH")


def tpacket_align(n: int) -> int:
    return (n + 15) & ~15


# --- device facts, through ioctls in the caller's network namespace --------------------

def _ifreq_ioctl(sock: socket.socket, request: int, name: str) -> bytes:
    req = _IFREQ.pack(name.encode(), b"")
    return fcntl.ioctl(sock.fileno(), request, req)[16:]


def device_info(name: str, sock: socket.socket | None = None) -> dict | None:
    """ifindex, flags, ARPHRD type, hardware address, MTU and IPv4 address of a device,
    or None when there is no such device in this network namespace."""
    own = sock is None
    if own:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
    try:
        if len(name.encode()) >= 16 or "\0" in name or not name:
            return None
        try:
            index = struct.unpack_from("=i", _ifreq_ioctl(sock, SIOCGIFINDEX, name))[0]
        except OSError as exc:
            if exc.errno in (errno.ENODEV, errno.ENXIO, errno.EINVAL):
                return None
            raise
        flags = struct.unpack_from("=H", _ifreq_ioctl(sock, SIOCGIFFLAGS, name))[0]
        hw = _ifreq_ioctl(sock, SIOCGIFHWADDR, name)
        arphrd = struct.unpack_from("=H", hw)[0]
        mtu = struct.unpack_from("=i", _ifreq_ioctl(sock, SIOCGIFMTU, name))[0]
        try:
            addr = socket.inet_ntoa(_ifreq_ioctl(sock, SIOCGIFADDR, name)[4:8])
        except OSError:
            addr = None
        return {"name": name, "index": index, "flags": flags, "arphrd": arphrd,
                "hwaddr": hw[2:8], "mtu": mtu, "ipv4": addr}
    finally:
        if own:
            sock.close()


def device_names() -> list[str]:
    return [name for _, name in sorted(socket.if_nameindex())]


def linktype_for(arphrd: int | None) -> tuple[int, bool]:
    """(link type, cooked) for a device type, as libpcap chooses them here."""
    if arphrd in (ARPHRD_ETHER, ARPHRD_LOOPBACK):
        return EN10MB, False
    return LINUX_SLL, True


# --- pure decoders over ring memory ---------------------------------------------------

def _is_outgoing_on(buf, addr_off: int, ifindex: int) -> bool:
    return buf[addr_off + 10] == PACKET_OUTGOING and _I32.unpack_from(buf, addr_off + 4)[0] == ifindex


def _sll_header(buf, addr_off: int) -> bytes:
    _, proto, _, hatype, pkttype, halen, addr = _SLL_ADDR.unpack_from(buf, addr_off)
    return _SLL_HDR.pack(pkttype, hatype, halen, addr, proto)


def _finish(data: bytes, length: int, status: int, tci: int, tpid: int, cooked: bool,
            snaplen: int) -> tuple[bytes, int]:
    """Re-insert an offloaded VLAN tag (after the MAC addresses, or in the SLL protocol
    field) and cut to snaplen. Returns (data, original length)."""
    if status & TP_STATUS_VLAN_VALID or tci:
        at = 14 if cooked else 12
        if len(data) >= at:
            tag = _VLAN.pack(tpid if status & TP_STATUS_VLAN_TPID_VALID and tpid else 0x8100, tci)
            data = data[:at] + tag + data[at:]
            length += 4
    if len(data) > snaplen:
        data = data[:snaplen]
    return data, length


def decode_block_v3(buf, block: int, frame: int, linktype: int, snaplen: int, cooked: bool = False,
                    skip_outgoing: int = 0) -> list[Packet]:
    """The Packets of one TPACKET_V3 block that starts at offset ``block`` of ``buf``;
    frame numbers continue after ``frame``. Outgoing packets of the device with index
    ``skip_outgoing`` (the loopback device, whose packets the kernel shows twice) are
    left out."""
    _, count, first, blk_len = _BLOCK.unpack_from(buf, block)
    if cooked or skip_outgoing:
        return _decode_block_v3_general(buf, block + first, count, frame, linktype, snaplen, cooked,
                                        skip_outgoing)
    # One copy of the block, then slices of bytes: cheaper than slicing the mmap.
    data = buf[block:block + blk_len]
    out: list[Packet] = []
    append = out.append
    unpack = _V3_FAST.unpack_from
    new = _new_packet
    off = first
    # No cycles are made here; pausing the collector over a block of thousands of new
    # Packets halves the cost (one young-generation pass per block instead of one per
    # 700 objects).
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        for number in range(frame + 1, frame + 1 + count):
            nxt, sec, nsec, caplen, length, status, mac, tci = unpack(data, off)
            start = off + mac
            p = new(Packet)  # see format._new_packet: no __init__ frame per Packet
            p.frame = number
            p.time = sec * 1_000_000_000 + nsec
            p.linktype = linktype
            p.interface = 0
            if status & TP_STATUS_VLAN_VALID or tci or caplen > snaplen:
                tpid = _U16.unpack_from(data, off + 36)[0]
                p.data, p.length = _finish(data[start:start + caplen], length, status, tci, tpid, False, snaplen)
                p.caplen = len(p.data)
            else:
                p.caplen = caplen
                p.length = length
                p.data = data[start:start + caplen]
            append(p)
            off += nxt
    finally:
        if paused:
            gc.enable()
    return out


def _decode_block_v3_general(buf, off: int, count: int, frame: int, linktype: int, snaplen: int,
                             cooked: bool, skip_outgoing: int) -> list[Packet]:
    out: list[Packet] = []
    for _ in range(count):
        nxt, sec, nsec, caplen, length, status, mac, tci, tpid = _V3.unpack_from(buf, off)
        if not (skip_outgoing and _is_outgoing_on(buf, off + V3_HDR_SIZE, skip_outgoing)):
            start = off + mac
            data = buf[start:start + caplen]
            if cooked:
                data = _sll_header(buf, off + V3_HDR_SIZE) + data
                length += SLL_HDR_LEN
            data, length = _finish(data, length, status, tci, tpid, cooked, snaplen)
            frame += 1
            out.append(Packet(frame, sec * 1_000_000_000 + nsec, len(data), length, linktype, 0, data))
        off += nxt
    return out


def decode_frame_v2(buf, off: int, frame: int, linktype: int, snaplen: int, cooked: bool = False,
                    skip_outgoing: int = 0) -> Packet | None:
    """The Packet in the TPACKET_V2 frame at ``off`` (None for a skipped outgoing one)."""
    status, length, caplen, mac, _, sec, nsec, tci, tpid = _V2.unpack_from(buf, off)
    addr_off = off + V2_HDR_SIZE
    if skip_outgoing and _is_outgoing_on(buf, addr_off, skip_outgoing):
        return None
    data = buf[off + mac:off + mac + caplen]
    if cooked:
        data = _sll_header(buf, addr_off) + data
        length += SLL_HDR_LEN
    data, length = _finish(data, length, status, tci, tpid, cooked, snaplen)
    return Packet(frame + 1, sec * 1_000_000_000 + nsec, len(data), length, linktype, 0, data)


# --- the socket -------------------------------------------------------------------------

def _pow2_at_least(n: int) -> int:
    p = PAGE
    while p < n:
        p <<= 1
    return p


class LinuxSource:
    """An open AF_PACKET capture on one device. Not thread-safe except wakeup().

    The socket, its filter, binding, promiscuous mode and wake-ups are here; packets are
    taken off it by one receiver, the first of these that can be set up: RingV3 (the
    default), RingV2 (immediate mode), Recvmsg (no ring, or method="recvmsg").
    """

    def __init__(self, interface: str, info: dict, *, snaplen: int, promisc: bool, immediate: bool,
                 program: Sequence[tuple[int, int, int, int]], buffer_size: int, method: str) -> None:
        self.interface = interface
        self.ifindex = info["index"]
        self.linktype, self.cooked = linktype_for(info["arphrd"])
        self.loopback = info["arphrd"] == ARPHRD_LOOPBACK
        self.snaplen = snaplen
        self.skip_outgoing = 0  # ifindex whose outgoing copies are left out
        self.skip_outgoing_name = ""
        self._rx: RingV3 | RingV2 | Recvmsg | None = None
        self._promisc = False
        self.sock: socket.socket | None = None
        self._wake_fd = -1
        self._wake_lock = threading.Lock()
        kind = socket.SOCK_DGRAM if self.cooked else socket.SOCK_RAW
        # Protocol 0: not attached to any traffic until bind().
        self.sock = socket.socket(socket.AF_PACKET, kind | socket.SOCK_CLOEXEC, 0)
        try:
            self._setup(info, promisc, immediate, program, buffer_size, method)
        except BaseException:
            self.close()
            raise

    @property
    def method(self) -> str:
        """The receive path: "tpacket_v3", "tpacket_v2" or "recvmsg"."""
        return self._rx.method if self._rx is not None else "recvmsg"

    def _setup(self, info: dict, promisc: bool, immediate: bool, program, buffer_size: int,
               method: str) -> None:
        sock = self.sock
        assert sock is not None
        attach_filter(sock, program)
        if self.loopback:
            # Each packet crosses lo twice (out, then in); keep only the incoming copy.
            try:
                sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
            except OSError:
                self.skip_outgoing = self.ifindex
                self.skip_outgoing_name = self.interface
        elif self.ifindex == 0 and info.get("lo_index"):
            # "any": the loopback device's packets appear twice; leave out its outgoing
            # copies only (those of other devices are the only copy).
            self.skip_outgoing = info["lo_index"]
            self.skip_outgoing_name = info["lo_name"]
        if method in ("auto", "ring"):
            try:
                self._rx = (RingV2 if immediate else RingV3)(self, info, buffer_size)
            except OSError:
                if method == "ring":
                    raise
        if self._rx is None:
            self._rx = Recvmsg(self, buffer_size)
        sock.setblocking(False)
        if self.ifindex == 0:
            _bind_all_devices(sock)
        else:
            sock.bind((self.interface, ETH_P_ALL))
        if promisc and self.ifindex != 0:  # "any" has no promiscuous mode, as in libpcap
            sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP,
                            _MREQ.pack(self.ifindex, PACKET_MR_PROMISC, 0, b""))
            self._promisc = True
        self._wake_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._poll = select.poll()
        self._poll.register(sock.fileno(), select.POLLIN | select.POLLERR)
        self._poll.register(self._wake_fd, select.POLLIN)
        self.kernel_stats()  # start the counters from zero

    # -- reading --

    def wait(self, timeout_ms: int | None) -> bool:
        """Block until the socket may have data (True) or a wakeup/timeout (False)."""
        events = self._poll.poll(timeout_ms)
        woke = False
        for fd, ev in events:
            if fd == self._wake_fd:
                try:
                    os.eventfd_read(self._wake_fd)
                except BlockingIOError:
                    pass
                woke = True
            elif ev & select.POLLERR:
                self._raise_socket_error()
        return bool(events) and not woke

    def _raise_socket_error(self, err: int | None = None) -> None:
        assert self.sock is not None
        if err is None:
            err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err == errno.ENETDOWN:
            raise InterfaceDownError(f"interface {self.interface} went down during the capture")
        if err:
            raise CaptureError(f"capture on {self.interface} failed: {os.strerror(err)}")

    def read_batch(self, frame: int) -> list[Packet]:
        """Whatever is ready now, without blocking (possibly nothing); frames are numbered
        on from ``frame``."""
        assert self._rx is not None
        return self._rx.read_batch(frame)

    # -- control --

    def wakeup(self) -> None:
        """Make a blocked wait() return; safe from another thread or a signal handler.
        The lock keeps close() from freeing the descriptor number under us (a reused
        number would get our 8 bytes); never waited for, so a signal handler that
        interrupts close() cannot deadlock: close() is ending the capture anyway."""
        if not self._wake_lock.acquire(blocking=False):
            return
        try:
            if self._wake_fd >= 0:
                os.eventfd_write(self._wake_fd, 1)
        except OSError:
            pass
        finally:
            self._wake_lock.release()

    def kernel_stats(self) -> tuple[int, int]:
        """(packets that passed the filter, packets dropped) since the last call: the
        kernel resets its counters on every read."""
        if self.sock is None:
            return 0, 0
        raw = self.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 12)
        return _STATS.unpack_from(raw)

    def close(self) -> None:
        if self._rx is not None:
            self._rx.close()  # a ring's mmap holds a duplicate of the socket fd
            self._rx = None
        if self.sock is not None:
            if self._promisc:
                try:
                    self.sock.setsockopt(SOL_PACKET, PACKET_DROP_MEMBERSHIP,
                                         _MREQ.pack(self.ifindex, PACKET_MR_PROMISC, 0, b""))
                except OSError:
                    pass  # the kernel drops it with the socket anyway
                self._promisc = False
            self.sock.close()
            self.sock = None
        with self._wake_lock:
            if self._wake_fd >= 0:
                fd, self._wake_fd = self._wake_fd, -1
                os.close(fd)


# --- receivers: one class per way of taking packets off the socket -------------------------

def _map_ring(sock: socket.socket, version: int, req: bytes, size: int) -> mmap.mmap:
    """Set up a PACKET_RX_RING of ``version`` and map it; on failure take it down again,
    or packets would go to a ring nobody reads instead of the queue recvmsg() reads."""
    sock.setsockopt(SOL_PACKET, PACKET_VERSION, version)
    sock.setsockopt(SOL_PACKET, PACKET_RX_RING, req)
    try:
        return mmap.mmap(sock.fileno(), size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    except OSError:
        sock.setsockopt(SOL_PACKET, PACKET_RX_RING, _REQ.pack(0, 0, 0, 0, 0, 0, 0))
        sock.setsockopt(SOL_PACKET, PACKET_VERSION, 0)
        raise


class RingV3:
    """TPACKET_V3: variable-sized frames packed into blocks, one poll per block; a block
    is handed over when full or after 8 ms."""

    method = "tpacket_v3"

    def __init__(self, src: LinuxSource, info: dict, buffer_size: int) -> None:
        assert src.sock is not None
        self._src = src
        block_size = max(1 << 20, _pow2_at_least(src.snaplen + 1024))
        block_nr = max(2, buffer_size // block_size)
        # Frames are not used by V3 but must be consistent: one per block.
        req = _REQ.pack(block_size, block_nr, block_size, block_nr, 8, 0, 0)
        self._mm = _map_ring(src.sock, TPACKET_V3, req, block_size * block_nr)
        self._block_size = block_size
        self._nblocks = block_nr
        self._pos = 0

    def read_batch(self, frame: int) -> list[Packet]:
        mm = self._mm
        off = self._pos * self._block_size
        if not _U32.unpack_from(mm, off + 8)[0] & TP_STATUS_USER:  # block_status
            return []
        src = self._src
        out = decode_block_v3(mm, off, frame, src.linktype, src.snaplen, src.cooked, src.skip_outgoing)
        mm[off + 8:off + 12] = b"\0\0\0\0"  # give the block back to the kernel
        self._pos = (self._pos + 1) % self._nblocks
        return out

    def close(self) -> None:
        self._mm.close()


class RingV2:
    """TPACKET_V2: one frame per packet, released at once, so a lone packet is seen
    within milliseconds (immediate mode)."""

    method = "tpacket_v2"

    def __init__(self, src: LinuxSource, info: dict, buffer_size: int) -> None:
        assert src.sock is not None
        self._src = src
        # Frames big enough for the device's largest packet (or snaplen if smaller);
        # a bigger packet is cut, as libpcap does.
        link = 0 if src.cooked else 14 + 8
        payload = min(src.snaplen, max(info["mtu"], 1500) + link)
        frame_size = tpacket_align(tpacket_align(V2_HDR_SIZE + 20) + 16 + payload)
        block_size = _pow2_at_least(frame_size)
        block_nr = max(2, buffer_size // block_size)
        per_block = block_size // frame_size
        req = _REQ.pack(block_size, block_nr, frame_size, per_block * block_nr, 0, 0, 0)[:16]
        self._mm = _map_ring(src.sock, TPACKET_V2, req, block_size * block_nr)
        self._frame_size = frame_size
        self._frames_per_block = per_block
        self._block_size = block_size
        self._nframes = per_block * block_nr
        self._pos = 0

    def read_batch(self, frame: int) -> list[Packet]:
        mm = self._mm
        src = self._src
        out: list[Packet] = []
        for _ in range(self._nframes):
            pos = self._pos
            off = (pos // self._frames_per_block) * self._block_size + (pos % self._frames_per_block) * self._frame_size
            if not _U32.unpack_from(mm, off)[0] & TP_STATUS_USER:  # tp_status
                break
            pkt = decode_frame_v2(mm, off, frame, src.linktype, src.snaplen, src.cooked, src.skip_outgoing)
            mm[off:off + 4] = b"\0\0\0\0"
            self._pos = (pos + 1) % self._nframes
            if pkt is not None:
                frame += 1
                out.append(pkt)
        return out

    def close(self) -> None:
        self._mm.close()


class Recvmsg:
    """No ring: recvmsg() with PACKET_AUXDATA (lengths, VLAN tag) and SO_TIMESTAMPNS, up to
    256 packets a batch."""

    method = "recvmsg"

    def __init__(self, src: LinuxSource, buffer_size: int) -> None:
        sock = src.sock
        assert sock is not None
        self._src = src
        sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, buffer_size)
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, buffer_size)
        self._buf = bytearray(max(src.snaplen, 2048) + 64)
        self._anc = socket.CMSG_SPACE(_AUXDATA.size) + socket.CMSG_SPACE(_TIMESPEC.size) + 64
        self._pending_error = 0

    def read_batch(self, frame: int) -> list[Packet]:
        src = self._src
        sock = src.sock
        assert sock is not None
        if self._pending_error:
            err, self._pending_error = self._pending_error, 0
            src._raise_socket_error(err)
        buf = self._buf
        out: list[Packet] = []
        for _ in range(256):
            try:
                n, anc, _flags, addr = sock.recvmsg_into([buf], self._anc, socket.MSG_TRUNC)
            except BlockingIOError:
                break
            except OSError as exc:
                if out:  # deliver what came before; the error is raised on the next read
                    self._pending_error = exc.errno
                    break
                src._raise_socket_error(exc.errno)
            if src.skip_outgoing and addr[2] == PACKET_OUTGOING and addr[0] == src.skip_outgoing_name:
                continue
            time_ns = None
            length = n
            status = tci = tpid = 0
            for level, kind, payload in anc:
                if level == SOL_PACKET and kind == PACKET_AUXDATA:
                    status, length, _, _, _, tci, tpid = _AUXDATA.unpack_from(payload)
                elif level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    sec, nsec = _TIMESPEC.unpack_from(payload)
                    time_ns = sec * 1_000_000_000 + nsec
            data = bytes(buf[:min(n, len(buf))])
            if src.cooked:
                data = _SLL_HDR.pack(addr[2], addr[3], len(addr[4]), addr[4].ljust(8, b"\0"),
                                     struct.pack(">H", addr[1])) + data
                length += SLL_HDR_LEN
            data, length = _finish(data, length, status, tci, tpid, src.cooked, src.snaplen)
            frame += 1
            out.append(Packet(frame, time_ns, len(data), length, src.linktype, 0, data))
        return out

    def close(self) -> None:
        pass


def _bind_all_devices(sock: socket.socket) -> None:
    """bind() to ifindex 0, every device (Python's bind() for AF_PACKET wants a name)."""
    addr = struct.pack("=HHiHBB8s", socket.AF_PACKET, socket.htons(ETH_P_ALL), 0, 0, 0, 0, b"")
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.bind(sock.fileno(), ctypes.c_char_p(addr), len(addr)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def any_device_info() -> dict:
    """What LinuxSource needs for the "any" pseudo-device (all devices, cooked)."""
    lo_index, lo_name = 0, ""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
        for index, name in socket.if_nameindex():
            info = device_info(name, s)
            if info is not None and info["arphrd"] == ARPHRD_LOOPBACK:
                lo_index, lo_name = index, name
                break
    return {"name": "any", "index": 0, "flags": IFF_UP | IFF_RUNNING, "arphrd": None, "hwaddr": b"",
            "mtu": 65536, "ipv4": None, "lo_index": lo_index, "lo_name": lo_name}


def attach_filter(sock: socket.socket, program: Sequence[tuple[int, int, int, int]]) -> None:
    """SO_ATTACH_FILTER with a classic BPF program given as (code, jt, jf, k) tuples."""
    code = b"".join(_INSN.pack(c, jt, jf, k & 0xFFFFFFFF) for c, jt, jf, k in program)
    insns = ctypes.create_string_buffer(code, len(code))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER,
                    _FPROG.pack(len(program), ctypes.addressof(insns)))
