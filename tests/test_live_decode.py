# The Linux ring decoders and the argument checks of purepcap.live, on synthetic ring
# memory laid out as <linux/if_packet.h> describes it (no privilege needed).
from __future__ import annotations

import struct
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from purepcap import linktypes
from purepcap.format import Packet

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")

if sys.platform.startswith("linux"):
    from purepcap import _live_linux as L
    from purepcap import live

# tpacket3_hdr: next_offset sec nsec snaplen len status mac net | rxhash vlan_tci vlan_tpid pad
V3 = struct.Struct("=IIIIIIHHIIH2x8x")
SOCKADDR_LL = struct.Struct("=HHiHBB8s")  # protocol as given (we pass it already big-endian)
assert V3.size == 48


def sockaddr(proto_be: int, hatype: int, pkttype: int, addr: bytes) -> bytes:
    return SOCKADDR_LL.pack(17, int.from_bytes(proto_be.to_bytes(2, "big"), "little"), 3, hatype,
                            pkttype, len(addr), addr.ljust(8, b"\0"))


def make_block(frames, *, mac_at: int = 80) -> bytes:
    """A TPACKET_V3 block as the kernel hands it over. frames: dicts with data, sec, nsec,
    length, status, tci, tpid, pkttype, hatype, addr, proto."""
    body = bytearray()
    first = 48
    offsets = []
    for f in frames:
        start = first + len(body)
        offsets.append(start)
        size = (mac_at + len(f["data"]) + 15) & ~15
        frame = bytearray(size)
        frame[48:68] = sockaddr(f.get("proto", 0x0800), f.get("hatype", 1), f.get("pkttype", 0),
                                f.get("addr", b""))
        frame[mac_at:mac_at + len(f["data"])] = f["data"]
        body += frame
    for i, f in enumerate(frames):
        nxt = offsets[i + 1] - offsets[i] if i + 1 < len(frames) else 0
        hdr = V3.pack(nxt, f["sec"], f["nsec"], len(f["data"]), f["length"], f.get("status", 1),
                      mac_at, mac_at, 0, f.get("tci", 0), f.get("tpid", 0))
        rel = offsets[i] - first
        body[rel:rel + 48] = hdr
    header = struct.pack("=IIIIIIQ", 3, 0, 1, len(frames), first, first + len(body), 7)
    return header.ljust(first, b"\0") + bytes(body)


frames_st = st.lists(
    st.fixed_dictionaries({
        "data": st.binary(min_size=14, max_size=200),
        "sec": st.integers(0, 2**32 - 1),
        "nsec": st.integers(0, 999_999_999),
        "extra": st.integers(0, 1000),
        "vlan": st.none() | st.tuples(st.integers(0, 0xFFFF), st.sampled_from([0, 0x8100, 0x88A8])),
    }),
    min_size=0, max_size=12)


def _frames(spec):
    out = []
    for f in spec:
        d = {"data": f["data"], "sec": f["sec"], "nsec": f["nsec"], "length": len(f["data"]) + f["extra"]}
        if f["vlan"] is not None:
            tci, tpid = f["vlan"]
            d["status"] = 1 | L.TP_STATUS_VLAN_VALID | (L.TP_STATUS_VLAN_TPID_VALID if tpid else 0)
            d["tci"], d["tpid"] = tci, tpid
        out.append(d)
    return out


@given(frames_st, st.integers(0, 10**6), st.integers(1, 300))
def test_v3_block_decodes_every_frame(spec, first_frame, snaplen):
    frames = _frames(spec)
    block = make_block(frames)
    got = L.decode_block_v3(block, 0, first_frame, linktypes.EN10MB, snaplen)
    expected = []
    for i, (f, s) in enumerate(zip(frames, spec)):
        data, length = f["data"], f["length"]
        if s["vlan"] is not None:
            tci, tpid = s["vlan"]
            data = data[:12] + struct.pack(">HH", tpid or 0x8100, tci) + data[12:]
            length += 4
        data = data[:snaplen]
        expected.append(Packet(first_frame + i + 1, f["sec"] * 10**9 + f["nsec"], len(data), length,
                               linktypes.EN10MB, 0, data))
    assert got == expected


def test_v3_block_at_an_offset_in_a_bigger_ring():
    block = make_block([{"data": b"A" * 20, "sec": 1, "nsec": 2, "length": 20},
                        {"data": b"B" * 30, "sec": 3, "nsec": 4, "length": 99}])
    ring = bytearray(4096) + bytearray(block) + bytearray(100)
    got = L.decode_block_v3(ring, 4096, 0, 1, 1000)
    assert [(p.frame, p.time, p.caplen, p.length, p.data) for p in got] == [
        (1, 1_000_000_002, 20, 20, b"A" * 20), (2, 3_000_000_004, 30, 99, b"B" * 30)]


def test_v3_cooked_frames_get_an_sll_header():
    ip = bytes.fromhex("4500001c000040004011") + bytes(18)
    block = make_block([
        {"data": ip, "sec": 5, "nsec": 6, "length": len(ip), "hatype": 0xFFFE, "pkttype": 0,
         "proto": 0x0800},
        {"data": ip, "sec": 7, "nsec": 8, "length": len(ip), "hatype": 1, "pkttype": 4,
         "addr": bytes.fromhex("020000000001"), "proto": 0x0800},
    ])
    got = L.decode_block_v3(block, 0, 0, linktypes.LINUX_SLL, 262144, cooked=True)
    assert got[0].data == bytes.fromhex("0000" "fffe" "0000" "0000000000000000" "0800") + ip
    assert got[1].data == bytes.fromhex("0004" "0001" "0006" "0200000000010000" "0800") + ip
    assert [p.length for p in got] == [16 + len(ip)] * 2
    assert [p.linktype for p in got] == [linktypes.LINUX_SLL] * 2
    # snaplen counts the SLL header
    cut = L.decode_block_v3(block, 0, 0, linktypes.LINUX_SLL, 20, cooked=True)
    assert [p.caplen for p in cut] == [20, 20] and cut[0].data == got[0].data[:20]


cooked_st = st.lists(st.fixed_dictionaries({
    "data": st.binary(max_size=80),
    "sec": st.integers(0, 2**32 - 1),
    "nsec": st.integers(0, 999_999_999),
    "hatype": st.integers(0, 0xFFFF),
    "pkttype": st.integers(0, 7),
    "addr": st.binary(max_size=8),
    "proto": st.integers(0, 0xFFFF),
    "tci": st.none() | st.integers(0, 0xFFFF),
}), max_size=10)


@given(cooked_st, st.integers(1, 120))
def test_v3_cooked_blocks(spec, snaplen):
    frames = []
    for f in spec:
        d = dict(f, length=len(f["data"]))
        tci = d.pop("tci")
        if tci is not None:
            d["status"], d["tci"] = 1 | L.TP_STATUS_VLAN_VALID, tci
        frames.append(d)
    got = L.decode_block_v3(make_block(frames), 0, 0, linktypes.LINUX_SLL, snaplen, cooked=True)
    want = []
    for f in spec:
        sll = struct.pack(">HHH", f["pkttype"], f["hatype"], len(f["addr"])) + f["addr"].ljust(8, b"\0")
        if f["tci"] is None:
            data = sll + struct.pack(">H", f["proto"]) + f["data"]
        else:
            data = sll + struct.pack(">HHH", 0x8100, f["tci"], f["proto"]) + f["data"]
        want.append((data[:snaplen], len(data)))
    assert [(p.data, p.length) for p in got] == want
    assert [p.caplen for p in got] == [len(d) for d, _ in want]
    assert [p.time for p in got] == [f["sec"] * 10**9 + f["nsec"] for f in spec]


def test_v3_cooked_vlan_goes_into_the_sll_protocol_field():
    ip = bytes(20)
    block = make_block([{"data": ip, "sec": 0, "nsec": 0, "length": 20, "hatype": 1,
                         "status": 1 | L.TP_STATUS_VLAN_VALID, "tci": 42, "proto": 0x0800}])
    (p,) = L.decode_block_v3(block, 0, 0, linktypes.LINUX_SLL, 262144, cooked=True)
    assert p.data[12:20] == bytes.fromhex("0000" "8100" "002a" "0800")
    assert p.length == 16 + 4 + 20


def test_v3_skips_outgoing_copies_when_asked():
    frames = [{"data": b"in" * 10, "sec": 1, "nsec": 0, "length": 20, "pkttype": 0},
              {"data": b"out" * 10, "sec": 2, "nsec": 0, "length": 30, "pkttype": L.PACKET_OUTGOING},
              {"data": b"in2" * 10, "sec": 3, "nsec": 0, "length": 30, "pkttype": 0}]
    block = make_block(frames)
    got = L.decode_block_v3(block, 0, 0, 1, 1000, skip_outgoing=3)  # make_block's ifindex
    assert [(p.frame, p.data) for p in got] == [(1, b"in" * 10), (2, b"in2" * 10)]
    assert len(L.decode_block_v3(block, 0, 0, 1, 1000, skip_outgoing=4)) == 3  # another device
    assert len(L.decode_block_v3(block, 0, 0, 1, 1000)) == 3


# tpacket2_hdr: status len snaplen mac net sec nsec vlan_tci vlan_tpid pad[4]
V2 = struct.Struct("=IIIHHIIHH4x")


@given(st.binary(min_size=12, max_size=100), st.integers(0, 500), st.booleans(),
       st.integers(0, 0xFFFF), st.integers(1, 200))
def test_v2_frame(data, extra, vlan, tci, snaplen):
    frame = bytearray(V2.pack(1 | (L.TP_STATUS_VLAN_VALID if vlan else 0), len(data) + extra, len(data),
                              64, 64, 10, 20, tci if vlan else 0, 0))
    frame += sockaddr(0x0800, 1, 0, b"")
    frame = frame.ljust(64, b"\0") + data
    pkt = L.decode_frame_v2(bytes(frame), 0, 41, 1, snaplen)
    want = data[:12] + struct.pack(">HH", 0x8100, tci) + data[12:] if vlan else data
    assert pkt == Packet(42, 10_000_000_020, len(want[:snaplen]), len(data) + extra + (4 if vlan else 0),
                         1, 0, want[:snaplen])


def test_linktype_follows_arphrd():
    assert L.linktype_for(1) == (linktypes.EN10MB, False)
    assert L.linktype_for(772) == (linktypes.EN10MB, False)  # loopback, as libpcap
    assert L.linktype_for(0xFFFE) == (linktypes.LINUX_SLL, True)  # tun (ARPHRD_NONE)
    assert L.linktype_for(768) == (linktypes.LINUX_SLL, True)  # ipip


def test_snaplen_program_and_raw_programs():
    assert live._program(None, 1, 96, False) == [(0x06, 0, 0, 96)]
    prog = [(0x28, 0, 0, 12), (0x15, 0, 1, 0x800), (0x06, 0, 0, 0xFFFFFFFF), (0x06, 0, 0, 0)]
    assert live._program(prog, 1, 128, False) == [(0x28, 0, 0, 12), (0x15, 0, 1, 0x800),
                                                  (0x06, 0, 0, 128), (0x06, 0, 0, 0)]
    with pytest.raises(live.CaptureError, match="instruction 1 is out of range"):
        live._program([(6, 0, 0, 1), (6, 256, 0, 1)], 1, 100, False)
    with pytest.raises(live.CaptureError, match="not \\(code, jt, jf, k\\)"):
        live._program([(6, 0, 0)], 1, 100, False)
    with pytest.raises(live.CaptureError, match="1 to 4096 instructions"):
        live._program([], 1, 100, False)


def test_string_filter_needs_the_compiler_or_uses_it():
    try:
        from purepcap.filter import compile_bpf  # noqa: F401
    except ImportError:
        with pytest.raises(live.CaptureError, match="pcap-filter compiler"):
            live._program("udp", 1, 100, False)
    else:
        prog = live._program("udp", 1, 100, False)
        assert prog and all(len(i) == 4 for i in prog)
        assert any(code == 0x06 and k == 100 for code, _, _, k in prog)


@pytest.mark.parametrize("kwargs, message", [
    ({"count": 0}, "count must be a positive integer"),
    ({"chunksize": -1}, "chunksize must be a positive integer"),
    ({"timeout": -1}, "timeout must be a number"),
    ({"snaplen": 0}, "snaplen must be between 1 and 262144"),
    ({"snaplen": 262145}, "snaplen must be between 1 and 262144"),
    ({"method": "magic"}, "method must be"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        live.capture("lo", **kwargs)


def test_unknown_interface_lists_the_available_ones():
    import socket

    from purepcap._compat import if_nameindex  # PyPy has no socket.if_nameindex
    names = [n for _, n in sorted(getattr(socket, "if_nameindex", if_nameindex)())]
    with pytest.raises(live.NoSuchInterfaceError) as err:
        live.capture("no-such-if0")
    assert str(err.value) == f"no interface named 'no-such-if0': available interfaces are {', '.join(names)}"
    assert isinstance(err.value, live.CaptureError)


def test_interfaces_lists_loopback():
    found = {i.name: i for i in live.interfaces()}
    assert "lo" in found
    lo = found["lo"]
    assert lo.loopback and lo.linktype == linktypes.EN10MB and lo.index >= 1 and str(lo) == "lo"
