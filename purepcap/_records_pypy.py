# records()' direct walk as PyPy's JIT runs it best (issue 21; the choice is _loops').
#
# Strategy: the CPython walk (_records._direct_rows) reads the file in fresh bytes and
# unpacks each packet's fixed-offset fields with one struct. On PyPy that costs twice:
# fresh bytes of each read count towards the next major collection (see _loops), and
# PyPy's struct reads big-endian fields out of a bytearray ~10x slower than out of
# bytes. So this walk keeps one reused bytearray (format.refill, as the PyPy Packet
# loops do), cuts records out of it as those loops do (container rules from
# _container, every block the run does not take through its careful step), makes no
# Packet and copies no packet bytes on the fast path, and reads the fields byte by
# byte (``buf[i] << 8 | buf[i + 1]``), which the JIT turns into plain loads. The fast
# path is the CPython rows' (_records._rows_default, _rows_payload): Ethernet,
# untagged or one 802.1Q tag, IPv4 without options and not a later fragment, or (no
# payload) IPv6 without extension headers; everything else is copied out as bytes and
# decoded by headers.decode (_records._row), so the rows are the same on both walks.
# tests/test_conformance.py and tests/test_records_direct.py run both walks.
# records() imports this module on PyPy only, and hands it what it shares with _records.
from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from typing import Any

from . import linktypes as _lt
from ._container import (
    BT_EPB,
    DAMAGE,
    EPB_DATA,
    EPB_WORDS,
    NEED_MORE,
    NS,
    PACKET,
    PCAP_RECORD,
    PCAPNG_SHB,
    SECTION,
    epb_fits,
    pcap_cut_short,
    pcap_record_too_long,
    pcap_wrapped_time,
    pcapng_block,
    pcapng_cut_short,
    report_damage,
    shb_byte_order,
)
from ._protocols import NAMES as _PROTO_NAMES
from .format import refill
from .headers import _CACHE_LIMIT, _PORTED, _V6_EXT
from .headers import _ip4_cache as _ip4
from .headers import _ip6_cache as _ip6

__all__ = ["pypy_rows"]


# The walk's own IPv4 names, in front of headers' cache: a plain dict's get() took
# PyPy's JIT ~10 ns less a lookup than headers' dict subclass (whose __missing__ makes
# the names): 0.20 -> 0.18 s over the 1M mixed packets (and ``get(v) or name(v)`` gave
# back most of that: the test of the str). Bounded as headers' cache is.
_IP4_NAMES: dict[int, str] = {}


def _ip4_name(value: int) -> str:
    """The dotted quad of ``value`` (headers' cache), remembered in _IP4_NAMES."""
    if len(_IP4_NAMES) >= _CACHE_LIMIT:
        _IP4_NAMES.clear()
    name = _IP4_NAMES[value] = _ip4[value]
    return name


def pypy_rows(name: str, found: Any, wanted: frozenset[int] | None, payload: bool, errors: str,
              chunk: int, general: Callable[..., dict | None]) -> Iterator[dict]:
    """records()' rows of the uncompressed pcap or pcapng file ``found`` (what
    _records._direct_source found: its stream, what was read of it, its header), walked
    in one reused buffer read ``chunk`` bytes at a time; ``general`` (_records._row) makes
    the rows the fast path does not."""
    if found.pcap is not None:
        return _pcap_rows(name, found, wanted, payload, errors, chunk, general)
    return _pcapng_rows(name, found, wanted, payload, errors, chunk, general)


def _fast_row(buf: bytearray, s: int, dend: int, frame: int, t: int | None, caplen: int, length: int,
              wanted: frozenset[int] | None) -> dict | bool | None:
    """The default row of the Ethernet frame at ``buf[s:dend]`` (``caplen`` bytes) where
    the fast path reads it; False where it reads it and ``wanted`` drops it; None for
    the general path. The fields are _records._FAST's and _FAST6's, read byte by byte."""
    if caplen < 38:
        return None
    o = s
    etype = buf[s + 12] << 8 | buf[s + 13]
    if etype == 0x8100:  # one 802.1Q tag: the same fields, 4 on
        if caplen < 42:
            return None
        o = s + 4
        etype = buf[s + 16] << 8 | buf[s + 17]
    if etype == 0x0800:
        if buf[o + 14] != 0x45 or buf[o + 20] & 0x1F or buf[o + 21]:
            return None  # options, or a later fragment
        total = buf[o + 16] << 8 | buf[o + 17]
        if total < 20:
            return None
        proto = buf[o + 23]
        if wanted is not None and proto not in wanted:
            return False
        if proto in _PORTED and total >= 24:
            sport = buf[o + 34] << 8 | buf[o + 35]
            dport = buf[o + 36] << 8 | buf[o + 37]
        else:
            sport = dport = None
        src = buf[o + 26] << 24 | buf[o + 27] << 16 | buf[o + 28] << 8 | buf[o + 29]
        dst = buf[o + 30] << 24 | buf[o + 31] << 16 | buf[o + 32] << 8 | buf[o + 33]
        s_host = _IP4_NAMES.get(src)
        if s_host is None:
            s_host = _ip4_name(src)
        d_host = _IP4_NAMES.get(dst)
        if d_host is None:
            d_host = _ip4_name(dst)
        return {"frame": frame, "time": t, "length": length, "caplen": caplen,
                "src_host": s_host, "src_port": sport, "dst_host": d_host, "dst_port": dport,
                "protocol": _PROTO_NAMES[proto]}
    if etype == 0x86DD and dend >= o + 58:
        proto = buf[o + 20]
        if buf[o + 14] >> 4 != 6 or proto in _V6_EXT:
            return None
        if wanted is not None and proto not in wanted:
            return False
        if proto in _PORTED and (buf[o + 18] << 8 | buf[o + 19]) >= 4:
            sport = buf[o + 54] << 8 | buf[o + 55]
            dport = buf[o + 56] << 8 | buf[o + 57]
        else:
            sport = dport = None
        return {"frame": frame, "time": t, "length": length, "caplen": caplen,
                "src_host": _ip6[bytes(buf[o + 22:o + 38])], "src_port": sport,
                "dst_host": _ip6[bytes(buf[o + 38:o + 54])], "dst_port": dport,
                "protocol": _PROTO_NAMES[proto]}
    return None


def _fast_payload_row(buf: bytearray, s: int, dend: int, frame: int, t: int | None, caplen: int,
                      length: int, wanted: frozenset[int] | None) -> dict | bool | None:
    """As _fast_row, with the payload: _records._FAST_PAYLOAD's fields (IPv4 TCP or UDP)."""
    if caplen < 47:  # room for the TCP data offset byte
        return None
    o = s
    etype = buf[s + 12] << 8 | buf[s + 13]
    if etype == 0x8100:
        if caplen < 51:
            return None
        o = s + 4
        etype = buf[s + 16] << 8 | buf[s + 17]
    if etype != 0x0800 or buf[o + 14] != 0x45 or buf[o + 20] & 0x1F or buf[o + 21]:
        return None
    total = buf[o + 16] << 8 | buf[o + 17]
    proto = buf[o + 23]
    if not (proto == 17 and total >= 28 or proto == 6 and total >= 40):
        return None
    if wanted is not None and proto not in wanted:
        return False
    stop = o + 14 + total
    if stop > dend:
        stop = dend
    if proto == 17:
        ulen = buf[o + 38] << 8 | buf[o + 39]
        if 8 <= ulen and o + 34 + ulen < stop:  # the UDP length ends the datagram early
            stop = o + 34 + ulen
        body = bytes(buf[o + 42:stop])
    else:
        hl = (buf[o + 46] >> 4) * 4
        body = bytes(buf[o + 34 + hl:stop]) if hl >= 20 else b""
    src = buf[o + 26] << 24 | buf[o + 27] << 16 | buf[o + 28] << 8 | buf[o + 29]
    dst = buf[o + 30] << 24 | buf[o + 31] << 16 | buf[o + 32] << 8 | buf[o + 33]
    s_host = _IP4_NAMES.get(src)
    if s_host is None:
        s_host = _ip4_name(src)
    d_host = _IP4_NAMES.get(dst)
    if d_host is None:
        d_host = _ip4_name(dst)
    return {"frame": frame, "time": t, "length": length, "caplen": caplen,
            "src_host": s_host, "src_port": buf[o + 34] << 8 | buf[o + 35],
            "dst_host": d_host, "dst_port": buf[o + 36] << 8 | buf[o + 37],
            "protocol": _PROTO_NAMES[proto], "payload": body}


def _pcap_rows(name: str, found: Any, wanted: frozenset[int] | None, payload: bool, errors: str,
               chunk: int, general: Callable[..., dict | None]) -> Iterator[dict]:
    stream = found.stream
    hdr = found.pcap
    assert hdr is not None
    order, ticks, reclen, _ = hdr.variant
    unpack = struct.Struct(order + PCAP_RECORD).unpack_from
    mult = NS // ticks
    linktype = hdr.linktype
    fast = (_fast_payload_row if payload else _fast_row) if linktype == _lt.EN10MB else None
    limit = hdr.record_limit
    swapped = hdr.swaps_lengths
    buf = found.held
    base = len(found.prefix)  # file offset of buf[0]
    pos = 0
    end = len(buf)
    need = reclen  # what the record at pos needs whole
    frame = 0
    eof = False
    try:
        while True:
            if not eof:
                buf, end, base, eof, stream_error = refill(stream, chunk, buf, pos, end, base, None, need)
                pos = 0
                if stream_error is not None:  # (a plain file or bytes: not expected)
                    report_damage(stream_error, name, frame, errors)
                    return
            need = reclen
            while pos + reclen <= end:
                sec, frac, caplen, length = unpack(buf, pos)
                if swapped and caplen > length:
                    caplen, length = length, caplen
                if caplen > limit:
                    report_damage(pcap_record_too_long(base + pos, frame, caplen, hdr), name, frame, errors)
                    return
                start = pos + reclen
                nxt = start + caplen
                if nxt > end:
                    need = reclen + caplen
                    break
                frame += 1
                pos = nxt
                t = sec * NS + frac * mult if frac < ticks else pcap_wrapped_time(sec, frac, mult)
                row = fast(buf, start, nxt, frame, t, caplen, length, wanted) if fast is not None else None
                if row is None:
                    row = general(linktype, bytes(buf[start:nxt]), frame, t, caplen, length, wanted, payload)
                    if row is None:
                        continue
                elif row is False:
                    continue
                yield row
            if eof:
                if pos < end:  # a record cut short
                    report_damage(pcap_cut_short(base + pos, frame, end - pos < reclen), name, frame, errors)
                return
    finally:
        stream.close()


def _pcapng_rows(name: str, found: Any, wanted: frozenset[int] | None, payload: bool, errors: str,
                 chunk: int, general: Callable[..., dict | None]) -> Iterator[dict]:
    # The run of format.Capture._iter_pcapng_pypy: a whole, sound enhanced packet block
    # of an interface whose tick is a whole number of ns is taken here; every other
    # block, and every damaged one, goes through _container's careful step.
    stream = found.stream
    st = found.pcapng
    assert st is not None
    strict = errors == "raise"
    order = st.order
    head = struct.Struct(order + EPB_WORDS).unpack_from
    u32 = struct.Struct(order + "I").unpack_from
    fast_row = _fast_payload_row if payload else _fast_row
    fast = None
    cur_iid = -1  # the interface of the last packet the run took; its fields:
    linktype = mult = off = 0
    ifaces = st.section_ifaces
    buf = found.held
    base = len(found.prefix)  # file offset of buf[0]
    pos = 0
    end = len(buf)
    need = 12  # what the block at pos needs whole
    frame = 0
    eof = False
    fresh = pos < end  # what was read with the leading blocks is walked before reading more
    try:
        while True:
            if not eof and not fresh:
                buf, end, base, eof, stream_error = refill(stream, chunk, buf, pos, end, base, None, need)
                pos = 0
                if stream_error is not None:  # (a plain file or bytes: not expected)
                    report_damage(stream_error, name, frame, errors)
                    return
            fresh = False
            need = 12
            while pos + 12 <= end:
                if pos + EPB_DATA <= end:
                    btype, blen, iid, hi, lo, caplen, length = head(buf, pos)
                    nxt = pos + blen
                    if btype == BT_EPB and nxt <= end and epb_fits(blen, caplen) and u32(buf, nxt - 4)[0] == blen:
                        if iid != cur_iid and iid < len(ifaces) and ifaces[iid].div == 1:
                            cur_iid = iid
                            _, linktype, mult, _, off, _ = ifaces[iid]
                            fast = fast_row if linktype == _lt.EN10MB else None
                        if iid == cur_iid:
                            frame += 1
                            start = pos + EPB_DATA
                            dend = start + caplen
                            pos = nxt
                            t = ((hi << 32) | lo) * mult + off
                            row = fast(buf, start, dend, frame, t, caplen, length, wanted) if fast is not None else None
                            if row is None:
                                row = general(linktype, bytes(buf[start:dend]), frame, t, caplen, length, wanted,
                                           payload)
                                if row is None:
                                    continue
                            elif row is False:
                                continue
                            yield row
                            continue
                # everything else takes the careful step, which may change the section
                cur_iid = -1
                what, value, nxt = pcapng_block(st, buf, pos, end, base, eof, strict)
                if what == NEED_MORE:
                    if u32(buf, pos)[0] == PCAPNG_SHB:  # its length is in its own byte order (a
                        # sound one: the careful step reports a bad byte-order magic as damage)
                        need = struct.unpack_from(shb_byte_order(buf, pos) + "I", buf, pos + 4)[0]
                    else:
                        need = u32(buf, pos + 4)[0]
                    break
                if what == PACKET:
                    it, t, caplen, length, at = value
                    frame += 1
                    row = general(it.linktype, bytes(buf[at:at + caplen]), frame, t, caplen, length, wanted, payload)
                    if row is not None:
                        yield row
                elif what == SECTION:
                    ifaces = st.section_ifaces
                    if st.order != order:
                        order = st.order
                        head = struct.Struct(order + EPB_WORDS).unpack_from
                        u32 = struct.Struct(order + "I").unpack_from
                elif what == DAMAGE:
                    if nxt < 0:
                        report_damage(value, name, frame, errors)
                        return
                    st.note_skipped(value, name, frame, errors)
                pos = nxt
            if eof:
                if pos < end:
                    report_damage(pcapng_cut_short(base + pos, frame), name, frame, errors)
                return
    finally:
        stream.close()
