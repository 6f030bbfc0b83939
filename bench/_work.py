# One benchmark workload per process: ``python3 bench/_work.py NAME FILE``.
#
# Strategy: the parent (bench/run.py) times the whole process, imports included, and
# reads its peak RSS from wait4(); this script only does the work the way a user would
# write it, and prints one JSON line ({"n": items handled, ...}) so the parent can check
# that every tool saw the same packets. Imports happen inside each workload so that a
# workload pays only for what it uses.
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

FILTER = "tcp port 80"
COLUMNS = ["time", "src_host", "src_port", "dst_host", "dst_port", "protocol"]


def w_python(path: str) -> dict:
    return {"n": 0}


def w_pandas_baseline(path: str) -> dict:
    import numpy  # noqa: F401
    import pandas  # noqa: F401

    import purepcap.dataframe  # noqa: F401
    return {"n": 0}


def w_open(path: str) -> dict:
    import purepcap
    n = 0
    with purepcap.open(path) as cap:
        for _p in cap:
            n += 1
    return {"n": n}


def w_open_filter(path: str) -> dict:
    import purepcap
    n = 0
    with purepcap.open(path, filter=FILTER) as cap:
        for _p in cap:
            n += 1
    return {"n": n}


def w_records(path: str) -> dict:
    import purepcap
    n = 0
    for _r in purepcap.records(path):
        n += 1
    return {"n": n}


def w_records_filter(path: str) -> dict:
    import purepcap
    n = 0
    for _r in purepcap.records(path, filter=FILTER):
        n += 1
    return {"n": n}


def w_to_pandas(path: str) -> dict:
    import purepcap
    df = purepcap.to_pandas(path)
    return {"n": len(df), "df_bytes": int(df.memory_usage(deep=True).sum())}


def _floor_reader(path: str, as_tuples: bool):
    """The least a pure-Python reader of classic pcap can do per packet and still hand
    out its bytes: 256 KiB reads (as purepcap.open reads), one unpack of the record
    header, one slice; with ``as_tuples``, also the time in nanoseconds and a 7-tuple of
    what a Packet holds. No checks, no damage handling, little-endian microsecond pcap only:
    it is a yardstick for open(), not a reader."""
    import struct
    unpack = struct.Struct("<IIII").unpack_from
    with open(path, "rb", buffering=0) as f:
        buf = f.read(24)
        if buf[:4] != b"\xd4\xc3\xb2\xa1":
            raise SystemExit("the floor reader reads little-endian microsecond pcap only")
        buf, pos, frame = b"", 0, 0
        while True:
            rest = buf[pos:]
            missing = 16 - len(rest)
            if missing <= 0:
                missing += unpack(rest, 0)[2]
            more = f.read(missing if rest else 256 * 1024)
            if not more:
                return
            buf, pos = (rest + more if rest else more), 0
            end = len(buf)
            while pos + 16 <= end:
                sec, usec, caplen, length = unpack(buf, pos)
                nxt = pos + 16 + caplen
                if nxt > end:
                    break
                if as_tuples:
                    frame += 1
                    yield (frame, sec * 1_000_000_000 + usec * 1000, caplen, length, 1, 0, buf[nxt - caplen:nxt])
                else:
                    yield buf[nxt - caplen:nxt]
                pos = nxt


def w_floor_bytes(path: str) -> dict:
    n = 0
    for _data in _floor_reader(path, as_tuples=False):
        n += 1
    return {"n": n}


def w_floor_tuples(path: str) -> dict:
    n = 0
    for _t in _floor_reader(path, as_tuples=True):
        n += 1
    return {"n": n}


def _dpkt_rows(path: str, pcapng: bool):
    """dpkt the way its documentation reads a capture: (ts, src, sport, dst, dport, proto)."""
    import socket

    import dpkt
    inet_ntop, AF_INET, AF_INET6 = socket.inet_ntop, socket.AF_INET, socket.AF_INET6
    Ethernet, IP, IP6 = dpkt.ethernet.Ethernet, dpkt.ip.IP, dpkt.ip6.IP6
    with open(path, "rb") as f:
        reader = dpkt.pcapng.Reader(f) if pcapng else dpkt.pcap.Reader(f)
        for ts, buf in reader:
            try:
                eth = Ethernet(buf)
            except dpkt.UnpackError:
                continue
            ip = eth.data
            if isinstance(ip, IP):
                fam = AF_INET
            elif isinstance(ip, IP6):
                fam = AF_INET6
            else:
                continue
            l4 = ip.data
            sport = getattr(l4, "sport", None)
            dport = getattr(l4, "dport", None)
            yield (ts, inet_ntop(fam, ip.src), sport, inet_ntop(fam, ip.dst), dport, ip.p)


def w_dpkt_rows(path: str) -> dict:
    n = 0
    for _row in _dpkt_rows(path, path.endswith(".pcapng")):
        n += 1
    return {"n": n}


def w_dpkt_pandas(path: str) -> dict:
    import pandas as pd
    df = pd.DataFrame(list(_dpkt_rows(path, path.endswith(".pcapng"))), columns=COLUMNS)
    return {"n": len(df), "df_bytes": int(df.memory_usage(deep=True).sum())}


def w_scapy(path: str) -> dict:
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.inet6 import IPv6
    from scapy.utils import PcapReader
    n = 0
    with PcapReader(path) as reader:
        for pkt in reader:
            ip = pkt.getlayer(IP) or pkt.getlayer(IPv6)
            if ip is None:
                continue
            l4 = pkt.getlayer(TCP) or pkt.getlayer(UDP)
            _row = (float(pkt.time), ip.src, l4.sport if l4 else None, ip.dst,
                    l4.dport if l4 else None, ip.proto if hasattr(ip, "proto") else ip.nh)
            n += 1
    return {"n": n}


def w_tshark_pandas(path: str) -> dict:
    import subprocess

    import pandas as pd
    fields = ["frame.time_epoch", "ip.src", "tcp.srcport", "udp.srcport", "ip.dst", "tcp.dstport",
              "udp.dstport", "ip.proto"]
    cmd = ["tshark", "-n", "-r", path, "-T", "fields", "-E", "separator=,", "-E", "header=y",
           "-E", "occurrence=f"]
    for f in fields:
        cmd += ["-e", f]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as proc:
        df = pd.read_csv(proc.stdout)
    return {"n": len(df), "df_bytes": int(df.memory_usage(deep=True).sum())}


def w_to_pandas_app(path: str) -> dict:
    import purepcap
    from purepcap._schema import APPLICATION
    df = purepcap.to_pandas(path, columns=APPLICATION)
    return {"n": len(df)}  # (deep memory_usage would walk 15 object columns: not what is timed)


# tshark's fields for the application columns (as corpus-meta/appfields.csv.gz took them:
# reassembly off), plus the default columns
TSHARK_APP_FIELDS = ["dns.id", "dns.qry.name", "dns.qry.type", "dns.flags.rcode", "dns.a", "dns.aaaa",
                     "http.request.method", "http.request.uri", "http.host", "http.user_agent",
                     "http.response.code", "tls.handshake.extensions_server_name",
                     "tls.handshake.extensions_alpn_str", "tls.handshake.ja3", "tls.handshake.ja3s"]


def w_tshark_app(path: str) -> dict:
    import subprocess

    import pandas as pd
    fields = ["frame.time_epoch", "ip.src", "tcp.srcport", "udp.srcport", "ip.dst", "tcp.dstport",
              "udp.dstport", "ip.proto"] + TSHARK_APP_FIELDS
    cmd = ["tshark", "-n", "-r", path, "-o", "tcp.desegment_tcp_streams:FALSE", "-o", "ip.defragment:FALSE",
           "-T", "fields", "-E", "separator=,", "-E", "header=y", "-E", "quote=d", "-E", "occurrence=a",
           "-E", "aggregator=|"]
    for f in fields:
        cmd += ["-e", f]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as proc:
        df = pd.read_csv(proc.stdout, dtype=str)
    return {"n": len(df), "df_bytes": int(df.memory_usage(deep=True).sum())}


WORKLOADS = {name[2:]: fn for name, fn in globals().items() if name.startswith("w_")}


def main() -> None:
    name, path = sys.argv[1], sys.argv[2]
    out = WORKLOADS[name](path)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
