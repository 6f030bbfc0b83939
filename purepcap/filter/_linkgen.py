# Link types whose headers have a variable length: 802.11 (its header is 24 bytes, 26
# for QoS data) behind no radio header, radiotap, PPI, AVS or Prism headers (their
# length read from the packet). Strategy, as libpcap's gencode: lowering writes the
# IR with symbolic offsets (BASE_LINK + n is byte n of the 802.11 header, BASE_PAYLOAD
# + n byte n after it), then finish() rewrites them into loads relative to two scratch
# slots and puts in front of the test a preamble that fills the slots, which runs
# first for every packet (its loads can reject a short packet, as in libpcap):
#
#   ("pre", steps, test)   steps: ("set", slot, value) | ("if", test, steps)
#                                 | ("need", test)  (reject the packet unless test)
#   ("mem", slot)          a value: what the preamble left in that slot
#
# Both back ends (_codegen.emit_bpf, _match) run the steps, then the test. Also here, as
# libpcap emits them: the 802.11 frame-control tests (`type`, `subtype`, `dir`) and
# address tests (`wlan host/src/dst/addr1..4/ra/ta`, `ether host` on 802.11), and the
# layouts and own primitives of pflog, SunATM, SS7 MTP2 and ARCNET (_codegen lowers
# through them).
from __future__ import annotations

from .. import linktypes as LT

__all__ = ["WLAN_LINKTYPES", "VARIABLE_LINKTYPES", "BASE_LINK", "BASE_PAYLOAD", "SLOT_LINK",
           "SLOT_PAYLOAD", "finish", "wlan_host", "wlan_multicast", "frame_control", "payload_type",
           "WLAN_TYPES", "WLAN_SUBTYPES", "WLAN_DIRS"]

# Symbolic offsets: far above any real packet offset (cBPF offsets are 32-bit).
BASE_LINK = 0x2000_0000
BASE_PAYLOAD = 0x4000_0000
# Scratch slots the preamble fills (the arithmetic's scratch use counts up from 0).
SLOT_LINK = 15
SLOT_PAYLOAD = 14

# link type -> the radio header in front of the 802.11 header
WLAN_LINKTYPES = {LT.IEEE802_11: "none", LT.IEEE802_11_RADIOTAP: "radiotap", LT.PPI: "ppi",
                  LT.IEEE802_11_PRISM: "prism", 163: "avs"}

# 802.11 frame control, byte 0: type in bits 2-3, subtype in bits 4-7 (values as shifted)
WLAN_TYPES = {"mgt": 0x00, "management": 0x00, "ctl": 0x04, "control": 0x04, "data": 0x08}
WLAN_SUBTYPES = {
    0x00: {"assoc-req": 0x00, "assocreq": 0x00, "assoc-resp": 0x10, "assocresp": 0x10,
           "reassoc-req": 0x20, "reassocreq": 0x20, "reassoc-resp": 0x30, "reassocresp": 0x30,
           "probe-req": 0x40, "probereq": 0x40, "probe-resp": 0x50, "proberesp": 0x50,
           "beacon": 0x80, "atim": 0x90, "disassoc": 0xA0, "disassociation": 0xA0,
           "auth": 0xB0, "deauth": 0xC0},
    0x04: {"ps-poll": 0xA0, "rts": 0xB0, "cts": 0xC0, "ack": 0xD0, "cf-end": 0xE0,
           "cf-end-ack": 0xF0},
    0x08: {"data": 0x00, "data-cf-ack": 0x10, "data-cf-poll": 0x20, "data-cf-ack-poll": 0x30,
           "null": 0x40, "cf-ack": 0x50, "cf-poll": 0x60, "cf-ack-poll": 0x70,
           "qos-data": 0x80, "qos-data-cf-ack": 0x90, "qos-data-cf-poll": 0xA0,
           "qos-data-cf-ack-poll": 0xB0, "qos": 0xC0, "qos-cf-poll": 0xE0,
           "qos-cf-ack-poll": 0xF0},
}
WLAN_DIRS = {"nods": 0, "tods": 1, "fromds": 2, "dstods": 3}
# every link type whose IR finish() rewrites
VARIABLE_LINKTYPES = frozenset(WLAN_LINKTYPES) | {LT.PFLOG}

_MEM_LINK = ("mem", SLOT_LINK)
_MEM_PAYLOAD = ("mem", SLOT_PAYLOAD)


def _jset(v, bits: int):
    return ("cmp", "jset", v, ("k", bits))


def _not(t):
    return ("not", t)


def _fc(n: int):
    """Byte n of the frame control (symbolic: relocated by finish())."""
    return ("ld", 1, BASE_LINK + n)


def _mac_at(off: int, mac: bytes):
    return ("and", [("cmp", "jeq", ("ld", 4, BASE_LINK + off + 2), ("k", int.from_bytes(mac[2:], "big"))),
                    ("cmp", "jeq", ("ld", 2, BASE_LINK + off), ("k", int.from_bytes(mac[:2], "big")))])


def frame_control(value: int, mask: int, byte: int = 0):
    v = _fc(byte)
    if mask != 0xFF:
        v = ("alu", "&", v, ("k", mask))
    return ("cmp", "jeq", v, ("k", value))


def data_frame():
    """The frame is a data frame (libpcap's test before any payload load)."""
    return ("and", [_not(_jset(_fc(0), 0x04)), _jset(_fc(0), 0x08)])


def _is_ctl_cts_or_ack():
    return ("and", [frame_control(0x04, 0x0C),
                    ("or", [frame_control(0xC0, 0xF0), frame_control(0xD0, 0xF0)])])


def wlan_host(mac: bytes, d: str | None, test_macs=_mac_at):
    """`wlan host/src/dst/addr1..4/ra/ta MAC` (libpcap 1.10's gen_wlanhostop)."""
    at = lambda off: test_macs(off, mac)  # noqa: E731 - a short closure over mac
    fc0, fc1 = _fc(0), _fc(1)
    if d == "src":
        return ("and", [_not(_jset(fc0, 0x04)), ("or", [
            ("and", [_not(_jset(fc0, 0x08)), at(10)]),
            ("and", [_jset(fc0, 0x08), ("or", [
                ("and", [_not(_jset(fc1, 0x02)), at(10)]),
                ("and", [_jset(fc1, 0x02), ("or", [
                    ("and", [_not(_jset(fc1, 0x01)), at(16)]),
                    ("and", [_jset(fc1, 0x01), at(24)])])])])])])])
    if d == "dst":
        return ("and", [_not(_jset(fc0, 0x04)), ("or", [
            ("and", [_not(_jset(fc0, 0x08)), at(4)]),
            ("and", [_jset(fc0, 0x08), ("or", [
                ("and", [_not(_jset(fc1, 0x01)), at(4)]),
                ("and", [_jset(fc1, 0x01), at(16)])])])])])
    if d == "src and dst":
        return ("and", [wlan_host(mac, "src", test_macs), wlan_host(mac, "dst", test_macs)])
    if d in (None, "src or dst"):
        return ("or", [wlan_host(mac, "src", test_macs), wlan_host(mac, "dst", test_macs)])
    if d == "addr1":
        return at(4)
    if d == "addr2":
        return ("and", [_not(_is_ctl_cts_or_ack()), at(10)])
    if d == "addr3":
        return ("and", [_not(frame_control(0x04, 0x0C)), at(16)])
    if d == "addr4":
        return ("and", [frame_control(0x03, 0x03, 1), at(24)])
    if d == "ra":
        return ("and", [_jset(fc0, 0x08), at(4)])
    if d == "ta":
        return ("and", [_jset(fc0, 0x08), _not(_is_ctl_cts_or_ack()), at(10)])
    raise AssertionError(d)


def wlan_multicast(broadcast: bool):
    """`ether broadcast/multicast` on 802.11: the destination address (libpcap)."""
    if broadcast:
        return wlan_host(b"\xff" * 6, "dst")
    return wlan_host(b"", "dst", lambda off, _mac: _jset(("ld", 1, BASE_LINK + off), 1))


def payload_type(ethertype: int, off_type: int = BASE_PAYLOAD + 6):
    """libpcap's 802.11 payload type test: a data frame whose LLC/SNAP type (at
    ``off_type``, 4 further on after each `vlan`) or, for a value up to 1500, whose DSAP
    is the given one."""
    llc = off_type - 6
    if ethertype == 0x809B:  # AppleTalk: SNAP with Apple's OUI (libpcap's gen_snap)
        field = ("and", [("cmp", "jeq", ("ld", 4, llc + 4), ("k", 0x0007809B)),
                         ("cmp", "jeq", ("ld", 4, llc), ("k", 0xAAAA0308))])
    elif ethertype in (0xFE, 0x06, 0xF0):  # DSAP and SSAP
        field = ("cmp", "jeq", ("ld", 2, llc), ("k", ethertype << 8 | ethertype))
    elif ethertype <= 1500:
        field = ("cmp", "jeq", ("ld", 1, llc), ("k", ethertype))
    else:
        field = ("cmp", "jeq", ("ld", 2, off_type), ("k", ethertype))
    return ("and", [data_frame(), field])


# ---- relocation and the preamble

def _plus(a, b):
    return ("alu", "+", a, b)


class _Relocate:
    def __init__(self, radio: str) -> None:
        # where the 802.11 header starts: a constant 0 or the slot the preamble fills
        self.link = ("k", 0) if radio == "none" else _MEM_LINK

    def at(self, size: int, off: int, idx=None):
        if off >= BASE_PAYLOAD:
            base, off = _MEM_PAYLOAD, off - BASE_PAYLOAD
        elif off >= BASE_LINK:
            base, off = self.link, off - BASE_LINK
        else:
            return ("ld", size, off) if idx is None else ("ldi", size, off, idx)
        if base[0] == "k":
            return ("ld", size, off) if idx is None else ("ldi", size, off, idx)
        return ("ldi", size, off, base if idx is None else _plus(base, idx))

    def value(self, v):
        kind = v[0]
        if kind == "ld":
            return self.at(v[1], v[2])
        if kind == "ldi":
            return self.at(v[1], v[2], self.value(v[3]))
        if kind == "msh":
            ihl = ("alu", "&", self.at(1, v[1]), ("k", 15))
            return ("alu", "<<", ihl, ("k", 2))
        if kind == "off":  # an offset as a value (a tunnel's start, _tunnel.py)
            off = v[1]
            if off >= BASE_PAYLOAD:
                return _plus(_MEM_PAYLOAD, ("k", off - BASE_PAYLOAD))
            if off >= BASE_LINK:
                return _plus(self.link, ("k", off - BASE_LINK))
            return ("k", off)
        if kind == "alu":
            return ("alu", v[1], self.value(v[2]), self.value(v[3]))
        return v

    def steps(self, steps: list) -> list:
        out = []
        for step in steps:
            if step[0] == "set":
                out.append(("set", step[1], self.value(step[2])))
            elif step[0] == "if":
                out.append(("if", self.test(step[1]), self.steps(step[2])))
            else:
                out.append(("need", self.test(step[1])))
        return out

    def test(self, t):
        kind = t[0]
        if kind == "do":  # a tunnel's offsets (_tunnel.py)
            return ("do", self.steps(t[1]), t[2])
        if kind in ("and", "or"):
            return (kind, [self.test(i) for i in t[1]])
        if kind == "not":
            return ("not", self.test(t[1]))
        if kind == "cmp":
            return ("cmp", t[1], self.value(t[2]), self.value(t[3]))
        return t


def _uses_base(t, base: int) -> bool:
    """Does the IR load at a symbolic offset at or above ``base``?"""
    if isinstance(t, tuple):
        if t and t[0] in ("ld", "ldi", "msh", "off"):
            off = t[1] if t[0] in ("msh", "off") else t[2]
            if off >= base:
                return True
        return any(_uses_base(c, base) for c in t if isinstance(c, (tuple, list)))
    if isinstance(t, list):
        return any(_uses_base(c, base) for c in t)
    return False


def _radio_steps(radio: str) -> list:
    """Steps that put the radio header's length (where 802.11 starts) in SLOT_LINK."""
    le16 = ("alu", "|", ("alu", "<<", ("ld", 1, 3), ("k", 8)), ("ld", 1, 2))
    if radio == "radiotap":
        return [("set", SLOT_LINK, le16)]
    if radio == "ppi":
        # PPI carries 802.11 only when its DLT field (little-endian, offset 4) says 105
        return [("need", ("cmp", "jeq", ("ld", 4, 4), ("k", 0x69000000))),
                ("set", SLOT_LINK, le16)]
    if radio == "avs":
        return [("set", SLOT_LINK, ("ld", 4, 4))]
    if radio == "prism":
        # a Prism header says its own length; an AVS header behind the Prism DLT too
        avs = ("cmp", "jeq", ("alu", "&", ("ld", 4, 0), ("k", 0xFFFFF000)), ("k", 0x80211000))
        return [("set", SLOT_LINK, ("k", 144)), ("if", avs, [("set", SLOT_LINK, ("ld", 4, 4))])]
    return []


def _payload_steps(radio: str, rel: _Relocate) -> list:
    """Steps that put where the 802.11 payload starts in SLOT_PAYLOAD: 24 bytes after the
    802.11 header's start, 26 for QoS data frames, rounded up to 4 when radiotap's flags
    say the header is padded."""
    fc = rel.at(1, BASE_LINK)
    inner = [("if", _jset(fc, 0x80), [("set", SLOT_PAYLOAD, _plus(_MEM_PAYLOAD, ("k", 2)))])]
    if radio == "radiotap":
        present = ("ld", 4, 4)
        tsft, flags_set = 0x1000000, 0x2000000

        def pad(off: int):
            return _jset(("ld", 1, off), 0x20)
        padded = ("and", [_jset(present, flags_set), _not(_jset(present, 0x80)), ("or", [
            ("and", [_jset(present, tsft), pad(16)]),
            ("and", [_not(_jset(present, tsft)), pad(8)])])])
        inner.append(("if", padded, [("set", SLOT_PAYLOAD, ("alu", "&", _plus(_MEM_PAYLOAD, ("k", 3)),
                                                            ("k", 0xFFFFFFFC)))]))
    start = _plus(rel.link, ("k", 24)) if rel.link[0] == "mem" else ("k", 24)
    data = ("and", [_jset(fc, 0x08), _not(_jset(fc, 0x04))])
    return [("set", SLOT_PAYLOAD, start), ("if", data, inner)]


def finish(ir, linktype: int):
    """The IR of a link type with variable offsets (VARIABLE_LINKTYPES) with its
    symbolic offsets made real: relocated loads behind the preamble that computes
    the offsets they use."""
    if linktype == LT.PFLOG:
        if not _uses_base(ir, BASE_PAYLOAD):
            return ir
        return ("pre", pflog_payload_steps(), _Relocate("none").test(ir))
    radio = WLAN_LINKTYPES[linktype]
    need_payload = _uses_base(ir, BASE_PAYLOAD)
    need_link = need_payload or _uses_base(ir, BASE_LINK)
    if not need_link:
        # PPI's test of what it carries comes first in any program (not the empty one)
        return ("pre", _radio_steps(radio)[:1], ir) if radio == "ppi" and ir != ("true",) else ir
    rel = _Relocate(radio)
    steps = _radio_steps(radio)
    if need_payload:
        steps = steps + _payload_steps(radio, rel)
    body = rel.test(ir)
    if not steps:
        return body
    return ("pre", steps, body)


# ---- fixed-layout link types' own primitives (pflog, SunATM, SS7 MTP2, ARCNET)

# pflog: OpenBSD's pfloghdr (length, af, action, reason, ifname[16], ruleset[16],
# rulenr, subrulenr, ..., dir at 60); the payload starts at its length rounded up to 4.
PFLOG_FIELDS = {"on": ("name", 4), "ifname": ("name", 4), "rset": ("name", 20),
                "ruleset": ("name", 20), "rnr": ("num", 36), "rulenum": ("num", 36),
                "srnr": ("num", 40), "subrulenum": ("num", 40), "action": ("action", 2),
                "reason": ("reason", 3)}
PF_ACTIONS = {"pass": 0, "block": 1, "drop": 1, "scrub": 2, "noscrub": 3, "nat": 4,
              "nonat": 5, "binat": 6, "nobinat": 7, "rdr": 8, "nordr": 9}
PF_REASONS = {"match": 0, "bad-offset": 1, "fragment": 2, "short": 3, "normalize": 4,
              "memory": 5, "bad-timestamp": 6, "congestion": 7, "ip-option": 8,
              "proto-cksum": 9, "state-mismatch": 10, "state-insert": 11, "state-limit": 12,
              "src-limit": 13, "synproxy": 14}
PF_DIRECTION = 60  # PF_IN 1, PF_OUT 2
# AF_INET6 as libpcap on Linux compares it (10), and as the BSDs write it (24, 28, 30)
PFLOG_AF_INET6 = (10, 24, 28, 30)
PFLOG_IFNAMSIZ = 16


def pflog_payload_steps() -> list:
    hdrlen = ("alu", "&", ("alu", "+", ("ld", 1, 0), ("k", 3)), ("k", 0xFFFFFFFC))
    return [("set", SLOT_PAYLOAD, hdrlen)]


def pflog_name(off: int, name: bytes):
    """libpcap's gen_bcmp: the name's own bytes (no terminating NUL), compared from the
    end backwards in words, then a half-word, then a byte."""
    tests = []
    size = len(name)
    for width in (4, 2, 1):
        while size >= width:
            tests.append(("cmp", "jeq", ("ld", width, off + size - width),
                          ("k", int.from_bytes(name[size - width:size], "big"))))
            size -= width
    return ("and", tests)


# SunATM: flags (low nibble: 1 LANE, 2 LLC), VPI, VCI (2 bytes)
ATM_VCI = {"oamf4": (3, 4), "oam": (3, 4), "oamf4sc": (3,), "oamf4ec": (4,), "metac": (1,),
           "bcc": (2,), "sc": (5,), "ilmic": (16,), "connectmsg": (5,), "metaconnect": (1,)}
# Q.2931 message types of a call set-up (`connectmsg`; `metaconnect` has no RELEASE_DONE)
ATM_MSGTYPES = {"connectmsg": (0x5A, 0x4D, 0x0F, 0x07, 0x05, 0x02),
                "metaconnect": (0x5A, 0x4D, 0x07, 0x05, 0x02)}


def atm_word(word: str):
    vci = ATM_VCI[word]
    test = ("and", [("cmp", "jeq", ("ld", 1, 1), ("k", 0)),
                    ("or", [("cmp", "jeq", ("ld", 2, 2), ("k", v)) for v in vci])])
    if word in ATM_MSGTYPES:
        test = ("and", [test, ("or", [("cmp", "jeq", ("ld", 1, 9), ("k", m))
                                      for m in ATM_MSGTYPES[word]])])
    return test


# SS7 MTP3 routing label (little-endian: DPC 14 bits, OPC 14, SLS 4) after the SIO.
SS7_FIELDS = ("sio", "opc", "dpc", "sls", "hsio", "hopc", "hdpc", "hsls")
SS7_MAX = {"sio": 255, "opc": 16383, "dpc": 16383, "sls": 15}


# SS7 signal unit types by the length indicator (6 bits after the BSN/FSN bytes; 9 bits,
# shifted, in Annex A's "h" forms): 0 a fill-in unit, 1-2 a link status unit, more a
# message unit
SS7_UNITS = ("fisu", "lssu", "msu", "hfisu", "hlssu", "hmsu")


def ss7_unit(word: str, base: int):
    if word.startswith("h"):
        load, mask, most = ("ld", 2, base + 4), 0xFF80, 0x100
    else:
        load, mask, most = ("ld", 1, base + 2), 0x3F, 2
    li = ("alu", "&", load, ("k", mask))
    kind = word.lstrip("h")
    if kind == "fisu":
        return _not(_jset(load, mask))
    if kind == "lssu":
        return ("and", [("cmp", "jgt", li, ("k", 0)), _not(("cmp", "jgt", li, ("k", most)))])
    return ("cmp", "jgt", li, ("k", most))


def compare(op: str, v, k: int):
    """`v op k` for op in == != < <= > >=, as IR."""
    if op in ("==", "!="):
        t = ("cmp", "jeq", v, ("k", k))
        return t if op == "==" else _not(t)
    if op in (">", ">="):
        return ("cmp", "jgt" if op == ">" else "jge", v, ("k", k))
    return _not(("cmp", "jge" if op == "<" else "jgt", v, ("k", k)))


def ss7(word: str, value: int, base: int, op: str = "=="):
    """`sio/opc/dpc/sls [op] N` (and the h-forms, 3 bytes further: the annex A header).
    As libpcap, an order comparison compares the field as it lies in the big-endian word
    (masked) with the value laid out the same way."""
    field = word[1:] if word.startswith("h") else word
    off = base + (3 if word.startswith("h") else 0)
    if field == "sio":
        return compare(op, ("ld", 1, off + 3), value)
    if field == "sls":
        return compare(op, ("alu", "&", ("ld", 1, off + 7), ("k", 0xF0)), value << 4)
    if field == "dpc":
        v = ((value & 0xFF) << 24) | (((value >> 8) & 0x3F) << 16)
        return compare(op, ("alu", "&", ("ld", 4, off + 4), ("k", 0xFF3F0000)), v)
    v = ((value & 3) << 22) | (((value >> 2) & 0xFF) << 8) | ((value >> 10) & 0x0F)
    return compare(op, ("alu", "&", ("ld", 4, off + 4), ("k", 0x00C0FF0F)), v)


# ARCNET protocol ids for the ethertypes libpcap maps (RFC 1201 first, then RFC 1051)
ARCNET_TYPES = {0x0800: (0xD4, 0xF0), 0x0806: (0xD5, 0xF1), 0x8035: (0xD6,), 0x86DD: (0xC4,),
                0x809B: (0xDD,)}
