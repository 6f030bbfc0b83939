# The cBPF optimiser (purepcap/filter/_optimize.py): optimised programs give the same
# verdict as unoptimised ones on every packet of the corpus and on generated packets cut
# short anywhere (run by run_bpf), and their length is compared with libpcap's optimiser
# (pcap_compile through ctypes, which gives exactly `tcpdump -d`'s program, checked) on
# 1,500 generated expressions per link type; PUREPCAP_OPTIMIZE_FULL=1 compares the 3,000
# (EN10MB) and 2,000 (LINUX_SLL) of the figures below.
#
# Issue 22 asks for "no longer than tcpdump -d for >= 95%, never longer by more than 10%",
# and for the same verdicts. Both cannot hold at once: libpcap's optimiser treats a load as
# unable to fail, so it leaves out loads whose value cannot change the verdict and tests
# fields in another order, and its program accepts packets cut short before such a load
# that its own unoptimised program rejects (`tcp port 123 or not pppoes 14` is 9
# instructions there; keeping the verdict of an IPv6 packet cut short inside the TCP ports
# needs both port loads and the test between them). compile_bpf keeps the verdicts; the
# same optimiser in libpcap's model (optimize(exact=False)) shows what the rest is.
# Measured (EN10MB, seed 1, 3,000 expressions, 2,778 compared; PUREPCAP_OPTIMIZE_FULL=1):
#   verdict-keeping (the default): 2,507 / 2,778 (90.2%) no longer than tcpdump -d, 234
#     longer by more than 10%, worst 6.6x; 57,432 instructions in all against tcpdump's
#     57,849. (Before this round's exact passes, listed in _optimize's header: 2,489
#     (89.6%), 247, 6.6x, 57,811.) Of the 271 still longer, for 214 a packet is found
#     (random and corpus packets cut at every length) on which libpcap's program and the
#     unoptimised one disagree, every one cut short: libpcap left out or jumped past a
#     load that rejects it. The other 57 are not settled by that search; those read by
#     hand are the same kind, with rarer packets (an IPv4 fragment field of 0x57 read as
#     a PPPoE protocol, an ARP packet with a given sender cut inside the target).
#   libpcap's model: 2,767 / 2,778 (99.6%) no longer, 2 longer by more than 10%, worst
#     1.21x; 53,243 instructions in all (8% fewer than tcpdump's).
# LINUX_SLL (seed 113, 2,000 expressions, 1,340 compared): verdict-keeping 1,209 (90.2%),
# 108 longer by more than 10%, worst 4.6x, 25,428 instructions against 25,106 (before:
# 1,204, 113, 4.6x, 25,541); libpcap's model 1,331 (99.3%), 1 longer by more than 10%.
# The other link types (300 random expressions each of tests/_filter_link_cases.py, seeded
# by the link type), verdict-keeping, no longer than libpcap's / longer by more than 10%
# (before this round in brackets, where it differs):
#   802.11 288/290, 0; radiotap 288/292 (249), 4; PPI 265/265 (262), 0; AVS 288/291 (251),
#   2 (39); Prism 292/292 (215), 0 (30); ARCNET (BSD) 285/287 (284), 0 (1); ARCNET (Linux)
#   279/282, 2; SunATM 277/281 (275), 3 (4); IP over FC 281/288 (280), 5 (6); PPP_SERIAL
#   192/205, 12 (13); PPP_ETHER 246/265, 16 (18); PPP_BSDOS 221/224 (220), 3; pflog 253/291
#   (252), 20 (21); MTP2 296/296, 0; MTP2 with pseudo-header 290/290, 0: together 4,041 /
#   4,139 (97.6%; before 3,879, 93.7%), 67 longer by more than 10% (141). (Programs behind
#   802.11 radio headers reloaded the header length from M[] before every field.)
# protochain is measured apart and is in none of these figures: libpcap's is a loop (a
# backward jump, which no kernel accepts), ours an unrolled walk of at most 100 headers, so
# `ip6 protochain 58` is 1,982 instructions against libpcap's 36 (on 592 generated EN10MB
# expressions with a protochain, 130 no longer than libpcap's, 462 longer by more than 10%).
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import random
import shutil
import subprocess
import sys
import warnings

import pytest
from _filter_link_cases import FAMILIES, random_link_expression
from conftest import corpus_path, have_corpus, manifest, needs_corpus
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_filter_properties import expressions
from test_filter_properties import packets as generated_packets

import purepcap
from purepcap import linktypes
from purepcap.errors import FilterError, PcapError, PcapWarning
from purepcap.filter import SUPPORTED_LINKTYPES, compile_bpf, dump_bpf, run_bpf
from purepcap.filter import _bpf as bpf
from purepcap.filter._bpf import validate
from purepcap.filter._optimize import optimize

TCPDUMP = shutil.which("tcpdump")
needs_tcpdump = pytest.mark.skipif(TCPDUMP is None, reason="tcpdump is not installed")
FULL = os.environ.get("PUREPCAP_OPTIMIZE_FULL") == "1"

V4 = ["10.0.0.1", "192.168.1.5", "8.8.8.8", "127.0.0.1", "10.1"]
V6 = ["2001:db8::1", "fe80::2", "::1", "ff02::1"]
NETS = ["10.0.0.0/8", "192.168.0.0/16", "172.16.0.0/12", "10.1.2.0/24", "0.0.0.0/0",
        "2001:db8::/32", "fe80::/10", "ff00::/8"]
PORTS = [22, 53, 80, 123, 443, 5353, 8080]
DIRS = ["", "src ", "dst ", "src or dst ", "src and dst "]


def random_primitive(rng: random.Random) -> str:
    kind = rng.randrange(14)
    d = rng.choice(DIRS)
    if kind == 0:
        return rng.choice(["ip", "ip6", "arp", "rarp", "tcp", "udp", "icmp", "icmp6", "igmp",
                           "sctp", "vlan", "mpls", "pppoes", "ether broadcast",
                           "ether multicast", "ip multicast", "ip broadcast", "ip6 multicast"])
    if kind == 1:
        return f"{rng.choice(['', 'ip ', 'arp '])}{d}host {rng.choice(V4)}"
    if kind == 2:
        return f"{d}host {rng.choice(V6)}"
    if kind == 3:
        net = rng.choice(NETS)
        return f"{'ip6 ' if ':' in net else ''}{d}net {net}"
    if kind in (4, 5):
        return f"{rng.choice(['', 'tcp ', 'udp ', 'sctp '])}{d}port {rng.choice(PORTS)}"
    if kind == 6:
        a, b = sorted(rng.sample(PORTS, 2))
        return f"{rng.choice(['', 'tcp ', 'udp '])}{d}portrange {a}-{b}"
    if kind == 7:
        return rng.choice(["ip proto \\tcp", "ip6 proto 17", "proto 47", "ether proto 0x88cc",
                           "ip proto \\icmp", "proto \\udp"])
    if kind == 8:
        return f"ether {d}host {rng.choice(['00:11:22:33:44:55', 'ff:ff:ff:ff:ff:ff'])}"
    if kind == 9:
        return f"{rng.choice(['less', 'greater'])} {rng.randrange(1600)}"
    if kind == 10:
        return f"{rng.choice(['vlan', 'mpls', 'pppoes'])} {rng.randrange(20)}"
    if kind == 11:
        return rng.choice(["tcp[tcpflags] & tcp-syn != 0", "tcp[13] & 0x12 = 0x12",
                           "icmp[icmptype] = icmp-echo", "ip[8] < 64", "ip[6:2] & 0x1fff != 0",
                           "ip[0] & 0xf > 5", "ip6[6] = 58", "udp[8:2] > 1000",
                           "ether[12:2] = 0x0800", "ip[2:2] - 20 > 100", "len > 200"])
    if kind == 12:
        return f"{rng.choice(['tcp', 'udp'])} {d}port {rng.choice(PORTS)} or {rng.choice(PORTS)}"
    return f"{d}host {rng.choice(V4)} or {rng.choice(V4)}"


def random_expression(rng: random.Random, depth: int = 0) -> str:
    """A random expression of 1 to about 6 primitives under and/or/not/parentheses."""
    r = rng.random()
    if depth >= 3 or r < 0.35:
        e = random_primitive(rng)
    elif r < 0.8:
        op = rng.choice(["and", "or", "and", "or", "&&", "||"])
        e = f"{random_expression(rng, depth + 1)} {op} {random_expression(rng, depth + 1)}"
    else:
        e = f"({random_expression(rng, depth + 1)})"
    if rng.random() < 0.15:
        e = f"not {e}" if e.startswith("(") else f"not ({e})"
    return e


def generated(n: int, seed: int = 22) -> list[str]:
    rng = random.Random(seed)
    return [random_expression(rng) for _ in range(n)]


# ---- verdicts ------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def corpus_packets() -> dict[int, list[tuple[bytes, int]]]:
    """Every packet of the corpus on a link type the filter supports, by link type."""
    out: dict[int, list[tuple[bytes, int]]] = {}
    if not have_corpus():
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PcapWarning)  # damaged files: their packets count
        for rel, row in sorted(manifest().items()):
            lts = {int(x) for x in row["linktypes"].split(",") if x}
            if not lts & set(SUPPORTED_LINKTYPES):
                continue
            try:
                with purepcap.open(corpus_path(rel), strict=False) as cap:
                    for p in cap:
                        if p.linktype in SUPPORTED_LINKTYPES:
                            out.setdefault(p.linktype, []).append((bytes(p.data), p.length))
            except PcapError:
                continue
    return out


VERDICT_EXPRESSIONS = [
    "tcp port 80", "port 53 or port 80", "host 192.168.1.1 or net 10", "ip6 net 2001:db8::/32",
    "tcp[13] & 0x12 = 0x12", "not tcp and not udp", "vlan and tcp port 80",
    "ip[2:2] - 20 > 100 and ip[0] * 3 & 0xff = 9", "tcp and (port 22 or port 443)",
    "portrange 1-1023 and not src net 10.0.0.0/8", "icmp or icmp6 or arp",
    "ip[ip[0] & 0xf] = 1 or tcp[tcp[12] >> 4] > 3",
    # protochain and the link types of issue 22 (each runs where it compiles)
    "ip6 protochain 17", "wlan type mgt subtype beacon",
    "type data and not subtype null or wlan addr2 ff:ff:ff:ff:ff:ff", "radio[2:2] > 20 or tcp",
    "not lane or vpi 0 and vci 5", "action pass and tcp port 80 or reason match",
    "sio 3 or dpc 100", "link host $01 or ip",
] + generated(18, seed=7)


def marked(program: list[tuple]) -> list[tuple]:
    """program with its returns made 1 (reject) and 2 (accept): run, it gives 0 exactly
    where the program runs past the captured bytes (or divides by zero)."""
    out = []
    for code, jt, jf, k in program:
        if code == bpf.RET | bpf.K:
            k = 2 if k else 1
        elif code & 7 == bpf.RET:  # ret a
            code, k = bpf.RET | bpf.K, 2
        out.append((code, jt, jf, k))
    return out


def check_verdicts(expr: str, linktype: int, pkts) -> int | None:
    """Run expr's unoptimised, optimised and libpcap-model programs on pkts: the optimised
    one gives every packet the same verdict; the libpcap-model one differs only on packets
    the unoptimised one runs past the captured bytes of. Return how many it differs on
    (None where expr does not compile)."""
    try:
        plain = compile_bpf(expr, linktype, optimize=False)
    except FilterError:
        return None
    short = compile_bpf(expr, linktype)
    validate(short)
    assert len(short) <= len(plain)
    model = optimize(plain, exact=False)
    validate(model)
    cut = marked(plain)
    differ = 0
    for data, length in pkts:
        want = run_bpf(plain, data, length)
        assert run_bpf(short, data, length) == want, (expr, linktype, data.hex(), length)
        if run_bpf(model, data, length) != want:
            assert run_bpf(cut, data, length) == 0, (expr, linktype, data.hex(), length)
            differ += 1
    return differ


@needs_corpus
def test_optimised_programs_give_every_corpus_packet_the_same_verdict() -> None:
    packets = corpus_packets()
    n = sum(len(v) for v in packets.values())
    assert n > 20_000
    compared = differ = 0
    for expr in VERDICT_EXPRESSIONS:
        for linktype, pkts in packets.items():
            got = check_verdicts(expr, linktype, pkts)
            if got is not None:
                differ += got
                compared += len(pkts)
    print(f"{compared} (expression, corpus packet) verdicts equal; libpcap's model differs "
          f"on {differ}, all cut short")
    assert compared > 20 * n


def _abs(size: int, k: int) -> tuple:
    return (bpf.LD | size | bpf.ABS, 0, 0, k)


ACCEPT, REJECT = (bpf.RET | bpf.K, 0, 0, 1), (bpf.RET | bpf.K, 0, 0, 0)
IS_IP = (bpf.JMP | bpf.JEQ | bpf.K, 0, 2, 0x800)  # to a load of [30], or to REJECT


@pytest.mark.parametrize("program,kept", [
    # the unread ldh [20] can go: every path that accepts loads [30:32] after it
    ([_abs(bpf.H, 20), _abs(bpf.H, 12), IS_IP, _abs(bpf.H, 30), ACCEPT, REJECT],
     [_abs(bpf.H, 12), IS_IP, _abs(bpf.H, 30), ACCEPT, REJECT]),
    # ldh [40] must stay (it needs more bytes than [30:32]), and then [30] can go
    ([_abs(bpf.H, 40), _abs(bpf.H, 12), IS_IP, _abs(bpf.H, 30), ACCEPT, REJECT],
     [_abs(bpf.H, 40), _abs(bpf.H, 12), IS_IP[:2] + (1, IS_IP[3]), ACCEPT, REJECT]),
    # a Linux ancillary load (negative offset) reads no packet bytes: it covers nothing
    ([_abs(bpf.H, 20), _abs(bpf.W, bpf.SKF_AD_PKTTYPE), IS_IP, ACCEPT, ACCEPT, REJECT],
     [_abs(bpf.H, 20), _abs(bpf.W, bpf.SKF_AD_PKTTYPE), IS_IP[:2] + (1, IS_IP[3]), ACCEPT,
      REJECT]),
])
def test_an_unread_load_goes_only_where_the_loads_after_it_cover_it(program, kept) -> None:
    assert optimize(program) == kept
    for n in range(0, 48):
        for data in (bytes(12) + b"\x08\x00" + bytes(n), bytes(n)):
            assert run_bpf(kept, data) == run_bpf(program, data), (n, data.hex())


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(expressions, st.lists(generated_packets(), min_size=1, max_size=12))
def test_optimised_programs_give_generated_packets_the_same_verdict(expr: str, pkts) -> None:
    """Any expression of the property tests' grammar, on packets of every supported link
    type, real-looking or random, cut short anywhere."""
    by_linktype: dict[int, list] = {}
    for p in pkts:
        by_linktype.setdefault(p.linktype, []).append((p.data, p.length))
    for linktype, some in by_linktype.items():
        check_verdicts(expr, linktype, some)


def _count(program: list[tuple], ins: tuple) -> int:
    return sum(1 for x in program if x == ins)


def _same_verdict_on_every_cut(program: list[tuple], short: list[tuple],
                               packets: list[bytes]) -> None:
    for data in packets:
        for n in range(len(data) + 1):
            assert run_bpf(short, data[:n], len(data)) == run_bpf(program, data[:n], len(data)), \
                (data.hex(), n)


def _ports(src: int, dst: int) -> bytes:
    return bytes(54) + src.to_bytes(2, "big") + dst.to_bytes(2, "big") + bytes(4)


LDX_M15, LDB_X = (bpf.LDX | bpf.MEM, 0, 0, 15), (bpf.LD | bpf.B | bpf.IND, 0, 0, 0)
AND_FC = (bpf.ALU | bpf.AND | bpf.K, 0, 0, 0xFC)


@pytest.mark.parametrize("program,packets,check", [
    # `src port 22 or dst port 22` once the dst port is loaded (and tested): the dst
    # port is tested first, without loading it again (libpcap's order; no load can fail)
    ([_abs(bpf.H, 56), (bpf.JMP | bpf.JEQ | bpf.K, 5, 0, 123),
      _abs(bpf.H, 54), (bpf.JMP | bpf.JEQ | bpf.K, 2, 0, 22),
      _abs(bpf.H, 56), (bpf.JMP | bpf.JEQ | bpf.K, 0, 1, 22), ACCEPT, REJECT],
     [_ports(s, d) for s in (22, 80, 123) for d in (22, 80, 123)],
     lambda short: len(short) == 7 and _count(short, _abs(bpf.H, 56)) == 1),
    # `ldb [x+0]; and #0xfc` again gives A what it holds: the run goes
    ([_abs(bpf.W, 0), (bpf.MISC | bpf.TAX, 0, 0, 0), LDB_X, AND_FC,
      (bpf.JMP | bpf.JEQ | bpf.K, 3, 0, 0x88), LDB_X, AND_FC,
      (bpf.JMP | bpf.JEQ | bpf.K, 0, 1, 0x40), ACCEPT, REJECT],
     [bytes((0, 0, 0, x)) + bytes(x - 4) + bytes((v,)) for x in (4, 6, 9)
      for v in (0x88, 0x8b, 0x40, 0x41, 0)],
     lambda short: _count(short, LDB_X) == 1),
    # a slot met from two paths (its value unknown) holds one value until a store: the
    # second `ldx M[15]` and the load of [x+0] after it go
    ([(bpf.LD | bpf.IMM, 0, 0, 6), (bpf.ST, 0, 0, 15), _abs(bpf.B, 0),
      (bpf.JMP | bpf.JEQ | bpf.K, 0, 2, 1), _abs(bpf.B, 1), (bpf.ST, 0, 0, 15),
      LDX_M15, LDB_X, (bpf.JMP | bpf.JSET | bpf.K, 0, 3, 8), LDX_M15, LDB_X,
      (bpf.JMP | bpf.JSET | bpf.K, 0, 1, 4), ACCEPT, REJECT],
     [bytes((a, b)) + bytes(8) + bytes((v,)) * 8 for a in (0, 1) for b in (2, 6, 9)
      for v in (0, 8, 12, 4)],
     lambda short: _count(short, LDB_X) == 1 and _count(short, LDX_M15) <= 1),
    # `ld [30]; jeq net -> ldb [23]; jeq #47`, both failing to reject: the protocol (in A
    # already) is tested first, so [30] is loaded only for protocol 47 (libpcap's order;
    # a packet too short for [30] is rejected either way)
    (compile_bpf("proto \\udp or dst net 172.16.0.0/12 and proto 47", optimize=False),
     [bytes(12) + b"\x08\x00" + bytes(9) + bytes((p,)) + bytes(6) + a
      for p in (17, 47, 6) for a in (b"\xac\x10\x00\x01", b"\x0a\x00\x00\x01")],
     lambda short: len(short) == 10),
    # a load at [x+16] that succeeded proves [x+14] can be loaded (X the same): the dst
    # port, in A, is tested before the src port is loaded
    (compile_bpf("not (tcp dst portrange 123-5353 && (tcp src or dst port 443 or 443))",
                 optimize=False),
     [bytes(12) + b"\x08\x00" + bytes((0x45 + h,)) + bytes(8) + b"\x06" + bytes(10 + 4 * h)
      + s.to_bytes(2, "big") + d.to_bytes(2, "big") + bytes(4)
      for h in (0, 1) for s in (443, 80) for d in (443, 200, 80)],
     lambda short: len(short) == 24),
    # a chain of swaps: each must see the states the ones before it left (ip[8] = 64 is
    # accepted, ip[8] = 65 not; a swap that read a stale state made this `ret #0`)
    (compile_bpf("ip[8] % 10 = 4 and ip[8] / 10 = 6 and ip[8] ^ 1 = 65 and ip[8] | 1 = 65",
                 optimize=False),
     [bytes(12) + b"\x08\x00" + bytes(8) + bytes((ttl,)) + bytes(20) for ttl in (64, 65, 0)],
     lambda short: run_bpf(short, bytes(12) + b"\x08\x00" + bytes(8) + b"\x40" + bytes(20)) != 0),
    # `ldb [23]; ret #1` falls into the other `ret #1`: one return instruction less
    ([_abs(bpf.H, 12), (bpf.JMP | bpf.JEQ | bpf.K, 0, 2, 0x800), _abs(bpf.B, 23), ACCEPT,
      (bpf.JMP | bpf.JEQ | bpf.K, 0, 1, 0x806), ACCEPT, REJECT],
     [bytes(12) + t + bytes(20) for t in (b"\x08\x00", b"\x08\x06", b"\x86\xdd")],
     lambda short: len(short) == 6 and _count(short, ACCEPT) == 1),
])
def test_exact_transformations_shorten_and_keep_every_verdict(program, packets, check) -> None:
    validate(program)
    short = optimize(program)
    validate(short)
    assert check(short), dump_bpf(short)
    _same_verdict_on_every_cut(program, short, packets)


@st.composite
def random_programs(draw) -> list[tuple]:
    """Valid cBPF programs of any shape the code generator might come to emit: loads of
    every size and mode (relative to X too), scratch memory, ALU on K and X (division by
    X included), tax/txa, forward jumps of every kind on K and X, ret #k and ret a."""
    n = draw(st.integers(1, 40))
    program: list[tuple] = []
    for pc in range(n):
        left = n - pc  # instructions after this one, the last being a return
        kind = draw(st.sampled_from(["ld", "ld", "ldx", "alu", "mem", "misc", "jmp", "jmp", "ret"]))
        if pc == n - 1 or kind == "ret":
            program.append(draw(st.sampled_from([(bpf.RET | bpf.K, 0, 0, 0), (bpf.RET | bpf.K, 0, 0, 96),
                                                 (bpf.RET | bpf.RVAL_A, 0, 0, 0)])))
        elif kind == "ld":
            size = draw(st.sampled_from([bpf.W, bpf.H, bpf.B]))
            program.append(draw(st.sampled_from([
                (bpf.LD | size | bpf.ABS, 0, 0, draw(st.integers(0, 40))),
                (bpf.LD | size | bpf.IND, 0, 0, draw(st.integers(0, 20))),
                (bpf.LD | bpf.IMM, 0, 0, draw(st.sampled_from([0, 1, 6, 0x800, 0xFFFFFFFF]))),
                (bpf.LD | bpf.W | bpf.LEN, 0, 0, 0),
                (bpf.LD | bpf.MEM, 0, 0, draw(st.integers(0, 3)))])))
        elif kind == "ldx":
            program.append(draw(st.sampled_from([
                (bpf.LDX | bpf.B | bpf.MSH, 0, 0, draw(st.integers(0, 30))),
                (bpf.LDX | bpf.IMM, 0, 0, draw(st.sampled_from([0, 2, 14]))),
                (bpf.LDX | bpf.W | bpf.LEN, 0, 0, 0),
                (bpf.LDX | bpf.MEM, 0, 0, draw(st.integers(0, 3)))])))
        elif kind == "alu":
            op = draw(st.sampled_from([bpf.ADD, bpf.SUB, bpf.MUL, bpf.DIV, bpf.MOD, bpf.AND, bpf.OR,
                                       bpf.XOR, bpf.LSH, bpf.RSH, bpf.NEG]))
            if op != bpf.NEG and draw(st.booleans()):
                program.append((bpf.ALU | op | bpf.SX, 0, 0, 0))
            else:
                k = draw(st.integers(1, 31) if op in (bpf.DIV, bpf.MOD, bpf.LSH, bpf.RSH)
                         else st.sampled_from([0, 1, 0xF, 0x1FFF, 0xFFFF0000]))
                program.append((bpf.ALU | op, 0, 0, 0 if op == bpf.NEG else k))
        elif kind == "mem":
            program.append((draw(st.sampled_from([bpf.ST, bpf.STX])), 0, 0, draw(st.integers(0, 3))))
        elif kind == "misc":
            program.append((bpf.MISC | draw(st.sampled_from([bpf.TAX, bpf.TXA])), 0, 0, 0))
        else:
            op = draw(st.sampled_from([bpf.JA, bpf.JEQ, bpf.JGT, bpf.JGE, bpf.JSET]))
            jt, jf = draw(st.integers(0, left - 2)), draw(st.integers(0, left - 2))
            if op == bpf.JA:
                program.append((bpf.JMP | bpf.JA, 0, 0, jt))
            else:
                src = draw(st.sampled_from([bpf.K, bpf.SX]))
                k = draw(st.sampled_from([0, 1, 2, 6, 0x11, 0x800, 0x1000])) if src == bpf.K else 0
                program.append((bpf.JMP | op | src, jt, jf, k))
    return program


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(random_programs(), st.lists(st.binary(max_size=44), min_size=1, max_size=10),
       st.sampled_from([0, 1, 500]))
def test_any_program_keeps_its_verdicts(program: list[tuple], packets: list[bytes], extra: int) -> None:
    """Not only what the code generator emits today: any valid program, on any bytes."""
    validate(program)
    short = optimize(program)
    validate(short)
    assert len(short) <= len(program)
    model = optimize(program, exact=False)
    validate(model)
    cut = marked(program)
    for data in packets + [bytes(range(40))]:
        want = run_bpf(program, data, len(data) + extra)
        assert run_bpf(short, data, len(data) + extra) == want, data.hex()
        if run_bpf(model, data, len(data) + extra) != want:
            assert run_bpf(cut, data, len(data) + extra) == 0, data.hex()


# ---- length --------------------------------------------------------------------------------
class _Insn(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte),
                ("k", ctypes.c_uint32)]


class _Program(ctypes.Structure):
    _fields_ = [("bf_len", ctypes.c_uint), ("bf_insns", ctypes.POINTER(_Insn))]


@functools.lru_cache(maxsize=1)
def _libpcap():
    """libpcap through ctypes (the one tcpdump runs), or None where it is not installed."""
    name = ctypes.util.find_library("pcap")
    if name is None:
        return None
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return None
    lib.pcap_open_dead.restype = ctypes.c_void_p
    lib.pcap_open_dead.argtypes = [ctypes.c_int, ctypes.c_int]
    lib.pcap_compile.argtypes = [ctypes.c_void_p, ctypes.POINTER(_Program), ctypes.c_char_p,
                                 ctypes.c_int, ctypes.c_uint32]
    lib.pcap_freecode.argtypes = [ctypes.POINTER(_Program)]
    return lib


needs_libpcap = pytest.mark.skipif(_libpcap() is None, reason="libpcap is not installed")


@functools.cache
def _libpcap_handle(linktype: int):
    return _libpcap().pcap_open_dead(linktype, 262144)


def libpcap_program(expr: str, linktype: int, optimize: bool = True) -> list[tuple] | None:
    """pcap_compile's program for expr (as tcpdump -d -y LINKTYPE prints it: netmask 0),
    or None where libpcap refuses it."""
    lib = _libpcap()
    prog = _Program()
    if lib.pcap_compile(_libpcap_handle(linktype), ctypes.byref(prog), expr.encode(),
                        int(optimize), 0) != 0:
        return None
    try:
        return [(i.code, i.jt, i.jf, i.k) for i in prog.bf_insns[:prog.bf_len]]
    finally:
        lib.pcap_freecode(ctypes.byref(prog))


def _tcpdump_length(expr: str, linktype: int) -> int | None:
    proc = subprocess.run([TCPDUMP, "-d", "-y", linktypes.NAMES[linktype], expr],
                          capture_output=True, text=True, timeout=20)
    if proc.returncode != 0:
        return None
    return len(proc.stdout.splitlines())


@needs_libpcap
@needs_tcpdump
def test_libpcap_through_ctypes_gives_tcpdumps_programs() -> None:
    for linktype in (1, 113):
        for expr in generated(15, seed=linktype) + ["ip broadcast", "tcp port 80"]:
            program = libpcap_program(expr, linktype)
            assert (None if program is None else len(program)) == _tcpdump_length(expr, linktype), expr


@needs_libpcap
@pytest.mark.parametrize("linktype", [1, 113])
def test_optimised_programs_are_about_as_short_as_libpcaps(linktype: int) -> None:
    """The figures at the top, measured; the thresholds hold them with a little slack."""
    count = {True: [0, 0, 0], False: [0, 0, 0]}  # exact -> no longer, over 10%, instructions
    worst = {True: 0.0, False: 0.0}
    compared = theirs_total = constant = 0
    n = (3000 if linktype == 1 else 2000) if FULL else 1500
    for expr in generated(n, seed=linktype):
        try:
            plain = compile_bpf(expr, linktype, optimize=False)
        except FilterError:
            continue
        theirs = libpcap_program(expr, linktype)
        if theirs is None:
            continue
        if len(theirs) == 1:
            # libpcap found the expression constant (`X or not X`) and dropped every load,
            # so it accepts or rejects even packets too short for X: left out
            constant += 1
            continue
        compared += 1
        theirs_total += len(theirs)
        for exact in (True, False):
            ours = optimize(plain, exact=exact)
            if exact:
                assert ours == compile_bpf(expr, linktype)
            c = count[exact]
            c[0] += len(ours) <= len(theirs)
            c[1] += len(ours) > 1.1 * len(theirs)
            c[2] += len(ours)
            worst[exact] = max(worst[exact], len(ours) / len(theirs))
    for exact, (shorter, over, total) in count.items():
        print(f"link type {linktype}, {'verdict-keeping' if exact else 'libpcap model'}: "
              f"{shorter}/{compared} no longer than libpcap's, {over} longer by more than 10%, "
              f"worst {worst[exact]:.2f}x, {total} instructions against {theirs_total}; "
              f"{constant} constant in libpcap left out")
    assert compared > 900
    shorter, over, total = count[True]
    assert shorter >= 0.89 * compared
    assert total <= 1.02 * theirs_total
    shorter, over, total = count[False]
    assert shorter >= 0.975 * compared
    assert over <= 0.005 * compared
    assert worst[False] <= 1.3
    assert total <= 0.97 * theirs_total


@needs_libpcap
def test_optimised_programs_on_the_other_link_types_are_about_as_short_as_libpcaps() -> None:
    """The link types of issue 22 (802.11 and its radio headers, ARCNET, SunATM, pflog,
    MTP2, PPP, IP over FC), each with its own random expressions (tests/_filter_link_cases.py),
    measured apart from EN10MB (figures at the top)."""
    n = 300 if FULL else 150
    all_shorter = all_compared = 0
    for linktype, (name, _) in FAMILIES.items():
        rng = random.Random(linktype)
        shorter = over = compared = ours_total = theirs_total = 0
        for expr in [random_link_expression(rng, linktype) for _ in range(n)]:
            theirs = libpcap_program(expr, linktype)
            if theirs is None or len(theirs) == 1:
                continue
            ours = compile_bpf(expr, linktype)
            compared += 1
            shorter += len(ours) <= len(theirs)
            over += len(ours) > 1.1 * len(theirs)
            ours_total += len(ours)
            theirs_total += len(theirs)
        print(f"{name}: {shorter}/{compared} no longer than libpcap's, {over} longer by more "
              f"than 10%, {ours_total} instructions against {theirs_total}")
        assert compared > 0.6 * n, name
        assert shorter >= 0.8 * compared, name
        assert ours_total <= 1.1 * theirs_total, name
        all_shorter += shorter
        all_compared += compared
    assert all_shorter >= 0.95 * all_compared


@pytest.mark.parametrize("expr", ["tcp port 80", "host 10.0.0.1 or 10.0.0.2"])
def test_cli_compile_prints_the_optimised_program_and_minus_o_the_plain_one(expr: str) -> None:
    def cli(*args: str) -> str:
        proc = subprocess.run([sys.executable, "-m", "purepcap", "compile", *args, expr],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    assert cli() == dump_bpf(compile_bpf(expr))
    assert cli("-O") == dump_bpf(compile_bpf(expr, optimize=False))
    assert len(cli().splitlines()) < len(cli("-O").splitlines())
    if TCPDUMP:  # the same length as tcpdump's, for these
        assert len(cli().splitlines()) == _tcpdump_length(expr, 1)
