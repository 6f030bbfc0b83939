# Live capture on real kernels, inside private network namespaces made for each test:
# two namespaces joined by a veth pair, IPv6 off, static neighbours (so no ARP), every
# destination port bound (so no ICMP unreachable). The test thread enters a namespace
# with setns() only to create sockets there; a socket stays in its namespace, so the
# capture and the sender can then be driven from here. Traffic goes only to the peer's
# address (or to 127.0.0.1 inside a namespace), in bounded loops. Needs root; skips
# cleanly otherwise.
from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

import pytest

from purepcap import linktypes


def _can_capture() -> bool:
    """Root with CAP_NET_RAW (a root without it, as in some containers, skips too)."""
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        return False
    try:
        socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0).close()
    except OSError:
        return False
    return True


pytestmark = [
    pytest.mark.skipif(not _can_capture(), reason="live capture tests need root with CAP_NET_RAW on Linux"),
    pytest.mark.skipif(shutil.which("ip") is None, reason="needs iproute2 (ip)"),
]

from _netns import link_veth, namespaces, netns, setns, sh  # noqa: E402

from purepcap import live  # noqa: E402

MAC_A = bytes.fromhex("020000000a01")
MAC_B = bytes.fromhex("020000000b02")
IP_A, IP_B = "10.77.0.1", "10.77.0.2"
_seq = itertools.count()


@dataclass
class Pair:
    a: str  # namespace where we capture
    b: str  # namespace that sends
    va: str
    vb: str

    def udp_receiver(self, port: int) -> socket.socket:
        with netns(self.a):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
            s.bind((IP_A, port))
        return s

    def udp_sender(self) -> socket.socket:
        with netns(self.b):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((IP_B, 40000))
        return s

    def raw_sender(self) -> socket.socket:
        with netns(self.b):
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
            s.bind((self.vb, 0))
        return s

    def capture(self, **kwargs) -> live.LiveCapture:
        with netns(self.a):
            return live.capture(self.va, **kwargs)

    def promiscuity(self) -> int:
        """The device's promiscuity count (SIOCGIFFLAGS shows only the user-set flag, so ask
        netlink through ip)."""
        out = subprocess.run(["ip", "-n", self.a, "-d", "-j", "link", "show", self.va], check=True,
                             capture_output=True, text=True, timeout=30).stdout
        return json.loads(out)[0]["promiscuity"]

    def iff_promisc(self) -> bool:
        """IFF_PROMISC in the device's own flags (sysfs, as `ip netns exec` mounts it for
        the namespace; SIOCGIFFLAGS would show only the user-requested flag)."""
        out = subprocess.run(["ip", "netns", "exec", self.a, "cat", f"/sys/class/net/{self.va}/flags"],
                             check=True, capture_output=True, text=True, timeout=30).stdout
        return bool(int(out, 16) & 0x100)


@pytest.fixture
def pair():
    n = next(_seq)
    tag = f"{os.getpid()}x{n}"
    a, b = f"pplive{tag}a", f"pplive{tag}b"
    with namespaces(a, b, skip=pytest.skip):
        va, vb = f"va{n}", f"vb{n}"
        link_veth(a, b, va, vb, MAC_A.hex(":"), MAC_B.hex(":"), IP_A, IP_B)
        yield Pair(a, b, va, vb)


@contextlib.contextmanager
def pinned():
    """Keep this thread on one CPU while sending, so the kernel keeps the order."""
    if not hasattr(os, "sched_getaffinity"):  # PyPy 3.9 has none: the machine's 2 CPUs keep it close enough
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def send_udp(pair: Pair, payloads, port: int = 5001) -> None:
    tx = pair.udp_sender()
    with tx, pinned():
        for p in payloads:
            tx.sendto(p, (IP_A, port))


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def udp_frame(payload: bytes, dport: int = 5001, *, ident: int = 0, tags: tuple = ()) -> bytes:
    """An Ethernet/IPv4/UDP frame from B to A (UDP checksum 0: none)."""
    udp = struct.pack("!HHHH", 40001, dport, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), ident, 0, 64, 17, 0,
                     socket.inet_aton(IP_B), socket.inet_aton(IP_A))
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    vlan = b"".join(struct.pack("!HH", tpid, tci) for tpid, tci in tags)
    return MAC_A + MAC_B + vlan + b"\x08\x00" + ip + udp


def check_udp_from_b(pkt, payload: bytes, dport: int = 5001) -> None:
    """The frame the kernel built for a UDP datagram B sent to A, field by field."""
    d = pkt.data
    assert d[:14] == MAC_A + MAC_B + b"\x08\x00"
    ip = d[14:34]
    assert ip[0] == 0x45 and struct.unpack("!H", ip[2:4])[0] == 28 + len(payload)
    assert ip[9] == 17 and ip[12:16] == socket.inet_aton(IP_B) and ip[16:20] == socket.inet_aton(IP_A)
    assert checksum(ip) == 0
    assert d[34:42] == struct.pack("!HHH", 40000, dport, 8 + len(payload)) + d[40:42]
    assert d[42:] == payload
    assert pkt.caplen == pkt.length == len(d) == 42 + len(payload)
    assert pkt.linktype == linktypes.EN10MB and pkt.interface == 0


METHODS = [
    pytest.param({"method": "ring"}, id="tpacket_v3"),
    pytest.param({"method": "ring", "immediate": True}, id="tpacket_v2"),
    pytest.param({"method": "recvmsg"}, id="recvmsg"),
]
EXPECTED_METHOD = {"tpacket_v3": "tpacket_v3", "tpacket_v2": "tpacket_v2", "recvmsg": "recvmsg"}


@pytest.mark.parametrize("opts", METHODS)
def test_udp_datagrams_arrive_complete_in_order(pair, opts, request):
    rx = pair.udp_receiver(5001)
    payloads = [b"%05d" % i + bytes(range(i % 200)) for i in range(300)]
    t0 = time.time_ns()
    with rx, pair.capture(count=300, timeout=10, **opts) as cap:
        assert cap.method == request.node.callspec.id
        assert cap.linktype == linktypes.EN10MB and cap.snaplen == 262144
        send_udp(pair, payloads)
        pkts = list(cap)
        stats = cap.stats
    t1 = time.time_ns()
    assert len(pkts) == 300
    assert [p.frame for p in pkts] == list(range(1, 301))
    for pkt, payload in zip(pkts, payloads):
        check_udp_from_b(pkt, payload)
    times = [p.time for p in pkts]
    assert t0 <= times[0] and times == sorted(times) and times[-1] <= t1
    assert stats == {"captured": 300, "received": 300, "filter_passed": 300, "dropped": 0}
    assert cap.closed


@pytest.mark.parametrize("fail_at", ["ring", "mmap"])
@pytest.mark.parametrize("immediate", [False, True])
def test_falls_back_to_recvmsg_when_the_ring_cannot_be_set_up(pair, monkeypatch, fail_at, immediate):
    from purepcap import _live_linux as L
    if fail_at == "ring":
        real_setsockopt = socket.socket.setsockopt

        class NoRing(socket.socket):
            def setsockopt(self, level, opt, value, *rest):
                if level == L.SOL_PACKET and opt == L.PACKET_RX_RING:
                    raise OSError(12, "Cannot allocate memory")
                return real_setsockopt(self, level, opt, value, *rest)

        monkeypatch.setattr(L.socket, "socket", NoRing)
    else:
        def no_mmap(*args, **kwargs):
            raise OSError(12, "Cannot allocate memory")

        monkeypatch.setattr(L.mmap, "mmap", no_mmap)
    rx = pair.udp_receiver(5001)
    with rx, pair.capture(count=5, timeout=5, immediate=immediate) as cap:
        assert cap.method == "recvmsg"
        send_udp(pair, [b"fb%d" % i for i in range(5)])
        pkts = list(cap)
    monkeypatch.undo()
    assert len(pkts) == 5
    for pkt, i in zip(pkts, range(5)):
        check_udp_from_b(pkt, b"fb%d" % i)
    def no_mmap_at_all(*args, **kwargs):
        raise OSError(12, "Cannot allocate memory")

    monkeypatch.setattr(L.mmap, "mmap", no_mmap_at_all)
    with pytest.raises(live.CaptureError, match="^cannot capture on .*: Cannot allocate memory$"):
        pair.capture(method="ring")  # insists on the ring


@pytest.mark.parametrize("opts", METHODS)
def test_exact_bytes_and_vlan_tags_put_back(pair, opts):
    # The kernel strips the outer 802.1Q/802.1ad tag into metadata before AF_PACKET sees
    # it; the capture must show the frame as it was sent.
    rx = pair.udp_receiver(5001)
    frames = [udp_frame(b"plain", ident=1),
              udp_frame(b"tagged", ident=2, tags=((0x8100, 0x2005),)),
              udp_frame(b"qinq", ident=3, tags=((0x88A8, 100), (0x8100, 7))),
              udp_frame(b"x" * 1400, ident=4),
              udp_frame(b"", ident=5, tags=((0x8100, 4095),))]
    raw = pair.raw_sender()
    with rx, raw, pair.capture(count=len(frames), timeout=10, **opts) as cap:
        with pinned():
            for f in frames:
                raw.send(f)
        pkts = list(cap)
    assert [p.data for p in pkts] == frames
    assert [(p.caplen, p.length) for p in pkts] == [(len(f), len(f)) for f in frames]


@pytest.mark.parametrize("opts", METHODS)
def test_snaplen_truncates(pair, opts):
    rx = pair.udp_receiver(5001)
    frames = [udp_frame(b"y" * 300, ident=9), udp_frame(b"z" * 10, ident=10),
              udp_frame(b"v" * 300, ident=11, tags=((0x8100, 3),))]
    raw = pair.raw_sender()
    with rx, raw, pair.capture(count=3, timeout=10, snaplen=60, **opts) as cap:
        assert cap.snaplen == 60
        for f in frames:
            raw.send(f)
        pkts = list(cap)
    assert [(p.caplen, p.length, p.data) for p in pkts] == [
        (min(60, len(f)), len(f), f[:60]) for f in frames]


def wait_for_pcap(path, caplens, timeout: float = 15.0) -> None:
    """Wait until tcpdump -U has written records of these captured lengths (a loaded
    machine may run it late); the comparison after it says what is missing."""
    want = 24 + sum(16 + n for n in caplens)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if os.path.exists(path) and os.path.getsize(path) >= want:
            return
        time.sleep(0.02)


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="needs tcpdump")
@pytest.mark.parametrize("opts", METHODS)
def test_same_packets_as_tcpdump(pair, tmp_path, opts):
    # tcpdump (libpcap) captures on the same device at the same time: both sockets get the
    # same kernel buffers, so bytes, lengths and nanosecond stamps must all be equal,
    # including the VLAN tags both put back.
    import purepcap
    out = tmp_path / "tcpdump.pcap"
    rx = pair.udp_receiver(5001)
    tcpdump = subprocess.Popen(["ip", "netns", "exec", pair.a, "tcpdump", "-Z", "root", "--immediate-mode", "-i", pair.va, "-n", "-U",
                                "--time-stamp-precision=nano", "-s", "100", "-w", str(out)],
                               stderr=subprocess.PIPE, text=True)
    try:
        line = tcpdump.stderr.readline()  # "listening on ..." once its filter is in place
        assert "listening on" in line, line
        frames = [udp_frame(b"%d" % i * (i % 50), ident=i, tags=((0x8100, i),) if i % 3 == 0 else ())
                  for i in range(60)]
        raw = pair.raw_sender()
        with rx, raw, pair.capture(count=60, timeout=10, snaplen=100, **opts) as cap:
            with pinned():
                for f in frames:
                    raw.send(f)
            ours = list(cap)
        wait_for_pcap(out, [p.caplen for p in ours])
    finally:
        tcpdump.send_signal(signal.SIGINT)
        _, report = tcpdump.communicate(timeout=10)
    assert "60 packets captured" in report, report
    with purepcap.open(out) as theirs_cap:
        theirs = list(theirs_cap)
    assert len(theirs) == 60
    assert [(p.time, p.caplen, p.length, p.data) for p in ours] == [
        (p.time, p.caplen, p.length, p.data) for p in theirs]
    assert [p.data for p in ours] == [f[:100] for f in frames]
    assert sum(p.caplen < p.length for p in ours) > 10  # snaplen cut some


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="needs tcpdump")
@pytest.mark.parametrize("opts", METHODS)
def test_any_device_same_as_tcpdump(pair, tmp_path, opts):
    # The cooked "any" capture against tcpdump -i any -y LINUX_SLL, at the same time:
    # the SLL headers, the VLAN tags put back into them, and loopback shown once.
    import purepcap
    sh("ip", "-n", pair.a, "link", "set", "lo", "up")
    out = tmp_path / "any.pcap"
    rx = pair.udp_receiver(5001)
    with netns(pair.a):
        lo_rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        lo_rx.bind(("127.0.0.1", 5001))
        lo_tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tcpdump = subprocess.Popen(["ip", "netns", "exec", pair.a, "tcpdump", "-Z", "root", "--immediate-mode",
                                "-B", "32768", "-i", "any", "-y", "LINUX_SLL", "-n", "-U",
                                "--time-stamp-precision=nano",
                                "-w", str(out)], stderr=subprocess.PIPE, text=True)
    try:
        for line in tcpdump.stderr:
            if "listening on" in line:
                break
        raw = pair.raw_sender()
        with netns(pair.a):
            cap = live.capture("any", count=30, timeout=10, **opts)
        with rx, lo_rx, lo_tx, raw, cap:
            with pinned():
                for i in range(15):
                    raw.send(udp_frame(b"v%d" % i, ident=i, tags=((0x8100, i),) if i % 2 else ()))
                    lo_tx.sendto(b"lo%d" % i, ("127.0.0.1", 5001))
            ours = list(cap)
        wait_for_pcap(out, [p.caplen for p in ours])
    finally:
        tcpdump.send_signal(signal.SIGINT)
        _, report = tcpdump.communicate(timeout=10)
    assert "30 packets captured" in report, report
    with purepcap.open(out) as theirs_cap:
        theirs = list(theirs_cap)
    assert {p.linktype for p in theirs} == {linktypes.LINUX_SLL}
    assert [(p.time, p.caplen, p.length, p.data) for p in ours] == [
        (p.time, p.caplen, p.length, p.data) for p in theirs]


def test_kernel_filter_program(pair):
    # A hand-written cBPF program for "udp dst port 5002" on Ethernet: only those
    # packets reach the socket, and the kernel counts only those.
    prog = [(0x28, 0, 0, 12), (0x15, 0, 5, 0x0800), (0x30, 0, 0, 23), (0x15, 0, 3, 17),
            (0x28, 0, 0, 36), (0x15, 0, 1, 5002), (0x06, 0, 0, 0xFFFFFFFF), (0x06, 0, 0, 0)]
    rx1, rx2 = pair.udp_receiver(5001), pair.udp_receiver(5002)
    with rx1, rx2, pair.capture(filter=prog, timeout=1.5) as cap:
        tx = pair.udp_sender()
        with tx, pinned():
            for i in range(100):
                tx.sendto(b"a%d" % i, (IP_A, 5001))
                if i % 4 == 0:
                    tx.sendto(b"b%d" % i, (IP_A, 5002))
        pkts = list(cap)
        stats = cap.stats
    assert [p.data[42:] for p in pkts] == [b"b%d" % i for i in range(0, 100, 4)]
    assert stats["received"] == 25 and stats["captured"] == 25 and stats["dropped"] == 0


def test_no_packet_slips_past_the_filter_while_opening(pair):
    # Traffic the filter rejects flows the whole time the capture opens: the filter is
    # on the socket before the socket is bound to the device, so none gets in.
    only_5002 = [(0x28, 0, 0, 12), (0x15, 0, 5, 0x0800), (0x30, 0, 0, 23), (0x15, 0, 3, 17),
                 (0x28, 0, 0, 36), (0x15, 0, 1, 5002), (0x06, 0, 0, 0xFFFFFFFF), (0x06, 0, 0, 0)]
    rx1, rx2 = pair.udp_receiver(5001), pair.udp_receiver(5002)
    noise, done = pair.udp_sender(), threading.Event()

    def flood():
        for _ in range(200_000):  # bounded
            if done.is_set():
                break
            noise.sendto(b"noise", (IP_A, 5001))

    t = threading.Thread(target=flood)
    t.start()
    tx = None
    try:
        with netns(pair.b):
            tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for opts in METHODS * 3:
            with pair.capture(filter=only_5002, timeout=0.3, **opts.values[0]) as cap:
                tx.sendto(b"wanted", (IP_A, 5002))
                got = [p.data[42:] for p in cap]
            assert got == [b"wanted"], opts.id
    finally:
        done.set()
        t.join()
        noise.close()
        rx1.close()
        rx2.close()
        if tx is not None:
            tx.close()


def _have_compiler() -> bool:
    try:
        from purepcap.filter import compile_bpf  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.parametrize("opts", METHODS)
def test_kernel_filter_expression(pair, opts):
    if not _have_compiler():
        with pytest.raises(live.CaptureError, match="pcap-filter compiler"):
            pair.capture(filter="udp dst port 5002")
        return
    rx1, rx2 = pair.udp_receiver(5001), pair.udp_receiver(5002)
    with rx1, rx2, pair.capture(filter="udp dst port 5002", timeout=1.5, **opts) as cap:
        tx = pair.udp_sender()
        with tx, pinned():
            for i in range(60):
                tx.sendto(b"a%d" % i, (IP_A, 5001 + i % 2))
        pkts = list(cap)
    assert [p.data[42:] for p in pkts] == [b"a%d" % i for i in range(1, 60, 2)]


def test_vlan_expressions_see_the_tag_the_kernel_took_off(pair):
    # The kernel strips the outer tag before socket filters run; an expression about
    # VLANs is matched on the bytes with the tag put back, as tcpdump reads a file.
    if not _have_compiler():
        pytest.skip("the pcap-filter compiler (purepcap.filter.compile_bpf) is not built yet")
    rx = pair.udp_receiver(5001)
    frames = [udp_frame(b"plain"), udp_frame(b"v5", tags=((0x8100, 5),)),
              udp_frame(b"v7", tags=((0x8100, 7),)), udp_frame(b"ad", tags=((0x88A8, 5), (0x8100, 9)))]
    raw = pair.raw_sender()
    with rx, raw:
        for expr, want in (("vlan 5", [1, 3]), ("not vlan", [0]), ("vlan and udp port 5001", [1, 2])):
            for opts in METHODS:
                with pair.capture(filter=expr, timeout=0.5, **opts.values[0]) as cap:
                    with pinned():
                        for f in frames:
                            raw.send(f)
                    pkts = list(cap)
                    stats = cap.stats
                assert [p.data for p in pkts] == [frames[i] for i in want], (expr, opts.id)
                assert [p.frame for p in pkts] == list(range(1, len(want) + 1))
                assert stats["received"] == 4 and stats["filter_passed"] == len(want)


def test_records_and_dataframes_from_a_live_capture(pair):
    import purepcap
    rx = pair.udp_receiver(5001)
    with rx, pair.capture(count=5, timeout=10) as cap:
        send_udp(pair, [b"rec%d" % i for i in range(5)])
        rows = list(purepcap.records(cap, payload=True))
    assert [(r["frame"], r["src_host"], r["src_port"], r["dst_host"], r["dst_port"], r["protocol"],
             r["payload"]) for r in rows] == [
        (i + 1, IP_B, 40000, IP_A, 5001, "udp", b"rec%d" % i) for i in range(5)]
    pd = pytest.importorskip("pandas")
    rx = pair.udp_receiver(5001)
    with rx, pair.capture(chunksize=4, timeout=10) as cap:
        send_udp(pair, [b"df%d" % i for i in range(8)])
        frames = [purepcap.to_pandas(cap.next_chunk()) for _ in range(2)]
    df = pd.concat(frames, ignore_index=True)
    assert list(df["dst_port"]) == [5001] * 8 and list(df["src_host"].astype(str)) == [IP_B] * 8


def test_intake_live_source_reads_the_next_chunk(pair):
    # The seed's intake.open_pcap(None, interface=..., chunksize=N).read(): each read()
    # gives the next N packets as a DataFrame.
    intake = pytest.importorskip("intake")
    pytest.importorskip("pandas")
    if not hasattr(intake, "open_pcap"):
        pytest.skip("purepcap's intake driver is not registered (package not installed)")
    rx = pair.udp_receiver(5001)
    tx = pair.udp_sender()
    ds = intake.open_pcap(None, interface=pair.va, chunksize=3)

    def send_later():
        time.sleep(0.3)
        for i in range(6):
            tx.sendto(b"in%d" % i, (IP_A, 5001))

    sender = threading.Thread(target=send_later)
    sender.start()
    try:
        with netns(pair.a):  # the capture opens at the first read()
            first = ds.read()
        second = ds.read()
    finally:
        sender.join()
        ds.close()
        tx.close()
        rx.close()
    assert len(first) == 3 and len(second) == 3
    assert list(first["dst_port"]) + list(second["dst_port"]) == [5001] * 6
    assert list(first["src_port"]) == [40000] * 3


TCPDUMP_EXPRESSIONS = ["udp port 5002", "udp dst port 5001 and ip[5] & 2 = 2", "vlan", "vlan 3",
                       "not vlan", "vlan and udp port 5002", "greater 90", "udp and less 70",
                       "ether src 02:00:00:00:0b:02 and not udp port 5001"]


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="needs tcpdump")
def test_kernel_filters_select_what_tcpdump_selects(pair, tmp_path):
    # For each expression, tcpdump and our capture run at the same time on the same
    # device: the same packets must come through (VLAN-tagged ones included, where
    # libpcap uses the kernel's VLAN metadata and we match on the restored bytes).
    if not _have_compiler():
        pytest.skip("the pcap-filter compiler (purepcap.filter.compile_bpf) is not built yet")
    import purepcap
    rx1, rx2 = pair.udp_receiver(5001), pair.udp_receiver(5002)
    raw = pair.raw_sender()
    frames = [udp_frame(b"x" * (i * 7 % 60), dport=5001 + i % 2, ident=i,
                        tags=((0x8100, i % 5),) if i % 3 == 0 else ()) for i in range(40)]
    with rx1, rx2, raw:
        for n, expr in enumerate(TCPDUMP_EXPRESSIONS):
            out = tmp_path / f"f{n}.pcap"
            tcpdump = subprocess.Popen(["ip", "netns", "exec", pair.a, "tcpdump", "-Z", "root",
                                        "--immediate-mode", "-i", pair.va, "-n", "-U", "-w", str(out), expr],
                                       stderr=subprocess.PIPE, text=True)
            try:
                for line in tcpdump.stderr:
                    if "listening on" in line:
                        break
                with pair.capture(filter=expr, timeout=0.5) as cap:
                    with pinned():
                        for f in frames:
                            raw.send(f)
                    ours = [p.data for p in cap]
                wait_for_pcap(out, [len(d) for d in ours])
            finally:
                tcpdump.send_signal(signal.SIGINT)
                tcpdump.communicate(timeout=10)
            with purepcap.open(out) as theirs:
                want = [p.data for p in theirs]
            assert ours == want, expr
            assert 0 < len(ours) < len(frames), expr  # the expression really selects


def test_chunks(pair):
    rx = pair.udp_receiver(5001)
    with rx, pair.capture(count=30, chunksize=7, timeout=10) as cap:
        send_udp(pair, [b"c%d" % i for i in range(30)])
        chunks = list(cap)
    assert [len(c) for c in chunks] == [7, 7, 7, 7, 2]
    flat = [p for c in chunks for p in c]
    assert [p.frame for p in flat] == list(range(1, 31))
    assert [p.data[42:] for p in flat] == [b"c%d" % i for i in range(30)]


def test_next_chunk_returns_the_next_chunk(pair):
    rx = pair.udp_receiver(5001)
    with rx, pair.capture(chunksize=10, timeout=5) as cap:
        send_udp(pair, [b"r%d" % i for i in range(25)])
        first, second = cap.next_chunk(), cap.next_chunk()
        cap.stop()
        rest = cap.next_chunk()
    assert [p.data[42:] for p in first + second] == [b"r%d" % i for i in range(20)]
    assert [p.frame for p in second] == list(range(11, 21))
    assert len(rest) <= 5


def settled_stats(cap, received: int, timeout: float = 10.0) -> dict:
    """cap.stats once the kernel has counted ``received`` packets (on a loaded machine
    the receive work may run a little after sendto() returns)."""
    end = time.monotonic() + timeout
    while True:
        stats = cap.stats
        if stats["received"] >= received or time.monotonic() > end:
            return stats
        time.sleep(0.01)


def test_statistics_count_kernel_drops_and_accumulate(pair):
    # A tiny immediate-mode ring (8 frames) that nobody reads while 50 packets arrive:
    # 8 kept, 42 dropped, and PACKET_STATISTICS reads (which reset the kernel's
    # counters) add up.
    rx = pair.udp_receiver(5001)
    with rx, pair.capture(method="ring", immediate=True, buffer_size=16384, timeout=1) as cap:
        nframes = cap._src._rx._nframes  # the TPACKET_V2 receiver's ring
        send_udp(pair, [b"s%d" % i for i in range(20)])
        mid = settled_stats(cap, 20)  # several reads, each resetting the kernel's counters
        send_udp(pair, [b"s%d" % i for i in range(20, 50)])
        settled_stats(cap, 50)
        pkts = list(cap)
        end = cap.stats
    assert nframes == 8
    assert mid == {"captured": 0, "received": 20, "filter_passed": 20, "dropped": 12}
    assert [p.data[42:] for p in pkts] == [b"s%d" % i for i in range(8)]
    assert end == {"captured": 8, "received": 50, "filter_passed": 50, "dropped": 42}


@pytest.mark.parametrize("promisc", [False, True])
def test_promiscuous_mode_only_when_asked_and_released(pair, promisc):
    assert pair.promiscuity() == 0 and not pair.iff_promisc()
    with pair.capture(promisc=promisc, timeout=0):
        assert pair.promiscuity() == (1 if promisc else 0)
        assert pair.iff_promisc() == promisc
        with pair.capture(promisc=promisc, timeout=0):
            assert pair.promiscuity() == (2 if promisc else 0)
        assert pair.promiscuity() == (1 if promisc else 0)
    assert pair.promiscuity() == 0 and not pair.iff_promisc()


def test_loopback_shows_each_packet_once(pair):
    sh("ip", "-n", pair.a, "link", "set", "lo", "up")
    with netns(pair.a):
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rx.bind(("127.0.0.1", 5001))
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for kw in ({"method": "ring"}, {"method": "ring", "immediate": True}, {"method": "recvmsg"}):
            with rx.dup() as _, live.capture("lo", count=20, timeout=5, **kw) as cap:
                for i in range(20):
                    tx.sendto(b"lo%d" % i, ("127.0.0.1", 5001))
                pkts = list(cap)
            assert [p.data[42:] for p in pkts] == [b"lo%d" % i for i in range(20)], kw
            assert all(p.data[:12] == bytes(12) for p in pkts)
        tx.close()
        rx.close()


@pytest.mark.parametrize("opts", METHODS)
def test_the_any_device(pair, opts):
    # "any": every device of the namespace, cooked (LINUX_SLL), loopback packets once.
    sh("ip", "-n", pair.a, "link", "set", "lo", "up")
    rx = pair.udp_receiver(5001)
    with netns(pair.a):
        lo_rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        lo_rx.bind(("127.0.0.1", 5001))
        lo_tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        cap = live.capture("any", count=4, timeout=5, **opts)
    with rx, lo_rx, lo_tx, cap:
        assert cap.linktype == linktypes.LINUX_SLL
        raw = pair.raw_sender()
        with raw, pinned():
            raw.send(udp_frame(b"veth1"))
            lo_tx.sendto(b"lo1", ("127.0.0.1", 5001))
            raw.send(udp_frame(b"veth2", tags=((0x8100, 12),)))
            lo_tx.sendto(b"lo2", ("127.0.0.1", 5001))
        pkts = list(cap)
    veth_sll = bytes.fromhex("0000" "0001" "0006") + MAC_B + b"\0\0" + b"\x08\x00"
    lo_sll = bytes.fromhex("0000" "0304" "0006") + bytes(8) + b"\x08\x00"
    assert [p.data[:16] for p in pkts] == [veth_sll, lo_sll, veth_sll[:14] + b"\x81\x00", lo_sll]
    assert pkts[0].data[16:] == udp_frame(b"veth1")[14:]
    assert pkts[2].data[16:] == b"\x00\x0c\x08\x00" + udp_frame(b"veth2")[14:]
    assert pkts[1].data.endswith(b"lo1") and pkts[3].data.endswith(b"lo2")


def test_cooked_capture_on_a_tun_device(pair):
    # A tun device (ARPHRD_NONE) has no link header: the capture is LINUX_SLL, with the
    # 16-byte header built from what the kernel reports. Packets are written into the
    # tun from this process and delivered to a bound port in the same namespace.
    TUNSETIFF, IFF_TUN, IFF_NO_PI = 0x400454CA, 0x0001, 0x1000
    with netns(pair.a):
        try:
            tun = os.open("/dev/net/tun", os.O_RDWR)
        except OSError as exc:
            pytest.skip(f"no /dev/net/tun: {exc}")
        fcntl.ioctl(tun, TUNSETIFF, struct.pack("16sH", b"pptun0", IFF_TUN | IFF_NO_PI))
    try:
        sh("ip", "-n", pair.a, "addr", "add", "10.78.0.1", "peer", "10.78.0.2", "dev", "pptun0")
        sh("ip", "-n", pair.a, "link", "set", "pptun0", "up")
        with netns(pair.a):
            rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            rx.bind(("10.78.0.1", 5001))
        ips = []
        for i in range(5):
            udp = struct.pack("!HHHH", 40001, 5001, 8 + 3, 0) + b"t%02d" % i
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i, 0, 64, 17, 0,
                             socket.inet_aton("10.78.0.2"), socket.inet_aton("10.78.0.1"))
            ips.append(ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:] + udp)
        for kw in ({"method": "ring"}, {"method": "ring", "immediate": True}, {"method": "recvmsg"}):
            with rx.dup() as _, netns(pair.a), live.capture("pptun0", count=5, timeout=5, **kw) as cap:
                assert cap.linktype == linktypes.LINUX_SLL
                for ip in ips:
                    os.write(tun, ip)
                pkts = list(cap)
            sll = bytes.fromhex("0000" "fffe" "0000" "0000000000000000" "0800")
            assert [p.data for p in pkts] == [sll + ip for ip in ips], kw
            assert [p.length for p in pkts] == [16 + len(ip) for ip in ips]
        if _have_compiler():  # the cooked-socket offset fix-ups, in the kernel
            for kw in ({"method": "ring"}, {"method": "recvmsg"}):
                with rx.dup() as _, netns(pair.a), live.capture("pptun0", filter="udp and ip[5] & 1 = 1",
                                                                 timeout=0.5, **kw) as cap:
                    for ip in ips:
                        os.write(tun, ip)
                    pkts = list(cap)
                    stats = cap.stats
                assert [p.data for p in pkts] == [sll + ips[1], sll + ips[3]], kw
                assert stats["received"] == 2
        rx.close()
    finally:
        os.close(tun)


def test_immediate_mode_delivers_a_lone_packet_quickly(pair):
    rx = pair.udp_receiver(5001)
    tx = pair.udp_sender()
    with rx, tx, pair.capture(immediate=True, count=1, timeout=5) as cap:
        assert cap.method == "tpacket_v2"
        got = []

        def consume():
            got.extend((p, time.monotonic()) for p in cap)

        t = threading.Thread(target=consume)
        t.start()
        time.sleep(0.2)
        sent = time.monotonic()
        tx.sendto(b"lone", (IP_A, 5001))
        t.join(5)
    assert len(got) == 1 and got[0][0].data[42:] == b"lone"
    assert got[0][1] - sent < 1.0  # ~0.1 ms here; generous for loaded machines


def test_stop_from_another_thread(pair):
    with pair.capture() as cap:
        threading.Timer(0.2, cap.stop).start()
        t0 = time.monotonic()
        assert list(cap) == []
        assert time.monotonic() - t0 < 3
    assert cap.closed


def test_stop_from_a_signal_handler_mid_stream(pair):
    rx = pair.udp_receiver(5001)
    with rx, pair.capture(timeout=10) as cap:
        send_udp(pair, [b"q%d" % i for i in range(50)])
        old = signal.signal(signal.SIGALRM, lambda *_: cap.stop())
        try:
            seen = []
            for p in cap:
                seen.append(p)
                if len(seen) == 10:
                    os.kill(os.getpid(), signal.SIGALRM)
                    time.sleep(0.01)  # let the handler run before the next packet
        finally:
            signal.signal(signal.SIGALRM, old)
    assert len(seen) == 10  # nothing after the stop
    assert cap.stats["captured"] == 10


def test_stop_from_a_signal_handler_while_waiting(pair):
    # The signal arrives while the capture sleeps in poll(); the handler's stop() must
    # wake it (poll is retried after the handler, and then sees the wake-up fd).
    with pair.capture() as cap:
        old = signal.signal(signal.SIGALRM, lambda *_: cap.stop())
        try:
            signal.setitimer(signal.ITIMER_REAL, 0.2)
            t0 = time.monotonic()
            assert list(cap) == []
            assert time.monotonic() - t0 < 3
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)


def test_timeout_ends_an_idle_capture(pair):
    with pair.capture(timeout=0.3) as cap:
        t0 = time.monotonic()
        assert list(cap) == []
        assert 0.25 < time.monotonic() - t0 < 3


def test_interface_down_is_a_clear_error(pair):
    with netns(pair.a):  # lo is down in a fresh namespace
        with pytest.raises(live.InterfaceDownError, match=r"^interface lo is down: bring it up first"):
            live.capture("lo")


@pytest.mark.parametrize("opts", METHODS)
def test_interface_going_down_during_a_capture(pair, opts):
    rx = pair.udp_receiver(5001)
    with rx, pair.capture(timeout=10, **opts) as cap:
        send_udp(pair, [b"before%d" % i for i in range(3)])
        got = []
        with pytest.raises(live.InterfaceDownError, match=f"^interface {pair.va} went down during the capture$"):
            for p in cap:
                got.append(p.data[42:])
                if len(got) == 3:
                    sh("ip", "-n", pair.a, "link", "set", pair.va, "down")
    assert got == [b"before%d" % i for i in range(3)]  # what came before is delivered


def test_unknown_interface_in_a_namespace(pair):
    with netns(pair.a), pytest.raises(live.NoSuchInterfaceError) as err:
        live.capture("eth0")
    assert str(err.value) == f"no interface named 'eth0': available interfaces are lo, {pair.va}"


def test_interfaces_in_a_namespace(pair):
    with netns(pair.a):
        found = live.interfaces()
    assert [i.name for i in found] == ["lo", pair.va]
    va = found[1]
    assert va.up and va.linktype == linktypes.EN10MB and not va.loopback and va.mtu == 1500
    assert va.addresses == (MAC_A.hex(":"), IP_A)
    assert not found[0].up


def test_no_privilege_message(pair):
    # A forked child that gives up root (uid/gid nobody) must get the exact message.
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.close(r)
            fd = os.open(f"/run/netns/{pair.a}", os.O_RDONLY)
            setns(fd)  # for good: a process without privilege cannot come back
            if True:
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
                try:
                    live.capture(pair.va)
                    msg = "no error"
                except live.NoPrivilegeError as exc:
                    msg = "NoPrivilegeError:" + str(exc)
                except BaseException as exc:  # noqa: BLE001
                    msg = f"{type(exc).__name__}:{exc}"
            os.write(w, msg.encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        msg = f.read().decode()
    os.waitpid(pid, 0)
    assert msg == (f"NoPrivilegeError:capturing on {pair.va} needs CAP_NET_RAW: run as root, "
                   f"or grant it with 'setcap cap_net_raw+ep <python>'")


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _socket_maps() -> int:
    """Mappings of socket memory (the rings) in this process."""
    with open("/proc/self/maps") as f:
        return sum("socket:[" in line for line in f)


def test_no_fd_or_mmap_leak_over_1000_cycles(pair):
    # Closing an AF_PACKET socket waits for an RCU grace period (~10-30 ms), so the 1,000
    # cycles run on 25 threads at once; each enters the namespace itself. They go round
    # the three receive paths (ring V3, ring V2, recvmsg).
    rx = pair.udp_receiver(5001)
    with netns(pair.a):
        for opts in METHODS:  # warm up imports and caches
            with live.capture(pair.va, buffer_size=1 << 20, **opts.values[0]):
                pass
    fds, maps = _fds(), _socket_maps()
    opened = []

    def cycles(worker: int) -> None:
        with netns(pair.a):
            for i in range(40):
                opts = METHODS[(i + worker) % 3].values[0]
                cap = live.capture(pair.va, buffer_size=1 << 20, timeout=0, **opts)
                if i == 20:
                    opened.append((_fds(), _socket_maps()))
                if (i // 3) % 2:
                    cap.close()
                else:
                    with cap:
                        list(cap)

    threads = [threading.Thread(target=cycles, args=(w,)) for w in range(25)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(opened) == 25
    assert max(f for f, _ in opened) > fds  # they really were open
    assert max(m for _, m in opened) > maps
    assert _fds() == fds
    assert _socket_maps() == maps == 0
    rx.close()


def test_a_program_the_kernel_rejects_is_a_capture_error_and_leaks_nothing(pair):
    bad = [(0x15, 7, 7, 0x0800), (0x06, 0, 0, 0)]  # jumps past the end
    with netns(pair.a):
        before = _fds()
        for _ in range(20):
            with pytest.raises(live.CaptureError, match="the kernel rejected the filter program"):
                live.capture(pair.va, filter=bad)
        assert _fds() == before


def test_closing_twice_and_stats_after_close(pair):
    rx = pair.udp_receiver(5001)
    cap = pair.capture(timeout=1)
    send_udp(pair, [b"z"] * 3)
    settled_stats(cap, 3)
    cap.close()
    cap.close()
    with rx:
        assert cap.stats == {"captured": 0, "received": 3, "filter_passed": 3, "dropped": 0}
    assert list(cap) == []
