# Tests after `geneve` / `vxlan`: the encapsulated packet, at offsets known only at run time.
#
# Strategy, as libpcap's gencode (gen_geneve_offsets; VXLAN as later libpcap): lowering
# writes what follows a tunnel with symbolic offsets (base(level, LINK/TYPE/NET) + n:
# byte n of the inner link header, of its type field, of its network layer), and the
# tunnel as ("do", steps, level) nodes (steps as in _linkgen's preamble) that fill three
# scratch slots once its header has matched. relocate() then turns every symbolic load
# into a load indexed by its slot, and refuses an expression in which such a load could
# run on a path where its tunnel did not match: libpcap's program reads scratch memory
# it never set there (the Linux kernel refuses such a program; libpcap's interpreter
# reads whatever the stack holds), so no verdict is defined to agree with.
#
# Geneve (RFC 8926): the inner packet starts after the 8-byte header and its options
# (4 * the low 6 bits of byte 0); protocol 0x6558 is an Ethernet frame, any other
# protocol is the network layer itself, typed by the Geneve protocol field (libpcap
# reads it as the ethertype). VXLAN (RFC 7348): an Ethernet frame after 8 bytes.
from __future__ import annotations

from ..errors import FilterError

__all__ = ["SPAN", "MAX_TUNNELS", "LINK", "TYPE", "NET", "base", "relative", "geneve_steps",
           "vxlan_steps", "start_slot", "relocate", "uses_tunnels"]

# Symbolic offsets: multiples of SPAN, above every cBPF offset and every other symbolic
# base (_linkgen's are below 2**32).
SPAN = 1 << 40
MAX_TUNNELS = 3
LINK, TYPE, NET = 0, 1, 2
_FIRST_SLOT = 13  # slots 13, 12, 11 for the first tunnel, 10, 9, 8 for a nested one, ...
ETHERTYPE_TEB = 0x6558  # transparent Ethernet bridging: Geneve carries an Ethernet frame


def base(level: int, what: int) -> int:
    return SPAN * (1 + 3 * level + what)


def _slot(level: int, what: int) -> int:
    return _FIRST_SLOT - 3 * level - what


def start_slot(level: int) -> int:
    """The slot each alternative of the outer test fills with where the tunnel header
    starts (the NET slot, overwritten by the steps that follow)."""
    return _slot(level, NET)


def relative(off: int) -> int:
    """An offset's distance from its base (itself when it is not symbolic)."""
    return off % SPAN if off >= SPAN else off


def _plus(a, n: int):
    return a if n == 0 else ("alu", "+", a, ("k", n))


def geneve_steps(level: int) -> list:
    """The start of the Geneve header in the NET slot -> the three offsets."""
    g = ("mem", _slot(level, NET))
    hdr, typ, net = (_slot(level, w) for w in (LINK, TYPE, NET))
    options = ("alu", "*", ("alu", "&", ("ldi", 1, 0, g), ("k", 0x3F)), ("k", 4))
    return [("set", typ, _plus(g, 2)),
            ("set", hdr, ("alu", "+", _plus(options, 8), g)),
            ("set", net, ("mem", hdr)),
            ("if", ("cmp", "jeq", ("ldi", 2, 0, ("mem", typ)), ("k", ETHERTYPE_TEB)),
             [("set", typ, _plus(("mem", hdr), 12)), ("set", net, _plus(("mem", hdr), 14))])]


def vxlan_steps(level: int) -> list:
    g = ("mem", _slot(level, NET))
    hdr, typ, net = (_slot(level, w) for w in (LINK, TYPE, NET))
    return [("set", hdr, _plus(g, 8)), ("set", typ, _plus(g, 20)), ("set", net, _plus(g, 22))]


def uses_tunnels(t) -> bool:
    """Does the IR hold a tunnel? (A loop, not recursion: it runs on every IR, however
    deep, with whatever stack the caller has left.)"""
    stack = [t]
    while stack:
        t = stack.pop()
        if isinstance(t, tuple) and t and t[0] == "do":
            return True
        stack.extend(c for c in t if isinstance(c, (tuple, list)))
    return False


class _Relocate:
    def __init__(self, expression: str, columns: dict) -> None:
        self.expression = expression
        self.columns = columns
        self.known: frozenset = frozenset()  # tunnels matched on the path being walked

    def _need(self, level: int) -> None:
        if level not in self.known:
            column = self.columns.get(level)
            raise FilterError(
                f"a test after the tunnel at column {column} reads the packet it encapsulates "
                "where that tunnel may not have matched (libpcap's program reads scratch "
                "memory it never set there); put what follows the tunnel under it, as in "
                "`geneve and (...)`", expression=self.expression, column=column)

    def _split(self, off: int):
        """(the slot value, offset from it) of a symbolic offset, else None."""
        if off < SPAN:
            return None
        i, rel = divmod(off, SPAN)
        level, what = divmod(i - 1, 3)
        self._need(level)
        return ("mem", _slot(level, what)), rel

    def value(self, v):
        kind = v[0]
        if kind == "ld":
            s = self._split(v[2])
            return v if s is None else ("ldi", v[1], s[1], s[0])
        if kind == "ldi":
            idx = self.value(v[3])
            s = self._split(v[2])
            if s is None:
                return ("ldi", v[1], v[2], idx)
            return ("ldi", v[1], s[1], ("alu", "+", s[0], idx))
        if kind == "msh":
            s = self._split(v[1])
            if s is None:
                return v
            ihl = ("alu", "&", ("ldi", 1, s[1], s[0]), ("k", 15))
            return ("alu", "<<", ihl, ("k", 2))
        if kind == "off":  # an offset as a value: a slot plus a constant, or a constant
            s = self._split(v[1])
            if s is not None:
                return _plus(s[0], s[1])
            return v if v[1] >= (1 << 29) else ("k", v[1])  # (_linkgen's bases: its finish)
        if kind == "alu":
            return ("alu", v[1], self.value(v[2]), self.value(v[3]))
        return v

    def steps(self, steps: list) -> list:
        out = []
        for step in steps:
            if step[0] == "set":
                out.append(("set", step[1], self.value(step[2])))
            elif step[0] == "if":
                known = self.known
                test = self.test(step[1])[0]
                self.known = known
                out.append(("if", test, self.steps(step[2])))
            else:
                out.append(("need", self.test(step[1])[0]))
        return out

    def test(self, t):
        """(t relocated, tunnels known matched when it is true, ... when it is false),
        walking in evaluation order from self.known."""
        kind = t[0]
        known = self.known
        if kind in ("and", "or"):
            items = []
            other = None
            for item in t[1]:
                new, on_true, on_false = self.test(item)
                items.append(new)
                go_on, leave = (on_true, on_false) if kind == "and" else (on_false, on_true)
                other = leave if other is None else other & leave
                self.known = go_on
            self.known = known
            if kind == "and":
                return (kind, items), go_on, other
            return (kind, items), other, go_on
        if kind == "not":
            new, on_true, on_false = self.test(t[1])
            return ("not", new), on_false, on_true
        if kind == "cmp":
            return ("cmp", t[1], self.value(t[2]), self.value(t[3])), known, known
        if kind == "do":
            steps = self.steps(t[1])
            done = known if t[2] is None else known | {t[2]}
            return ("do", steps, t[2]), done, known
        if kind == "chain":
            if t[1] >= SPAN:
                raise AssertionError("protochain after a tunnel is refused when lowering")
            return t, known, known
        return t, known, known


def relocate(ir, expression: str, columns: dict):
    """The IR with its tunnel-relative loads made slot-indexed; FilterError where one
    could run without its tunnel having matched (columns: level -> where the tunnel is
    written, for the message)."""
    return _Relocate(expression, columns).test(ir)[0]
