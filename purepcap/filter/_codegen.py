# From the AST to a boolean IR, and from the IR to classic BPF.
#
# Strategy: lower() walks the AST left to right with a mutable link-layer state
# (where the link header, the ethertype and the network layer start), so `vlan`,
# `mpls` and `pppoes` shift the offsets of everything written after them, exactly as
# libpcap's gencode does. Each primitive becomes the same tests libpcap 1.10 emits
# (checked against `tcpdump -d`). The IR is tiny and shared by both back ends:
#
#   values: ("k", n) ("len",) ("ld", size, off) ("ldi", size, off, index_value)
#           ("msh", off) = 4*(pkt[off]&0xf)   ("alu", op, a, b)
#   tests:  ("cmp", jop, a, b) with jop in jeq/jgt/jge/jset, ("and", [..]), ("or", [..]),
#           ("not", t), ("true",), ("false",)
#
# emit_bpf() produces jumping code backwards (so every jump target is already known
# and long jumps get a `ja` trampoline); _match.py turns the same IR into Python.
# Both evaluate tests in the same order with short-circuits, and a load past the
# captured bytes rejects the whole packet in both, so the back ends agree.
from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass

from .. import linktypes as LT
from ..errors import FilterError
from . import _bpf as bpf
from . import _linkgen as wlan
from . import _tunnel as tunnel
from ._lexer import shown
from ._parser import (
    ISIS_PDU_KEYWORDS,
    And,
    BinOp,
    Empty,
    Encap,
    LenCmp,
    LinkPrim,
    Llc,
    Load,
    Node,
    Not,
    Num,
    Or,
    PktLen,
    Prim,
    ProtoName,
    Relation,
    Special,
    Value,
    WlanField,
)

__all__ = ["lower", "fold", "emit_bpf", "linux_cooked_fixup", "SUPPORTED_LINKTYPES",
           "CHAIN_STEPS", "CHAIN_EXTENSIONS"]

ETHERTYPE = {"ip": 0x0800, "ip6": 0x86DD, "arp": 0x0806, "rarp": 0x8035, "atalk": 0x809B,
             "aarp": 0x80F3, "decnet": 0x6003, "lat": 0x6004, "sca": 0x6007, "moprc": 0x6002,
             "mopdl": 0x6001, "ipx": 0x8137, "vlan": 0x8100, "mpls": 0x8847, "pppoed": 0x8863,
             "pppoes": 0x8864, "lldp": 0x88CC}
IPPROTO = {"icmp": 1, "igmp": 2, "ggp": 3, "ipencap": 4, "ipip": 4, "st": 5, "tcp": 6, "egp": 8,
           "igp": 9, "igrp": 9, "pup": 12, "udp": 17, "hmp": 20, "xns-idp": 22, "rdp": 27,
           "iso-tp4": 29, "dccp": 33, "xtp": 36, "ddp": 37, "idpr-cmtp": 38, "ipv6": 41,
           "ipv6-route": 43, "ipv6-frag": 44, "idrp": 45, "rsvp": 46, "gre": 47, "esp": 50,
           "ah": 51, "skip": 57, "ipv6-icmp": 58, "icmp6": 58, "icmpv6": 58, "ipv6-nonxt": 59,
           "ipv6-opts": 60, "rspf": 73, "vmtp": 81, "eigrp": 88, "ospf": 89, "ospfigp": 89,
           "ax.25": 93, "etherip": 97, "encap": 98, "pim": 103, "ipcomp": 108, "vrrp": 112,
           "carp": 112, "l2tp": 115, "isis": 124, "sctp": 132, "fc": 133,
           "mobility-header": 135, "udplite": 136, "mpls-in-ip": 137, "manet": 138, "hip": 139,
           "shim6": 140, "wesp": 141, "rohc": 142}
# A few service names, so `port http` works without /etc/services; others are looked
# up with socket.getservbyname (a local file lookup, never DNS).
SERVICES = {"ftp-data": 20, "ftp": 21, "ssh": 22, "telnet": 23, "smtp": 25, "domain": 53,
            "bootps": 67, "bootpc": 68, "tftp": 69, "http": 80, "www": 80, "pop3": 110,
            "sunrpc": 111, "ntp": 123, "netbios-ns": 137, "netbios-dgm": 138,
            "netbios-ssn": 139, "imap": 143, "snmp": 161, "snmp-trap": 162, "bgp": 179,
            "ldap": 389, "https": 443, "microsoft-ds": 445, "isakmp": 500, "syslog": 514,
            "rip": 520, "ipp": 631, "ldaps": 636, "openvpn": 1194, "radius": 1812,
            "nfs": 2049, "mysql": 3306, "rdp": 3389, "sip": 5060, "postgresql": 5432,
            "x11": 6000, "http-alt": 8080, "mdns": 5353, "llmnr": 5355}

_DECIMAL = re.compile(r"[0-9]+")

# Where each supported link type keeps its ethertype and network layer.
_LINKS = {
    LT.EN10MB: ("ether", 12, 14), LT.LINUX_SLL: ("sll", 14, 16), LT.LINUX_SLL2: ("sll2", 0, 20),
    LT.NULL: ("null", None, 4), LT.LOOP: ("loop", None, 4), LT.RAW: ("raw", None, 0),
    LT.RAW_OPENBSD: ("raw", None, 0), LT.RAW_LINUX: ("raw", None, 0),
    LT.IPV4: ("ipv4", None, 0), LT.IPV6: ("ipv6", None, 0),
    LT.PPP: ("ppp", 2, 4), LT.C_HDLC: ("chdlc", 2, 4),
    # 802.11 (behind its radio headers): offsets symbolic until _linkgen.finish
    **{lt: ("wlan", wlan.BASE_PAYLOAD + 6, wlan.BASE_PAYLOAD + 8) for lt in wlan.WLAN_LINKTYPES},
    LT.PPP_HDLC: ("ppp", 2, 4), LT.PPP_ETHER: ("ppp", 6, 8),
    LT.ARCNET_BSD: ("arcnet", 2, 6), LT.ARCNET_LINUX: ("arcnet", 4, 8),
    LT.IP_OVER_FC: ("ipfc", 22, 24), LT.SUNATM: ("sunatm", 10, 12),
    LT.PFLOG: ("pflog", None, wlan.BASE_PAYLOAD),  # (its header length is in the packet)
    LT.MTP2: ("mtp2", None, 0), 139: ("mtp2", None, 0),
    LT.SLIP: ("slip", None, 16),
    LT.PPP_BSDOS: ("ppp_bsdos", 5, 24),  # BSD/OS's 24-byte PPP header, protocol at 5
    LT.BACNET_MS_TP: ("mstp", None, 0),  # BACnet MS/TP: preamble 55 ff, frame type, destination, source  # BSD's 16-byte SLIP pseudo-header: direction, then VJ data
}
SUPPORTED_LINKTYPES = tuple(sorted(_LINKS))
_OSI_NPID = {"clnp": 0x81, "esis": 0x82, "isis": 0x83}
# IS-IS PDU types of each keyword (ISO 10589): L1/L2 hellos 15/16, point-to-point hello
# 17, L1/L2 link-state 18/20, complete sequence numbers 24/25, partial 26/27
_ISIS_PDU_GROUPS = {"l1": (15, 17, 18, 24, 26), "l2": (16, 17, 20, 25, 27),
                    "iih": (15, 16, 17), "lsp": (18, 20), "snp": (24, 25, 26, 27),
                    "csnp": (24, 25), "psnp": (26, 27)}
# LLC control fields: S frames under mask 0x0f, U frames under 0xef (without P/F)
_LLC_S = {"rr": 0x01, "rnr": 0x05, "rej": 0x09}
_LLC_U = {"ui": 0x03, "ua": 0x63, "disc": 0x43, "dm": 0x0F, "sabme": 0x6F, "test": 0xE3,
          "xid": 0xAF, "frmr": 0x87}
_KIND_DESC = {"ether": "Ethernet", "sll": "Linux cooked v1", "sll2": "Linux cooked v2",
              "null": "BSD loopback", "loop": "OpenBSD loopback", "raw": "Raw IP",
              "ipv4": "Raw IPv4", "ipv6": "Raw IPv6", "ppp": "PPP", "chdlc": "Cisco HDLC",
              "wlan": "802.11", "arcnet": "ARCNET", "ipfc": "IP over Fibre Channel",
              "sunatm": "SunATM", "pflog": "OpenBSD pflog", "mtp2": "SS7 MTP2",
              "slip": "SLIP", "mstp": "BACnet MS/TP", "ppp_bsdos": "BSD/OS PPP"}
_PPP_TYPES = {0x0800: 0x0021, 0x86DD: 0x0057, 0x6003: 0x0027, 0x809B: 0x0029, 0x8137: 0x002B,
              0x8847: 0x0281, 0xE0: 0x002B, 0xFE: 0x0023, 0x42: 0x0031}
# BSD address families for IPv6 over NULL/LOOP (NetBSD/OpenBSD 24, FreeBSD 28, Darwin 30).
_AF_INET6_BSD = (24, 28, 30)

# protochain walks at most this many headers after the IP header. libpcap's loop walks
# until the packet ends (its TESTrun's deepest case walks 100), but cBPF in a kernel may
# only jump forward, so both back ends unroll the same bounded walk: 100 steps of 19
# instructions, so that two protochains fit in the kernel's 4,096 instructions (three
# are too long). The headers walked: IPv6 hop-by-hop, destination options, routing and
# fragment headers (their length in 8-byte units after the first 8), and AH (51).
CHAIN_STEPS = 100
CHAIN_EXTENSIONS = (0, 60, 43, 44)

TRUE: tuple = ("true",)
FALSE: tuple = ("false",)


def linktype_name(linktype: int) -> str:
    return f"{LT.NAMES.get(linktype, 'unknown')} ({linktype})"


def _and(*items):
    return ("and", list(items))


def _or(*items):
    return ("or", list(items))


def _not(item):
    return ("not", item)


def _cmp(size: int, off: int, value: int, jop: str = "jeq"):
    return ("cmp", jop, ("ld", size, off), ("k", value))


def _mcmp1(v, value: int, mask: int):
    """(v & mask) == value for a loaded value v."""
    return ("cmp", "jeq", ("alu", "&", v, ("k", mask)), ("k", value))


# libpcap's keywords over 802.2 LLC: IPX by its SAP (Novell's frames in every form on
# Ethernet), AppleTalk and AARP also as SNAP (Apple's OUI, and 0 for AARP); SAPs tested
# as DSAP and SSAP together (libpcap's ISONS, IP and NetBEUI)
LLCSAP_IPX = 0xE0
ETHERTYPE_IPX = 0x8137
_SNAP_OUI = {0x809B: 0x080007, 0x80F3: 0x000000, ETHERTYPE_IPX: 0x000000}
_SAP_PAIRS = (0xFE, 0x06, 0xF0)
_LLC_NAMES = {"iso": 0xFE, "stp": 0x42, "netbeui": 0xF0, "ipx": LLCSAP_IPX}


def _snap(llc: int, ethertype: int):
    """The 802.2 header at ``llc`` is SNAP with libpcap's OUI for the type (gen_snap:
    the second word first)."""
    oui = _SNAP_OUI[ethertype]
    return _and(_cmp(4, llc + 4, (oui & 0xFFFF) << 16 | ethertype),
                _cmp(4, llc, 0xAAAA0300 | oui >> 16))


def _sap(llc: int, sap: int):
    if sap in _SAP_PAIRS:
        return _cmp(2, llc, sap << 8 | sap)
    return _cmp(1, llc, sap)


def _mcmp(size: int, off: int, value: int, mask: int):
    if mask == 0:
        # Nothing to compare (the host part of `net ::/32`, `net 0/0`): no load, as in what
        # tcpdump runs (libpcap's optimiser drops `ld; and #0; jeq #0`, and its load).
        return TRUE if value == 0 else FALSE
    full = (1 << (8 * size)) - 1
    v = ("ld", size, off)
    if mask != full:
        v = ("alu", "&", v, ("k", mask))
    return ("cmp", "jeq", v, ("k", value))


@dataclass
class _State:
    kind: str
    off_linktype: int | None
    off_nl: int
    mpls_depth: int = 0
    off_link: int = 0  # where the MAC header starts (6 after SunATM's `lane`)
    lane: bool = False  # LANE: Ethernet inside SunATM, LE control frames excluded
    tunnel: int = 0  # how many geneve/vxlan headers in: offsets are then symbolic (_tunnel)
    # after geneve: the test that an Ethernet frame is there (libpcap's link-address tests)
    inner_frame: tuple | None = None


class _Lower:
    def __init__(self, expression: str, linktype: int, offline: bool) -> None:
        if linktype not in _LINKS:
            supported = ", ".join(linktype_name(t) for t in SUPPORTED_LINKTYPES)
            raise FilterError(f"filters are not supported on link type {linktype_name(linktype)}; "
                              f"supported: {supported}", expression=expression)
        kind, off_lt, off_nl = _LINKS[linktype]
        self.expression = expression
        self.linktype = linktype
        self.offline = offline
        self.st = _State(kind, off_lt, off_nl)
        self.tunnel_columns: dict[int, int | None] = {}  # nesting level -> where written

    def error(self, message: str, column: int | None) -> FilterError:
        if column is not None:
            message = f"{message} at column {column}"
        return FilterError(message, expression=self.expression, column=column)

    # ---- link layer
    def link_desc(self) -> str:
        if self.st.kind in ("ppp",) and self.linktype not in (LT.PPP, LT.PPP_HDLC, LT.PPP_ETHER):
            return "PPP (inside PPPoE)"
        return _KIND_DESC[self.st.kind]

    def linktype_test(self, ethertype: int, column: int | None = None):
        st = self.st
        nl = st.off_nl
        if st.mpls_depth > 0:
            # Inside MPLS there is no type field: bottom-of-stack, then the IP version.
            if ethertype == 0x0800:
                return _and(_mcmp(1, nl - 2, 1, 1), _mcmp(1, nl, 0x40, 0xF0))
            if ethertype == 0x86DD:
                return _and(_mcmp(1, nl - 2, 1, 1), _mcmp(1, nl, 0x60, 0xF0))
            raise self.error("only ip and ip6 can be tested inside MPLS", column)
        k = st.kind
        if k == "ether" and st.lane:
            st.lane = False
            test = self.linktype_test(ethertype, column)
            st.lane = True
            return _and(self.lane_data(), test)
        if k == "ether":
            o = st.off_linktype
            is_8023 = _not(_cmp(2, o, 1500, "jgt"))
            if ethertype == LLCSAP_IPX:  # Ethernet II, 802.3 SNAP, 802.2, Novell raw 802.3
                return _or(_cmp(2, o, ETHERTYPE_IPX), _and(is_8023, _or(
                    _snap(o + 2, ETHERTYPE_IPX), _cmp(1, o + 2, LLCSAP_IPX),
                    _cmp(2, o + 2, 0xFFFF))))
            if ethertype in (0x809B, 0x80F3):  # EtherTalk phase 1, or phase 2's SNAP
                return _or(_cmp(2, o, ethertype), _and(is_8023, _snap(o + 2, ethertype)))
            if ethertype <= 1500:
                # An 802.3 length, not a type: match 802.2 LLC frames by their DSAP.
                return _and(is_8023, _sap(o + 2, ethertype))
            return _cmp(2, o, ethertype)
        if k == "sll" and ethertype in (LLCSAP_IPX, 0x809B, 0x80F3):
            o = st.off_linktype  # (LINUX_SLL_P_802_3 1: Novell raw, 802_2 4: LLC after it)
            if ethertype == LLCSAP_IPX:
                return _or(_cmp(2, o, ETHERTYPE_IPX), _cmp(2, o, 1), _and(_cmp(2, o, 4), _or(
                    _cmp(1, o + 2, LLCSAP_IPX), _snap(o + 2, ETHERTYPE_IPX))))
            return _or(_cmp(2, o, ethertype), _and(_cmp(2, o, 4), _snap(o + 2, ethertype)))
        if k == "sll" and ethertype <= 1500:
            test, llc = self.sap_layer(column, "ether proto")
            return _and(test, _sap(llc, ethertype))
        if k in ("sll", "sll2", "chdlc"):
            # (up to 1500 libpcap 1.10 compares the SLL2 or HDLC protocol field with the
            # SAP itself; ISO's twice on HDLC)
            return _cmp(2, st.off_linktype,
                        0xFEFE if ethertype == 0xFE and k == "chdlc" else ethertype)
        if k == "ppp":
            return _cmp(2, st.off_linktype, _PPP_TYPES.get(ethertype, ethertype))
        if k in ("null", "loop"):
            if ethertype == 0x0800:
                afs = (2,)
            elif ethertype == 0x86DD:
                afs = _AF_INET6_BSD
            else:
                return FALSE
            if k == "loop":
                return _or(*(_cmp(4, 0, af) for af in afs))
            # DLT_NULL holds the family in the capturing host's byte order; accept both.
            return _or(*(t for af in afs for t in (_cmp(4, 0, af << 24), _cmp(4, 0, af))))
        if k == "raw":
            if ethertype == 0x0800:
                return _mcmp(1, 0, 0x40, 0xF0)
            if ethertype == 0x86DD:
                return _mcmp(1, 0, 0x60, 0xF0)
            return FALSE
        if k == "wlan":
            return wlan.payload_type(ethertype, st.off_linktype)
        if k == "arcnet":
            return _or(*(_cmp(1, st.off_linktype, t) for t in wlan.ARCNET_TYPES.get(ethertype, ()))) \
                if ethertype in wlan.ARCNET_TYPES else FALSE
        if k in ("ipfc", "sunatm") and ethertype in (LLCSAP_IPX, 0x809B):
            llc = st.off_linktype - 6  # (the 802.2 header, 6 before the SNAP type)
            test = _cmp(1, llc, LLCSAP_IPX) if ethertype == LLCSAP_IPX else _snap(llc, ethertype)
            return test if k == "ipfc" else _and(_mcmp(1, 0, 2, 0x0F), test)
        if k == "ipfc":
            if ethertype <= 1500:
                return _sap(16, ethertype)
            return _cmp(2, st.off_linktype, ethertype)
        if k == "sunatm":  # LLC-encapsulated (not LANE): SNAP type after the 4-byte header
            return _and(_mcmp(1, 0, 2, 0x0F), _cmp(2, st.off_linktype, ethertype))
        if k == "pflog":
            if ethertype == 0x0800:
                return _cmp(1, 1, 2)
            if ethertype == 0x86DD:
                return _or(*(_cmp(1, 1, af) for af in wlan.PFLOG_AF_INET6))
            return FALSE
        if k == "mtp2":
            raise self.error("MTP2 link-layer type filtering not implemented", column)
        if k == "mstp":
            raise self.error("BACnet MS/TP carries no network-layer protocol purepcap's filter "
                             "tests (use link host $xx, link broadcast)", column)
        if k == "ppp_bsdos":  # IP also as VJ-compressed TCP (0x2d) and uncompressed (0x2f)
            if ethertype == 0x0800:
                return _or(*(_cmp(2, st.off_linktype, t) for t in (0x21, 0x2D, 0x2F)))
            if ethertype in (0x8137, 0x8847):  # (libpcap maps no IPX or MPLS here)
                return _cmp(2, st.off_linktype, ethertype)
            return _cmp(2, st.off_linktype, _PPP_TYPES.get(ethertype, ethertype))
        if k == "slip":  # no type field: the IP version after the pseudo-header
            if ethertype in (0x0800, 0x86DD):
                return _mcmp(1, st.off_nl, 0x40 if ethertype == 0x0800 else 0x60, 0xF0)
            return FALSE
        if k == "ipv4":
            return TRUE if ethertype == 0x0800 else FALSE
        if k == "ipv6":
            return TRUE if ethertype == 0x86DD else FALSE
        raise AssertionError(k)

    # ---- network layer helpers
    def ip_proto(self, n: int):
        return _and(self.linktype_test(0x0800), _cmp(1, self.st.off_nl + 9, n))

    def ip6_proto(self, n: int):
        nl = self.st.off_nl
        return _and(self.linktype_test(0x86DD),
                    _or(_cmp(1, nl + 6, n), _and(_cmp(1, nl + 6, 44), _cmp(1, nl + 40, n))))

    def any_proto(self, n: int):
        return _or(self.ip_proto(n), self.ip6_proto(n))

    def not_fragment(self):
        return _not(("cmp", "jset", ("ld", 2, self.st.off_nl + 6), ("k", 0x1FFF)))

    def proto_abbrev(self, name: str, column: int | None):
        if name in ("ip", "ip6", "arp", "rarp", "decnet", "lat", "sca", "moprc", "mopdl",
                    "atalk", "aarp"):
            return self.linktype_test(ETHERTYPE[name], column)
        if name == "ipx":  # by its LLC SAP, as libpcap (every IPX framing on Ethernet)
            return self.linktype_test(LLCSAP_IPX, column)
        if name in ("tcp", "udp", "sctp", "ah", "esp", "pim"):
            return self.any_proto(IPPROTO[name])
        if name in ("icmp", "igmp", "vrrp", "carp", "igrp"):
            return self.ip_proto(IPPROTO[name])
        if name == "icmp6":
            return self.ip6_proto(58)
        if name in ("ether", "link"):
            raise self.error(f"'{name}' needs something to test (host, proto, broadcast, [..])",
                             column)
        if name == "netbeui":
            return self.llc_sap_test(0xF0, column, name)
        if name in ("iso", "clnp", "esis", "isis", "stp") or name in ISIS_PDU_KEYWORDS:
            return self.osi_abbrev(name, column)
        raise self.error(f"the protocol '{name}' is not supported by purepcap's filter", column)

    # ---- the walk
    def lower(self, node: Node):
        if isinstance(node, And):
            return ("and", [self.lower(n) for n in node.items])
        if isinstance(node, Or):
            return ("or", [self.lower(n) for n in node.items])
        if isinstance(node, Not):
            return ("not", self.lower(node.item))
        if isinstance(node, Empty):
            return TRUE
        if isinstance(node, ProtoName):
            return self.proto_abbrev(node.name, node.column)
        if isinstance(node, Prim):
            return self.primitive(node)
        if isinstance(node, Relation):
            return self.relation(node)
        if isinstance(node, LenCmp):
            if node.value > 0xFFFFFFFF:
                raise self.error(f"length {node.value} does not fit in 32 bits", node.column)
            if node.op == "less":
                return _not(("cmp", "jgt", ("len",), ("k", node.value)))
            return ("cmp", "jge", ("len",), ("k", node.value))
        if isinstance(node, Special):
            return self.special(node)
        if isinstance(node, Encap):
            if node.name in ("geneve", "vxlan"):
                return self.tunnel(node)
            return self.encap(node)
        if isinstance(node, Llc):
            return self.llc(node)
        if isinstance(node, WlanField):
            return self.wlan_field(node)
        if isinstance(node, LinkPrim):
            return self.link_prim(node)
        raise AssertionError(node)

    def lane_data(self):
        """Not a LANE LE control frame (its first two bytes 0xff00), as libpcap tests."""
        return _not(_cmp(2, 4, 0xFF00))

    def link_prim(self, node: LinkPrim):
        """pflog, SunATM and SS7 primitives (see _linkgen for the layouts)."""
        w, v, st = node.word, node.value, self.st
        if w in wlan.PFLOG_FIELDS:
            if st.kind != "pflog":
                raise self.error(f"'{w}' supported only on PF linktype", node.column)
            how, off = wlan.PFLOG_FIELDS[w]
            if how == "name":
                name = v.text.encode("utf-8", "surrogateescape")
                if len(name) >= wlan.PFLOG_IFNAMSIZ:
                    raise self.error(f"{'ruleset' if off == 20 else 'interface'} name "
                                     f"'{shown(v.text)}' too long", v.column)
                return wlan.pflog_name(off, name)
            table = {"action": wlan.PF_ACTIONS, "reason": wlan.PF_REASONS}.get(how)
            if v.kind == "num" and how != "action":
                n = v.number
            elif table is not None and v.kind == "id" and v.text in table:
                n = table[v.text]
            else:
                raise self.error(f"unknown PF {how if table else 'rule number'} "
                                 f"'{shown(v.text)}'", v.column)
            if how == "num":
                return _cmp(4, off, n)
            if n > 255:
                raise self.error(f"PF {how} {n} greater than maximum 255", v.column)
            return _cmp(1, off, n)
        if w in wlan.SS7_UNITS:
            if st.kind != "mtp2":
                raise self.error(f"'{w}' supported only on MTP2", node.column)
            return wlan.ss7_unit(w, 4 if self.linktype == 139 else 0)
        if w in wlan.SS7_FIELDS:
            if st.kind != "mtp2":
                field = w[1:] if w.startswith("h") else w
                raise self.error(f"'{field}' supported only on SS7", node.column)
            if v.kind != "num":
                raise self.error(f"'{w}' needs a number, not '{shown(v.text)}'", v.column)
            most = wlan.SS7_MAX[w[1:] if w.startswith("h") else w]
            if v.number > most:
                raise self.error(f"{w} value {v.number} greater than maximum {most}", v.column)
            return wlan.ss7(w, v.number, 4 if self.linktype == 139 else 0, node.op)
        # SunATM (its own header's fields stay readable after `lane`)
        if self.linktype != LT.SUNATM or st.tunnel:
            raise self.error(f"'{w}' supported only on raw ATM (SunATM), not "
                             f"{self.link_desc()}", node.column)
        if w == "lane":
            # what follows is Ethernet after the 2-byte LANE header
            st.kind, st.off_link, st.off_linktype, st.off_nl, st.lane = "ether", 6, 18, 20, True
            return _mcmp(1, 0, 1, 0x0F)
        if w in ("vpi", "vci"):
            if v.kind != "num":
                raise self.error(f"'{w}' needs a number, not '{shown(v.text)}'", v.column)
            if v.number > (255 if w == "vpi" else 0xFFFF):
                raise self.error(f"{w} {v.number} out of range", v.column)
            return wlan.compare(node.op, ("ld", 1, 1) if w == "vpi" else ("ld", 2, 2), v.number)
        return wlan.atm_word(w)

    def require_80211(self, column: int | None, what: str = "802.11 link-layer types") -> None:
        # (libpcap 1.10 refuses frame-control tests on PPI, which carries 802.11 behind
        # its header; libpcap's own tests, from later versions, expect them: we accept)
        if self.st.kind != "wlan":
            raise self.error(f"{what} supported only on 802.11, not {self.link_desc()}", column)

    def wlan_field(self, node: WlanField):
        self.require_80211(node.column)
        if node.field == "dir":
            v = node.type
            if v.kind == "num":
                if v.number > 3:
                    raise self.error(f"invalid 802.11 direction value {v.number}", v.column)
                return wlan.frame_control(v.number, 0x03, 1)
            if v.text not in wlan.WLAN_DIRS:
                raise self.error(f"unknown 802.11 direction '{shown(v.text)}'", v.column)
            return wlan.frame_control(wlan.WLAN_DIRS[v.text], 0x03, 1)
        typ = None
        if node.type is not None:
            v = node.type
            if v.kind == "num":
                if v.number & ~0x0C:
                    raise self.error(f"invalid 802.11 type value {v.number:#04x}", v.column)
                typ = v.number
            elif v.text in wlan.WLAN_TYPES:
                typ = wlan.WLAN_TYPES[v.text]
            else:
                raise self.error(f"unknown 802.11 type name '{shown(v.text)}'", v.column)
            if node.field == "type":
                return wlan.frame_control(typ, 0x0C)
        v = node.subtype
        if v.kind == "num":
            if v.number & ~0xF0:
                raise self.error(f"invalid 802.11 subtype value {v.number:#04x}", v.column)
            return wlan.frame_control(typ | v.number, 0xFC)
        for t, names in wlan.WLAN_SUBTYPES.items():
            if (typ is None or t == typ) and v.text in names:
                return wlan.frame_control(t | names[v.text], 0xFC)
        if typ is None:
            raise self.error(f"unknown 802.11 type name '{shown(v.text)}'", v.column)
        raise self.error(f"unknown 802.11 subtype name '{shown(v.text)}'", v.column)

    def special(self, node: Special):
        st = self.st
        if node.name in ("inbound", "outbound"):
            if st.kind == "sll" and self.linktype == LT.LINUX_SLL:
                test = _cmp(2, 0, 4)  # sll_pkttype == PACKET_OUTGOING
            elif st.kind == "sll2":
                test = _cmp(1, 10, 4)
            elif st.kind == "pflog":  # the rule's direction: PF_IN 1, PF_OUT 2
                return _cmp(1, wlan.PF_DIRECTION, 1 if node.name == "inbound" else 2)
            elif st.kind == "slip":  # SLIPDIR_IN 0, SLIPDIR_OUT 1 (others are neither)
                return _cmp(1, 0, 0 if node.name == "inbound" else 1)
            elif self.offline:
                raise self.error(f"{node.name} is not supported on {self.link_desc()} when "
                                 "reading files (only Linux cooked captures record the direction)",
                                 node.column)
            else:
                test = ("cmp", "jeq", ("ld", 2, bpf.SKF_AD_PKTTYPE), ("k", 4))
            return test if node.name == "outbound" else _not(test)
        proto = node.proto
        if proto in (None, "ether", "link", "wlan") and st.kind == "wlan":
            return wlan.wlan_multicast(node.name == "broadcast")
        if proto in (None, "ether", "link") and st.kind == "arcnet":
            return _cmp(1, 1, 0)  # ARCNET's broadcast destination, 0 (it has no multicast)
        if proto in (None, "ether", "link") and st.kind == "mstp" and node.name == "broadcast":
            return _cmp(1, 3, 0xFF)
        if proto in (None, "ether", "link") and (st.kind == "ipfc" or st.lane):
            dst = 2 if st.kind == "ipfc" else st.off_link
            test = _and(_cmp(4, dst + 2, 0xFFFFFFFF), _cmp(2, dst, 0xFFFF)) \
                if node.name == "broadcast" else ("cmp", "jset", ("ld", 1, dst), ("k", 1))
            return _and(self.lane_data(), test) if st.lane else test
        if proto in (None, "ether", "link"):
            if st.kind != "ether":
                raise self.error(f"{node.name} needs an Ethernet link layer, not "
                                 f"{self.link_desc()}", node.column)
            o = st.off_link  # (where a tunnel's inner frame starts)
            if node.name == "broadcast":
                test = _and(_cmp(4, o + 2, 0xFFFFFFFF), _cmp(2, o, 0xFFFF))
            else:
                test = ("cmp", "jset", ("ld", 1, o), ("k", 1))
            return test if st.inner_frame is None else _and(st.inner_frame, test)
        nl = st.off_nl
        if proto == "ip":
            if node.name == "broadcast":
                # The netmask of a file is unknown (0), as in `tcpdump -r`.
                return _and(self.linktype_test(0x0800),
                            _or(_cmp(4, nl + 16, 0), _cmp(4, nl + 16, 0xFFFFFFFF)))
            return _and(self.linktype_test(0x0800), _cmp(1, nl + 16, 224, "jge"))
        if proto == "ip6" and node.name == "multicast":
            return _and(self.linktype_test(0x86DD), _cmp(1, nl + 24, 255))
        raise self.error(f"'{proto} {node.name}' is not supported (use ether, ip or ip6 "
                         f"{'multicast' if proto == 'ip6' else node.name})", node.column)

    def encap(self, node: Encap):
        st = self.st
        v = node.value
        if node.name == "pppoed":
            return self.linktype_test(0x8863, node.column)
        if node.name == "vlan":
            if st.kind not in ("ether", "wlan") or st.mpls_depth \
                    or (self.linktype == LT.PPI and not st.tunnel):
                raise self.error(f"no VLAN support for {self.link_desc()}", node.column)
            if v is not None and v > 4095:
                raise self.error(f"VLAN id {v} greater than maximum 4095", node.column)
            o = st.off_linktype
            if st.kind == "wlan":  # each type behind libpcap's data-frame test
                test = _or(*(wlan.payload_type(t, o) for t in (0x8100, 0x88A8, 0x9100)))
            else:
                test = _or(_cmp(2, o, 0x8100), _cmp(2, o, 0x88A8), _cmp(2, o, 0x9100))
            if v is not None:
                test = _and(test, _mcmp(2, o + 2, v, 0x0FFF))
            st.off_linktype += 4
            st.off_nl += 4
            return test
        if node.name == "mpls":
            if v is not None and v > 0xFFFFF:
                raise self.error(f"MPLS label {v} greater than maximum 1048575", node.column)
            nl = st.off_nl
            if st.mpls_depth:
                test = _mcmp(1, nl - 2, 0, 1)  # the previous label is not bottom-of-stack
            elif st.kind in ("ether", "ppp", "chdlc") and (st.tunnel or self.linktype not in (
                    LT.PPP_HDLC, LT.PPP_ETHER)):
                test = self.linktype_test(0x8847, node.column)
            else:
                raise self.error(f"no MPLS support for {self.link_desc()}", node.column)
            if v is not None:
                test = _and(test, _mcmp(4, nl, v << 12, 0xFFFFF000))
            st.off_nl += 4
            st.mpls_depth += 1
            return test
        if node.name == "pppoes":
            if v is not None and v > 0xFFFF:
                raise self.error(f"PPPoE session id {v} greater than maximum 65535", node.column)
            # (on link types that cannot carry PPPoE the test is false, and what follows
            # is still read as PPP after a PPPoE header, as libpcap does)
            if st.kind in ("mtp2", "mstp") or st.mpls_depth:
                raise self.error(f"no PPPoE support for {self.link_desc()}", node.column)
            test = self.linktype_test(0x8864, node.column)
            nl = st.off_nl
            if v is not None:
                test = _and(test, _mcmp(4, nl, v, 0xFFFF))
            # What follows is PPP: its protocol field after the 6-byte PPPoE header.
            st.kind = "ppp"
            st.off_linktype = nl + 6
            st.off_nl = nl + 8
            return test
        raise AssertionError(node)

    # ---- host / net / port / proto primitives
    def primitive(self, node: Prim):
        q, val = node.qual, node.value
        addr = q.addr
        if addr in ("port", "portrange"):
            return self.port(node)
        if addr == "protochain":
            return self.protochain(node)
        if addr == "proto" and q.proto in ("iso", "isis"):
            return self.osi_proto(node)
        if q.proto == "decnet":
            return self.decnet_host(node)
        if addr == "proto":
            return self.proto_qualified(node)
        # host, net, or no address qualifier (host by default)
        if val.kind == "eid" and ((q.proto == "wlan" and self.st.kind == "wlan")
                                  or q.dir not in (None, "src", "dst", "src or dst",
                                                   "src and dst")):
            if addr == "net":
                raise self.error("'wlan net' is not valid: use wlan host", node.column)
            self.require_80211(node.column, "802.11 addresses are")
            return wlan.wlan_host(self.mac_bytes(val), q.dir)
        if val.kind == "aid":
            if q.proto not in ("ether", "link") or addr not in (None, "host"):
                raise self.error("ARCnet address used in non-arc expression", val.column)
            if self.st.kind == "mstp":  # (one-byte addresses too, as later libpcap)
                return self.dirop(q.dir, lambda: _cmp(1, 4, val.number),
                                  lambda: _cmp(1, 3, val.number))
            if self.st.kind != "arcnet":
                raise self.error(f"ARCnet addresses need an ARCNET link layer, not "
                                 f"{self.link_desc()}", val.column)
            return self.dirop(q.dir, lambda: _cmp(1, 0, val.number), lambda: _cmp(1, 1, val.number))
        if val.kind == "eid":
            if q.proto not in ("ether", "link", "wlan"):  # (wlan: an alias off 802.11)
                raise self.error("a MAC address needs the 'ether' qualifier", val.column)
            if addr == "net":
                raise self.error("'ether net' is not valid: use ether host", node.column)
            return self.ether_host(val, q.dir)
        if q.proto in ("ether", "link"):
            if val.kind == "id":
                raise self.error(f"Ethernet host names are not resolved (no /etc/ethers): "
                                 f"'{shown(val.text)}'; use a MAC address", val.column)
            raise self.error(f"'ether {addr or 'host'}' needs a MAC address, not '{shown(val.text)}'",
                             val.column)
        if val.kind == "id":
            raise self.error(f"host names are not resolved (no DNS lookups): '{shown(val.text)}'; "
                             "use a numeric address", val.column)
        if val.kind in ("hid6", "cidr6"):
            return self.host6(node)
        return self.host4(node)

    def dirop(self, d: str | None, src, dst):
        if d == "src":
            return src()
        if d == "dst":
            return dst()
        if d == "src and dst":
            return _and(src(), dst())
        return _or(src(), dst())

    @staticmethod
    def mac_bytes(val: Value) -> bytes:
        text = val.text.replace("-", ":")
        if "." in text:
            h = text.replace(".", "")
        else:
            h = "".join(p.zfill(2) for p in text.split(":"))
        return bytes.fromhex(h)

    def ether_host(self, val: Value, d: str | None):
        if self.st.kind == "wlan":  # libpcap tests the 802.11 addresses
            return wlan.wlan_host(self.mac_bytes(val), d)
        if self.st.kind not in ("ether", "ipfc"):
            raise self.error(f"Ethernet addresses need an Ethernet link layer, not "
                             f"{self.link_desc()}", val.column)
        mac = self.mac_bytes(val)
        # (source, destination) offsets: Ethernet's, IP over FC's network header, LANE's
        src, dst = (10, 2) if self.st.kind == "ipfc" else (self.st.off_link + 6, self.st.off_link)

        def at(off: int):
            return _and(_cmp(4, off + 2, int.from_bytes(mac[2:], "big")),
                        _cmp(2, off, int.from_bytes(mac[:2], "big")))

        test = self.dirop(d, lambda: at(src), lambda: at(dst))
        if self.st.inner_frame is not None:
            test = _and(self.st.inner_frame, test)
        return _and(self.lane_data(), test) if self.st.lane else test

    def parse_ipv4(self, text: str, column: int) -> tuple[int, int]:
        """Dotted (possibly short) IPv4 -> (value, number of bits given)."""
        parts = text.split(".")
        v = 0
        for p in parts:
            # (the lexer gave ASCII digits; a long run of them is refused before int())
            if len(p.lstrip("0")) > 3 or int(p, 10) > 255:
                raise self.error(f"'{shown(text)}' is not a valid IPv4 address", column)
            n = int(p, 10)
            v = (v << 8) | n
        return v, 8 * len(parts)

    def host4(self, node: Prim):
        q, val = node.qual, node.value
        addr = q.addr or "host"
        col = val.column
        if val.kind == "num":
            if val.number > 0xFFFFFFFF:
                raise self.error(f"address {shown(val.text)} does not fit in 32 bits", col)
            v, mask = val.number, 0xFFFFFFFF
            if addr == "net":
                while v and v & 0xFF000000 == 0:
                    v = (v << 8) & 0xFFFFFFFF
                    mask = (mask << 8) & 0xFFFFFFFF
        elif val.kind == "hid":
            v, bits = self.parse_ipv4(val.text, col)
            v = (v << (32 - bits)) & 0xFFFFFFFF
            mask = (0xFFFFFFFF << (32 - bits)) & 0xFFFFFFFF
        elif val.kind in ("cidr4", "mask4"):
            if addr != "net":
                raise self.error(f"mask syntax ('{shown(val.text)}') is for networks only: use net",
                                 col)
            a, bits = self.parse_ipv4(val.text.split("/")[0].split(" ")[0], col)
            v = (a << (32 - bits)) & 0xFFFFFFFF
            if val.kind == "cidr4":
                if val.bits > 32:
                    raise self.error(f"mask length {val.bits} is more than 32", col)
                mask = (0xFFFFFFFF << (32 - val.bits)) & 0xFFFFFFFF
            else:
                m, mbits = self.parse_ipv4(val.mask, col)
                if mbits != 32:
                    raise self.error(f"netmask '{val.mask}' must have four parts", col)
                mask = m
            if v & ~mask & 0xFFFFFFFF:
                raise self.error(f'non-network bits set in "{shown(val.text)}"', col)
        else:
            raise self.error(f"'{shown(val.text)}' is not an IPv4 address", col)
        proto = q.proto
        if self.st.mpls_depth and proto is None:
            proto = "ip"
        nl = self.st.off_nl

        def hostop(ethertype: int, src_off: int, dst_off: int):
            return _and(self.linktype_test(ethertype),
                        self.dirop(q.dir, lambda: _mcmp(4, nl + src_off, v, mask),
                                   lambda: _mcmp(4, nl + dst_off, v, mask)))

        if proto is None:
            return _or(hostop(0x0800, 12, 16), hostop(0x0806, 14, 24), hostop(0x8035, 14, 24))
        if proto == "ip":
            return hostop(0x0800, 12, 16)
        if proto in ("arp", "rarp"):
            return hostop(ETHERTYPE[proto], 14, 24)
        if proto == "ip6":
            raise self.error(f"'ip6' qualifier with the IPv4 address '{shown(val.text)}'", col)
        raise self.error(f"'{proto}' modifier applied to {addr}", node.column)

    def host6(self, node: Prim):
        q, val = node.qual, node.value
        addr = q.addr or "host"
        col = val.column
        text = val.text.split("/")[0]
        a = int(ipaddress.IPv6Address(text))
        if val.kind == "cidr6":
            if addr != "net":
                raise self.error(f"mask syntax ('{shown(val.text)}') is for networks only: use net",
                                 col)
            if val.bits > 128:
                raise self.error(f"mask length {val.bits} is more than 128", col)
            mask = ((1 << 128) - 1) ^ ((1 << (128 - val.bits)) - 1)
            if a & ~mask:
                raise self.error(f'non-network bits set in "{shown(val.text)}"', col)
        else:
            mask = (1 << 128) - 1
        if q.proto not in (None, "ip6"):
            raise self.error(f"'{q.proto}' qualifier with the IPv6 address '{shown(text)}'", col)
        nl = self.st.off_nl

        def words(off: int):
            return _and(*(_mcmp(4, off + 4 * i, (a >> (96 - 32 * i)) & 0xFFFFFFFF,
                                (mask >> (96 - 32 * i)) & 0xFFFFFFFF) for i in range(4)))

        return _and(self.linktype_test(0x86DD),
                    self.dirop(q.dir, lambda: words(nl + 8), lambda: words(nl + 24)))

    def port_number(self, text: str, number: int | None, column: int) -> int:
        if number is None and _DECIMAL.fullmatch(text):  # (str.isdigit() takes '²' too)
            if len(text.lstrip("0")) > 5:
                raise self.error(f"illegal port number {shown(text)} > 65535", column)
            number = int(text, 10)
        if number is not None:
            if number > 65535:
                raise self.error(f"illegal port number {number} > 65535", column)
            return number
        if text in SERVICES:
            return SERVICES[text]
        for proto in ("tcp", "udp"):
            try:
                return socket.getservbyname(text, proto)
            except (OSError, UnicodeError, ValueError):  # ValueError: a NUL in the name
                pass
        raise self.error(f"unknown port name '{shown(text)}'", column)

    def port(self, node: Prim):
        q, val = node.qual, node.value
        col = val.column
        if q.proto is None:
            protos = (132, 6, 17)
        elif q.proto in ("tcp", "udp", "sctp"):
            protos = (IPPROTO[q.proto],)
        else:
            raise self.error(f"illegal qualifier of '{q.addr}': '{q.proto}' (use tcp, udp or "
                             "sctp)", node.column)
        if q.addr == "port":
            if val.kind not in ("num", "id"):
                raise self.error(f"'{shown(val.text)}' is not a port", col)
            p = self.port_number(val.text, val.number, col)
            lo = hi = p
        else:
            if val.kind == "num":
                lo = hi = self.port_number(val.text, val.number, col)
            elif val.kind == "id" and "-" in val.text:
                a, _, b = val.text.rpartition("-") if val.text.count("-") == 1 else \
                    self._split_range(val.text, col)
                lo = self.port_number(a, None, col)
                hi = self.port_number(b, None, col)
            else:
                raise self.error(f"'{shown(val.text)}' is not a port range (use LOW-HIGH)", col)
            if lo > hi:
                lo, hi = hi, lo
        nl = self.st.off_nl

        def test(v):
            if lo == hi:
                return ("cmp", "jeq", v, ("k", lo))
            return _and(("cmp", "jge", v, ("k", lo)), _not(("cmp", "jgt", v, ("k", hi))))

        # libpcap writes (proto sctp and ports) or (proto tcp and ports) or (...); the
        # port tests are the same in each, so test "proto in (...)" once, then the ports:
        # the same verdicts and the same loads, in half the instructions.
        six = _and(self.linktype_test(0x86DD), _or(*(_cmp(1, nl + 6, p) for p in protos)),
                   self.dirop(q.dir, lambda: test(("ld", 2, nl + 40)),
                              lambda: test(("ld", 2, nl + 42))))
        four = _and(self.linktype_test(0x0800), _or(*(_cmp(1, nl + 9, p) for p in protos)),
                    self.not_fragment(),
                    self.dirop(q.dir, lambda: test(("ldi", 2, nl, ("msh", nl))),
                               lambda: test(("ldi", 2, nl + 2, ("msh", nl)))))
        return _or(six, four)

    def _split_range(self, text: str, column: int) -> tuple[str, str, str]:
        # names with hyphens (ftp-data-ssh): try each split point
        for i, c in enumerate(text):
            if c == "-":
                a, b = text[:i], text[i + 1:]
                try:
                    self.port_number(a, None, column)
                    self.port_number(b, None, column)
                except FilterError:
                    continue
                return a, "-", b
        raise self.error(f"'{shown(text)}' is not a port range (use LOW-HIGH)", column)

    def proto_qualified(self, node: Prim):
        q, val = node.qual, node.value
        col = val.column
        if val.kind not in ("num", "id"):
            raise self.error(f"'{shown(val.text)}' is not a protocol number or name", col)
        if q.proto in ("ether", "link") or (q.proto == "wlan" and self.st.kind == "wlan"):
            if val.kind == "num":
                n = val.number
            elif val.text in _LLC_NAMES:  # (libpcap's names of LLC SAPs)
                if val.text == "ipx":
                    return self.linktype_test(LLCSAP_IPX, col)
                return self.llc_sap_test(_LLC_NAMES[val.text], col, val.text)
            elif val.text in ETHERTYPE:
                n = ETHERTYPE[val.text]
            else:
                raise self.error(f"unknown ether proto '{shown(val.text)}'", col)
            if n > 0xFFFF:
                raise self.error(f"ether proto {n} > 65535", col)
            return self.linktype_test(n, col)
        if val.kind == "num":
            n = val.number
        elif val.text in IPPROTO:
            n = IPPROTO[val.text]
        else:
            raise self.error(f"unknown ip proto '{shown(val.text)}'", col)
        if n > 255:
            raise self.error(f"ip proto {n} > 255", col)
        if q.proto is None:
            return self.any_proto(n)
        if q.proto == "ip":
            return self.ip_proto(n)
        if q.proto == "ip6":
            return self.ip6_proto(n)
        raise self.error(f"'{q.proto} proto' is not supported (use ip, ip6 or ether proto)",
                         node.column)

    # ---- packet data and arithmetic
    def relation(self, node: Relation):
        checks: list = []
        a = self.arith(node.left, checks)
        b = self.arith(node.right, checks)
        op = node.op
        if op == "==":
            test = ("cmp", "jeq", a, b)
        elif op == "!=":
            test = _not(("cmp", "jeq", a, b))
        elif op == ">":
            test = ("cmp", "jgt", a, b)
        elif op == ">=":
            test = ("cmp", "jge", a, b)
        elif op == "<":
            test = _not(("cmp", "jge", a, b))
        else:
            test = _not(("cmp", "jgt", a, b))
        if checks:
            return _and(*checks, test)
        return test

    def arith(self, node, checks: list):
        if isinstance(node, Num):
            return ("k", node.value)
        if isinstance(node, PktLen):
            return ("len",)
        if isinstance(node, BinOp):
            a = self.arith(node.left, checks)
            b = self.arith(node.right, checks)
            if b[0] == "k":
                if node.op in ("/", "%") and b[1] == 0:
                    raise self.error("division by zero", node.column)
                if node.op in ("<<", ">>") and b[1] > 31:
                    raise self.error("shift by more than 31 bits", node.column)
                if a[0] == "k":
                    return ("k", _fold_alu(node.op, a[1], b[1]))
            return ("alu", node.op, a, b)
        if isinstance(node, Load):
            return self.load(node, checks)
        raise AssertionError(node)

    def load(self, node: Load, checks: list):
        idx = self.arith(node.index, checks)
        p = node.proto
        st = self.st
        nl = st.off_nl
        if p in ("ether", "link", "wlan"):
            # (wlan[...] elsewhere reads the link header, as in libpcap)
            base, x = (wlan.BASE_LINK if st.kind == "wlan" else st.off_link), None
        elif p == "radio":
            if self.linktype not in (LT.IEEE802_11_RADIOTAP, LT.IEEE802_11_PRISM, 163) \
                    or st.tunnel:
                raise self.error("radio information not present in capture", node.column)
            base, x = 0, None
        elif p in ("ip", "ip6", "arp", "rarp"):
            checks.append(self.linktype_test(ETHERTYPE[p], node.column))
            base, x = nl, None
        elif p in ("tcp", "udp", "sctp", "icmp", "igmp", "pim", "vrrp", "carp", "igrp", "ah",
                   "esp"):
            # Transport headers are found through the IPv4 header length, as libpcap does.
            checks.append(_and(self.linktype_test(0x0800, node.column),
                               self.proto_abbrev(p, node.column), self.not_fragment()))
            base, x = nl, ("msh", nl)
        elif p == "icmp6":
            checks.append(_and(self.linktype_test(0x86DD, node.column), _cmp(1, nl + 6, 58)))
            base, x = nl + 40, None
        else:
            raise self.error(f"'{p}[...]' is not supported (use ether, ip, ip6, arp, rarp, tcp, "
                             "udp, sctp, icmp, icmp6, igmp)", node.column)
        size = node.size
        if idx[0] == "k":
            off = base + idx[1]
            if tunnel.relative(off) > 0xFFFFFFFF:
                raise self.error("packet offset does not fit in 32 bits", node.column)
            return ("ld", size, off) if x is None else ("ldi", size, off, x)
        if x is not None:
            idx = ("alu", "+", idx, x)
        return ("ldi", size, base, idx)

    # ---- network-layer primitives: LLC, OSI (iso, clnp, esis, isis and IS-IS PDU
    # types), stp, DECnet addresses, protochain, geneve and vxlan. Offsets as libpcap
    # 1.10 emits them (tcpdump -d), except where a later libpcap's TESTrun fixes it
    # (IS-IS PDU types over Cisco HDLC skip its pad byte) and where 1.10 reads the wrong
    # bytes of Linux cooked captures (OSI over SLL/SLL2 is read after the 802.2 header,
    # as on Ethernet, and SLL2 tests its protocol field for 802.2).

    def sap_layer(self, column: int | None, what: str):
        """(how to test that the frame is 802.2 LLC, offset of the LLC header); (FALSE,
        None) where the link type cannot carry it; (None, None) where it has no LLC."""
        st = self.st
        if st.mpls_depth:
            raise self.error(f"'{what}' is not supported inside MPLS", column)
        k = st.kind
        if k == "ether":
            o = st.off_linktype
            return _not(_cmp(2, o, 1500, "jgt")), o + 2
        if k == "sll":
            return _cmp(2, 14, 4), 16  # LINUX_SLL_P_802_2
        if k == "sll2":
            return _cmp(2, 0, 4), 20
        if k == "wlan":  # a data frame's payload (libpcap's gen_llc_linktype on 802.11)
            return wlan.data_frame(), wlan.BASE_PAYLOAD
        if k == "sunatm":  # LLC-encapsulated, after the 4-byte header
            return _mcmp(1, 0, 2, 0x0F), 4
        if k == "ipfc":
            return TRUE, 16
        if k == "mtp2":
            raise self.error("MTP2 link-layer type filtering not implemented", column)
        if k in ("ppp", "chdlc"):
            return None, None
        return FALSE, None  # no 802.2 LLC on this link type: never matches (as libpcap)

    def llc_sap_test(self, sap: int, column: int | None, what: str):
        """The frame carries 802.2 LLC with this SAP (ISO's 0xfe is tested as DSAP and SSAP)."""
        k = self.st.kind
        if k == "chdlc" and not self.st.mpls_depth:
            return _cmp(2, self.st.off_linktype, (sap << 8 | sap) if sap == 0xFE else sap)
        if k == "ppp" and not self.st.mpls_depth:
            return _cmp(2, self.st.off_linktype, {0xFE: 0x0023, 0x42: 0x0031}.get(sap, sap))
        test, llc = self.sap_layer(column, what)
        if llc is None:
            return test
        return _and(test, _sap(llc, sap))

    def osi_npid_offset(self) -> int:
        """Where the OSI network-layer protocol id byte is (after the LLC header)."""
        st = self.st
        if st.kind == "chdlc":
            return st.off_nl + 1  # Cisco HDLC pads OSI with one byte
        if st.kind == "ppp":
            return st.off_nl
        return self.sap_layer(None, "iso")[1] + 3

    def osi_test(self, npid: int | None, pdu_types: tuple = (), column: int | None = None):
        test = self.llc_sap_test(0xFE, column, "iso")
        if test == FALSE or npid is None:
            return test
        off = self.osi_npid_offset()
        test = _and(test, _cmp(1, off, npid))
        if pdu_types:
            test = _and(test, _or(*(_cmp(1, off + 4, t) for t in pdu_types)))
        return test

    def osi_abbrev(self, name: str, column: int | None):
        if name == "stp":
            return self.llc_sap_test(0x42, column, name)
        if name == "iso":
            return self.osi_test(None, (), column)
        if name in _OSI_NPID:
            return self.osi_test(_OSI_NPID[name], (), column)
        return self.osi_test(_OSI_NPID["isis"], _ISIS_PDU_GROUPS[name], column)

    def osi_proto(self, node: Prim):
        """iso proto N|\\clnp|\\esis|\\isis, isis proto N (a PDU type)."""
        q, val = node.qual, node.value
        if q.dir is not None:
            raise self.error(f"'{q.dir}' cannot qualify '{q.proto} proto'", node.column)
        if val.kind == "num":
            n = val.number
        elif val.kind == "id" and q.proto == "iso" and val.text in _OSI_NPID:
            n = _OSI_NPID[val.text]
        else:
            raise self.error(f"unknown '{q.proto} proto' value '{shown(val.text)}'", val.column)
        if q.proto == "iso":
            if n > 255:
                raise self.error(f"ISO protocol {n} greater than maximum 255", val.column)
            return self.osi_test(n, (), node.column)
        if n > 31:
            raise self.error(f"IS-IS PDU type {n} greater than maximum 31", val.column)
        return self.osi_test(_OSI_NPID["isis"], (n,), node.column)

    def llc(self, node: Llc):
        """llc [i|s|u|rr|...]: 802.2 LLC frames (Ethernet only here), by control field."""
        st = self.st
        # (after mpls libpcap still reads the Ethernet type field: MPLS moves only the
        # network layer)
        if st.kind == "ether":
            o = st.off_linktype
            # an 802.3 length, and not Novell's "raw 802.3" (0xffff where the SAPs would be)
            test = _and(_not(_cmp(2, o, 1500, "jgt")), _not(_cmp(2, o + 2, 0xFFFF)))
            ctl = o + 4
        elif st.kind in ("wlan", "sunatm"):  # a data frame / LLC-encapsulated ATM
            test, llc = self.sap_layer(node.column, "llc")
            ctl = llc + 2
        else:
            raise self.error(f"'llc' is not supported on {self.link_desc()}", node.column)
        if node.subtype is None:
            return test
        if node.subtype == "i":
            sub = _not(("cmp", "jset", ("ld", 1, ctl), ("k", 1)))
        elif node.subtype in ("s", "u"):
            sub = _mcmp(1, ctl, 1 if node.subtype == "s" else 3, 3)
        elif node.subtype in _LLC_S:
            sub = _mcmp(1, ctl, _LLC_S[node.subtype], 0x0F)
        else:
            sub = _mcmp(1, ctl, _LLC_U[node.subtype], 0xEF)  # ignoring the poll/final bit
        return _and(test, sub)

    def decnet_host(self, node: Prim):
        """decnet src|dst|host AREA.NODE: the address in DECnet's short and long data
        headers (with and without a pad byte), as libpcap tests it."""
        q, val = node.qual, node.value
        if q.addr not in (None, "host"):
            raise self.error(f"'decnet' is not a valid qualifier for '{q.addr}'", node.column)
        if val.kind == "num" and val.number <= 0xFFFF:
            addr = val.number
        elif val.kind == "hid" and val.text.count(".") == 1:
            area, _, number = val.text.partition(".")
            if len(area.lstrip("0")) > 2 or len(number.lstrip("0")) > 4 \
                    or int(area) > 63 or int(number) > 1023:
                raise self.error(f"invalid DECnet address '{shown(val.text)}'", val.column)
            addr = int(area) << 10 | int(number)
        else:
            raise self.error(f"invalid DECnet address '{shown(val.text)}'", val.column)
        swapped = (addr & 0xFF) << 8 | addr >> 8  # stored little-endian
        nl = self.st.off_nl

        def at(short: int, padded_short: int, long: int, padded_long: int):
            # flags byte: 2 a short data header, 6 a long one; 0x81 in front: one pad byte
            return _or(_and(_mcmp(1, nl + 2, 0x02, 0x07), _cmp(2, nl + short, swapped)),
                       _and(_mcmp(2, nl + 2, 0x8102, 0xFF07), _cmp(2, nl + padded_short, swapped)),
                       _and(_mcmp(1, nl + 2, 0x06, 0x07), _cmp(2, nl + long, swapped)),
                       _and(_mcmp(2, nl + 2, 0x8106, 0xFF07), _cmp(2, nl + padded_long, swapped)))

        return _and(self.linktype_test(0x6003, node.column),
                    self.dirop(q.dir, lambda: at(5, 6, 17, 18), lambda: at(3, 4, 9, 10)))

    def protochain(self, node: Prim):
        """[ip|ip6] protochain N: N anywhere in the chain of IPv6 extension headers
        (and AH) that starts at the IP header. The IR test ("chain", nl, N, alternatives)
        holds (guard, first next header, offset of what follows the IP header) for IPv4
        and IPv6: one walk serves both (see CHAIN_STEPS)."""
        q, val = node.qual, node.value
        if q.proto not in (None, "ip", "ip6"):
            raise self.error(f"'{q.proto}' is not a valid qualifier for 'protochain'",
                             node.column)
        if val.kind == "num":
            n = val.number
        elif val.kind == "id" and val.text in IPPROTO:
            n = IPPROTO[val.text]
        elif val.kind in ("hid", "hid6", "cidr4", "cidr6", "mask4"):
            what = "IPv6 address" if val.kind.endswith("6") else "IPv4 address"
            raise self.error(f"'protochain' qualifier applied to {what}", val.column)
        else:
            raise self.error(f"unknown 'protochain' value '{shown(val.text)}'", val.column)
        if n > 255:
            raise self.error(f"protocol number {n} greater than maximum 255", val.column)
        if self.st.tunnel:  # (libpcap: "not supported with variable length headers")
            raise self.error("'protochain' is not supported after geneve or vxlan (the "
                             "encapsulated packet's offsets are known only at run time)",
                             node.column)
        if self.linktype in wlan.VARIABLE_LINKTYPES:  # (its walk takes constant offsets)
            raise self.error(f"'protochain' is not supported with the variable-length headers "
                             f"of {self.link_desc()}", node.column)
        nl = self.st.off_nl
        alternatives = []
        if q.proto in (None, "ip"):
            alternatives.append((fold(self.linktype_test(0x0800, node.column)),
                                 ("ld", 1, nl + 9), ("msh", nl)))
        if q.proto in (None, "ip6"):
            alternatives.append((fold(self.linktype_test(0x86DD, node.column)),
                                 ("ld", 1, nl + 6), ("k", 40)))
        alternatives = [a for a in alternatives if a[0] != FALSE]
        if not alternatives:
            return FALSE
        return ("chain", nl, n, tuple(alternatives))

    def tunnel(self, node: Encap):
        """geneve [VNI] / vxlan [VNI]: UDP to port 6081 / 4789 with a valid header. What
        follows tests the encapsulated packet (an Ethernet frame, or for Geneve with
        another protocol its network layer) at offsets computed when the tunnel matches,
        as libpcap does (_tunnel.py)."""
        v = node.value
        if v is not None and v > 0xFFFFFF:
            raise self.error(f"{node.name.upper()} VNI {v} greater than maximum 16777215",
                             node.column)
        level = self.st.tunnel
        if level >= tunnel.MAX_TUNNELS:
            raise self.error(f"more than {tunnel.MAX_TUNNELS} nested geneve/vxlan tunnels",
                             node.column)
        port = 6081 if node.name == "geneve" else 4789
        nl = self.st.off_nl
        self.tunnel_columns[level] = node.column

        def header(udp):
            """Tests of the tunnel header (udp(off, size): a load at UDP header + off)."""
            if node.name == "geneve":
                tests = [_mcmp1(udp(8, 1), 0, 0xC0)]  # version 0
            else:
                tests = [_mcmp1(udp(8, 1), 0x08, 0x08)]  # the I flag: the VNI is valid
            if v is not None:
                tests.append(_mcmp1(udp(12, 4), v << 8, 0xFFFFFF00))
            return tests

        def starts_at(where):  # the tunnel header's offset into the tunnel's first slot
            return ("do", [("set", tunnel.start_slot(level), where)], None)

        four = _and(self.linktype_test(0x0800, node.column), _cmp(1, nl + 9, 17),
                    self.not_fragment(),
                    ("cmp", "jeq", ("ldi", 2, nl + 2, ("msh", nl)), ("k", port)),
                    *header(lambda off, size: ("ldi", size, nl + off, ("msh", nl))),
                    starts_at(("alu", "+", ("msh", nl), ("off", nl + 8))))
        six = _and(self.linktype_test(0x86DD, node.column), _cmp(1, nl + 6, 17),
                   _cmp(2, nl + 42, port),
                   *header(lambda off, size: ("ld", size, nl + 40 + off)),
                   starts_at(("off", nl + 48)))
        steps = tunnel.geneve_steps(level) if node.name == "geneve" else tunnel.vxlan_steps(level)
        link, net = tunnel.base(level, tunnel.LINK), tunnel.base(level, tunnel.NET)
        # Geneve carries an Ethernet frame when the network layer does not start where the
        # inner packet does (libpcap's gen_geneve_ll_check); VXLAN always does
        frame = _not(("cmp", "jeq", ("off", link), ("off", net))) if node.name == "geneve" \
            else None
        self.st = _State("ether", tunnel.base(level, tunnel.TYPE), net, off_link=link,
                         tunnel=level + 1, inner_frame=frame)
        return _and(_or(four, six), ("do", steps, level))


def _fold_alu(op: str, a: int, b: int) -> int:
    m = 0xFFFFFFFF
    return {"+": lambda: (a + b) & m, "-": lambda: (a - b) & m, "*": lambda: (a * b) & m,
            "/": lambda: a // b, "%": lambda: a % b, "&": lambda: a & b, "|": lambda: a | b,
            "^": lambda: a ^ b, "<<": lambda: (a << b) & m, ">>": lambda: a >> b}[op]()


def lower(tree: Node, expression: str, linktype: int, *, offline: bool):
    """The boolean IR of a parsed expression for one link type."""
    lowering = _Lower(expression, linktype, offline)
    ir = lowering.lower(tree)
    if tunnel.uses_tunnels(ir):
        # tcpdump does not optimise a program with a tunnel (libpcap's no_optimize), so
        # alternatives keep the order written (see _field_order)
        ir = tunnel.relocate(fold(ir, order_fields=False), expression, lowering.tunnel_columns)
    else:
        ir = fold(ir)
    if linktype in wlan.VARIABLE_LINKTYPES:
        ir = wlan.finish(ir, linktype)
    return ir


def _first_test(t):
    while t[0] == "and":
        t = t[1][0]
    return t


def _guard_of(t):
    """(load, constant) of the equality test alternative t begins with, or None."""
    first = _first_test(t)
    if first[0] == "cmp" and first[1] == "jeq" and first[2][0] == "ld" and first[3][0] == "k":
        return first[2], first[3][1]
    return None


def _group(items: list) -> list:
    """Alternatives of an `or` with the same first test brought together, moving one
    only past alternatives that begin by testing the same load against other constants:
    whichever passes its first test is tried, the others fail at it without loading
    anything else, so the verdict and the loads that run are the same in either order."""
    groups: list[tuple] = []  # (guard or None, [items])
    for item in items:
        guard = _guard_of(item)
        if guard is not None:
            for g, members in reversed(groups):
                if g is None or g[0] != guard[0]:
                    break
                if g == guard:
                    members.append(item)
                    break
            else:
                groups.append((guard, [item]))
                continue
            if g == guard:
                continue
        groups.append((guard, [item]))
    return [item for _, members in groups for item in members]


def _factor(items: list, order_fields: bool = True) -> list:
    """`(G and X) or (G and Y)` as `G and (X or Y)`: the same tests in the same order on
    every path (G is evaluated once instead of twice, with the same outcome). A run of
    alternatives with the same first test becomes one; the rest is folded once (longer
    common prefixes are factored there)."""
    out: list = []
    i = 0
    while i < len(items):
        head = _conjuncts(items[i])
        j = i + 1
        while j < len(items) and len(head) > 1:
            other = _conjuncts(items[j])
            if len(other) < 2 or other[0] != head[0]:
                break
            j += 1
        if j - i < 2:
            out.append(items[i])
        else:
            rests = [_tail(_conjuncts(t)[1:]) for t in items[i:j]]
            out.append(("and", [head[0], fold(("or", rests), order_fields)]))
        i = j
    return out


def _conjuncts(t) -> list:
    return t[1] if t[0] == "and" else [t]


def _field_key(t):
    """(how the field is addressed, its offset) of `field == constant`, or None."""
    if t[0] == "cmp" and t[1] == "jeq" and t[3][0] == "k":
        v = t[2]
        if v[0] == "ld":
            return (("ld",), v[2])
        if v[0] == "ldi":
            return (("ldi", v[3]), v[2])
    return None


def _field_order(items: list) -> list:
    """A run of `field == constant` alternatives, ordered by field offset: the order of
    tcpdump's programs (libpcap's optimiser tests one loaded field against every constant
    before it loads the next), so a packet cut short between two fields gets the verdict
    tcpdump gives it, in both back ends."""
    out: list = []
    run: list = []
    for item in items + [None]:
        key = None if item is None else _field_key(item)
        if key is not None and (not run or _field_key(run[0])[0] == key[0]):
            run.append(item)
            continue
        out.extend(sorted(run, key=lambda t: _field_key(t)[1]))
        run = []
        if item is not None:
            if key is not None:
                run.append(item)
            else:
                out.append(item)
    return out


def _tail(items: list):
    return items[0] if len(items) == 1 else ("and", items)


def fold(t, order_fields: bool = True):
    """Simplify constants without changing which loads run (a load past the captured
    bytes rejects the packet, so a test before a constant must stay)."""
    kind = t[0]
    if kind == "not":
        inner = fold(t[1], order_fields)
        if inner == TRUE:
            return FALSE
        if inner == FALSE:
            return TRUE
        if inner[0] == "not":
            return inner[1]
        return ("not", inner)
    if kind in ("and", "or"):
        stop, skip = (FALSE, TRUE) if kind == "and" else (TRUE, FALSE)
        out: list = []
        for item in t[1]:
            item = fold(item, order_fields)
            if item == skip:
                continue
            if item[0] == kind:
                out.extend(item[1])
                continue
            out.append(item)
            if item == stop:
                break
        if not out:
            return skip
        if out[-1] == stop and kind == "and":
            return FALSE  # every path ends in reject, and a failed load rejects too
        if out[0] == stop:
            return stop
        if kind == "or" and len(out) > 1:
            out = _factor(_group(out), order_fields)
            if order_fields:
                out = _field_order(out)
            if len(out) == 1:
                return fold(out[0], order_fields)
        if len(out) == 1:
            return out[0]
        return (kind, out)
    if kind == "cmp" and t[2][0] == "k" and t[3][0] == "k":  # constants only: no load
        a, b = t[2][1], t[3][1]
        jop = t[1]
        hit = a == b if jop == "jeq" else a > b if jop == "jgt" else a >= b if jop == "jge" \
            else a & b != 0
        return TRUE if hit else FALSE
    if kind == "cmp" and t[2][0] == "k":
        # the constant to the right, where a jump can hold it (no load moves)
        jop, k, v = t[1], t[2], t[3]
        if jop in ("jeq", "jset"):
            return ("cmp", jop, v, k)
        return ("not", ("cmp", "jge" if jop == "jgt" else "jgt", v, k))  # k > v: not v >= k
    return t


# ---- BPF emission -------------------------------------------------------------------

_JOPS = {"jeq": bpf.JEQ, "jgt": bpf.JGT, "jge": bpf.JGE, "jset": bpf.JSET}
_ALUOPS = {"+": bpf.ADD, "-": bpf.SUB, "*": bpf.MUL, "/": bpf.DIV, "%": bpf.MOD, "&": bpf.AND,
           "|": bpf.OR, "^": bpf.XOR, "<<": bpf.LSH, ">>": bpf.RSH}
_SZ = {1: bpf.B, 2: bpf.H, 4: bpf.W}


_COMMUTATIVE = frozenset("+*&|^")


def _uses_x(v) -> bool:
    """Does computing value v in A change X (indexed loads, non-constant operands)?"""
    kind = v[0]
    if kind in ("ldi", "msh"):
        return True
    if kind == "alu":
        return v[3][0] != "k" or _uses_x(v[2])
    return False


class _Emitter:
    """Emits jumping code backwards: self.rev[0] is the last instruction."""

    def __init__(self, expression: str, ir=None) -> None:
        self.rev: list[tuple[int, int, int, int]] = []
        self.expression = expression
        # arithmetic's scratch slots count up from 0, below those the IR's steps fill
        self.scratch_limit = min(_set_slots(ir), default=bpf.MEMWORDS)

    def value(self, v, slot: int) -> list:
        kind = v[0]
        if kind == "k":
            return [(bpf.LD | bpf.IMM, 0, 0, v[1])]
        if kind == "len":
            return [(bpf.LD | bpf.W | bpf.LEN, 0, 0, 0)]
        if kind == "ld":
            return [(bpf.LD | _SZ[v[1]] | bpf.ABS, 0, 0, v[2])]
        if kind == "mem":
            return [(bpf.LD | bpf.MEM, 0, 0, v[1])]
        if kind == "ldi":
            idx = v[3]
            if idx[0] == "mem":
                code = [(bpf.LDX | bpf.MEM, 0, 0, idx[1])]
            elif idx[0] == "msh":
                code = [(bpf.LDX | bpf.B | bpf.MSH, 0, 0, idx[1])]
            else:
                code = self.value(idx, slot) + [(bpf.MISC | bpf.TAX, 0, 0, 0)]
            return code + [(bpf.LD | _SZ[v[1]] | bpf.IND, 0, 0, v[2])]
        if kind == "msh":
            return [(bpf.LDX | bpf.B | bpf.MSH, 0, 0, v[1]), (bpf.MISC | bpf.TXA, 0, 0, 0)]
        if kind == "alu":
            op = _ALUOPS[v[1]]
            if v[3][0] == "k":
                return self.value(v[2], slot) + [(bpf.ALU | op | bpf.K, 0, 0, v[3][1])]
            a, b = v[2], v[3]
            if a[0] == "mem" and v[1] in _COMMUTATIVE:
                a, b = b, a
            if b[0] == "mem":  # (a link preamble's slot) straight into X, no scratch slot
                return self.value(a, slot) + [(bpf.LDX | bpf.MEM, 0, 0, b[1]),
                                              (bpf.ALU | op | bpf.SX, 0, 0, 0)]
            if v[1] in _COMMUTATIVE and not _uses_x(a):
                # b into X first, then a (which leaves X alone): no scratch slot. Both
                # loads run either way, and either failing rejects, so the order is free.
                return self.value(b, slot) + [(bpf.MISC | bpf.TAX, 0, 0, 0)] + \
                    self.value(a, slot) + [(bpf.ALU | op | bpf.SX, 0, 0, 0)]
            return self.binary(a, b, slot) + [(bpf.ALU | op | bpf.SX, 0, 0, 0)]
        raise AssertionError(v)

    def binary(self, a, b, slot: int) -> list:
        """A in A, B in X, using scratch slot `slot` to hold A while B is computed."""
        if slot >= self.scratch_limit:
            raise FilterError(f"expression too complex: it needs more than "
                              f"{self.scratch_limit} BPF scratch memory slots",
                              expression=self.expression)
        return (self.value(a, slot) + [(bpf.ST, 0, 0, slot)] + self.value(b, slot + 1)
                + [(bpf.MISC | bpf.TAX, 0, 0, 0), (bpf.LD | bpf.MEM, 0, 0, slot)])

    def too_long(self) -> FilterError:
        return FilterError(f"expression too long: its BPF program has more than the kernel's "
                           f"{bpf.BPF_MAXINSNS} instructions", expression=self.expression)

    def _target(self, target: int, extra: int) -> int:
        """Offset from the jump about to be appended (after `extra` more instructions)."""
        return len(self.rev) + extra - target - 1

    def jump(self, code: int, k: int, t: int, f: int) -> None:
        # Conditional offsets are 8 bits: route far targets through a `ja`.
        if self._target(t, 0) > 255:
            self.rev.append((bpf.JMP | bpf.JA, 0, 0, self._target(t, 0)))
            t = len(self.rev) - 1
        if self._target(f, 0) > 255:
            self.rev.append((bpf.JMP | bpf.JA, 0, 0, self._target(f, 0)))
            f = len(self.rev) - 1
        self.rev.append((code, self._target(t, 0), self._target(f, 0), k))

    def test(self, t, on_true: int, on_false: int) -> int:
        kind = t[0]
        if kind == "true":
            return on_true
        if kind == "false":
            return on_false
        if kind == "not":
            return self.test(t[1], on_false, on_true)
        if kind == "and":
            entry = on_true
            for item in reversed(t[1]):
                entry = self.test(item, entry, on_false)
            return entry
        if kind == "or":
            entry = on_false
            for item in reversed(t[1]):
                entry = self.test(item, on_true, entry)
            return entry
        if kind == "chain":
            return self.chain(t, on_true, on_false)
        if kind == "do":  # a tunnel's offsets (_tunnel.py): its steps, then on
            return self.steps(t[1], on_true)
        if kind == "cmp":
            if len(self.rev) > bpf.BPF_MAXINSNS:
                raise self.too_long()  # now, not after emitting all of a huge expression
            jop = _JOPS[t[1]]
            a, b = t[2], t[3]
            if b[0] == "k":
                pre = self.value(a, 0)
                self.jump(bpf.JMP | jop | bpf.K, b[1], on_true, on_false)
            else:
                pre = self.binary(a, b, 0)
                self.jump(bpf.JMP | jop | bpf.SX, 0, on_true, on_false)
            self.rev.extend(reversed(pre))
            return len(self.rev) - 1
        raise AssertionError(t)

    # -- protochain: a bounded, unrolled form of libpcap's loop (gen_protochain), with
    # A the next-header value and X the offset of the header it names from the IP header.
    def chain(self, t, on_true: int, on_false: int) -> int:
        _, nl, target, alternatives = t
        # the tail: libpcap compares A with N where the walk stops
        self.jump(bpf.JMP | bpf.JEQ | bpf.K, target, on_true, on_false)
        tail = len(self.rev) - 1
        walk = tail
        for _ in range(CHAIN_STEPS):
            walk = self._place(self._chain_step(nl, target), {"next": walk, "tail": tail})
            if len(self.rev) > bpf.BPF_MAXINSNS:
                raise self.too_long()
        # each alternative's start (A, X), the last one falling into the walk
        starts = []
        for i, (_, first, start) in enumerate(reversed(alternatives)):
            if i:
                self.rev.append((bpf.JMP | bpf.JA, 0, 0, len(self.rev) - walk))
            load_x = [(bpf.LDX | bpf.B | bpf.MSH, 0, 0, start[1])] if start[0] == "msh" \
                else [(bpf.LDX | bpf.IMM, 0, 0, start[1])]
            self.rev.extend(reversed(self.value(first, 0) + load_x))
            starts.append(len(self.rev) - 1)
        entry = on_false
        for (guard, _, _), begin in zip(reversed(alternatives), starts):
            entry = self.test(guard, begin, entry)
        return entry

    @staticmethod
    def _chain_step(nl: int, target: int) -> list:
        """One step of the walk, forward, with jump targets as labels: an int is an
        instruction of the step, "next" the next step, "tail" the final comparison.
        (libpcap first tests A == N and A == 59, "no next header"; here A == N only where
        N is a header walked, which is then not walked: the same verdicts, shorter.)"""
        jeq = bpf.JMP | bpf.JEQ | bpf.K
        ldb_x = bpf.LD | bpf.B | bpf.IND
        walked = [nh for nh in CHAIN_EXTENSIONS if nh != target]
        through_ah = target != 51
        tests = ([target] if len(walked) < 4 or not through_ah else []) + walked
        stop = len(tests) + through_ah  # the `ja tail`
        ext, ah = stop + 1, stop + 9
        step = [(jeq, stop if nh == target else ext, i + 1, nh) for i, nh in enumerate(tests)]
        if through_ah:
            step.append((jeq, ah, stop, 51))
        step.append((bpf.JMP | bpf.JA, 0, 0, "tail"))
        # An extension header: A = its next header, X += (its length + 1) * 8. (libpcap
        # loads the next header first: any load that fails rejects, so the order of two
        # loads with no test between them changes no verdict.)
        step += [(ldb_x, 0, 0, nl + 1), (bpf.ALU | bpf.ADD | bpf.K, 0, 0, 1),
                 (bpf.ALU | bpf.LSH | bpf.K, 0, 0, 3), (bpf.ALU | bpf.ADD | bpf.SX, 0, 0, 0),
                 (bpf.ST, 0, 0, 0), (ldb_x, 0, 0, nl), (bpf.LDX | bpf.MEM, 0, 0, 0)]
        if through_ah:
            step.append((bpf.JMP | bpf.JA, 0, 0, "next"))
            # AH: A = its next header, X = (its length + 2) * 4, as libpcap 1.10 computes
            # it (from the IP header, not past AH: the same verdicts as tcpdump's)
            step += [(ldb_x, 0, 0, nl + 1), (bpf.ALU | bpf.ADD | bpf.K, 0, 0, 2),
                     (bpf.ALU | bpf.LSH | bpf.K, 0, 0, 2), (bpf.ST, 0, 0, 0),
                     (ldb_x, 0, 0, nl), (bpf.LDX | bpf.MEM, 0, 0, 0)]  # on to the next step
        return step

    def _place(self, block: list, labels: dict) -> int:
        """Append a forward block whose last instruction falls through to labels["next"]
        (which must be the last instruction appended so far); returns its first."""
        assert labels["next"] == len(self.rev) - 1
        base = len(self.rev)
        n = len(block)

        def where(label) -> int:
            return labels[label] if isinstance(label, str) else base + n - 1 - label

        for i in range(n - 1, -1, -1):
            code, jt, jf, k = block[i]
            here = base + n - 1 - i
            if code == bpf.JMP | bpf.JA:
                k = here - where(k) - 1
            elif code & 7 == bpf.JMP:
                jt, jf = here - where(jt) - 1, here - where(jf) - 1
            self.rev.append((code, jt, jf, k))
        return len(self.rev) - 1


    def goto(self, target: int) -> None:
        """Make the next instruction (the last one emitted so far) lead to ``target``."""
        if target != len(self.rev) - 1:
            self.rev.append((bpf.JMP | bpf.JA, 0, 0, len(self.rev) - target - 1))

    def steps(self, steps: list, after: int) -> int:
        """A link preamble (see _linkgen): its steps in order, then ``after``."""
        entry = after
        for step in reversed(steps):
            if step[0] == "set":
                self.goto(entry)
                code = self.value(step[2], 0) + [(bpf.ST, 0, 0, step[1])]
                self.rev.extend(reversed(code))
                entry = len(self.rev) - 1
            elif step[0] == "if":
                body = self.steps(step[2], entry)
                entry = self.test(step[1], body, entry)
            else:  # "need"
                entry = self.test(step[1], entry, 0)
        return entry


def _set_slots(t) -> set:
    """The scratch slots that link preambles and tunnels (("set", slot, value)) fill."""
    out: set = set()
    stack = [t]
    while stack:
        t = stack.pop()
        if isinstance(t, (tuple, list)):
            if len(t) == 3 and t[0] == "set" and isinstance(t[1], int):
                out.add(t[1])
            stack.extend(c for c in t if isinstance(c, (tuple, list)))
    return out


def emit_bpf(ir, snaplen: int, expression: str) -> list[tuple[int, int, int, int]]:
    if ir[0] == "pre":
        e = _Emitter(expression, ir)
        e.rev.append((bpf.RET | bpf.K, 0, 0, 0))
        e.rev.append((bpf.RET | bpf.K, 0, 0, snaplen))
        entry = e.steps(ir[1], e.test(ir[2], 1, 0))
        e.goto(entry)
        if len(e.rev) > bpf.BPF_MAXINSNS:
            raise e.too_long()
        return e.rev[::-1]
    if ir == TRUE:
        return [(bpf.RET | bpf.K, 0, 0, snaplen)]
    if ir == FALSE:
        return [(bpf.RET | bpf.K, 0, 0, 0)]
    e = _Emitter(expression, ir)
    e.rev.append((bpf.RET | bpf.K, 0, 0, 0))
    e.rev.append((bpf.RET | bpf.K, 0, 0, snaplen))
    entry = e.test(ir, 1, 0)
    if entry != len(e.rev) - 1:
        e.rev.append((bpf.JMP | bpf.JA, 0, 0, len(e.rev) - entry - 1))
    if len(e.rev) > bpf.BPF_MAXINSNS:
        raise e.too_long()
    return e.rev[::-1]


def linux_cooked_fixup(program: list, linktype: int, expression: str) -> list:
    """Rewrite a LINUX_SLL/LINUX_SLL2 program for a Linux SOCK_DGRAM packet socket.

    On a cooked socket the kernel runs the filter on the packet *without* the SLL
    header (libpcap builds that header in user space), so, exactly as libpcap's
    pcap-linux.c fix_offset() does, every absolute/indexed load and every
    `ldxb 4*([k]&0xf)`:
      - at k >= header length (16 for SLL, 20 for SLL2): k -= header length;
      - reading the packet type (SLL offset 0, SLL2 offset 10) becomes the ancillary
        load SKF_AD_OFF + SKF_AD_PKTTYPE;
      - reading the protocol (SLL offset 14, SLL2 offset 0) becomes SKF_AD_PROTOCOL;
      - SLL2's interface index (offset 4) becomes SKF_AD_IFINDEX;
      - any other read inside the SLL header cannot run in the kernel: FilterError
        (the caller should then filter in user space with offline_matcher).
    Return values are left alone (libpcap only rewrites them for non-mmapped sockets).
    """
    if linktype == LT.LINUX_SLL:
        hdr, special = 16, {0: bpf.SKF_AD_PKTTYPE, 14: bpf.SKF_AD_PROTOCOL}
    elif linktype == LT.LINUX_SLL2:
        hdr, special = 20, {10: bpf.SKF_AD_PKTTYPE, 0: bpf.SKF_AD_PROTOCOL,
                            4: bpf.SKF_AD_IFINDEX}
    else:
        raise FilterError(f"linux_cooked=True needs link type LINUX_SLL or LINUX_SLL2, not "
                          f"{linktype_name(linktype)}", expression=expression)
    out = []
    for code, jt, jf, k in program:
        cls, mode = code & 7, code & 0xE0
        if (cls == bpf.LD and mode in (bpf.ABS, bpf.IND)) or code == bpf.LDX | bpf.B | bpf.MSH:
            if k >= bpf.SKF_AD_OFF:
                pass
            elif k >= hdr:
                k -= hdr
            elif k in special:
                k = special[k]
            else:
                raise FilterError(f"this filter reads byte {k} of the Linux cooked header, which "
                                  "the kernel cannot see on a cooked socket; filter in user "
                                  "space instead", expression=expression)
        out.append((code, jt, jf, k))
    return out
