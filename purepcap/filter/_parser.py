# Parser for pcap-filter(7) expressions into a small AST. Strategy: recursive
# descent mirroring libpcap's yacc grammar (and/or have equal precedence and
# associate left; "not" binds tightest; a bare value after and/or inherits the last
# qualifiers, as in "host a or b" and "tcp dst port 80 or 8080"). Arithmetic is read
# by operator precedence in a loop, so only brackets, `not` and unary minus recurse.
# Chains of and/or are kept flat (n-ary) so long expressions do not nest. The depth of
# the tree built (each `not`, change between and/or, operator, [index] and comparison
# is a level) and the parser's own nesting (brackets, `not`, unary minus) are bounded
# by MAX_DEPTH, so the recursive walks after parsing (lowering, code generation) stay
# far below Python's recursion limit: hostile nesting is a FilterError, never a
# RecursionError.
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from ..errors import FilterError
from ._lexer import Token, shown, tokenize

__all__ = [
    "parse", "MAX_DEPTH", "Qual", "Value", "Prim", "ProtoName", "Special", "LenCmp", "Encap",
    "Relation", "WlanField", "LinkPrim", "Num", "PktLen", "Load", "BinOp", "And", "Or", "Not", "Empty", "Node",
    "stack_exhausted", "Llc", "LLC_SUBTYPES", "ISIS_PDU_KEYWORDS",
]

MAX_DEPTH = 60  # nesting, as above; libpcap has no such limit, we need one

PROTOS = ("ether", "link", "ip", "ip6", "arp", "rarp", "tcp", "udp", "icmp", "icmp6", "igmp",
          "sctp", "ah", "esp", "pim", "vrrp", "carp", "igrp", "ppp", "slip", "fddi", "tr", "wlan",
          "atalk", "aarp", "decnet", "lat", "sca", "moprc", "mopdl", "iso", "esis", "isis", "stp",
          "ipx", "netbeui", "clnp", "radio")
# pcap-filter(7): fddi and tr are aliases of ether; ppp[...] (like fddi[...], tr[...]) reads
# the link header as link[...] does
LINK_ALIASES = {"fddi": "ether", "tr": "ether"}
LOAD_ALIASES = {"fddi": "link", "tr": "link", "ppp": "link"}
DIRS = ("src", "dst", "addr1", "addr2", "addr3", "addr4", "ra", "ta")
ADDRS = ("host", "net", "port", "portrange", "gateway", "proto", "protochain")
# Named constants usable in arithmetic (pcap-filter(7)).
CONSTANTS = {
    "tcpflags": 13, "tcp-fin": 0x01, "tcp-syn": 0x02, "tcp-rst": 0x04, "tcp-push": 0x08,
    "tcp-ack": 0x10, "tcp-urg": 0x20, "tcp-ece": 0x40, "tcp-cwr": 0x80,
    "icmptype": 0, "icmpcode": 1,
    "icmp-echoreply": 0, "icmp-unreach": 3, "icmp-sourcequench": 4, "icmp-redirect": 5,
    "icmp-echo": 8, "icmp-routeradvert": 9, "icmp-routersolicit": 10, "icmp-timxceed": 11,
    "icmp-paramprob": 12, "icmp-tstamp": 13, "icmp-tstampreply": 14, "icmp-ireq": 15,
    "icmp-ireqreply": 16, "icmp-maskreq": 17, "icmp-maskreply": 18,
    "icmp6type": 0, "icmp6code": 1,
    "icmp6-destinationunreach": 1, "icmp6-packettoobig": 2, "icmp6-timeexceeded": 3,
    "icmp6-parameterproblem": 4, "icmp6-echo": 128, "icmp6-echoreply": 129,
    "icmp6-multicastlistenerquery": 130, "icmp6-multicastlistenerreportv1": 131,
    "icmp6-multicastlistenerdone": 132, "icmp6-routersolicit": 133, "icmp6-routeradvert": 134,
    "icmp6-neighborsolicit": 135, "icmp6-neighboradvert": 136, "icmp6-redirect": 137,
    "icmp6-routerrenum": 138, "icmp6-nodeinformationquery": 139,
    "icmp6-nodeinformationresponse": 140, "icmp6-ineighbordiscoverysolicit": 141,
    "icmp6-ineighbordiscoveryadvert": 142, "icmp6-multicastlistenerreportv2": 143,
    "icmp6-homeagentdiscoveryrequest": 144, "icmp6-homeagentdiscoveryreply": 145,
    "icmp6-mobileprefixsolicit": 146, "icmp6-mobileprefixadvert": 147,
    "icmp6-certpathsolicit": 148, "icmp6-certpathadvert": 149,
    "icmp6-multicastrouteradvert": 151, "icmp6-multicastroutersolicit": 152,
    "icmp6-multicastrouterterm": 153,
}
RELOPS = {"=": "==", "==": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
# Binary arithmetic operators by precedence level, lowest first (libpcap's grammar.y).
ARITH_LEVELS = (("|",), ("^",), ("&",), ("<<", ">>"), ("+", "-"), ("*", "/", "%"))
_PRECEDENCE = {op: level for level, ops in enumerate(ARITH_LEVELS) for op in ops}
_ARITH_OPS = frozenset(_PRECEDENCE)


# ---- AST --------------------------------------------------------------------------

@dataclass(frozen=True)
class Qual:
    """Qualifiers of a primitive: proto (ether, ip, tcp...), dir (src, dst, "src or dst",
    "src and dst") and addr (host, net, port, portrange, proto...). None = default."""
    proto: str | None = None
    dir: str | None = None
    addr: str | None = None


@dataclass(frozen=True)
class Value:
    """A primitive's operand as written: kind is num, hid (dotted IPv4), hid6, eid (MAC),
    id (a name), cidr4/cidr6 (with bits) or mask4 (with a dotted mask)."""
    kind: str
    text: str
    column: int
    number: int | None = None
    bits: int | None = None
    mask: str | None = None


@dataclass(frozen=True)
class Prim:
    qual: Qual
    value: Value
    column: int


@dataclass(frozen=True)
class ProtoName:
    """A protocol keyword on its own: tcp, ip6, arp ..."""
    name: str
    column: int


@dataclass(frozen=True)
class Special:
    """broadcast / multicast (with an optional protocol), inbound, outbound."""
    name: str
    proto: str | None
    column: int


@dataclass(frozen=True)
class LenCmp:
    """less N (len <= N) and greater N (len >= N)."""
    op: str
    value: int
    column: int


@dataclass(frozen=True)
class Encap:
    """vlan [id], mpls [label], pppoes [id], pppoed: they shift the offsets of what follows."""
    name: str
    value: int | None
    column: int


@dataclass(frozen=True)
class Llc:
    """llc, or llc with a frame kind (i, s, u) or an S/U subtype (rr, ui, ...)."""
    subtype: str | None
    column: int


# `llc X`: the frame kinds and the S and U subtypes pcap-filter(7) names.
LLC_SUBTYPES = ("i", "s", "u", "rr", "rnr", "rej", "ui", "ua", "disc", "dm", "sabme", "test",
                "xid", "frmr")
# IS-IS PDU-type groups, each a ProtoName.
ISIS_PDU_KEYWORDS = ("l1", "l2", "iih", "lsp", "snp", "csnp", "psnp")


@dataclass(frozen=True)
class WlanField:
    """802.11 frame control: `type T`, `type T subtype S`, `subtype S`, `dir D`; the
    names (or numbers) as written, resolved by the code generator."""
    field: str  # "type", "subtype" or "dir"
    type: Value | None
    subtype: Value | None
    column: int


@dataclass(frozen=True)
class LinkPrim:
    """A link type's own primitive: pflog (`on eth0`, `rnr 5`, `action pass`...), SunATM
    (`lane`, `oam`, `vpi 3`...), SS7 (`sio 3`, `opc 100`...); value None for the bare ones."""
    word: str
    value: Value | None
    column: int
    op: str = "=="  # SS7 fields, vpi and vci also take a comparison: `dpc > 2`


@dataclass(frozen=True)
class Num:
    value: int


@dataclass(frozen=True)
class PktLen:
    pass


@dataclass(frozen=True)
class Load:
    proto: str
    index: Arith
    size: int
    column: int


@dataclass(frozen=True)
class BinOp:
    op: str
    left: Arith
    right: Arith
    column: int


Arith = Union[Num, PktLen, Load, BinOp]  # noqa: UP007 - evaluated at import: 3.9 has no X | Y


@dataclass(frozen=True)
class Relation:
    op: str  # == != < <= > >=
    left: Arith
    right: Arith
    column: int


@dataclass(frozen=True)
class And:
    items: tuple = field(default_factory=tuple)


@dataclass(frozen=True)
class Or:
    items: tuple = field(default_factory=tuple)


@dataclass(frozen=True)
class Not:
    item: Node


@dataclass(frozen=True)
class Empty:
    """The empty expression: accept everything (as tcpdump does)."""


Node = Union[Prim, ProtoName, Special, LenCmp, Encap, Relation, WlanField, LinkPrim, And, Or, Not,
             Empty, Llc]  # noqa: UP007 - as Arith


# ---- parser -------------------------------------------------------------------------

_ID_KINDS = ("num", "hid", "hid6", "eid", "aid", "id")
_WLAN_FIELDS = ("type", "subtype", "dir")
# link-type words with a value after them, and bare ones
_LINK_VALUED = ("on", "ifname", "rnr", "rulenum", "srnr", "subrulenum", "rset", "ruleset", "action",
                "reason", "vpi", "vci", "sio", "opc", "dpc", "sls", "hsio", "hopc", "hdpc", "hsls")
_LINK_COMPARABLE = ("vpi", "vci", "sio", "opc", "dpc", "sls", "hsio", "hopc", "hdpc", "hsls")
_LINK_BARE = ("lane", "oamf4", "oamf4sc", "oamf4ec", "oam", "metac", "bcc", "sc", "ilmic",
              "connectmsg", "metaconnect", "fisu", "lssu", "msu", "hfisu", "hlssu", "hmsu")


class _Parser:
    def __init__(self, expression: str) -> None:
        self.expression = expression
        self.toks: list[Token] = tokenize(expression)
        self.pos = 0
        self.depth = 0
        # id(node) -> (depth of the tree under it, node); leaves are depth 0 and not kept.
        # The node is held so its id is not reused by another while parsing.
        self.depths: dict[int, tuple[int, Node]] = {}
        self.match = self._match_parens()

    # -- helpers
    def error(self, message: str, tok: Token | None = None) -> FilterError:
        tok = tok or self.peek()
        where = "at the end" if tok.kind == "end" else f"at column {tok.column}"
        if tok.kind == "end" and message.endswith(_describe(tok)):  # "found the end of the expression"
            return FilterError(message, expression=self.expression, column=tok.column)
        return FilterError(f"{message} {where}", expression=self.expression, column=tok.column)

    def peek(self, k: int = 0) -> Token:
        return self.toks[min(self.pos + k, len(self.toks) - 1)]

    def next(self) -> Token:
        t = self.toks[self.pos]
        if t.kind != "end":
            self.pos += 1
        return t

    def is_op(self, text: str, k: int = 0) -> bool:
        t = self.peek(k)
        return t.kind == "op" and t.text == text

    def is_kw(self, text: str, k: int = 0) -> bool:
        t = self.peek(k)
        return t.kind == "kw" and t.text == text

    def expect_op(self, text: str, what: str) -> Token:
        if not self.is_op(text):
            raise self.error(f"expected '{text}' {what}, found {_describe(self.peek())}")
        return self.next()

    def enter(self, tok: Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.too_deep(tok)

    def leave(self) -> None:
        self.depth -= 1

    def depth_of(self, node) -> int:
        return self.depths.get(id(node), (0,))[0]

    def grown(self, node, tok: Token, *children):
        """``node`` (made over ``children`` at ``tok``), once its depth is within bounds."""
        return self.record(node, 1 + max(self.depth_of(c) for c in children), tok)

    def record(self, node, depth: int, tok: Token):
        if depth > MAX_DEPTH:
            raise self.too_deep(tok)
        self.depths[id(node)] = (depth, node)
        return node

    def too_deep(self, tok: Token) -> FilterError:
        return self.error(f"expression nested too deeply (more than {MAX_DEPTH} levels)", tok)

    def _match_parens(self) -> dict[int, int]:
        match: dict[int, int] = {}
        stack: list[int] = []
        for i, t in enumerate(self.toks):
            if t.kind == "op" and t.text in "([":
                stack.append(i)
            elif t.kind == "op" and t.text in ")]":
                if not stack:
                    raise FilterError(f"unbalanced '{t.text}' at column {t.column}",
                                      expression=self.expression, column=t.column)
                j = stack.pop()
                if self.toks[j].text + t.text not in ("()", "[]"):
                    raise FilterError(f"'{self.toks[j].text}' at column {self.toks[j].column} "
                                      f"is closed by '{t.text}' at column {t.column}",
                                      expression=self.expression, column=t.column)
                match[j] = i
        if stack:
            t = self.toks[stack[-1]]
            raise FilterError(f"unclosed '{t.text}' at column {t.column}",
                              expression=self.expression, column=t.column)
        return match

    # -- grammar
    def parse(self) -> Node:
        if self.peek().kind == "end":
            return Empty()
        node, _ = self.expr()
        t = self.peek()
        if t.kind != "end":
            if t.kind == "op" and t.text == ")":
                raise self.error("unbalanced ')'", t)
            raise self.error(f"expected 'and' or 'or' before {_describe(t)}", t)
        return node

    def is_andor(self) -> str | None:
        t = self.peek()
        if t.kind == "kw" and t.text in ("and", "or"):
            return t.text
        if t.kind == "op" and t.text in ("&&", "||"):
            return "and" if t.text == "&&" else "or"
        return None

    def expr(self) -> tuple[Node, Qual | None]:
        node, q = self.term()
        chain = _Chain(self, node)
        while (op := self.is_andor()) is not None:
            optok = self.next()
            if self.starts_bare_id():
                if q is None:
                    raise self.error(f"{_describe(self.peek())} after '{optok.text}' needs a "
                                     "qualifier (host, net, port...) and there is none to inherit")
                rhs = self.bare_id(q)
            else:
                if self.peek().kind == "end":
                    raise self.error(f"expected an expression after '{optok.text}'")
                rhs, q = self.term()
            chain.add(op, rhs, optok)
        return chain.node(), q

    def starts_bare_id(self) -> bool:
        """Is the next thing a bare value (inheriting qualifiers), not a new term?"""
        i = 0
        while self.is_kw("not", i) or self.is_op("!", i):
            i += 1
        t = self.peek(i)
        if t.kind == "op" and t.text == "(":
            # "( 443 or 8080 )": a parenthesised group of bare values.
            close = self.match.get(self.pos + i)
            j = self.pos + i + 1
            if close is None:
                return False
            while j < close:
                tj = self.toks[j]
                if tj.kind in _ID_KINDS and tj.text not in CONSTANTS:
                    j += 1
                elif tj.kind in ("kw",) and tj.text in ("and", "or", "not", "mask"):
                    j += 1
                elif tj.kind == "op" and tj.text in ("(", ")", "&&", "||", "!", "/"):
                    j += 1
                else:
                    return False
            return True
        if t.kind not in _ID_KINDS:
            return False
        if t.kind == "id" and t.text in CONSTANTS:
            return False
        nxt = self.peek(i + 1)
        if nxt.kind == "op" and (nxt.text in _ARITH_OPS or nxt.text in RELOPS or nxt.text == "["):
            # "/" after an address is CIDR; otherwise arithmetic
            if nxt.text == "/" and t.kind in ("hid", "hid6"):
                return True
            return False
        return True

    def bare_id(self, q: Qual) -> Node:
        """id: a value with inherited qualifiers; also 'not id' and '( id and/or id )'."""
        t = self.peek()
        if (t.kind == "kw" and t.text == "not") or (t.kind == "op" and t.text == "!"):
            self.next()
            self.enter(t)
            inner = self.bare_id(q)
            self.leave()
            return self.grown(Not(inner), t, inner)
        if t.kind == "op" and t.text == "(":
            self.next()
            self.enter(t)
            chain = _Chain(self, self.bare_id(q))
            while (op := self.is_andor()) is not None:
                optok = self.next()
                chain.add(op, self.bare_id(q), optok)
            node = chain.node()
            self.expect_op(")", f"to close the '(' at column {t.column}")
            self.leave()
            return node
        value = self.value()
        return Prim(q, value, value.column)

    def term(self) -> tuple[Node, Qual | None]:
        t = self.peek()
        if (t.kind == "kw" and t.text == "not") or (t.kind == "op" and t.text == "!"):
            self.next()
            self.enter(t)
            if self.peek().kind == "end":
                raise self.error(f"expected an expression after '{t.text}'")
            node, q = self.term()
            self.leave()
            return self.grown(Not(node), t, node), q
        if t.kind == "op" and t.text == "(":
            close = self.match[self.pos]
            after = self.toks[close + 1]
            if not (after.kind == "op" and (after.text in _ARITH_OPS or after.text in RELOPS)):
                self.next()
                self.enter(t)
                if self.is_op(")"):
                    raise self.error("empty parentheses", self.peek())
                node, q = self.expr()
                self.expect_op(")", f"to close the '(' at column {t.column}")
                self.leave()
                return node, q
            return self.relation(), None
        if t.kind == "end":
            raise self.error("expected an expression")
        if t.kind == "kw":
            return self.keyword_term()
        if t.kind == "op" and t.text == "-":
            return self.relation(), None
        if t.kind == "num" or (t.kind == "id" and t.text in CONSTANTS):
            return self.relation(), None
        if t.kind in _ID_KINDS:
            raise self.error(f"{_describe(t)} needs a qualifier in front of it "
                             "(host, net, port, ...)", t)
        raise self.error(f"unexpected {_describe(t)}", t)

    def keyword_term(self) -> tuple[Node, Qual | None]:
        t = self.peek()
        w = t.text
        if w == "wlan" and self.peek(1).kind == "kw" and self.peek(1).text in _WLAN_FIELDS:
            self.next()
            return self.wlan_field(), None
        if w in _WLAN_FIELDS:
            return self.wlan_field(), None
        if w in _LINK_BARE:
            self.next()
            return LinkPrim(w, None, t.column), None
        if w in _LINK_VALUED:
            self.next()
            op = "=="
            nxt = self.peek()
            if nxt.kind == "op" and nxt.text in RELOPS and w in _LINK_COMPARABLE:
                op = RELOPS[self.next().text]
                if self.peek().kind != "num":
                    raise self.error(f"expected a number after '{w} {nxt.text}', found "
                                     f"{_describe(self.peek())}")
            if self.peek().kind not in ("num", "id"):
                raise self.error(f"expected a value after '{w}', found {_describe(self.peek())}")
            return LinkPrim(w, self.value(), t.column, op), None
        if w in PROTOS:
            nxt = self.peek(1)
            if nxt.kind == "op" and nxt.text == "[":
                return self.relation(), None
            if nxt.kind == "kw" and nxt.text in ("broadcast", "multicast"):
                self.next()
                self.next()
                return Special(nxt.text, LINK_ALIASES.get(w, w), t.column), None
            if nxt.kind == "kw" and (nxt.text in DIRS or nxt.text in ADDRS):
                return self.head_and_id()
            self.next()
            return ProtoName(w, t.column), None
        if w in DIRS or w in ADDRS:
            return self.head_and_id()
        if w == "len":
            return self.relation(), None
        if w in ("broadcast", "multicast"):
            self.next()
            return Special(w, None, t.column), None
        if w in ("inbound", "outbound"):
            self.next()
            return Special(w, None, t.column), None
        if w in ("less", "greater"):
            self.next()
            n = self.peek()
            if n.kind != "num":
                raise self.error(f"expected a number after '{w}', found {_describe(n)}", n)
            self.next()
            return LenCmp(w, n.value, t.column), None
        if w in ("vlan", "mpls", "pppoes"):
            self.next()
            value = None
            if self.peek().kind == "num":
                value = self.next().value
            return Encap(w, value, t.column), None
        if w == "pppoed":
            self.next()
            return Encap(w, None, t.column), None
        if w in ("llc", "geneve", "vxlan") or w in ISIS_PDU_KEYWORDS:
            return self.network_term(), None
        if w in ("and", "or"):
            raise self.error(f"expected an expression before '{w}'", t)
        raise self.error(f"'{w}' is not supported by purepcap's filter", t)

    def network_term(self) -> Node:
        """llc [subtype], geneve [vni], vxlan [vni], and the IS-IS PDU groups (l1, csnp...)."""
        t = self.next()
        w = t.text
        if w == "llc":
            n = self.peek()
            # (`rnr` is also a pflog keyword: libpcap's grammar takes it here too)
            if n.kind in ("id", "kw") and n.text in LLC_SUBTYPES:
                self.next()
                return Llc(n.text, t.column)
            if n.kind == "id":
                raise self.error(f"unknown LLC type name '{shown(n.text)}' (use one of "
                                 f"{', '.join(LLC_SUBTYPES)})", n)
            return Llc(None, t.column)
        if w in ("geneve", "vxlan"):
            value = self.next().value if self.peek().kind == "num" else None
            return Encap(w, value, t.column)
        return ProtoName(w, t.column)

    def wlan_field(self) -> WlanField:
        """type T [subtype S] | subtype S | dir D (libpcap's p80211 rule)."""
        t = self.next()
        field, typ, sub = t.text, None, None

        def operand(kinds: tuple[str, ...]) -> Value:
            v = self.peek()
            if v.kind not in kinds:
                raise self.error(f"expected a name{' or number' if 'num' in kinds else ''} "
                                 f"after '{self.toks[self.pos - 1].text}', found {_describe(v)}", v)
            return self.value()

        if field == "type":
            typ = operand(("num", "id"))
            if self.is_kw("subtype"):
                self.next()
                field = "subtype"
                sub = operand(("num", "id"))
        elif field == "subtype":
            sub = operand(("id",))
        else:
            typ = operand(("num", "id"))
        return WlanField(field, typ, sub, t.column)

    def head_and_id(self) -> tuple[Node, Qual]:
        start = self.peek()
        proto = dirq = addr = None
        if self.peek().text in PROTOS and self.peek().kind == "kw":
            proto = self.next().text
        if self.peek().kind == "kw" and self.peek().text in DIRS:
            d = self.next()
            dirq = d.text
            if self.peek().kind == "kw" and self.peek().text in ("or", "and") \
                    and self.peek(1).kind == "kw" and self.peek(1).text in DIRS:
                conj = self.next().text
                other = self.next().text
                if other == dirq:
                    raise self.error(f"'{dirq} {conj} {other}' names the same direction twice", d)
                dirq = f"src {conj} dst"
            if self.peek().kind == "kw" and self.peek().text in ADDRS:
                addr = self.next().text
            elif not (self.starts_value() or self.is_kw("not") or self.is_op("!")
                      or self.is_op("(")):
                raise self.error(f"expected host, net or port after '{d.text}'", self.peek())
        elif self.peek().kind == "kw" and self.peek().text in ADDRS:
            addr = self.next().text
        if addr == "gateway":
            raise self.error("'gateway' is not supported: libpcap's gateway needs a host name "
                             "looked up in both /etc/ethers and /etc/hosts, and purepcap never "
                             "resolves names (write 'ether host MAC and not host IP')", start)
        if addr == "protochain" and dirq is not None:
            raise self.error(f"'{dirq}' cannot qualify 'protochain'", start)
        q = Qual(LINK_ALIASES.get(proto, proto), dirq, addr)
        if addr == "proto" and self.peek().kind == "kw":
            kw = self.peek().text
            raise self.error(f"'{kw}' is a keyword here: write '\\{kw}' for the protocol name")
        if self.is_kw("not") or self.is_op("!") or self.is_op("("):
            # `src not 1.1`, `host (a or b)`: libpcap's `not id` and `( pid )`
            return self.bare_id(q), q
        if not self.starts_value():
            last = self.toks[self.pos - 1]
            raise self.error(f"expected a value after '{shown(last.text)}', found {_describe(self.peek())}")
        value = self.value()
        return Prim(q, value, start.column), q

    def starts_value(self) -> bool:
        return self.peek().kind in _ID_KINDS

    def value(self) -> Value:
        t = self.next()
        if t.kind == "num":
            return Value("num", t.text, t.column, number=t.value)
        if t.kind == "hid":
            if self.is_op("/"):
                self.next()
                b = self.next()
                if b.kind != "num":
                    raise self.error(f"expected a prefix length after '/', found {_describe(b)}", b)
                return Value("cidr4", f"{t.text}/{b.text}", t.column, bits=b.value)
            if self.is_kw("mask"):
                self.next()
                m = self.next()
                if m.kind != "hid":
                    raise self.error(f"expected a dotted netmask after 'mask', found {_describe(m)}", m)
                return Value("mask4", f"{t.text} mask {m.text}", t.column, mask=m.text)
            return Value("hid", t.text, t.column)
        if t.kind == "hid6":
            if self.is_op("/"):
                self.next()
                b = self.next()
                if b.kind != "num":
                    raise self.error(f"expected a prefix length after '/', found {_describe(b)}", b)
                return Value("cidr6", f"{t.text}/{b.text}", t.column, bits=b.value)
            return Value("hid6", t.text, t.column)
        if t.kind == "eid":
            return Value("eid", t.text, t.column)
        if t.kind == "aid":
            return Value("aid", t.text, t.column, number=int(t.text[1:], 16))
        if t.kind == "id":
            return Value("id", t.text, t.column)
        self.pos -= 1 if t.kind != "end" else 0
        raise self.error(f"expected a value, found {_describe(t)}", t)

    # -- arithmetic
    def relation(self) -> Relation:
        start = self.peek()
        left = self.arith()
        t = self.peek()
        if not (t.kind == "op" and t.text in RELOPS):
            raise self.error(f"expected a comparison (=, !=, <, <=, >, >=) after the "
                             f"arithmetic starting at column {start.column}, found {_describe(t)}", t)
        self.next()
        right = self.arith()
        return self.grown(Relation(RELOPS[t.text], left, right, t.column), t, left, right)

    def arith(self):
        """Binary arithmetic by operator precedence (libpcap's levels, all associating
        left), with explicit stacks: a chain of operators costs no recursion."""
        operands = [self.unary()]
        ops: list[Token] = []
        while self.peek().kind == "op" and self.peek().text in _PRECEDENCE:
            t = self.next()
            while ops and _PRECEDENCE[ops[-1].text] >= _PRECEDENCE[t.text]:
                self.reduce(operands, ops)
            ops.append(t)
            operands.append(self.unary())
        while ops:
            self.reduce(operands, ops)
        return operands[0]

    def reduce(self, operands: list, ops: list[Token]) -> None:
        t = ops.pop()
        right = operands.pop()
        left = operands.pop()
        operands.append(self.grown(BinOp(t.text, left, right, t.column), t, left, right))

    def unary(self):
        t = self.peek()
        if t.kind == "op" and t.text == "-":
            self.next()
            self.enter(t)
            operand = self.unary()
            self.leave()
            return self.grown(BinOp("-", Num(0), operand, t.column), t, operand)
        if t.kind == "op" and t.text == "(":
            self.next()
            self.enter(t)
            inner = self.arith()
            self.expect_op(")", f"to close the '(' at column {t.column}")
            self.leave()
            return inner
        if t.kind == "num":
            self.next()
            return Num(t.value)  # (the lexer refuses numbers past 32 bits)
        if t.kind == "id" and t.text in CONSTANTS:
            self.next()
            return Num(CONSTANTS[t.text])
        if t.kind == "kw" and t.text == "len":
            self.next()
            return PktLen()
        if t.kind == "kw" and t.text in PROTOS and self.is_op("[", 1):
            self.next()
            br = self.next()
            self.enter(br)
            index = self.arith()
            size = 1
            if self.is_op(":"):
                self.next()
                s = self.next()
                if s.kind != "num":
                    raise self.error(f"expected a size (1, 2 or 4) after ':', found {_describe(s)}", s)
                if s.value not in (1, 2, 4):
                    raise self.error("data size must be 1, 2, or 4", s)
                size = s.value
            self.expect_op("]", f"to close the '[' at column {br.column}")
            self.leave()
            return self.grown(Load(LOAD_ALIASES.get(t.text, t.text), index, size, t.column), br,
                              index)
        if t.kind == "id":
            raise self.error(f"unknown name '{shown(t.text)}' in arithmetic", t)
        raise self.error(f"expected a number, len or proto[offset], found {_describe(t)}", t)


class _Chain:
    """Builds left-associative and/or chains of equal precedence as flat n-ary nodes;
    each change between and/or nests the chain so far one level deeper."""

    def __init__(self, parser: _Parser, first: Node) -> None:
        self.parser = parser
        self.items = [first]
        self.deepest = parser.depth_of(first)
        self.op: str | None = None
        self.optok: Token | None = None

    def add(self, op: str, item: Node, optok: Token) -> None:
        if self.op is not None and op != self.op:
            nested = self.node()
            self.items = [nested]
            self.deepest = self.parser.depth_of(nested)
        self.op = op
        self.optok = optok
        self.items.append(item)
        self.deepest = max(self.deepest, self.parser.depth_of(item))
        if self.deepest >= MAX_DEPTH:  # the node made of these would be too deep: say so now
            raise self.parser.too_deep(optok)

    def node(self) -> Node:
        if self.op is None:
            return self.items[0]
        node = (And if self.op == "and" else Or)(tuple(self.items))
        return self.parser.record(node, self.deepest + 1, self.optok)


def _describe(t: Token) -> str:
    if t.kind == "end":
        return "the end of the expression"
    return f"'{shown(t.text)}'"


def parse(expression: str) -> Node:
    """Parse a pcap-filter expression into an AST (raises FilterError)."""
    if not isinstance(expression, str):
        raise FilterError(f"a filter expression must be a str, not {type(expression).__name__}")
    try:
        return _Parser(expression).parse()
    except RecursionError:
        raise stack_exhausted(expression) from None


def stack_exhausted(expression: str) -> FilterError:
    """The error for a RecursionError met while handling an expression within MAX_DEPTH:
    the walks need about 200 frames at MAX_DEPTH, so the caller's stack was nearly full."""
    return FilterError(f"expression too deeply nested for the Python stack left to this call "
                       f"(it allows {MAX_DEPTH} levels with about 200 frames free)",
                       expression=expression)
