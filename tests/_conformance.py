# Conformance harness (issues 19 and 23.1): capture cases, and one runner per consumer.
#
# Strategy: every consumer of a capture (purepcap.open's Packets, records() down its
# direct walk and down its Packet path, to_pandas' batch walk, spans from
# split_capture, the Intake source read whole and through Dask) is reduced to one plain
# shape, an Outcome: the rows it delivered and the error it ended with (class, byte
# offset, last good frame), plus, reading with errors="warn", the warnings it gave
# (with errors="ignore": none, and the same rows). Every reader takes errors= as one
# of ERRORS (True/False are accepted here as strict's "raise"/"warn"). Then
# each consumer's Outcome is compared with what purepcap.open says, narrowed to what
# that consumer shows (IP packets only for records and DataFrames, NaT for times a
# DataFrame cannot hold). The cases are made with purepcap's writers where they can
# make them and by hand (struct) where they cannot: other magics and versions, lying
# lengths, damage and cut-short files. Spec values (magics, block types, offsets) are
# written out here from the pcap and pcapng specifications on purpose, and not
# imported from purepcap: a test that borrowed the reader's constants could not catch
# the reader getting them wrong.
from __future__ import annotations

import gzip
import io
import struct
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import purepcap
from purepcap import PcapError, PcapWarning, _loops, build
from purepcap.format import Capture, PcapngWriter
from purepcap.headers import decode

# -- spec values ---------------------------------------------------------------------------
PCAP_US = 0xA1B2C3D4  # as written in the file's own byte order
PCAP_NS = 0xA1B23C4D
PCAP_MODIFIED = 0xA1B2CD34  # Kuznetzov's: 8 more bytes per record header
SHB, IDB, PB, SPB, NRB, ISB, EPB, DSB = 0x0A0D0D0A, 1, 2, 3, 4, 5, 6, 10
CUSTOM, CUSTOM_NOCOPY = 0x00000BAD, 0x40000BAD
BOM = 0x1A2B3C4D
NS = 1_000_000_000
T0 = 1_700_000_000_123_456_789  # a time in ns: 2023-11-14
NAT_LO, NAT_HI = -(1 << 63) + 1, (1 << 63) - 1  # what datetime64[ns] holds (NaT is -2**63)

# -- packets -------------------------------------------------------------------------------
# Ethernet frames, most with an IP layer (records and DataFrames show only those).
ETHER_FRAMES = (
    bytes(build.ether() / build.ipv4(src="10.0.0.1", dst="10.0.0.2") / build.tcp(sport=1234, dport=80)
          / b"GET / HTTP/1.0\r\n\r\n"),
    bytes(build.ether() / build.ipv6(src="2001:db8::1", dst="2001:db8::2") / build.udp(sport=53, dport=5353)
          / b"0123456789"),
    bytes(build.ether() / build.arp()),  # no IP: a Packet, but no row
    bytes(build.ether(vlans=[7]) / build.ipv4(src="10.1.0.1", dst="10.1.0.2") / build.udp(sport=9, dport=7)
          / b"abc"),
    bytes(build.ether() / build.ipv4(src="192.0.2.1", dst="192.0.2.2") / build.icmp() / bytes(40)),
)
# Frames of other link types: (link type, frame)
OTHER_FRAMES = {
    101: bytes(build.raw() / build.ipv4(src="10.2.0.1", dst="10.2.0.2") / build.udp(sport=1, dport=2)),
    113: bytes(build.sll() / build.ipv6() / build.icmpv6()),
    0: bytes(build.null() / build.ipv4() / build.icmp()),
    228: bytes(build.ipv4(src="10.3.0.1", dst="10.3.0.2") / build.tcp(sport=5, dport=6)),  # LINKTYPE_IPV4
    147: b"\x01\x02\x03\x04 user link type, never IP",  # LINKTYPE_USER0
}


# -- classic pcap, by hand ---------------------------------------------------------------------
@dataclass
class Rec:
    """One pcap record header and its data, written exactly as given."""

    sec: int
    frac: int
    caplen: int
    length: int
    data: bytes


def recs(frames: tuple[bytes, ...] | list[bytes], *, ticks: int = 1_000_000, start: int = T0,
         step: int = 1_234_567) -> list[Rec]:
    out = []
    for i, f in enumerate(frames):
        t = start + i * step
        out.append(Rec(t // NS, t % NS * ticks // NS, len(f), len(f) + (i % 2) * 4, f))
    return out


def pcap_file(records: list[Rec], *, magic: int = PCAP_US, order: str = "<", version: tuple[int, int] = (2, 4),
              snaplen: int = 262144, ltfield: int = 1) -> bytes:
    out = [struct.pack(order + "IHHiIII", magic, version[0], version[1], 0, 0, snaplen, ltfield)]
    for r in records:
        out.append(struct.pack(order + "IIII", r.sec, r.frac, r.caplen, r.length))
        if magic == PCAP_MODIFIED:
            out.append(struct.pack(order + "IHBx", 2, 0x0800, 0))  # ifindex, protocol, pkt_type, pad
        out.append(r.data)
    return b"".join(out)


def pcap_offsets(data: bytes) -> list[int]:
    """Offsets of the record headers of a pcap file (as far as its lengths lead)."""
    order = "<" if struct.unpack_from("<I", data)[0] in (PCAP_US, PCAP_NS, PCAP_MODIFIED) else ">"
    reclen = 24 if struct.unpack_from(order + "I", data)[0] == PCAP_MODIFIED else 16
    out, pos = [], 24
    while pos + reclen <= len(data):
        out.append(pos)
        pos += reclen + struct.unpack_from(order + "I", data, pos + 8)[0]
    return out


# -- pcapng, by the writer, then edited ----------------------------------------------------------
def pcapng(write: Callable[[PcapngWriter], None], **kw: Any) -> bytes:
    out = io.BytesIO()
    w = PcapngWriter(out, **kw)
    write(w)
    w.flush()
    return out.getvalue()


@dataclass
class Block:
    offset: int
    btype: int
    blen: int
    order: str


def ng_blocks(data: bytes) -> list[Block]:
    """The blocks of a pcapng file, walked by their lengths."""
    out, pos, order = [], 0, "<"
    while pos + 12 <= len(data):
        if struct.unpack_from("<I", data, pos)[0] == SHB:
            order = "<" if struct.unpack_from("<I", data, pos + 8)[0] == BOM else ">"
        btype, blen = struct.unpack_from(order + "II", data, pos)
        out.append(Block(pos, btype, blen, order))
        if blen < 12:
            break
        pos += blen
    return out


def nth(data: bytes, btype: int, n: int = 0) -> Block:
    return [b for b in ng_blocks(data) if b.btype == btype][n]


def patch(data: bytes, offset: int, fmt: str, *values: int) -> bytes:
    b = bytearray(data)
    struct.pack_into(fmt, b, offset, *values)
    return bytes(b)


def set_tsresol(data: bytes, idb: Block, raw: int) -> bytes:
    """``data`` with the if_tsresol of interface block ``idb`` (its first option) set to ``raw``."""
    assert struct.unpack_from(idb.order + "HH", data, idb.offset + 16) == (9, 1)
    return patch(data, idb.offset + 20, "B", raw)


def add_packets(w: PcapngWriter, frames: tuple[bytes, ...] | list[bytes] = ETHER_FRAMES, *, interface: int = 0,
                start: int = T0) -> None:
    for i, f in enumerate(frames):
        w.write_packet(start + i * 1_000_001_000, f, interface=interface, length=len(f) + (i % 2) * 4)


# -- cases ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """A capture to read; ``packets`` and ``error`` are what a strict read must give
    (a check that the case is what its name says, not only that consumers agree)."""

    name: str
    data: bytes
    packets: int
    error: str | None = None

    @property
    def compressed(self) -> bool:
        return self.data[:2] == b"\x1f\x8b"

    @property
    def big(self) -> bool:
        """Too big to cut into spans of a few bytes in a test's time."""
        return len(self.data) > 100_000


def gz(case: Case, name: str | None = None) -> Case:
    return Case(name or case.name + "-gz", gzip.compress(case.data, mtime=0), case.packets, case.error)


# -- outcomes ----------------------------------------------------------------------------------
@dataclass
class Outcome:
    """What a consumer gave: its rows; the PcapError it raised as (class name, offset,
    frame); the PcapWarnings' texts; and, for a lenient Capture, the damage it stopped
    at (Capture.error), which only Packet readers can show."""

    rows: list[tuple] = field(default_factory=list)
    error: tuple | None = None
    warnings: list[str] = field(default_factory=list)
    stopped: tuple | None = None

    def key(self) -> tuple:
        return (self.rows, self.error, self.warnings, self.stopped)


def difference(got: Outcome, want: Outcome) -> str | None:
    """Where ``got`` first differs from ``want``, in a line or two; None if nowhere.
    (pytest's own explanation of unequal lists of thousands of rows takes minutes.)"""
    for what in ("error", "warnings", "stopped"):
        if getattr(got, what) != getattr(want, what):
            return f"{what}: got {getattr(got, what)!r}, want {getattr(want, what)!r}"
    if got.rows != want.rows:
        n = min(len(got.rows), len(want.rows))
        i = next((i for i in range(n) if got.rows[i] != want.rows[i]), n)

        def show(rows: list[tuple]) -> str:
            return repr(rows[i][:6]) if i < len(rows) else "nothing"  # (not the packet's bytes)
        return (f"rows: {len(got.rows)} got, {len(want.rows)} wanted; row {i}: got {show(got.rows)}, "
                f"want {show(want.rows)}")
    return None


def _err(e: PcapError | None) -> tuple | None:
    return None if e is None else (type(e).__name__, e.offset, e.frame)


def _clean(messages: list[warnings.WarningMessage], name: str) -> list[str]:
    """The PcapWarnings' texts, without the source name they start with (it differs
    between a path, bytes and a file object)."""
    out = []
    for m in messages:
        if issubclass(m.category, PcapWarning):
            text = str(m.message)
            out.append(text[len(name) + 2:] if text.startswith(name + ": ") else text)
    return out


def collect(run: Callable[[], Any], name: str, out: Outcome) -> Outcome:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            run()
        except PcapError as e:
            out.error = _err(e)
    out.warnings = _clean(caught, name)
    return out


ERRORS = ("raise", "warn", "ignore")


def mode(errors: str | bool) -> str:
    """errors= for a reader: a name of ERRORS, or strict's True ("raise") / False ("warn")."""
    if isinstance(errors, bool):
        return "raise" if errors else "warn"
    assert errors in ERRORS
    return errors


def packet_row(p: purepcap.Packet) -> tuple:
    return (p.frame, p.time, p.length, p.caplen, p.linktype, p.interface, p.data)


@contextmanager
def loops(choice: str) -> Iterator[None]:
    """The readers' loops of ``choice`` ("cpython" or "pypy", see purepcap._loops) for
    the Captures opened inside, whichever interpreter runs the tests."""
    was = _loops.LOOPS
    _loops.LOOPS = choice
    try:
        yield
    finally:
        _loops.LOOPS = was


def read_open(src: Any, errors: str | bool = "raise", name: str = "<bytes>", filter: str | None = None,
              chunk_size: int | None = None) -> Outcome:
    """The reference: purepcap.open's Packets, then its error ("raise") or the damage it
    stopped at (otherwise: Capture.error) and its warnings. ``chunk_size`` reads the file
    that many bytes at a time (no filter then), so that records straddle reads."""
    out = Outcome()

    def run() -> None:
        opened = purepcap.open(src, errors=mode(errors), filter=filter) if chunk_size is None else \
            Capture(src, errors=mode(errors), chunk_size=chunk_size)
        with opened as cap:
            for p in cap:
                assert len(p.data) == p.caplen
                out.rows.append(packet_row(p))
            out.stopped = _err(cap.error)
    return collect(run, name, out)


def read_spans(path: Path, part_bytes: int, errors: str | bool = "raise") -> Outcome:
    """split_capture's spans, each read by purepcap.open(span=), in order; a span that
    ends in damage ends the read, as that damage ends a whole read."""
    out = Outcome()

    def run() -> None:
        for span in purepcap.split_capture(path, part_bytes):
            with purepcap.open(path, errors=mode(errors), span=span) as cap:
                for p in cap:
                    assert len(p.data) == p.caplen
                    out.rows.append(packet_row(p))
                if cap.error is not None:
                    out.stopped = _err(cap.error)
                    return
    return collect(run, str(path), out)


def read_records(src: Any, errors: str | bool = "raise", fields: list[str] | None = None, name: str = "<bytes>",
                 filter: str | None = None) -> Outcome:
    out = Outcome()
    keys = ("frame", "time", "length", "caplen", *(fields or ()))

    def run() -> None:
        for r in purepcap.records(src, errors=mode(errors), fields=fields, filter=filter):
            out.rows.append(tuple(r[k] for k in keys))
    return collect(run, name, out)


FRAME_COLUMNS = ["frame", "length", "caplen", "interface"]


def frame_rows(df: Any) -> list[tuple]:
    """(frame, time or None for NaT, length, caplen, interface) of each DataFrame row."""
    nat = -(1 << 63)
    times = [None if t == nat else t for t in df["time"].to_numpy().view("i8").tolist()]
    # map over several lists: zip's strict= is not there on Python 3.9, and ruff wants it
    return list(map(lambda *row: row, df["frame"].tolist(), times, df["length"].tolist(),
                    df["caplen"].tolist(), df["interface"].tolist()))


def arrow_rows(table: Any) -> list[tuple]:
    """frame_rows of a pyarrow Table (a null time as None)."""
    import pyarrow as pa

    times = table["time"].cast(pa.int64()).to_pylist()
    return list(map(lambda *row: row, table["frame"].to_pylist(), times, table["length"].to_pylist(),
                    table["caplen"].to_pylist(), table["interface"].to_pylist()))


def read_pandas(src: Any, name: str = "<bytes>", filter: str | None = None, errors: str | bool = "raise",
                table: str = "pandas") -> Outcome:
    """to_pandas' rows (or to_arrow's or to_polars' with ``table``, made a DataFrame)."""
    out = Outcome()

    def run() -> None:
        if table == "pandas":
            out.rows = frame_rows(purepcap.to_pandas(src, columns=FRAME_COLUMNS, filter=filter, errors=mode(errors)))
            return
        got = getattr(purepcap, f"to_{table}")(src, columns=FRAME_COLUMNS, filter=filter, errors=mode(errors))
        out.rows = arrow_rows(got if table == "arrow" else got.to_arrow())
    return collect(run, name, out)


def read_intake(path: Path, partition_size: int | None, dask: bool = False, errors: str | bool = "raise") -> Outcome:
    from purepcap.intake_source import PcapSource

    out = Outcome()

    def run() -> None:
        source = PcapSource(str(path), partition_size=partition_size, columns=FRAME_COLUMNS, errors=mode(errors))
        if dask:
            import dask as _dask

            with _dask.config.set(scheduler="sync"):
                df = source.to_dask().compute()
        else:
            df = source.read()
        out.rows = frame_rows(df)
    return collect(run, str(path), out)


# -- flow tables against flows() --------------------------------------------------------------
def read_flows(src: Any, errors: str | bool = "raise", name: str = "<bytes>", **kw: Any) -> tuple[Outcome, list[str]]:
    """purepcap.flows' dicts as rows (every key, by first frame) and the keys; as a
    DataFrame shows them: a time past 2262 as None (NaT), and no rows when the read ends in an error."""
    from purepcap._flows import flow_keys

    keys = flow_keys(bool(kw.get("stats")), kw.get("fields") or ())
    out = Outcome()

    def run() -> None:
        for f in purepcap.flows(src, errors=mode(errors), **kw):
            out.rows.append(tuple(None if k in ("start", "end") and f[k] is not None and not NAT_LO <= f[k] <= NAT_HI
                                  else f[k] for k in keys))
    collect(run, name, out)
    out.rows = [] if out.error is not None else sorted(out.rows, key=lambda r: r[0])
    return out, keys


def read_flow_table(src: Any, keys: list[str], errors: str | bool = "raise", name: str = "<bytes>",
                    table: str = "pandas", **kw: Any) -> Outcome:
    """flows_to_pandas' (or flows_to_arrow's) rows, every column of ``keys``, as flows() gives them."""
    out = Outcome()

    def run() -> None:
        got = getattr(purepcap, f"flows_to_{table}")(src, errors=mode(errors), **kw)
        columns = []
        for k in keys:
            if table == "arrow":
                col = got[k]
                if k in ("start", "end"):
                    import pyarrow as pa

                    col = col.cast(pa.int64())
                columns.append(col.to_pylist())
            elif k in ("start", "end"):
                columns.append([None if t == -(1 << 63) else t for t in got[k].to_numpy().view("i8").tolist()])
            else:
                import pandas as pd

                columns.append([None if v is None or (not isinstance(v, str) and pd.isna(v)) else v
                                for v in got[k].astype(object).tolist()])
        out.rows = list(map(lambda *row: row, *columns)) if keys else []
    return collect(run, name, out)


def close_floats(got: Outcome, want: Outcome, rel: float = 1e-9) -> Outcome:
    """``got`` with each float that is within ``rel`` of ``want``'s at the same place made
    equal to it (the vectorised statistics sum in another order than the engine)."""
    if len(got.rows) != len(want.rows):
        return got
    rows = []
    for g, w in zip(got.rows, want.rows):  # noqa: B905
        if len(g) == len(w):
            g = tuple(b if isinstance(a, float) and isinstance(b, float) and abs(a - b) <= rel * max(abs(a), abs(b))
                      else a for a, b in zip(g, w))  # noqa: B905
        rows.append(g)
    return Outcome(rows, got.error, got.warnings, got.stopped)


# -- what each consumer must show, from the reference ----------------------------------------
def _is_ip(row: tuple) -> bool:
    return decode(row[4], row[6], row[2]) is not None


def as_records(ref: Outcome, interface: bool = False) -> Outcome:
    """What records() must give: a row per IP packet, the same error and warnings."""
    rows = [r[:4] + ((r[5],) if interface else ()) for r in ref.rows if _is_ip(r)]
    return Outcome(rows, ref.error, ref.warnings)


def as_frame(ref: Outcome) -> Outcome:
    """What a DataFrame must give: a row per IP packet, or, when the read ends in an
    error, that error and no frame at all."""
    if ref.error is not None:
        return Outcome([], ref.error, ref.warnings)
    rows = [(r[0], r[1] if r[1] is not None and NAT_LO <= r[1] <= NAT_HI else None, r[2], r[3], r[5])
            for r in ref.rows if _is_ip(r)]
    return Outcome(rows, None, ref.warnings)


def _pcap_cases() -> list[Case]:
    c: list[Case] = []
    five = recs(ETHER_FRAMES)
    five_ns = recs(ETHER_FRAMES, ticks=NS)
    for order, tag in (("<", "le"), (">", "be")):
        c.append(Case(f"pcap-us-{tag}", pcap_file(five, order=order), 5))
        c.append(Case(f"pcap-ns-{tag}", pcap_file(five_ns, magic=PCAP_NS, order=order), 5))
        c.append(Case(f"pcap-modified-{tag}", pcap_file(five, magic=PCAP_MODIFIED, order=order), 5))
    # before 2.4 some writers swapped caplen and len: a caplen field above the len field
    swapped = [Rec(r.sec, r.frac, r.length + 10, r.caplen, r.data) for r in five]
    c.append(Case("pcap-v2.2-swapped", pcap_file(swapped, version=(2, 2)), 5))
    c.append(Case("pcap-v2.3-swapped-be", pcap_file(swapped, version=(2, 3), order=">"), 5))
    c.append(Case("pcap-v2.3-plain", pcap_file(five, version=(2, 3)), 5))
    c.append(Case("pcap-v2.2-modified", pcap_file(swapped, magic=PCAP_MODIFIED, version=(2, 2)), 5))
    over = [Rec(r.sec, r.frac, len(r.data), len(r.data) - 10, r.data) for r in five]
    c.append(Case("pcap-v2.4-caplen-over-len", pcap_file(over), 5))  # taken as written
    c.append(Case("pcap-v1.0", pcap_file(five, version=(1, 0)), 0, "UnsupportedFormatError"))
    # the link-type field: FCS bits (libpcap's LT_FCS_DATALEN), reserved bits
    c.append(Case("pcap-fcs-bits", pcap_file(five, ltfield=1 | 0x04000000 | (2 << 28)), 5))
    c.append(Case("pcap-fcs-bits-ns-be", pcap_file(five_ns, magic=PCAP_NS, order=">",
                                                   ltfield=1 | 0x04000000 | (2 << 28)), 5))
    c.append(Case("pcap-reserved-bits", pcap_file(five, ltfield=1 | 0x00010000), 0, "UnsupportedFormatError"))
    for lt, frame in OTHER_FRAMES.items():
        c.append(Case(f"pcap-linktype-{lt}", pcap_file(recs([frame, frame])), 2))
    # a fraction of a second out of range (libpcap's signed 32-bit product)
    f0 = ETHER_FRAMES[0]
    c.append(Case("pcap-frac-over-us", pcap_file([Rec(5, 1_500_000, len(f0), len(f0), f0),
                                                  Rec(6, 0xFFFFFFFF, len(f0), len(f0), f0)]), 2))
    c.append(Case("pcap-frac-over-ns-be", pcap_file([Rec(5, 3 * NS, len(f0), len(f0), f0)] + five_ns,
                                                    magic=PCAP_NS, order=">"), 6))
    # lengths: above the snaplen but honest, big but within the snaplen, and lies
    c.append(Case("pcap-caplen-over-snaplen", pcap_file(five, snaplen=40), 5))
    big = bytes(build.ether() / build.ipv4() / build.udp() / bytes(1000)) + bytes(300_000)  # a jumbo tail
    c.append(Case("pcap-big-record-within-snaplen",
                  pcap_file(recs([ETHER_FRAMES[0], big, ETHER_FRAMES[1]]), snaplen=1_000_000), 3))
    c.append(Case("pcap-big-record-over-snaplen",
                  pcap_file(recs([ETHER_FRAMES[0], big, ETHER_FRAMES[1]]), snaplen=65535), 1, "DamagedError"))
    lie = five[:2] + [Rec(T0 // NS, 0, 0x7FFFFFF0, 60, ETHER_FRAMES[0])] + five[2:]
    c.append(Case("pcap-lying-caplen", pcap_file(lie), 2, "DamagedError"))
    c.append(Case("pcap-lying-caplen-first", pcap_file(lie[2:]), 0, "DamagedError"))
    c.append(Case("pcap-lying-caplen-modified-be", pcap_file(lie, magic=PCAP_MODIFIED, order=">"), 2,
                  "DamagedError"))
    # (before 2.4 a caplen above the len is taken as swapped, so both lie here)
    lie22 = five[:2] + [Rec(T0 // NS, 0, 0x7FFFFFF0, 0x7FFFFFF8, ETHER_FRAMES[0])] + five[2:]
    c.append(Case("pcap-lying-caplen-v2.2", pcap_file(lie22, version=(2, 2)), 2, "DamagedError"))
    # a record whose first bytes read like a compression magic (gzip's 1f 8b), where a
    # reader takes over from a walk part way through the file
    gzipish = five[:3] + [Rec(0x8B1F, 5, 0x7FFFFFF0, 60, ETHER_FRAMES[3])]
    c.append(Case("pcap-lying-caplen-starts-like-gzip", pcap_file(gzipish), 3, "DamagedError"))
    gzipish = five[:3] + [Rec(0x8B1F, 5, five[3].caplen, five[3].length, five[3].data)]
    c.append(Case("pcap-cut-in-record-starting-like-gzip", pcap_file(gzipish)[:-4], 3, "TruncatedError"))
    # damage in two places: a lie that split_capture steps over (under its own bound),
    # then a cut-short end; a partitioned read must report the first, as a whole read does
    two = pcap_file(five[:2] + [Rec(T0 // NS, 0, 300_000, 60, ETHER_FRAMES[0])] + five[2:]
                    + [Rec(T0 // NS, 0, 300_000, 300_000, bytes(300_000))])[:-10]
    c.append(Case("pcap-damage-in-two-places", two, 2, "DamagedError"))
    # cut short at every kind of boundary
    whole = pcap_file(five)
    at = pcap_offsets(whole)
    c.append(Case("pcap-empty", b"", 0, "NotACaptureError"))
    c.append(Case("pcap-cut-in-magic", whole[:3], 0, "TruncatedError"))
    c.append(Case("pcap-cut-in-file-header", whole[:10], 0, "TruncatedError"))
    c.append(Case("pcap-header-only", whole[:24], 0))
    c.append(Case("pcap-cut-in-first-record-header", whole[:24 + 9], 0, "TruncatedError"))
    c.append(Case("pcap-cut-in-first-record-data", whole[:24 + 16 + 10], 0, "TruncatedError"))
    c.append(Case("pcap-cut-at-record-3", whole[:at[2]], 2))
    c.append(Case("pcap-cut-in-record-3-header", whole[:at[2] + 15], 2, "TruncatedError"))
    c.append(Case("pcap-cut-in-last-record-data", whole[:-1], 4, "TruncatedError"))
    mod = pcap_file(five, magic=PCAP_MODIFIED)
    c.append(Case("pcap-modified-cut-in-extra-header", mod[:24 + 20], 0, "TruncatedError"))
    c.append(Case("not-a-capture", b"GIF89a" + bytes(100), 0, "NotACaptureError"))
    return c


def _ng_cases() -> list[Case]:
    c: list[Case] = []
    for tag in ("little", "big"):
        c.append(Case(f"ng-{tag}", pcapng(add_packets, byte_order=tag), 5))

    def sections(w: PcapngWriter) -> None:
        add_packets(w, ETHER_FRAMES[:1])
        w.new_section()  # a second section after packet 1
        w.add_interface(101)
        w.add_interface(1, tsresol=6)
        add_packets(w, [OTHER_FRAMES[101]] * 2)
        add_packets(w, ETHER_FRAMES[1:], interface=1)
    c.append(Case("ng-second-section-after-packet-1", pcapng(sections), 7))

    def order_change(w: PcapngWriter) -> None:
        add_packets(w, ETHER_FRAMES[:2])
        w.new_section("big")
        w.add_interface(1, tsresol=3)
        add_packets(w, ETHER_FRAMES[2:])
        w.new_section("little")
        w.add_interface(113)
        add_packets(w, [OTHER_FRAMES[113]])
    c.append(Case("ng-byte-order-changes-between-sections", pcapng(order_change), 6))

    def empty_sections(w: PcapngWriter) -> None:
        add_packets(w, ETHER_FRAMES[:2])
        w.new_section()
        w.new_section()
        w.add_interface(1)
        w.add_interface(1)
        add_packets(w, ETHER_FRAMES[2:], interface=1)
    c.append(Case("ng-empty-section-between", pcapng(empty_sections), 5))

    def ifaces(w: PcapngWriter) -> None:
        w.add_interface(101, tsresol=6)
        w.add_interface(113, tsresol=3, tsoffset=100)
        for i in range(6):
            add_packets(w, [ETHER_FRAMES[i % 5], OTHER_FRAMES[101], OTHER_FRAMES[113]][i % 3:i % 3 + 1],
                        interface=i % 3, start=T0 + i * NS)
    c.append(Case("ng-three-interfaces", pcapng(ifaces), 6))

    def iface_later(w: PcapngWriter) -> None:
        add_packets(w, ETHER_FRAMES[:2])
        w.add_interface(0)
        add_packets(w, [OTHER_FRAMES[0]], interface=1)
        add_packets(w, ETHER_FRAMES[2:])
    c.append(Case("ng-interface-after-packets", pcapng(iface_later), 6))
    # timestamp resolutions (10^-n, 2^-n, not a whole number of ns) and offsets
    for raw in (0, 3, 6, 9, 12, 0x80 | 10, 0x80 | 20, 0x80 | 30, 0x80 | 34):
        start = T0 if raw in (0, 3, 6, 9, 0x80 | 10, 0x80 | 20, 0x80 | 30) else T0 % (10**7 * NS)  # fits 64 bits
        c.append(Case(f"ng-tsresol-0x{raw:02x}",
                      pcapng(lambda w, s=start: add_packets(w, start=s), tsresol=raw), 5))

    def offsets(w: PcapngWriter) -> None:
        w.add_interface(1, tsresol=6, tsoffset=1_000_000)
        w.add_interface(1, tsresol=0x80 | 20, tsoffset=-5)
        add_packets(w, ETHER_FRAMES[:2], interface=1)
        add_packets(w, ETHER_FRAMES[2:], interface=2, start=T0 - 5 * NS)
    c.append(Case("ng-tsoffset", pcapng(offsets), 5))

    def far_time(w: PcapngWriter) -> None:  # past what datetime64[ns] holds
        w.add_interface(1, tsresol=0, tsoffset=10**10)
        add_packets(w, ETHER_FRAMES[:2])
        add_packets(w, ETHER_FRAMES[2:], interface=1, start=10**10 * NS)
    c.append(Case("ng-time-past-2262", pcapng(far_time), 5))

    def kinds(w: PcapngWriter) -> None:
        add_packets(w, ETHER_FRAMES[:1])
        w.write_simple(ETHER_FRAMES[1])
        w.write_obsolete(T0 + 7, ETHER_FRAMES[3])
        w.write_simple(ETHER_FRAMES[4], length=9000)
        w.write_obsolete(T0 + 9, ETHER_FRAMES[2], length=200)
        add_packets(w, ETHER_FRAMES[:1])
    c.append(Case("ng-epb-spb-pb", pcapng(kinds), 6))
    c.append(Case("ng-spb-snaplen", pcapng(lambda w: [w.write_simple(f, length=len(f) + 100)
                                                       for f in ETHER_FRAMES], snaplen=50), 5))

    def packetless(w: PcapngWriter) -> None:
        w.write_block(NRB, struct.pack("<HH", 1, 8) + b"\x0a\x00\x00\x01ab\x00\x00" + struct.pack("<HH", 0, 0))
        add_packets(w, ETHER_FRAMES[:2])
        w.write_block(ISB, struct.pack("<IIII", 0, 1, 2, 0))
        w.write_block(DSB, struct.pack("<II", 0x544C534B, 4) + b"keys")
        add_packets(w, ETHER_FRAMES[2:3])
        w.write_block(CUSTOM, struct.pack("<I", 32473) + b"custom!!")
        w.write_block(CUSTOM_NOCOPY, struct.pack("<I", 32473) + b"custom, do not copy")
        w.write_block(0x99, b"an unknown block type")
        w.write_block(0x80001234, b"a local-use block type")
        add_packets(w, ETHER_FRAMES[3:])
    c.append(Case("ng-packetless-and-unknown-blocks", pcapng(packetless), 5))

    def gzipish(w: PcapngWriter) -> None:  # a block type whose bytes start like gzip's magic
        add_packets(w, ETHER_FRAMES[:2])
        w.write_block(0x8B1F, b"an unknown block, not gzip")
        add_packets(w, ETHER_FRAMES[2:])
    c.append(Case("ng-unknown-block-starts-like-gzip", pcapng(gzipish), 5))
    c.append(Case("ng-no-packets", pcapng(lambda w: w.write_block(ISB, bytes(12))), 0))
    c.append(Case("ng-no-interfaces", pcapng(lambda w: None, linktype=None), 0))
    c += _ng_damage_cases()
    return c


def _ng_damage_cases() -> list[Case]:
    c: list[Case] = []
    good = pcapng(add_packets)
    third = nth(good, EPB, 2)
    c.append(Case("ng-epb-bad-trailer", patch(good, third.offset + third.blen - 4, "<I", third.blen + 4),
                  2, "DamagedError"))
    c.append(Case("ng-epb-length-not-multiple-of-4", patch(good, third.offset + 4, "<I", third.blen + 2),
                  2, "DamagedError"))
    c.append(Case("ng-epb-length-under-12", patch(good, third.offset + 4, "<I", 8), 2, "DamagedError"))
    c.append(Case("ng-epb-length-huge", patch(good, third.offset + 4, "<I", 0x7FFFFFFC), 2, "DamagedError"))
    c.append(Case("ng-epb-length-lies-longer", patch(good, third.offset + 4, "<I", third.blen + 96), 2,
                  "DamagedError"))
    c.append(Case("ng-epb-caplen-over-block", patch(good, third.offset + 20, "<I", third.blen), 2,
                  "DamagedError"))
    c.append(Case("ng-epb-interface-out-of-range", patch(good, third.offset + 8, "<I", 3), 2, "DamagedError"))
    big = pcapng(add_packets, byte_order="big")
    b3 = nth(big, EPB, 2)
    c.append(Case("ng-be-epb-bad-trailer", patch(big, b3.offset + b3.blen - 4, ">I", 4), 2, "DamagedError"))
    c.append(Case("ng-be-epb-interface-out-of-range", patch(big, b3.offset + 8, ">I", 1), 2, "DamagedError"))
    c.append(Case("ng-damage-in-two-places",
                  patch(good, third.offset + third.blen - 4, "<I", 0)[:-2], 2, "DamagedError"))
    first = nth(good, EPB, 0)
    c.append(Case("ng-first-epb-bad-trailer", patch(good, first.offset + first.blen - 4, "<I", 0), 0,
                  "DamagedError"))

    # damaged interface blocks: a bad if_tsresol, a bad trailer, an option past the block
    def later_iface(w: PcapngWriter) -> None:
        add_packets(w, ETHER_FRAMES[:2])
        w.add_interface(1, tsresol=9)
        add_packets(w, ETHER_FRAMES[2:], interface=1)
    later = pcapng(later_iface)
    c.append(Case("ng-idb-tsresol-0x7f-after-packets", set_tsresol(later, nth(later, IDB, 1), 0x7F), 2,
                  "DamagedError"))
    c.append(Case("ng-idb-tsresol-0x7f-leading", set_tsresol(good, nth(good, IDB), 0x7F), 0, "DamagedError"))
    c.append(Case("ng-idb-tsresol-2^-64", set_tsresol(good, nth(good, IDB), 0x80 | 64), 0, "DamagedError"))
    idb = nth(good, IDB)
    c.append(Case("ng-idb-bad-trailer", patch(good, idb.offset + idb.blen - 4, "<I", 0), 0, "DamagedError"))
    named = pcapng(add_packets, name="eth0")
    nidb = nth(named, IDB)
    c.append(Case("ng-idb-option-past-block", patch(named, nidb.offset + 16 + 2, "<H", 200), 0,
                  "DamagedError"))

    def two_sections(w: PcapngWriter) -> None:
        add_packets(w, ETHER_FRAMES[:2])
        w.new_section()
        w.add_interface(1)
        add_packets(w, ETHER_FRAMES[2:])
    two = pcapng(two_sections)
    shb2 = nth(two, SHB, 1)
    c.append(Case("ng-cut-in-second-shb", two[:shb2.offset + 20], 2, "TruncatedError"))
    c.append(Case("ng-cut-in-second-shb-header", two[:shb2.offset + 10], 2, "TruncatedError"))
    c.append(Case("ng-cut-after-second-shb", two[:shb2.offset + shb2.blen], 2))
    c.append(Case("ng-second-shb-bad-bom", patch(two, shb2.offset + 8, "<I", 0x12345678), 2, "DamagedError"))
    c.append(Case("ng-second-shb-version-2", patch(two, shb2.offset + 12, "<H", 2), 2, "UnsupportedFormatError"))
    c.append(Case("ng-second-shb-bad-trailer", patch(two, shb2.offset + shb2.blen - 4, "<I", 28), 2,
                  "DamagedError"))
    c.append(Case("ng-second-section-idb-tsresol-0x7f", set_tsresol(two, nth(two, IDB, 1), 0x7F), 2,
                  "DamagedError"))
    c.append(Case("ng-spb-before-interface",
                  pcapng(lambda w: None, linktype=None)
                  + struct.pack("<III", SPB, 16 + 60, 60) + ETHER_FRAMES[0] + struct.pack("<I", 16 + 60),
                  0, "DamagedError"))
    c.append(Case("ng-epb-before-interface",
                  pcapng(lambda w: None, linktype=None) + good[first.offset:first.offset + first.blen],
                  0, "DamagedError"))
    # cut short at every kind of boundary
    shb = nth(good, SHB)
    c.append(Case("ng-cut-in-shb-header", good[:8], 0, "TruncatedError"))
    c.append(Case("ng-cut-in-shb", good[:shb.blen - 2], 0, "TruncatedError"))
    c.append(Case("ng-shb-only", good[:shb.blen], 0))
    c.append(Case("ng-cut-in-idb", good[:idb.offset + 10], 0, "TruncatedError"))
    c.append(Case("ng-cut-in-epb-header", good[:third.offset + 6], 2, "TruncatedError"))
    c.append(Case("ng-cut-in-epb-fields", good[:third.offset + 20], 2, "TruncatedError"))
    c.append(Case("ng-cut-in-epb-data", good[:third.offset + 40], 2, "TruncatedError"))
    c.append(Case("ng-cut-in-epb-trailer", good[:third.offset + third.blen - 2], 2, "TruncatedError"))
    c.append(Case("ng-cut-in-last-block", good[:-1], 4, "TruncatedError"))
    c.append(Case("ng-shb-bad-bom", patch(good, 8, "<I", 0x11223344), 0, "DamagedError"))
    c.append(Case("ng-shb-length-huge", patch(good, 4, "<I", 0x7FFFFFF0), 0, "DamagedError"))
    return c


# Frames for files of several MiB: records and blocks then straddle every reader's reads
# (256 KiB) and the batch walk's chunks (4 MiB), where carried-over bytes are handled.
BIG_FRAME = bytes(build.ether() / build.ipv4(src="10.9.0.1", dst="10.9.0.2") / build.udp(sport=4, dport=5)
                  / bytes(1395))
BIG_COUNT = 3300  # ~4.7 MB


def _big_frames() -> list[bytes]:
    return [BIG_FRAME if i % 4 else ETHER_FRAMES[i % 5] for i in range(BIG_COUNT)]


def _big_cases() -> list[Case]:
    c: list[Case] = []
    frames = _big_frames()
    r = recs(frames, ticks=NS, step=1_001)
    c.append(Case("big-pcap-ns-be", pcap_file(r, magic=PCAP_NS, order=">"), BIG_COUNT))
    lie = list(r)
    lie[3100] = Rec(r[3100].sec, r[3100].frac, 0x7FFFFFF0, 60, r[3100].data)
    c.append(Case("big-pcap-lying-caplen-late", pcap_file(lie, magic=PCAP_NS), 3100, "DamagedError"))
    c.append(Case("big-pcap-cut-late", pcap_file(recs(frames))[:-700], BIG_COUNT - 1, "TruncatedError"))

    def sections(w: PcapngWriter) -> None:
        add_packets(w, frames[:1500])
        w.write_block(0x99, b"unknown")
        w.new_section("big")
        w.add_interface(1, tsresol=0x80 | 20)
        w.add_interface(1, tsresol=6)
        add_packets(w, frames[1500:2500], interface=1)
        w.write_simple(ETHER_FRAMES[0])
        add_packets(w, frames[2500:], interface=0)
    many = pcapng(sections)
    c.append(Case("big-ng-sections-late", many, BIG_COUNT + 1))
    good = pcapng(lambda w: add_packets(w, frames))
    late = nth(good, EPB, 3000)
    c.append(Case("big-ng-bad-trailer-late", patch(good, late.offset + late.blen - 4, "<I", 0), 3000,
                  "DamagedError"))
    c.append(Case("big-ng-cut-late", many[:-30], BIG_COUNT, "TruncatedError"))
    return c


def all_cases() -> list[Case]:
    cases = _pcap_cases() + _ng_cases() + _big_cases()
    by = {c.name: c for c in cases}
    assert len(by) == len(cases), "case names must be unique"
    for name in ("pcap-us-le", "pcap-lying-caplen", "pcap-cut-in-record-3-header", "ng-little",
                 "ng-second-section-after-packet-1", "ng-epb-bad-trailer", "ng-cut-in-second-shb",
                 "ng-idb-tsresol-0x7f-after-packets", "big-pcap-lying-caplen-late", "big-ng-sections-late"):
        cases.append(gz(by[name]))
    cases.append(Case("gz-stream-cut-short", gzip.compress(by["pcap-us-le"].data, mtime=0)[:-30], 4,
                      "TruncatedError"))
    return cases
