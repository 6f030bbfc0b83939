# The /dev/bpf back end's pure parts, on any OS: ioctl request encoding checked against
# the numbers the BSD headers give, and the walk over a read buffer checked on
# synthetic buffers laid out as the kernels lay them out (bpf(4)).
from __future__ import annotations

import os
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


# --- BpfSource against a fake /dev/bpf ----------------------------------------------------
# The device is a socketpair end (so poll and non-blocking reads behave like a real
# descriptor); ioctls go to a fake that checks their order and arguments as bpf(4)
# states them: BIOCSBLEN only before BIOCSETIF, and so on.

class FakeBpf:
    def __init__(self, dlt: int, blen: int = 4096) -> None:
        import socket
        self.dlt = dlt
        self.blen = blen
        self.calls: list[str] = []
        self.program: list[tuple[int, int, int, int]] | None = None
        self.attached = None
        self.promisc = False
        self.immediate = False
        self.stats = (0, 0)
        self.dev, self.wire = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.names = {v: k for k, v in bpf_ioctls().items()}

    def ioctl(self, fd: int, request: int, arg: bytes = b"", *rest):
        import ctypes
        assert fd == self.dev.fileno()
        name = self.names[request]
        self.calls.append(name)
        if name == "BIOCSBLEN":
            assert self.attached is None, "BIOCSBLEN after BIOCSETIF has no effect"
            (want,) = struct.unpack("=I", arg)
            self.blen = min(want, 1 << 20)
            return struct.pack("=I", self.blen)
        if name == "BIOCSETIF":
            self.attached = arg[:16].rstrip(b"\0").decode()
            assert len(arg) == 32
            return arg
        assert self.attached is not None, f"{name} before BIOCSETIF"
        if name == "BIOCIMMEDIATE":
            self.immediate = struct.unpack("=I", arg)[0] == 1
            return arg
        if name == "BIOCGDLT":
            return struct.pack("=I", self.dlt)
        if name == "BIOCGBLEN":
            return struct.pack("=I", self.blen)
        if name == "BIOCSETF":
            n, ptr = struct.unpack("@IP", arg)
            raw = ctypes.string_at(ptr, 8 * n)
            self.program = [struct.unpack_from("=HBBI", raw, 8 * i) for i in range(n)]
            return arg
        if name == "BIOCPROMISC":
            self.promisc = True
            return 0
        if name == "BIOCGSTATS":
            return struct.pack("=II", *self.stats)
        raise AssertionError(f"unexpected ioctl {name}")


@pytest.fixture
def fake_bpf(monkeypatch):
    from purepcap import _live_bsd as B
    fakes = []

    def make(dlt: int, layout: str = "timeval32"):
        fake = FakeBpf(dlt)
        fakes.append(fake)
        monkeypatch.setattr(B, "_open_device", lambda: os.dup(fake.dev.fileno()))
        monkeypatch.setattr(B.fcntl, "ioctl", lambda fd, req, arg=b"", *r: fake.ioctl(
            fake.dev.fileno(), req, arg))
        monkeypatch.setattr(B, "platform_layout", lambda *a: layout)
        return fake

    yield make
    for fake in fakes:
        fake.dev.close()
        fake.wire.close()



def test_bpf_source_configures_the_device_in_order(fake_bpf):
    from purepcap import _live_bsd as B
    fake = fake_bpf(dlt=0)  # lo0 on macOS: DLT_NULL
    seen = []

    def program_for(linktype):
        seen.append(linktype)
        return [(0x06, 0, 0, 96)]

    src = B.BpfSource("lo0", snaplen=96, promisc=False, immediate=True, buffer_size=1 << 16,
                      program_for=program_for)
    try:
        assert fake.calls == ["BIOCSBLEN", "BIOCSETIF", "BIOCIMMEDIATE", "BIOCGDLT", "BIOCSETF", "BIOCGBLEN"]
        assert fake.attached == "lo0" and fake.immediate and not fake.promisc
        assert seen == [linktypes.NULL] and src.linktype == linktypes.NULL
        assert fake.program == [(0x06, 0, 0, 96)]
        assert src.blen == 1 << 16
        # one read returns a run of records; reads ask for exactly the buffer length
        pkt = struct.pack("<I", 2) + bytes.fromhex("45000014") + bytes(16)
        recs = make_buffer("timeval32", [(10, 20, pkt, 0), (11, 0, pkt[:8], 12)], 4)
        fake.wire.send(recs)
        assert src.wait(1000)
        got = src.read_batch(0)
        assert [(p.frame, p.time, p.caplen, p.length, p.linktype, p.data) for p in got] == [
            (1, 10_000_020_000, len(pkt), len(pkt), linktypes.NULL, pkt),
            (2, 11_000_000_000, 8, 20, linktypes.NULL, pkt[:8])]
        assert src.read_batch(2) == []  # nothing more: no blocking
        # BIOCGSTATS counts are cumulative; kernel_stats gives increments
        fake.stats = (5, 1)
        assert src.kernel_stats() == (5, 1)
        fake.stats = (9, 1)
        assert src.kernel_stats() == (4, 0)
        # wakeup() makes wait() return False at once
        src.wakeup()
        assert src.wait(5000) is False
    finally:
        src.close()
    assert src.fd == -1


def test_bpf_source_promisc_and_ethernet(fake_bpf):
    from purepcap import _live_bsd as B
    fake = fake_bpf(dlt=1, layout="timeval64")
    src = B.BpfSource("em0", snaplen=262144, promisc=True, immediate=False, buffer_size=1 << 22,
                      program_for=lambda lt: [(0x06, 0, 0, 262144)])
    try:
        assert fake.calls == ["BIOCSBLEN", "BIOCSETIF", "BIOCGDLT", "BIOCSETF", "BIOCPROMISC", "BIOCGBLEN"]
        assert fake.promisc and src.linktype == linktypes.EN10MB and src.blen == 1 << 20
        frame = bytes(range(60))
        fake.wire.send(make_buffer("timeval64", [(1, 2, frame, 0)] * 3, 14))
        src.wait(1000)
        assert [p.data for p in src.read_batch(0)] == [frame] * 3
    finally:
        src.close()


def test_live_capture_on_the_bsd_path(fake_bpf, monkeypatch):
    from purepcap import _live_bsd as B
    from purepcap import live
    fake = fake_bpf(dlt=1)
    monkeypatch.setattr(live, "_LINUX", False)
    monkeypatch.setattr(live.sys, "platform", "darwin")
    monkeypatch.setattr(live, "_interface_names", lambda: ["lo0", "en0"])
    monkeypatch.setattr(B, "interface_up", lambda name: name == "en0")
    with pytest.raises(live.NoSuchInterfaceError, match="available interfaces are lo0, en0"):
        live.capture("en9")
    with pytest.raises(live.InterfaceDownError, match="interface lo0 is down"):
        live.capture("lo0")
    frame = bytes(range(42))
    with live.capture("en0", count=3, timeout=5, snaplen=20, chunksize=2) as cap:
        assert cap.linktype == linktypes.EN10MB and cap.method == "bpf"
        assert fake.program == [(0x06, 0, 0, 20)]
        fake.wire.send(make_buffer("timeval32", [(1, i, frame, 0) for i in range(5)], 14))
        fake.stats = (5, 0)
        chunks = list(cap)  # ends at count=3, which closes the device
        stats = cap.stats
    assert cap.closed
    assert [[p.frame for p in c] for c in chunks] == [[1, 2], [3]]
    assert all(p.data == frame[:20] and p.length == 42 for c in chunks for p in c)
    assert stats["captured"] == 3 and stats["received"] == 5


def test_other_platforms_get_a_clear_error(monkeypatch):
    from purepcap import live
    monkeypatch.setattr(live, "_LINUX", False)
    monkeypatch.setattr(live.sys, "platform", "win32")
    with pytest.raises(live.CaptureError, match="^live capture is not supported on win32"):
        live.capture("eth0")
