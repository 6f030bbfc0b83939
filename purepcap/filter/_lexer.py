# Tokeniser for pcap-filter(7) expressions. Strategy: one pass with a few regexes,
# classifying each word the way libpcap's flex scanner does (longest match wins, so
# "10-20" and "tcp-syn" are single words, "len-1" is one unknown word). Every token
# keeps its 1-based column so errors can point a caret at it. The text's length and
# its number of tokens are bounded here, before any tree is built: every later step
# (lowering, code generation, Python's compiler) does work proportional to the tokens,
# so these two bounds bound the time and memory of compiling any expression.
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from ..errors import FilterError

__all__ = ["Token", "tokenize", "shown", "KEYWORDS", "MAX_LENGTH", "MAX_TOKENS"]

MAX_LENGTH = 65_536  # characters of expression text
# Tokens of an expression. At this bound the worst expression (`portrange 1-2 or 3-4
# or ...`, 8.5 comparisons a token) builds its offline matcher in about 1 s of CPU;
# a kernel program is refused long before it (4,096 instructions).
MAX_TOKENS = 4_096

# Words that are reserved in libpcap's scanner. Anything else is an ID (a name).
KEYWORDS = frozenset("""
    dst src host gateway net mask port portrange less greater proto protochain
    link ether ppp slip fddi tr wlan arp rarp ip ip6 sctp tcp udp icmp icmp6 igmp
    igrp pim vrrp carp ah esp atalk aarp decnet lat sca moprc mopdl iso esis isis
    stp ipx netbeui broadcast multicast and or not len inbound outbound vlan mpls
    pppoed pppoes geneve vxlan
""".split()) | frozenset((
    # link-layer words: 802.11 frame control and addresses, pflog, SunATM, SS7
    "type subtype dir addr1 addr2 addr3 addr4 ra ta radio "
    "on ifname rnr rulenum srnr subrulenum rset ruleset action reason "
    "lane oamf4 oamf4sc oamf4ec oam metac bcc sc ilmic connectmsg metaconnect vpi vci "
    "sio opc dpc sls hsio hopc hdpc hsls fisu lssu msu hfisu hlssu hmsu"
).split())
# Network-layer words (LLC, ISO/IS-IS): reserved in libpcap's scanner too.
KEYWORDS |= frozenset("llc clnp l1 l2 iih lsp snp csnp psnp".split())

_MAC = re.compile(
    r"(?:[0-9A-Fa-f]{1,2}:){5}[0-9A-Fa-f]{1,2}(?![0-9A-Za-z_.:\-])"
    r"|(?:[0-9A-Fa-f]{1,2}-){5}[0-9A-Fa-f]{1,2}(?![0-9A-Za-z_.:\-])"
    r"|[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}(?![0-9A-Za-z_.:\-])")
_V6 = re.compile(r"[0-9A-Fa-f:.]{2,46}")  # bounded, so a hostile run stays linear
_WORD = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.\-]*[A-Za-z0-9_.])?")
_ESCAPED = re.compile(r"\\[^ \t\n!()]+")
_ARCNET = re.compile(r"\$[0-9A-Fa-f]{1,2}(?![0-9A-Za-z_.\-])")  # an ARCNET address, $xx
_NUM = re.compile(r"0[xX][0-9A-Fa-f]+|[0-9]+")
_DOTTED = re.compile(r"[0-9]+(?:\.[0-9]+){1,3}")
_OPS = ("&&", "||", "==", "!=", "<=", ">=", "<<", ">>",
        "(", ")", "[", "]", ":", "!", "=", "<", ">", "+", "-", "*", "/", "%", "&", "|", "^")
_WS = " \t\r\n"


@dataclass(frozen=True)
class Token:
    kind: str  # "kw", "id", "num", "hid", "hid6", "eid", "aid", "op", "end"
    text: str
    column: int  # 1-based
    value: int | None = None  # numbers only

    def __repr__(self) -> str:
        return f"{self.kind}:{self.text}@{self.column}"


def shown(text: str, limit: int = 40) -> str:
    """A token's text for an error message: cut to ``limit`` characters, and with
    unprintable characters (a NUL, a newline) escaped."""
    if len(text) > limit:
        text = text[:limit] + "..."
    if not text.isprintable():
        text = text.encode("unicode_escape").decode("ascii")
    return text


def _number(text: str) -> int:
    """A number token's value; ValueError if it has a digit its base lacks, OverflowError
    past 32 bits (checked on the digits first: int() of a 5,000-digit decimal is a
    ValueError in Python 3.11, and its cost grows with the length)."""
    if text[:2] in ("0x", "0X"):
        digits, base, most = text[2:], 16, 8
    elif len(text) > 1 and text[0] == "0":
        digits, base, most = text[1:], 8, 11  # libpcap reads a leading 0 as octal
    else:
        digits, base, most = text, 10, 10
    if base == 8 and not set(digits) <= set("01234567"):
        raise ValueError(text)
    if len(digits.lstrip("0")) > most:
        raise OverflowError(text)
    value = int(digits, base)
    if value > 0xFFFFFFFF:
        raise OverflowError(text)
    return value


def _longest_ipv6(s: str, i: int, text: str) -> int:
    """Length of the longest valid IPv6 address starting at s[i], or 0."""
    text = text[:45]  # the longest IPv6 text form; keeps hostile input linear
    for end in range(len(text), 1, -1):
        cand = text[:end]
        if ":" not in cand:
            return 0
        nxt = s[i + end: i + end + 1]
        if nxt and (nxt.isalnum() or nxt in "_-"):
            continue
        if cand.count(":") > 7 or ":::" in cand or cand.count("::") > 1:
            continue  # cheap rejections before the (slow) parse
        try:
            ipaddress.IPv6Address(cand)
        except ValueError:
            continue
        return end
    return 0


def tokenize(expression: str) -> list[Token]:
    """Split an expression into Tokens, ending with an "end" token."""
    tokens: list[Token] = []
    s = expression
    i, n = 0, len(s)
    if n > MAX_LENGTH:
        raise FilterError(f"expression too long: {n} characters, more than {MAX_LENGTH}",
                          expression=expression)
    while i < n:
        c = s[i]
        if c in _WS:
            i += 1
            continue
        col = i + 1
        if len(tokens) == MAX_TOKENS:
            raise FilterError(f"expression too long: more than {MAX_TOKENS} tokens (words, "
                              f"numbers, operators) at column {col}",
                              expression=expression, column=col)
        if c == "\\":
            m = _ESCAPED.match(s, i)
            if not m:
                raise FilterError(f"a backslash must be followed by a name at column {col}",
                                  expression=expression, column=col)
            tokens.append(Token("id", m.group()[1:], col))
            i = m.end()
            continue
        if c == "$":
            m = _ARCNET.match(s, i)
            if not m:
                raise FilterError(f"an ARCNET address is '$' and one or two hex digits, at "
                                  f"column {col}", expression=expression, column=col)
            tokens.append(Token("aid", m.group(), col))
            i = m.end()
            continue
        if c in "0123456789abcdefABCDEF:":
            m = _MAC.match(s, i)
            if m:
                tokens.append(Token("eid", m.group(), col))
                i = m.end()
                continue
            m = _V6.match(s, i)
            end = _longest_ipv6(s, i, m.group()) if m and ":" in m.group() else 0
            if end:
                tokens.append(Token("hid6", s[i:i + end], col))
                i += end
                continue
        m = _WORD.match(s, i)
        if m:
            text = m.group()
            i = m.end()
            if _NUM.fullmatch(text):
                try:
                    value = _number(text)
                except ValueError:
                    raise FilterError(f"bad number '{shown(text)}' at column {col}",
                                      expression=expression, column=col) from None
                except OverflowError:  # as libpcap's scanner words it
                    raise FilterError(f"number {shown(text)} overflows 32 bits at column {col}",
                                      expression=expression, column=col) from None
                tokens.append(Token("num", text, col, value))
            elif _DOTTED.fullmatch(text):
                tokens.append(Token("hid", text, col))
            elif text in KEYWORDS:
                tokens.append(Token("kw", text, col))
            else:
                tokens.append(Token("id", text, col))
            continue
        for op in _OPS:
            if s.startswith(op, i):
                tokens.append(Token("op", op, col))
                i += len(op)
                break
        else:
            raise FilterError(f"unexpected character {c!r} at column {col}",
                              expression=expression, column=col)
    tokens.append(Token("end", "", n + 1))
    return tokens
