# Link-layer header types (LINKTYPE_* values as they appear in pcap and pcapng
# files, see tcpdump.org/linktypes.html) and their libpcap names. Plain integers,
# so the hot path compares ints, never enums.
from __future__ import annotations

NULL = 0
EN10MB = 1
ETHERNET = EN10MB
AX25 = 3
IEEE802 = 6
ARCNET_BSD = 7
SLIP = 8
PPP_BSDOS = 16
PPP = 9
FDDI = 10
ATM_RFC1483 = 11
RAW_OPENBSD = 12  # DLT_RAW on OpenBSD; files use LINKTYPE_RAW (101), some writers keep 12
RAW_LINUX = 14  # DLT_RAW on some BSDs and old Linux libpcap
PPP_HDLC = 50
PPP_ETHER = 51
RAW = 101
C_HDLC = 104
IEEE802_11 = 105
FRELAY = 107
LOOP = 108
LINUX_SLL = 113
LTALK = 114
PFLOG = 117
IEEE802_11_PRISM = 119
IP_OVER_FC = 122
SUNATM = 123
IEEE802_11_RADIOTAP = 127
ARCNET_LINUX = 129
JUNIPER_MLPPP = 130
MTP2 = 140
BACNET_MS_TP = 165
USB_LINUX = 189
BLUETOOTH_HCI_H4 = 187
PPI = 192
IEEE802_15_4 = 195
USB_LINUX_MMAPPED = 220
IPV4 = 228
IPV6 = 229
DBUS = 231
NFLOG = 239
NETANALYZER = 240
IPOIB = 242
MPEG_2_TS = 243
USBPCAP = 249
NETLINK = 253
LINUX_SLL2 = 276

NAMES: dict[int, str] = {
    NULL: "NULL", EN10MB: "EN10MB", AX25: "AX25", IEEE802: "IEEE802", ARCNET_BSD: "ARCNET",
    SLIP: "SLIP", PPP_BSDOS: "PPP_BSDOS", PPP: "PPP", FDDI: "FDDI", ATM_RFC1483: "ATM_RFC1483",
    RAW_OPENBSD: "RAW",
    RAW_LINUX: "RAW", PPP_HDLC: "PPP_HDLC", PPP_ETHER: "PPP_ETHER", RAW: "RAW", C_HDLC: "C_HDLC",
    IEEE802_11: "IEEE802_11", FRELAY: "FRELAY", LOOP: "LOOP", LINUX_SLL: "LINUX_SLL",
    LTALK: "LTALK", PFLOG: "PFLOG", IEEE802_11_PRISM: "PRISM_HEADER", IP_OVER_FC: "IP_OVER_FC",
    SUNATM: "SUNATM", IEEE802_11_RADIOTAP: "IEEE802_11_RADIO", ARCNET_LINUX: "ARCNET_LINUX",
    JUNIPER_MLPPP: "JUNIPER_MLPPP", MTP2: "MTP2", BACNET_MS_TP: "BACNET_MS_TP",
    USB_LINUX: "USB_LINUX",
    BLUETOOTH_HCI_H4: "BLUETOOTH_HCI_H4", PPI: "PPI", IEEE802_15_4: "IEEE802_15_4",
    USB_LINUX_MMAPPED: "USB_LINUX_MMAPPED", IPV4: "IPV4", IPV6: "IPV6", DBUS: "DBUS",
    NFLOG: "NFLOG", NETANALYZER: "NETANALYZER", IPOIB: "IPOIB", MPEG_2_TS: "MPEG_2_TS",
    USBPCAP: "USBPCAP", NETLINK: "NETLINK", LINUX_SLL2: "LINUX_SLL2",
}

DESCRIPTIONS: dict[int, str] = {
    NULL: "BSD loopback", EN10MB: "Ethernet", PPP: "PPP", RAW: "Raw IP", RAW_OPENBSD: "Raw IP",
    RAW_LINUX: "Raw IP", C_HDLC: "Cisco HDLC", IEEE802_11: "IEEE 802.11 Wireless LAN",
    LOOP: "OpenBSD loopback", LINUX_SLL: "Linux cooked-mode capture v1",
    IEEE802_11_RADIOTAP: "IEEE 802.11 plus radiotap radio header", IPV4: "Raw IPv4",
    IPV6: "Raw IPv6", LINUX_SLL2: "Linux cooked-mode capture v2", NFLOG: "Linux netfilter log",
    PPP_ETHER: "PPPoE", FRELAY: "Frame Relay", PFLOG: "OpenBSD PF log",
}

# Largest captured length a record may claim, as libpcap's MAXIMUM_SNAPLEN, and
# the larger per-type limits libpcap grants (D-Bus messages, USBPcap transfers).
MAX_SNAPLEN = 262144
_MAX_SNAPLEN_FOR = {DBUS: 128 * 1024 * 1024, USBPCAP: 1024 * 1024}


def max_caplen(linktype: int) -> int:
    """The largest captured length a record of this link type can honestly have."""
    return _MAX_SNAPLEN_FOR.get(linktype, MAX_SNAPLEN)


def name(linktype: int) -> str:
    """libpcap's name for a link type, or ``LINKTYPE_<n>`` for ones it does not name."""
    return NAMES.get(linktype, f"LINKTYPE_{linktype}")


def describe(linktype: int) -> str:
    return DESCRIPTIONS.get(linktype, name(linktype))
