# IP protocol numbers and the names records give them: the lower-case keywords of
# IANA's "Assigned Internet Protocol Numbers" registry, with the few renames the
# records API promises (icmpv6 for ipv6-icmp, ospf for ospfigp, ipv4 for the
# registry's "IPv4" encapsulation, isis for "ISIS over IPv4", ttp for TTP/IPTM).
# Numbers without a keyword (61, 63, 68, 99, 114, 253, 254, 255 and the
# unassigned 148-252) are named ``ip-proto-N``. A plain table: the hot path
# indexes a list, never calls a function.
from __future__ import annotations

__all__ = ["NAMES", "NUMBERS", "ALIASES", "name", "number"]

_KEYWORDS: dict[int, str] = {
    0: "hopopt", 1: "icmp", 2: "igmp", 3: "ggp", 4: "ipv4", 5: "st", 6: "tcp", 7: "cbt",
    8: "egp", 9: "igp", 10: "bbn-rcc-mon", 11: "nvp-ii", 12: "pup", 13: "argus", 14: "emcon",
    15: "xnet", 16: "chaos", 17: "udp", 18: "mux", 19: "dcn-meas", 20: "hmp", 21: "prm",
    22: "xns-idp", 23: "trunk-1", 24: "trunk-2", 25: "leaf-1", 26: "leaf-2", 27: "rdp",
    28: "irtp", 29: "iso-tp4", 30: "netblt", 31: "mfe-nsp", 32: "merit-inp", 33: "dccp",
    34: "3pc", 35: "idpr", 36: "xtp", 37: "ddp", 38: "idpr-cmtp", 39: "tp++", 40: "il",
    41: "ipv6", 42: "sdrp", 43: "ipv6-route", 44: "ipv6-frag", 45: "idrp", 46: "rsvp",
    47: "gre", 48: "dsr", 49: "bna", 50: "esp", 51: "ah", 52: "i-nlsp", 53: "swipe",
    54: "narp", 55: "min-ipv4", 56: "tlsp", 57: "skip", 58: "icmpv6", 59: "ipv6-nonxt",
    60: "ipv6-opts", 62: "cftp", 64: "sat-expak", 65: "kryptolan", 66: "rvd", 67: "ippc",
    69: "sat-mon", 70: "visa", 71: "ipcv", 72: "cpnx", 73: "cphb", 74: "wsn", 75: "pvp",
    76: "br-sat-mon", 77: "sun-nd", 78: "wb-mon", 79: "wb-expak", 80: "iso-ip", 81: "vmtp",
    82: "secure-vmtp", 83: "vines", 84: "ttp", 85: "nsfnet-igp", 86: "dgp", 87: "tcf",
    88: "eigrp", 89: "ospf", 90: "sprite-rpc", 91: "larp", 92: "mtp", 93: "ax.25", 94: "ipip",
    95: "micp", 96: "scc-sp", 97: "etherip", 98: "encap", 100: "gmtp", 101: "ifmp",
    102: "pnni", 103: "pim", 104: "aris", 105: "scps", 106: "qnx", 107: "a/n", 108: "ipcomp",
    109: "snp", 110: "compaq-peer", 111: "ipx-in-ip", 112: "vrrp", 113: "pgm", 115: "l2tp",
    116: "ddx", 117: "iatp", 118: "stp", 119: "srp", 120: "uti", 121: "smp", 122: "sm",
    123: "ptp", 124: "isis", 125: "fire", 126: "crtp", 127: "crudp", 128: "sscopmce",
    129: "iplt", 130: "sps", 131: "pipe", 132: "sctp", 133: "fc", 134: "rsvp-e2e-ignore",
    135: "mobility-header", 136: "udplite", 137: "mpls-in-ip", 138: "manet", 139: "hip",
    140: "shim6", 141: "wesp", 142: "rohc", 143: "ethernet", 144: "aggfrag", 145: "nsh",
    146: "homa", 147: "bit-emu",
}

# NAMES[n] is the record's protocol for IP protocol number n (0..255).
NAMES: list[str] = [_KEYWORDS.get(n, f"ip-proto-{n}") for n in range(256)]
# NUMBERS maps every accepted name (keywords and ip-proto-N for all N) to its number.
NUMBERS: dict[str, int] = {f"ip-proto-{n}": n for n in range(256)}
NUMBERS.update({v: k for k, v in _KEYWORDS.items()})
# Spellings users type that are not the record names: tcpdump's, and IANA's own.
ALIASES: dict[str, str] = {"icmp6": "icmpv6", "ipv6-icmp": "icmpv6", "ospfigp": "ospf",
                           "ip-in-ip": "ipip", "iptm": "ttp"}

def name(number: int) -> str:
    """The records' name for an IP protocol number."""
    return NAMES[number] if 0 <= number < 256 else f"ip-proto-{number}"


def number(protocol: str) -> int:
    """The IP protocol number for a records name (or alias); KeyError when unknown."""
    key = protocol.strip().lower()
    return NUMBERS[ALIASES.get(key, key)]
