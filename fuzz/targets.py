# The fuzz targets: one function per entry point that hostile bytes reach. Each takes
# the fuzzer's bytes and raises only if purepcap breaks a promise of issue 9: anything
# but a PcapError escaping the container readers or records(), headers.decode raising
# at all, the filter compiler raising anything but FilterError, or a delivered packet
# that contradicts itself. Plain Python, so a crash file replays without atheris:
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
    from purepcap._records import records as rows
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


TARGETS = {
    "containers": containers,
    "headers": headers,
    "records": records,
    "records_direct": records_direct,
    "filter": filter_expression,
    "appfields": appfields,
}
