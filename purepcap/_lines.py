# One text line per packet in the style of `TZ=UTC tcpdump -tttt -n -q`.
#
# Strategy: tcpdump's quiet lines print lengths taken from the headers (the IP total
# length, the UDP length field, the TCP data offset), not from what was captured, and
# name IPv6 extension headers on the way. So this module walks the few bytes it needs
# itself: the link layer down to the network header (also needed for ARP and other
# non-IP frames), then the IP header and the first bytes of the transport. Where that
# walk finds no IP (other link types, wrappers like MACsec or NSH) it asks
# purepcap.headers.link_info where the IP header starts, so the lines show the same
# packets as records() does. Ethernet + IPv4 + TCP/UDP has a one-unpack fast path.
# Nothing here raises on any bytes: a short packet gets tcpdump's "[|proto]" marker.
# Timestamps are formatted from integer nanoseconds, with the date part cached per
# second.
from __future__ import annotations

import socket
import struct
import time as _time
from collections.abc import Callable
from datetime import datetime, timezone

from . import linktypes

__all__ = ["LineFormatter", "format_time", "describe", "hexdump", "network_offset"]

_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_IP4 = struct.Struct("!BBHHHBBH4s4s")
_IP6 = struct.Struct("!IHBB16s16s")
_PORTS = struct.Struct("!HH")
_ICMP_ECHO = struct.Struct("!BBHHH")

_VLAN_TPIDS = (0x8100, 0x88A8, 0x9100)
_MAX_DEPTH = 16  # stacked tags, MPLS labels, IPv6 extension headers

_ntoa = socket.inet_ntoa


def _ntop6(b: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET6, b)


def _mac(b: bytes) -> str:
    return ":".join(f"{x:02x}" for x in b)


# -- time ------------------------------------------------------------------------------------
def format_time(ns: int | None, digits: int = 6, local: bool = False) -> str:
    """``YYYY-MM-DD HH:MM:SS.ffffff`` (or 9 digits), UTC unless ``local``."""
    if ns is None:
        return "(no time)"
    sec, frac = divmod(ns, 1_000_000_000)
    return f"{_date(sec, local)}.{_frac(frac, digits)}"


def _frac(frac_ns: int, digits: int) -> str:
    if digits >= 9:
        return f"{frac_ns:09d}"
    return f"{frac_ns // 10 ** (9 - digits):0{digits}d}"


def _date(sec: int, local: bool) -> str:
    try:
        if local:
            return _time.strftime("%Y-%m-%d %H:%M:%S", _time.localtime(sec))
        return datetime.fromtimestamp(sec, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return f"@{sec}"


class LineFormatter:
    """Turns Packets into lines; ``digits_of(packet)`` gives 6 or 9 fraction digits."""

    def __init__(self, digits_of: Callable[[object], int] | None = None, *, local: bool = False) -> None:
        self._digits_of = digits_of or (lambda p: 6)
        self._local = local
        self._last_sec: int | None = None
        self._last_date = ""

    def time(self, ns: int | None, digits: int) -> str:
        if ns is None:
            return "(no time)"
        sec, frac = divmod(ns, 1_000_000_000)
        if sec != self._last_sec:
            self._last_sec = sec
            self._last_date = _date(sec, self._local)
        return f"{self._last_date}.{_frac(frac, digits)}"

    def line(self, packet) -> str:
        return f"{self.time(packet.time, self._digits_of(packet))} " \
               f"{describe(packet.linktype, packet.data, packet.length)}"


# -- the link layer --------------------------------------------------------------------------
# What the walk finds: an ethertype (or a pseudo one below) and the offset of what follows.
_LLC = -1  # 802.3 frame with a length field: LLC follows
_UNKNOWN = -2


def _link(linktype: int, data: bytes) -> tuple[int, int, str]:
    """(ethertype, offset of the network header, prefix text) for a packet's link layer."""
    n = len(data)
    if linktype == linktypes.EN10MB:
        if n < 14:
            return _UNKNOWN, 0, ""
        et = _U16.unpack_from(data, 12)[0]
        off = 14
        depth = 0
        while et in _VLAN_TPIDS and n >= off + 4 and depth < _MAX_DEPTH:
            et = _U16.unpack_from(data, off + 2)[0]
            off += 4
            depth += 1
        if et <= 1500:
            return _LLC, off, ""
        return et, off, ""
    if linktype == linktypes.LINUX_SLL:
        if n < 16:
            return _UNKNOWN, 0, ""
        return _U16.unpack_from(data, 14)[0], 16, ""
    if linktype == linktypes.LINUX_SLL2:
        if n < 20:
            return _UNKNOWN, 0, ""
        return _U16.unpack_from(data, 0)[0], 20, ""
    if linktype in (linktypes.NULL, linktypes.LOOP):
        if n < 4:
            return _UNKNOWN, 0, ""
        if linktype == linktypes.LOOP:
            fam = _U32.unpack_from(data, 0)[0]
        else:
            fam = struct.unpack_from("<I", data, 0)[0]
            if fam > 0xFFFF:
                fam = _U32.unpack_from(data, 0)[0]
        if fam == 2:
            return 0x0800, 4, ""
        if fam in (10, 24, 28, 30):
            return 0x86DD, 4, ""
        return _UNKNOWN, 4, ""
    if linktype in (linktypes.RAW, 12, 14, linktypes.IPV4, linktypes.IPV6):
        if n < 1:
            return _UNKNOWN, 0, ""
        v = data[0] >> 4
        return (0x0800 if v == 4 else 0x86DD if v == 6 else _UNKNOWN), 0, ""
    if linktype == linktypes.PPP:
        off = 2 if data[:2] == b"\xff\x03" else 0
        if n < off + 1:
            return _UNKNOWN, 0, ""
        if data[off] & 1:  # protocol field compression: one byte
            proto, off = data[off], off + 1
        elif n >= off + 2:
            proto, off = _U16.unpack_from(data, off)[0], off + 2
        else:
            return _UNKNOWN, 0, ""
        return {0x21: 0x0800, 0x57: 0x86DD}.get(proto, _UNKNOWN), off, ""
    if linktype == linktypes.C_HDLC:
        if n < 4:
            return _UNKNOWN, 0, ""
        return _U16.unpack_from(data, 2)[0], 4, ""
    return _UNKNOWN, 0, ""


def _tunnel(et: int, data: bytes, off: int) -> tuple[int, int, str]:
    """Look through PPPoE sessions and MPLS label stacks as tcpdump does, with its prefixes."""
    prefix = ""
    depth = 0
    while depth < _MAX_DEPTH:
        depth += 1
        if et == 0x8864 and len(data) >= off + 8:
            ses = _U16.unpack_from(data, off + 2)[0]
            proto = _U16.unpack_from(data, off + 6)[0]
            prefix += f"PPPoE  [ses 0x{ses:x}] "
            off += 8
            et = {0x21: 0x0800, 0x57: 0x86DD}.get(proto, _UNKNOWN)
        elif et in (0x8847, 0x8848):
            labels = []
            while len(data) >= off + 4 and len(labels) < _MAX_DEPTH:
                v = _U32.unpack_from(data, off)[0]
                off += 4
                bos = v & 0x100
                labels.append(f"(label {v >> 12}, tc {(v >> 9) & 7}{', [S]' if bos else ''}, ttl {v & 0xFF})")
                if bos:
                    break
            prefix += "MPLS " + ", ".join(labels) + " "
            if len(data) <= off:
                return _UNKNOWN, off, prefix
            nib = data[off] >> 4
            et = 0x0800 if nib == 4 else 0x86DD if nib == 6 else _UNKNOWN
        else:
            break
    return et, off, prefix


# The common case, Ethernet + IPv4 without options or fragmentation + TCP/UDP, in one
# unpack: ethertype, version/IHL, total length, flags/offset, protocol, addresses, ports.
_FAST = struct.Struct("!12xHBxH2xHxB2x4s4sHH")
_FAST_LEN = _FAST.size  # 38
_addr_cache: dict[bytes, str] = {}


def _addr4(raw: bytes) -> str:
    text = _addr_cache.get(raw)
    if text is None:
        if len(_addr_cache) > 65536:
            _addr_cache.clear()
        text = _addr_cache[raw] = _ntoa(raw)
    return text


def _fast(data: bytes, length: int) -> str | None:
    et, vihl, total, frag, proto, s, d, sport, dport = _FAST.unpack_from(data)
    if et != 0x0800 or vihl != 0x45 or frag & 0x3FFF or total > length - 14:
        return None
    end = min(len(data), 14 + total)
    if proto == 6:
        if end < 54:
            return None
        hl = (data[46] >> 4) * 4
        if hl < 20 or hl > total - 20:
            return None
        return f"IP {_addr4(s)}.{sport} > {_addr4(d)}.{dport}: tcp {total - 20 - hl}"
    if proto == 17:
        if end < 42:
            return None
        ulen = (data[38] << 8 | data[39]) - 8
        if ulen < 0 or ulen > total - 28:
            return None
        return f"IP {_addr4(s)}.{sport} > {_addr4(d)}.{dport}: UDP, length {ulen}"
    return None


def describe(linktype: int, data: bytes, length: int) -> str:
    """tcpdump -q's text for one packet (everything after the timestamp)."""
    if linktype == 1 and len(data) >= _FAST_LEN:
        text = _fast(data, length)
        if text is not None:
            return text
    try:
        et, off, prefix = _link(linktype, data)
        if et in (0x8864, 0x8847, 0x8848):
            et, off, prefix = _tunnel(et, data, off)
        wire = length - off
        if et == 0x0800:
            return prefix + _ipv4(data, off, wire)
        if et == 0x86DD:
            return prefix + _ipv6(data, off, wire)
        if et not in (0x0806, 0x8035, 0x88CC) and not (et == _LLC and data[off:off + 2] == b"BB"):
            text = _via_headers(linktype, data, length)
            if text is not None:
                return prefix + text
        return prefix + _non_ip(linktype, et, data, off, length)
    except (struct.error, IndexError, ValueError):  # a lying field we did not guard: never fatal
        return f"[|{linktypes.name(linktype)}], length {length}"


def _via_headers(linktype: int, data: bytes, length: int) -> str | None:
    """IP found by purepcap.headers behind a link layer or wrapper this module does not walk."""
    try:
        from .headers import link_info
    except ImportError:  # pragma: no cover - headers is part of the package
        return None
    kind, off, _vlan = link_info(linktype, data)
    if not kind or off >= len(data):
        return None
    if data[off] >> 4 == 6 or kind == 6:
        return _ipv6(data, off, length - off)
    return _ipv4(data, off, length - off)


# -- non-IP frames ---------------------------------------------------------------------------
_ETHERTYPE_NAMES = {
    0x88CC: "LLDP", 0x888E: "EAPOL", 0x8035: "RARP", 0x88F7: "PTPv2", 0x8809: "Slow Protocols",
    0x88E5: "MACsec", 0x8863: "PPPoE PADI/PADO", 0x22F0: "AVTP", 0x88A2: "AoE", 0x9000: "Loopback",
    0x8137: "IPX", 0x6003: "DECnet", 0x809B: "AppleTalk", 0x86DD: "IP6", 0x0800: "IP",
}


def _non_ip(linktype: int, et: int, data: bytes, off: int, length: int) -> str:
    rest = length - off
    if et in (0x0806, 0x8035):  # tcpdump's arp_print serves RARP too, under "ARP, "
        return _arp(data, off, rest)
    if et == _LLC:
        if linktype == linktypes.EN10MB and off >= 2:
            rest = min(rest, _U16.unpack_from(data, off - 2)[0])  # the 802.3 length field, padding left out
        if len(data) >= off + 3 and data[off] == 0x42 and data[off + 1] == 0x42:
            return _stp(data, off + 3, rest - 3)
        if (len(data) >= off + 8 and data[off:off + 3] == b"\xaa\xaa\x03"
                and data[off + 3:off + 8] == b"\x00\x00\x0c\x01\x0b"):  # Cisco PVST+ over SNAP
            return _stp(data, off + 8, rest - 8)
        return f"{_macs(data)}802.3, length {rest}"
    if et == _UNKNOWN:
        return f"{linktypes.name(linktype)}, length {length}"
    if et == 0x88CC:
        return _lldp(data, off, rest)
    name = _ETHERTYPE_NAMES.get(et)
    if name is not None and et not in (0x0800, 0x86DD):
        return f"{name}, length {rest}"
    return f"{_macs(data) if linktype == linktypes.EN10MB else ''}ethertype 0x{et:04x}, length {length}"


_STP_VERSIONS = {0: "802.1d", 2: "802.1w", 3: "802.1s", 4: "802.1aq"}
_STP_FLAGS = ((0x01, "Topology change"), (0x02, "Proposal"), (0x10, "Learn"), (0x20, "Forward"),
              (0x40, "Agreement"), (0x80, "Topology change ACK"))


def _stp(data: bytes, b: int, length: int) -> str:
    """tcpdump -q's spanning-tree line: version, BPDU type, flags, bridge and port id."""
    if len(data) < b + 3:
        return "STP [|stp]"
    version = data[b + 2]
    text = f"STP {_STP_VERSIONS.get(version, f'unknown version ({version})')}"
    if len(data) < b + 4:
        return text + " [|stp]"
    kind = data[b + 3]
    if kind == 0x80:
        return text + ", Topology Change"
    if kind not in (0x00, 0x02):
        return text + f", unknown type ({kind})"
    text += ", Config" if kind == 0x00 else ", Rapid STP"
    if len(data) < b + 5:
        return text + " [|stp]"
    flags = ", ".join(name for bit, name in _STP_FLAGS if data[b + 4] & bit) or "none"
    if version >= 3:
        if length < 102:  # shorter than an MSTP BPDU's fixed part
            return f"{text} (invalid)"
        return f"{text}, CIST Flags [{flags}], length {length}"
    if len(data) < b + 27:
        return f"{text}, Flags [{flags}] [|stp]"
    prio = _U16.unpack_from(data, b + 17)[0]
    port = _U16.unpack_from(data, b + 25)[0]
    return f"{text}, Flags [{flags}], bridge-id {prio:04x}.{_mac(data[b + 19:b + 25])}.{port:04x}, length {length}"


def _lldp(data: bytes, off: int, rest: int) -> str:
    """tcpdump -q names the system (TLV 5) after the length, when the frame carries one."""
    o = off
    name = ""
    cut = False
    for _ in range(256):
        if len(data) < o + 2:
            cut = o < off + rest  # TLVs were promised but not captured
            break
        head = _U16.unpack_from(data, o)[0]
        kind, size = head >> 9, head & 0x1FF
        if kind == 0:
            break
        if len(data) < o + 2 + size:
            cut = True
            break
        if kind == 5 and not name:
            name = ": " + data[o + 2:o + 2 + size].decode("ascii", "replace")
        o += 2 + size
    return f"LLDP, length {rest}{name}{' [|lldp]' if cut else ''}"


def _macs(data: bytes) -> str:
    if len(data) < 12:
        return ""
    return f"{_mac(data[6:12])} > {_mac(data[0:6])}, "


_ARP_OPS = {1: "Request", 2: "Reply", 3: "Reverse Request", 4: "Reverse Reply", 8: "Inverse Request",
            9: "Inverse Reply", 10: "NACK Reply"}
_ARP_HRD = {1: "Ethernet", 6: "IEEE 802", 7: "ARCNet", 15: "Frame Relay", 16: "ATM", 17: "HDLC",
            18: "Fibre Channel", 19: "ATM", 20: "Serial Line", 24: "IEEE 1394"}


_ARP_PRO = {0x0800: "IPv4", 0x86DD: "IPv6", 0x0806: "ARP", 0x8100: "802.1Q", 0x88A8: "802.1Q-QinQ",
            0x9100: "802.1Q-9100", 0x9200: "802.1Q-9200"}


def _arp(data: bytes, off: int, rest: int) -> str:
    # tcpdump's arp_print: a header cut short is " [|arp]"; odd sizes or protocols get
    # the hardware/protocol description; an unknown operation ends without a length.
    if len(data) < off + 8:
        return " [|arp]"
    hrd, pro, hln, pln, op = struct.unpack_from("!HHBBH", data, off)
    if hrd == 19:  # ATM ARP (RFC 2225) has its own layout; only its bounds are checked here
        if len(data) < off + 12:
            return " [|arp]"
        shtl, sstl, _op, spln, thtl, tstl, tpln = struct.unpack_from("!BBHBBBB", data, off + 4)
        need = (shtl & 0x3F) + (sstl & 0x3F) + spln + (thtl & 0x3F) + (tstl & 0x3F) + tpln
        if len(data) < off + 12 + need:
            return " [|arp]"
        return f"ARP, ATM, {_ARP_OPS.get(_op, f'Unknown ({_op})')}, length {rest}"
    sha = off + 8
    spa = sha + hln
    tha = spa + pln
    tpa = tha + hln
    if len(data) < tpa + pln:
        return " [|arp]"
    if pro not in (0x0800, 0x1000) or pln != 4 or hln == 0:
        hname = _ARP_HRD.get(hrd, f"Unknown Hardware ({hrd})")
        pname = _ARP_PRO.get(pro, f"Unknown Protocol (0x{pro:04x})")
        return f"ARP, {hname} (len {hln}), {pname} (len {pln}), length {rest}"
    text = f"ARP, {_ARP_OPS.get(op, f'Unknown ({op})')} "
    s_ip, t_ip = _ntoa(data[spa:spa + 4]), _ntoa(data[tpa:tpa + 4])
    s_hw, t_hw = data[sha:sha + hln], data[tha:tha + hln]
    if op == 1:
        who = f" ({_mac(t_hw)})" if any(t_hw) else ""
        text += f"who-has {t_ip}{who} tell {s_ip}"
    elif op == 2:
        text += f"{s_ip} is-at {_mac(s_hw)}"
    elif op in (3, 8):
        text += f"who-is {_mac(t_hw)} tell {_mac(s_hw)}"
    elif op == 4:
        text += f"{_mac(t_hw)} at {t_ip}"
    elif op == 9:
        text += f"{_mac(s_hw)} at {s_ip}"
    else:
        return text.rstrip()
    return f"{text}, length {rest}"


# -- IPv4 ------------------------------------------------------------------------------------
# tcpdump bounds everything after the IP header by the IP length as well as by what was
# captured ("end" below), and prints lengths computed from the headers.
def _ipv4(data: bytes, off: int, wire: int) -> str:
    if len(data) < off + 1:
        return "IP  [|ip]"
    vihl = data[off]
    if vihl >> 4 != 4:
        if vihl >> 4 == 6:
            return "IP6, wrong link-layer encapsulation (invalid)"
        return f"IP{vihl >> 4} (invalid)"
    if len(data) < off + 20:
        return "IP  [|ip]"
    vihl, _tos, total, _id, frag, ttl, proto, _sum, s, d = _IP4.unpack_from(data, off)
    hlen = (vihl & 0xF) * 4
    if hlen < 20:
        return f"IP bad-hlen {hlen}"
    head = "IP "
    if wire < total:
        head += f"truncated-ip - {total - wire} bytes missing! "
    if total < hlen:
        return f"{head}bad-len {total}"
    src, dst = _ntoa(s), _ntoa(d)
    if frag & 0x1FFF:  # not the first fragment: no transport header here
        return f"{head}{src} > {dst}: ip-proto-{proto}"
    end = min(len(data), off + total)
    return head + _transport(proto, data, off + hlen, end, total - hlen, src, dst, bool(frag & 0x2000), ttl)


# -- IPv6 ------------------------------------------------------------------------------------
def _ipv6(data: bytes, off: int, wire: int) -> str:
    if len(data) < off + 40:
        return "IP6  [|ip6]"
    _vtf, plen, nh, hlim, s, d = _IP6.unpack_from(data, off)
    src, dst = _ntop6(s), _ntop6(d)
    head = "IP6 "
    total = plen + 40
    if plen == 0 and nh == 0:  # a jumbogram: its length is in a hop-by-hop option; take the link's
        total = wire
    if wire < total:
        head += f"truncated-ip6 - {total - wire} bytes missing!"  # sic: tcpdump prints no space here
    end = min(len(data), off + total)
    t = off + 40
    left = total - 40
    exts: list[str] = []
    fragmented = False
    depth = 0
    while nh in (0, 60, 43, 44, 51) and depth < _MAX_DEPTH:
        depth += 1
        if end < t + 8:
            exts.append("[|ip6]")
            return f"{head}{src} > {dst}: {' '.join(exts)}"
        if nh == 44:
            fo = _U16.unpack_from(data, t + 2)[0]
            offset = fo & 0xFFF8
            exts.append(f"frag ({offset}|{left - 8})")
            fragmented = True
            nh = data[t]
            t += 8
            left -= 8
            if offset:
                return f"{head}{src} > {dst}: {' '.join(exts)}"
            continue
        if nh == 51:
            elen = (data[t + 1] + 2) * 4
            exts.append(_ah(data, t, elen, end))
        else:
            elen = (data[t + 1] + 1) * 8
            exts.append(_rt6(data, t, end) if nh == 43 else {0: "HBH", 60: "DSTOPT"}[nh])
        nh = data[t]
        t += elen
        left -= elen
    if exts:
        # after extension headers tcpdump prints the transport's ports without addresses
        return f"{head}{src} > {dst}: {' '.join(exts)} " + _transport(nh, data, t, end, left, None, None,
                                                                       fragmented, hlim)
    return head + _transport(nh, data, t, end, left, src, dst, False, hlim)


def _rt6(data: bytes, t: int, end: int) -> str:
    """A routing header as tcpdump -q shows it: type 0 (deprecated) and 4 (segment
    routing) with their address lists, others by their numbers."""
    hlen, rtype, segleft = data[t + 1], data[t + 2], data[t + 3]
    head = f"RT6 (len={hlen}, type={rtype}"
    if rtype == 0:
        head += f" [Deprecated], segleft={segleft}"
        first = t + 8
        count = hlen // 2
    elif rtype == 4:
        if end < t + 8:
            return head + ")"
        head += f", segleft={segleft}, last-entry={data[t + 4]}, tag={_U16.unpack_from(data, t + 6)[0]}"
        if hlen % 2:
            return head + f" (invalid length {hlen})"
        first = t + 8
        count = hlen // 2
    else:
        return head + f", segleft={segleft})"
    addrs = []
    for i in range(count):
        a = first + 16 * i
        if end < a + 16:
            break
        addrs.append(f"[{i}]{_ntop6(data[a:a + 16])}")
    return head + "".join(", " + x for x in addrs) + ")"


def _ah(data: bytes, t: int, elen: int, end: int) -> str:
    if end < t + 12 or elen < 12:
        return "AH"
    spi, seq = struct.unpack_from("!II", data, t + 4)
    icv = data[t + 12:min(t + elen, end)].hex()
    return f"AH(spi=0x{spi:08x},seq=0x{seq:x},icv=0x{icv}):"


# -- transports ------------------------------------------------------------------------------
def _ends(src: str | None, dst: str | None, sport: int, dport: int) -> str:
    if src is None:
        return f"{sport} > {dport}:"
    return f"{src}.{sport} > {dst}.{dport}:"


def _hosts(src: str | None, dst: str | None) -> str:
    return "" if src is None else f"{src} > {dst}: "


def _short(src: str | None, dst: str | None, what: str) -> str:
    """tcpdump's marker for a header cut short: "a > b:  [|tcp]"."""
    return f"{src} > {dst}:  [|{what}]" if src is not None else f" [|{what}]"


def _transport(proto: int, data: bytes, t: int, end: int, plen: int, src: str | None, dst: str | None,
               fragmented: bool, ttl: int = 255) -> str:
    if proto == 6:
        if end < t + 4:
            return _short(src, dst, "tcp")
        sport, dport = _PORTS.unpack_from(data, t)
        ends = _ends(src, dst, sport, dport)
        if end < t + 20:
            return f"{ends}  [|tcp]"
        hl = (data[t + 12] >> 4) * 4
        if hl < 20:
            return f"{ends}  tcp {(plen - hl) & 0xFFFFFFFF} [bad hdr length {hl} - too short, < 20]"
        if hl > plen:
            return f"{ends} tcp {(plen - hl) & 0xFFFFFFFF} [bad hdr length {hl} - too long, > {plen}]"
        return f"{ends} tcp {plen - hl}"
    if proto == 17:
        if end < t + 8:
            if end >= t + 4 and src is not None:
                sport, dport = _PORTS.unpack_from(data, t)
                return f"{_ends(src, dst, sport, dport)}  [|udp]"
            return _short(src, dst, "udp")
        sport, dport, ulen = struct.unpack_from("!HHH", data, t)
        ends = _ends(src, dst, sport, dport)
        if ulen == 0 and plen > 65535:
            ulen = plen
        if ulen < 8:
            return f"{ends} truncated-udplength {ulen}"
        ulen -= 8
        room = plen - 8
        if ulen > room and not fragmented:
            return f"{ends} UDP, bad length {ulen} > {room}"
        return f"{ends} UDP, length {ulen}"
    hosts = _hosts(src, dst)
    if proto == 1:
        return hosts + _icmp(data, t, end, plen)
    if proto == 58:
        return hosts + _icmp6(data, t, end, plen)
    if proto == 2:
        return hosts + "igmp"
    if proto == 33:  # DCCP: ports, then the data length after its header (data offset in words)
        if end < t + 5:
            return _short(src, dst, "dccp")
        sport, dport = _PORTS.unpack_from(data, t)
        hl = data[t + 4] * 4
        if hl > plen:
            return f"{_ends(src, dst, sport, dport)} DCCP [bad hdr length {hl} - too long, > {plen}]"
        return f"{_ends(src, dst, sport, dport)} DCCP {plen - hl}"
    if proto == 132:
        if end >= t + 4:
            sport, dport = _PORTS.unpack_from(data, t)
            return f"{_ends(src, dst, sport, dport)} sctp"
        return hosts + "sctp"
    if proto == 50:
        if end >= t + 8:
            spi, seq = struct.unpack_from("!II", data, t)
            return f"{hosts}ESP(spi=0x{spi:08x},seq=0x{seq:x}), length {plen}"
        return f"{hosts}ESP, length {plen}"
    if proto == 51:
        if end >= t + 2:
            elen = (data[t + 1] + 2) * 4
            return f"{hosts}{_ah(data, t, elen, end)} " + _transport(data[t], data, t + elen, end, plen - elen,
                                                                     None, None, fragmented)
        return f"{hosts}AH"
    if proto == 47:
        return hosts + _gre(data, t, end, plen)
    if proto == 108:
        return hosts + (f"IPComp(cpi=0x{_U16.unpack_from(data, t + 2)[0]:04x})" if end >= t + 4 else " [|ipcomp]")
    if proto in (4, 41):
        return hosts + (_ipv4(data, t, plen) if proto == 4 else _ipv6(data, t, plen))
    if proto == 112:
        return hosts + _vrrp(data, t, end, plen, ttl)
    if proto in _NAMED and end > t + 1:
        return hosts + _NAMED[proto](data, t, plen)
    return f"{hosts[:-1]}  ip-proto-{proto} {plen}" if hosts else f"ip-proto-{proto} {plen}"


def _gre(data: bytes, t: int, end: int, plen: int) -> str:
    if end < t + 4:
        return " [|gre]"
    flags, gproto = struct.unpack_from("!HH", data, t)
    ver = flags & 7
    parts = [f"GREv{ver}"]
    o = t + 4
    if flags & 0x8000:
        o += 4
    if flags & 0x2000 and end >= o + 4:
        key = _U32.unpack_from(data, o)[0]
        parts.append(f"call {key & 0xFFFF}" if ver == 1 else f"key=0x{key:x}")
        o += 4
    if flags & 0x1000 and end >= o + 4:
        parts.append(f"seq {_U32.unpack_from(data, o)[0]}")
        o += 4
    if ver == 1 and flags & 0x80 and end >= o + 4:
        parts.append(f"ack {_U32.unpack_from(data, o)[0]}")
        o += 4
    parts.append(f"length {plen}")
    inner = o - t
    if gproto == 0x0800:
        rest = _ipv4(data, o, plen - inner)
    elif gproto == 0x86DD:
        rest = _ipv6(data, o, plen - inner)
    else:
        rest = f"gre-proto-0x{gproto:x}"
    return f"{', '.join(parts)}: {rest}"


_PIM_TYPES = {0: "Hello", 1: "Register", 2: "Register Stop", 3: "Join / Prune", 4: "Bootstrap", 5: "Assert",
              6: "Graft", 7: "Graft ACK", 8: "Candidate RP Advertisement", 9: "State Refresh",
              10: "DF Election"}
_OSPF_TYPES = {1: "Hello", 2: "Database Description", 3: "LS-Request", 4: "LS-Update", 5: "LS-Ack"}
_EIGRP_OPS = {1: "Update", 2: "Request", 3: "Query", 4: "Reply", 5: "Hello", 6: "IPX SAP", 10: "SIA Query",
              11: "SIA Reply"}


def _pim(data: bytes, t: int, plen: int) -> str:
    v, typ = data[t] >> 4, data[t] & 0xF
    if v != 2:
        return f"PIMv{v}, length {plen}"
    return f"PIMv2, {_PIM_TYPES.get(typ, f'unknown type ({typ})')}, length {plen}"


def _ospf(data: bytes, t: int, plen: int) -> str:
    kind = _OSPF_TYPES.get(data[t + 1], f"unknown packet type ({data[t + 1]})")
    if data[t] == 2 and len(data) >= t + 20 and _U16.unpack_from(data, t + 14)[0] == 2:
        plen -= data[t + 19]  # tcpdump leaves out the cryptographic-authentication trailer
    return f"OSPFv{data[t]}, {kind}, length {plen}"


def _eigrp(data: bytes, t: int, plen: int) -> str:
    return f"EIGRP {_EIGRP_OPS.get(data[t + 1], f'unknown ({data[t + 1]})')}, length: {plen}"


def _vrrp(data: bytes, t: int, end: int, plen: int, ttl: int) -> str:
    if end < t + 1:
        return " [|vrrp]"
    version, kind = data[t] >> 4, data[t] & 0xF
    text = f"VRRPv{version}, " + ("Advertisement" if kind == 1 else f"unknown type ({kind})")
    if ttl != 255:
        text += f", (ttl {ttl})"
    if kind != 1:
        return text
    if end < t + 6:
        return text + " [|vrrp]"
    text += f", vrid {data[t + 1]}, prio {data[t + 2]}"
    if version == 2:
        auth = {0: "none", 1: "simple", 2: "ah"}.get(data[t + 4], str(data[t + 4]))
        return text + f", authtype {auth}, intvl {data[t + 5]}s, length {plen}"
    return text + f", intvl {_U16.unpack_from(data, t + 4)[0] & 0xFFF}cs, length {plen}"


_RSVP_MSGS = {1: "Path", 2: "Resv", 3: "PathErr", 4: "ResvErr", 5: "PathTear", 6: "ResvTear", 7: "ResvConf",
              20: "Hello"}

_NAMED: dict[int, Callable[[bytes, int, int], str]] = {
    103: _pim, 89: _ospf, 88: _eigrp,
    46: lambda d, t, n: f"RSVPv{d[t] >> 4} {_RSVP_MSGS.get(d[t + 1], f'unknown ({d[t + 1]})')} Message, length: {n}",
}


_ICMP_UNREACH = {0: "net {} unreachable", 1: "host {} unreachable", 4: "{} unreachable - need to frag",
                 9: "net {} unreachable - admin prohibited", 10: "host {} unreachable - admin prohibited",
                 13: "host {} unreachable - admin prohibited filter"}
_ICMP_NAMES = {4: "source quench", 9: "router advertisement", 10: "router solicitation",
               12: "parameter problem", 13: "time stamp request", 14: "time stamp reply",
               15: "information request", 16: "information reply", 17: "address mask request",
               18: "address mask reply"}


def _icmp(data: bytes, t: int, n: int, plen: int) -> str:
    if n < t + 2:
        return " [|icmp]"
    typ, code = data[t], data[t + 1]
    if typ in (0, 8):
        if n < t + 8:
            return " [|icmp]"
        _, _, _, ident, seq = _ICMP_ECHO.unpack_from(data, t)
        what = "echo reply" if typ == 0 else "echo request"
        return f"ICMP {what}, id {ident}, seq {seq}, length {plen}"
    if typ == 3:
        inner = t + 8
        if n >= inner + 20 and data[inner] >> 4 == 4:
            ihl = (data[inner] & 0xF) * 4
            idst = _ntoa(data[inner + 16:inner + 20])
            iproto = data[inner + 9]
            if code == 3 and iproto in (6, 17) and n >= inner + ihl + 4:
                dport = _U16.unpack_from(data, inner + ihl + 2)[0]
                return f"ICMP {idst} {'udp' if iproto == 17 else 'tcp'} port {dport} unreachable, length {plen}"
            if code == 2:
                return f"ICMP {idst} protocol {iproto} unreachable, length {plen}"
            if code in _ICMP_UNREACH:
                return f"ICMP {_ICMP_UNREACH[code].format(idst)}, length {plen}"
        return f"ICMP unreachable code {code}, length {plen}"
    if typ == 11:
        what = "time exceeded in-transit" if code == 0 else "ip reassembly time exceeded"
        return f"ICMP {what}, length {plen}"
    if typ == 5:
        return f"ICMP redirect, length {plen}"
    if typ in _ICMP_NAMES:
        return f"ICMP {_ICMP_NAMES[typ]}, length {plen}"
    return f"ICMP type-#{typ}, length {plen}"


_ICMP6_NAMES = {1: "destination unreachable", 2: "packet too big", 3: "time exceeded in-transit",
                4: "parameter problem", 130: "multicast listener query", 131: "multicast listener report",
                132: "multicast listener done", 133: "router solicitation", 134: "router advertisement",
                137: "redirect", 143: "multicast listener report v2"}


def _icmp6(data: bytes, t: int, n: int, plen: int) -> str:
    if n < t + 2:
        return "ICMP6 [|icmp6]"
    typ = data[t]
    if typ in (128, 129) and n >= t + 8:
        _, _, _, ident, seq = _ICMP_ECHO.unpack_from(data, t)
        what = "echo request" if typ == 128 else "echo reply"
        return f"ICMP6, {what}, id {ident}, seq {seq}, length {plen}"
    if typ == 135 and n >= t + 24:
        return f"ICMP6, neighbor solicitation, who has {_ntop6(data[t + 8:t + 24])}, length {plen}"
    if typ == 1 and n >= t + 8 + 40:
        code = data[t + 1]
        inner = t + 8
        idst = _ntop6(data[inner + 24:inner + 40])
        if code == 4 and data[inner + 6] in (6, 17) and n >= inner + 44:
            dport = _U16.unpack_from(data, inner + 42)[0]
            return (f"ICMP6, destination unreachable, unreachable port, {idst} "
                    f"{'udp' if data[inner + 6] == 17 else 'tcp'} port {dport}, length {plen}")
        if code == 3:
            return f"ICMP6, destination unreachable, unreachable address {idst}, length {plen}"
    if typ == 2 and n >= t + 8:
        return f"ICMP6, packet too big, mtu {_U32.unpack_from(data, t + 4)[0]}, length {plen}"
    if typ == 143 and n >= t + 8:
        nrec = _U16.unpack_from(data, t + 6)[0]
        return f"ICMP6, multicast listener report v2, {nrec} group record(s), length {plen}"
    if typ == 136 and n >= t + 24:
        return f"ICMP6, neighbor advertisement, tgt is {_ntop6(data[t + 8:t + 24])}, length {plen}"
    name = _ICMP6_NAMES.get(typ)
    if name is not None:
        return f"ICMP6, {name}, length {plen}"
    return f"ICMP6, unknown icmp6 type ({typ}), length {plen}"


# -- payload dump ----------------------------------------------------------------------------
_PRINTABLE = bytes(b if 0x21 <= b < 0x7F else 0x2E for b in range(256))  # tcpdump shows space as "."


def hexdump(data: bytes, start: int = 0) -> str:
    """tcpdump -X style: offset, eight groups of two bytes in hex, then ASCII."""
    out = []
    for i in range(start, len(data), 16):
        chunk = data[i:i + 16]
        hexpart = " ".join(chunk[j:j + 2].hex() for j in range(0, len(chunk), 2))
        out.append(f"\t0x{i - start:04x}:  {hexpart:<39}  {chunk.translate(_PRINTABLE).decode('ascii')}")
    return "\n".join(out)


def network_offset(linktype: int, data: bytes) -> int:
    """Where the network header starts (0 when the link layer is not understood)."""
    try:
        et, off, _ = _link(linktype, data)
        if et in (0x8864, 0x8847, 0x8848):
            et, off, _ = _tunnel(et, data, off)
    except (struct.error, IndexError):
        return 0
    return off if et != _UNKNOWN and off <= len(data) else 0
