# Offline matching: the boolean IR compiled to one Python function per link type.
#
# Strategy (chosen by measurement, see bench/bench_filter.py): running the cBPF in
# the pure-Python interpreter costs 3-9 us a packet here, more than reading it;
# Python source generated from the same IR the BPF comes from, compiled once per
# link type, costs about 0.2 us for `tcp port 80`. Its byte test (`test_for`) runs in
# the container reader before a Packet is made, so a rejected packet costs no Packet:
# `open(filter="tcp port 80")` is +5-12% on reading here. The generated function
# evaluates the tests in the same order with the same short-circuits as the BPF jumps.
# A load past the captured bytes raises IndexError or struct.error and a run-time
# division by zero raises ZeroDivisionError; each is caught once around the whole
# expression and rejects the packet, which is exactly cBPF's "return 0". So
# run_bpf(compile_bpf(e)) and the matcher agree packet by packet.
from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from ..errors import FilterError
from ..linktypes import MAX_SNAPLEN
from . import _bpf as bpf
from ._codegen import CHAIN_EXTENSIONS, CHAIN_STEPS, emit_bpf, lower
from ._lexer import shown
from ._parser import Node, stack_exhausted
from ._tunnel import uses_tunnels

__all__ = ["python_source", "compile_python", "build_matcher"]

_H = struct.Struct(">H").unpack_from
_W = struct.Struct(">I").unpack_from
_ABORT = (IndexError, struct.error, ZeroDivisionError)
_M32 = 0xFFFFFFFF


def _shl(a: int, b: int) -> int:
    return (a << b) & _M32 if b < 32 else 0


def _chain(d, nl: int, a: int, x: int, target: int) -> bool:
    """protochain: the walk _codegen's cBPF unrolls (CHAIN_STEPS headers at most), with
    its loads in the same order, so a header cut short rejects the packet alike."""
    for _ in range(CHAIN_STEPS):
        if a == target:
            break
        if a in CHAIN_EXTENSIONS:
            a, x = d[x + nl], x + (d[x + nl + 1] + 1) * 8
        elif a == 51:  # AH, with libpcap's offset (see _codegen._Emitter._chain_step)
            a, x = d[x + nl], (d[x + 1 + nl] + 2) * 4
        else:
            break
    return a == target


def _msh_of(t) -> int | None:
    """The IPv4-header offset whose length a test's transport load uses, or None."""
    if t[0] == "cmp" and t[2][0] == "ldi" and t[2][3][0] == "msh" and t[3][0] == "k":
        return t[2][3][1]
    return None


# A list of alternatives (or of conditions) longer than this many characters of source
# is cut into helper functions of at most about this size, each compiled on its own:
# Python's compiler holds the whole tree of what it compiles (about 20 KB and 75 us a
# comparison), so a big expression compiled as one would peak at hundreds of MB.
_PART_LIMIT = 20_000


class _Py:
    def __init__(self) -> None:
        self.uses_len = False
        self.x_bound: int | None = None  # msh offset whose value the local x holds
        self.helpers: list[str] = []  # sources of `def _hN(d, n)`, each compiled alone
        self.args = "d, n"  # and m, the link preamble's slots, when there is one

    def split(self, kind: str, parts: list[str]) -> list[str]:
        """Consecutive parts grouped into helper functions: the same tests in the same
        order with the same short-circuits, and a failed load still raises out of them."""
        calls: list[str] = []
        group: list[str] = []
        size = 0
        for part in parts + [None]:
            if group and (part is None or size + len(part) > _PART_LIMIT):
                name = f"_h{len(self.helpers)}"
                self.helpers.append(f"def {name}({self.args}):\n    return ({f' {kind} '.join(group)})\n")
                calls.append(f"{name}({self.args})")
                group, size = [], 0
            if part is not None:
                group.append(part)
                size += len(part)
        self.uses_len = True  # the calls pass n
        return calls

    def value(self, v) -> str:
        kind = v[0]
        if kind == "k":
            return str(v[1])
        if kind == "len":
            self.uses_len = True
            return "n"
        if kind == "mem":
            return f"m[{v[1]}]"
        if kind == "ld":
            size, off = v[1], v[2]
            if size == 1:
                return f"d[{off}]"
            if size == 2:
                return f"(d[{off}]<<8|d[{off + 1}])"
            return f"_W(d,{off})[0]"
        if kind == "ldi":
            size, off, idx = v[1], v[2], v[3]
            i = self.value(idx)
            pos = f"{i}+{off}" if off else i
            if size == 1:
                return f"d[{pos}]"
            if size == 2:
                return f"_H(d,{pos})[0]"
            return f"_W(d,{pos})[0]"
        if kind == "msh":
            if self.x_bound == v[1]:
                return "x"
            return f"((d[{v[1]}]&15)<<2)"
        if kind == "alu":
            op, a, b = v[1], self.value(v[2]), self.value(v[3])
            if op in ("+", "-", "*"):
                return f"((({a}){op}({b}))&0xFFFFFFFF)"
            if op == "/":
                return f"(({a})//({b}))"
            if op == "%":
                return f"(({a})%({b}))"
            if op == "<<":
                return f"_shl({a},{b})"
            if op == ">>":
                return f"(({a})>>({b}))"
            return f"(({a}){op}({b}))"
        raise AssertionError(v)

    @staticmethod
    def _split_jset(t) -> str | None:
        """`ldh [o]; jset #m` as two byte tests (the later byte first, so a short
        packet still fails like the 2-byte load): truthy when the bits are set."""
        a, b = t[2], t[3]
        if a[0] == "ld" and a[1] == 2 and b[0] == "k" and b[1] & 0xFF and b[1] & 0xFF00 \
                and b[1] <= 0xFFFF:
            off = a[2]
            lo = f"d[{off + 1}]" if b[1] & 0xFF == 0xFF else f"d[{off + 1}]&{b[1] & 0xFF}"
            return f"{lo} or d[{off}]&{b[1] >> 8}"
        return None

    def preamble(self, steps: list, indent: str = "    ") -> str:
        """Statements of `_pre(d)`, which runs a link preamble (see _linkgen)."""
        out = []
        for step in steps:
            if step[0] == "set":
                out.append(f"{indent}m[{step[1]}] = {self.value(step[2])}\n")
            elif step[0] == "if":
                out.append(f"{indent}if {self.test(step[1])}:\n")
                out.append(self.preamble(step[2], indent + "    "))
            else:
                out.append(f"{indent}if not {self.test(step[1])}:\n{indent}    return None\n")
        return "".join(out)

    def test(self, t) -> str:
        kind = t[0]
        if kind == "pre":
            # the preamble's loads first: one past the captured bytes rejects the packet
            self.helpers.append("def _pre(d):\n    m = [0] * 16\n" + self.preamble(t[1])
                                + "    return m\n")
            self.args = "d, n, m"
            return f"((m:=_pre(d)) is not None and {self.test(t[2])})"
        if kind == "do":
            # a tunnel's offsets (_tunnel.py) into m, in a helper: its loads can raise
            name = f"_h{len(self.helpers)}"
            self.helpers.append(f"def {name}(d, m):\n" + self.preamble(t[1])
                                + "    return True\n")
            return f"{name}(d, m)"
        if kind == "true":
            return "True"
        if kind == "false":
            return "False"
        if kind == "not":
            inner = t[1]
            if inner[0] == "cmp" and inner[1] == "jset" and self._split_jset(inner):
                return f"(not ({self._split_jset(inner)}))"
            return f"(not {self.test(inner)})"
        if kind in ("or", "and"):
            items = _ipv4_first(t[1]) if kind == "or" else t[1]
            mshs = {_msh_of(i) for i in items}
            if len(mshs) == 1 and None not in mshs and self.x_bound is None:
                # Ports: compute the transport offset once. The first test reads
                # the same IHL byte, so no load runs that would not have run anyway.
                o = mshs.pop()
                self.x_bound = o
                body = f" {kind} ".join(self.test(i) for i in items)
                self.x_bound = None
                return f"((x:=((d[{o}]&15)<<2))>=0 and ({body}))"
            parts = [self.test(i) for i in items]
            if sum(map(len, parts)) > _PART_LIMIT:
                parts = self.split(kind, parts)
            return "(" + f" {kind} ".join(parts) + ")"
        if kind == "chain":
            _, nl, target, alternatives = t
            return "(" + " or ".join(
                f"({self.test(guard)} and _chain(d,{nl},{self.value(first)},"
                f"{self.value(start)},{target}))" for guard, first, start in alternatives) + ")"
        if kind == "cmp":
            jop, a, b = t[1], t[2], t[3]
            # 16-bit equality with a constant: compare the two bytes, the later one first
            # so a short packet still fails the same way as the 2-byte load.
            if jop == "jeq" and a[0] == "ld" and a[1] == 2 and b[0] == "k" and b[1] <= 0xFFFF:
                off = a[2]
                return f"(d[{off + 1}]=={b[1] & 0xFF} and d[{off}]=={b[1] >> 8})"
            if jop == "jeq" and a[0] == "ldi" and a[1] == 2 and a[3][0] == "msh" \
                    and b[0] == "k" and b[1] <= 0xFFFF:
                if self.x_bound == a[3][1]:
                    return (f"(d[x+{a[2] + 1}]=={b[1] & 0xFF} and d[x+{a[2]}]=={b[1] >> 8})")
                # a port: one index computation, then the two bytes, later one first
                return (f"(d[(x:=((d[{a[3][1]}]&15)<<2)+{a[2] + 1})]=={b[1] & 0xFF} "
                        f"and d[x-1]=={b[1] >> 8})")
            if jop == "jset" and self._split_jset(t):
                return f"(({self._split_jset(t)})!=0)"
            sa, sb = self.value(a), self.value(b)
            if jop == "jeq":
                return f"({sa}=={sb})"
            if jop == "jgt":
                return f"({sa}>{sb})"
            if jop == "jge":
                return f"({sa}>={sb})"
            return f"((({sa})&({sb}))!=0)"
        raise AssertionError(t)


def _guard(t):
    """(value, constant) of the equality test that must pass first for `t`, or None."""
    while t[0] == "and":
        t = t[1][0]
    if t[0] == "cmp" and t[1] == "jeq" and t[2][0] == "ld" and t[3][0] == "k":
        return t[2], t[3][1]
    return None


_IPV4_GUARDS = frozenset((0x0800, 0x40, 2, 0x02000000, 0x21))


def _ipv4_first(items: list) -> list:
    """Alternatives whose first tests read the same bytes and want different values
    are mutually exclusive, so their order changes neither verdicts nor which loads
    run; put IPv4 first, the common case (libpcap emits IPv6 first)."""
    guards = [_guard(i) for i in items]
    if len(items) < 2 or None in guards or len({g[0] for g in guards}) != 1 \
            or len({g[1] for g in guards}) != len(guards):
        return items
    return sorted(items, key=lambda i: _guard(i)[1] not in _IPV4_GUARDS)


def python_source(ir, linktype: int) -> tuple[list[str], str]:
    """Source of `_match(p)` (one packet) and `_select(packets)` (a generator of the
    matching ones, with the test inlined so no call is paid per packet) for packets
    of one link type; others go to `_other`. Before it, the sources of the helper
    functions it calls (a big expression's parts), to be compiled one at a time."""
    py = _Py()
    tunnels = ir[0] != "pre" and uses_tunnels(ir)
    if tunnels:
        py.args = "d, n, m"  # (before any helper is made)
    body = py.test(ir)
    if tunnels:
        body = f"((m:=[0]*16) is not None and {body})"
    length = "        n = p.length\n" if py.uses_len else ""
    return py.helpers, (
        "def _match(p):\n"
        f"    if p.linktype != {linktype}:\n"
        "        return _other(p)\n"
        "    d = p.data\n"
        + length.replace("        ", "    ", 1) +
        "    try:\n"
        f"        return {body}\n"
        "    except _ABORT:\n"
        "        return False\n"
        "\n"
        "def _test(d, n):\n"
        "    # the packet's bytes and original length, before any Packet is made\n"
        "    try:\n"
        f"        return {body}\n"
        "    except _ABORT:\n"
        "        return False\n"
        "\n"
        "def _select(packets):\n"
        "    # a pcap file has one link type: pick that link type's loop once\n"
        "    if getattr(packets, 'format', None) == 'pcap':\n"
        "        lt = getattr(packets, 'linktype', None)\n"
        f"        if lt == {linktype}:\n"
        "            return _select_one(packets)\n"
        "        if lt is not None:\n"
        "            return _select_for(lt)(packets)\n"
        "    return _select_any(packets)\n"
        "\n"
        "def _select_one(packets):\n"
        "    for p in packets:\n"
        "        d = p.data\n"
        + length +
        "        try:\n"
        f"            if {body}:\n"
        "                yield p\n"
        "        except _ABORT:\n"
        "            pass\n"
        "\n"
        "def _select_any(packets):\n"
        "    for p in packets:\n"
        f"        if p.linktype != {linktype}:\n"
        "            if _other(p):\n"
        "                yield p\n"
        "            continue\n"
        "        d = p.data\n"
        + length +
        "        try:\n"
        f"            if {body}:\n"
        "                yield p\n"
        "        except _ABORT:\n"
        "            pass\n"
    )


def compile_python(ir, linktype: int, other: Callable[[Any], bool], expression: str,
                   snaplen: int = MAX_SNAPLEN, select_for: Callable[[int], Any] | None = None
                   ) -> Callable[[Any], bool]:
    if select_for is None:
        def select_for(lt: int) -> Any:
            return lambda packets: (p for p in packets if other(p))
    env = {"_H": _H, "_W": _W, "_ABORT": _ABORT, "_shl": _shl, "_chain": _chain, "_other": other,
           "_select_for": select_for}
    try:
        helpers, src = python_source(ir, linktype)
        where = f"<filter {shown(expression)!r} linktype {linktype}>"
        for helper in helpers:
            exec(compile(helper, where, "exec"), env)  # noqa: S102 - as below
        code = compile(src, where, "exec")
        exec(code, env)  # noqa: S102 - our own generated source, no user text in it
        fn = env["_match"]
        fn.select = env["_select"]
        fn.test = env["_test"]
        return fn
    except (SyntaxError, RecursionError, MemoryError, ValueError):
        # Too deeply nested for Python's compiler: interpret the cBPF instead.
        try:
            program = emit_bpf(ir, snaplen, expression)
        except RecursionError:
            raise stack_exhausted(expression) from None
        run = bpf.run_bpf

        def _match(p) -> bool:
            if p.linktype != linktype:
                return other(p)
            return run(program, p.data, p.length) != 0

        _match.select = lambda packets: (p for p in packets if _match(p))
        _match.test = lambda d, n: run(program, d, n) != 0
        return _match


def build_matcher(expression: str, tree: Node) -> Callable[[Any], bool]:
    """The offline matcher: Ethernet is compiled inline now (the common case costs one
    call a packet); other link types are compiled on first sight and reached through
    one extra call. A link type the expression cannot apply to raises its FilterError
    when the first such packet arrives."""
    cache: dict[int, Callable[[Any], bool]] = {}

    def for_linktype(linktype: int) -> Callable[[Any], bool]:
        fn = cache.get(linktype)
        if fn is None:
            try:
                try:
                    ir = lower(tree, expression, linktype, offline=True)
                except RecursionError:
                    raise stack_exhausted(expression) from None
            except FilterError as exc:
                error = exc

                def fn(p, _error=error, _linktype=linktype):
                    if p.linktype != _linktype:
                        return other(p)
                    raise _error

                fn.select = lambda packets: (p for p in packets if fn(p))

                def test(d, n, _error=error):
                    raise _error
                fn.test = test
            else:
                fn = compile_python(ir, linktype, other, expression,
                                    select_for=lambda lt: for_linktype(lt).select)
            cache[linktype] = fn
        return fn

    def other(p) -> bool:
        return for_linktype(p.linktype)(p)

    matcher = for_linktype(1)
    # (data, length) -> bool for one link type: for readers that test a packet's bytes
    # before they make a Packet of it (purepcap.open(filter=))
    matcher.test_for = lambda linktype: for_linktype(linktype).test
    return matcher
