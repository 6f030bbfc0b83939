# The one table of record fields and DataFrame columns. Every list of field names in
# the package (headers' decode template and EXTRA_FIELDS, build.DECODED_KEYS, records'
# field check, the DataFrame's columns and types, the CLI's base columns) is derived
# from FIELDS here, so a field is added, renamed or retyped in one place. Standard
# library only, and no numpy: types are named by strings, resolved by the modules
# that build arrays (purepcap._columns, purepcap.dataframe).
#
# Order: FIELDS is in the order of a records() row (its default keys, then payload,
# then the extra fields), and every derived list keeps that order, so records(),
# to_pandas() and the CLI name and order the same fields the same way.
#
# How to add a field (say ``dns_qname``):
#   1. Add a Field row to FIELDS below: its name, its source (which decoder makes
#      it), its numpy storage type and pandas type, its role (default or extra), its
#      category table if its strings should be coded against one (a name in
#      CATEGORY_TABLES; add a new name there for a new kind of string: the DataFrame
#      builder makes one table per name), and a one-line doc.
#      From then on records(fields=...), to_pandas(columns=...), the Intake source and
#      the CLI's --columns accept the name, and the DataFrame has its type.
#   2. Make its source produce it, under that name:
#      - "packet": a Packet attribute (purepcap.format), and the attribute of the same
#        name on purepcap._batches.Batch (an array, or one value for a whole batch).
#      - "link", "ip", "transport": purepcap.headers.decode sets the key in the dict it
#        returns (its template, headers._BLANK, holds every such key, None).
#      - an application source (APP_SOURCES: "dns", "http", "tls"): its decoder fills
#        the key in the dict of the general decode path, which records' general rows
#        (purepcap._records._rows_general) and the DataFrame's reference-decoder rows
#        (purepcap._columns.ColumnBuilder._slow) read by name; None where a packet
#        does not carry it.
#   3. The DataFrame: a decoded column with no vectorised producer in
#      purepcap._columns._FAST_COLUMNS is made by the reference decoder for every row
#      of a batch (correct, at records() speed), stored by its types here: a category
#      code, a nullable integer with a mask, or (numpy "object") a Python object per
#      row, e.g. a str or a tuple. Add a producer only where the field is cheap to read
#      for a whole batch at once, and a cheap test of which rows can carry it.
#   tests/test_schema.py then checks the new name in records(), to_pandas() (with the
#   pandas type given here) and the CLI, and that records() and to_pandas() agree row
#   for row.
from __future__ import annotations

from typing import NamedTuple

__all__ = ["Field", "FIELDS", "BY_NAME", "SOURCES", "DECODED_SOURCES", "APP_SOURCES", "ROW_DEFAULT",
           "RECORD_EXTRA", "FRAME_DEFAULT", "FRAME_EXTRA", "DECODED", "APPLICATION", "PACKET", "ROLES",
           "CATEGORY_TABLES"]

# Where a value comes from.
#   packet     the capture container, per record (purepcap.format.Packet)
#   link, ip, transport   purepcap.headers.decode, the link/IP/transport header decoder
#   dns, http, tls        application decoders over the transport payload (issue 18)
#   flow       the flow table (a later issue)
DECODED_SOURCES = ("link", "ip", "transport")
APP_SOURCES = ("dns", "http", "tls")
SOURCES = ("packet",) + DECODED_SOURCES + APP_SOURCES + ("flow",)

# Whether a field is given without being asked for.
#   default    in every records() row and every DataFrame
#   row        in every records() row; a DataFrame column on request (columns=)
#   extra      on request everywhere (records(fields=), to_pandas(columns=), --columns)
#   payload    with payload=True everywhere
ROLES = ("default", "row", "extra", "payload")
CATEGORY_TABLES = ("host", "proto", "mac")


class Field(NamedTuple):
    name: str
    source: str  # one of SOURCES
    numpy: str | None  # numpy storage type of the DataFrame builder; None: not a numpy column
    pandas: str  # the pandas dtype of the DataFrame column, as str(dtype) prints it
    role: str  # one of ROLES
    category: str | None  # for pandas "category": the code table the column shares
    doc: str

    @property
    def nullable(self) -> bool:
        """A numeric column that may be missing: a pandas masked integer type."""
        return self.pandas.startswith(("UInt", "Int"))


_ = None
FIELDS: tuple[Field, ...] = (
    # name          source       numpy     pandas             role       category
    Field("frame", "packet", "int64", "int64", "row", _,
          "1-based frame number of the packet in the capture"),
    Field("time", "packet", "int64", "datetime64[ns]", "default", _,
          "capture time: records int ns since the epoch UTC; DataFrame naive UTC (NaT: none)"),
    Field("length", "packet", "int64", "int64", "row", _, "original length on the wire"),
    Field("caplen", "packet", "int64", "int64", "row", _, "captured length"),
    Field("src_host", "ip", _, "category", "default", "host",
          "source address: IPv4 dotted quad, IPv6 in RFC 5952 form"),
    Field("src_port", "transport", "uint16", "UInt16", "default", _,
          "source port when TCP, UDP or SCTP directly follows the IP layer"),
    Field("dst_host", "ip", _, "category", "default", "host", "destination address"),
    Field("dst_port", "transport", "uint16", "UInt16", "default", _, "destination port"),
    Field("protocol", "ip", _, "category", "default", "proto",
          "tcp, udp, icmp, ..., the lower-case IANA keyword, else ip-proto-N"),
    Field("payload", "transport", _, "binary[pyarrow]", "payload", _,
          "bytes after the transport header (after the IP header chain for others)"),
    Field("ip_version", "ip", "uint8", "UInt8", "extra", _, "4 or 6"),
    Field("ttl", "ip", "uint8", "UInt8", "extra", _, "IPv4 TTL or IPv6 hop limit"),
    Field("ip_id", "ip", "uint32", "UInt32", "extra", _,
          "IPv4 identification; IPv6: the fragment header's identification"),
    Field("tcp_flags", "transport", "uint16", "UInt16", "extra", _, "TCP flag bits, FIN 0x01 ... NS 0x100"),
    Field("tcp_seq", "transport", "uint32", "UInt32", "extra", _, "TCP sequence number"),
    Field("tcp_ack", "transport", "uint32", "UInt32", "extra", _, "TCP acknowledgment number"),
    Field("tcp_window", "transport", "uint16", "UInt16", "extra", _, "TCP window (unscaled)"),
    Field("icmp_type", "transport", "uint8", "UInt8", "extra", _, "ICMP or ICMPv6 type"),
    Field("icmp_code", "transport", "uint8", "UInt8", "extra", _, "ICMP or ICMPv6 code"),
    Field("vlan", "link", "uint16", "UInt16", "extra", _, "VLAN id of the outermost 802.1Q/802.1ad tag"),
    Field("eth_src", "link", _, "category", "extra", "mac", "source MAC aa:bb:cc:dd:ee:ff (Ethernet)"),
    Field("eth_dst", "link", _, "category", "extra", "mac", "destination MAC (Ethernet)"),
    Field("interface", "packet", "int64", "int64", "extra", _, "the packet's interface index in the capture"),
    Field("fragment", "ip", "object", "object", "extra", _,
          "None, or (more_fragments, offset_in_bytes) for an IP fragment"),
    Field("ip_proto", "ip", "uint8", "UInt8", "extra", _, "the IP protocol number named by protocol"),
    Field("ip_length", "ip", "uint32", "UInt32", "extra", _, "IPv4 total length; IPv6 payload length + 40"),
    # Application fields (issue 18): decoded from the transport payload by purepcap._appfields,
    # in APP_FIELDS' order, only for packets that can carry them (see its candidate test)
    Field("dns_id", "dns", "object", "object", "extra", _, "DNS message id (int)"),
    Field("dns_qname", "dns", "object", "object", "extra", _,
          "DNS first question's name as sent, no trailing dot; the root is \"\""),
    Field("dns_qtype", "dns", "object", "object", "extra", _, "DNS first question's type (int)"),
    Field("dns_rcode", "dns", "object", "object", "extra", _, "DNS response code (int), responses only"),
    Field("dns_answers", "dns", "object", "object", "extra", _,
          "tuple of the A and AAAA addresses (str) of a DNS answer section"),
    Field("http_method", "http", "object", "object", "extra", _, "HTTP/1.x request method"),
    Field("http_uri", "http", "object", "object", "extra", _, "HTTP/1.x request URI, as sent"),
    Field("http_host", "http", "object", "object", "extra", _, "HTTP Host header, spaces stripped"),
    Field("http_user_agent", "http", "object", "object", "extra", _, "HTTP User-Agent header"),
    Field("http_status", "http", "object", "object", "extra", _, "HTTP/1.x response status code (int)"),
    Field("tls_sni", "tls", "object", "object", "extra", _, "TLS ClientHello server name (SNI)"),
    Field("tls_alpn", "tls", "object", "object", "extra", _,
          "tuple of TLS ALPN protocols: a ClientHello's offer, else a ServerHello's choice"),
    Field("ja3", "tls", "object", "object", "extra", _, "JA3 of a TLS ClientHello (MD5 hex, as tshark)"),
    Field("ja3s", "tls", "object", "object", "extra", _, "JA3S of a TLS ServerHello (MD5 hex, as tshark)"),
    Field("ja4", "tls", "object", "object", "extra", _, "JA4 of a TLS ClientHello (FoxIO's specification)"),
)
del _

BY_NAME: dict[str, Field] = {f.name: f for f in FIELDS}


def _names(keep) -> tuple[str, ...]:
    return tuple(f.name for f in FIELDS if keep(f))


# records(): the keys of every row, then (payload=True) payload, then fields=... names.
ROW_DEFAULT = _names(lambda f: f.role in ("default", "row"))
RECORD_EXTRA = _names(lambda f: f.role == "extra")
# to_pandas(): the columns of every frame, then (payload=True) payload, then columns=... names.
FRAME_DEFAULT = _names(lambda f: f.role == "default")
FRAME_EXTRA = _names(lambda f: f.role in ("row", "extra"))
# The keys of purepcap.headers.decode's dict, and those of the container's Packet.
DECODED = _names(lambda f: f.source in DECODED_SOURCES)
# The application fields, in the order purepcap._appfields.app_fields returns them.
APPLICATION = _names(lambda f: f.source in APP_SOURCES)
PACKET = _names(lambda f: f.source == "packet")

