# records() reads plain pcap and pcapng files itself (records._direct_rows; on PyPy,
# _records_pypy) instead of going through Packets. Each walk must give exactly what the
# Packet path gives -- same rows, and the same error (type, message, offset, frame) or
# warning at the same point -- on every classic pcap of the shared corpus (damaged ones
# included) and on captures damaged here on purpose at every kind of irregularity it
# hands over.
from __future__ import annotations

import importlib
import io
import struct
import warnings

import pytest
from conftest import corpus_path, manifest, needs_corpus
from hypothesis import given
from hypothesis import strategies as st
from test_format import _pcapng_with_a_misaligned_epb
from test_headers import V4_TCP, V6_UDP, ether, ipv4, tcp, udp

import purepcap
from purepcap import _loops
from purepcap._records import records
from purepcap.format import PcapWriter

records_mod = importlib.import_module("purepcap._records")  # the module (purepcap.records is the function)


@pytest.fixture(autouse=True, params=_loops.CHOICES)
def _direct_walk(request, monkeypatch):
    """Each interpreter's direct walk (purepcap._loops: "cpython", _records._direct_rows;
    "pypy", _records_pypy), each tested here on every interpreter."""
    monkeypatch.setattr(_loops, "LOOPS", request.param)

T0 = 1_600_000_000_000_000_000


def outcome(make_rows):
    """(rows, error description or None, warnings) of consuming a records() iterator."""
    rows, error = [], None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            for r in make_rows():
                rows.append(r)
        except purepcap.PcapError as exc:
            error = (type(exc), str(exc), exc.offset, exc.frame)
    return rows, error, [str(w.message) for w in caught if issubclass(w.category, purepcap.PcapWarning)]


def both_paths(source, read_size=None, **kw):
    """records() of the source (walked directly, reading ``read_size`` bytes at a time
    if given) and records() of its Packets: (rows, error, warnings) each."""
    old = records_mod.READ_SIZE
    records_mod.READ_SIZE = read_size or old
    try:
        direct = outcome(lambda: records(source, **kw))
    finally:
        records_mod.READ_SIZE = old
    via_packets = outcome(lambda: records(purepcap.open(source, strict=kw.get("strict", True)), **kw))
    return direct, via_packets


def is_direct(source) -> bool:
    found = records_mod._direct_source(source)
    if found is None:
        return False
    found.stream.close()
    return True


def pcap(frames, *, linktype=1, nanosecond=False, order="little", snaplen=262144) -> bytes:
    buf = io.BytesIO()
    w = PcapWriter(buf, linktype=linktype, nanosecond=nanosecond, byte_order=order, snaplen=snaplen)
    for i, f in enumerate(frames):
        w.write_packet(T0 + i * 1_000_001, f)
    w.flush()
    return buf.getvalue()


FRAMES = [ether(0x0800, V4_TCP), ether(0x0806, bytes(28)), ether(0x86DD, V6_UDP),
          ether(0x0800, ipv4(17, udp(1, 2, b"x" * 30))), ether(0x0800, ipv4(6, tcp(5, 6, b"y" * 9))),
          ether(0x0800, ipv4(17, udp(3, 4, b"vlan"), total=40), tags=[(0x8100, 0x3007)]) + b"trailer"]


def general(source, payload):
    """The rows the general decoder gives (fields= forces it), without the extra field."""
    keep = ("frame", "time", "length", "caplen", "src_host", "src_port", "dst_host", "dst_port", "protocol")
    keep += ("payload",) if payload else ()
    return [{k: r[k] for k in keep} for r in records(source, payload=payload, fields=["ttl"])]


@pytest.mark.parametrize("payload", [False, True])
@pytest.mark.parametrize("variant", [dict(), dict(nanosecond=True), dict(order="big"), dict(linktype=101)])
def test_direct_equals_packet_path(variant, payload):
    frames = FRAMES if variant.get("linktype", 1) == 1 else [V4_TCP, V6_UDP]
    raw = pcap(frames, **variant)
    assert is_direct(raw)
    direct, via = both_paths(raw, payload=payload)
    assert direct == via and len(direct[0]) >= 2 and direct[1] is None
    assert direct[0] == general(raw, payload)


def test_not_direct_when_not_a_capture_header():
    raw = pcap(FRAMES)
    assert not is_direct(raw[:20])
    assert not is_direct(b"\x0a\x0d\x0d\x0a" + raw[4:])  # pcapng magic on a pcap body


@pytest.mark.parametrize("change", ["version 2.3", "fcs bits", "modified"])
def test_direct_takes_every_pcap_variant_as_the_packet_path_does(change):
    raw = bytearray(pcap(FRAMES))
    if change == "version 2.3":
        raw[6:8] = struct.pack("<H", 3)
    elif change == "fcs bits":
        raw[20:24] = struct.pack("<I", 1 | 0x14000000)  # FCS bits in the link-type field
    else:  # Kuznetzov's modified pcap: 8 more bytes in every record header
        out, pos = bytearray(struct.pack("<I", 0xA1B2CD34) + raw[4:24]), 24
        while pos < len(raw):
            caplen = struct.unpack_from("<I", raw, pos + 8)[0]
            out += raw[pos:pos + 16] + bytes(8) + raw[pos + 16:pos + 16 + caplen]
            pos += 16 + caplen
        raw = out
    assert is_direct(bytes(raw))
    direct, via = both_paths(bytes(raw))
    assert direct == via and len(direct[0]) >= 2 and direct[1] is None


def damaged_cases():
    raw = pcap(FRAMES)
    offsets = []
    pos = 24
    while pos < len(raw):
        offsets.append(pos)
        pos += 16 + struct.unpack_from("<I", raw, pos + 8)[0]
    lying = bytearray(raw)
    lying[offsets[2] + 8:offsets[2] + 12] = struct.pack("<I", 0xFFFFFFF0)
    big_fraction = bytearray(raw)
    big_fraction[offsets[1] + 4:offsets[1] + 8] = struct.pack("<I", 1_500_000)
    yield "cut-in-data", raw[:-5]
    yield "cut-in-header", raw[:offsets[3] + 7]
    yield "lying-length", bytes(lying)
    yield "fraction-too-big", bytes(big_fraction)


@pytest.mark.parametrize("strict", [True, False])
@pytest.mark.parametrize("name,raw", list(damaged_cases()), ids=lambda x: x if isinstance(x, str) else "")
def test_damage_is_handed_over(name, raw, strict):
    direct, via = both_paths(raw, strict=strict)
    assert direct == via
    rows, error, warned = direct
    if name == "fraction-too-big":
        assert error is None and len(rows) == 5  # not damage: the reader takes it whole
    elif strict:
        assert error is not None and not warned
    else:
        assert error is None and len(warned) == 1


def test_handover_continues_frame_numbers_and_rows(tmp_path):
    raw = pcap(FRAMES)
    path = tmp_path / "cut.pcap"
    path.write_bytes(raw[:-5])
    rows, error, _ = outcome(lambda: records(path))
    assert [r["frame"] for r in rows] == [1, 3, 4, 5]
    assert error[0] is purepcap.TruncatedError and error[3] == 5


def test_bigger_than_a_chunk_and_many_chunks(monkeypatch):
    monkeypatch.setattr(records_mod, "READ_SIZE", 100)  # records straddle every read's end
    raw = pcap(FRAMES * 20)
    direct, via = both_paths(raw, payload=True)
    assert direct == via and len(direct[0]) == 100 and direct[0] == general(raw, True)


@given(st.lists(st.sampled_from(FRAMES + [V4_TCP[:30], bytes(60)]), max_size=12), st.integers(0, 3000),
       st.booleans(), st.integers(20, 200))
def test_random_captures_and_cuts(frames, cut, payload, chunk):
    raw = pcap(frames)
    raw = raw[:max(24, len(raw) - cut % (len(raw) - 23))]
    direct, via = both_paths(raw, chunk, payload=payload)
    assert direct == via
    if direct[1] is None:
        assert direct[0] == general(raw, payload)


def direct_corpus_files(fmt: str):
    """(name, path) of each corpus file of this format that records() walks directly."""
    for path, row in manifest().items():
        if row.get("format") == fmt:
            source = corpus_path(path)
            if source.is_file() and is_direct(source):
                yield path, source


@needs_corpus
def test_corpus_pcaps_direct_equals_packet_path():
    checked = 0
    for path, source in direct_corpus_files("pcap"):
        for payload in (False, True):
            direct, via = both_paths(source, strict=False, payload=payload)
            assert direct == via, path
            if direct[1] is None and not direct[2]:
                assert direct[0] == general(source, payload), path
        checked += 1
    assert checked > 500


def test_named_pipe_is_read_through_the_reader(tmp_path):
    import os
    import threading

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    raw = pcap(FRAMES)
    assert not is_direct(fifo)  # peeking would lose the bytes: left to purepcap.open

    def feed():
        with open(fifo, "wb") as f:
            f.write(raw)

    t = threading.Thread(target=feed)
    t.start()
    rows = list(records(str(fifo)))
    t.join()
    assert rows == list(records(raw))


# -- pcapng -------------------------------------------------------------------------------------
def pcapng(steps, *, order="little", tsresol=9) -> bytes:
    """A pcapng file from steps: ("p", iface, frame) packets, ("isb",) statistics blocks,
    ("if", linktype, tsresol) new interfaces, ("shb",) a new section, ("spb", frame),
    ("pb", frame) obsolete packet blocks."""
    buf = io.BytesIO()
    w = purepcap.format.PcapngWriter(buf, byte_order=order, tsresol=tsresol)
    for i, step in enumerate(steps):
        kind = step[0]
        t = T0 + i * 1_000_001
        if kind == "p":
            w.write_packet(t, step[2], interface=min(step[1], len(w._ifaces) - 1))
        elif kind == "isb":
            w.write_block(5, struct.pack("<IIIHH", 0, 0, 0, 0, 0))
        elif kind == "if":
            w.add_interface(step[1], tsresol=step[2])
        elif kind == "shb":
            w.new_section()
            w.add_interface(1)
        elif kind == "spb":
            w.write_simple(step[1])
        elif kind == "pb":
            w.write_obsolete(t, step[1])
    w.flush()
    return buf.getvalue()


NG_STEPS = [("p", 0, f) for f in FRAMES] + [("isb",), ("if", 101, 6), ("p", 1, V4_TCP), ("p", 0, FRAMES[0]),
                                            ("if", 1, 0x80 | 20), ("p", 2, FRAMES[3]), ("spb", FRAMES[4]),
                                            ("pb", FRAMES[0]), ("shb",), ("p", 0, FRAMES[2]), ("isb",)]


@pytest.mark.parametrize("payload", [False, True])
@pytest.mark.parametrize("order", ["little", "big"])
def test_pcapng_direct_equals_packet_path(order, payload):
    raw = pcapng(NG_STEPS, order=order)
    assert is_direct(raw)
    direct, via = both_paths(raw, payload=payload)
    assert direct == via and len(direct[0]) == 11 and direct[1] is None
    assert direct[0] == general(raw, payload)
    direct, via = both_paths(raw, payload=payload, protocol="udp")
    assert direct == via and 0 < len(direct[0]) < 11


def test_pcapng_plain_run_is_walked_without_packets(monkeypatch):
    raw = pcapng([("p", 0, f) for f in FRAMES] * 3 + [("isb",)])

    def no_packets(*a, **k):
        raise AssertionError("handed over to purepcap.open")
    monkeypatch.setattr("purepcap._open.open", no_packets)
    assert len(list(records(raw))) == 15


@pytest.mark.parametrize("strict", [True, False])
@pytest.mark.parametrize("cut", ["trailer", "caplen", "interface", "end"])
def test_pcapng_damage_is_handed_over(cut, strict):
    raw = bytearray(pcapng([("p", 0, f) for f in FRAMES]))
    at = len(raw)
    for _ in range(3):  # the third block from the end
        at -= struct.unpack_from("<I", raw, at - 4)[0]
    if cut == "trailer":
        blen = struct.unpack_from("<I", raw, at + 4)[0]
        raw[at + blen - 4:at + blen] = struct.pack("<I", blen + 4)
    elif cut == "caplen":
        raw[at + 20:at + 24] = struct.pack("<I", 0xFFFF)
    elif cut == "interface":
        raw[at + 8:at + 12] = struct.pack("<I", 7)
    else:
        raw = raw[:at + 30]
    direct, via = both_paths(bytes(raw), strict=strict)
    assert direct == via and len(direct[0]) >= 2
    assert (direct[1] is not None) == strict or cut == "caplen" and not strict


@pytest.mark.parametrize("strict", [True, False])
def test_pcapng_misaligned_block_inside_a_run_is_handed_over(strict):
    # a block length that is not a multiple of 4, with an agreeing trailer and good
    # blocks after it: the walk hands it to the reader, which rejects it
    raw, at = _pcapng_with_a_misaligned_epb()
    assert is_direct(raw)
    direct, via = both_paths(raw, strict=strict)
    assert direct == via
    assert (direct[1] is not None and direct[1][2] == at) if strict else direct[2]


@given(st.lists(st.sampled_from([("p", 0, f) for f in FRAMES] + [("p", 1, V4_TCP), ("isb",), ("if", 1, 6),
                                                                ("if", 1, 0x83), ("spb", FRAMES[0]), ("shb",)]),
                max_size=14),
       st.integers(0, 3000), st.booleans(), st.integers(20, 200), st.sampled_from(["little", "big"]))
def test_random_pcapng_and_cuts(steps, cut, payload, chunk, order):
    raw = pcapng(steps, order=order)
    head = len(pcapng([], order=order))
    raw = raw[:max(head, len(raw) - cut % (len(raw) - head + 1))]
    direct, via = both_paths(raw, chunk, payload=payload, strict=False)
    assert direct == via
    if direct[1] is None and not direct[2]:
        assert direct[0] == general(raw, payload)


@pytest.mark.parametrize("order", ["little", "big"])
def test_pcapng_high_time_word_is_not_taken_for_an_interface(order):
    # The direct walk compares an EPB's interface id and top 32 time bits as one u64: a
    # top word that is itself a valid interface number must not be read as one.
    buf = io.BytesIO()
    w = purepcap.format.PcapngWriter(buf, byte_order=order, tsresol=6)
    w.add_interface(1, tsresol=9)
    times = [((1 << 32) + 7) * 1000, 5, ((1 << 32) + 9) * 1000, 6]
    for t, i in zip(times, [0, 1, 0, 1]):
        w.write_packet(t, FRAMES[0], interface=i)
    w.flush()
    raw = buf.getvalue()
    assert is_direct(raw)
    direct, via = both_paths(raw)
    assert direct == via and [r["time"] for r in direct[0]] == times


@needs_corpus
def test_corpus_pcapngs_direct_equals_packet_path():
    checked = 0
    for path, source in direct_corpus_files("pcapng"):
        for payload in (False, True):
            for strict in (True, False):
                direct, via = both_paths(source, strict=strict, payload=payload)
                assert direct == via, path
        checked += 1
    assert checked > 100


@pytest.mark.parametrize("strict", [True, False])
@pytest.mark.parametrize("damage", ["trailer", "length"])
def test_pcapng_damaged_leading_interface_block_is_reported(damage, strict):
    # found by fuzzing (fuzz/targets.py records_direct): an interface block right behind
    # the section header with a bad trailer was left out of the prefix's interfaces,
    # and the walk went on after it as if it were not there
    raw = bytearray(pcapng([("p", 0, f) for f in FRAMES]))
    shb = struct.unpack_from("<I", raw, 4)[0]
    idb = struct.unpack_from("<I", raw, shb + 4)[0]
    if damage == "trailer":
        raw[shb + idb - 4:shb + idb] = struct.pack("<I", 262144)
    else:
        raw[shb + 4:shb + 8] = struct.pack("<I", idb + 2)  # not a multiple of 4
    direct, via = both_paths(bytes(raw), strict=strict)
    assert direct == via and direct[0] == []
    assert (direct[1] is not None) == strict and (bool(direct[2]) != strict)
    pytest.importorskip("pandas")
    if strict:
        with pytest.raises(purepcap.DamagedError) as info:
            purepcap.to_pandas(bytes(raw), errors="raise")
        assert (type(info.value), str(info.value), info.value.offset, info.value.frame) == direct[1]


@pytest.mark.parametrize("payload", [False, True])
def test_pypy_walk_address_names_stay_bounded(monkeypatch, payload):
    """_records_pypy keeps its own IPv4 names in front of headers' cache: bounded as
    that cache is (emptied when full), and the names right before and after."""
    from purepcap import _records_pypy

    monkeypatch.setattr(_loops, "LOOPS", "pypy")
    monkeypatch.setattr(_records_pypy, "_CACHE_LIMIT", 3)
    monkeypatch.setattr(_records_pypy, "_IP4_NAMES", {})
    frames = [ether(0x0800, ipv4(6 if i % 2 else 17, tcp(payload=b"x") if i % 2 else udp(payload=b"y"),
                                 src=f"10.{i}.0.1", dst=f"192.168.{i % 5}.{i}")) for i in range(40)]
    raw = pcap(frames)
    rows = list(records(raw, payload=payload))
    assert rows == general(raw, payload)
    assert [r["src_host"] for r in rows] == [f"10.{i}.0.1" for i in range(40)]
    assert 0 < len(_records_pypy._IP4_NAMES) <= 3
