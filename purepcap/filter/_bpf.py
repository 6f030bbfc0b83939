# Classic BPF (cBPF): opcode constants, a validator, a pure-Python interpreter and
# the three tcpdump dump formats. Strategy: follow libpcap's bpf_filter.c semantics
# exactly where they are defined (an out-of-bounds packet load ends the program with
# 0, division by zero at run time returns 0) so the interpreter is a faithful oracle
# for the offline matcher. Instructions are plain (code, jt, jf, k) tuples.
from __future__ import annotations

from collections.abc import Sequence

from ..errors import FilterError

__all__ = ["run_bpf", "dump_bpf", "validate", "Insn", "BPF_MAXINSNS", "SKF_AD_OFF",
           "SKF_AD_PROTOCOL", "SKF_AD_PKTTYPE", "SKF_AD_IFINDEX"]

Insn = tuple[int, int, int, int]

# instruction classes
LD, LDX, ST, STX, ALU, JMP, RET, MISC = 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07
# sizes and modes
W, H, B = 0x00, 0x08, 0x10
IMM, ABS, IND, MEM, LEN, MSH = 0x00, 0x20, 0x40, 0x60, 0x80, 0xA0
# ALU operations
ADD, SUB, MUL, DIV, OR, AND, LSH, RSH, NEG, MOD, XOR = (
    0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0x90, 0xA0)
# jumps
JA, JEQ, JGT, JGE, JSET = 0x00, 0x10, 0x20, 0x30, 0x40
# operand source
K, SX = 0x00, 0x08
RVAL_A = 0x10
TAX, TXA = 0x00, 0x80

BPF_MAXINSNS = 4096  # Linux's limit (BSD allows more); we never emit more
MEMWORDS = 16
M32 = 0xFFFFFFFF

# Linux "ancillary data" loads: negative offsets that read socket-buffer metadata.
SKF_AD_OFF = (-0x1000) & M32
SKF_AD_PROTOCOL = SKF_AD_OFF + 0
SKF_AD_PKTTYPE = SKF_AD_OFF + 4
SKF_AD_IFINDEX = SKF_AD_OFF + 8
_AUX_NAMES = {SKF_AD_PROTOCOL: "proto", SKF_AD_PKTTYPE: "type", SKF_AD_IFINDEX: "ifidx"}

_ALU_NAMES = {ADD: "add", SUB: "sub", MUL: "mul", DIV: "div", OR: "or", AND: "and",
              LSH: "lsh", RSH: "rsh", MOD: "mod", XOR: "xor"}
_JMP_NAMES = {JEQ: "jeq", JGT: "jgt", JGE: "jge", JSET: "jset"}
_SIZE_NAMES = {W: "ld", H: "ldh", B: "ldb"}
_SIZE_BYTES = {W: 4, H: 2, B: 1}


def validate(program: Sequence[Insn]) -> None:
    """Check a program the way the kernel's checker does: known opcodes, forward jumps
    inside the program, scratch slots < 16, no constant division by zero, and a
    return at the end. Raises FilterError."""
    n = len(program)
    if not 0 < n <= BPF_MAXINSNS:
        raise FilterError(f"a BPF program must have 1 to {BPF_MAXINSNS} instructions, not {n}")
    for pc, ins in enumerate(program):
        if len(ins) != 4:
            raise FilterError(f"BPF instruction {pc} is not (code, jt, jf, k): {ins!r}")
        code, jt, jf, k = ins
        if not (0 <= code <= 0xFFFF and 0 <= jt <= 255 and 0 <= jf <= 255 and 0 <= k <= M32):
            raise FilterError(f"BPF instruction {pc} has a field out of range: {ins!r}")
        cls = code & 7
        if cls == JMP:
            op = code & 0xF0
            if op == JA:
                if code != JMP | JA or pc + 1 + k >= n:
                    raise FilterError(f"BPF instruction {pc}: jump out of the program")
            elif op in _JMP_NAMES and code <= 0xFF:
                if pc + 1 + jt >= n or pc + 1 + jf >= n:
                    raise FilterError(f"BPF instruction {pc}: jump out of the program")
            else:
                raise FilterError(f"BPF instruction {pc}: unknown opcode {code:#x}")
        elif cls in (LD, LDX):
            mode = code & 0xE0
            if cls == LD and code not in (
                    LD | W | ABS, LD | H | ABS, LD | B | ABS, LD | W | IND, LD | H | IND,
                    LD | B | IND, LD | IMM, LD | MEM, LD | W | LEN):
                raise FilterError(f"BPF instruction {pc}: unknown opcode {code:#x}")
            if cls == LDX and code not in (LDX | IMM, LDX | MEM, LDX | W | LEN, LDX | B | MSH):
                raise FilterError(f"BPF instruction {pc}: unknown opcode {code:#x}")
            if mode == MEM and k >= MEMWORDS:
                raise FilterError(f"BPF instruction {pc}: scratch slot {k} out of range")
        elif cls in (ST, STX):
            if code not in (ST, STX) or k >= MEMWORDS:
                raise FilterError(f"BPF instruction {pc}: bad store {ins!r}")
        elif cls == ALU:
            op = code & 0xF0
            if (op not in _ALU_NAMES and op != NEG) or code > 0xFF:
                raise FilterError(f"BPF instruction {pc}: unknown opcode {code:#x}")
            if code & SX == K and op in (DIV, MOD) and k == 0:
                raise FilterError(f"BPF instruction {pc}: division by constant zero")
            if code & SX == K and op in (LSH, RSH) and k >= 32:
                raise FilterError(f"BPF instruction {pc}: shift by {k} (more than 31 bits)")
        elif cls == RET:
            if code not in (RET | K, RET | RVAL_A):
                raise FilterError(f"BPF instruction {pc}: unknown opcode {code:#x}")
        elif cls == MISC:
            if code not in (MISC | TAX, MISC | TXA):
                raise FilterError(f"BPF instruction {pc}: unknown opcode {code:#x}")
    if program[-1][0] & 7 != RET:
        raise FilterError("a BPF program must end with a return instruction")


def _shift_left(a: int, b: int) -> int:
    return (a << b) & M32 if b < 32 else 0


def run_bpf(program: Sequence[Insn], data: bytes, wirelen: int | None = None) -> int:
    """Run a cBPF program over one packet; return its verdict (0 = reject, else the
    number of bytes to keep). ``data`` is the captured bytes, ``wirelen`` the
    original length (what ``len`` reads; defaults to len(data)).

    Semantics follow libpcap's bpf_filter(): a load past the captured bytes or a run
    time division by zero returns 0. Linux ancillary loads (negative offsets) have no
    packet to read here and also return 0. Shifts by 32 or more give 0.
    """
    buf = bytes(data)
    buflen = len(buf)
    if wirelen is None:
        wirelen = buflen
    A = X = 0
    mem = [0] * MEMWORDS
    pc = 0
    n = len(program)
    while pc < n:
        code, jt, jf, k = program[pc]
        pc += 1
        cls = code & 7
        if cls == LD:
            mode = code & 0xE0
            if mode == ABS or mode == IND:
                off = k if mode == ABS else X + k
                size = _SIZE_BYTES.get(code & 0x18, 4)
                if off + size > buflen:
                    return 0
                A = int.from_bytes(buf[off:off + size], "big")
            elif mode == IMM:
                A = k
            elif mode == MEM:
                A = mem[k]
            elif mode == LEN:
                A = wirelen & M32
            else:
                raise FilterError(f"BPF instruction {pc - 1}: unknown opcode {code:#x}")
        elif cls == LDX:
            mode = code & 0xE0
            if mode == MSH:
                if k >= buflen:
                    return 0
                X = (buf[k] & 0xF) << 2
            elif mode == IMM:
                X = k
            elif mode == MEM:
                X = mem[k]
            elif mode == LEN:
                X = wirelen & M32
            else:
                raise FilterError(f"BPF instruction {pc - 1}: unknown opcode {code:#x}")
        elif cls == JMP:
            op = code & 0xF0
            if op == JA:
                pc += k
                continue
            v = X if code & SX else k
            if op == JEQ:
                hit = A == v
            elif op == JGT:
                hit = A > v
            elif op == JGE:
                hit = A >= v
            elif op == JSET:
                hit = (A & v) != 0
            else:
                raise FilterError(f"BPF instruction {pc - 1}: unknown opcode {code:#x}")
            pc += jt if hit else jf
        elif cls == ALU:
            op = code & 0xF0
            v = X if code & SX else k
            if op == ADD:
                A = (A + v) & M32
            elif op == SUB:
                A = (A - v) & M32
            elif op == MUL:
                A = (A * v) & M32
            elif op == DIV:
                if v == 0:
                    return 0
                A //= v
            elif op == MOD:
                if v == 0:
                    return 0
                A %= v
            elif op == AND:
                A &= v
            elif op == OR:
                A |= v
            elif op == XOR:
                A ^= v
            elif op == LSH:
                A = _shift_left(A, v)
            elif op == RSH:
                A = A >> v if v < 32 else 0
            elif op == NEG:
                A = (-A) & M32
            else:
                raise FilterError(f"BPF instruction {pc - 1}: unknown opcode {code:#x}")
        elif cls == RET:
            return A if code & RVAL_A else k
        elif cls == ST:
            mem[k] = A
        elif cls == STX:
            mem[k] = X
        elif cls == MISC:
            if code & 0xF8 == TXA:
                A = X
            else:
                X = A
    return 0  # fell off the end (an invalid program): reject


def _image(ins: Insn, n: int) -> str:
    """One instruction as libpcap's bpf_image() prints it (tcpdump -d)."""
    code, jt, jf, k = ins
    cls = code & 7
    op, operand = "unimp", f"0x{code:x}"
    signed_k = k - (1 << 32) if k & 0x80000000 else k
    if cls == RET:
        op, operand = "ret", (f"#{signed_k}" if code == RET | K else "")
    elif cls == LD:
        mode = code & 0xE0
        if mode == ABS and code & 0x18 in _SIZE_NAMES:
            op = _SIZE_NAMES[code & 0x18]
            operand = f"[{_AUX_NAMES[k]}]" if k in _AUX_NAMES else f"[{signed_k}]"
        elif mode == IND and code & 0x18 in _SIZE_NAMES:
            op, operand = _SIZE_NAMES[code & 0x18], f"[x + {signed_k}]"
        elif code == LD | W | LEN:
            op, operand = "ld", "#pktlen"
        elif mode == IMM:
            op, operand = "ld", f"#0x{k:x}"
        elif mode == MEM:
            op, operand = "ld", f"M[{k}]"
    elif cls == LDX:
        mode = code & 0xE0
        if code == LDX | B | MSH:
            op, operand = "ldxb", f"4*([{signed_k}]&0xf)"
        elif code == LDX | W | LEN:
            op, operand = "ldx", "#pktlen"
        elif mode == IMM:
            op, operand = "ldx", f"#0x{k:x}"
        elif mode == MEM:
            op, operand = "ldx", f"M[{k}]"
    elif cls == ST:
        op, operand = "st", f"M[{k}]"
    elif cls == STX:
        op, operand = "stx", f"M[{k}]"
    elif cls == ALU:
        o = code & 0xF0
        if o == NEG:
            op, operand = "neg", ""
        elif o in _ALU_NAMES:
            op = _ALU_NAMES[o]
            if code & SX:
                operand = "x"
            elif o in (AND, OR, XOR):
                operand = f"#0x{k:x}"
            else:
                operand = f"#{signed_k}"
    elif cls == JMP:
        o = code & 0xF0
        if o == JA:
            op, operand = "ja", f"{n + 1 + k}"
        elif o in _JMP_NAMES:
            op = _JMP_NAMES[o]
            operand = "x" if code & SX else f"#0x{k:x}"
            return f"({n:03d}) {op:<8} {operand:<16} jt {n + 1 + jt}\tjf {n + 1 + jf}"
    elif cls == MISC:
        op, operand = ("txa", "") if code & 0xF8 == TXA else ("tax", "")
    return f"({n:03d}) {op:<8} {operand}"


def dump_bpf(program: Sequence[Insn], style: str = "-d") -> str:
    """A program as ``tcpdump -d`` (readable), ``-dd`` (C array) or ``-ddd`` (decimal)
    prints it. The text ends with a newline, as tcpdump's output does."""
    if style in ("-d", "d"):
        return "".join(_image(ins, i) + "\n" for i, ins in enumerate(program))
    if style in ("-dd", "dd"):
        return "".join(f"{{ 0x{c:x}, {jt}, {jf}, 0x{k:08x} }},\n" for c, jt, jf, k in program)
    if style in ("-ddd", "ddd"):
        return f"{len(program)}\n" + "".join(f"{c} {jt} {jf} {k}\n" for c, jt, jf, k in program)
    raise ValueError(f"unknown dump style {style!r}: use '-d', '-dd' or '-ddd'")
