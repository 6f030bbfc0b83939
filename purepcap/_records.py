# records(): one plain dict per IP packet, the convenient API. Strategy: choose
# everything once per call (which decoder, which keys, which protocols), then run a
# tight loop whose common case -- Ethernet (untagged or one 802.1Q tag), IPv4
# without options and not a later fragment, or (for the default rows) IPv6 without
# extension headers -- is one unpack_from of the fixed-offset fields, two cached
# address strings and one dict display. Anything else goes through headers.decode
# (the general path). Extra fields always use the general path, so asking for them
# never slows the default rows. An uncompressed pcap or pcapng file (path or bytes) read
# without a filter is walked directly, with no Packet per record (here on CPython, by
# _records_pypy on PyPy: see _loops); everything else iterates purepcap.open's Packets.
"""``purepcap.records``: one dict per IP packet of a capture.

Each dict has, in this order:

========  =================================================================
frame     the packet's 1-based frame number in the capture
time      int nanoseconds since the epoch, UTC
length    original length on the wire
caplen    captured length
src_host  str: IPv4 dotted, IPv6 in RFC 5952 form
src_port  int, or None unless TCP, UDP or SCTP directly follows the IP layer
dst_host  str
dst_port  int or None
protocol  ``tcp``, ``udp``, ``icmp``, ``icmpv6``, ``igmp``, else the lower-case
          IANA keyword (``gre``, ``esp``, ``ah``, ``sctp``, ``ospf``, ...),
          else ``ip-proto-N``
payload   bytes, only with ``payload=True`` (see :mod:`purepcap.headers`)
========  =================================================================

then each name in ``fields``, which may be any of :data:`EXTRA_FIELDS`:
``ip_version, ttl, ip_id, tcp_flags, tcp_seq, tcp_ack, tcp_window, icmp_type,
icmp_code, vlan, eth_src, eth_dst, interface, fragment, ip_proto, ip_length``
(meanings in :mod:`purepcap.headers`; ``interface`` is the packet's interface
index in the capture), and the application fields ``dns_id, dns_qname, dns_qtype,
dns_rcode, dns_answers, http_method, http_uri, http_host, http_user_agent,
http_status, tls_sni, tls_alpn, ja3, ja3s, ja4`` (decoded from this packet's TCP or
UDP payload alone, None where it carries no such field; see
:mod:`purepcap._appfields`). Packets without IP (ARP, STP, ...) yield no dict.
"""
from __future__ import annotations

import io
import os
import struct
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain
from typing import Any

from . import _loops
from . import linktypes as _lt
from ._appfields import APP_FIELDS, app_fields
from ._container import (
    DAMAGE,
    EPB_HEAD,
    EPB_STEP,
    INTERFACE,
    MAX_BLOCK,
    NEED_MORE,
    NS,
    PACKET,
    PACKETLESS_BLOCKS,
    PCAP_HEADER_LEN,
    PCAP_MAGICS,
    PCAP_RECORD,
    PCAPNG_SHB,
    SECTION,
    IfaceTime,
    PcapHeader,
    PcapngState,
    epb_key_split,
    pcap_cut_short,
    pcap_record_too_long,
    pcap_wrapped_time,
    pcapng_block,
    pcapng_cut_short,
    pcapng_state_from,
    read_pcap_header,
    report_damage,
)
from ._protocols import NAMES as _PROTO_NAMES
from ._protocols import number as _proto_number
from ._schema import RECORD_EXTRA as EXTRA_FIELDS
from ._sources import is_openable, is_url, source_name
from .errors import PcapError, errors_policy
from .format import READ_SIZE
from .headers import (  # which protocols carry ports, which IPv6 headers decode walks
    _PORTED,
    _V6_EXT,
    PROTOCOLS,
    decode,
)
from .headers import _ip4_cache as _ip4
from .headers import _ip6_cache as _ip6

__all__ = ["records", "EXTRA_FIELDS", "PROTOCOLS", "protocol_numbers"]

_APP = frozenset(APP_FIELDS)
_NO_APP = (None,) * len(APP_FIELDS)

# Ethernet + IPv4 fixed fields + the first 4 transport bytes, at fixed offsets when
# IHL is 5: ethertype, version/IHL, total length, flags/fragment offset, protocol,
# source, destination, source port, destination port.
_FAST = struct.Struct("!12xHBxHxxHxBxxIIHH")
_FAST_LEN = _FAST.size  # 38
# Ethernet + IPv6 fixed header + the first 4 transport bytes: version/traffic
# class byte, payload length, next header, source, destination, ports.
_FAST6 = struct.Struct("!14xB3xHBx16s16sHH")
# The same plus the UDP length (for TCP: the top of the sequence number, unused).
_FAST_PAYLOAD = struct.Struct("!12xHBxHxxHxBxxIIHHH")


def protocol_numbers(protocol: str | Iterable[str] | None) -> frozenset[int] | None:
    """The IP protocol numbers named by ``protocol=``; ValueError for an unknown name."""
    if protocol is None:
        return None
    if isinstance(protocol, str):
        names = [protocol]
    elif isinstance(protocol, Iterable):
        names = list(protocol)
    else:
        raise ValueError(f"protocol must be a name or a sequence of names, not {protocol!r} "
                         f"(a protocol number N is named ip-proto-N)")
    numbers = set()
    for name in names:
        if not isinstance(name, str):
            raise ValueError(f"protocol must be a name or a sequence of names, not {name!r}")
        try:
            numbers.add(_proto_number(name))
        except KeyError:
            raise ValueError(_unknown_protocol(name)) from None
    return frozenset(numbers)


def _unknown_protocol(name: str) -> str:
    """The message for a name protocol= does not know: the close matches, not all 150 names."""
    import difflib

    close = difflib.get_close_matches(name.strip().lower(), PROTOCOLS, n=3, cutoff=0.6)
    guess = f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
    return (f"unknown protocol {name!r}{guess}; names are tcp, udp, icmp, icmpv6, igmp, sctp or any "
            f"other IANA keyword (gre, esp, ospf, ...), or ip-proto-N for an IP protocol number N (0-255)")


def _check_fields(fields: Sequence[str] | str | None) -> tuple[str, ...]:
    if fields is None:
        return ()
    names = (fields,) if isinstance(fields, str) else tuple(fields)
    for f in names:
        if f not in EXTRA_FIELDS:
            raise ValueError(f"unknown field {f!r}; valid extra fields are {', '.join(EXTRA_FIELDS)}")
    return names


def records(source: Any, *, protocol: str | Iterable[str] | None = None, payload: bool = False,
            filter: str | None = None, fields: Sequence[str] | None = None, strict: bool = True,
            storage_options: dict | None = None, errors: str | None = None, reassemble: bool = False) -> Iterator[dict[str, Any]]:
    """Yield one dict per IP packet of ``source``.

    ``source`` is anything :func:`purepcap.open` accepts (path, file object, bytes,
    fsspec URL, ``"-"``), or an iterable of :class:`purepcap.Packet` such as an open
    Capture or a live capture (one opened with ``chunksize`` is flattened).
    ``protocol`` keeps only the named protocols (one name or several;
    ``ip-proto-N`` and the aliases ``icmp6``/``ipv6-icmp``/``ospfigp`` work too); an
    unknown name raises ValueError at once. ``payload=True`` adds the
    payload bytes. ``filter`` is a pcap-filter expression applied through
    ``purepcap.open``. ``fields`` adds extra keys (see the module docstring).
    ``errors`` ("raise", the default, "warn" or "ignore") is what damage in the capture
    does after the rows before it, as in ``purepcap.open``.
    ``reassemble=True`` joins the TCP segments of a TLS ClientHello or ServerHello and
    of an HTTP request's header block split across packets (purepcap._reassembly: in
    order, exact retransmissions ignored, a gap abandons the message, bounded per
    message and in total) and gives the application fields of the joined message on
    the row of its FIRST segment; the other segments it took carry none. Because that
    value is known only at a later segment, rows from a pending message's first
    segment on are held back (at most ``_reassembly.MAX_SPAN`` frames) and given out
    in frame order. Without application fields asked for, it changes nothing.
    """
    errors = errors_policy(errors, strict)
    wanted = protocol_numbers(protocol)
    extra = _check_fields(fields)
    if reassemble and any(f in _APP for f in extra):
        packets, owned = packets_of(source, filter=filter, errors=errors, storage_options=storage_options)
        return _rows_reassembled(packets, wanted, payload, extra, owned)
    if is_openable(source) and filter is None and not extra:
        direct = _direct_source(source)
        if direct is not None:
            if _loops.LOOPS == "pypy":  # see _loops
                from ._records_pypy import pypy_rows
                return pypy_rows(source_name(source), direct, wanted, payload, errors, READ_SIZE, _row)
            return _direct_rows(source, direct, wanted, payload, errors)
    packets, owned = packets_of(source, filter=filter, errors=errors, storage_options=storage_options)
    return _rows(packets, wanted, payload, extra, owned)


def packets_of(source: Any, *, filter: str | None = None, errors: str = "raise",
               storage_options: dict | None = None) -> tuple[Iterable, Any]:
    """The Packets of ``source`` as records() reads them (a capture opened and filtered, or
    an iterable of Packets, a live capture's lists flattened), and what to close after."""
    if is_openable(source):
        from ._open import open as _open
        capture = _open(source, filter=filter, errors=errors, storage_options=storage_options)
        return capture, capture
    packets: Iterable = source
    if getattr(source, "chunksize", None):  # a live capture yielding lists of Packets
        packets = chain.from_iterable(source)
    if filter is not None:
        from .filter import offline_matcher
        match = offline_matcher(filter)
        packets = (p for p in packets if match(p))
    return packets, None


def _rows(packets: Iterable, wanted: frozenset[int] | None, payload: bool, extra: tuple[str, ...],
          owned: Any) -> Iterator[dict[str, Any]]:
    # The chosen row generator is returned as is (no delegating generator in between:
    # each extra frame a row passes through costs ~10% of the fast path).
    if extra:
        return _rows_general(packets, wanted, payload, extra, owned)
    if payload:
        return _rows_payload(packets, wanted, owned)
    return _rows_default(packets, wanted, owned)


def _rows_default(packets: Iterable, wanted: frozenset[int] | None, owned: Any) -> Iterator[dict[str, Any]]:
    unpack = _FAST.unpack_from
    cache = _ip4
    names = _PROTO_NAMES
    ported = _PORTED
    eth = _lt.EN10MB
    fast_len = _FAST_LEN
    unpack6 = _FAST6.unpack_from
    cache6 = _ip6
    v6ext = _V6_EXT
    try:
        for p in packets:
            data = p.data
            if p.linktype == eth and len(data) >= fast_len:
                etype, vihl, total, frag, proto, src, dst, sport, dport = unpack(data, 0)
                o = 0
                if etype == 0x8100 and len(data) >= fast_len + 4:  # one 802.1Q tag: same fields, 4 on
                    etype, vihl, total, frag, proto, src, dst, sport, dport = unpack(data, 4)
                    o = 4
                if etype == 0x0800 and vihl == 0x45 and total >= 20 and not frag & 0x1FFF:
                    if wanted is not None and proto not in wanted:
                        continue
                    if proto not in ported or total < 24:
                        sport = dport = None
                    s = cache[src]
                    d = cache[dst]
                    yield {"frame": p.frame, "time": p.time, "length": p.length, "caplen": p.caplen,
                           "src_host": s, "src_port": sport, "dst_host": d, "dst_port": dport,
                           "protocol": names[proto]}
                    continue
                if etype == 0x86DD and len(data) >= o + 58:
                    vtc, plen, proto, src6, dst6, sport, dport = unpack6(data, o)
                    if vtc >> 4 == 6 and proto not in v6ext:
                        if wanted is not None and proto not in wanted:
                            continue
                        if proto not in ported or plen < 4:
                            sport = dport = None
                        yield {"frame": p.frame, "time": p.time, "length": p.length, "caplen": p.caplen,
                               "src_host": cache6[src6], "src_port": sport, "dst_host": cache6[dst6],
                               "dst_port": dport, "protocol": names[proto]}
                        continue
            r = decode(p.linktype, data, p.length)
            if r is None or (wanted is not None and r["ip_proto"] not in wanted):
                continue
            yield {"frame": p.frame, "time": p.time, "length": p.length, "caplen": p.caplen,
                   "src_host": r["src_host"], "src_port": r["src_port"], "dst_host": r["dst_host"],
                   "dst_port": r["dst_port"], "protocol": r["protocol"]}
    finally:
        if owned is not None:
            owned.close()


def _rows_payload(packets: Iterable, wanted: frozenset[int] | None, owned: Any) -> Iterator[dict[str, Any]]:
    unpack = _FAST_PAYLOAD.unpack_from
    cache = _ip4
    names = _PROTO_NAMES
    eth = _lt.EN10MB
    try:
        for p in packets:
            data = p.data
            if p.linktype == eth and len(data) >= 47:  # room for the TCP data offset byte
                etype, vihl, total, frag, proto, src, dst, sport, dport, ulen = unpack(data, 0)
                o = 0
                if etype == 0x8100 and len(data) >= 51:  # one 802.1Q tag: same fields, 4 on
                    etype, vihl, total, frag, proto, src, dst, sport, dport, ulen = unpack(data, 4)
                    o = 4
                if (etype == 0x0800 and vihl == 0x45 and not frag & 0x1FFF
                        and (proto == 17 and total >= 28 or proto == 6 and total >= 40)):
                    if wanted is not None and proto not in wanted:
                        continue
                    end = o + 14 + total
                    if proto == 17:
                        if 8 <= ulen and o + 34 + ulen < end:  # the UDP length ends the datagram early
                            end = o + 34 + ulen
                        body = data[o + 42:end]
                    else:
                        hlen = (data[o + 46] >> 4) * 4
                        body = data[o + 34 + hlen:end] if hlen >= 20 else b""
                    s = cache[src]
                    d = cache[dst]
                    yield {"frame": p.frame, "time": p.time, "length": p.length, "caplen": p.caplen,
                           "src_host": s, "src_port": sport, "dst_host": d, "dst_port": dport,
                           "protocol": names[proto], "payload": body}
                    continue
            r = decode(p.linktype, data, p.length)
            if r is None or (wanted is not None and r["ip_proto"] not in wanted):
                continue
            yield {"frame": p.frame, "time": p.time, "length": p.length, "caplen": p.caplen,
                   "src_host": r["src_host"], "src_port": r["src_port"], "dst_host": r["dst_host"],
                   "dst_port": r["dst_port"], "protocol": r["protocol"], "payload": r["payload"]}
    finally:
        if owned is not None:
            owned.close()


def _rows_general(packets: Iterable, wanted: frozenset[int] | None, payload: bool,
                  extra: tuple[str, ...], owned: Any) -> Iterator[dict[str, Any]]:
    app = any(f in _APP for f in extra)  # application fields: decoded from the payload
    try:
        for p in packets:
            r = decode(p.linktype, p.data, p.length)
            if r is None or (wanted is not None and r["ip_proto"] not in wanted):
                continue
            r["interface"] = p.interface
            row = {"frame": p.frame, "time": p.time, "length": p.length, "caplen": p.caplen,
                   "src_host": r["src_host"], "src_port": r["src_port"], "dst_host": r["dst_host"],
                   "dst_port": r["dst_port"], "protocol": r["protocol"]}
            if payload:
                row["payload"] = r["payload"]
            if app:
                values = app_fields(r["ip_proto"], r["src_port"], r["dst_port"], r["payload"])
                r.update(zip(APP_FIELDS, values or _NO_APP))  # noqa: B905 - one value per field
            for f in extra:
                row[f] = r[f]
            yield row
    finally:
        if owned is not None:
            owned.close()


# the records() fields the reassembly reads (besides the default keys and payload)
_REASSEMBLY_FIELDS = ("ip_proto", "fragment", "vlan", "tcp_seq", "tcp_flags")


def _rows_reassembled(packets: Iterable, wanted: frozenset[int] | None, payload: bool,
                      extra: tuple[str, ...], owned: Any) -> Iterator[dict[str, Any]]:
    """_rows_general's rows with the application fields of reassembled messages (see
    records()): rows are held from a pending message's first frame on, and given out in
    frame order once it is complete or abandoned."""
    from collections import deque

    from ._reassembly import Reassembler

    asked = set(extra) | ({"payload"} if payload else set())
    names = tuple(dict.fromkeys(extra + _REASSEMBLY_FIELDS))
    drop = [k for k in names + ("payload",) if k not in asked]
    app = [(f, APP_FIELDS.index(f)) for f in extra if f in _APP]
    joiner = Reassembler()
    held: deque[dict[str, Any]] = deque()
    rows = _rows_general(packets, wanted, True, names, owned)
    try:
        for row in rows:
            body = row["payload"]
            if row["ip_proto"] == 6 and body and row["fragment"] is None and row["tcp_seq"] is not None:
                done = joiner.segment(row["frame"], row, (row["vlan"], row["src_host"], row["src_port"],
                                                          row["dst_host"], row["dst_port"]),
                                      row["src_port"], row["dst_port"], row["tcp_seq"],
                                      bool(row["tcp_flags"] & 2), body)
                if done is not None:
                    first, values, others = done
                    for f, k in app:
                        first[f] = values[k]
                    for other in others:
                        for f, _ in app:
                            other[f] = None
            elif joiner:
                joiner.expire(row["frame"])
            for k in drop:
                del row[k]
            if not joiner:
                while held:
                    yield held.popleft()
                yield row
            else:
                held.append(row)
                oldest = joiner.oldest()
                while held[0]["frame"] < oldest:
                    yield held.popleft()
    except PcapError:
        while held:  # the rows before the damage, then the error
            yield held.popleft()
        raise
    finally:
        rows.close()
    while held:  # the end of the capture abandons the pending messages
        yield held.popleft()


# -- pcap and pcapng read directly -----------------------------------------------------------
# For an uncompressed pcap or pcapng file (a path or bytes) the packets are walked here, in
# the same loop that builds the rows: no Packet object, no generator in between, and the
# fixed fields are unpacked straight out of the read buffer. Every container rule comes
# from purepcap._container. In pcap, the rare record the loop does not take as it is (a
# fraction of a second out of range, a length swap of a pre-2.4 file, a lying length) is
# judged in place; in pcapng, any block the EPB run does not take (a new section or
# interface, another kind of packet block, damage) goes through the one careful step,
# pcapng_block, and the walk then returns to its run.


class _Direct:
    """What the direct walk needs: the open stream, the bytes read so far, and where
    they end in the file; the pcap file header, or the pcapng state after the leading
    blocks."""

    def __init__(self, stream: Any, prefix: bytes, held: bytes, pcap: PcapHeader | None,
                 pcapng: PcapngState | None) -> None:
        self.stream, self.prefix, self.held = stream, prefix, held
        self.pcap, self.pcapng = pcap, pcapng


def _direct_source(source: Any) -> _Direct | None:
    """A _Direct when ``source`` is an uncompressed pcap or pcapng file or bytes whose
    header reads; else None (purepcap.open then reads it, and reports what is wrong)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        stream: Any = io.BytesIO(bytes(source))
    elif isinstance(source, (str, os.PathLike)) and not (
            isinstance(source, str) and (source == "-" or source.startswith("file://") or is_url(source))):
        if not os.path.isfile(source):  # a pipe or device must not lose the bytes we peek at
            return None
        try:
            stream = open(source, "rb", buffering=0)  # noqa: SIM115 - closed by the row generator
        except OSError:
            return None  # purepcap.open reports it
    else:
        return None
    try:
        head = stream.read(PCAP_HEADER_LEN) or b""
        if len(head) == PCAP_HEADER_LEN:
            magic = struct.unpack_from("<I", head)[0]
            if magic in PCAP_MAGICS:
                try:
                    return _Direct(stream, head, b"", read_pcap_header(head), None)
                except PcapError:
                    pass
            elif magic == PCAPNG_SHB:
                found = _pcapng_start(stream, head)
                if found is not None:
                    return found
    except BaseException:
        stream.close()
        raise
    stream.close()
    return None


def _pcapng_start(stream: Any, head: bytes) -> _Direct | None:
    from .format import read_pcapng_head

    held, n, _ = read_pcapng_head(stream.read, head)
    if not n:
        return None
    try:
        st = pcapng_state_from(held[:n])
    except PcapError:
        return None  # purepcap.open reports it, after the packets before it (none)
    return _Direct(stream, held[:n], held[n:], None, st)


def _direct_rows(source: Any, found: _Direct, wanted: frozenset[int] | None, payload: bool,
                 errors: str) -> Iterator[dict[str, Any]]:
    stream = found.stream
    strict = errors == "raise"
    st = found.pcapng
    name = source_name(source)
    linktype = mult = ticks = hbase = 0
    hard_limit = limit = 0
    swaps = False
    if st is None:
        hdr = found.pcap
        assert hdr is not None
        order, ticks, hlen, _ = hdr.variant
        linktype = hdr.linktype
        mult = NS // ticks
        hard_limit = hdr.record_limit
        swaps = hdr.swaps_lengths
        # a record the loop takes as it is; every record of a pre-2.4 file (whose lengths
        # may be swapped) is judged in the rare branch
        limit = -1 if swaps else hard_limit
        ng: list[IfaceTime] = []
    else:
        order = st.order
        hlen = 28
        ng = st.section_ifaces
        n_if = len(ng)
        cur_key = -1  # the interface id and top 32 time bits of the last packet, as one u64
        next_caplen = next_length = 0
    record = struct.Struct(order + PCAP_RECORD).unpack_from
    block = struct.Struct(order + EPB_HEAD).unpack_from  # as format's EPB run reads them
    step = struct.Struct(order + EPB_STEP).unpack_from
    u32 = struct.Struct(order + "I").unpack_from
    unpack6 = _FAST6.unpack_from
    cache6 = _ip6
    v6ext = _V6_EXT
    fast = _FAST_PAYLOAD.unpack_from if payload else _FAST.unpack_from
    cache = _ip4
    names = _PROTO_NAMES
    ported = _PORTED
    max_block = MAX_BLOCK
    skipped = PACKETLESS_BLOCKS
    ethernet = linktype == _lt.EN10MB
    fast_len = 47 if payload else _FAST_LEN
    read = stream.read
    buf = found.held
    base = len(found.prefix)  # file offset of buf[0]
    pos = 0
    frame = 0
    careful = False  # the block at pos is for the careful step
    eof = False
    fresh = bool(buf)  # what was read with the leading blocks is walked before reading more
    ahead = False
    try:
        while True:
            if not fresh:
                ahead = False
                if pos < len(buf):
                    # a record cut by the end of the last read: read only what it lacks
                    # (gluing the rest onto a whole new chunk would copy the file once more)
                    rest = buf[pos:]
                    missing = hlen - len(rest)
                    if missing <= 0:  # the walk checked this length before it stopped
                        if st is None:
                            _, _, caplen, length = record(rest, 0)
                            missing = hlen + (length if swaps and caplen > length else caplen) - len(rest)
                        elif u32(rest, 0)[0] != PCAPNG_SHB:  # (an SHB's length may be in another order)
                            missing = u32(rest, 4)[0] - len(rest)
                    data = read(missing if missing > 0 else READ_SIZE)
                    if data:
                        buf = rest + data
                        base += pos
                        pos = 0
                    else:
                        eof = True
                else:
                    data = read(READ_SIZE)
                    base += pos
                    buf = data
                    pos = 0
                    eof = not data
            fresh = False
            end = len(buf)
            while pos + hlen <= end and not eof:
                if st is None:
                    sec, frac, caplen, length = record(buf, pos)
                    if caplen > limit or frac >= ticks:
                        if swaps and caplen > length:
                            caplen, length = length, caplen
                        if caplen > hard_limit:
                            report_damage(pcap_record_too_long(base + pos, frame, caplen, found.pcap),
                                          name, frame, errors)
                            return
                        t = pcap_wrapped_time(sec, frac, mult) if frac >= ticks else sec * NS + frac * mult
                    else:
                        t = sec * NS + frac * mult
                    start = pos + hlen
                    nxt = dend = start + caplen
                    if nxt > end:
                        break
                else:
                    # (as in format's EPB run, a block's trailer is read together with the
                    # next block's fields, in one unpack; "ahead" says they are in hand)
                    if ahead:
                        ahead = False
                        caplen, length = next_caplen, next_length
                    else:
                        btype, blen, key, lo, caplen, length = block(buf, pos)
                    nxt = pos + blen
                    if btype != 6 or not caplen + 32 <= blen <= max_block or blen & 3:
                        if btype in skipped and 12 <= blen <= max_block and not blen & 3:
                            if nxt > end:
                                break
                            if u32(buf, nxt - 4)[0] != blen:
                                careful = True
                                break
                            pos = nxt
                            continue
                        careful = True
                        break
                    if nxt > end:
                        break
                    if key != cur_key:
                        iid, hi = epb_key_split(key, order)
                        if iid >= n_if or ng[iid].div != 1:
                            careful = True
                            break
                        cur_key = key
                        _, linktype, mult, _, off, _ = ng[iid]
                        ethernet = linktype == _lt.EN10MB
                        hbase = (hi << 32) * mult + off
                    t = hbase + lo * mult
                    start = pos + 28
                    dend = start + caplen
                    if nxt + 28 <= end:
                        this_len = blen
                        tail, btype, blen, key, lo, next_caplen, next_length = step(buf, nxt - 4)
                        if tail != this_len:
                            careful = True
                            break
                        ahead = True
                    elif u32(buf, nxt - 4)[0] != blen:
                        careful = True
                        break
                frame += 1
                pos = nxt
                if ethernet and caplen >= fast_len:
                    if payload:
                        o = start
                        etype, vihl, total, frag, proto, src, dst, sport, dport, ulen = fast(buf, o)
                        if etype == 0x8100 and caplen >= fast_len + 4:  # one 802.1Q tag
                            o = start + 4
                            etype, vihl, total, frag, proto, src, dst, sport, dport, ulen = fast(buf, o)
                        if (etype == 0x0800 and vihl == 0x45 and not frag & 0x1FFF
                                and (proto == 17 and total >= 28 or proto == 6 and total >= 40)):
                            if wanted is not None and proto not in wanted:
                                continue
                            stop = o + 14 + total
                            if stop > dend:
                                stop = dend
                            if proto == 17:
                                if 8 <= ulen and o + 34 + ulen < stop:
                                    stop = o + 34 + ulen
                                body = buf[o + 42:stop]
                            else:
                                hl = (buf[o + 46] >> 4) * 4
                                body = buf[o + 34 + hl:stop] if hl >= 20 else b""
                            yield {"frame": frame, "time": t, "length": length,
                                   "caplen": caplen, "src_host": cache[src], "src_port": sport,
                                   "dst_host": cache[dst], "dst_port": dport, "protocol": names[proto],
                                   "payload": body}
                            continue
                    else:
                        o = start
                        etype, vihl, total, frag, proto, src, dst, sport, dport = fast(buf, o)
                        if etype == 0x8100 and caplen >= fast_len + 4:  # one 802.1Q tag
                            o = start + 4
                            etype, vihl, total, frag, proto, src, dst, sport, dport = fast(buf, o)
                        if etype == 0x0800 and vihl == 0x45 and total >= 20 and not frag & 0x1FFF:
                            if wanted is not None and proto not in wanted:
                                continue
                            if proto not in ported or total < 24:
                                sport = dport = None
                            yield {"frame": frame, "time": t, "length": length,
                                   "caplen": caplen, "src_host": cache[src], "src_port": sport,
                                   "dst_host": cache[dst], "dst_port": dport, "protocol": names[proto]}
                            continue
                        if etype == 0x86DD and dend >= o + 58:
                            vtc, plen, proto, src6, dst6, sport, dport = unpack6(buf, o)
                            if vtc >> 4 == 6 and proto not in v6ext:
                                if wanted is not None and proto not in wanted:
                                    continue
                                if proto not in ported or plen < 4:
                                    sport = dport = None
                                yield {"frame": frame, "time": t, "length": length,
                                       "caplen": caplen, "src_host": cache6[src6], "src_port": sport,
                                       "dst_host": cache6[dst6], "dst_port": dport, "protocol": names[proto]}
                                continue
                row = _row(linktype, buf[start:dend], frame, t, caplen, length, wanted, payload)
                if row is not None:
                    yield row
            if careful or (eof and pos < end and st is not None):
                careful = False
                ahead = False
                what, value, nxt = pcapng_block(st, buf, pos, end, base, eof, strict)
                if what == NEED_MORE:
                    if eof:
                        report_damage(pcapng_cut_short(base + pos, frame), name, frame, errors)
                        return
                    continue  # read more
                if what == PACKET:
                    it, t, caplen, length, at = value
                    frame += 1
                    row = _row(it.linktype, buf[at:at + caplen], frame, t, caplen, length, wanted, payload)
                    if row is not None:
                        yield row
                elif what == SECTION or what == INTERFACE:
                    ng = st.section_ifaces
                    n_if = len(ng)
                    cur_key = -1
                    if st.order != order:
                        order = st.order
                        block = struct.Struct(order + EPB_HEAD).unpack_from
                        step = struct.Struct(order + EPB_STEP).unpack_from
                        u32 = struct.Struct(order + "I").unpack_from
                elif what == DAMAGE:
                    if nxt < 0:
                        report_damage(value, name, frame, errors)
                        return
                    st.note_skipped(value, name, frame, errors)
                pos = nxt
                fresh = True  # back to the run, on what the buffer still holds
                continue
            if eof:
                if pos < end:  # a pcap record cut short
                    report_damage(pcap_cut_short(base + pos, frame, end - pos < hlen), name, frame, errors)
                return
    finally:
        stream.close()


def _row(linktype: int, data: bytes, frame: int, t: int | None, caplen: int, length: int,
         wanted: frozenset[int] | None, payload: bool) -> dict[str, Any] | None:
    """The row of a packet the fast paths do not decode, from headers.decode."""
    r = decode(linktype, data, length)
    if r is None or (wanted is not None and r["ip_proto"] not in wanted):
        return None
    row = {"frame": frame, "time": t, "length": length, "caplen": caplen,
           "src_host": r["src_host"], "src_port": r["src_port"], "dst_host": r["dst_host"],
           "dst_port": r["dst_port"], "protocol": r["protocol"]}
    if payload:
        row["payload"] = r["payload"]
    return row
