# The fuzz targets: one function per entry point that hostile bytes reach. Each takes
# the fuzzer's bytes and raises only if purepcap breaks a promise of issue 9: anything
# but a PcapError escaping the container readers or records(), headers.decode raising
# at all, the filter compiler raising anything but FilterError, or a delivered packet
# that contradicts itself; or of issue 23: partitioned reads that differ from the whole
# read, or filters whose readers and back ends disagree. Plain Python, so a crash file replays without atheris:
#   python -c "import sys; sys.path.insert(0, 'fuzz'); import targets; targets.TARGETS['containers'](open(F, 'rb').read())"
from __future__ import annotations

import warnings

import purepcap
from purepcap import FilterError, PcapError, PcapWarning
from purepcap.format import Packet

# The link types a header input's first byte picks from (the rest is the packet).
LINKTYPES = (1, 0, 9, 12, 14, 101, 104, 105, 108, 113, 127, 228, 229, 276, 50, 51, 147, 0xFFFF)


def header_input(linktype: int, packet: bytes, length: int | None = None) -> bytes:
    """Encode a (linktype, packet, original length) triple as a headers-target input."""
    n = 0 if length is None else min(length, 0xFFFF)
    return bytes([LINKTYPES.index(linktype)]) + n.to_bytes(2, "big") + packet


def _drain(source: bytes, strict: bool) -> int:
    frames = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PcapWarning)
        try:
            with purepcap.open(source, strict=strict) as cap:
                last = 0
                for p in cap:
                    if len(p.data) != p.caplen or p.frame <= last:
                        raise AssertionError(f"packet contradicts itself: {p!r}")
                    last = p.frame
                    frames += 1
        except PcapError as e:
            if e.offset is None:
                raise AssertionError(f"PcapError without an offset: {e}") from e
    return frames


def containers(data: bytes) -> None:
    """pcap/pcapng/compressed readers, strict and not: only PcapError may escape, and
    strict=False delivers at least what strict=True did."""
    strict = _drain(data, True)
    lenient = _drain(data, False)
    if lenient < strict:
        raise AssertionError(f"strict=False delivered {lenient} packets, strict=True {strict}")


def headers(data: bytes) -> None:
    """headers.decode on one packet: never raises; returns None or the full dict."""
    from purepcap import headers as h
    if len(data) < 3:
        return
    linktype = LINKTYPES[data[0] % len(LINKTYPES)]
    length = int.from_bytes(data[1:3], "big") or None
    out = h.decode(linktype, data[3:], length)
    if out is not None and not isinstance(out, dict):
        raise AssertionError(f"decode returned {type(out).__name__}")


def records(data: bytes) -> None:
    """records() over a capture, every extra field and the payload: only PcapError."""
    from purepcap._records import EXTRA_FIELDS
    from purepcap._records import records as rows
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PcapWarning)
        for strict in (True, False):
            try:
                for _ in rows(data, payload=True, fields=list(EXTRA_FIELDS), strict=strict):
                    pass
            except PcapError:
                pass


def _outcome(make_rows) -> tuple:
    rows: list = []
    error = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            for r in make_rows():
                rows.append(r)
        except PcapError as exc:
            error = (type(exc), str(exc), exc.offset, exc.frame)
    return rows, error, [str(w.message) for w in caught if issubclass(w.category, PcapWarning)]


def records_direct(data: bytes) -> None:
    """records() walking pcap and pcapng itself gives exactly what it gives through
    purepcap.open's Packets: the same rows, the same error at the same point, the same
    warnings."""
    from purepcap import _loops
    from purepcap._records import records as rows
    was = _loops.LOOPS
    _loops.LOOPS = "cpython"  # the direct walk is the "cpython" loops' (PyPy's records() takes Packets)
    try:
        for strict in (True, False):
            for payload in (False, True):
                direct = _outcome(lambda p=payload, s=strict: rows(data, payload=p, strict=s))
                try:
                    opened = purepcap.open(data, strict=strict)
                except PcapError:
                    continue  # not a capture: nothing to compare
                via = _outcome(lambda c=opened, p=payload, s=strict: rows(c, payload=p, strict=s))
                if direct != via:
                    raise AssertionError(f"direct walk differs (strict={strict}, payload={payload}):\n"
                                         f"{direct!r}\n{via!r}")
    finally:
        _loops.LOOPS = was


_SAMPLE = Packet(1, 0, 54, 54, 1, 0, bytes.fromhex(
    "020000000002020000000001080045000028000000004006" "66d00a0000010a000002" "0001005000000000000000005002ffff00000000"))


def filter_expression(data: bytes) -> None:
    """The filter parser and both back ends: only FilterError, for any text."""
    from purepcap import filter as f
    text = data.decode("utf-8", "replace")
    try:
        f.parse(text)
    except FilterError:
        return
    for linktype in (1, 113, 101):
        try:
            program = f.compile_bpf(text, linktype)
        except FilterError:
            continue
        f.run_bpf(program, _SAMPLE.data, _SAMPLE.length)
    try:
        match = f.offline_matcher(text)
    except FilterError:
        return
    try:
        match(_SAMPLE)
    except FilterError:
        pass


# The (IP protocol, source port, destination port) an appfields input's first byte picks:
# DNS over UDP and TCP, HTTP's, TLS's, a proxy's and SOCKS' ports, one nobody claims.
APP_PORTS = ((17, 53, 40000), (6, 40000, 53), (6, 40000, 80), (6, 443, 40000), (6, 40000, 8080),
             (6, 1080, 3000), (6, 40000, 25), (6, 40000, 4433), (17, 5353, 5353))


def app_input(choice: int, payload: bytes) -> bytes:
    """Encode (APP_PORTS index, payload) as an appfields-target input."""
    return bytes([choice]) + payload


def appfields(data: bytes) -> None:
    """The application-field decoders (DNS, HTTP, TLS) on one transport payload: they
    never raise, give None or one value per field of the promised type, and decode
    only what the cheap candidate test lets through."""
    from purepcap._appfields import APP_FIELDS, app_fields, is_candidate
    if not data:
        return
    proto, sport, dport = APP_PORTS[data[0] % len(APP_PORTS)]
    payload = data[1:]
    out = app_fields(proto, sport, dport, payload)
    if out is None:
        return
    if not is_candidate(proto, sport, dport, payload):
        raise AssertionError("a value from a packet the candidate test refuses")
    if not isinstance(out, tuple) or len(out) != len(APP_FIELDS):
        raise AssertionError(f"app_fields returned {out!r}")
    for name, v in zip(APP_FIELDS, out):  # noqa: B905 - lengths checked above
        if v is None:
            continue
        if name in ("dns_id", "dns_qtype", "dns_rcode", "http_status"):
            ok = isinstance(v, int)
        elif name in ("dns_answers", "tls_alpn"):
            ok = isinstance(v, tuple) and all(isinstance(x, str) for x in v)
        else:
            ok = isinstance(v, str)
        if not ok:
            raise AssertionError(f"{name} = {v!r}")
# -- reassembly: a stream of TCP segments, joined --------------------------------------------------
# An input is a series of segments, each: a byte (direction 0-3, bit 2: SYN), a 2-byte
# sequence step (signed: back, forward, or a retransmission), a byte of payload length,
# then the payload. The joiner runs with small caps so that the fuzzer reaches them.
_REASM_PORTS = ((40000, 443), (40000, 80), (443, 40000), (40000, 4433))


def reassembly_input(segments: list[tuple[int, int, bytes]]) -> bytes:
    """Encode [(direction byte, sequence step, payload)] as a reassembly-target input (a
    payload over 255 bytes goes as several segments, in order)."""
    out = b""
    for d, step, p in segments:
        for at in range(0, max(len(p), 1), 255):
            chunk = p[at:at + 255]
            out += bytes([d]) + ((step if at == 0 else 0) & 0xFFFF).to_bytes(2, "big") + bytes([len(chunk)]) + chunk
    return out


def reassembly(data: bytes) -> None:
    """purepcap._reassembly on a hostile segment stream: it never raises, keeps its caps
    and hands back only values of the promised shape for segments it was given."""
    from purepcap._appfields import APP_FIELDS
    from purepcap._reassembly import Reassembler

    j = Reassembler(max_message=4096, max_pending_bytes=6000, max_pending=3, max_span=20)
    seqs = [0, 0, 0, 0]
    pos = frame = 0
    while pos + 4 <= len(data):
        d, step, size = data[pos], int.from_bytes(data[pos + 1:pos + 3], "big", signed=True), data[pos + 3]
        payload = data[pos + 4:pos + 4 + size]
        pos += 4 + size
        frame += 1
        k = d & 3
        seqs[k] = (seqs[k] + step) & 0xFFFFFFFF
        sport, dport = _REASM_PORTS[k]
        done = j.segment(frame, frame, k, sport, dport, seqs[k], bool(d & 4), payload)
        seqs[k] = (seqs[k] + len(payload)) & 0xFFFFFFFF
        if done is not None:
            first, values, others = done
            if not (isinstance(values, tuple) and len(values) == len(APP_FIELDS) and first <= frame
                    and all(first < o <= frame for o in others)):
                raise AssertionError(f"segment() returned {done!r}")
        if j.pending_bytes > 6000 or len(j) > 3 or j.pending_bytes != sum(
                len(m.data) + len(m.hs) for m in j._pending.values()):
            raise AssertionError("the joiner passed its caps")


# -- partitioned reads: split_capture's spans, read one by one, are the whole read -------------------
_SCRATCH: list[str] = []


def _scratch(data: bytes) -> str:
    """A temporary file holding ``data`` (split_capture works on paths), reused per process."""
    if not _SCRATCH:
        import atexit
        import os
        import tempfile

        fd, path = tempfile.mkstemp(prefix="purepcap-fuzz-", suffix=".pcap")
        os.close(fd)
        atexit.register(lambda: os.path.exists(path) and os.unlink(path))
        _SCRATCH.append(path)
    with open(_SCRATCH[0], "wb") as f:
        f.write(data)
    return _SCRATCH[0]


def _packets(open_capture) -> tuple[list, tuple | None]:
    """(the packets as plain tuples, (the error's type, its offset) or None), strict
    reading: a span names damage in its prefix where the file has it."""
    got: list = []
    try:
        with open_capture() as cap:
            for p in cap:
                got.append((p.frame, p.time, p.caplen, p.length, p.linktype, p.interface, p.data))
    except PcapError as e:
        if e.offset is None:
            raise AssertionError(f"PcapError without an offset: {e}") from e
        return got, (type(e).__name__, e.offset)
    return got, None


# every record its own span, a few records a span, and three spans
PART_SIZES = (1, 97, 0)


def partitions(data: bytes) -> None:
    """A capture cut by split_capture and read span by span (what Intake and Dask
    partitions do) gives the packets a whole read gives, and the same error (type and
    offset) where the whole read has one. A capture split_capture refuses is read whole
    by Intake, so there is nothing to compare."""
    path = _scratch(data)
    whole = _packets(lambda: purepcap.open(path))
    for part in PART_SIZES:
        try:
            spans = purepcap.split_capture(path, part or max(1, len(data) // 3))
        except PcapError:
            continue
        got: list = []
        error = None
        for span in spans:
            packets, error = _packets(lambda s=span: purepcap.open(path, span=s))
            got += packets
            if error is not None:
                break
        if (got, error) != whole:
            raise AssertionError(f"split into {len(spans)} spans of {part or len(data) // 3} bytes: "
                                 f"{len(got)} packets and {error}, read whole: {len(whole[0])} and {whole[1]}")


# -- filters through the readers: open(filter=), records(filter=), and both back ends agree -----------
def _sample_captures() -> list[bytes]:
    import io

    from purepcap import build as b
    from purepcap.format import PcapngWriter, PcapWriter

    a, c, a6, c6 = "10.0.0.1", "192.0.2.7", "2001:db8::1", "2001:db8::2"
    eth = [
        b.ether() / b.ipv4(src=a, dst=c) / b.tcp(sport=4242, dport=80, flags="S") / b"GET / HTTP/1.0\r\n",
        b.ether() / b.ipv4(src=c, dst=a) / b.udp(sport=53, dport=5353) / b"\x12\x34\x01\x00",
        b.ether() / b.ipv4(src=a, dst=c) / b.icmp() / b"ping",
        b.ether() / b.vlan(5) / b.ipv4(src=a, dst=c) / b.udp(sport=1, dport=2) / b"x",
        b.ether() / b.vlan(5) / b.vlan(7) / b.ipv6(src=a6, dst=c6) / b.tcp(sport=443, dport=5000) / b"y",
        b.ether() / b.mpls(16) / b.ipv4(src=a, dst=c) / b.tcp() / b"mpls",
        b.ether() / b.ipv6(src=a6, dst=c6) / b.hop_by_hop() / b.fragment() / b.tcp() / b"frag",
        b.ether() / b.pppoe() / b.ipv4(src=a, dst=c) / b.udp() / b"pppoe",
        b.ether() / b.arp(),
    ]
    out = []
    f = io.BytesIO()
    with PcapWriter(f) as w:
        for i, p in enumerate(eth):
            w.write_packet(1_700_000_000_000_000_000 + i, bytes(p))
    out.append(f.getvalue())
    f = io.BytesIO()
    with PcapngWriter(f) as w:  # several link types in one file: each gets its own matcher
        sll = w.add_interface(113)
        raw = w.add_interface(101)
        w.write_packet(1, bytes(eth[0]))
        w.write_packet(2, bytes(b.sll() / b.ipv4(src=a, dst=c) / b.udp(dport=53) / b"sll"), interface=sll)
        w.write_packet(3, bytes(b.raw() / b.ipv6(src=a6, dst=c6) / b.tcp(dport=80) / b"raw"), interface=raw)
        w.write_packet(4, bytes(eth[3])[:20], length=len(bytes(eth[3])))  # cut short by a snaplen
    out.append(f.getvalue())
    return out


_SAMPLES: list[bytes] = []


def filtered_read(data: bytes) -> None:
    """A filter expression (bytes 1...) applied by the readers to a sample capture (byte
    0 picks it): purepcap.open(filter=) delivers exactly the packets the offline matcher
    accepts, records(filter=) exactly their rows, and where compile_bpf compiles the
    expression for a packet's link type its program agrees with the matcher packet by
    packet. Only FilterError may escape."""
    from purepcap import filter as f
    from purepcap._records import records as rows

    if not data:
        return
    if not _SAMPLES:
        _SAMPLES.extend(_sample_captures())
    sample = _SAMPLES[data[0] % len(_SAMPLES)]
    text = data[1:].decode("utf-8", "replace")
    try:
        match = f.offline_matcher(text)
    except FilterError:
        return
    with purepcap.open(sample) as cap:
        packets = list(cap)
    wanted = []
    for p in packets:
        try:
            if match(p):
                wanted.append(p.frame)
        except FilterError:  # the expression does not apply to this link type
            return
    with purepcap.open(sample, filter=text) as cap:
        got = [p.frame for p in cap]
    if got != wanted:
        raise AssertionError(f"open(filter=) delivered frames {got}, the matcher accepts {wanted}")
    kept = set(wanted)
    via_filter = [r["frame"] for r in rows(sample, filter=text)]
    expected = [r["frame"] for r in rows(sample) if r["frame"] in kept]
    if via_filter != expected:
        raise AssertionError(f"records(filter=) gave frames {via_filter}, expected {expected}")
    programs: dict = {}
    for p in packets:
        if p.linktype not in programs:
            try:
                programs[p.linktype] = f.compile_bpf(text, p.linktype)
            except FilterError:
                programs[p.linktype] = None
        program = programs[p.linktype]
        if program is not None and bool(f.run_bpf(program, p.data, p.length)) != (p.frame in kept):
            raise AssertionError(f"compile_bpf and the offline matcher disagree on frame {p.frame}")


TARGETS = {
    "containers": containers,
    "headers": headers,
    "records": records,
    "records_direct": records_direct,
    "filter": filter_expression,
    "appfields": appfields,
    "reassembly": reassembly,
    "partitions": partitions,
    "filtered_read": filtered_read,
}
