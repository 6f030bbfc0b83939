# The seed's live example, intake.open_pcap(None, interface=..., chunksize=10).read(),
# on a real kernel: inside two private network namespaces joined by a veth pair that
# this test makes and removes (IPv6 off, static neighbours, the destination port
# bound, so only our datagrams appear). Traffic goes only to the peer's address, in a
# bounded loop. Needs root; skips cleanly otherwise.
from __future__ import annotations

import os
import shutil
import socket
import sys
import threading
import time

import pytest

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="AF_PACKET is Linux only"),
    pytest.mark.skipif(os.geteuid() != 0, reason="live capture needs root"),
    pytest.mark.skipif(shutil.which("ip") is None, reason="needs iproute2 (ip)"),
]

from _netns import link_veth, namespaces, netns  # noqa: E402

intake = pytest.importorskip("intake")

if "pcap" not in intake.registry:  # a checkout run without pip install: no entry points
    from purepcap.intake_source import PcapSource

    intake.register_driver("pcap", PcapSource)

MAC_A, MAC_B = "02:00:00:00:0c:01", "02:00:00:00:0c:02"
IP_A, IP_B = "10.78.0.1", "10.78.0.2"


@pytest.fixture
def veth():
    tag = f"{os.getpid() % 100000}"
    a, b, va, vb = f"ppik{tag}a", f"ppik{tag}b", f"vik{tag}a", f"vik{tag}b"
    with namespaces(a, b, skip=pytest.skip):
        link_veth(a, b, va, vb, MAC_A, MAC_B, IP_A, IP_B)
        yield a, b, va


def _read_in(ns: str, ds, n_reads: int, out: list) -> None:
    try:
        with netns(ns):  # the capture socket is made (in this namespace) by the first read
            out.append(ds.read())
        for _ in range(n_reads - 1):
            out.append(ds.read())
    except BaseException as exc:  # reported by the test thread
        out.append(exc)


@pytest.mark.parametrize("protocol", [None, "udp"])
def test_open_pcap_live_reads_chunksize_packets_per_read(veth, protocol):
    a, b, va = veth
    with netns(a):
        sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # no ICMP unreachable
        sink.bind((IP_A, 5555))
    with netns(b):
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sender.bind((IP_B, 40000))
    ds = intake.open_pcap(None, interface=va, chunksize=10, protocol=protocol, payload=True)
    frames: list = []
    reader = threading.Thread(target=_read_in, args=(a, ds, 2, frames), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 10
        while ds._capture is None and reader.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert ds._capture is not None, frames
        for i in range(20):  # bounded: exactly two chunks' worth
            sender.sendto(f"datagram {i:02d}".encode(), (IP_A, 5555))
        reader.join(15)
        assert not reader.is_alive(), "the live reads did not finish"
    finally:
        if ds._capture is not None:
            ds._capture.stop()
        ds.close()
        sender.close()
        sink.close()
    assert not any(isinstance(f, BaseException) for f in frames), frames
    first, second = frames
    assert len(first) == len(second) == 10
    both = [*first.itertuples(), *second.itertuples()]
    assert [r.payload for r in both] == [f"datagram {i:02d}".encode() for i in range(20)]
    assert {(r.src_host, r.src_port, r.dst_host, r.dst_port, r.protocol) for r in both} == {
        (IP_B, 40000, IP_A, 5555, "udp")}
    assert list(first.columns) == ["time", "src_host", "src_port", "dst_host", "dst_port", "protocol",
                                   "payload"]
    assert first["time"].is_monotonic_increasing and first["time"].dtype == "datetime64[ns]"
    assert ds._capture is None  # closed by close(); a new read would open a new capture


def test_to_pandas_takes_a_live_capture(veth):
    from purepcap import live
    from purepcap.dataframe import to_pandas

    a, b, va = veth
    with netns(a):
        sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sink.bind((IP_A, 5556))
        cap = live.capture(va, count=6, timeout=10)
    with netns(b):
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sender.bind((IP_B, 40001))
    try:
        for i in range(6):  # bounded
            sender.sendto(b"live %d" % i, (IP_A, 5556))
        with cap:
            df = to_pandas(cap, payload=True, columns=["frame"])
    finally:
        sender.close()
        sink.close()
    assert list(df["frame"]) == [1, 2, 3, 4, 5, 6]
    assert list(df["payload"]) == [b"live %d" % i for i in range(6)]
    assert set(df["dst_port"]) == {5556}
