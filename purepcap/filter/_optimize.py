# A classic-BPF optimiser, so kernel programs are about as short as libpcap's -O.
#
# Strategy: cut the program into basic blocks (all jumps go forward, so the blocks in
# program order are a topological order) and repeat, until nothing changes:
#   - value numbering along every edge: what A, X and M[] hold (as value numbers for
#     "ldh [12]", "4*([14]&0xf)", "A & 0x1fff", ...), which packet bytes a load has
#     already proven present, and what the jumps taken so far say about each value
#     (one of a few constants, not equal to k, within [lo, hi], bits of a mask set or
#     clear);
#   - a statement that puts into a register the value it already holds is dropped, and
#     so is a run of statements that gives A the value it held (`ldb [x+0]; and #0xfc`
#     again); a slot read where its value is unknown holds that value until a store; a
#     load of what the other register holds becomes tax/txa;
#   - two tests that go the same way are swapped when A already holds the second one's
#     value (`src port 22 or dst port 22` once the dst port is loaded), if the second's
#     statements cannot fail and the first's can fail only on packets rejected anyway;
#   - jump threading: an edge goes straight to a block that every path from its target
#     reaches, following the tests decided on that edge (by what earlier jumps said) and
#     both ways of those that are not, when the blocks skipped leave every register that
#     block reads as it was on the edge;
#   - a statement whose result is never read is dropped;
#   - blocks that can only end in `ret #0` become `ret #0`; identical blocks are merged;
#     empty blocks are jumped over; a test whose two targets are the same is dropped;
#   - emitted, a block of statements that ends in a return falls into another block that
#     is only that return (one return instruction less).
# Unlike libpcap's optimiser, nothing here changes a verdict: a load past the captured
# bytes rejects the packet in the optimised program exactly when it does in the
# unoptimised one. A load (or an indirect load, or a division by X) is only dropped or
# jumped over when it cannot fail there (the same bytes, or for [x+k] bytes as far on
# from the same X, were loaded on every path to it), or when every path on from it that
# can accept loads bytes at least as far (its "guard": a packet the load would reject is
# rejected there anyway). Tests prove the
# verdicts equal with run_bpf on every packet of the corpus and on generated packets cut
# short anywhere. optimize(exact=False) works in libpcap's model instead, where loads
# cannot fail (tests use it to show what the rest of the difference in length is).
from __future__ import annotations

from . import _bpf as bpf

__all__ = ["optimize"]

_MAX_ROUNDS = 30
_MAX_VALUES = 16
_UNKNOWN_RANGE = (0, bpf.M32)
_SIZES = {bpf.W: 4, bpf.H: 2, bpf.B: 1}


class _Block:
    __slots__ = ("pc", "stmts", "kind", "code", "k", "jt", "jf")

    def __init__(self, pc: int) -> None:
        self.pc = pc  # the block's place in program order (its first instruction's, first)
        self.stmts: list[tuple[int, int, int, int]] = []
        self.kind = "jmp"  # "ret" (code, k), "jmp" (to jt) or "cond" (code, k, jt, jf)
        self.code = 0
        self.k = 0
        self.jt: _Block | None = None
        self.jf: _Block | None = None

    def successors(self) -> list[_Block]:
        if self.kind == "ret":
            return []
        if self.kind == "jmp":
            return [self.jt]
        return [self.jt, self.jf]

    def key(self) -> tuple:
        """What the block does: identical keys are interchangeable blocks."""
        return (tuple(self.stmts), self.kind, self.code, self.k, id(self.jt), id(self.jf))


def _blocks(program) -> _Block:
    """The entry block of the program's control-flow graph."""
    n = len(program)
    leaders = {0}
    for pc, (code, jt, jf, k) in enumerate(program):
        cls = code & 7
        if cls == bpf.JMP:
            if code & 0xF0 == bpf.JA:
                leaders.add(pc + 1 + k)
            else:
                leaders.update((pc + 1 + jt, pc + 1 + jf))
            leaders.add(pc + 1)
        elif cls == bpf.RET:
            leaders.add(pc + 1)
    leaders = sorted(x for x in leaders if x < n)
    blocks = {pc: _Block(pc) for pc in leaders}
    for i, start in enumerate(leaders):
        end = leaders[i + 1] if i + 1 < len(leaders) else n
        b = blocks[start]
        for pc in range(start, end):
            code, jt, jf, k = program[pc]
            cls = code & 7
            if cls == bpf.RET:
                b.kind, b.code, b.k = "ret", code, k
                break
            if cls == bpf.JMP:
                if code & 0xF0 == bpf.JA:
                    b.kind, b.jt = "jmp", blocks[pc + 1 + k]
                else:
                    b.kind, b.code, b.k = "cond", code, k
                    b.jt, b.jf = blocks[pc + 1 + jt], blocks[pc + 1 + jf]
                break
            b.stmts.append(program[pc])
        else:
            b.kind, b.jt = "jmp", blocks[end]  # falls into the next block
    return blocks[0]


def _reachable(entry: _Block) -> list[_Block]:
    """The blocks reachable from entry, in program order."""
    seen = {id(entry): entry}
    todo = [entry]
    while todo:
        for s in todo.pop().successors():
            if id(s) not in seen:
                seen[id(s)] = s
                todo.append(s)
    return sorted(seen.values(), key=lambda b: b.pc)


# ---- values ---------------------------------------------------------------------------

class _Values:
    """Value numbers: one int per distinct computation, and the constant each holds."""

    def __init__(self) -> None:
        self.numbers: dict[tuple, int] = {}
        self.constant: dict[int, int] = {}
        self.width: dict[int, int] = {}  # vn -> the largest value it can hold

    def of(self, key: tuple) -> int:
        vn = self.numbers.get(key)
        if vn is None:
            vn = self.numbers[key] = len(self.numbers)
            if key[0] == "k":
                self.constant[vn] = key[1]
            elif key[0] in ("ld", "ldi"):
                self.width[vn] = (1 << (8 * key[1])) - 1
            elif key[0] == "msh":
                self.width[vn] = 60
        return vn

    def k(self, n: int) -> int:
        return self.of(("k", n & bpf.M32))

    def alu(self, op: int, a: int | None, b: int | None, where: tuple) -> int:
        if a is None or b is None:
            return self.of(("opaque",) + where)
        ca, cb = self.constant.get(a), self.constant.get(b)
        if ca is not None and cb is not None:
            folded = _fold(op, ca, cb)
            if folded is not None:
                return self.k(folded)
        return self.of(("alu", op, a, b))


def _holds(op: int, a: int, k: int) -> bool:
    if op == bpf.JEQ:
        return a == k
    if op == bpf.JGT:
        return a > k
    if op == bpf.JGE:
        return a >= k
    return a & k != 0


def _fold(op: int, a: int, b: int) -> int | None:
    m = bpf.M32
    if op == bpf.ADD:
        return (a + b) & m
    if op == bpf.SUB:
        return (a - b) & m
    if op == bpf.MUL:
        return (a * b) & m
    if op == bpf.DIV:
        return a // b if b else None
    if op == bpf.MOD:
        return a % b if b else None
    if op == bpf.AND:
        return a & b
    if op == bpf.OR:
        return a | b
    if op == bpf.XOR:
        return a ^ b
    if op == bpf.LSH:
        return (a << b) & m if b < 32 else 0
    if op == bpf.RSH:
        return a >> b if b < 32 else 0
    return None


class _State:
    """What is known at one point of one path (or, met, of all paths to a block)."""

    __slots__ = ("a", "x", "mem", "avail", "known", "info", "xfacts")

    def __init__(self) -> None:
        self.a: int | None = None
        self.x: int | None = None
        self.mem: tuple = (None,) * bpf.MEMWORDS
        self.avail = 0  # packet bytes [0, avail) proven captured by a load that succeeded
        # indirect loads and divisions that succeeded (their value numbers), and for each
        # (vn of X, k + size) of an indirect load that succeeded
        self.known: frozenset = frozenset()
        # vn -> (lo, hi, not-equal constants, ((mask, any bit set?), ...), the values it
        # can have (a frozenset of at most _MAX_VALUES) or None for any)
        self.info: dict[int, tuple] = {}
        self.xfacts: dict[tuple, bool] = {}  # (vn, jump op, vn of X) -> outcome

    def copy(self) -> _State:
        s = _State()
        s.a, s.x, s.mem, s.avail, s.known = self.a, self.x, self.mem, self.avail, self.known
        s.info = dict(self.info)
        s.xfacts = dict(self.xfacts)
        return s

    def same_registers(self, other: _State, live: frozenset) -> bool:
        for r in live:
            mine, theirs = ((self.a, other.a) if r == "A" else (self.x, other.x) if r == "X"
                            else (self.mem[r], other.mem[r]))
            if mine is None or mine != theirs:
                return False
        return True


def _meet(states: list[_State]) -> _State:
    first = states[0]
    if len(states) == 1:
        return first.copy()
    s = _State()
    s.a = first.a if all(t.a == first.a for t in states) else None
    s.x = first.x if all(t.x == first.x for t in states) else None
    s.mem = tuple(v if all(t.mem[i] == v for t in states) else None
                  for i, v in enumerate(first.mem))
    s.avail = min(t.avail for t in states)
    s.known = frozenset.intersection(*(t.known for t in states))
    info = {}
    for vn, (lo, hi, ne, js, vals) in first.info.items():
        for t in states[1:]:
            other = t.info.get(vn)
            if other is None:
                break
            lo, hi = min(lo, other[0]), max(hi, other[1])
            ne = ne & other[2]
            js = tuple(j for j in js if j in other[3])
            vals = None if vals is None or other[4] is None else vals | other[4]
            if vals is not None and len(vals) > _MAX_VALUES:
                vals = None
        else:
            info[vn] = (lo, hi, ne, js, vals)
    s.info = info
    s.xfacts = {f: v for f, v in first.xfacts.items() if all(t.xfacts.get(f) == v for t in states[1:])}
    return s


class _Analysis:
    def __init__(self, values: _Values, exact: bool) -> None:
        self.values = values
        self.exact = exact

    def step(self, s: _State, ins: tuple, where: tuple) -> tuple[bool, str | None, int | None]:
        """Apply one statement to s in place; return (it cannot fail here, the register it
        sets ("A", "X" or a scratch slot number), the value it sets there). Not exact,
        nothing fails (libpcap's model)."""
        safe, reg, vn = self._step(s, ins, where)
        return safe or not self.exact, reg, vn

    # -- statements
    def _step(self, s: _State, ins: tuple, where: tuple) -> tuple[bool, str | None, int | None]:
        v = self.values
        code, _, _, k = ins
        cls = code & 7
        if cls in (bpf.LD, bpf.LDX):
            mode = code & 0xE0
            safe = True
            if mode == bpf.IMM:
                vn = v.k(k)
            elif mode == bpf.LEN:
                vn = v.of(("len",))
            elif mode == bpf.MEM:
                vn = s.mem[k]
                if vn is None:
                    # what the slot holds on the paths met here: unknown, but the same
                    # on every later load of it until a store
                    vn = v.of(("opaque",) + where)
                    s.mem = s.mem[:k] + (vn,) + s.mem[k + 1:]
            elif mode == bpf.ABS:
                size = _SIZES[code & 0x18]
                vn = v.of(("ld", size, k))
                end = _needs(ins)
                safe = end is not None and end <= s.avail
                if end is not None:
                    s.avail = max(s.avail, end)
            elif mode == bpf.IND:
                size = _SIZES[code & 0x18]
                vn = v.of(("ldi", size, k, s.x)) if s.x is not None else v.of(("opaque",) + where)
                safe = vn in s.known
                if s.x is not None and k < 0x10000 and v.width.get(s.x, bpf.M32) < 0x10000:
                    # a load at X+k that succeeded proves the bytes before X+k+size, for
                    # any later load at X+j with j+size' at most that (X unchanged; both
                    # small, far from the offsets a Linux kernel reads as negative)
                    end = k + size
                    safe = safe or any(type(f) is tuple and f[0] == s.x and f[1] >= end
                                       for f in s.known)
                    s.known = s.known | {vn, (s.x, end)}
                else:
                    s.known = s.known | {vn}
            else:  # MSH
                vn = v.of(("msh", k))
                end = _needs(ins)
                safe = end is not None and end <= s.avail
                if end is not None:
                    s.avail = max(s.avail, end)
            if cls == bpf.LD:
                s.a = vn
                return safe, "A", vn
            s.x = vn
            return safe, "X", vn
        if cls == bpf.ST:
            s.mem = s.mem[:k] + (s.a,) + s.mem[k + 1:]
            return True, k, s.a
        if cls == bpf.STX:
            s.mem = s.mem[:k] + (s.x,) + s.mem[k + 1:]
            return True, k, s.x
        if cls == bpf.ALU:
            op = code & 0xF0
            if op == bpf.NEG:
                vn = v.of(("neg", s.a)) if s.a is not None else v.of(("opaque",) + where)
                safe = True
            else:
                b = v.k(k) if code & bpf.SX == bpf.K else s.x
                vn = v.alu(op, s.a, b, where)
                safe = True
                if op in (bpf.DIV, bpf.MOD) and code & bpf.SX:
                    safe = vn in s.known or (b is not None and v.constant.get(b, 0) != 0)
                    s.known = s.known | {vn}
            s.a = vn
            return safe, "A", vn
        # MISC
        if code & 0xF8 == bpf.TXA:
            s.a = s.x
            return True, "A", s.x
        s.x = s.a
        return True, "X", s.a

    # -- jumps
    def _range(self, s: _State, vn: int) -> tuple:
        got = s.info.get(vn)
        if got is not None:
            return got
        c = self.values.constant.get(vn)
        if c is not None:
            return (c, c, frozenset(), (), frozenset((c,)))
        return (0, self.values.width.get(vn, bpf.M32), frozenset(), (), None)

    def decide(self, s: _State, b: _Block) -> bool | None:
        """The outcome of block b's test on state s (after b's statements), or None."""
        a = s.a
        if a is None:
            return None
        op = b.code & 0xF0
        if b.code & bpf.SX:
            if s.x is None:
                return None
            c = self.values.constant.get(s.x)
            if c is None:
                return s.xfacts.get((a, op, s.x))
            k = c
        else:
            k = b.k
        lo, hi, ne, js, vals = self._range(s, a)
        if vals is not None:
            hits = {_holds(op, v, k) for v in vals}
            if len(hits) == 1:
                return hits.pop()
        if op == bpf.JEQ:
            if lo == hi:
                return lo == k
            if k < lo or k > hi or k in ne:
                return False
            return None
        if op == bpf.JGT:
            if lo > k:
                return True
            if hi <= k:
                return False
            return None
        if op == bpf.JGE:
            if lo >= k:
                return True
            if hi < k:
                return False
            return None
        # JSET
        if lo == hi:
            return bool(lo & k)
        if k == 0 or hi < (k & -k):
            return False
        for mask, hit in js:
            if hit and mask & ~k == 0:
                return True  # some bit of a smaller mask is set
            if not hit and k & ~mask == 0:
                return False  # no bit of a larger mask is set
        return None

    def branch(self, s: _State, b: _Block, taken: bool, into: _State | None = None) -> _State:
        """s (after b's statements) with what taking b's jt (taken) or jf says: a copy,
        or s itself changed when into is s."""
        t = s.copy() if into is None else into
        a = s.a
        if a is None:
            return t
        op = b.code & 0xF0
        if b.code & bpf.SX:
            c = None if s.x is None else self.values.constant.get(s.x)
            if c is None:
                if s.x is not None:
                    t.xfacts[(a, op, s.x)] = taken
                return t
            k = c
        else:
            k = b.k
        lo, hi, ne, js, vals = self._range(s, a)
        if vals is not None:
            vals = frozenset(v for v in vals if _holds(op, v, k) == taken)
        elif op == bpf.JEQ and taken:
            vals = frozenset((k,))
        if op == bpf.JEQ:
            if taken:
                lo = hi = k
            else:
                ne = ne | {k}
                if k == lo:
                    lo += 1
                if k == hi:
                    hi -= 1
        elif op == bpf.JGT:
            if taken:
                lo = max(lo, k + 1)
            else:
                hi = min(hi, k)
        elif op == bpf.JGE:
            if taken:
                lo = max(lo, k)
            else:
                hi = min(hi, k - 1) if k else hi
        else:
            js = js + ((k, taken),)
        t.info[a] = (lo, hi, ne, js, vals)
        return t


# ---- the passes -----------------------------------------------------------------------

def _needs(ins: tuple) -> int | None:
    """How many captured bytes a statement needs (it rejects a shorter packet): the end
    of an absolute load or of `ldxb 4*([k]&0xf)`; None for every other statement and
    for Linux's negative-offset loads (ancillary data, which a kernel reads from the
    socket buffer: they prove nothing about the packet's length)."""
    code, _, _, k = ins
    cls, mode = code & 7, code & 0xE0
    if k >= 0x80000000:
        return None
    if cls == bpf.LD and mode == bpf.ABS:
        return k + _SIZES[code & 0x18]
    if cls == bpf.LDX and mode == bpf.MSH:
        return k + 1
    return None


def _cannot_fail(ins: tuple) -> bool:
    """A statement that never ends the program: no packet load, no division by X."""
    code = ins[0]
    cls, mode = code & 7, code & 0xE0
    if cls in (bpf.LD, bpf.LDX):
        return mode in (bpf.IMM, bpf.MEM, bpf.LEN)
    if cls == bpf.ALU:
        return not (code & 0xF0 in (bpf.DIV, bpf.MOD) and code & bpf.SX)
    return True  # ST, STX, TAX, TXA


def _stmt_uses_defs(ins: tuple) -> tuple[tuple, tuple]:
    """The registers ("A", "X", slot numbers) one statement reads, and writes."""
    code, _, _, k = ins
    cls, mode = code & 7, code & 0xE0
    if cls == bpf.LD:
        return (("X",) if mode == bpf.IND else (k,) if mode == bpf.MEM else ()), ("A",)
    if cls == bpf.LDX:
        return ((k,) if mode == bpf.MEM else ()), ("X",)
    if cls == bpf.ST:
        return ("A",), (k,)
    if cls == bpf.STX:
        return ("X",), (k,)
    if cls == bpf.ALU:
        return (("A", "X") if code & 0xF0 != bpf.NEG and code & bpf.SX else ("A",)), ("A",)
    if code & 0xF8 == bpf.TXA:
        return ("X",), ("A",)
    return ("A",), ("X",)


def _exit_uses(b: _Block) -> set:
    """What b's jump or return reads."""
    if b.kind == "cond":
        return {"A", "X"} if b.code & bpf.SX else {"A"}
    if b.kind == "ret" and b.code != bpf.RET | bpf.K:
        return {"A"}  # ret a
    return set()


def _uses_defs(b: _Block) -> tuple[set, set]:
    """Registers b reads before it writes them, and writes."""
    uses: set = set()
    defs: set = set()
    for ins in b.stmts:
        u, d = _stmt_uses_defs(ins)
        uses.update(r for r in u if r not in defs)
        defs.update(d)
    uses.update(r for r in _exit_uses(b) if r not in defs)
    return uses, defs


def _liveness(order: list[_Block]) -> dict[int, frozenset]:
    """Registers live at each block's entry."""
    live: dict[int, frozenset] = {}
    for b in reversed(order):
        uses, defs = _uses_defs(b)
        out: set = set()
        for s in b.successors():
            out |= live[id(s)]
        live[id(b)] = frozenset(uses | (out - defs))
    return live


def _live_after(b: _Block, live_out: frozenset) -> list[frozenset]:
    """Registers live after each of b's statements."""
    live = set(live_out) | _exit_uses(b)
    out: list[frozenset] = [frozenset()] * len(b.stmts)
    for i in range(len(b.stmts) - 1, -1, -1):
        out[i] = frozenset(live)
        u, d = _stmt_uses_defs(b.stmts[i])
        live = (live - set(d)) | set(u)
    return out


_ALWAYS = 1 << 40  # the guard of a block that can only reject


def _exit_guard(b: _Block, guard: dict[int, int]) -> int:
    if b.kind == "ret":
        return _ALWAYS if _is_reject(b) else 0
    return min(guard[id(s)] for s in b.successors())


def _guards(order: list[_Block]) -> dict[int, int]:
    """Each block's guard: every path from its entry that can accept the packet first
    loads captured bytes up to at least the guard, so a packet shorter than the guard
    is rejected from there, whatever else it does. A load that needs no more than the
    guard where it stands changes no verdict when it is left out."""
    guard: dict[int, int] = {}
    for b in reversed(order):
        g = _exit_guard(b, guard)
        for ins in b.stmts:
            end = _needs(ins)
            if end is not None:
                g = max(g, end)
        guard[id(b)] = g
    return guard


def _drop_covered(order: list[_Block], exact: bool) -> bool:
    """Drop statements whose result is never read and that cannot fail, or can fail only
    on packets every later path rejects anyway (a load within the guard after it). One
    backward walk, so each drop is judged on the code that is kept after it."""
    live_in: dict[int, frozenset] = {}
    guard: dict[int, int] = {}
    changed = False
    for b in reversed(order):
        g = _exit_guard(b, guard)
        live = _exit_uses(b)
        for t in b.successors():
            live |= live_in[id(t)]
        kept = []
        for ins in reversed(b.stmts):
            u, d = _stmt_uses_defs(ins)
            end = _needs(ins)
            if not live.intersection(d) and (not exact or _cannot_fail(ins)
                                             or (end is not None and end <= g)):
                changed = True
                continue
            kept.append(ins)
            live = (live - set(d)) | set(u)
            if end is not None:
                g = max(g, end)
        kept.reverse()
        b.stmts = kept
        live_in[id(b)] = frozenset(live)
        guard[id(b)] = g
    return changed


class _Optimizer:
    def __init__(self, entry: _Block, exact: bool) -> None:
        self.entry = entry
        self.exact = exact
        self.values = _Values()
        self.an = _Analysis(self.values, exact)
        self.forks = 0  # undecided tests thread() may still follow both ways, this pass

    def run(self) -> _Block:
        for _ in range(_MAX_ROUNDS):
            changed = self.simplify()
            changed |= self.dataflow()
            changed |= _drop_covered(_reachable(self.entry), self.exact)
            if not changed:
                break
        self.simplify()
        return self.entry

    # -- graph clean-ups
    def simplify(self) -> bool:
        changed = False
        while True:
            order = _reachable(self.entry)
            step = False
            merged: dict[tuple, _Block] = {}
            replace: dict[int, _Block] = {}
            for b in reversed(order):
                # jumps to empty blocks go where those blocks go
                for attr in ("jt", "jf"):
                    t = getattr(b, attr)
                    while t is not None and id(t) in replace:
                        t = replace[id(t)]
                    while t is not None and not t.stmts and t.kind == "jmp":
                        t = t.jt
                    if t is not getattr(b, attr):
                        setattr(b, attr, t)
                        step = True
                if b.kind == "cond" and b.jt is b.jf:
                    b.kind, b.code, b.k, b.jf = "jmp", 0, 0, None
                    step = True
                if b.kind == "jmp" and b.jt.kind == "ret" and not b.jt.stmts:
                    b.kind, b.code, b.k, b.jt = "ret", b.jt.code, b.jt.k, None
                    step = True
                if b.kind != "ret" and all(_is_reject(s) for s in b.successors()):
                    b.kind, b.code, b.k, b.jt, b.jf = "ret", bpf.RET | bpf.K, 0, None, None
                    b.stmts = []  # every path rejects: whatever these loads do
                    step = True
                if b.kind == "ret" and b.code == bpf.RET | bpf.K and b.k == 0 and b.stmts:
                    b.stmts = []
                    step = True
                key = b.key()
                same = merged.get(key)
                if same is not None and same is not b:
                    replace[id(b)] = same  # the later one is kept: every jump to it is forward
                    step = True
                else:
                    merged[key] = b
            while self.entry.kind == "jmp" and not self.entry.stmts:
                self.entry = self.entry.jt
                step = True
            if id(self.entry) in replace:
                self.entry = replace[id(self.entry)]
            if not step:
                return changed
            changed = True

    # -- value numbering, dropped statements, threaded jumps
    def dataflow(self) -> bool:
        order = _reachable(self.entry)
        live = _liveness(order)
        incoming: dict[int, list[_State]] = {id(b): [] for b in order}
        incoming[id(self.entry)].append(_State())
        edge_states: list[tuple[_Block, str, _State]] = []
        entry: dict[int, _State] = {}
        changed = False
        for b in order:
            states = incoming[id(b)]
            s = _meet(states)
            if b.kind == "cond":
                entry[id(b)] = s.copy()
            # drop statements that change nothing, and dead ones that cannot fail
            live_out: set = set()
            for t in b.successors():
                live_out |= live[id(t)]
            after = _live_after(b, frozenset(live_out))
            kept = []
            chain = None  # (where in kept, A before) of a run of statements that set only A
            for i, ins in enumerate(b.stmts):
                before = (s.a, s.x, s.mem)
                safe, reg, vn = self.an.step(s, ins, (b.pc, i))
                c = self.values.constant.get(vn) if reg in ("A", "X") else None
                if c is not None and ins[0] & 0xE0 != bpf.IMM and ins[0] & 7 in (bpf.LD, bpf.LDX):
                    # a constant read from M[] (or a packet load decided to be one) is
                    # loaded as a constant, which frees the store to M[]
                    if safe:
                        ins = ((bpf.LD if reg == "A" else bpf.LDX) | bpf.IMM, 0, 0, c)
                        changed = True
                elif ins[0] & 7 in (bpf.LD, bpf.LDX) and ins[0] & 0xE0 != bpf.IMM and safe:
                    # a value the other register holds is copied from it (which may free
                    # a store to M[] or a second load)
                    if reg == "X" and vn == before[0]:
                        ins = (bpf.MISC | bpf.TAX, 0, 0, 0)
                        changed = True
                    elif reg == "A" and vn == before[1]:
                        ins = (bpf.MISC | bpf.TXA, 0, 0, 0)
                        changed = True
                old = before[0] if reg == "A" else before[1] if reg == "X" else before[2][reg]
                if old is not None and old == vn:
                    changed = True  # (the register already held it: the statement did nothing)
                    continue
                if safe and reg not in after[i]:
                    s.a, s.x, s.mem = before  # dropped: the register keeps what it had
                    changed = True
                    continue
                kept.append(ins)
                if not safe or reg != "A":
                    chain = None
                    continue
                if chain is None:
                    chain = (len(kept) - 1, before[0])
                if chain[1] is not None and s.a == chain[1]:
                    # `ldb [x+0]; and #0xfc` again: the run gives A what it held
                    del kept[chain[0]:]
                    chain = None
                    changed = True
            b.stmts = kept
            if b.kind == "cond":
                for attr, taken in (("jt", True), ("jf", False)):
                    t = self.an.branch(s, b, taken)
                    target = getattr(b, attr)
                    incoming[id(target)].append(t)
                    edge_states.append((b, attr, t))
            elif b.kind == "jmp":
                incoming[id(b.jt)].append(s)
                edge_states.append((b, "jt", s))
        live = _liveness(order)  # (dropped statements may have made registers live)
        # (before _and_to_jset, which changes what A holds on edges the states describe)
        if self.swap_tests(order, entry):
            return True  # (the edge states are stale: threading waits for the next pass)
        for b in order:
            changed |= _and_to_jset(b, live)
        guard = _guards(order)
        # following both ways of undecided tests is bounded per pass, in proportion to
        # the program, so a long program costs linear work
        self.forks = 8 * len(order) + 400
        for b, attr, s in edge_states:
            target = self.thread(getattr(b, attr), s, live, guard)
            if target is not None:
                setattr(b, attr, target)
                changed = True
        return changed

    def swap_tests(self, order: list[_Block], entry: dict[int, _State]) -> bool:
        """`ldh [54]; jeq #22 -> Z; ldh [56]; jeq #22 -> Z` entered with [56] in A tests
        [56] first: two tests that go the same way to Z, on values computed by statements
        that set nothing but A, are swapped when A already holds the second one's value
        (its statements go). Which test comes first changes no verdict: the second one's
        statements cannot fail, A is read at neither end, and a load of the first one's
        that can fail needs no more bytes than Z's guard (a packet it rejects is rejected
        from Z on anyway, so going to Z without it changes nothing: `ld [30]; jeq net;
        ldb [23]; jeq #47`, both to reject, tests the protocol first).
        Last blocks first: a swap changes the states on entry only of blocks after b1,
        while liveness and guards, which it changes before b1 too, are made again."""
        live = _liveness(order)
        guard = _guards(order)
        preds: dict[int, int] = {}
        for b in order:
            for t in b.successors():
                preds[id(t)] = preds.get(id(t), 0) + 1
        changed = False
        for b1 in reversed(order):
            if b1.kind != "cond" or b1.code & bpf.SX or id(b1) not in entry:
                continue
            start = entry[id(b1)]
            if start.a is None:
                continue
            for z1, n1 in (("jt", "jf"), ("jf", "jt")):
                b2, z = getattr(b1, n1), getattr(b1, z1)
                if (b2.kind != "cond" or b2.code & bpf.SX or not b2.stmts
                        or preds.get(id(b2)) != 1 or b2 is z):
                    continue
                z2 = "jt" if b2.jt is z else "jf" if b2.jf is z else None
                if z2 is None:
                    continue
                w = b2.jf if z2 == "jt" else b2.jt
                if "A" in live[id(z)] or "A" in live[id(w)]:
                    continue
                sim = start.copy()
                if not self._only_a(sim, b1.stmts, b1.pc, guard[id(z)]):
                    continue
                v1 = sim.a
                sim = self.an.branch(sim, b1, n1 == "jt", sim)
                if (not self._only_a(sim, b2.stmts, b2.pc, -1) or sim.a != start.a
                        or v1 == start.a):
                    continue
                # b1 tests b2's value (A holds it), b2 then computes and tests b1's
                first_stmts, first_code, first_k = b1.stmts, b1.code, b1.k
                b1.stmts, b1.code, b1.k = [], b2.code, b2.k
                setattr(b1, z2, z)
                setattr(b1, "jf" if z2 == "jt" else "jt", b2)
                b2.stmts, b2.code, b2.k = first_stmts, first_code, first_k
                setattr(b2, z1, z)
                setattr(b2, n1, w)
                changed = True
                live = _liveness(order)
                guard = _guards(order)
                break
        return changed

    def _only_a(self, sim: _State, stmts: list, pc: int, guard: int) -> bool:
        """Run stmts on sim: True when each sets only A and cannot fail, or is a packet
        load that needs no more than guard bytes."""
        for i, ins in enumerate(stmts):
            cls = ins[0] & 7
            if not (cls in (bpf.LD, bpf.ALU) or ins[0] & 0xF8 == bpf.MISC | bpf.TXA):
                return False
            safe, _, _ = self.an.step(sim, ins, (pc, i))
            if not safe:
                end = _needs(ins)
                if end is None or end > guard:
                    return False
        return True

    def thread(self, start: _Block, s: _State, live: dict[int, frozenset],
               guard: dict[int, int]) -> _Block | None:
        """Where an edge into start, with state s, can go instead (or None): a block
        every path from start reaches, following the tests s decides and both ways of
        those it does not, when the blocks skipped leave what that block reads as it
        is on the edge, and every load skipped either cannot fail there or needs no
        more bytes than that block's guard (a packet it would reject is rejected from
        there on anyway)."""
        budget = [64]
        found = self._must_pass(start, s.copy(), 0, s, live, guard, budget)
        found.pop(id(start), None)
        if not found:
            return None
        return max(found.values(), key=lambda blk: blk.pc)

    def _must_pass(self, b: _Block, sim: _State, need: int, s: _State,
                   live: dict[int, frozenset], guard: dict[int, int], budget: list,
                   limit: int = 1 << 30) -> dict:
        """The blocks (by id) every path from b (with state sim) passes, at which an edge
        with state s could land instead; need: bytes the loads skipped so far need.
        Blocks placed after limit are of no interest."""
        found = {}
        while b.pc <= limit:
            if s.same_registers(sim, live[id(b)]) and need <= guard[id(b)]:
                found[id(b)] = b
            if b.kind == "ret" or budget[0] <= 0:
                return found
            budget[0] -= 1
            for i, ins in enumerate(b.stmts):
                safe, _, _ = self.an.step(sim, ins, (b.pc, i))
                if not safe:
                    end = _needs(ins)
                    if end is None:
                        return found
                    need = max(need, end)
            if b.kind == "jmp":
                b = b.jt
                continue
            outcome = self.an.decide(sim, b)
            if outcome is None:
                if self.forks <= 0:
                    return found
                self.forks -= 1
                yes = self._must_pass(b.jt, self.an.branch(sim, b, True), need, s, live,
                                      guard, budget)
                if yes:
                    no = self._must_pass(b.jf, self.an.branch(sim, b, False, sim), need, s,
                                         live, guard, budget,
                                         min(limit, max(blk.pc for blk in yes.values())))
                    found.update((k, v) for k, v in yes.items() if k in no)
                return found
            sim = self.an.branch(sim, b, outcome, sim)
            b = b.jt if outcome else b.jf
        return found


def _and_to_jset(b: _Block, live: dict[int, frozenset]) -> bool:
    """`and #m; jeq #0` is `jset #m` with the targets swapped, and `and #m; jeq #m` with a
    one-bit m is `jset #m`, when neither target reads A."""
    if b.kind != "cond" or not b.stmts or b.code != bpf.JMP | bpf.JEQ | bpf.K:
        return False
    code, _, _, m = b.stmts[-1]
    if code != bpf.ALU | bpf.AND | bpf.K or "A" in live[id(b.jt)] or "A" in live[id(b.jf)]:
        return False
    if b.k == 0:
        b.jt, b.jf = b.jf, b.jt
    elif not (b.k == m and m & (m - 1) == 0):
        return False
    b.stmts.pop()
    b.code, b.k = bpf.JMP | bpf.JSET | bpf.K, m
    return True


def _is_reject(b: _Block) -> bool:
    return b.kind == "ret" and b.code == bpf.RET | bpf.K and b.k == 0


def _layout(entry: _Block, share_returns: bool) -> tuple[list[_Block], dict[int, _Block]]:
    """The blocks in the order they are emitted (every jump forward), and the blocks that
    end by falling into a shared return instead of returning themselves. In program
    order; sharing returns, a block of statements that ends in `ret #k` (or `ret a`) is
    moved to just before another block that is only that return, and falls into it:
    its own return instruction goes (one per distinct return)."""
    order = _reachable(entry)
    if not share_returns:
        return order, {}
    bare = {}
    for b in order:
        if b.kind == "ret" and not b.stmts:
            bare[(b.code, b.k)] = b
    falls: dict[int, _Block] = {}
    tails: list[_Block] = []
    for b in reversed(order):
        r = bare.get((b.code, b.k))
        if b.kind == "ret" and b.stmts and r is not None and r not in tails:
            falls[id(b)] = r
            tails.append(r)
            tails.append(b)
    if not falls:
        return order, {}
    moved = {id(b) for b in tails}
    # a return has no successors and a falling block only its return: both may go last
    return [b for b in order if id(b) not in moved] + tails[::-1], falls


def _emit(entry: _Block, share_returns: bool = False) -> list[tuple[int, int, int, int]]:
    order, falls = _layout(entry, share_returns)
    rev: list[tuple[int, int, int, int]] = []
    start: dict[int, int] = {}  # id(block) -> rev index of its first instruction

    def offset(target: _Block) -> int:
        return len(rev) - start[id(target)] - 1

    for b in reversed(order):
        if id(b) in falls:
            pass  # its return is the next instruction
        elif b.kind == "ret":
            rev.append((b.code, 0, 0, b.k))
        elif b.kind == "jmp":
            if start[id(b.jt)] != len(rev) - 1:
                rev.append((bpf.JMP | bpf.JA, 0, 0, offset(b.jt)))
        else:
            t, f = start[id(b.jt)], start[id(b.jf)]
            if len(rev) - t - 1 > 255:
                rev.append((bpf.JMP | bpf.JA, 0, 0, len(rev) - t - 1))
                t = len(rev) - 1
            if len(rev) - f - 1 > 255:
                rev.append((bpf.JMP | bpf.JA, 0, 0, len(rev) - f - 1))
                f = len(rev) - 1
            rev.append((b.code, len(rev) - t - 1, len(rev) - f - 1, b.k))
        rev.extend(reversed(b.stmts))
        start[id(b)] = len(rev) - 1
    return rev[::-1]


def optimize(program: list[tuple[int, int, int, int]], *,
             exact: bool = True) -> list[tuple[int, int, int, int]]:
    """A shorter program that gives every packet the same verdict (see the top).

    exact=False optimises in libpcap's model instead, where a load cannot fail: a load
    whose value cannot change the verdict is left out, so a packet cut short before it
    may be accepted where the program given rejects it (libpcap's optimiser does the
    same). Every packet the given program reads without running past its captured bytes
    still gets the same verdict."""
    entry = _Optimizer(_blocks(list(program)), exact).run()
    out = min(_emit(entry), _emit(entry, share_returns=True), key=len)
    return out if len(out) <= len(program) else list(program)
