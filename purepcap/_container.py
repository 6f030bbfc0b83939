# The capture-container rules, in one place: every magic number, byte order, record and
# block layout, size bound and time rule of classic pcap and pcapng.
#
# Strategy: sans-I/O, in h11's style. Everything here is a constant or a function over
# (buffer, offset) that reads no stream. Three readers walk containers -- format (Packets),
# _records (dict rows) and _batches (numpy batches for DataFrames) -- and each keeps its
# own tight loop for the common record, because that loop is where their speed is; but
# each takes every rule from here, and any pcapng block its fast loop does not take goes
# through the one careful step, ``pcapng_block``, after which the reader returns to its
# fast loop. A new block type or pcap variant is therefore added here and nowhere else.
from __future__ import annotations

import os
import struct
import sys
import warnings
from typing import Any, NamedTuple

from . import linktypes
from .errors import DamagedError, PcapError, PcapWarning, TruncatedError, UnsupportedFormatError, damage_text

NS = 1_000_000_000

# -- classic pcap --------------------------------------------------------------------------


class PcapVariant(NamedTuple):
    """What a classic pcap magic says: byte order, ticks per second, record header length."""

    order: str
    ticks: int
    record_len: int
    modified: bool  # Alexey Kuznetzov's "modified" pcap (24-byte records)


# keyed by the magic as read little-endian
PCAP_MAGICS = {
    0xA1B2C3D4: PcapVariant("<", 1_000_000, 16, False),
    0xD4C3B2A1: PcapVariant(">", 1_000_000, 16, False),
    0xA1B23C4D: PcapVariant("<", NS, 16, False),
    0x4D3CB2A1: PcapVariant(">", NS, 16, False),
    0xA1B2CD34: PcapVariant("<", 1_000_000, 24, True),
    0x34CDB2A1: PcapVariant(">", 1_000_000, 24, True),
}
PCAP_HEADER_LEN = 24
PCAP_HEADER = "IHHiIII"  # magic, major, minor, thiszone, sigfigs, snaplen, link-type field
PCAP_RECORD = "IIII"  # seconds, fraction, captured length, original length


class PcapHeader(NamedTuple):
    variant: PcapVariant
    version: tuple[int, int]
    snaplen: int
    linktype: int
    fcs_length: int | None
    record_limit: int  # the largest record believed (see pcap_record_limit)
    swaps_lengths: bool  # libpcap's caplen/len swap in files before 2.4


def pcap_record_limit(snaplen: int, linktype: int) -> int:
    """The largest captured length a record may claim.

    A record may be as big as the snaplen says, but the snaplen is a length field too:
    past the pcapng block bound it is not believed, or one lying header would make a
    reader gather gigabytes for a single record."""
    return max(min(snaplen, MAX_BLOCK), linktypes.max_caplen(linktype))


def read_pcap_header(head: bytes | memoryview) -> PcapHeader:
    """The 24-byte file header of a classic pcap (its magic already known to be one)."""
    variant = PCAP_MAGICS[struct.unpack_from("<I", head)[0]]
    _, major, minor, _, _, snaplen, ltfield = struct.unpack_from(variant.order + PCAP_HEADER, head)
    if major != 2:
        raise UnsupportedFormatError(f"pcap major version {major} at offset 4 is not supported (only 2)",
                                     offset=4, frame=0)
    if ltfield & 0x03FF0000:
        raise UnsupportedFormatError(
            f"pcap link-type field 0x{ltfield:08x} at offset 20 has its reserved bits set", offset=20, frame=0)
    linktype = ltfield & 0xFFFF
    fcs_length = (ltfield >> 28) * 2 if ltfield & 0x04000000 else None  # in 16-bit units in the file
    return PcapHeader(variant, (major, minor), snaplen, linktype, fcs_length,
                      pcap_record_limit(snaplen, linktype), (major, minor) < (2, 4))


def pcap_wrapped_time(sec: int, frac: int, mult: int) -> int:
    """Time of a record whose fraction is invalid (one second or more).

    libpcap and Wireshark scale the fraction to nanoseconds in a signed 32-bit
    integer; doing the same keeps purepcap's times equal to theirs on such files."""
    ns = (frac * mult) & 0xFFFFFFFF
    if ns >= 0x80000000:
        ns -= 0x100000000
    return sec * NS + ns


def pcap_record_too_long(offset: int, frame: int, caplen: int, hdr: PcapHeader) -> DamagedError:
    limit = hdr.record_limit
    return DamagedError(
        f"record at offset {offset} (after frame {frame}) claims {caplen} bytes, more than the snaplen "
        f"{hdr.snaplen}" + (f" and the largest possible {limit}" if hdr.snaplen != limit else ""),
        offset=offset)


def pcap_cut_short(offset: int, frame: int, in_header: bool) -> TruncatedError:
    what = "record header" if in_header else "record's data"
    return TruncatedError(f"capture cut short in a {what} at offset {offset} (after frame {frame})",
                          offset=offset)


# -- pcapng --------------------------------------------------------------------------------
PCAPNG_SHB = 0x0A0D0D0A  # reads the same in both byte orders
BYTE_ORDER_MAGIC = 0x1A2B3C4D
BYTE_ORDER_MAGIC_SWAPPED = 0x4D3C2B1A
MAX_BLOCK = 32 * 1024 * 1024  # well above any honest block, far below a lie

BT_IDB = 1
BT_PB = 2  # obsolete Packet Block
BT_SPB = 3
BT_NRB = 4
BT_ISB = 5
BT_EPB = 6
BT_DSB = 10
BT_CUSTOM = 0x00000BAD
BT_CUSTOM_NOCOPY = 0x40000BAD
# Blocks without packets that every reader steps over: name resolution, interface
# statistics, decryption secrets, custom.
PACKETLESS_BLOCKS = frozenset((BT_NRB, BT_ISB, BT_DSB, BT_CUSTOM, BT_CUSTOM_NOCOPY))
# Every block type a damaged block may be followed by, for strict=False's judgement of
# whether the next block is real.
KNOWN_BLOCKS = frozenset((PCAPNG_SHB, BT_IDB, BT_PB, BT_SPB, BT_EPB)) | PACKETLESS_BLOCKS

# The EPB runs read a block's type, length and fixed fields in one unpack (EPB_HEAD), and
# a block's trailing length with the next block's fields in one more (EPB_STEP). The
# interface id and the top 32 bits of the timestamp are read as one u64 ``key``: it is
# only compared with the last packet's, and one int costs less to make than two.
EPB_HEAD = "IIQIII"  # type, length, key, low 32 time bits, caplen, length on the wire
EPB_STEP = "I" + EPB_HEAD  # a trailing length, then the next block's EPB_HEAD
# The same fields as seven 32-bit words: type, length, interface id, top and low 32 time
# bits, caplen, length on the wire. PyPy's loop reads this: its struct makes a 64-bit
# unsigned field far slower than two 32-bit ones (0.36 s against 0.26 s of 1M blocks).
EPB_WORDS = "IIIIIII"
EPB_DATA = 28  # where an EPB's packet data starts
EPB_MIN = 32  # the smallest EPB: its fields and trailing length


def epb_key_split(key: int, order: str) -> tuple[int, int]:
    """(interface id, top 32 time bits) of an EPB key read in byte order ``order``."""
    return (key & 0xFFFFFFFF, key >> 32) if order == "<" else (key >> 32, key & 0xFFFFFFFF)


def epb_fits(blen: int, caplen: int) -> bool:
    """Whether an EPB of length ``blen`` is one the fast runs may take as it is."""
    return caplen + EPB_MIN <= blen < MAX_BLOCK and not blen & 3


# Interfaces are kept for the whole file, so their number and their options are what a
# crafted file could grow without bound (millions of 20-byte IDBs cost 20 times their
# size in objects). Together they get the bound of one block: an interface counts
# INTERFACE_COST plus 64 per option and the option's bytes. Splitting a file and reading
# its leading blocks keep to the same budget.
INTERFACE_BUDGET = MAX_BLOCK
INTERFACE_COST = 1024
MAX_SKIP_WARNINGS = 100  # strict=False warns for this many skipped blocks, then counts

# option codes (the writers in format use them too)
OPT_ENDOFOPT = 0
IF_NAME = 2
IF_DESCRIPTION = 3
IF_TSRESOL = 9
IF_FILTER = 11
IF_OS = 12
IF_FCSLEN = 13
IF_TSOFFSET = 14
SHB_HARDWARE = 2
SHB_OS = 3
SHB_USERAPPL = 4


def precision_name(tsresol: int) -> str:
    return {1: "s", 1000: "ms", 1_000_000: "us", NS: "ns"}.get(tsresol, f"1/{tsresol} s")


def decode_tsresol(raw: int) -> int:
    """Ticks per second from an if_tsresol byte: 10^-n, or 2^-n when the top bit is set."""
    if raw & 0x80:
        return 1 << (raw & 0x7F)
    return 10 ** raw


class Interface:
    """A capture interface: the one of a pcap file, or a pcapng IDB.

    A plain class with what a dataclass would give it (the constructor, repr and ==),
    written out because ``import dataclasses`` costs PyPy 25 ms (it imports inspect), a
    tenth of what reading a million packets takes there (see _loops)."""

    __hash__ = None  # type: ignore[assignment]  # mutable and compared by value

    def __init__(self, linktype: int, snaplen: int, tsresol: int = 1_000_000, tsoffset: int = 0,
                 name: str | None = None, description: str | None = None, os: str | None = None,
                 filter: str | None = None, fcslen: int | None = None, section: int = 0, index: int = 0,
                 options: dict[int, list[bytes]] | None = None) -> None:
        self.linktype = linktype
        self.snaplen = snaplen
        self.tsresol = tsresol  # timestamp ticks per second
        self.tsoffset = tsoffset  # seconds added to every timestamp
        self.name = name
        self.description = description
        self.os = os
        self.filter = filter
        self.fcslen = fcslen
        self.section = section
        self.index = index  # position in Capture.interfaces
        self.options: dict[int, list[bytes]] = {} if options is None else options

    _FIELDS = ("linktype", "snaplen", "tsresol", "tsoffset", "name", "description", "os", "filter", "fcslen",
               "section", "index", "options")

    def __repr__(self) -> str:  # every field but the raw options
        return "Interface(" + ", ".join(f"{f}={getattr(self, f)!r}" for f in self._FIELDS[:-1]) + ")"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in self._FIELDS)

    @property
    def linktype_name(self) -> str:
        return linktypes.name(self.linktype)

    @property
    def precision(self) -> str:
        return precision_name(self.tsresol)


class IfaceTime(NamedTuple):
    """What a packet loop needs of an interface, with its time rule precomputed:
    ns = ticks * mult + offset when ``div`` is 1 (a whole number of ns per tick),
    else ticks * NS // div + offset."""

    index: int  # global index in Capture.interfaces
    linktype: int
    mult: int
    div: int
    offset: int  # if_tsoffset, in ns
    snaplen: int

    def ns(self, ticks: int) -> int:
        return ticks * self.mult + self.offset if self.div == 1 else ticks * NS // self.div + self.offset


def iface_time(iface: Interface) -> IfaceTime:
    if iface.tsresol <= NS and NS % iface.tsresol == 0:
        mult, div = NS // iface.tsresol, 1
    else:
        mult, div = NS, iface.tsresol
    return IfaceTime(iface.index, iface.linktype, mult, div, iface.tsoffset * NS, iface.snaplen)


def opt_str(opts: dict[int, list[bytes]], code: int) -> str | None:
    if code not in opts:
        return None
    return opts[code][0].rstrip(b"\x00").decode("utf-8", "replace")


def shb_byte_order(buf: Any, pos: int, base: int = 0) -> str:
    """The byte order of the section header at ``pos`` (its length field depends on it)."""
    if len(buf) < pos + 12:
        raise TruncatedError(f"pcapng section header at offset {base + pos} cut short", offset=base + pos)
    bom = struct.unpack_from("<I", buf, pos + 8)[0]
    if bom == BYTE_ORDER_MAGIC:
        return "<"
    if bom == BYTE_ORDER_MAGIC_SWAPPED:
        return ">"
    raise DamagedError(f"pcapng section header at offset {base + pos} has a bad byte-order magic "
                       f"{bytes(buf[pos + 8:pos + 12]).hex(' ')}", offset=base + pos)


def block_length_ok(btype: int, blen: int) -> bool:
    """A block length any reader may believe: 12 or more, within the bound, and a
    multiple of 4 (the obsolete Packet Block excepted, as Wireshark reads it)."""
    return 12 <= blen <= MAX_BLOCK and (not blen & 3 or btype == BT_PB)


def bad_block_length(blen: int, offset: int) -> DamagedError:
    return DamagedError(f"pcapng block at offset {offset} has length {blen}", offset=offset)


def next_block_plausible(buf: Any, nxt: int, end: int, order: str) -> bool:
    """Whether a real block seems to start at ``nxt`` (strict=False steps over a damaged
    block only then)."""
    if nxt == end:
        return True
    if nxt + 8 > end:
        return False
    btype = struct.unpack_from(order + "I", buf, nxt)[0]
    if btype == PCAPNG_SHB:  # a new section's length is in its own byte order
        if nxt + 12 > end:
            return False
        bom = struct.unpack_from("<I", buf, nxt + 8)[0]
        if bom not in (BYTE_ORDER_MAGIC, BYTE_ORDER_MAGIC_SWAPPED):
            return False
        order = "<" if bom == BYTE_ORDER_MAGIC else ">"
    blen = struct.unpack_from(order + "I", buf, nxt + 4)[0]
    return btype in KNOWN_BLOCKS and 12 <= blen <= MAX_BLOCK


def report_damage(exc: PcapError, source: str, frame: int, errors: str, skipped: str = "") -> None:
    """Damage found by a walk, by the ``errors`` policy (purepcap.errors.ERRORS): raised
    ("raise"), else a PcapWarning ("warn") or nothing ("ignore"), and the walk stops, or
    with ``skipped`` (what the warning adds) steps over the damaged block. ``frame`` is
    the last packet delivered before it. Every walker reports damage here, so the
    warning names the file, the offset and the frame in one wording everywhere."""
    exc.source = source
    exc.frame = frame
    if errors == "raise":
        raise exc
    if errors == "warn":
        what = skipped or "; the packets before it are kept, reading stopped there"
        warnings.warn(PcapWarning(damage_text(exc) + what, exc), stacklevel=_user_level())


_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _user_level() -> int:
    """The stacklevel of the first frame outside purepcap (as pandas' find_stack_level),
    so that a warning points at the user's call, however deep the walker that found the
    damage (a generator's frame links back to whoever resumed it). Only on damage."""
    frame = sys._getframe(1)  # report_damage's frame: warnings' stacklevel 1
    level = 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame = frame.f_back
        level += 1
    return level


def pcapng_cut_short(offset: int, frame: int) -> TruncatedError:
    return TruncatedError(f"pcapng block at offset {offset} cut short (after frame {frame})", offset=offset)


def pcapng_state_from(prefix: Any, interface_base: int = 0, section: int = 0) -> PcapngState:
    """The state after a section header and the interface blocks behind it, which make
    up all of ``prefix`` (the leading blocks of a file, or of a span). Any block of it
    that does not parse raises: a reader that holds such a prefix has no earlier packet
    to deliver first."""
    st = PcapngState(shb_byte_order(prefix, 0), interface_base, section)
    pos = struct.unpack_from(st.order + "I", prefix, 4)[0]
    if not block_length_ok(PCAPNG_SHB, pos) or pos > len(prefix):
        raise bad_block_length(pos, 0)
    st.parse_shb(prefix, 0, pos, 0)
    while pos < len(prefix):
        if pos + 12 > len(prefix):
            raise TruncatedError(f"pcapng block at offset {pos} cut short", offset=pos)
        btype, ilen = struct.unpack_from(st.order + "II", prefix, pos)
        if btype != BT_IDB or not block_length_ok(btype, ilen) or pos + ilen > len(prefix):
            raise bad_block_length(ilen, pos)
        if struct.unpack_from(st.order + "I", prefix, pos + ilen - 4)[0] != ilen:
            raise DamagedError(f"pcapng block at offset {pos} has length {ilen} at its start and "
                               f"{struct.unpack_from(st.order + 'I', prefix, pos + ilen - 4)[0]} at its end",
                               offset=pos)
        st.parse_idb(prefix, pos, ilen, pos)
        pos += ilen
    return st


# What the careful step found (the first item of its answer).
NEED_MORE = 0  # the block is not whole in the buffer: read more and call again
PACKET = 1  # a packet: (IfaceTime, time in ns or None, caplen, length, data offset)
SECTION = 2  # a new section began (its byte order may differ)
INTERFACE = 3  # a new interface in this section
SKIPPED = 4  # a block without packets
DAMAGE = 5  # a PcapError; its next offset is where a walk not raising may go on, or -1


class PcapngState:
    """What a walk of a pcapng file knows at a point: the byte order of the section it
    is in, the interfaces of every section so far (``interfaces``, as Interface objects)
    and of this one (``section_ifaces``, as IfaceTime), and what the first section
    header says of the file. Three readers share it through ``pcapng_block``."""

    def __init__(self, order: str = "<", interface_base: int = 0, section: int = 0) -> None:
        self.order = order
        self.sections = section
        self.interfaces: list[Interface] = []
        self.section_ifaces: list[IfaceTime] = []
        self.interface_base = interface_base  # global index of this section's interface 0
        self.interfaces_cost = 0  # against INTERFACE_BUDGET
        self.version = (1, 0)
        self.byte_order = "little" if order == "<" else "big"
        self.hardware = self.os = self.application = None
        self.skipped = 0  # damaged blocks strict=False stepped over

    # -- blocks that describe ---------------------------------------------------------
    def parse_options(self, buf: Any, pos: int, end: int, where: str, offset: int,
                      budget: int = INTERFACE_BUDGET) -> tuple[dict[int, list[bytes]], int]:
        """Options from pos to end, and what they cost to keep (64 + their length each).
        Every length is checked against the block, and the cost against ``budget``."""
        opts: dict[int, list[bytes]] = {}
        unpack = struct.Struct(self.order + "HH").unpack_from
        cost = 0
        while pos + 4 <= end:
            code, olen = unpack(buf, pos)
            if code == OPT_ENDOFOPT:
                break
            vend = pos + 4 + olen
            if vend > end:
                raise DamagedError(f"{where} at offset {offset} has option {code} of length {olen}, "
                                   f"past the end of its block", offset=offset)
            cost += 64 + olen
            if cost > budget:
                raise UnsupportedFormatError(
                    f"{where} at offset {offset}: its options and those before it exceed purepcap's "
                    f"bound of {INTERFACE_BUDGET} bytes for interface options", offset=offset)
            opts.setdefault(code, []).append(bytes(buf[pos + 4:vend]))
            pos = vend + (-olen % 4)
        return opts, cost

    def parse_shb(self, buf: Any, pos: int, blen: int, offset: int) -> None:
        order = self.order
        if blen < 28:
            raise DamagedError(f"pcapng section header at offset {offset} has length {blen}", offset=offset)
        major, minor = struct.unpack_from(order + "HH", buf, pos + 12)
        if major != 1 or minor not in (0, 2):
            raise UnsupportedFormatError(
                f"pcapng section at offset {offset} has unknown version {major}.{minor}", offset=offset)
        tail = struct.unpack_from(order + "I", buf, pos + blen - 4)[0]
        if tail != blen:
            raise DamagedError(f"pcapng section header at offset {offset} has length {blen} at its start "
                               f"and {tail} at its end", offset=offset)
        opts, _ = self.parse_options(buf, pos + 24, pos + blen - 4, "pcapng section header", offset)
        self.sections += 1
        if self.sections == 1:
            self.version = (major, minor)
            self.byte_order = "little" if order == "<" else "big"
            self.hardware = opt_str(opts, SHB_HARDWARE)
            self.os = opt_str(opts, SHB_OS)
            self.application = opt_str(opts, SHB_USERAPPL)
        self.interface_base += len(self.section_ifaces)  # a new section numbers its own from 0
        self.section_ifaces = []

    def parse_idb(self, buf: Any, pos: int, blen: int, offset: int) -> Interface:
        order = self.order
        if blen < 20:
            raise DamagedError(f"pcapng interface block at offset {offset} has length {blen}", offset=offset)
        lt, _reserved, snaplen = struct.unpack_from(order + "HHI", buf, pos + 8)
        budget = INTERFACE_BUDGET - self.interfaces_cost - INTERFACE_COST
        if budget < 0:
            raise UnsupportedFormatError(
                f"pcapng interface block at offset {offset} would be interface {len(self.interfaces)}: "
                f"more than purepcap keeps in one file (at most {INTERFACE_BUDGET // INTERFACE_COST}, "
                f"fewer when they carry many options)", offset=offset)
        opts, cost = self.parse_options(buf, pos + 16, pos + blen - 4, "pcapng interface block", offset,
                                        budget)
        tsresol = 1_000_000
        if IF_TSRESOL in opts and opts[IF_TSRESOL][0]:
            raw = opts[IF_TSRESOL][0][0]
            if (raw & 0x7F) > (63 if raw & 0x80 else 18):
                raise DamagedError(f"pcapng interface block at offset {offset} has if_tsresol 0x{raw:02x}",
                                   offset=offset)
            tsresol = decode_tsresol(raw)
        tsoffset = 0
        if IF_TSOFFSET in opts and len(opts[IF_TSOFFSET][0]) == 8:
            tsoffset = struct.unpack(order + "q", opts[IF_TSOFFSET][0])[0]
        fcslen = opts[IF_FCSLEN][0][0] if IF_FCSLEN in opts and opts[IF_FCSLEN][0] else None
        filt = opts.get(IF_FILTER, [b""])[0]
        iface = Interface(
            linktype=lt, snaplen=snaplen, tsresol=tsresol, tsoffset=tsoffset,
            name=opt_str(opts, IF_NAME), description=opt_str(opts, IF_DESCRIPTION),
            os=opt_str(opts, IF_OS), filter=filt[1:].decode("utf-8", "replace") if filt else None,
            fcslen=fcslen, section=self.sections - 1,
            index=self.interface_base + len(self.section_ifaces), options=opts)
        self.interfaces_cost += INTERFACE_COST + cost
        self.interfaces.append(iface)
        self.section_ifaces.append(iface_time(iface))
        return iface

    def note_skipped(self, exc: PcapError, source: str, frame: int, errors: str) -> None:
        """A walk not raising on damage ("warn", "ignore") stepped over a damaged block:
        report it (report_damage), for the first few.

        Every distinct warning text stays in the caller's warnings registry for good, so
        a file of a million damaged blocks would grow memory without bound: past the
        first few, skips are only counted."""
        self.skipped += 1
        if self.skipped <= MAX_SKIP_WARNINGS:
            more = ("; further damaged blocks are skipped without a warning "
                    "(Capture.skipped counts them)") if self.skipped == MAX_SKIP_WARNINGS else ""
            report_damage(exc, source, frame, errors, f"; skipped that block{more}")


PACKET_BLOCKS = frozenset((BT_EPB, BT_PB, BT_SPB))
PACKET_BLOCK_HEAD = 28  # what packet_block_damage reads of a block


def packet_block_damage(btype: int, blen: int, buf: Any, pos: int, order: str, n_ifaces: int,
                        offset: int) -> PcapError | None:
    """What is wrong with the packet block at ``buf[pos:]`` (its first PACKET_BLOCK_HEAD
    bytes, its length already believed) in a section of ``n_ifaces`` interfaces: None
    where it is sound. Blocks of other types are sound here."""
    if btype == BT_EPB or btype == BT_PB:
        if blen < EPB_MIN:
            return bad_block_length(blen, offset)
        if btype == BT_EPB:
            iid, caplen = struct.unpack_from(order + "I8xI", buf, pos + 8)
        else:
            iid, caplen = struct.unpack_from(order + "H10xI", buf, pos + 8)
        if iid >= n_ifaces:
            return DamagedError(f"pcapng packet block at offset {offset} names interface {iid}, "
                                f"the section has {n_ifaces}", offset=offset)
        if caplen > blen - EPB_MIN:
            return DamagedError(f"pcapng packet block at offset {offset} claims {caplen} bytes in a "
                                f"block of {blen}", offset=offset)
    elif btype == BT_SPB:
        if not n_ifaces:
            return DamagedError(f"pcapng simple packet block at offset {offset} "
                                f"comes before any interface", offset=offset)
        if blen < 16:
            return bad_block_length(blen, offset)
    return None


def pcapng_block(st: PcapngState, buf: Any, pos: int, end: int, base: int, eof: bool,
                 strict: bool) -> tuple[int, Any, int]:
    """The one careful step over the pcapng block at ``buf[pos:]`` (file offset
    ``base + pos``; ``buf[:end]`` holds data; ``eof``: nothing follows ``end``).

    NEED_MORE where the block is not whole in ``buf[:end]``: at ``eof`` the caller
    reports the file cut short there. Otherwise returns (what it found, its value, the offset of the next block). A section or
    interface block updates ``st``. For DAMAGE the value is the PcapError (its offset
    set) and the next offset is where strict=False may step on to, or -1 where it
    cannot (the damage is fatal either way when ``strict``)."""
    if pos + 12 > end:
        return NEED_MORE, None, pos
    order = st.order
    btype = struct.unpack_from(order + "I", buf, pos)[0]
    if btype == PCAPNG_SHB:
        try:
            order = shb_byte_order(buf, pos, base)
        except PcapError as exc:
            return DAMAGE, exc, -1
    blen = struct.unpack_from(order + "I", buf, pos + 4)[0]
    if not block_length_ok(btype, blen):
        return DAMAGE, bad_block_length(blen, base + pos), -1
    nxt = pos + blen
    if nxt > end or (nxt + 12 > end and not eof and not strict):
        # (strict=False may need the next block's header to judge this one)
        return NEED_MORE, None, pos
    try:
        tail = struct.unpack_from(order + "I", buf, nxt - 4)[0] if btype != BT_PB or not blen & 3 else blen
        if tail != blen:
            raise DamagedError(f"pcapng block at offset {base + pos} has length {blen} at "
                               f"its start and {tail} at its end", offset=base + pos)
        if btype == PCAPNG_SHB:
            prev = st.order
            st.order = order
            try:
                st.parse_shb(buf, pos, blen, base + pos)
            except PcapError:
                st.order = prev
                raise
            return SECTION, None, nxt
        if btype == BT_IDB:
            st.parse_idb(buf, pos, blen, base + pos)
            return INTERFACE, None, nxt
        ifaces = st.section_ifaces
        damage = packet_block_damage(btype, blen, buf, pos, order, len(ifaces), base + pos)
        if damage is not None:
            raise damage
        if btype == BT_EPB or btype == BT_PB:
            if btype == BT_EPB:
                iid, hi, lo, caplen, length = struct.unpack_from(order + "IIIII", buf, pos + 8)
            else:  # the obsolete Packet Block: a 16-bit interface, then a drops count
                iid, _drops, hi, lo, caplen, length = struct.unpack_from(order + "HHIIII", buf, pos + 8)
            it = ifaces[iid]
            return PACKET, (it, it.ns((hi << 32) | lo), caplen, length, pos + EPB_DATA), nxt
        if btype == BT_SPB:
            it = ifaces[0]
            length = struct.unpack_from(order + "I", buf, pos + 8)[0]
            caplen = min(length, blen - 16)
            if it.snaplen:
                caplen = min(caplen, it.snaplen)
            return PACKET, (it, None, caplen, length, pos + 12), nxt
        return SKIPPED, None, nxt  # NRB, ISB, DSB, custom and unknown blocks carry no packets
    except PcapError as exc:
        if exc.offset is None:
            exc.offset = base + pos
        resume = nxt if not strict and next_block_plausible(buf, nxt, end, order) else -1
        return DAMAGE, exc, resume


def leading_blocks(buf: Any, order: str, pos: int = 0, idbs: int = 0) -> tuple[int, int, bool]:
    """How far the section header at 0 and the interface blocks right behind it reach in
    ``buf``: (their length, how many interface blocks, whether the walk needs more
    bytes to decide). The walk ends before the first block that is not a whole,
    believable interface block, and within the interface budget (each counts at least
    INTERFACE_COST), so a file of millions of them is not gathered whole. A walk that
    needed more goes on from the (pos, idbs) it returned, so it is linear in all."""
    hdr = struct.Struct(order + "II").unpack_from
    if len(buf) < 8:
        return 0, 0, True
    shb_len = hdr(buf, 0)[1]
    if pos == 0:
        if not 12 <= shb_len <= MAX_BLOCK:
            return 0, 0, False
        if len(buf) < shb_len:
            return 0, 0, True
        pos = shb_len
    while (idbs + 1) * INTERFACE_COST <= INTERFACE_BUDGET:
        if len(buf) < pos + 8:
            return pos, idbs, True
        btype, ilen = hdr(buf, pos)
        if btype != BT_IDB or not 20 <= ilen <= MAX_BLOCK or ilen % 4:
            return pos, idbs, False
        if pos - shb_len + ilen > INTERFACE_BUDGET:  # their options alone would be over it
            return pos, idbs, False
        if len(buf) < pos + ilen:
            return pos, idbs, True
        if struct.unpack_from(order + "I", buf, pos + ilen - 4)[0] != ilen:
            return pos, idbs, False
        pos += ilen
        idbs += 1
    return pos, idbs, False
