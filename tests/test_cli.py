# The `purepcap` command line: lines, exit codes, one-line errors, pipes, -w round
# trips, info, convert round trips and the progress display. Captures are built here
# byte by byte with our own writer, so these tests need nothing from ../shared; where
# tcpdump is installed, one test compares whole lines with it on random packets.
from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import random
import shutil
import socket
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import purepcap
from purepcap import linktypes
from purepcap._lines import LineFormatter, describe, format_time, hexdump, network_offset
from purepcap._progress import LineProgress, Progress, make_progress
from purepcap.cli import main
from purepcap.format import PcapngWriter, PcapWriter

ROOT = Path(__file__).resolve().parent.parent
T0 = 1_515_485_772_210_010_000  # 2018-01-09 08:16:12.210010 UTC


# -- packets built by hand ---------------------------------------------------------------------
def _csum(b: bytes) -> int:
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ether(payload: bytes, ethertype: int = 0x0800, vlans: tuple[int, ...] = ()) -> bytes:
    head = bytes.fromhex("020000000002") + bytes.fromhex("020000000001")
    for v in vlans:
        head += struct.pack("!HH", 0x8100, v)
    frame = head + struct.pack("!H", ethertype) + payload
    return frame + b"\0" * max(0, 60 - len(frame))


def ipv4(src: str, dst: str, proto: int, payload: bytes, *, frag: int = 0, total: int | None = None) -> bytes:
    n = 20 + len(payload) if total is None else total
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, n, 1, frag, 64, proto, 0, socket.inet_aton(src), socket.inet_aton(dst))
    h = h[:10] + struct.pack("!H", _csum(h)) + h[12:]
    return h + payload


def ipv6(src: str, dst: str, nh: int, payload: bytes) -> bytes:
    return struct.pack("!IHBB16s16s", 0x60000000, len(payload), nh, 64, socket.inet_pton(socket.AF_INET6, src),
                       socket.inet_pton(socket.AF_INET6, dst)) + payload


def udp(sport: int, dport: int, data: bytes) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data


def tcp(sport: int, dport: int, data: bytes, flags: int = 0x18, options: bytes = b"") -> bytes:
    doff = (20 + len(options)) // 4
    return struct.pack("!HHIIBBHHH", sport, dport, 1, 2, doff << 4, flags, 65535, 0, 0) + options + data


def icmp_echo(request: bool, ident: int, seq: int, data: bytes) -> bytes:
    return struct.pack("!BBHHH", 8 if request else 0, 0, 0, ident, seq) + data


def arp_request(sender: str, target: str) -> bytes:
    return struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, bytes.fromhex("020000000001"),
                       socket.inet_aton(sender), b"\0" * 6, socket.inet_aton(target))


def sample_frames() -> list[bytes]:
    return [
        ether(ipv4("192.168.0.39", "172.16.4.5", 17, udp(54703, 443, b"x" * 1350))),
        ether(ipv4("10.0.0.1", "10.0.0.2", 6, tcp(40000, 80, b"GET / HTTP/1.0\r\n\r\n"))),
        ether(ipv6("2001:db8::1", "2001:db8::2", 17, udp(5353, 53, b"query")), 0x86DD),
        ether(ipv6("2001:db8::2", "2001:db8::1", 6, tcp(443, 51000, b"", flags=0x10)), 0x86DD),
        ether(ipv4("10.0.0.1", "8.8.8.8", 1, icmp_echo(True, 7, 1, b"ping" * 14))),
        ether(arp_request("10.0.0.1", "10.0.0.254"), 0x0806),
        ether(b"\x02\x07\x04" + b"\0" * 40, 0x88CC),
        ether(b"\0" * 46, 0x88B5),
        ether(ipv4("10.0.0.1", "10.0.0.2", 17, udp(1, 2, b"vlan")), vlans=(100, 200), ethertype=0x0800),
    ]


def write_capture(path: Path, frames: list[bytes], *, nanosecond: bool = False, pcapng: bool = False,
                  step: int = 1_234_567) -> Path:
    w = PcapngWriter(path) if pcapng else PcapWriter(path, nanosecond=nanosecond)
    with w:
        for i, f in enumerate(frames):
            w.write_packet(T0 + i * step, f)
    return path


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    return write_capture(tmp_path / "sample.pcap", sample_frames())


def run_cli(*args: str, stdin: bytes | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "purepcap", *args], input=stdin, capture_output=True,
                          timeout=120, cwd=cwd, env={**os.environ, "PYTHONPATH": str(ROOT)})


def run_main(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(args))
    return rc, out.getvalue(), err.getvalue()


def assert_one_line_error(r: subprocess.CompletedProcess, *needles: str) -> str:
    err = r.stderr.decode()
    assert r.returncode == 1, (r.returncode, err)
    assert "Traceback" not in err
    assert err.count("\n") == 1 and err.endswith("\n"), repr(err)
    for n in needles:
        assert n in err, (n, err)
    return err


# -- lines -------------------------------------------------------------------------------------
def test_lines_for_each_kind_of_packet(sample: Path):
    rc, out, err = run_main("read", str(sample))
    assert rc == 0 and err == ""
    assert out.splitlines() == [
        "2018-01-09 08:16:12.210010 IP 192.168.0.39.54703 > 172.16.4.5.443: UDP, length 1350",
        "2018-01-09 08:16:12.211244 IP 10.0.0.1.40000 > 10.0.0.2.80: tcp 18",
        "2018-01-09 08:16:12.212479 IP6 2001:db8::1.5353 > 2001:db8::2.53: UDP, length 5",
        "2018-01-09 08:16:12.213713 IP6 2001:db8::2.443 > 2001:db8::1.51000: tcp 0",
        "2018-01-09 08:16:12.214948 IP 10.0.0.1 > 8.8.8.8: ICMP echo request, id 7, seq 1, length 64",
        "2018-01-09 08:16:12.216182 ARP, Request who-has 10.0.0.254 tell 10.0.0.1, length 46",
        "2018-01-09 08:16:12.217417 LLDP, length 46",
        "2018-01-09 08:16:12.218651 02:00:00:00:00:01 > 02:00:00:00:00:02, ethertype 0x88b5, length 60",
        "2018-01-09 08:16:12.219886 IP 10.0.0.1.1 > 10.0.0.2.2: UDP, length 4",
    ]


def test_fragments_and_truncation_get_tcpdump_forms():
    later = ether(ipv4("10.0.0.1", "10.0.0.2", 17, b"\0" * 40, frag=185))
    assert describe(1, later, len(later)) == "IP 10.0.0.1 > 10.0.0.2: ip-proto-17"
    # a first fragment's UDP length covers the whole datagram: no "bad length" then
    whole = udp(53, 5000, b"\0" * 100)
    first = ether(ipv4("10.0.0.1", "10.0.0.2", 17, whole[:48], frag=0x2000))
    assert describe(1, first, len(first)) == "IP 10.0.0.1.53 > 10.0.0.2.5000: UDP, length 100"
    alone = ether(ipv4("10.0.0.1", "10.0.0.2", 17, whole[:48]))
    assert describe(1, alone, len(alone)) == "IP 10.0.0.1.53 > 10.0.0.2.5000: UDP, bad length 100 > 40"
    big = ether(ipv4("10.0.0.1", "10.0.0.2", 17, udp(53, 5000, b"\0" * 100)))
    cut = big[:50]
    assert describe(1, cut, len(big)) == "IP 10.0.0.1.53 > 10.0.0.2.5000: UDP, length 100"
    short_tcp = ether(ipv4("10.0.0.1", "10.0.0.2", 6, tcp(1, 2, b"")))[:14 + 20 + 10]
    assert describe(1, short_tcp, 60) == "IP 10.0.0.1.1 > 10.0.0.2.2:  [|tcp]"
    lying = ether(ipv4("10.0.0.1", "10.0.0.2", 17, udp(53, 5000, b"abc"), total=1000))
    assert describe(1, lying, len(lying)).startswith("IP truncated-ip - 954 bytes missing! 10.0.0.1.53 >")


def test_other_link_types():
    pkt = ipv4("10.1.1.1", "10.2.2.2", 17, udp(7, 9, b"hi"))
    assert describe(linktypes.RAW, pkt, len(pkt)) == "IP 10.1.1.1.7 > 10.2.2.2.9: UDP, length 2"
    sll = struct.pack("!HHH8sH", 0, 1, 6, b"\0" * 8, 0x0800) + pkt
    assert describe(linktypes.LINUX_SLL, sll, len(sll)) == "IP 10.1.1.1.7 > 10.2.2.2.9: UDP, length 2"
    null = struct.pack("<I", 2) + pkt
    assert describe(linktypes.NULL, null, len(null)) == "IP 10.1.1.1.7 > 10.2.2.2.9: UDP, length 2"
    ppp = b"\xff\x03\x00\x21" + pkt
    assert describe(linktypes.PPP, ppp, len(ppp)) == "IP 10.1.1.1.7 > 10.2.2.2.9: UDP, length 2"
    assert describe(linktypes.EN10MB, b"\x01\x02", 2) == "EN10MB, length 2"


@given(st.sampled_from([0, 1, 9, 12, 14, 101, 104, 105, 108, 113, 127, 228, 229, 276]), st.binary(max_size=120))
def test_describe_never_raises(linktype: int, data: bytes):
    text = describe(linktype, data, len(data))
    assert isinstance(text, str) and "\n" not in text
    assert 0 <= network_offset(linktype, data) <= len(data)


@given(st.integers(0, 65535), st.integers(0, 65535), st.binary(max_size=300), st.booleans(), st.booleans())
def test_ports_and_lengths_round_trip(sport: int, dport: int, data: bytes, use_tcp: bool, v6: bool):
    transport = tcp(sport, dport, data) if use_tcp else udp(sport, dport, data)
    proto = 6 if use_tcp else 17
    ip = ipv6("2001:db8::1", "2001:db8::2", proto, transport) if v6 else ipv4("1.2.3.4", "5.6.7.8", proto, transport)
    frame = ether(ip, 0x86DD if v6 else 0x0800)
    src, dst = ("2001:db8::1", "2001:db8::2") if v6 else ("1.2.3.4", "5.6.7.8")
    token = f"tcp {len(data)}" if use_tcp else f"UDP, length {len(data)}"
    assert describe(1, frame, len(frame)) == f"{'IP6' if v6 else 'IP'} {src}.{sport} > {dst}.{dport}: {token}"


def test_time_formatting():
    assert format_time(T0, 6) == "2018-01-09 08:16:12.210010"
    assert format_time(T0 + 123, 9) == "2018-01-09 08:16:12.210010123"
    assert format_time(-1, 9) == "1969-12-31 23:59:59.999999999"
    assert format_time(None) == "(no time)"
    assert format_time(0xFFFFFFFF * 10**9, 6) == "2106-02-07 06:28:15.000000"  # past 2038, unlike tcpdump here
    assert format_time(10**30, 9).startswith("@")  # beyond the calendar: seconds since the epoch, no error
    lf = LineFormatter(lambda p: 6)
    assert lf.time(T0 + 999, 6) == lf.time(T0, 6) == "2018-01-09 08:16:12.210010"  # truncated like tcpdump


def test_nanosecond_captures_print_nanoseconds(tmp_path: Path):
    frames = sample_frames()[:2]
    ns = write_capture(tmp_path / "ns.pcap", frames, nanosecond=True, step=7)
    ng = write_capture(tmp_path / "ns.pcapng", frames, pcapng=True, step=7)
    us = write_capture(tmp_path / "us.pcap", frames, step=7000)
    # with --nano (tcpdump --time-stamp-precision=nano); by default 6 digits, as tcpdump
    for path, stamp in ((ns, "08:16:12.210010007 IP"), (ng, "08:16:12.210010007 IP"), (us, "08:16:12.210017000 IP")):
        _rc, out, _ = run_main("read", "--nano", str(path))
        assert stamp in out.splitlines()[1], (path, out)


def test_local_time_option(sample: Path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TZ": "Asia/Kolkata"}
    r = subprocess.run([sys.executable, "-m", "purepcap", "read", "--local-time", "-c", "1", str(sample)],
                       capture_output=True, env=env, timeout=60)
    assert r.stdout.decode().startswith("2018-01-09 13:46:12.210010 IP ")  # UTC+05:30


def test_payload_dump(sample: Path):
    rc, out, _ = run_main("read", "--payload", "-c", "2", str(sample))
    lines = out.splitlines()
    assert lines[0].endswith("UDP, length 1350")
    assert lines[1].startswith("\t0x0000:  4500 0562")  # the dump starts at the IP header, like tcpdump -X
    tcp_line = next(i for i, line in enumerate(lines) if "tcp 18" in line)
    assert "P.......GET./.HT" in lines[tcp_line + 3]  # tcpdump -X shows a space as "."
    assert hexdump(b"A B\x00") == "\t0x0000:  4120 4200" + " " * 30 + "  A.B."


# -- real fixtures, against tcpdump itself ------------------------------------------------------
needs_tcpdump = pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump not installed")


def _tcpdump(path: Path, *extra: str) -> list[str]:
    r = subprocess.run(["tcpdump", "-tttt", "-n", "-q", *extra, "-r", str(path)], capture_output=True,
                       env={**os.environ, "TZ": "UTC"}, timeout=60)
    return r.stdout.decode().splitlines()


@needs_tcpdump
def test_random_packets_match_tcpdump_line_for_line(tmp_path: Path):
    rng = random.Random(7)
    frames = []
    for _ in range(400):
        kind = rng.choice(["udp4", "tcp4", "udp6", "tcp6", "icmp", "arp", "frag"])
        data = rng.randbytes(rng.choice([0, 1, 7, 100, 1400]))
        sport, dport = rng.randrange(1024, 65536), rng.choice([53, 80, 443, 9999, 33434])
        a4 = f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        a6 = f"2001:db8::{rng.randrange(1, 0xFFFF):x}"
        if kind == "udp4":
            frames.append(ether(ipv4(a4, "192.0.2.1", 17, udp(sport, dport, data))))
        elif kind == "tcp4":
            frames.append(ether(ipv4(a4, "192.0.2.1", 6, tcp(sport, dport, data, options=b"\x01" * 4 * rng.randrange(3)))))
        elif kind == "udp6":
            frames.append(ether(ipv6(a6, "2001:db8::1", 17, udp(sport, dport, data)), 0x86DD))
        elif kind == "tcp6":
            frames.append(ether(ipv6(a6, "2001:db8::1", 6, tcp(sport, dport, data)), 0x86DD))
        elif kind == "icmp":
            frames.append(ether(ipv4(a4, "192.0.2.1", 1, icmp_echo(rng.random() < 0.5, sport, dport, data))))
        elif kind == "arp":
            frames.append(ether(arp_request(a4, "192.0.2.1"), 0x0806))
        else:
            frames.append(ether(ipv4(a4, "192.0.2.1", 17, data + b"\0" * 8, frag=rng.randrange(1, 0x1FFF))))
    path = write_capture(tmp_path / "random.pcap", frames, step=1)
    _rc, out, _ = run_main("read", str(path))
    assert out.splitlines() == _tcpdump(path)
    _rc, out, _ = run_main("read", "--payload", str(path))
    assert out.splitlines() == _tcpdump(path, "-X")


@needs_tcpdump
@pytest.mark.parametrize("name", ["local.pcap", "local.pcapng", "http.pcap", "vlan.pcap", "truncated-be.pcap"])
def test_fixtures_match_tcpdump(name: str):
    path = ROOT / "fixtures" / name
    if not path.exists():
        pytest.skip(f"fixtures/{name} not generated")
    for extra in ([], ["-X"]):
        _rc, out, _ = run_main("read", *(["--payload"] if extra else []), str(path))
        theirs = _tcpdump(path, *extra)
        mine = out.splitlines()
        assert len(mine) == len(theirs)
        assert mine == theirs  # µs, as tcpdump, for the ns pcapng too


# -- exit codes and one-line errors ---------------------------------------------------------------
def test_missing_file(tmp_path: Path):
    assert_one_line_error(run_cli("read", str(tmp_path / "nope.pcap")), "nope.pcap", "No such file")
    assert_one_line_error(run_cli("info", str(tmp_path / "nope.pcap")), "nope.pcap")
    assert_one_line_error(run_cli("convert", str(tmp_path / "nope.pcap"), str(tmp_path / "o.csv")), "nope.pcap")


def test_not_a_capture(tmp_path: Path):
    bad = tmp_path / "page.html"
    bad.write_bytes(b"<html><body>hi</body></html>")
    assert_one_line_error(run_cli("read", str(bad)), "page.html", "not a capture file", "3c 68 74 6d")
    assert_one_line_error(run_cli("info", str(bad)), "page.html", "not a capture file")


def test_truncated_file_prints_good_packets_then_one_line(sample: Path, tmp_path: Path):
    cut = tmp_path / "cut.pcap"
    data = sample.read_bytes()
    cut.write_bytes(data[:len(data) - 10])
    r = run_cli("read", str(cut))
    assert len(r.stdout.decode().splitlines()) == len(sample_frames()) - 1
    assert_one_line_error(r, "cut.pcap")
    # with -w the good packets are written (as tcpdump does) and the error names the input
    out = tmp_path / "good.pcap"
    err = assert_one_line_error(run_cli("read", str(cut), "-w", str(out)), "cut.pcap")
    assert "good.pcap" not in err
    with purepcap.open(out) as cap:
        assert len(list(cap)) == len(sample_frames()) - 1
    info = run_cli("info", "--json", str(cut))
    assert info.returncode == 1  # as capinfos
    doc = json.loads(info.stdout)[0]
    assert doc["clean_end"] is False and doc["error"] and doc["packets"] == len(sample_frames()) - 1


def test_bad_expression(sample: Path):
    for expr in (["tcp", "port"], ["host", "999.1.1.1"], ["(", "tcp"]):
        err = assert_one_line_error(run_cli("read", str(sample), *expr))
        assert "filter" in err


def test_usage_errors_exit_2(sample: Path):
    for args in ([], ["bogus"], ["read"], ["read", str(sample), "-c", "zero"], ["read", str(sample), "--nope"],
                 ["info"], ["compile"], ["capture"]):
        r = run_cli(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert b"Traceback" not in r.stderr


@pytest.mark.parametrize("verb", ["read", "info", "convert", "compile", "capture", "interfaces"])
def test_help_has_an_example(verb: str):
    r = run_cli(verb, "--help")
    assert r.returncode == 0
    text = r.stdout.decode()
    assert "example" in text and f"purepcap {verb}" in text


def test_console_script_and_module_agree(sample: Path):
    exe = shutil.which("purepcap")
    if exe is None:
        pytest.skip("the purepcap console script is not installed (pip install -e .)")
    a = subprocess.run([exe, "read", str(sample)], capture_output=True, timeout=60)
    b = run_cli("read", str(sample))
    assert a.returncode == b.returncode == 0 and a.stdout == b.stdout


def test_broken_pipe_is_quiet(tmp_path: Path):
    frames = [ether(ipv4("10.0.0.1", "10.0.0.2", 17, udp(i % 65536, 53, b"q"))) for i in range(30000)]
    big = write_capture(tmp_path / "big.pcap", frames)
    cmd = f"{sys.executable} -m purepcap read {big} | head -n 2"
    r = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr
    assert r.stderr == b""
    assert len(r.stdout.splitlines()) == 2


def test_stdin(sample: Path):
    r = run_cli("read", "-", stdin=sample.read_bytes())
    assert r.returncode == 0
    assert r.stdout.decode() == run_main("read", str(sample))[1]


def test_count(sample: Path):
    _rc, out, _ = run_main("read", "-c", "3", str(sample))
    assert len(out.splitlines()) == 3


# -- read -w ------------------------------------------------------------------------------------
@pytest.mark.parametrize("out_name", ["out.pcap", "out.pcapng"])
def test_write_round_trip(sample: Path, tmp_path: Path, out_name: str):
    out = tmp_path / out_name
    rc, stdout, _ = run_main("read", str(sample), "-w", str(out))
    assert rc == 0 and stdout == ""
    with purepcap.open(sample) as a, purepcap.open(out) as b:
        want = [(p.time, p.data, p.length, p.linktype) for p in a]
        got = [(p.time, p.data, p.length, p.linktype) for p in b]
        assert b.format == ("pcapng" if out_name.endswith("pcapng") else "pcap")
    assert got == want


def test_write_keeps_nanoseconds_and_count(tmp_path: Path):
    src = write_capture(tmp_path / "ns.pcap", sample_frames(), nanosecond=True, step=3)
    out = tmp_path / "two.pcap"
    assert run_main("read", str(src), "-c", "2", "-w", str(out))[0] == 0
    with purepcap.open(out) as cap:
        times = [p.time for p in cap]
        assert cap.precision == "ns"
    assert times == [T0, T0 + 3]


def test_write_to_stdout_pipes_back_in(sample: Path):
    r = run_cli("read", str(sample), "-w", "-")
    assert r.returncode == 0
    again = run_cli("read", "-", stdin=r.stdout)
    assert again.stdout.decode() == run_main("read", str(sample))[1]


@needs_tcpdump
@pytest.mark.parametrize("expr", ["udp", "tcp or arp", "ip6", "not ip", "vlan 100", "vlan and vlan 200 and udp", "host 10.0.0.1"])
def test_write_with_filter_selects_what_tcpdump_selects(sample: Path, tmp_path: Path, expr: str):
    import purepcap.filter

    if not hasattr(purepcap.filter, "compile_bpf"):
        pytest.skip("the filter compiler is not built yet")
    mine, theirs = tmp_path / "mine.pcap", tmp_path / "theirs.pcap"
    rc, _, err = run_main("read", str(sample), "-w", str(mine), *expr.split())
    assert rc == 0, err
    subprocess.run(["tcpdump", "-r", str(sample), "-w", str(theirs), expr], check=True, capture_output=True)
    with purepcap.open(mine) as a, purepcap.open(theirs) as b:
        got = [(p.time, p.data) for p in a]
        want = [(p.time, p.data) for p in b]
    assert got == want and len(want) > 0


# -- info ---------------------------------------------------------------------------------------
def test_info_text_and_json(sample: Path, tmp_path: Path):
    trunc = tmp_path / "trunc.pcap"
    with PcapWriter(trunc, snaplen=64) as w:
        for i, f in enumerate(sample_frames()):
            w.write_packet(T0 + i * 1_000_000_000, f[:64], length=len(f))
    rc, text, _ = run_main("info", str(sample))
    assert rc == 0
    assert "pcap 2.4, little-endian, microsecond timestamps" in text
    assert "EN10MB (link type 1), snaplen 262144" in text
    assert "Packets:             9" in text
    assert "First packet:        2018-01-09 08:16:12.210010 UTC" in text
    assert "Ends cleanly:        yes" in text
    rc, js, _ = run_main("info", "--json", str(sample), str(trunc))
    docs = json.loads(js)
    assert [d["packets"] for d in docs] == [9, 9]
    total = sum(len(f) for f in sample_frames())
    assert docs[0]["bytes_captured"] == docs[0]["bytes_on_wire"] == docs[1]["bytes_on_wire"] == total
    assert docs[1]["truncated_packets"] == sum(len(f) > 64 for f in sample_frames())
    assert docs[1]["duration_ns"] == 8_000_000_000 and docs[1]["packets_per_second"] == pytest.approx(9 / 8)
    assert docs[0]["first_time"] == T0 and docs[0]["last_time"] == T0 + 8 * 1_234_567 // 1000 * 1000
    assert docs[0]["linktypes"] == [1] and docs[0]["clean_end"] is True


def test_info_several_files_one_bad(sample: Path, tmp_path: Path):
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"nonsense")
    r = run_cli("info", str(sample), str(bad))
    assert r.stdout.decode().count("File name:") == 1
    assert_one_line_error(r, "bad.pcap")


def test_info_compressed(sample: Path, tmp_path: Path):
    import gzip

    gz = tmp_path / "s.pcap.gz"
    gz.write_bytes(gzip.compress(sample.read_bytes()))
    rc, js, _ = run_main("info", "--json", str(gz))
    doc = json.loads(js)[0]
    assert doc["compression"] == "gzip" and doc["packets"] == 9


# -- convert ------------------------------------------------------------------------------------
def _expected(sample: Path, **kw):
    pd = pytest.importorskip("pandas")
    try:
        return pd, purepcap.to_pandas(str(sample), **kw)
    except (ImportError, AttributeError):
        pytest.skip("purepcap.to_pandas not built yet")


def test_convert_csv_round_trip(sample: Path, tmp_path: Path):
    pd, want = _expected(sample)
    out = tmp_path / "t.csv"
    assert run_main("convert", str(sample), str(out))[0] == 0
    got = pd.read_csv(out, parse_dates=["time"], dtype={"src_port": "UInt16", "dst_port": "UInt16"})
    pd.testing.assert_frame_equal(got, want.reset_index(drop=True), check_dtype=False, check_categorical=False)
    assert str(got["time"].dtype) == "datetime64[ns]"


def test_convert_jsonl_round_trip(sample: Path, tmp_path: Path):
    pd, want = _expected(sample, payload=True)
    out = tmp_path / "t.jsonl"
    assert run_main("convert", "--payload", str(sample), str(out))[0] == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    got = pd.DataFrame(rows)
    got["time"] = pd.to_datetime(got["time"])
    got["payload"] = got["payload"].map(bytes.fromhex)
    for c in ("src_port", "dst_port"):
        got[c] = got[c].astype("UInt16")
    want = want.reset_index(drop=True)
    want["payload"] = want["payload"].map(bytes)
    pd.testing.assert_frame_equal(got, want, check_dtype=False, check_categorical=False)


def test_convert_parquet_round_trip(sample: Path, tmp_path: Path):
    pytest.importorskip("pyarrow")
    pd, want = _expected(sample, payload=True)
    out = tmp_path / "t.parquet"
    assert run_main("convert", str(sample), str(out), "--payload")[0] == 0
    got = pd.read_parquet(out)
    pd.testing.assert_frame_equal(got, want.reset_index(drop=True), check_dtype=False, check_categorical=False)


def test_convert_extra_columns(sample: Path, tmp_path: Path):
    out = tmp_path / "x.csv"
    rc, _, err = run_main("convert", str(sample), str(out), "--columns", "ttl,ip_version")
    assert rc == 0, err
    header, first = out.read_text().splitlines()[:2]
    assert header == "time,src_host,src_port,dst_host,dst_port,protocol,ttl,ip_version"
    assert first == "2018-01-09 08:16:12.210010000,192.168.0.39,54703,172.16.4.5,443,udp,64,4"


def test_convert_csv_joins_a_tuple_with_commas(tmp_path: Path):
    import csv

    cells = []
    for name in ("local.pcap", "tls.pcap"):  # DNS answers, and ALPN offers of two names
        src, out = ROOT / "fixtures" / name, tmp_path / "t.csv"
        rc, _, err = run_main("convert", str(src), str(out), "--columns", "dns_answers,tls_alpn")
        assert rc == 0, err
        with open(out, newline="") as f:
            got = [(r["dns_answers"], r["tls_alpn"]) for r in csv.DictReader(f)]
        want = [tuple("" if v is None else ",".join(v) for v in (r["dns_answers"], r["tls_alpn"]))
                for r in purepcap.records(src, fields=["dns_answers", "tls_alpn"])]
        assert got == want
        cells += want
    assert any(dns for dns, _ in cells) and any("," in alpn for _, alpn in cells)


def test_convert_failure_leaves_no_file(sample: Path, tmp_path: Path):
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(sample.read_bytes()[:-10])
    outs = ("o.csv", "o.jsonl") + (("o.parquet",) if importlib.util.find_spec("pyarrow") else ())
    for out in outs:
        r = run_cli("convert", str(cut), str(tmp_path / out))
        assert_one_line_error(r, "cut.pcap")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.pcap", "sample.pcap"]
    assert_one_line_error(run_cli("convert", str(sample), str(tmp_path / "o.xlsx")), "o.xlsx")


def test_convert_parquet_without_pyarrow_names_the_extra(sample: Path, tmp_path: Path):
    code = ("import sys; sys.modules['pyarrow'] = None; from purepcap.cli import main; "
            f"sys.exit(main(['convert', {str(sample)!r}, {str(tmp_path / 'o.parquet')!r}]))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert_one_line_error(r, "pip install 'purepcap[parquet]'")
    assert not (tmp_path / "o.parquet").exists()


# -- progress -----------------------------------------------------------------------------------
class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_only_on_a_terminal():
    assert type(make_progress(100, stream=io.StringIO())) is Progress
    shown = make_progress(100, stream=FakeTTY())
    assert isinstance(shown, Progress) and type(shown) is not Progress


def test_builtin_progress_line():
    tty = FakeTTY()
    p = LineProgress(total_bytes=10_000, stream=tty, delay=0)
    for _ in range(2048):
        p.tick(2)
    p.refresh(force=True)
    p.close()
    text = tty.getvalue()
    assert "2,048 packets" in text and "4.1 kB" in text and "packets/s" in text and "ETA" in text
    assert text.endswith("\r") and text.split("\r")[-2].strip() == ""  # wiped at the end
    quick = FakeTTY()
    with LineProgress(total_bytes=10_000, stream=quick) as q:  # short work: nothing drawn at all
        for _ in range(2048):
            q.tick(2)
    assert quick.getvalue() == ""


def test_no_progress_when_stderr_is_a_pipe(sample: Path, tmp_path: Path):
    r = run_cli("read", str(sample), "-w", str(tmp_path / "o.pcap"))
    assert r.returncode == 0 and r.stderr == b""


# -- capture (root only; traffic only on loopback, to a port this test binds) -------------------
def _live_ok() -> bool:
    if os.geteuid() != 0 or not sys.platform.startswith("linux"):
        return False
    try:
        import purepcap.live  # noqa: F401
    except ImportError:
        return False
    return True


needs_live = pytest.mark.skipif(not _live_ok(), reason="live capture needs root on Linux and purepcap.live")


def _sender():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))  # bound, so no ICMP port-unreachable comes back
    return s, s.getsockname()[1]


def _popen(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "purepcap", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})


def _count_lines(err: bytes) -> list[str]:
    return [line for line in err.decode().splitlines() if line.split(" ", 1)[-1] in (
        "packets captured", "packet captured", "packets received by filter", "packet received by filter",
        "packets dropped by kernel", "packet dropped by kernel")]


@needs_live
@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT"])
def test_capture_signal_leaves_a_complete_file(tmp_path: Path, signame: str):
    import signal
    import time

    out = tmp_path / "live.pcapng"
    sock, port = _sender()
    marker = os.urandom(8).hex().encode()
    proc = _popen("capture", "-i", "lo", "-w", str(out), "--timeout", "60")
    try:
        deadline = time.monotonic() + 30
        seen = 0
        while time.monotonic() < deadline and seen < 3:
            sock.sendto(marker, ("127.0.0.1", port))
            time.sleep(0.1)
            if out.exists():
                # the file is readable while the capture runs: every packet is flushed
                with contextlib.suppress(purepcap.PcapError):
                    with purepcap.open(out) as cap:
                        seen = sum(marker in p.data for p in cap)
        proc.send_signal(getattr(signal, signame))
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        sock.close()
    assert seen >= 3
    assert proc.returncode == 0, err
    assert len(_count_lines(err)) == 3, err
    with purepcap.open(out) as cap:  # strict: a clean, complete file
        packets = list(cap)
        assert cap.format == "pcapng" and cap.interfaces[0].name == "lo"
    assert sum(marker in p.data for p in packets) >= 3
    captured = int(_count_lines(err)[0].split()[0])
    assert captured == len(packets)
    if shutil.which("tcpdump"):  # and tcpdump reads it too, packet for packet
        assert len(_tcpdump(out)) == len(packets)


@needs_live
def test_capture_prints_lines_and_counts(tmp_path: Path):
    import time

    import purepcap.filter

    if not hasattr(purepcap.filter, "compile_bpf"):
        pytest.skip("the filter compiler is not built yet")

    sock, port = _sender()
    proc = _popen("capture", "-i", "lo", "-c", "2", "--timeout", "30", "--nano", "udp", "port", str(port))
    try:
        time.sleep(1.0)
        for _ in range(40):
            if proc.poll() is not None:
                break
            sock.sendto(b"hello", ("127.0.0.1", port))
            time.sleep(0.1)
        out, err = proc.communicate(timeout=40)
    finally:
        proc.kill()
        sock.close()
    assert proc.returncode == 0, err
    lines = out.decode().splitlines()
    assert len(lines) == 2
    for line in lines:
        assert line.endswith(f"IP 127.0.0.1.{port} > 127.0.0.1.{port}: UDP, length 5")
        assert len(line.split(" ")[1]) == len("00:00:00.000000000")  # live stamps are ns (--nano)
    counts = _count_lines(err)
    assert counts[0] == "2 packets captured" and len(counts) == 3


def test_capture_unknown_interface_is_one_line():
    if not _live_ok():
        pytest.skip("needs root on Linux")
    assert_one_line_error(run_cli("capture", "-i", "nosuch0", "-c", "1"), "nosuch0", "lo")


# -- compile ------------------------------------------------------------------------------------
def test_compile_prints_the_filter_compilers_program():
    import purepcap.filter as flt

    if not hasattr(flt, "compile_bpf"):
        pytest.skip("the filter compiler is not built yet")
    for style in ("-d", "-dd", "-ddd"):
        rc, out, err = run_main("compile", style, "--linktype", "LINUX_SLL", "-s", "96", "udp", "port", "53")
        assert rc == 0, err
        program = flt.compile_bpf("udp port 53", linktypes.LINUX_SLL, 96)
        assert out == flt.dump_bpf(program, style).rstrip("\n") + "\n"
    rc, out, _ = run_main("compile", "-ddd", "tcp")
    lines = out.splitlines()
    assert int(lines[0]) == len(lines) - 1  # tcpdump -ddd: the count, then one instruction a line
    assert all(len(line.split()) == 4 for line in lines[1:])
    err = assert_one_line_error(run_cli("compile", "tcp", "port"), "port")
    assert "filter" in err


def test_progress_shown_when_stderr_is_a_terminal(tmp_path: Path):
    import fcntl
    import pty
    import termios
    import threading

    frame = ether(ipv4("10.0.0.1", "10.0.0.2", 17, udp(9, 53, b"q")))
    src = tmp_path / "p.pcap"
    with PcapWriter(src) as w:
        for i in range(50_000):
            w.write_packet(T0 + i, frame)

    leader, follower = pty.openpty()
    # a terminal of 80 columns: tqdm draws nothing in one without a size (its width is -1)
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    chunks: list[bytes] = []

    def drain() -> None:  # read while the child runs, so nothing waits in the terminal's buffer
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the other end is closed
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        r = subprocess.run([sys.executable, "-m", "purepcap", "read", str(src), "-w", str(tmp_path / "o.pcap")],
                           stderr=follower, stdout=subprocess.PIPE, timeout=60,
                           env={**os.environ, "PYTHONPATH": str(ROOT), "PUREPCAP_PROGRESS_DELAY": "0"})
    finally:
        os.close(follower)
        reader.join(timeout=10)
        os.close(leader)
    shown = b"".join(chunks).decode()
    assert r.returncode == 0
    import importlib.util

    if any(importlib.util.find_spec(m) for m in ("tqdm", "rich")):
        assert "packets" in shown  # their own layout
    else:
        assert "packets/s" in shown and "ETA" in shown and " packets " in shown


def test_write_from_multi_interface_pcapng(tmp_path: Path):
    src = tmp_path / "two.pcapng"
    raw = ipv4("10.9.9.9", "10.8.8.8", 17, udp(5, 6, b"raw"))
    with PcapngWriter(src, linktype=None) as w:
        eth = w.add_interface(linktypes.EN10MB, name="eth0")
        rawif = w.add_interface(linktypes.RAW, name="tun0", tsresol=6)
        w.write_packet(T0, sample_frames()[0], interface=eth)
        w.write_packet(T0 + 1000, raw, interface=rawif)
    _rc, text, _ = run_main("read", str(src))
    assert text.splitlines()[1] == "2018-01-09 08:16:12.210011 IP 10.9.9.9.5 > 10.8.8.8.6: UDP, length 3"
    doc = json.loads(run_main("info", "--json", str(src))[1])[0]
    assert [(i["name"], i["linktype"], i["packets"]) for i in doc["interfaces"]] == [
        ("eth0", 1, 1), ("tun0", linktypes.RAW, 1)]
    assert doc["application"] == "purepcap" and doc["linktypes"] == [1, linktypes.RAW]
    assert run_main("info", str(src))[1].count("snaplen 262144, 1 packet\n") == 2
    out = tmp_path / "copy.pcapng"
    assert run_main("read", str(src), "-w", str(out))[0] == 0
    with purepcap.open(out) as cap:
        got = [(p.linktype, p.time, p.data) for p in cap]
        assert [i.name for i in cap.interfaces] == ["eth0", "tun0"]
    assert got == [(1, T0, sample_frames()[0]), (linktypes.RAW, T0 + 1000, raw)]
    # one pcap file holds one link type: say so, in one line, and suggest pcapng
    assert_one_line_error(run_cli("read", str(src), "-w", str(tmp_path / "x.pcap")), "x.pcap", ".pcapng")


@needs_live
def test_interfaces_lists_loopback():
    r = run_cli("interfaces")
    assert r.returncode == 0
    assert any(line.split(" ")[0].endswith(".lo") for line in r.stdout.decode().splitlines())


def test_more_bad_inputs_are_one_line(tmp_path: Path, sample: Path):
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    assert_one_line_error(run_cli("read", str(empty)), "empty.pcap")
    assert_one_line_error(run_cli("read", str(tmp_path)), str(tmp_path))  # a directory
    assert_one_line_error(run_cli("convert", str(sample), str(tmp_path / "no" / "o.csv")), "no/o.csv")
    assert_one_line_error(run_cli("read", str(sample), "-w", str(tmp_path / "no" / "o.pcap")), "no/o.pcap")
    assert_one_line_error(run_cli("convert", str(sample), str(tmp_path / "o.csv"), "--columns", "bogus"), "bogus")
    assert not (tmp_path / "o.csv").exists()


def test_main_returns_codes_in_process(sample: Path):
    assert run_main("read", str(sample), "-c", "1")[0] == 0
    assert run_main("bogus")[0] == 2
    assert run_main("read", "--help")[0] == 0
    rc, _, err = run_main("read", str(sample.parent / "missing.pcap"))
    assert rc == 1 and err.count("\n") == 1


@given(st.integers(0, 65535), st.integers(0, 65535), st.binary(max_size=64), st.sampled_from([6, 17]),
       st.integers(0, 80), st.integers(0, 0xFFFF), st.integers(-40, 40), st.integers(0, 15))
def test_fast_path_agrees_with_general_path(sport, dport, data, proto, cut, frag, total_delta, doff):
    from purepcap import _lines

    transport = tcp(sport, dport, data) if proto == 6 else udp(sport, dport, data)
    if proto == 6:
        transport = transport[:12] + bytes([doff << 4]) + transport[13:]
    ip = ipv4("10.0.0.1", "10.0.0.2", proto, transport, frag=frag & 0x3FFF if frag % 3 == 0 else 0,
              total=max(0, 20 + len(transport) + total_delta))
    frame = ether(ip)
    frame = frame[:len(frame) - cut] if cut < len(frame) else frame
    fast = _lines._fast(frame, len(frame)) if len(frame) >= _lines._FAST_LEN else None
    saved = _lines._fast
    _lines._fast = lambda d, n: None
    try:
        general = describe(1, frame, len(frame))
    finally:
        _lines._fast = saved
    assert fast is None or fast == general
    assert describe(1, frame, len(frame)) == general


def _read_back(pd, path: Path, kind: str):
    if kind == "csv":
        return pd.read_csv(path, parse_dates=["time"], dtype={"src_port": "UInt16", "dst_port": "UInt16",
                                                              "src_host": str, "dst_host": str})
    if kind == "jsonl":
        got = pd.DataFrame([json.loads(line) for line in path.read_text().splitlines()],
                           columns=["time", "src_host", "src_port", "dst_host", "dst_port", "protocol"])
        got["time"] = pd.to_datetime(got["time"])
        for c in ("src_port", "dst_port"):
            got[c] = got[c].astype("UInt16")
        return got
    return pd.read_parquet(path)


@pytest.mark.parametrize("kind", ["csv", "jsonl", "parquet"])
@pytest.mark.parametrize("name,expr", [("local.pcap", ""), ("http.pcap", "tcp port 80"),
                                       ("vlan.pcap", "vlan and ip6"), ("truncated-be.pcap", "tcp"),
                                       ("local.pcapng", "icmp or icmp6")])
def test_convert_fixtures_with_filters_equal_to_pandas(tmp_path: Path, kind: str, name: str, expr: str):
    pytest.importorskip("pyarrow")
    src = ROOT / "fixtures" / name
    if not src.exists():
        pytest.skip(f"fixtures/{name} not generated")
    pd, want = _expected(src, filter=expr or None)
    out = tmp_path / f"o.{kind}"
    rc, _, err = run_main("convert", str(src), str(out), *expr.split())
    assert rc == 0, err
    got = _read_back(pd, out, kind)
    pd.testing.assert_frame_equal(got, want.reset_index(drop=True), check_dtype=False, check_categorical=False)
    if expr:
        assert len(want) < len(_expected(src)[1])  # the filter did select


def test_arp_forms_like_tcpdump():
    reply = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 2, bytes.fromhex("020000000001"),
                        socket.inet_aton("10.0.0.1"), bytes.fromhex("020000000002"), socket.inet_aton("10.0.0.2"))
    f = ether(reply, 0x0806)
    assert describe(1, f, len(f)) == "ARP, Reply 10.0.0.1 is-at 02:00:00:00:00:01, length 46"
    req = arp_request("10.0.0.1", "10.0.0.2")
    req = req[:18] + bytes.fromhex("0a0b0c0d0e0f") + req[24:]  # a target MAC is shown when not zero
    f = ether(req, 0x0806)
    assert describe(1, f, len(f)) == "ARP, Request who-has 10.0.0.2 (0a:0b:0c:0d:0e:0f) tell 10.0.0.1, length 46"
    odd = struct.pack("!HHBBH", 1, 0x1234, 6, 2, 1) + b"\0" * 16
    f = ether(odd, 0x0806)
    assert describe(1, f, len(f)) == "ARP, Ethernet (len 6), Unknown Protocol (0x1234) (len 2), length 46"
    assert describe(1, ether(b"\0\1\x08\0\6\4", 0x0806)[:20], 60) == " [|arp]"


@needs_tcpdump
def test_pipes_to_and_from_tcpdump(sample: Path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TZ": "UTC"}
    py = f"{sys.executable} -m purepcap"
    into = subprocess.run(["bash", "-o", "pipefail", "-c", f"tcpdump -r {sample} -w - 2>/dev/null | {py} read -"],
                          capture_output=True, env=env, timeout=60)
    assert into.returncode == 0, into.stderr
    assert into.stdout.decode() == run_main("read", str(sample))[1]
    out = subprocess.run(["bash", "-o", "pipefail", "-c",
                          f"{py} read {sample} -w - | tcpdump -tttt -n -q -r - 2>/dev/null"],
                         capture_output=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.decode().splitlines() == _tcpdump(sample)


def test_stp_like_tcpdump():
    bpdu = (b"\x00\x00\x00\x00\x00" + b"\x80\x01" + bytes.fromhex("001906eab880") + b"\0\0\0\0"
            + b"\x80\x01" + bytes.fromhex("001906eab880") + b"\x80\x05" + b"\0" * 8)
    llc = b"\x42\x42\x03" + bpdu
    frame = bytes.fromhex("0180c2000000") + bytes.fromhex("001906eab881") + struct.pack("!H", len(llc)) + llc
    frame += b"\0" * (60 - len(frame))
    assert describe(1, frame, len(frame)) == \
        "STP 802.1d, Config, Flags [none], bridge-id 8001.00:19:06:ea:b8:80.8005, length 35"
    rstp = bytearray(frame)
    rstp[14 + 3 + 2], rstp[14 + 3 + 3], rstp[14 + 3 + 4] = 2, 2, 0x32
    assert describe(1, bytes(rstp), len(rstp)).startswith("STP 802.1w, Rapid STP, Flags [Proposal, Learn, Forward], ")


_SAMPLE_BYTES: list[bytes] = []


def _sample_bytes() -> bytes:
    if not _SAMPLE_BYTES:
        buf = io.BytesIO()
        with PcapWriter(buf) as w:
            for i, f in enumerate(sample_frames()):
                w.write_packet(T0 + i, f)
            _SAMPLE_BYTES.append(buf.getvalue())
    return _SAMPLE_BYTES[0]


@given(st.data())
def test_any_damage_gives_exit_0_or_1_and_at_most_one_line(tmp_path_factory, data):
    raw = bytearray(_sample_bytes())
    how = data.draw(st.sampled_from(["cut", "flip", "random"]))
    if how == "cut":
        raw = raw[:data.draw(st.integers(0, len(raw)))]
    elif how == "flip":
        for _ in range(data.draw(st.integers(1, 8))):
            raw[data.draw(st.integers(0, len(raw) - 1))] ^= 1 << data.draw(st.integers(0, 7))
    else:
        raw = bytearray(data.draw(st.binary(max_size=200)))
    path = tmp_path_factory.mktemp("damage") / "d.pcap"
    path.write_bytes(bytes(raw))
    for verb in (["read", str(path)], ["read", "--payload", str(path)], ["info", str(path)]):
        rc, out, err = run_main(*verb)
        assert rc in (0, 1), (verb, rc, err)
        assert (rc == 1) == (err.count("\n") == 1) and err.count("\n") <= 1, (verb, err)
    out = path.parent / "d.csv"
    rc, _, err = run_main("convert", str(path), str(out))
    assert rc in (0, 1) and err.count("\n") == rc
    assert sorted(p.name for p in path.parent.iterdir()) == (["d.csv", "d.pcap"] if rc == 0 else ["d.pcap"])


def test_tqdm_is_preferred_when_installed(monkeypatch):
    """tqdm is not installed here: a stand-in module checks how it is driven."""
    import types

    calls: list[tuple] = []

    class FakeBar:
        def __init__(self, **kw):
            calls.append(("init", kw))

        def update(self, n):
            calls.append(("update", n))

        def set_postfix_str(self, text, refresh=True):
            calls.append(("postfix", text))

        def close(self):
            calls.append(("close",))

    monkeypatch.setitem(sys.modules, "tqdm", types.SimpleNamespace(tqdm=FakeBar))
    with make_progress(5000, stream=FakeTTY()) as p:
        for _ in range(2048):
            p.tick(2)
    assert type(p).__name__ == "TqdmProgress"
    assert calls[0][0] == "init" and calls[0][1]["total"] == 5000 and calls[0][1]["leave"] is False
    assert sum(n for kind, *rest in calls if kind == "update" for n in rest) == 4096
    assert ("postfix", "2,048 packets") in calls and calls[-1] == ("close",)


@pytest.mark.parametrize("pcapng", [False, True])
def test_read_from_a_live_pipe_shows_packets_as_they_come(tmp_path: Path, pcapng: bool):
    """`tcpdump -U -w - | purepcap read -l -`: a packet shows before the next one is written."""
    import select

    frames = sample_frames()[:3]
    whole = write_capture(tmp_path / ("w.pcapng" if pcapng else "w.pcap"), frames, pcapng=pcapng).read_bytes()
    size = len(whole)
    # pieces: the file header with the first packet, then one packet each
    if pcapng:  # blocks: SHB, IDB, then one EPB per packet
        pos = 0
        blocks = []
        while pos < size:
            blen = struct.unpack_from("<I", whole, pos + 4)[0]
            blocks.append(whole[pos:pos + blen])
            pos += blen
        pieces = [b"".join(blocks[:3])] + blocks[3:]
    else:
        pos = 24
        starts = [0]
        for f in frames:
            pos += 16 + len(f)
            starts.append(pos)
        pieces = [whole[:starts[1]], whole[starts[1]:starts[2]], whole[starts[2]:]]
    assert b"".join(pieces) == whole and len(pieces) == 3
    proc = subprocess.Popen([sys.executable, "-m", "purepcap", "read", "-l", "-"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        lines = []
        for piece in pieces:
            proc.stdin.write(piece)
            proc.stdin.flush()
            ready, _, _ = select.select([proc.stdout], [], [], 30)
            assert ready, f"no line for packet {len(lines) + 1} before the next was written"
            lines.append(proc.stdout.readline().decode())
        proc.stdin.close()
        rest = proc.stdout.read()
        err = proc.stderr.read()
        proc.wait(timeout=30)
    finally:
        proc.kill()
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            pipe.close()
    assert proc.returncode == 0, err
    assert rest == b""
    assert "".join(lines) == run_main("read", str(tmp_path / ("w.pcapng" if pcapng else "w.pcap")))[1]


def test_convert_parquet_without_pandas(sample: Path, tmp_path: Path):
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "o.parquet"
    # without pandas: the table is to_arrow's, built from the numpy columns
    # (a finder that refuses pandas: pyarrow looks pandas up itself and would find a None in sys.modules)
    code = ("import sys\n"
            "class NoPandas:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] == 'pandas': raise ModuleNotFoundError(name)\n"
            "sys.meta_path.insert(0, NoPandas())\nfrom purepcap.cli import main\n"
            f"sys.exit(main(['convert', '--payload', {str(sample)!r}, {str(out)!r}]))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr
    table = pq.read_table(out)
    rows = list(purepcap.records(str(sample), payload=True))
    assert table.column_names == ["time", "src_host", "src_port", "dst_host", "dst_port", "protocol", "payload"]
    assert table.column("src_port").to_pylist() == [r["src_port"] for r in rows]
    assert table.column("payload").to_pylist() == [r["payload"] for r in rows]
    assert [t.value for t in table.column("time")] == [r["time"] for r in rows]
