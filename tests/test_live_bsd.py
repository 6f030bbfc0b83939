# The /dev/bpf back end's pure parts, on any OS: ioctl request encoding checked against
# the numbers the BSD headers give, and the walk over a read buffer checked on
# synthetic buffers laid out as the kernels lay them out (bpf(4)).
from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from purepcap import linktypes
from purepcap._live_bsd import (
    _IO,
    _IOR,
    _IOW,
    _IOWR,
    SIOCGIFFLAGS,
    bpf_ioctls,
    bpf_wordalign,
    decode_buffer,
    dlt_to_linktype,
    platform_layout,
    walk_buffer,
)
from purepcap.errors import CaptureError
from purepcap.format import Packet

# Request numbers as <net/bpf.h> expands them on LP64 FreeBSD and macOS (the same
# values appear in scapy's scapy/arch/bpf/consts.py and in the FreeBSD constants of
# Rust's pcap bindings).
DOCUMENTED_LP64 = {
    "BIOCGBLEN": 0x40044266,
    "BIOCSBLEN": 0xC0044266,
    "BIOCSETF": 0x80104267,
    "BIOCFLUSH": 0x20004268,
    "BIOCPROMISC": 0x20004269,
    "BIOCGDLT": 0x4004426A,
    "BIOCGETIF": 0x4020426B,
    "BIOCSETIF": 0x8020426C,
    "BIOCSRTIMEOUT": 0x8010426D,
    "BIOCGSTATS": 0x4008426F,
    "BIOCIMMEDIATE": 0x80044270,
}


def test_ioctl_numbers_match_the_headers_on_64_bit():
    assert bpf_ioctls(pointer_size=8) == DOCUMENTED_LP64


def test_ioctl_numbers_on_32_bit():
    io = bpf_ioctls(pointer_size=4)
    assert io["BIOCSETF"] == 0x80084267  # struct bpf_program is 8 bytes there
    assert io["BIOCSRTIMEOUT"] == 0x8008426D
    assert io["BIOCSETIF"] == DOCUMENTED_LP64["BIOCSETIF"]


def test_ioccom_encoding():
    assert _IO("B", 105) == 0x20004269
    assert _IOR("B", 102, 4) == 0x40044266
    assert _IOW("B", 112, 4) == 0x80044270
    assert _IOWR("B", 102, 4) == 0xC0044266
    assert _IOW(ord("B"), 108, 32) == 0x8020426C
    assert SIOCGIFFLAGS == 0xC0206911  # _IOWR('i', 17, struct ifreq)
    assert _IOW("B", 1, 0x2000) == _IOW("B", 1, 0)  # length is masked to 13 bits


def test_platform_layouts():
    assert platform_layout("darwin", 8) == "timeval32"
    assert platform_layout("openbsd7", 8) == "timeval32"
    assert platform_layout("freebsd14", 8) == "timeval64"
    assert platform_layout("netbsd10", 8) == "timeval64"
    assert platform_layout("freebsd14", 4) == "timeval32"


def test_dlt_mapping():
    assert dlt_to_linktype(0, "darwin") == linktypes.NULL  # lo0
    assert dlt_to_linktype(1, "freebsd14") == linktypes.EN10MB
    assert dlt_to_linktype(12, "darwin") == linktypes.RAW
    assert dlt_to_linktype(14, "openbsd7") == linktypes.RAW
    assert dlt_to_linktype(12, "openbsd7") == 12  # DLT_LOOP on OpenBSD


# The kernel's layout: header, padding so the network header is aligned
# (bh_hdrlen = BPF_WORDALIGN(linkhdr + SIZEOF_BPF_HDR) - linkhdr), packet, then the next
# record at BPF_WORDALIGN(offset + bh_hdrlen + bh_caplen).
HDR = {"timeval32": (struct.Struct("=IIIIH"), 18, 4), "timeval64": (struct.Struct("=qqIIH"), 26, 8)}


def make_buffer(layout: str, records, linkhdr: int) -> bytes:
    fmt, sizeof, align = HDR[layout]
    hdrlen = bpf_wordalign(linkhdr + sizeof, align) - linkhdr
    buf = bytearray()
    for sec, usec, data, extra in records:
        start = len(buf)
        assert start % align == 0
        buf += fmt.pack(sec, usec, len(data), len(data) + extra, hdrlen).ljust(hdrlen, b"\xee")
        buf += data
        buf += b"\xee" * (bpf_wordalign(len(buf), align) - len(buf))
        assert (start + hdrlen + linkhdr) % align == 0  # the network header is aligned
    return bytes(buf)


records_st = st.lists(st.tuples(st.integers(0, 2**31 - 1), st.integers(0, 999_999),
                                st.binary(max_size=120), st.integers(0, 2000)), max_size=15)


@pytest.mark.parametrize("layout", ["timeval32", "timeval64"])
@given(records=records_st, linkhdr=st.sampled_from([4, 14, 16]), slack=st.integers(0, 64),
       snaplen=st.integers(1, 200), frame=st.integers(0, 1000))
def test_walk_and_decode(layout, records, linkhdr, slack, snaplen, frame):
    buf = make_buffer(layout, records, linkhdr)
    n = len(buf)
    big = buf + b"\xab" * slack  # a read fills only n bytes of the bigger buffer
    walked = walk_buffer(big, n, layout)
    assert [(t, c, d) for t, c, d, _ in walked] == [
        (s * 10**9 + u * 1000, len(data), len(data) + extra) for s, u, data, extra in records]
    assert [big[o:o + c] for _, c, _, o in walked] == [data for _, _, data, _ in records]
    pkts = decode_buffer(big, n, layout, frame, linktypes.EN10MB, snaplen)
    assert pkts == [Packet(frame + i + 1, s * 10**9 + u * 1000, len(data[:snaplen]), len(data) + extra,
                           linktypes.EN10MB, 0, data[:snaplen])
                    for i, (s, u, data, extra) in enumerate(records)]


def test_macos_lo0_record_by_hand():
    # macOS lo0: DLT_NULL, a 4-byte host-order address family before the IP header;
    # bh_hdrlen = BPF_WORDALIGN(4 + 18) - 4 = 20, records 4-aligned.
    ip = bytes.fromhex("4500001c0001000040110000" "7f000001" "7f000001") + bytes(8)
    pkt = struct.pack("<I", 2) + ip
    rec = struct.pack("=IIIIH", 1700000000, 123456, len(pkt), len(pkt), 20) + b"\0\0" + pkt
    rec2 = struct.pack("=IIIIH", 1700000001, 1, 4, 4, 20) + b"\0\0" + b"\x02\0\0\0"
    buf = rec + rec2
    assert len(rec) % 4 == 0
    assert walk_buffer(buf, len(buf), "timeval32") == [
        (1_700_000_000_123_456_000, 32, 32, 20), (1_700_000_001_000_001_000, 4, 4, len(rec) + 20)]


def test_freebsd_record_by_hand():
    # FreeBSD amd64, Ethernet: 26-byte header, bh_hdrlen = WORDALIGN(14 + 26) - 14 = 26;
    # a 60-byte frame ends at 86, so the next record starts at 88.
    frame = bytes(range(60))
    rec = struct.pack("=qqIIH", 1700000000, 5, 60, 1514, 26) + frame
    buf = rec + b"\0\0" + struct.pack("=qqIIH", 1700000002, 6, 1, 1, 26) + b"\x99"
    assert walk_buffer(buf, len(buf), "timeval64") == [
        (1_700_000_000_000_005_000, 60, 1514, 26), (1_700_000_002_000_006_000, 1, 1, 88 + 26)]


@pytest.mark.parametrize("damage", ["hdrlen0", "caplen_past_end", "hdrlen_past_end"])
def test_a_corrupt_buffer_is_an_error_not_a_loop(damage):
    good = make_buffer("timeval32", [(1, 2, b"abcd", 0), (3, 4, b"efgh", 0)], 14)
    first_len = len(good) // 2
    hdr = bytearray(good)
    if damage == "hdrlen0":
        struct.pack_into("=H", hdr, first_len + 16, 0)
    elif damage == "caplen_past_end":
        struct.pack_into("=I", hdr, first_len + 8, 10**6)
    else:
        struct.pack_into("=H", hdr, first_len + 16, 0xFFFF)
    with pytest.raises(CaptureError, match=f"record at offset {first_len}"):
        walk_buffer(bytes(hdr), len(hdr), "timeval32")


@given(st.binary(max_size=300), st.sampled_from(["timeval32", "timeval64"]))
def test_random_bytes_give_records_or_a_capture_error(data, layout):
    try:
        out = walk_buffer(data, len(data), layout)
    except CaptureError:
        return
    for _, caplen, _, off in out:
        assert 0 <= off and off + caplen <= len(data)
