# to_pandas: the seed's columns and types, and rows equal to records() row for row,
# on our fixtures, on hand-made edge cases of the vectorised path, on random packets
# (hypothesis) and, when ../shared is present, on the public corpus.
from __future__ import annotations

import gzip
import io
import os
import struct
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from _edge_packets import EDGE_PACKETS, eth_ipv4, tcp_segment, udp_datagram, write_pcapng_variety
from conftest import FIXTURES, ROOT, corpus_path, have_corpus, manifest, needs_corpus
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import purepcap
from purepcap import _schema, build
from purepcap import strategies as pst
from purepcap.dataframe import (
    DEFAULT_COLUMNS,
    EXTRA_COLUMNS,
    columns_for,
    concat_frames,
    empty_frame,
    to_pandas,
)
from purepcap.format import PcapngWriter, PcapWriter

FIXTURE_FILES = sorted(str(p.relative_to(FIXTURES)) for p in FIXTURES.rglob("*.pcap*"))
ALL_EXTRAS = list(EXTRA_COLUMNS)


def _plain(value):
    if value is pd.NA or value is None:
        return None
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.value
    if value is pd.NaT:
        return None
    return value


def kinds(df: pd.DataFrame) -> list:
    """Column types, with every categorical counted as the same type."""
    return ["category" if isinstance(t, pd.CategoricalDtype) else t for t in df.dtypes]


def assert_matches_records(df: pd.DataFrame, source, **kw) -> None:
    """Every row and column of df equals what records() yields for the same arguments."""
    columns = kw.pop("columns", None)
    fields = [c for c in (columns or []) if c not in _schema.ROW_DEFAULT]  # records() rows have those
    recs = list(purepcap.records(source, fields=fields, **kw))
    assert len(df) == len(recs)
    for name in df.columns:
        if name == "time":
            got = [None if pd.isna(t) else int(t) for t in df[name].to_numpy().view(np.int64)]
            got = [None if t == np.iinfo(np.int64).min else t for t in got]
        else:
            got = [_plain(v) for v in df[name].tolist()]
        expected = [r[name] for r in recs]
        if got != expected:
            bad = [i for i, (a, b) in enumerate(zip(got, expected)) if a != b][:3]
            raise AssertionError(f"column {name}, rows {bad}: got {[got[i] for i in bad]}, "
                                 f"records() says {[expected[i] for i in bad]}")


def test_default_columns_and_types_are_the_seeds():
    df = to_pandas(FIXTURES / "local.pcap")
    assert list(df.columns) == ["time", "src_host", "src_port", "dst_host", "dst_port", "protocol"]
    assert df["time"].dtype == np.dtype("datetime64[ns]")
    assert df["time"].dt.tz is None  # naive UTC, as intake-pcap
    for c in ("src_port", "dst_port"):
        assert df[c].dtype == pd.UInt16Dtype()
    for c in ("src_host", "dst_host", "protocol"):
        assert isinstance(df[c].dtype, pd.CategoricalDtype)
    assert len(df) > 0
    assert df.index.equals(pd.RangeIndex(len(df)))


def test_payload_column_is_arrow_binary():
    df = to_pandas(FIXTURES / "http.pcap", payload=True)
    assert list(df.columns) == [*DEFAULT_COLUMNS, "payload"]
    assert df["payload"].dtype == pd.ArrowDtype(pa.binary())
    assert any(p.startswith(b"GET ") or p.startswith(b"HTTP/") for p in df["payload"])


def test_time_is_utc_nanoseconds(tmp_path):
    path = tmp_path / "t.pcap"
    t = 1_515_485_772_210_010_123
    with PcapWriter(path, nanosecond=True) as w:
        w.write((t, bytes(build.ether() / build.ipv4(src="10.0.0.1", dst="10.0.0.2") / build.udp(sport=1, dport=2))))
    df = to_pandas(path)
    assert df["time"][0] == pd.Timestamp("2018-01-09 08:16:12.210010123")
    assert int(df["time"].to_numpy().view(np.int64)[0]) == t


@pytest.mark.parametrize("name", FIXTURE_FILES)
def test_fixture_rows_equal_records(name):
    path = FIXTURES / name
    assert_matches_records(to_pandas(path), path)
    assert_matches_records(to_pandas(path, payload=True, columns=ALL_EXTRAS), path, payload=True,
                           columns=ALL_EXTRAS)
    for proto in ("tcp", "udp", ("icmp", "icmpv6"), "igmp"):
        assert_matches_records(to_pandas(path, protocol=proto), path, protocol=proto)


def test_columns_adds_extras_after_the_defaults():
    assert columns_for(["ttl", "src_host", "vlan"]) == [*DEFAULT_COLUMNS, "ttl", "vlan"]
    assert columns_for(None, payload=True) == [*DEFAULT_COLUMNS, "payload"]
    df = to_pandas(FIXTURES / "vlan.pcap", columns=["vlan", "eth_src", "frame"])
    assert list(df.columns) == [*DEFAULT_COLUMNS, "vlan", "eth_src", "frame"]
    assert df["vlan"].notna().all()
    assert df["vlan"].dtype == pd.UInt16Dtype()
    assert isinstance(df["eth_src"].dtype, pd.CategoricalDtype)
    with pytest.raises(ValueError, match="unknown column 'bogus'"):
        to_pandas(FIXTURES / "local.pcap", columns=["bogus"])


def test_unknown_protocol_is_a_clear_value_error():
    with pytest.raises(ValueError, match="unknown protocol 'udpp'"):
        to_pandas(FIXTURES / "local.pcap", protocol="udpp")


def test_empty_results_keep_exact_types(tmp_path):
    df = to_pandas(FIXTURES / "local.pcap", protocol="sctp", columns=ALL_EXTRAS, payload=True)
    assert len(df) == 0
    meta = empty_frame(ALL_EXTRAS, payload=True)
    assert list(df.columns) == list(meta.columns)
    assert kinds(df) == kinds(meta)
    path = tmp_path / "empty.pcap"
    PcapWriter(path).close()
    assert kinds(to_pandas(path)) == kinds(empty_frame())


def test_extras_types_match_the_empty_frame():
    df = to_pandas(FIXTURES / "local.pcap", columns=ALL_EXTRAS, payload=True)
    meta = empty_frame(ALL_EXTRAS, payload=True)
    assert kinds(df) == kinds(meta)


# -- every kind of source ---------------------------------------------------------------
def _reference(path) -> pd.DataFrame:
    return to_pandas(path, payload=True, columns=ALL_EXTRAS)


@pytest.mark.parametrize("name", ["local.pcap", "local.pcapng", "truncated-be.pcap"])
def test_sources_bytes_file_pipe_gzip_packets_all_agree(name, tmp_path):
    path = FIXTURES / name
    ref = _reference(path)
    raw = path.read_bytes()
    gz = tmp_path / (name + ".gz")
    gz.write_bytes(gzip.compress(raw))

    class Pipe(io.RawIOBase):  # not seekable, short reads
        def __init__(self, data):
            self._data = data

        def readable(self):
            return True

        def read(self, n=-1):
            n = 7 if n is None or n < 0 else min(n, 7)
            out, self._data = self._data[:n], self._data[n:]
            return out

    with purepcap.open(path) as cap:
        packets = list(cap)
    for src in (str(path), raw, memoryview(raw), io.BytesIO(raw), Pipe(raw), gz, packets,
                purepcap.open(path), [packets[:3], packets[3:]]):
        got = to_pandas(src, payload=True, columns=ALL_EXTRAS)
        pd.testing.assert_frame_equal(got, ref)


def test_batches_of_every_size_give_the_same_frame(tmp_path):
    from purepcap import _batches, _columns

    path = FIXTURES / "local.pcap"
    ref = _reference(path)
    for chunk in (17, 64, 100, 1000, 1 << 20):
        builder = _columns.ColumnBuilder(columns_for(ALL_EXTRAS, True))
        for batch in _batches.pcap_batches(path, chunk_size=chunk):
            builder.add(batch)
        from purepcap.dataframe import _frame
        pd.testing.assert_frame_equal(_frame(builder), ref)
    with purepcap.open(path) as cap:
        builder = _columns.ColumnBuilder(columns_for(ALL_EXTRAS, True))
        for batch in _batches.packet_batches(cap, batch_bytes=50):
            builder.add(batch)
    pd.testing.assert_frame_equal(_frame(builder), ref)


def _batched(path, chunk: int, **kw):
    """The frame pcap_batches makes at this chunk size, or the PcapError it raises."""
    from purepcap import _batches, _columns
    from purepcap.dataframe import _frame

    builder = _columns.ColumnBuilder(columns_for(ALL_EXTRAS, True))
    try:
        for batch in _batches.pcap_batches(path, chunk_size=chunk, **kw):
            builder.add(batch)
    except purepcap.PcapError as e:
        return type(e), e.offset, e.frame, str(e)
    return _frame(builder)


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_reading_ahead_on_disk_files_gives_what_the_reader_gives(tmp_path, fmt):
    """On a file on disk the next chunk is read ahead in a thread. Whatever the chunk
    size, and wherever damage stops the batch walk (so that the reader must go on
    from bytes read ahead), the frame is the reader's, or the error is."""
    out = io.BytesIO()
    big = b"\x02" * 12 + b"\x88\xb5" + bytes(300_000)  # more than the room kept for a carried record
    with (PcapWriter(out, snaplen=1 << 20) if fmt == "pcap" else PcapngWriter(out)) as w:
        for i in range(400):
            if i == 300 and fmt == "pcapng":  # the reader takes over here, and reads on
                w.new_section()
                w.add_interface(1)
            w.write_packet(1_700_000_000_000_000_000 + i, big if i in (150, 151, 350, 351) else EDGE_PACKETS[i % 7])
    raw = out.getvalue()
    path = tmp_path / f"c.{fmt}"
    path.write_bytes(raw)
    whole = _reference(io.BytesIO(raw))
    spans = purepcap.split_capture(path, 20_000)
    assert len(spans) >= 4
    for chunk in (150, 5000, 1 << 20):
        pd.testing.assert_frame_equal(_batched(path, chunk), whole)
        pd.testing.assert_frame_equal(concat_frames([_batched(path, chunk, span=sp) for sp in spans]), whole)
    at = len(raw) * 3 // 4  # a record or block there is made to lie about its length
    lie = min(o for o in _record_offsets(raw, fmt) if o >= at)
    bad = bytearray(raw)
    struct.pack_into("<I", bad, lie + (8 if fmt == "pcap" else 4), 0x7FFFFFF0)
    for damaged in (bytes(bad), raw[:at]):
        path.write_bytes(damaged)
        expected = _error_of(lambda: list(purepcap.open(path)))  # noqa: B023
        assert expected is not None
        for chunk in (150, 5000, 1 << 20):
            assert _batched(path, chunk) == expected, chunk


@settings(max_examples=25, deadline=None)
@given(st.sampled_from([1, 4095, 70_000, 333_333, 600_000]), st.sampled_from([4096, 65536]), st.booleans(),
       st.sampled_from([1000, None]), st.integers(0, 2 ** 32))
def test_chunk_buffer_holds_the_file_whatever_is_carried(size, chunk, span, room, seed):
    """_ChunkBuffer's buf always starts with the carried bytes followed by the file's
    next bytes, read ahead or not, for carries larger than its room too; rest() plus
    the stream is the rest of the file; a limit is never read past."""
    import random
    import tempfile

    from purepcap._batches import _ChunkBuffer

    class Buffer(_ChunkBuffer):
        ROOM = room or _ChunkBuffer.ROOM  # a small room: carried records often do not fit

    rnd = random.Random(seed)
    data = rnd.randbytes(size)
    start, stop = rnd.randrange(size), None
    if span:
        stop = rnd.randrange(start, size + 1)
    with tempfile.TemporaryFile() as f:
        f.write(data)
        f.flush()
        with open(f.fileno(), "rb", buffering=0, closefd=False) as stream:
            stream.seek(start)
            chunks = Buffer(stream, chunk, limit=None if stop is None else stop - start)
            try:
                at, have = start, 0  # file offset of buf[0]; carried bytes
                while True:
                    got = chunks.fill()
                    end = have + got
                    assert bytes(chunks.buf[:end]) == data[at:at + end]
                    assert bytes(chunks.buf[end:end + 128]) == bytes(128)
                    if not got or rnd.random() < 0.05:
                        break
                    # keep a tail: all of it (a record bigger than the chunk) or a short one
                    keep = end if rnd.random() < 0.5 else min(end, rnd.choice([0, 1, 17, chunk]))
                    have = chunks.carry(end - keep, end)
                    at += end - keep
                held = chunks.rest(0, end)
                if stop is None:
                    assert held + stream.read() == data[at:]
                else:
                    assert stream.tell() <= stop
                    assert (held + stream.read())[:stop - at] == data[at:stop]
            finally:
                chunks.close()


def _record_offsets(raw: bytes, fmt: str) -> list[int]:
    """Where each pcap record or pcapng block of a little-endian file starts."""
    out = []
    pos = 24 if fmt == "pcap" else 0
    while pos + 16 <= len(raw):
        out.append(pos)
        if fmt == "pcap":
            pos += 16 + struct.unpack_from("<I", raw, pos + 8)[0]  # header + caplen
        else:
            pos += struct.unpack_from("<I", raw, pos + 4)[0]  # block length
    return out


def test_spans_concatenate_to_the_whole(tmp_path):
    for name in ("local.pcap", "local.pcapng", "http.pcap"):
        path = FIXTURES / name
        ref = _reference(path)
        spans = purepcap.split_capture(path, 500)
        assert len(spans) > 2
        parts = [to_pandas(path, span=s, payload=True, columns=ALL_EXTRAS) for s in spans]
        pd.testing.assert_frame_equal(concat_frames(parts), ref)


def test_simple_packet_blocks_have_no_time(tmp_path):
    path = tmp_path / "spb.pcapng"
    pkt = bytes(build.ether() / build.ipv4(src="10.0.0.1", dst="10.0.0.2") / build.udp(sport=1, dport=2))
    with PcapngWriter(path) as w:
        w.write_simple(pkt)
        w.write_packet(5, pkt)
    df = to_pandas(path)
    assert pd.isna(df["time"][0]) and df["time"][1] == pd.Timestamp(5, unit="ns")


def test_filter_expressions(tmp_path):
    pytest.importorskip("purepcap.filter")
    if not hasattr(purepcap.filter, "offline_matcher"):
        pytest.skip("the filter issue has not landed")
    path = FIXTURES / "http.pcap"
    try:
        df = to_pandas(path, filter="udp")
    except NotImplementedError:
        pytest.skip("the filter issue has not landed")
    assert_matches_records(df, path, filter="udp")
    assert set(df["protocol"]) == {"udp"}
    with purepcap.open(path) as cap:
        assert_matches_records(to_pandas(list(cap), filter="tcp"), path, filter="tcp")


# -- damage: the same error as the container reader, after the same packets ------------
def _error_of(fn):
    try:
        fn()
    except purepcap.PcapError as e:
        return type(e), e.offset, e.frame, str(e)
    return None


@pytest.mark.parametrize("cut", [0, 3, 23, 24, 30, 40, 100, -1, -17])
def test_truncated_file_raises_what_the_reader_raises(cut, tmp_path):
    raw = (FIXTURES / "local.pcap").read_bytes()
    data = raw[:cut] if cut >= 0 else raw[:len(raw) + cut]
    path = tmp_path / "cut.pcap"
    path.write_bytes(data)
    expected = _error_of(lambda: list(purepcap.open(path)))
    got = _error_of(lambda: to_pandas(path, errors="raise"))
    assert got == expected
    if expected is None:
        assert_matches_records(to_pandas(path), path)


def test_lying_length_raises_what_the_reader_raises(tmp_path):
    raw = bytearray((FIXTURES / "local.pcap").read_bytes())
    # the third record's caplen claims 3 GB
    pos = 24
    for _ in range(2):
        pos += 16 + struct.unpack_from("<I", raw, pos + 8)[0]
    struct.pack_into("<I", raw, pos + 8, 3_000_000_000)
    path = tmp_path / "lie.pcap"
    path.write_bytes(bytes(raw))
    expected = _error_of(lambda: list(purepcap.open(path)))
    assert expected is not None
    assert _error_of(lambda: to_pandas(path, errors="raise")) == expected


def test_not_a_capture(tmp_path):
    path = tmp_path / "x.pcap"
    path.write_bytes(b"<html>hello</html>")
    with pytest.raises(purepcap.NotACaptureError):
        to_pandas(path)


# -- edge cases of the fixed-offset path ------------------------------------------------
@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_edge_packets_equal_records(fmt, tmp_path):
    path = tmp_path / f"edge.{fmt}"
    writer = PcapWriter(path) if fmt == "pcap" else PcapngWriter(path)
    with writer as w:
        for i, pkt in enumerate(EDGE_PACKETS):
            w.write_packet(i * 1_000_000_007, pkt, length=len(pkt) + (i % 3) * 100)
    assert_matches_records(to_pandas(path), path)
    assert_matches_records(to_pandas(path, payload=True, columns=ALL_EXTRAS), path, payload=True,
                           columns=ALL_EXTRAS)
    assert_matches_records(to_pandas(path, protocol=("tcp", "sctp")), path, protocol=("tcp", "sctp"))


_ip_fields = st.fixed_dictionaries({
    "proto": st.sampled_from([1, 6, 17, 2, 47, 132, 6, 17]),
    "ihl": st.sampled_from([5, 5, 5, 6, 15, 4, 0]),
    "total": st.one_of(st.none(), st.integers(0, 120)),
    "frag": st.sampled_from([0, 0, 0x4000, 0x2000, 0x0001, 0x3FFF]),
    "ttl": st.integers(0, 255),
    "ident": st.integers(0, 0xFFFF),
    "src": st.binary(min_size=4, max_size=4),
    "dst": st.sampled_from([b"\x0a\x00\x00\x01", b"\xff\xff\xff\xff", b"\x00\x00\x00\x00"]),
    "ethertype": st.sampled_from([0x0800, 0x0800, 0x0800, 0x86DD, 0x8100]),
    "version": st.sampled_from([4, 4, 4, 6]),
})


@st.composite
def _random_packet(draw):
    f = draw(_ip_fields)
    proto = f.pop("proto")
    if proto == 6:
        l4 = tcp_segment(doff=draw(st.integers(0, 15)), flags=draw(st.integers(0, 0x1FF)),
                  payload=draw(st.binary(max_size=40)))
    elif proto == 17:
        l4 = udp_datagram(draw(st.binary(max_size=40)), ulen=draw(st.one_of(st.none(), st.integers(0, 80))))
    else:
        l4 = draw(st.binary(max_size=30))
    pkt = eth_ipv4(proto, l4, tail=draw(st.binary(max_size=6)), **f)
    cut = draw(st.integers(0, len(pkt)))
    return pkt[:cut] if draw(st.booleans()) else pkt


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_random_packet(), min_size=1, max_size=30), st.booleans())
def test_random_packets_equal_records(packets, big_endian):
    buf = io.BytesIO()
    with PcapWriter(buf, byte_order="big" if big_endian else "little", nanosecond=big_endian) as w:
        for i, pkt in enumerate(packets):
            w.write_packet(1_600_000_000_000_000_000 + i * 1001, pkt, length=len(pkt) + i % 2)
        raw = buf.getvalue()
    assert_matches_records(to_pandas(raw, payload=True, columns=ALL_EXTRAS), raw, payload=True,
                           columns=ALL_EXTRAS)
    assert_matches_records(to_pandas(raw, protocol="udp"), raw, protocol="udp")


# -- category codes for integer keys ---------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(st.sampled_from([(np.uint32, 32), (np.uint64, 48)]), st.integers(8, 14), st.integers(1, 3000),
       st.integers(0, 2 ** 32 - 1), st.booleans())
def test_integer_keys_get_the_code_of_their_string(kind, max_bits, n_keys, seed, neighbours):
    """Batches of keys through the hash tables, whichever keys collide or lose their
    slots and however small the tables are capped, get their own string's code."""
    from purepcap._categories import _Coder, _Table

    dtype, bits = kind
    rng = np.random.default_rng(seed)
    pool = np.unique(rng.integers(0, 2 ** bits, n_keys, dtype=np.uint64)).astype(dtype)
    if neighbours:  # as in one subnet
        pool = np.unique(pool[:1] + np.arange(n_keys, dtype=dtype))
    coder = _Coder(_Table(), hex, dtype)
    coder._MAX_BITS = max_bits
    for size in rng.choice([1, 7, 60, 500, 6000], size=8):  # small batches take the dict path
        keys = pool[rng.integers(0, len(pool), size)]
        codes = coder.codes(keys)
        assert [coder.table.names[c] for c in codes.tolist()] == [hex(k) for k in keys.tolist()]
    assert len(coder.table.names) == len(set(coder.table.names))


# -- without pandas ---------------------------------------------------------------------
def test_without_pandas_the_error_names_the_extra():
    code = ("import sys; sys.modules['pandas'] = None\n"
            "import purepcap\n"
            "try:\n"
            "    purepcap.to_pandas('fixtures/local.pcap')\n"
            "except ImportError as e:\n"
            "    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True)
    assert "pip install 'purepcap[pandas]'" in out.stdout


# -- the public corpus ------------------------------------------------------------------
def _corpus_files() -> list[str]:
    if not have_corpus():
        return []
    out = []
    for rel in manifest():
        p = corpus_path(rel)
        if p.is_file() and p.stat().st_size < 4_000_000:
            out.append(rel)
    return sorted(out)


@needs_corpus
def test_corpus_rows_equal_records():
    """Every corpus file purepcap reads: to_pandas equals records() in every column."""
    compared = files = 0
    for rel in _corpus_files():
        path = corpus_path(rel)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                recs = list(purepcap.records(path))
            except purepcap.PcapError:
                recs = None
        if recs is None:
            with pytest.raises(purepcap.PcapError):
                to_pandas(path, errors="raise")
            continue
        df = to_pandas(path, payload=True, columns=ALL_EXTRAS)
        assert_matches_records(df, path, payload=True, columns=ALL_EXTRAS)
        compared += len(df)
        files += 1
    print(f"to_pandas == records on {files} corpus files, {compared} rows")
    assert files > 100 and compared > 10_000



# -- pcapng: the block walker and its hand-over to the container reader ----------------
@pytest.mark.parametrize("byte_order", ["little", "big"])
@pytest.mark.parametrize("second_section", [False, True])
def test_pcapng_variety_equals_records(tmp_path, byte_order, second_section):
    path = tmp_path / "v.pcapng"
    write_pcapng_variety(path, byte_order, second_section)
    df = to_pandas(path, payload=True, columns=ALL_EXTRAS)
    assert_matches_records(df, path, payload=True, columns=ALL_EXTRAS)
    assert set(df["interface"]) == ({0, 1, 2, 3} if second_section else {0, 1, 2})
    raw = path.read_bytes()
    pd.testing.assert_frame_equal(to_pandas(io.BytesIO(raw), payload=True, columns=ALL_EXTRAS), df)
    pd.testing.assert_frame_equal(to_pandas(gzip.compress(raw), payload=True, columns=ALL_EXTRAS), df)


def test_each_row_is_read_by_its_own_link_type(tmp_path):
    """In a batch of several link types, bytes that would be IP under another row's
    link type are not read so: each packet below decodes differently (or not at all)
    as Ethernet, raw IP and Linux cooked."""
    ip_at_16 = bytes(build.ipv4(src="10.9.9.1", dst="10.9.9.2") / build.udp(sport=7, dport=8) / b"sll")
    not_ip = b"\x02" * 12 + b"\x88\xb5" + b"\x08\x00" + ip_at_16  # as cooked: IPv4 at 16
    eth = bytes(build.ether(dst="45:00:00:40:00:00") / build.ipv4(src="10.1.1.1", dst="10.1.1.2")
                / build.tcp(sport=1, dport=2))  # as raw IP: starts 0x45
    cooked = struct.pack("!HHHQH", 0, 1, 6, 0, 0x0800) + ip_at_16
    tag_like = struct.pack("!HHHQH", 0, 1, 6, 0x8100, 0x88B5) + b"\x08\x00" + ip_at_16  # as Ethernet: 802.1Q
    path = tmp_path / "mixed-links.pcapng"
    with PcapngWriter(path, linktype=None) as w:
        for lt in (1, 101, 113):
            w.add_interface(lt)
        for i, (pkt, iface) in enumerate([(not_ip, 0), (eth, 1), (eth, 0), (cooked, 2), (eth, 2),
                                          (not_ip, 2), (cooked, 0), (eth, 1), (tag_like, 2)]):
            w.write_packet(1_700_000_000_000_000_000 + i, pkt, interface=iface)
    df = to_pandas(path, columns=ALL_EXTRAS)
    assert_matches_records(df, path, columns=ALL_EXTRAS)
    assert len(df) >= 3


@pytest.mark.parametrize("byte_order", ["little", "big"])
def test_pcapng_spans_concatenate_to_the_whole(tmp_path, byte_order):
    path = tmp_path / "v.pcapng"
    write_pcapng_variety(path, byte_order, True)
    df = to_pandas(path, payload=True, columns=ALL_EXTRAS)
    spans = purepcap.split_capture(path, 600)
    assert len(spans) > 3
    parts = [to_pandas(path, span=s, payload=True, columns=ALL_EXTRAS) for s in spans]
    pd.testing.assert_frame_equal(concat_frames(parts), df)


def test_pcapng_cut_anywhere_raises_what_the_reader_raises(tmp_path):
    path = tmp_path / "v.pcapng"
    write_pcapng_variety(path, "little", True)
    raw = path.read_bytes()
    cut = tmp_path / "cut.pcapng"
    for n in list(range(0, 200, 3)) + list(range(200, len(raw), 41)):
        cut.write_bytes(raw[:n])
        expected = _error_of(lambda: list(purepcap.open(cut)))
        assert _error_of(lambda: to_pandas(cut, errors="raise")) == expected, n
        if expected is None:
            assert_matches_records(to_pandas(cut), cut)


def test_pcapng_damaged_block_raises_what_the_reader_raises(tmp_path):
    path = tmp_path / "v.pcapng"
    write_pcapng_variety(path, "little", False)
    raw = bytearray(path.read_bytes())
    # the 20th enhanced packet block and the first interface statistics block
    blocks, pos = [], 0
    while pos < len(raw):
        btype, blen = struct.unpack_from("<II", raw, pos)
        blocks.append((btype, pos, blen))
        pos += blen
    epb = [b for b in blocks if b[0] == 6][19]
    isb = [b for b in blocks if b[0] == 5][0]
    damage = [(epb, 8, 7), (epb, 20, 5000)]  # interface id, caplen
    for block, shorter in ((epb, 28), (isb, 20)):  # 28: under an EPB's least, 32
        blen = block[2]
        damage += [(block, blen - 4, blen + 4)]  # the trailing length alone
        # block lengths: not a multiple of 4, under 12, shorter, over the bound
        damage += [(block, 4, v) for v in (13, 0, 8, shorter, 0x7FFFFFF0)]
    for (btype, at, _), field, value in damage:
        bad = bytearray(raw)
        struct.pack_into("<I", bad, at + field, value)
        damaged = tmp_path / "bad.pcapng"
        damaged.write_bytes(bytes(bad))
        expected = _error_of(lambda: list(purepcap.open(damaged)))  # noqa: B023
        assert expected is not None, (btype, field, value)
        assert _error_of(lambda: to_pandas(damaged, errors="raise")) == expected, (btype, field, value)  # noqa: B023


class _Counted(io.BytesIO):
    """Bytes as a file that counts what is read from it."""

    taken = 0

    def read(self, n=-1):
        data = super().read(n)
        self.taken += len(data)
        return data

    def readinto(self, b):
        got = super().readinto(b)
        self.taken += got
        return got


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_a_lying_length_is_judged_where_it_stands(fmt):
    """A record or block claiming more than the format's bound goes to the reader at
    once: the batch walk does not read the rest of the file hoping to complete it."""
    out = io.BytesIO()
    with (PcapWriter if fmt == "pcap" else PcapngWriter)(out) as w:
        for i in range(3):
            w.write_packet(1_700_000_000_000_000_000 + i, EDGE_PACKETS[0])
    if fmt == "pcap":
        liar = struct.pack("<IIII", 1, 0, 0x7FFFFFF0, 0x7FFFFFF0)
    else:
        liar = struct.pack("<IIIIIII", 6, 0x7FFFFFF0, 0, 0, 0, 0x7FFFFFF0, 0x7FFFFFF0)
    raw = out.getvalue() + liar + bytes(48 << 20)
    expected = _error_of(lambda: list(purepcap.open(_Counted(raw))))
    assert expected is not None and expected[0] is purepcap.DamagedError
    stream = _Counted(raw)
    assert _error_of(lambda: to_pandas(stream, errors="raise")) == expected
    assert stream.taken < 12 << 20


class _Pipe(io.RawIOBase):
    """A non-seekable stream that hands out at most 1000 bytes a read."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        n = min(len(b), 1000, len(self._data))
        b[:n] = self._data[:n]
        self._data = self._data[n:]
        return n


@pytest.mark.parametrize("name", ["local.pcap", "local.pcapng"])
@pytest.mark.parametrize("wrap", ["pipe", "gzip"])
def test_damage_in_streams_is_reported_as_the_reader_reports_it(tmp_path, name, wrap):
    raw = (FIXTURES / name).read_bytes()
    lying = bytearray(raw)
    if name.endswith(".pcap"):
        struct.pack_into("<I", lying, 24 + 8, 3_000_000_000)  # the first record's caplen
    else:
        struct.pack_into("<I", lying, len(raw) - 40, 99)  # somewhere in the last block
    errors = []
    for data in (raw[:len(raw) - 5], raw[:len(raw) // 2], bytes(lying)):
        def source(d=data):
            return _Pipe(d) if wrap == "pipe" else gzip.compress(d)
        expected = _error_of(lambda: list(purepcap.open(source())))  # noqa: B023
        assert _error_of(lambda: to_pandas(source(), errors="raise")) == expected  # noqa: B023
        errors.append(expected)
        if expected is None:
            assert_matches_records(to_pandas(source()), source())
    assert errors[0] is not None and errors[0][0] is purepcap.TruncatedError


# -- every link type the vectorised path reads, against records() ---------------------
def _v6(nh_payload: bytes, nh: int, plen: int | None = None, version: int = 6) -> bytes:
    return struct.pack("!IHBB16s16s", version << 28, len(nh_payload) if plen is None else plen, nh, 63,
                       bytes.fromhex("20010db8" + "00" * 11 + "01"), bytes(16)) + nh_payload


LINK_EDGES = {
    1: [  # Ethernet: IPv6, VLAN tags (one, 802.1ad, stacked), the nibble/ethertype mismatches
        b"\x02" * 12 + b"\x86\xdd" + _v6(tcp_segment(payload=b"six"), 6),
        b"\x02" * 12 + b"\x86\xdd" + _v6(udp_datagram(b"v6 udp", ulen=9), 17),
        b"\x02" * 12 + b"\x86\xdd" + _v6(b"\x80\x00\x00\x00echo", 58),
        b"\x02" * 12 + b"\x86\xdd" + _v6(b"\x80\x00", 58),
        b"\x02" * 12 + b"\x86\xdd" + _v6(tcp_segment(), 6, plen=0),
        b"\x02" * 12 + b"\x86\xdd" + _v6(tcp_segment(), 6, plen=10),
        b"\x02" * 12 + b"\x86\xdd" + _v6(b"\x06\x00" + bytes(6) + tcp_segment(), 0),  # hop-by-hop first
        b"\x02" * 12 + b"\x86\xdd" + _v6(tcp_segment(), 6, version=4),
        b"\x02" * 12 + b"\x08\x00" + _v6(udp_datagram(b"v6 under 0800"), 17),
        b"\x02" * 12 + b"\x81\x00\x20\x07\x86\xdd" + _v6(udp_datagram(b"tagged v6"), 17),
        b"\x02" * 12 + b"\x88\xa8\x00\x05\x08\x00" + eth_ipv4(17, udp_datagram(b"ad"))[14:],
        b"\x02" * 12 + b"\x88\xa8\x00\x05\x81\x00\x00\x06\x08\x00" + eth_ipv4(17, udp_datagram(b"qinq"))[14:],
        b"\x02" * 12 + b"\x81\x00\x00\x05\x08\x00" + eth_ipv4(6, tcp_segment())[14:40],
        b"\x02" * 12 + b"\x81\x00\x00\x05",
    ],
    101: [eth_ipv4(6, tcp_segment(payload=b"raw"))[14:], _v6(udp_datagram(b"raw6"), 17), b"\x45", b""],
    228: [eth_ipv4(17, udp_datagram(b"ipv4 link"))[14:], _v6(udp_datagram(b"v6 on ipv4 link"), 17)],
    229: [_v6(tcp_segment(payload=b"v6 link"), 6), eth_ipv4(17, udp_datagram(b"v4 on v6 link"))[14:]],
    113: [b"\x00\x00\x00\x01\x00\x06" + bytes(8) + b"\x08\x00" + eth_ipv4(6, tcp_segment(payload=b"sll"))[14:],
          b"\x00\x00\x00\x01\x00\x06" + bytes(8) + b"\x86\xdd" + _v6(udp_datagram(b"sll6"), 17),
          b"\x00\x00\x03\x38\x00\x06" + bytes(8) + b"\x08\x00" + eth_ipv4(6, tcp_segment())[14:],  # netlink
          b"\x00\x00\x00\x01\x00\x06" + bytes(8) + b"\x08\x06" + bytes(28)],
    276: [b"\x08\x00\x00\x00" + b"\x00\x00\x00\x02\x00\x01\x00\x06" + bytes(8) + eth_ipv4(17, udp_datagram(b"sll2"))[14:],
          b"\x86\xdd\x00\x00" + b"\x00\x00\x00\x02\x00\x01\x00\x06" + bytes(8) + _v6(tcp_segment(), 6)],
    0: [b"\x02\x00\x00\x00" + eth_ipv4(17, udp_datagram(b"null"))[14:]],
}


def test_every_link_type_equals_records(tmp_path):
    path = tmp_path / "links.pcapng"
    with PcapngWriter(path, linktype=None) as w:
        ifaces = {lt: w.add_interface(lt) for lt in LINK_EDGES}
        for k in range(3):  # interleaved, and cut short on the third round
            for lt, packets in LINK_EDGES.items():
                for i, pkt in enumerate(packets):
                    data = pkt if k < 2 else pkt[:max(len(pkt) - 1 - i, 0)]
                    w.write_packet(1_000_000 * k + i, data, interface=ifaces[lt])
    for kw in ({}, {"payload": True, "columns": ALL_EXTRAS}, {"protocol": ("udp", "icmpv6")}):
        assert_matches_records(to_pandas(path, **kw), path, **kw)
    df = to_pandas(path, columns=["ip_version", "vlan", "eth_src"])
    assert set(df["ip_version"]) == {4, 6} and df["vlan"].notna().any() and df["eth_src"].isna().any()



@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pst.captures(packets=pst.packets(link=("ether", "vlan", "sll", "sll2", "raw", "null", "mpls"),
                                        ip=("ipv4", "ipv6", "arp")), max_packets=12))
def test_generated_captures_equal_records(case):
    data = case.data
    assert_matches_records(to_pandas(data, payload=True, columns=ALL_EXTRAS), data, payload=True,
                           columns=ALL_EXTRAS)


@pytest.mark.parametrize("kw", [{"version": (2, 3)}, {"fcs_length": 4}, {"modified": True},
                                {"byte_order": "big", "nanosecond": True}])
def test_every_pcap_variant_equals_records(kw):
    buf = io.BytesIO()
    with PcapWriter(buf, **kw) as w:
        for i, pkt in enumerate(EDGE_PACKETS):
            w.write_packet(1_600_000_000_000_000_000 + i * 1000, pkt, length=len(pkt) + i % 3)
        raw = buf.getvalue()
    df = to_pandas(raw, payload=True, columns=ALL_EXTRAS)
    assert len(df) > 20
    assert_matches_records(df, raw, payload=True, columns=ALL_EXTRAS)
