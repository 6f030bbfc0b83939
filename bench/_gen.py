# Deterministic benchmark captures, written with purepcap's own PcapWriter/PcapngWriter.
#
# Strategy: nothing is built per packet from scratch. Each flow direction gets its
# Ethernet + IP + transport header prepared once (a template), with the IPv4 header
# checksum pre-summed except for the two fields that change (total length, id); a packet
# is then its template with those fields patched in, followed by a slice of one
# random payload blob. Sizes, flows and gaps come from a seeded random.Random, so the
# same arguments always give byte-identical files. The pcap and pcapng variants are
# written in the same pass from the same packets.
#
# The IPv4 header checksums are correct; TCP checksums are left 0 and UDP checksums 0
# ("none"), which no reader checks by default (tshark and tcpdump do not).
from __future__ import annotations

import hashlib
import os
import random
import shutil
import struct
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from purepcap.format import PcapngWriter, PcapWriter  # noqa: E402

T0 = 1_700_000_000 * 1_000_000_000  # 2023-11-14, in ns
BUFSIZE = 8 << 20
PAYLOAD = random.Random(99).randbytes(9000)
# What the captures were made by: a capture made by an older _gen.py is made again.
MADE_BY = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]

_IP4 = struct.Struct("!BBHHHBBH4s4s")
_TCP = struct.Struct("!HHIIBBHHH")
_UDP = struct.Struct("!HHHH")
_HHTT = struct.Struct("!HH")


def _fold(s: int) -> int:
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def _words(b: bytes) -> int:
    return sum(struct.unpack(f"!{len(b) // 2}H", b))


def _mac(ip: bytes) -> bytes:
    return b"\x02\x00" + ip


def hosts(rng: random.Random, n: int = 2000) -> list[bytes]:
    seen: set[bytes] = set()
    out = []
    while len(out) < n:
        a = bytes([10, rng.randrange(256), rng.randrange(256), rng.randrange(1, 255)])
        if a not in seen:
            seen.add(a)
            out.append(a)
    return out


def flows(rng: random.Random, hs: list[bytes], n: int = 20000) -> list[tuple]:
    """(src, dst, proto, sport, dport): 70% TCP, 25% UDP, 5% ICMP."""
    out = []
    for _ in range(n):
        r = rng.random()
        src, dst = rng.sample(hs, 2)
        sport = rng.randrange(1024, 65535)
        if r < 0.70:
            proto = 6
            dport = rng.choices((80, 443, 22, 8080, 25, 0), (25, 40, 5, 5, 5, 20))[0] or rng.randrange(1, 65535)
        elif r < 0.95:
            proto = 17
            dport = rng.choices((53, 123, 443, 514, 0), (40, 10, 20, 5, 25))[0] or rng.randrange(1, 65535)
        else:
            proto, sport, dport = 1, 0, 0
        out.append((src, dst, proto, sport, dport))
    return out


def _templates(fl: list[tuple], vlan: int | None = None) -> list[tuple]:
    """Per flow direction: (link header, IPv4 header pieces, partial checksum, proto, l4 header)."""
    out = []
    for src, dst, proto, sport, dport in fl:
        for s, d, sp, dp in ((src, dst, sport, dport), (dst, src, dport, sport)):
            link = _mac(d) + _mac(s)
            if vlan is not None:
                link += struct.pack("!HH", 0x8100, vlan)
            link += b"\x08\x00"
            ip = _IP4.pack(0x45, 0, 0, 0, 0x4000, 64, proto, 0, s, d)
            partial = _words(ip)
            if proto == 6:
                l4 = _TCP.pack(sp, dp, 0x1000 + sp, 0x2000 + dp, 0x50, 0x18, 502, 0, 0)
            elif proto == 17:
                l4 = None  # its length field changes per packet
            else:
                l4 = b"\x08\x00\x00\x00" + struct.pack("!HH", sp & 0xFFFF, 1)
            out.append((link, ip[:2], ip[6:10], ip[12:], partial, proto, sp, dp, l4))
    return out


def sizes(rng: random.Random, n: int = 65536) -> list[int]:
    """Frame sizes: about half small (60-100 bytes), a third full-size (1514), the rest between."""
    out = []
    for _ in range(n):
        r = rng.random()
        out.append(rng.randrange(60, 101) if r < 0.5 else 1514 if r < 0.84 else rng.randrange(101, 1514))
    return out


def _ipv4_frame(t: tuple, size: int, ip_id: int) -> bytes:
    link, ip_head, ip_mid, ip_tail, partial, proto, sp, dp, l4 = t
    total = size - len(link)
    csum = ~_fold(partial + total + ip_id) & 0xFFFF
    ip = ip_head + _HHTT.pack(total, ip_id) + ip_mid + _HHTT.pack(csum, 0)[:2] + ip_tail
    if l4 is None:
        l4 = _UDP.pack(sp, dp, total - 20, 0)
    return link + ip + l4 + PAYLOAD[:total - 20 - len(l4)]


def mixed_packets(n: int, seed: int = 8, fixed_size: int | None = None):
    """(time_ns, frame) for n packets of the mixed IPv4 TCP/UDP/ICMP capture."""
    rng = random.Random(seed)
    tpl = _templates(flows(rng, hosts(rng)))
    sz = sizes(rng)
    gaps = [int(rng.expovariate(1 / 20_000)) + 1 for _ in range(4096)]  # ns, mean 20 us
    choose = rng.randrange
    ntpl = len(tpl)
    t = T0
    for i in range(n):
        t += gaps[i & 4095] // 1000 * 1000  # whole microseconds: pcap and pcapng agree
        size = fixed_size or sz[i & 65535]
        yield t, _ipv4_frame(tpl[choose(ntpl)], size, i & 0xFFFF)


def slow_packets(n: int, seed: int = 9):
    """(time_ns, frame): VLANs (one tag and QinQ), IPv6 (plain and with a hop-by-hop header),
    IPv4 with options, IPv4 fragments and ARP, to exercise the general decoding paths."""
    rng = random.Random(seed)
    hs = hosts(rng)
    fl = flows(rng, hs)
    plain = _templates(fl)
    tagged = _templates(fl, vlan=100)
    sz = sizes(rng)
    choose = rng.randrange
    v6 = [b"\x20\x01\x0d\xb8" + bytes(8) + h for h in hs]
    kinds = rng.choices(range(8), (20, 10, 30, 10, 10, 5, 10, 5), k=4096)
    t = T0
    for i in range(n):
        t += 20_000
        size = sz[i & 65535]
        k = kinds[i & 4095]
        tp = (tagged if k in (0, 1) else plain)[choose(len(plain))]
        if k == 0:  # one 802.1Q tag
            yield t, _ipv4_frame(tp, size, i & 0xFFFF)
        elif k == 1:  # QinQ: 802.1ad outer tag in front of the 802.1Q one
            f = _ipv4_frame(tp, size - 4, i & 0xFFFF)
            yield t, f[:12] + b"\x88\xa8\x00\xc8" + f[12:]
        elif k in (2, 3, 6):  # IPv6, plain / hop-by-hop / tagged
            src, dst = v6[choose(2000)], v6[choose(2000)]
            proto = tp[5]
            nxt = 58 if proto == 1 else proto
            if proto == 6:
                l4 = tp[8]
            elif proto == 17:
                l4 = _UDP.pack(tp[6], tp[7], max(8, size - 62), 0)
            else:
                l4 = b"\x80\x00\x00\x00\x00\x01\x00\x01"
            ext = b""
            if k == 3:
                ext = bytes([nxt, 0, 5, 2, 0, 0, 1, 0])  # hop-by-hop: router alert + PadN
                nxt = 0
            link = _mac(dst[-4:]) + _mac(src[-4:])
            if k == 6:
                link += b"\x81\x00\x00\xc8"
            link += b"\x86\xdd"
            body = ext + l4
            plen = max(len(body), size - len(link) - 40)
            ip6 = struct.pack("!IHBB", 0x60000000, plen, nxt, 64) + src + dst
            yield t, link + ip6 + body + PAYLOAD[:plen - len(body)]
        elif k == 4:  # IPv4 with options (IHL 6: a 4-byte NOP/EOL option word)
            f = _ipv4_frame(tp, size - 4, i & 0xFFFF)
            ip = bytearray(f[14:34] + b"\x01\x01\x01\x00")
            ip[0] = 0x46
            struct.pack_into("!H", ip, 2, len(f) - 14 + 4)
            struct.pack_into("!H", ip, 10, 0)
            struct.pack_into("!H", ip, 10, ~_fold(_words(bytes(ip))) & 0xFFFF)
            yield t, f[:14] + bytes(ip) + f[34:]
        elif k == 5:  # an IPv4 fragment (a later one: offset 1480, no ports)
            f = bytearray(_ipv4_frame(tp, size, i & 0xFFFF))
            struct.pack_into("!H", f, 20, 185)  # offset 185*8, MF clear, DF clear
            struct.pack_into("!H", f, 24, 0)
            struct.pack_into("!H", f, 24, ~_fold(_words(bytes(f[14:34]))) & 0xFFFF)
            yield t, bytes(f)
        else:  # ARP request (no IP layer: skipped by records)
            s, d = tp[3][:4], tp[3][4:8]
            yield t, (b"\xff" * 6 + _mac(s) + b"\x08\x06" + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1)
                      + _mac(s) + s + bytes(6) + d + bytes(18))


def _out(path: Path):
    return open(path, "wb", buffering=BUFSIZE)


def write_captures(data: Path, n: int, subset: int, log=print) -> dict[str, Path]:
    """Make every benchmark capture in ``data`` (if missing or made for another n)."""
    data.mkdir(parents=True, exist_ok=True)
    stamp = data / f".made-{n}-{subset}-{MADE_BY}"
    names = {
        "mixed.pcap": data / "mixed.pcap",
        "mixed.pcapng": data / "mixed.pcapng",
        "mixed-subset.pcap": data / "mixed-subset.pcap",
        "small64.pcap": data / "small64.pcap",
        "small64.pcapng": data / "small64.pcapng",
        "slow.pcap": data / "slow.pcap",
    }
    if stamp.exists() and all(p.exists() for p in names.values()):
        return names
    for old in data.glob(".made-*"):
        old.unlink()
    for kind in ("mixed", "small64"):
        with (_out(names[f"{kind}.pcap"]) as f1, _out(names[f"{kind}.pcapng"]) as f2,
              _out(names["mixed-subset.pcap"] if kind == "mixed" else Path(os.devnull)) as f3):
            w1, w2, w3 = PcapWriter(f1), PcapngWriter(f2, tsresol=6), PcapWriter(f3)
            put1, put2, put3 = w1.write_packet, w2.write_packet, w3.write_packet
            for i, (t, frame) in enumerate(mixed_packets(n, fixed_size=64 if kind == "small64" else None)):
                put1(t, frame)
                put2(t, frame)
                if i < subset and kind == "mixed":
                    put3(t, frame)
        log(f"  wrote {kind}.pcap/.pcapng ({n:,} packets)")
    with _out(names["slow.pcap"]) as f:
        w = PcapWriter(f)
        put = w.write_packet
        for t, frame in slow_packets(n):
            put(t, frame)
    log(f"  wrote slow.pcap ({n:,} packets)")
    stamp.touch()
    return names


def concat_records(src: Path, dest: Path, times: int) -> None:
    """dest = src's 24-byte pcap header, then src's records ``times`` times over."""
    size = src.stat().st_size
    with open(src, "rb", buffering=0) as fi, open(dest, "wb", buffering=0) as fo:
        fo.write(fi.read(24))
        for _ in range(times):
            fi.seek(24)
            if hasattr(os, "copy_file_range"):
                left = size - 24
                while left:
                    done = os.copy_file_range(fi.fileno(), fo.fileno(), left)
                    if not done:
                        break
                    left -= done
            else:
                shutil.copyfileobj(fi, fo, BUFSIZE)

