# The link-layer filter cases shared by test_filter_linktypes.py and test_filter_tcpdump.py:
# for each link type, libpcap's name for it (tcpdump -y) and primitives of its grammar, and
# a random-expression generator over them.
from __future__ import annotations

import random

from purepcap import linktypes as LT

MAC_QUALIFIERS = ["wlan addr1 {}", "wlan addr2 {}", "wlan addr3 {}", "wlan addr4 {}", "wlan ra {}",
                  "wlan ta {}", "wlan host {}", "wlan src {}", "wlan dst {}", "ether host {}",
                  "ether src {}", "ether dst {} or ether src {}", "wlan src {} and not ip"]
WLAN_FIELDS = [
    "wlan type mgt", "type ctl", "type data", "wlan type mgt subtype beacon", "subtype probe-req",
    "subtype probe-resp", "subtype qos-data", "type data subtype null", "type ctl subtype ack",
    "subtype rts", "subtype cts", "subtype deauth", "type data subtype 0x80", "type 8",
    "dir nods", "dir tods", "dir fromds", "dir dstods", "dir 3", "not dir 0",
]
WLAN_COMMON = [
    "ether broadcast", "ether multicast", "broadcast", "wlan multicast", "ip", "ip6", "arp",
    "tcp", "udp", "icmp", "tcp port 80", "udp port 53", "port 5353 or port 137",
    "ether proto 0x888e", "ether proto 0x42", "link proto 0xaa", "wlan[0] & 0xfc == 0x80",
    "ether[1] & 3 == 1", "ip[9] = 17", "tcp[13] & 2 != 0", "ip6 and udp", "len > 100",
    "not ip", "ip src net 192.168.0.0/16", "udp[8:2] > 0 or wlan[1] & 0x40 != 0",
    "ip host 192.168.1.1 or ip6 multicast", "icmp6", "vlan", "vlan 100 and ip",
    "pppoes and ip", "vlan and pppoes",
    # over 802.2 LLC (a data frame's payload): SAPs, SNAP, the LLC control field
    "atalk", "aarp", "ipx", "iso", "isis", "clnp", "stp", "netbeui", "ether proto \\iso",
    "ether proto 0xf0", "llc", "llc i", "llc s", "llc u", "llc rr", "llc ui", "l1",
]
# what libpcap accepts over 802.2 LLC on other link types (LLC-encapsulated SunATM, IP over
# FC) and where it can never match (ARCNET, pflog)
LLC_KEYWORDS = ["atalk", "aarp", "ipx", "iso", "isis", "clnp", "stp", "netbeui",
                "ether proto \\stp", "ether proto 0xfe", "atalk or ip", "pppoes or ip",
                "pppoes 3 or ip6", "fddi[0] = 0", "ppp[1] = 0"]
RADIO = ["radio[0] == 0", "radio[2:2] > 20", "radio[4:4] & 0x2 != 0"]
# with addresses random bytes often have (the corpus tests take theirs from each file)
WLAN_MACS = [q.format(*[mac] * q.count("{}")) for q in MAC_QUALIFIERS
             for mac in ("ff:ff:ff:ff:ff:ff", "00:00:00:00:00:00")]
# (link type names for tcpdump -y, primitives to compare)
FAMILIES: dict[int, tuple[str, list[str]]] = {
    LT.IEEE802_11: ("IEEE802_11", WLAN_FIELDS + WLAN_COMMON + WLAN_MACS),
    LT.IEEE802_11_RADIOTAP: ("IEEE802_11_RADIO", WLAN_FIELDS + WLAN_COMMON + RADIO + WLAN_MACS),
    LT.PPI: ("PPI", WLAN_COMMON + WLAN_MACS),
    163: ("IEEE802_11_RADIO_AVS", WLAN_FIELDS + WLAN_COMMON + RADIO + WLAN_MACS),
    LT.IEEE802_11_PRISM: ("PRISM_HEADER", WLAN_FIELDS + WLAN_COMMON + RADIO + WLAN_MACS),
    LT.ARCNET_BSD: ("ARCNET", ["ip", "arp", "rarp", "ip6", "link src $dd", "link host $dd",
                               "ether dst $dd", "broadcast", "ether multicast", "tcp port 80",
                               "ip[9] = 6", "link[2] = 0xd4", "ip broadcast", "udp or icmp"]
                    + LLC_KEYWORDS),
    LT.ARCNET_LINUX: ("ARCNET_LINUX", ["ip", "arp", "ip6", "link host $dd", "link dst $dd",
                                       "broadcast", "tcp port 80", "udp", "ip[9] = 1",
                                       "icmp or arp"] + LLC_KEYWORDS),
    LT.SUNATM: ("SUNATM", ["ip", "arp", "ip[9] = 6", "lane", "oamf4", "oamf4sc", "oamf4ec", "oam",
                           "metac", "bcc", "sc", "ilmic", "connectmsg", "metaconnect", "vpi 0",
                           "vci 5", "vpi 0 and vci 16", "vpi > 3", "vci <= 16", "lane and ip", "lane and arp",
                           "lane and ether host 00:00:00:00:00:00", "lane and broadcast",
                           "lane and ether multicast", "lane and ether[0] = 0", "tcp port 80",
                           "not lane", "llc", "llc s", "llc ui", "llc rej", "l2"] + LLC_KEYWORDS),
    LT.IP_OVER_FC: ("IP_OVER_FC", ["ip", "arp", "ip6", "ip[9] = 6", "link host 00:00:00:00:00:00",
                                   "ether src 00:00:00:00:00:00", "broadcast", "multicast",
                                   "tcp port 80", "udp"] + LLC_KEYWORDS),
    LT.PPP_HDLC: ("PPP_SERIAL", ["ip", "ip6", "ip[9] = 17", "tcp port 80", "udp port 53", "mpls",
                                 "icmp or udp", "atalk", "aarp", "ipx", "netbeui"]),
    LT.PPP_ETHER: ("PPP_ETHER", ["ip", "ip6", "ip[9] = 6", "tcp port 80", "udp"]),
    LT.PPP_BSDOS: ("PPP_BSDOS", ["ip", "ip6", "ip[9] = 6", "tcp port 80", "udp", "decnet",
                               "ether proto 0x809b", "ether proto 0x8137", "mpls", "atalk", "aarp",
                               "ipx"]),
    LT.PFLOG: ("PFLOG", ["ip", "ip[9] = 6", "on eth0", "ifname em0", "on pflog0", "rnr 5",
                         "rulenum 5", "srnr 3", "subrulenum 0", "rset foo", "ruleset foobar",
                         "action pass", "action block", "action drop", "action nat",
                         "reason match", "reason 3", "reason bad-offset", "inbound", "outbound",
                         "tcp port 80", "ip host 10.0.0.1", "udp", "len > 40", "not ip"]
                    # (after pppoes libpcap 1.10 reads pflog's payload offset from a slot
                    # it never set: a named deviation)
                    + [k for k in LLC_KEYWORDS if "pppoes" not in k]),
    LT.MTP2: ("MTP2", ["sio 3", "opc 100", "dpc 100", "sls 5", "hsio 3", "hopc 100", "hdpc 100",
                       "hsls 5", "dpc 16383", "opc 0", "sio 0x83 or sls 15", "len > 10",
                       "dpc == 1", "dpc > 2", "dpc <= 2", "opc >= 2", "opc < 100", "sls > 3",
                       "hdpc < 5", "hsio >= 3", "sio = 3", "fisu", "lssu", "msu", "hfisu",
                       "hlssu", "hmsu", "msu and sio 3", "not fisu"]),
    139: ("MTP2_WITH_PHDR", ["sio 3", "opc 100", "dpc 100", "sls 5", "hsio 3", "hopc 100",
                             "hdpc 100", "hsls 5", "fisu", "lssu", "msu", "hmsu"]),
}


# libpcap 1.10.3 gives the scratch slot that holds a variable link-header length (802.11
# behind radio headers, pflog) to arithmetic too: in `len > 100 and not link proto 0xaa`
# on PPI, `len > 100` overwrites it and the frame control is read at offset 100. A named
# deviation (ours keep their own slots): random expressions on those link types leave
# comparisons out, which are compared alone in FAMILIES.
VARIABLE_HEADER = (LT.IEEE802_11, LT.IEEE802_11_RADIOTAP, LT.PPI, 163, LT.IEEE802_11_PRISM,
                   LT.PFLOG)


def _comparison(expr: str) -> bool:
    return any(c in expr for c in "[=<>")


def random_link_expression(rng: random.Random, linktype: int, depth: int = 0) -> str:
    """1 to 4 of the link type's primitives under and/or/not/parentheses. On SunATM, one
    `lane` at most: after a second one libpcap 1.10.3 reads the LANE fields 6 bytes
    further on (its offsets already moved by the first); ours reads the ATM header (a
    named deviation)."""
    while True:
        e = _random_link_expression(rng, linktype, depth)
        if linktype != LT.SUNATM or e.count("lane") <= 1:
            return e


def _random_link_expression(rng: random.Random, linktype: int, depth: int = 0) -> str:
    prims = FAMILIES[linktype][1]
    if linktype in VARIABLE_HEADER:
        prims = [e for e in prims if not _comparison(e)]
    r = rng.random()
    if depth >= 2 or r < 0.4:
        e = rng.choice(prims)
    elif r < 0.85:
        op = rng.choice(["and", "or", "&&", "||"])
        e = f"({_random_link_expression(rng, linktype, depth + 1)}) {op} " \
            f"({_random_link_expression(rng, linktype, depth + 1)})"
    else:
        e = f"({_random_link_expression(rng, linktype, depth + 1)})"
    if rng.random() < 0.2:
        e = f"not ({e})"
    return e
