# The application-field decoders (DNS, HTTP/1.x, TLS) on messages built here field by
# field, so each expected value comes from the builder's inputs and not from the parser;
# JA4 against the ja4plus reference package; hostile bytes (random and mutated
# messages) give None or values of the promised types, in bounded time.
from __future__ import annotations

import hashlib
import importlib.util
import random
import struct

import pytest
from _timing import assert_cpu_under
from hypothesis import given
from hypothesis import strategies as st

from purepcap._appfields import APP_FIELDS, HTTP_PORTS, app_fields, decode_candidate, is_candidate
from purepcap._dns import LOOPS, TOO_LONG, dns_fields
from purepcap._http import http_fields, looks_like_http
from purepcap._tls import is_grease, looks_like_tls, tls_fields

GREASE = [0x0A0A + 0x1010 * i for i in range(16)]


# -- builders ---------------------------------------------------------------------------------
def dns_name(name: str) -> bytes:
    out = b""
    for label in name.split(".") if name else []:
        raw = label.encode()
        out += bytes([len(raw)]) + raw
    return out + b"\0"


def dns_message(ident=0x1234, response=False, rcode=0, questions=(("example.com", 1),), answers=(),
                authority=()) -> bytes:
    """answers/authority: (name, type, rdata bytes)."""
    flags = (0x8180 | rcode) if response else 0x0100
    out = struct.pack("!HHHHHH", ident, flags, len(questions), len(answers), len(authority), 0)
    for name, qtype in questions:
        out += dns_name(name) + struct.pack("!HH", qtype, 1)
    for name, rtype, rdata in tuple(answers) + tuple(authority):
        out += dns_name(name) + struct.pack("!HHIH", rtype, 1, 300, len(rdata)) + rdata
    return out


def tls_ext(etype: int, body: bytes) -> bytes:
    return struct.pack("!HH", etype, len(body)) + body


def sni_ext(name: str) -> bytes:
    raw = name.encode()
    entry = b"\0" + struct.pack("!H", len(raw)) + raw
    return tls_ext(0, struct.pack("!H", len(entry)) + entry)


def alpn_ext(protocols) -> bytes:
    body = b"".join(bytes([len(p)]) + p for p in protocols)
    return tls_ext(16, struct.pack("!H", len(body)) + body)


def u16_list_ext(etype: int, values, length_bytes: int = 2) -> bytes:
    body = b"".join(struct.pack("!H", v) for v in values)
    head = struct.pack("!H", len(body)) if length_bytes == 2 else bytes([len(body)])
    return tls_ext(etype, head + body)


def record(handshakes: bytes, version: int = 0x0301) -> bytes:
    return struct.pack("!BHH", 22, version, len(handshakes)) + handshakes


def client_hello(version=0x0303, ciphers=(0x1301, 0x002F), extensions=b"", session_id=b"") -> bytes:
    body = (struct.pack("!H", version) + bytes(32) + bytes([len(session_id)]) + session_id
            + struct.pack("!H", 2 * len(ciphers)) + b"".join(struct.pack("!H", c) for c in ciphers)
            + b"\x01\x00")
    if extensions is not None:
        body += struct.pack("!H", len(extensions)) + extensions
    return b"\x01" + len(body).to_bytes(3, "big") + body


def server_hello(version=0x0303, cipher=0x1301, extensions=b"") -> bytes:
    body = struct.pack("!H", version) + bytes(32) + b"\x00" + struct.pack("!H", cipher) + b"\x00"
    body += struct.pack("!H", len(extensions)) + extensions
    return b"\x02" + len(body).to_bytes(3, "big") + body


def fields(values) -> dict:
    return dict(zip(APP_FIELDS, values))  # noqa: B905 - Python 3.9 has no strict=


# -- DNS ------------------------------------------------------------------------------------------
def test_dns_query_and_response():
    q = dns_fields(dns_message(0xBEEF, questions=(("www.Example.org", 28),)))
    assert q == (0xBEEF, "www.Example.org", 28, None, ())
    r = dns_message(7, response=True, rcode=3, questions=(("a.b", 1),),
                    answers=(("a.b", 1, bytes([192, 0, 2, 1])), ("a.b", 5, dns_name("c.d")),
                             ("a.b", 28, bytes(15) + b"\x01")),
                    authority=(("a.b", 1, bytes([198, 51, 100, 7])),))
    assert dns_fields(r) == (7, "a.b", 1, 3, ("192.0.2.1", "::1"))


def test_dns_over_tcp_has_a_length_prefix():
    msg = dns_message(99, questions=(("x.y", 15),))
    assert dns_fields(struct.pack("!H", len(msg)) + msg, tcp=True) == (99, "x.y", 15, None, ())
    assert app_fields(6, 50000, 53, struct.pack("!H", len(msg)) + msg)[:3] == (99, "x.y", 15)


def test_dns_compression_root_and_markers():
    # the answer's name points at the question's; then a root query
    msg = dns_message(1, response=True, questions=(("host.example", 1),))
    msg = msg[:6] + b"\x00\x01" + msg[8:]
    msg += b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 0, 4) + bytes([10, 0, 0, 1])
    assert dns_fields(msg) == (1, "host.example", 1, 0, ("10.0.0.1",))
    assert dns_fields(dns_message(2, questions=(("", 2),)))[1:3] == ("", 2)
    # a pointer to itself loops; a name of 300 characters is too long (tshark's words)
    loop = struct.pack("!HHHHHH", 3, 0, 1, 0, 0, 0) + b"\xc0\x0c" + b"\x00\x01\x00\x01"
    assert dns_fields(loop)[1:3] == (LOOPS, 1)
    chain = b"".join((0xC000 | 14 + 2 * i).to_bytes(2, "big") for i in range(300))  # each to the next
    assert dns_fields(struct.pack("!HHHHHH", 3, 0, 1, 0, 0, 0) + chain)[1] in (LOOPS, None)
    long_name = ".".join(["a" * 50] * 6)
    assert dns_fields(dns_message(4, questions=((long_name, 1),)))[1:3] == (TOO_LONG, 1)
    # invalid UTF-8 becomes U+FFFD, as sent otherwise
    raw = struct.pack("!HHHHHH", 5, 0, 1, 0, 0, 0) + b"\x03a\xffb\x00\x00\x01\x00\x01"
    assert dns_fields(raw)[1] == "a\ufffdb"


def test_dns_cut_short():
    msg = dns_message(0x4242, response=True, rcode=2)
    assert dns_fields(msg[:4]) == (0x4242, None, None, 2, None)  # a first fragment's header
    assert dns_fields(msg[:3]) is None
    assert dns_fields(msg[:20])[:4] == (0x4242, None, None, 2)  # the question cut: no name


# -- HTTP -----------------------------------------------------------------------------------------
def test_http_request_and_response():
    req = b"GET /a?b=1 HTTP/1.1\r\nhost: example.com \r\nUser-Agent:\tcurl/8\r\nAccept: */*\r\n\r\nbody"
    assert http_fields(req) == ("GET", "/a?b=1", "example.com", "curl/8", None)
    assert http_fields(b"HTTP/1.0 404 Not Found\r\nServer: x\r\n\r\n") == (None, None, None, None, 404)
    assert http_fields(b"binary\x00junk") is None
    # ASCII only: bytes >= 0x80 are U+FFFD, a NUL ends the string; a lone LF ends a line
    assert http_fields(b"POST /\xe9 HTTP/1.1\nHost: a\x00b\n\n")[:3] == ("POST", "/\ufffd", "a")
    # header lines without a request line (a segment continuing a request)
    assert http_fields(b"User-Agent: x\r\n\r\n") == (None, None, None, "x", None)


def test_http_heuristic_and_port_table():
    assert looks_like_http(b"GET / HTTP/1.1\r\n") and looks_like_http(b"HTTP/1.1 200 OK\r\n")
    assert not looks_like_http(b"GET / HTTP/1.1")  # no line end yet
    assert not looks_like_http(b"INVITE sip:a@b SIP/2.0\r\n")
    req = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"
    assert fields(app_fields(6, 40000, 8000, req))["http_host"] == "h"  # a port nobody claims
    assert app_fields(6, 40000, 22, req) is None  # SSH's port: tshark shows SSH
    hello = record(client_hello(extensions=sni_ext("t.example")))
    assert app_fields(6, 40000, 80, hello) is None  # TLS on port 80 is HTTP's continuation
    assert fields(app_fields(6, 40000, 4433, hello))["tls_sni"] == "t.example"


# -- TLS ------------------------------------------------------------------------------------------
def test_tls_client_hello_fields_and_ja3():
    exts = (tls_ext(GREASE[3], b"") + sni_ext("www.example.com") + alpn_ext([b"h2", b"http/1.1"])
            + u16_list_ext(10, [GREASE[1], 29, 23]) + tls_ext(11, b"\x01\x00")
            + u16_list_ext(13, [0x0403, 0x0804]) + u16_list_ext(43, [GREASE[2], 0x0304, 0x0303], 1))
    payload = record(client_hello(0x0303, (GREASE[0], 0x1301, 0xC02F), exts))
    sni, alpn, ja3, ja3s, ja4 = tls_fields(payload)
    assert (sni, alpn, ja3s) == ("www.example.com", ("h2", "http/1.1"), None)
    assert ja3 == hashlib.md5(b"771,4865-49199,0-16-10-11-13-43,29-23,0").hexdigest()
    ciphers = hashlib.sha256(b"1301,c02f").hexdigest()[:12]
    extensions = hashlib.sha256(b"000a,000b,000d,002b_0403,0804").hexdigest()[:12]
    assert ja4 == f"t13d0206h2_{ciphers}_{extensions}"


def test_tls_server_hello_and_records():
    sh = server_hello(0x0303, 0xC02F, alpn_ext([b"h2"]) + tls_ext(0xFF01, b"\x00"))
    out = tls_fields(record(sh + b"\x0b\x00\x00\x00", 0x0303))
    assert out == (None, ("h2",), None, hashlib.md5(b"771,49199,16-65281").hexdigest(), None)
    # a record the segment cuts gives nothing, not even the whole hello inside it
    assert tls_fields(record(sh)[:-1]) is None
    # a record after another whole one is read; a hello after an alert too
    assert tls_fields(b"\x15\x03\x03\x00\x02\x02\x28" + record(sh))[3] == out[3]
    assert looks_like_tls(record(sh)) and not looks_like_tls(b"GET / HTTP/1.1\r\n")


def test_tls_draft_server_hello_has_no_session_id():
    body = b"\x7f\x12" + bytes(32) + b"\x13\x01" + struct.pack("!H", 6) + tls_ext(43, b"\x7f\x12")
    sh = b"\x02" + len(body).to_bytes(3, "big") + body
    assert tls_fields(record(sh))[3] == hashlib.md5(b"32530,4865,43").hexdigest()


@pytest.mark.parametrize("value", range(0, 0x10000, 0x0101))
def test_grease(value):
    assert is_grease(value) == (value in GREASE)


try:  # the FoxIO JA4 reference (the test extra installs it)
    from ja4plus.fingerprinters.ja4 import generate_ja4
    from ja4plus.utils.tls_utils import parse_tls_handshake
except ImportError:  # pragma: no cover
    generate_ja4 = parse_tls_handshake = None

alpn_values = st.lists(st.binary(min_size=1, max_size=6) | st.sampled_from([b"h2", b"http/1.1"]), max_size=3)


@st.composite
def client_hellos(draw):
    """A ClientHello record with a random mix of the extensions JA3 and JA4 read."""
    ciphers = draw(st.lists(st.sampled_from(GREASE + [0x1301, 0x1302, 0xC02B, 0xC02F, 0x002F, 0x00FF]),
                            max_size=8))
    exts = []
    if draw(st.booleans()):
        exts.append(sni_ext(draw(st.text("abcxyz.-", min_size=1, max_size=20))))
    alpn = draw(alpn_values)
    if alpn:
        exts.append(alpn_ext(alpn))
    if draw(st.booleans()):
        exts.append(u16_list_ext(13, draw(st.lists(st.sampled_from([0x0403, 0x0804, 0x0401] + GREASE[:2]),
                                                   max_size=4))))
    if draw(st.booleans()):
        exts.append(u16_list_ext(43, draw(st.lists(st.sampled_from([0x0304, 0x0303, 0x0302, 0x0301,
                                                                    GREASE[5]]), min_size=1, max_size=3)), 1))
    for e in draw(st.lists(st.sampled_from([5, 10, 11, 23, 35, 45, 51, 65281] + GREASE[:3]), max_size=6,
                           unique=True)):
        exts.append(tls_ext(e, b"\x00"))
    order = draw(st.permutations(range(len(exts))))
    version = draw(st.sampled_from([0x0300, 0x0301, 0x0302, 0x0303]))
    return record(client_hello(version, ciphers, b"".join(exts[i] for i in order)))


@pytest.mark.skipif(generate_ja4 is None, reason="the ja4plus reference is not installed")
@given(client_hellos())
def test_ja4_agrees_with_ja4plus(payload):
    expected = generate_ja4(parse_tls_handshake(payload))
    assert tls_fields(payload)[4] == expected


# -- hostile bytes --------------------------------------------------------------------------------
SAMPLES = [
    dns_message(1, response=True, answers=(("example.com", 1, b"\x01\x02\x03\x04"),)),
    b"GET /index.html HTTP/1.1\r\nHost: example.com\r\nUser-Agent: x\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    record(client_hello(extensions=sni_ext("a.example") + alpn_ext([b"h2"]) + u16_list_ext(10, [29]))),
    record(server_hello(extensions=alpn_ext([b"h2"]))),
]
PORTS = [(53, 40000), (40000, 53), (80, 40000), (443, 40000), (40000, 8443), (1080, 3000)]


def _check(values) -> None:
    if values is None:
        return
    assert isinstance(values, tuple) and len(values) == len(APP_FIELDS)
    for name, v in zip(APP_FIELDS, values):  # noqa: B905 - lengths checked above
        if v is None:
            continue
        if name in ("dns_id", "dns_qtype", "dns_rcode", "http_status"):
            assert isinstance(v, int)
        elif name in ("dns_answers", "tls_alpn"):
            assert isinstance(v, tuple) and all(isinstance(x, str) for x in v)
        else:
            assert isinstance(v, str)


def _decode_all(payload: bytes) -> None:
    for proto in (6, 17):
        for sport, dport in PORTS:
            out = assert_cpu_under(0.5, app_fields, proto, sport, dport, payload)
            _check(out)
            if out is not None:
                assert is_candidate(proto, sport, dport, payload)


@given(st.binary(max_size=600))
def test_random_bytes(payload):
    _decode_all(payload)
    _decode_all(b"\x16\x03\x01" + payload)
    _decode_all(b"\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00" + payload)


@given(st.sampled_from(SAMPLES), st.lists(st.tuples(st.integers(0, 10 ** 6), st.integers(0, 255)),
                                          min_size=1, max_size=8), st.integers(0, 10 ** 6))
def test_mutated_messages(sample, changes, cut):
    data = bytearray(sample)
    for at, value in changes:
        data[at % len(data)] = value
    _decode_all(bytes(data[:cut % (len(data) + 1)]))


def test_pointer_maze_is_linear():
    # 255 pointers, each after a run of labels and pointing at the next run: tshark walks
    # them all (and then calls the name too long); so does the decoder, once each
    segment = 62  # 30 one-byte labels and a pointer
    body = bytearray()
    for k in range(255):
        body += b"\x01a" * 30 + (0xC000 | 12 + (k + 1) * segment).to_bytes(2, "big")
    body += b"\x00\x00\x01\x00\x01"
    msg = struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0) + bytes(body)
    fields = assert_cpu_under(0.5, dns_fields, msg)
    assert fields[1:3] == (TOO_LONG, 0x0161)  # the type is read right after the first pointer
    rng = random.Random(5)
    for _ in range(50):
        junk = bytes(rng.choice((0xC0, 0xC1, 0x01, 0x3F, 0x00, 0x0C)) for _ in range(3000))
        message = struct.pack("!HHHHHH", 1, 0, 2, 3, 0, 0) + junk
        _check(assert_cpu_under(0.5, app_fields, 17, 53, 40000, message))


def test_candidates_are_cheap_to_refuse():
    assert not is_candidate(6, 40000, 40001, b"\x00\x01binary")
    assert not is_candidate(17, 40000, 40001, b"anything")
    assert not is_candidate(1, None, None, b"GET / HTTP/1.1\r\n")
    assert not is_candidate(6, 40000, 80, b"")


def test_dns_away_from_its_ports():
    query = dns_message(9, questions=(("printer.local-site", 1),))
    assert fields(app_fields(17, 40000, 5300, query))["dns_qname"] == "printer.local-site"
    response = dns_message(9, response=True, questions=(("a.example", 28),),
                           answers=(("a.example", 28, bytes(15) + b"\x02"),))
    assert fields(app_fields(17, 5300, 40000, response))["dns_answers"] == ("::2",)
    assert app_fields(17, 137, 137, query) is None  # NetBIOS name service: DNS's format, not DNS
    assert app_fields(17, 40000, 5300, query + b"\x00") is None  # bytes after the message
    assert app_fields(17, 40000, 5300, dns_message(9, questions=(("a b", 1),))) is None
    assert app_fields(6, 40000, 5300, struct.pack("!H", len(query)) + query) is None  # TCP: port 53 only


def test_field_table_order_is_the_decoders():
    from purepcap import _schema
    from purepcap._dns import DNS_FIELDS
    from purepcap._http import HTTP_FIELDS
    from purepcap._tls import TLS_FIELDS
    assert APP_FIELDS == _schema.APPLICATION == DNS_FIELDS + HTTP_FIELDS + TLS_FIELDS
    assert all(_schema.BY_NAME[f].role == "extra" for f in APP_FIELDS)


# -- the DataFrame's batch candidate test against records' per-packet one -------------------
# (only the tests marked so need pandas: the rest are the decoders', which the core suite runs)
needs_pandas = pytest.mark.skipif(importlib.util.find_spec("pandas") is None,
                                  reason="the DataFrame path needs pandas (and numpy)")

_PAYLOADS = SAMPLES + [
    b"he-Control: no-cache\r\nUser-Agent: cut/1\r\n\r\n",  # a header cut by the segment
    b"t: x\r\nhost: h\r\n\r\n",  # a colon right after the first byte
    b"gggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggg: late colon",
    b"\x17\x03\x03\x00\x05hello", b"", b"\x00\x01",
    dns_message(3, questions=(("off.port.example", 1),)),
    b"x" * 63 + b": y", b"x" * 64 + b": y", b"x" * 7 + b":",  # a colon at the span's last byte, past it, at a word's end
    b"g" * 40,  # the benchmark's filler: on port 53, a header the DNS shortcut decides
    dns_message(4, questions=(("", 2),)),  # a root query: decided by the header too
    b"ab cd: x\r\n", b"ab\r\nhost: x\r\n\r\n", b"i\x1bk\xfe: x",  # a non-name byte before the colon
    b"user-agent: a/1\r\n\r\n",
]

# Segments that open like a header line cut by the segment: a lower-case letter, then
# name bytes, colons, line ends, spaces and binary bytes in any order.
header_like = st.builds(lambda first, rest: bytes([first]) + bytes(rest), st.integers(97, 122),
                        st.lists(st.sampled_from(b"ab-_.~!:: \t\r\n\x00\x1b\x7f\xfe/Host"), max_size=70))


@given(header_like, st.sampled_from(sorted(HTTP_PORTS)), st.booleans())
def test_header_candidate_refused_only_where_http_fields_has_nothing(payload, port, to_server):
    # is_candidate passes a lower-case segment on HTTP's ports only when a header name is
    # all that stands before the first colon; every segment it refuses for that gives
    # nothing, and every one that gives something it passes
    ports = (40000, port) if to_server else (port, 40000)
    got = decode_candidate(6, *ports, payload)
    if not is_candidate(6, *ports, payload):
        assert got is None
    if got is not None:
        assert is_candidate(6, *ports, payload)


@st.composite
def app_packets(draw):
    from purepcap import build as b
    payload = draw(st.sampled_from(_PAYLOADS) | st.binary(max_size=80) | header_like)
    tcp = draw(st.booleans())
    port = draw(st.sampled_from([53, 80, 443, 8080, 1080, 22, 5353, 137, 4433, 40000]))
    ports = (40001, port) if draw(st.booleans()) else (port, 40001)
    if tcp:
        if port == 53 and payload and draw(st.booleans()):
            payload = struct.pack("!H", len(payload)) + payload
        l4 = b.TCP(*ports)
    else:
        l4 = b.UDP(*ports)
    ip = b.IPv6() if draw(st.booleans()) else b.IPv4()
    vlans = [7] if draw(st.booleans()) else []
    return bytes(b.Ether(vlans=vlans) / ip / l4 / payload)


def _frame_and_records(path) -> tuple[list, list]:
    import purepcap
    expected = [[r[f] for f in APP_FIELDS] for r in purepcap.records(str(path), fields=APP_FIELDS)]
    df = purepcap.to_pandas(str(path), columns=list(APP_FIELDS))
    return [list(t) for t in zip(*(df[f].tolist() for f in APP_FIELDS))], expected  # noqa: B905


def _write(path, frames) -> None:
    from purepcap.format import PcapWriter
    with PcapWriter(str(path)) as w:
        for i, frame in enumerate(frames):
            w.write_packet(i * 1000, frame)


@needs_pandas
@given(st.lists(app_packets(), min_size=1, max_size=30))
def test_dataframe_equals_records(tmp_path_factory, frames):
    path = tmp_path_factory.mktemp("app") / "app.pcap"
    _write(path, frames)
    got, expected = _frame_and_records(path)
    assert got == expected


@needs_pandas
def test_dataframe_equals_records_on_every_sample_and_port(tmp_path):
    from purepcap import build as b
    # (IPv6 TCP payloads start past the 60 bytes the DataFrame path reads at the IP header)
    frames = [bytes(b.Ether() / ip() / (b.TCP(*ports) if tcp else b.UDP(*ports)) / payload)
              for ip in (b.IPv4, b.IPv6) for payload in _PAYLOADS for tcp in (True, False)
              for port in (53, 80, 443, 8080, 1080, 22, 5353, 137, 40000) for ports in ((40001, port), (port, 40001))]
    _write(tmp_path / "app.pcap", frames)
    got, expected = _frame_and_records(tmp_path / "app.pcap")
    assert got == expected
    assert sum(row[APP_FIELDS.index("http_user_agent")] == "cut/1" for row in got) == 8  # (the cut header, on 80, 8080)


# -- the DataFrame path's DNS shortcut (purepcap._dns.dns_fields_by_header) -------------------
# It decides, for a whole batch of UDP payloads on DNS's ports at once, what dns_fields
# would make of those whose header and first name byte settle it. Whatever it decides
# must be dns_fields' own answer, value for value and type for type; a payload the
# decoder reads is never dropped.
_FIRST_NAME_BYTES = [0x00, 0x01, 0x03, 0x3F, 0x40, 0x41, 0x42, 0x67, 0x7F, 0x80, 0xA5, 0xBF, 0xC0, 0xC0 | 12, 0xFF]
_COUNTS = st.sampled_from([0, 1, 2, 3, 5, 0x6767, 0xFFFF, None]).flatmap(
    lambda v: st.integers(0, 0xFFFF) if v is None else st.just(v))


@st.composite
def dns_like_payloads(draw):
    """A DNS header with counts and a first name byte chosen to reach every rule of the
    shortcut, random bytes after, cut anywhere; or a mutated real message; or any bytes."""
    kind = draw(st.sampled_from(["header", "header", "header", "mutated", "random"]))
    if kind == "random":
        return draw(st.binary(max_size=64))
    if kind == "mutated":
        data = bytearray(draw(st.sampled_from([
            SAMPLES[0], dns_message(9, questions=(("", 1),)), dns_message(5, response=True, rcode=3),
            dns_message(6, response=True, questions=(("", 1),), answers=(("", 1, b"\x01\x02\x03\x04"),))])))
        for at, value in draw(st.lists(st.tuples(st.integers(0, 10 ** 6), st.integers(0, 255)), max_size=4)):
            data[at % len(data)] = value
        return bytes(data[:draw(st.integers(0, len(data)))])
    head = struct.pack("!HHHHHH", draw(st.integers(0, 0xFFFF)), draw(st.integers(0, 0xFFFF)), draw(_COUNTS),
                       draw(_COUNTS), draw(_COUNTS), draw(_COUNTS))
    first = draw(st.sampled_from(_FIRST_NAME_BYTES + [None]))
    first = draw(st.integers(0, 255)) if first is None else first
    data = head + bytes([first]) + draw(st.binary(min_size=4, max_size=40))
    # whole, or cut where the rules change (the header's end, the first name's type and
    # class, a second question's room) or anywhere
    cut = draw(st.sampled_from([None, None, None, 3, 4, 11, 12, 13, 16, 17, 18, 21, 22, -1]))
    return data if cut is None else data[:draw(st.integers(0, len(data)))] if cut < 0 else data[:cut]


def _shortcut(payloads, junk=b"\xff"):
    import numpy as np

    from purepcap._dns import HEADER_BYTES, dns_fields_by_header
    # bytes past a payload's end are junk: the shortcut must not read them
    head = np.array([list((p + junk * HEADER_BYTES)[:HEADER_BYTES]) for p in payloads],
                    dtype=np.uint8).reshape(-1, HEADER_BYTES)
    decided, found, columns = dns_fields_by_header(head, np.array([len(p) for p in payloads], dtype=np.int64))
    return decided.tolist(), found.tolist(), [c.tolist() for c in columns]


@needs_pandas
@given(st.lists(dns_like_payloads(), min_size=1, max_size=20), st.binary(min_size=1, max_size=1))
def test_dns_shortcut_decides_only_what_dns_fields_would(payloads, junk):
    decided, found, columns = _shortcut(payloads, junk)
    got = dict(zip(found, zip(*columns)))  # noqa: B905 - one tuple per field
    for i, payload in enumerate(payloads):
        expected = dns_fields(payload)
        if not decided[i]:
            continue
        if expected is None:
            assert i not in got
        else:
            assert got[i] == expected
            assert [type(v) for v in got[i]] == [type(v) for v in expected]


@needs_pandas
def test_dns_shortcut_decides_the_cases_it_names():
    ok = dns_message(1, questions=(("example.com", 1),))
    root = dns_message(2, questions=(("", 2),))
    two = struct.pack("!HHHHHH", 3, 0, 2, 0, 0, 0) + b"\x00\x00\x01\x00\x01"  # a second question cannot fit
    answered = dns_message(6, response=True, questions=(("", 1),), answers=(("", 1, b"\x01\x02\x03\x04"),))
    payloads = [b"g" * 18, b"g" * 1472, ok[:3], ok[:11], ok[:12], root, root[:16], ok,
                struct.pack("!HHHHHH", 7, 0x8183, 0, 0, 0, 0), struct.pack("!HHHHHH", 7, 0, 1, 0, 0, 0) + b"\x80",
                two + b"\x00" * 4, two + b"\x00" * 5, answered]
    decided, found, columns = _shortcut(payloads)
    # everything but a real question (a label first), a second question that may fit
    # and an answer record (names to walk) is decided
    assert decided == [True] * 7 + [False, True, True, True, False, False]
    assert dns_fields(answered)[4] == ("1.2.3.4",)
    assert found == [0, 1, 3, 4, 5, 6, 8, 9, 10]
    assert list(zip(*columns)) == [dns_fields(payloads[i]) for i in found]  # noqa: B905
    assert list(zip(*columns))[0] == (0x6767, "<Unknown extended label>", 0x6767, None, ())  # noqa: B905
