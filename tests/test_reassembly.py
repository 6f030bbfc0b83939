# reassemble=True (issue 18): TLS hellos and HTTP request headers split over TCP segments.
# The reference for a split message is the same message sent whole, read by the
# single-packet decoders (which tests/test_appfields.py and the tshark oracle check), so
# every property here asks: does splitting, interleaving and retransmitting change what
# the first frame of the message says? And do records(), to_pandas() and flows() agree.
from __future__ import annotations

import random
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_appfields import (
    SAMPLES,
    alpn_ext,
    client_hello,
    needs_pandas,
    record,
    server_hello,
    sni_ext,
    tls_ext,
    u16_list_ext,
)

import purepcap
from purepcap import PcapError
from purepcap import _reassembly as reassembly
from purepcap import build as b
from purepcap._appfields import APP_FIELDS, app_fields
from purepcap._reassembly import Reassembler
from purepcap.format import PcapWriter

SERVER, CLIENT = "10.9.0.1", "10.9.0.2"


def tcp(src: str, dst: str, sport: int, dport: int, seq: int, flags: str = "PA", data: bytes = b"",
        vlan: int | None = None) -> bytes:
    return bytes(b.Ether(vlans=[vlan] if vlan is not None else []) / b.IPv4(src=src, dst=dst)
                 / b.TCP(sport, dport, seq=seq & 0xFFFFFFFF, flags=flags) / data)


def write(path, frames: list[bytes]) -> str:
    with PcapWriter(str(path)) as w:
        for i, frame in enumerate(frames):
            w.write_packet(1_700_000_000_000_000_000 + i * 1000, frame)
    return str(path)


def app_rows(path: str, reassemble: bool = True) -> list[list]:
    return [[r[f] for f in APP_FIELDS]
            for r in purepcap.records(path, fields=APP_FIELDS, reassemble=reassemble)]


def frame_rows(path: str, reassemble: bool = True) -> list[list]:
    df = purepcap.to_pandas(path, columns=list(APP_FIELDS), reassemble=reassemble)
    return [list(t) for t in zip(*(df[f].tolist() for f in APP_FIELDS))]  # noqa: B905


# -- messages ---------------------------------------------------------------------------------
@st.composite
def hellos(draw) -> tuple[bytes, str]:
    """(a ClientHello or ServerHello handshake message, "client"/"server"); some as big as
    a post-quantum ClientHello (a 1,200-byte key share) or bigger."""
    if draw(st.booleans()):
        exts = [sni_ext(draw(st.text("abcxyz.-", min_size=1, max_size=30)))]
        if draw(st.booleans()):
            exts.append(alpn_ext(draw(st.lists(st.sampled_from([b"h2", b"http/1.1", b"h3"]), min_size=1,
                                               max_size=3))))
        exts.append(u16_list_ext(10, [0x11EC, 29, 23]))
        exts.append(u16_list_ext(13, [0x0403, 0x0804]))
        exts.append(u16_list_ext(43, [0x0304, 0x0303], 1))
        exts.append(tls_ext(51, struct.pack("!HHH", 0, 0x11EC, 0) + bytes(draw(st.integers(0, 3000)))))
        order = draw(st.permutations(range(len(exts))))
        ciphers = draw(st.lists(st.sampled_from([0x1301, 0x1302, 0x1303, 0xC02B, 0x0A0A]), min_size=1, max_size=6))
        return client_hello(0x0303, ciphers, b"".join(exts[i] for i in order), bytes(32)), "client"
    return server_hello(0x0303, 0x1301, alpn_ext([b"h2"]) + bytes(draw(st.integers(0, 2000)))), "server"


@st.composite
def requests(draw) -> bytes:
    method = draw(st.sampled_from([b"GET", b"POST", b"OPTIONS", b"M-SEARCH"]))
    uri = b"/" + draw(st.binary(min_size=0, max_size=300).map(lambda x: x.hex().encode()))
    lines = [method + b" " + uri + b" HTTP/1.1"]
    headers = [b"Host: " + draw(st.sampled_from([b"example.com", b"a.b.example:8080"])),
               b"User-Agent: " + b"Mozilla/5.0 " * draw(st.integers(0, 40)) + b"x"]
    headers += [b"X-Pad-%d: %s" % (i, b"p" * draw(st.integers(0, 200))) for i in range(draw(st.integers(0, 4)))]
    order = draw(st.permutations(range(len(headers))))
    end = draw(st.sampled_from([b"\r\n", b"\n"]))
    return end.join(lines + [headers[i] for i in order]) + end + end + draw(st.sampled_from([b"", b"body=1"]))


def records_of(message: bytes, sizes: list[int]) -> bytes:
    """A handshake message as TLS records of the given body sizes (the last takes the rest)."""
    out = b""
    pos = 0
    for size in sizes + [len(message)]:
        chunk = message[pos:pos + size] if size < len(message) - pos else message[pos:]
        if not chunk:
            break
        out += record(chunk)
        pos += len(chunk)
    return out


@st.composite
def conversations(draw, n: int) -> tuple[list[bytes], list[dict]]:
    """``n`` connections, each with one message sent split (and maybe spread over several
    TLS records), with exact retransmissions, interleaved with each other and with noise.
    Returns the frames and, per message, where its segments went and what it says whole."""
    rng = draw(st.randoms(use_true_random=False))
    streams: list[list[tuple[bytes, tuple]]] = []
    messages: list[dict] = []
    for c in range(n):
        kind = draw(st.sampled_from(["tls", "http"]))
        cport = 40000 + c
        sport = 443 if kind == "tls" else 80
        isn_c, isn_s = draw(st.integers(0, 0xFFFFFFFF)), draw(st.integers(0, 0xFFFFFFFF))
        vlan = draw(st.sampled_from([None, 7]))
        if kind == "tls":
            hello, side = draw(hellos())
            whole = record(hello)
            sent = records_of(hello, draw(st.lists(st.integers(1, 700), max_size=3))) if draw(st.booleans()) \
                else whole
            lowest = 1
        else:
            side = "client"
            whole = sent = draw(requests())
            lowest = sent.index(b" ") + 1  # (the method and its space open the message)
        src, dst, sp, dp, isn = ((CLIENT, SERVER, cport, sport, isn_c) if side == "client"
                                 else (SERVER, CLIENT, sport, cport, isn_s))
        expected = app_fields(6, sp, dp, whole)
        assert expected is not None
        cuts = sorted(draw(st.sets(st.integers(lowest, len(sent) - 1), max_size=8))) if len(sent) > lowest else []
        bounds = [0] + cuts + [len(sent)]
        frames = [(tcp(CLIENT, SERVER, cport, sport, isn_c, "S", vlan=vlan), ("hs",)),
                  (tcp(SERVER, CLIENT, sport, cport, isn_s, "SA", vlan=vlan), ("hs",)),
                  (tcp(CLIENT, SERVER, cport, sport, isn_c + 1, "A", vlan=vlan), ("hs",))]
        segs = [(tcp(src, dst, sp, dp, isn + 1 + lo, "PA", sent[lo:hi], vlan=vlan), ("seg", c, k))
                for k, (lo, hi) in enumerate(zip(bounds, bounds[1:]))]  # noqa: B905
        for k in range(len(segs)):
            if draw(st.integers(0, 4)) == 0:  # an exact retransmission, somewhere after its original
                at = segs.index(next(s for s in segs if s[1] == ("seg", c, k)))
                segs.insert(draw(st.integers(at + 1, len(segs))), (segs[at][0], ("retx", c)))
        streams.append(frames + segs)
        messages.append({"expected": expected, "segments": len(bounds) - 1, "kind": kind, "side": side,
                         "flow": (cport, sport)})
    noise = [(tcp("10.8.0.1", "10.8.0.2", 5000, 6000, i * 100, "PA", bytes(rng.randrange(256) for _ in range(40))),
              ("noise",)) for i in range(draw(st.integers(0, 5)))]
    noise += [(bytes(b.Ether() / b.IPv4() / b.UDP(5353, 53) / b"\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
                     b"\x01a\x00\x00\x01\x00\x01"), ("noise",)) for _ in range(draw(st.integers(0, 2)))]
    streams += [[x] for x in noise]
    out: list[tuple[bytes, tuple]] = []
    while streams:
        s = streams[rng.randrange(len(streams))]
        out.append(s.pop(0))
        if not s:
            streams.remove(s)
    frames = [f for f, _ in out]
    for c, m in enumerate(messages):
        where = [i for i, (_, role) in enumerate(out) if role[:2] == ("seg", c)]
        m["first"], m["others"] = where[0], where[1:]
        m["retransmissions"] = [i for i, (_, role) in enumerate(out) if role == ("retx", c)]
    return frames, messages


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                                  HealthCheck.function_scoped_fixture])
@given(conversations(2))
def test_split_messages_read_as_whole_by_records_and_flows(tmp_path, conv):
    frames, messages = conv
    path = write(tmp_path / "split.pcap", frames)
    rows = app_rows(path)
    for m in messages:
        assert rows[m["first"]] == list(m["expected"]), m
        for i in m["others"] + m["retransmissions"]:  # the segments the message took carry
            assert rows[i] == [None] * len(APP_FIELDS)  # nothing of their own, nor its copies
    # flows() take the value of the flow's first frame that has one
    names = ["ja3", "ja4", "ja3s", "server_name", "http_user_agent"]
    got = {(f["src_port"], f["dst_port"]): f for f in purepcap.flows(path, fields=names, reassemble=True)}
    for m in messages:
        f = got[m["flow"]]
        want = dict(zip(APP_FIELDS, m["expected"]))  # noqa: B905
        assert f["ja3"] == want["ja3"] and f["ja4"] == want["ja4"] and f["ja3s"] == want["ja3s"]
        assert f["server_name"] == (want["tls_sni"] or want["http_host"])
        assert f["http_user_agent"] == want["http_user_agent"]


@needs_pandas
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                                  HealthCheck.function_scoped_fixture])
@given(conversations(2))
def test_split_messages_read_alike_by_records_to_pandas_and_arrow(tmp_path, monkeypatch, conv):
    pytest.importorskip("pyarrow")
    from purepcap import _batches
    from purepcap.arrow import arrow_tables

    frames, _ = conv
    path = write(tmp_path / "split.pcap", frames)
    rows = app_rows(path)
    # to_pandas's fix-up equals records' held-back rows, row for row
    assert frame_rows(path) == rows
    # also when a message runs over many batches (tiny ones), and in parts (Arrow row groups)
    monkeypatch.setattr(_batches.packet_batches, "__defaults__", (300,))
    with purepcap.open(path) as cap:
        df = purepcap.to_pandas(cap, columns=list(APP_FIELDS), reassemble=True)
    assert [list(t) for t in zip(*(df[f].tolist() for f in APP_FIELDS))] == rows  # noqa: B905
    with purepcap.open(path) as cap:
        parts = [t.select(list(APP_FIELDS)).to_pylist()
                 for t in arrow_tables(cap, columns=list(APP_FIELDS), part_rows=2, reassemble=True)]
    assert [[None if v is None else tuple(v) if isinstance(v, list) else v for v in r.values()]
            for part in parts for r in part] == [[tuple(v) if isinstance(v, list) else v for v in r] for r in rows]


def test_off_is_todays_behaviour(tmp_path):
    hello = record(client_hello(extensions=sni_ext("off.example") + bytes(2000)))
    frames = [tcp(CLIENT, SERVER, 40000, 443, 1, data=hello[:900]), tcp(CLIENT, SERVER, 40000, 443, 901, data=hello[900:])]
    path = write(tmp_path / "off.pcap", frames)
    assert app_rows(path, False) == [[None] * len(APP_FIELDS)] * 2
    on = app_rows(path)
    assert on[0][APP_FIELDS.index("tls_sni")] == "off.example" and on[1] == [None] * len(APP_FIELDS)
    # and it changes nothing without application fields
    assert list(purepcap.records(path, reassemble=True)) == list(purepcap.records(path))


@needs_pandas
def test_off_is_todays_behaviour_in_to_pandas(tmp_path):
    hello = record(client_hello(extensions=sni_ext("off.example") + bytes(2000)))
    frames = [tcp(CLIENT, SERVER, 40000, 443, 1, data=hello[:900]), tcp(CLIENT, SERVER, 40000, 443, 901, data=hello[900:])]
    path = write(tmp_path / "off.pcap", frames)
    for reassemble in (False, True):
        assert frame_rows(path, reassemble) == app_rows(path, reassemble)
    assert frame_rows(path, True) != frame_rows(path, False)


# -- sequence rules ------------------------------------------------------------------------------
HELLO = record(client_hello(extensions=sni_ext("seq.example") + tls_ext(51, bytes(1500))))


def feed(joiner: Reassembler, segments: list[tuple[int, bytes]], key="k", syn_first: bool = False) -> list:
    out = []
    for frame, (seq, data) in enumerate(segments, 1):
        done = joiner.segment(frame, frame, key, 40000, 443, seq, syn_first and frame == 1, data)
        if done is not None:
            out.append(done)
    return out


def test_gap_abandons_and_overlap_is_trimmed():
    j = Reassembler()
    assert feed(j, [(0, HELLO[:500]), (600, HELLO[600:])]) == []  # a gap: abandoned
    assert len(j) == 0 and j.abandoned == 1
    j = Reassembler()
    (done,) = feed(j, [(0, HELLO[:500]), (300, HELLO[300:800]), (800, HELLO[800:])])
    assert done[0] == 1 and done[2] == [2, 3]
    assert done[1] == app_fields(6, 40000, 443, HELLO)
    j = Reassembler()  # sequence numbers that wrap, and data carried on the SYN
    (done,) = feed(j, [(0xFFFFFF00 - 1, HELLO[:300]), (0xFFFFFF00 + 300 - 0x100000000, HELLO[300:])],
                   syn_first=True)
    assert done[1] == app_fields(6, 40000, 443, HELLO)


def test_hello_over_several_records_in_one_segment():
    message = HELLO[5:]
    sent = records_of(message, [100, 100])
    assert app_fields(6, 40000, 443, sent) is None  # the single-packet reader cannot
    (done,) = feed(Reassembler(), [(0, sent)])
    assert done == (1, app_fields(6, 40000, 443, HELLO), [])


def test_not_opened():
    j = Reassembler()
    # whole messages, HTTP/0.9, application data, a request on a port whose reader is not HTTP
    for data, dport in [(HELLO, 443), (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 80), (b"GET /\r\n", 80),
                        (b"\x17\x03\x03\x10\x00" + bytes(100), 443), (b"GET / HTTP/1.1\r\nHost: a", 22),
                        (HELLO[:100], 80)]:
        assert j.segment(1, 1, (data, dport), 40000, dport, 0, False, data) is None
    assert len(j) == 0


def test_http_header_block_needs_its_blank_line():
    req = b"GET /a HTTP/1.1\r\nHost: h.example\r\nUser-Agent: ua\r\n\r\n"
    for cut in range(4, len(req)):
        j = Reassembler()
        first = j.segment(1, 1, "k", 40000, 80, 0, False, req[:cut])
        if req[:cut].endswith(b"\r\n\r\n"):
            assert first is None and len(j) == 0
            continue
        done = j.segment(2, 2, "k", 40000, 80, cut, False, req[cut:])
        assert done == (1, app_fields(6, 40000, 80, req), [2]), cut


# -- bounds --------------------------------------------------------------------------------------
def held(j: Reassembler) -> int:
    return sum(len(m.data) + len(m.hs) for m in j._pending.values())


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 1 << 20), st.lists(st.tuples(st.integers(0, 300), st.integers(1, 4000)), max_size=400))
def test_a_flood_of_unfinished_messages_stays_under_the_caps(seed, steps):
    j = Reassembler(max_pending_bytes=1 << 16, max_pending=50, max_span=200)
    big = record(client_hello(extensions=tls_ext(51, bytes(60000))))
    req = b"POST /" + b"x" * 70000
    nexts: dict[int, int] = {}
    for frame, (conn, size) in enumerate(steps, 1):
        body = big if conn % 2 else req
        at = nexts.get(conn, 0)
        if at >= len(body):
            at = 0
        j.segment(frame, frame, conn, 40000 + conn, 443 if conn % 2 else 80, at, False, body[at:at + size])
        nexts[conn] = at + size
        assert j.pending_bytes == held(j) <= 1 << 16
        assert len(j) <= 50
        oldest = j.oldest()
        assert oldest is None or frame - oldest <= 200


def test_records_holds_back_at_most_max_span_rows(monkeypatch):
    monkeypatch.setattr(reassembly, "MAX_SPAN", 50)
    frames = [tcp(CLIENT, SERVER, 40000, 443, 0, data=HELLO[:600])]
    frames += [bytes(b.Ether() / b.IPv4() / b.UDP(1, 2) / b"x")] * 300
    pulled = 0

    def packets():
        nonlocal pulled
        with purepcap.open(write_bytes(frames)) as cap:
            for p in cap:
                pulled += 1
                yield p

    rows = purepcap.records(packets(), fields=["ja3"], reassemble=True)
    first = next(rows)
    assert first["frame"] == 1 and first["ja3"] is None
    assert pulled <= 53
    assert sum(1 for _ in rows) == 300


def write_bytes(frames: list[bytes]) -> bytes:
    import io

    buf = io.BytesIO()
    with PcapWriter(buf) as w:
        for i, frame in enumerate(frames):
            w.write_packet(i * 1000, frame)
    return buf.getvalue()


def test_a_message_over_the_cap_is_abandoned():
    j = Reassembler(max_message=1200)
    assert feed(j, [(0, HELLO[:1000]), (1000, HELLO[1000:])]) == []
    assert len(j) == 0 and j.abandoned == 1


# -- hostile segment streams --------------------------------------------------------------------
pieces = st.sampled_from(SAMPLES + [HELLO, records_of(HELLO[5:], [7, 300]), b"GET /x HTTP/1.1\r\nHost: y"]).flatmap(
    lambda s: st.tuples(st.integers(0, len(s)), st.integers(0, len(s))).map(lambda ab: s[min(ab):max(ab)]))
mutated = st.tuples(pieces, st.lists(st.tuples(st.integers(0, 4000), st.integers(0, 255)), max_size=4)).map(
    lambda pm: bytes(_mutate(*pm)))


def _mutate(data: bytes, changes) -> bytearray:
    out = bytearray(data)
    for at, value in changes:
        if out:
            out[at % len(out)] = value
    return out


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 6000), st.booleans(), mutated | st.binary(max_size=60)),
                max_size=60))
def test_hostile_streams_never_raise_and_stay_bounded(steps):
    j = Reassembler(max_pending_bytes=20000, max_pending=3, max_span=30)
    for frame, (conn, seq, syn, data) in enumerate(steps, 1):
        done = j.segment(frame, frame, conn, 40000, (443, 80, 8080, 5000)[conn], seq, syn, data)
        if done is not None:
            first, values, others = done
            assert len(values) == len(APP_FIELDS) and first <= frame and all(first < o <= frame for o in others)
        assert j.pending_bytes == held(j) <= 20000 and len(j) <= 3


@needs_pandas
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 3000), st.sampled_from(["PA", "S", "A", "FA"]),
                          mutated), min_size=1, max_size=25))
def test_hostile_captures_agree_on_records_and_to_pandas(tmp_path, steps):
    frames = [tcp(CLIENT, SERVER, 40000 + c, (443, 80, 4433)[c], seq, flags, data, vlan=7 if c == 2 else None)
              for c, seq, flags, data in steps]
    path = write(tmp_path / "hostile.pcap", frames)
    rows = app_rows(path)
    assert frame_rows(path) == rows
    assert len(rows) == len(frames)


def test_damaged_capture_gives_held_rows_then_the_error(tmp_path):
    frames = [tcp(CLIENT, SERVER, 40000, 443, 0, data=HELLO[:600]), tcp(CLIENT, SERVER, 5, 6, 0, data=b"x")]
    data = write_bytes(frames)[:-10]  # the last record cut short
    got = []
    with pytest.raises(PcapError):
        for r in purepcap.records(data, fields=["ja3"], reassemble=True):
            got.append(r["frame"])
    assert got == [1]


def test_random_split_points_of_a_corpus_like_hello_are_stable():
    # one fixed big hello, every split into two at 1..len-1 (a cheap exhaustive check)
    rng = random.Random(5)
    want = app_fields(6, 40000, 443, HELLO)
    for cut in rng.sample(range(1, len(HELLO)), 200):
        j = Reassembler()
        assert j.segment(1, 1, "k", 40000, 443, 10, False, HELLO[:cut]) is None
        assert j.segment(2, 2, "k", 40000, 443, 10 + cut, False, HELLO[cut:]) == (1, want, [2])


# -- the other ways in --------------------------------------------------------------------------
def split_capture(tmp_path) -> tuple[str, str]:
    hello = record(client_hello(extensions=sni_ext("ways.example") + tls_ext(51, bytes(1800))))
    frames = [tcp(CLIENT, SERVER, 40000, 443, 1, data=hello[:1000]),
              bytes(b.Ether() / b.IPv4() / b.UDP(1, 2) / b"x"),
              tcp(CLIENT, SERVER, 40000, 443, 1001, data=hello[1000:])]
    return write(tmp_path / "ways.pcap", frames), "ways.example"


def test_row_keys_keep_their_order(tmp_path):
    path, _ = split_capture(tmp_path)
    for kw in ({"fields": ["vlan", "ja3", "ttl"], "payload": True}, {"fields": ["tls_sni"]}):
        plain = list(purepcap.records(path, **kw))
        joined = list(purepcap.records(path, **kw, reassemble=True))
        assert [list(r) for r in joined] == [list(r) for r in plain]


def test_intake_reads_whole_files_when_reassembling(tmp_path):
    pytest.importorskip("intake")
    from purepcap.intake_source import PcapSource

    path, name = split_capture(tmp_path)
    cut = PcapSource(path, columns=["tls_sni"], partition_size=100)
    whole = PcapSource(path, columns=["tls_sni"], partition_size=100, reassemble=True)
    assert cut.discover()["npartitions"] > 1 and whole.discover()["npartitions"] == 1
    assert whole.read()["tls_sni"].tolist() == [name, None, None]
    assert cut.read()["tls_sni"].tolist() == [None, None, None]


def test_cli_convert_reassembles(tmp_path):
    import csv
    import io
    import subprocess
    import sys

    path, name = split_capture(tmp_path)
    for out, extra in (("plain.csv", []), ("joined.csv", ["--reassemble"])):
        r = subprocess.run([sys.executable, "-m", "purepcap", "convert", path, str(tmp_path / out),
                            "--columns", "tls_sni", *extra], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    read = [[row["tls_sni"] for row in csv.DictReader(io.StringIO((tmp_path / f).read_text()))]
            for f in ("plain.csv", "joined.csv")]
    assert read == [["", "", ""], [name, "", ""]]


def test_intake_cuts_files_when_no_application_column_is_asked(tmp_path):
    pytest.importorskip("intake")
    from purepcap.intake_source import PcapSource

    path, _ = split_capture(tmp_path)
    assert PcapSource(path, columns=["ttl"], partition_size=100, reassemble=True).discover()["npartitions"] > 1
