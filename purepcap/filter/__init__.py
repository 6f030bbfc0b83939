# pcap-filter (tcpdump syntax) in pure Python: one compiler, two back ends that agree.
#
#   parse(expr)             -> AST (_parser.py; tokens from _lexer.py)
#   compile_bpf(expr, lt)   -> classic BPF [(code, jt, jf, k)] for the kernel (_codegen.py)
#   run_bpf(prog, data, n)  -> the cBPF verdict, interpreted in Python (_bpf.py)
#   dump_bpf(prog, style)   -> tcpdump -d / -dd / -ddd text (_bpf.py)
#   offline_matcher(expr)   -> Packet -> bool, generated Python per link type (_match.py)
#
# Both back ends come from the same boolean IR (_codegen.lower), so they agree packet
# by packet; tests check that, and check both against tcpdump.
#
# Semantics are libpcap 1.10's (what tcpdump 4.99 selects), with these decisions:
# - Host names, /etc/ethers names and `gateway` are never resolved (no DNS): an error
#   says so. Port names come from a built-in table, then getservbyname (a local file).
# - `vlan`, `mpls`, `pppoes` shift the offsets of everything written after them.
# - IPv6 over NULL/LOOP matches the BSD families 24, 28 and 30 (libpcap 1.10 on Linux
#   compares with Linux's AF_INET6 = 10 and so never matches BSD captures); NULL's
#   family is accepted in either byte order, since a Packet does not carry the file's.
# - Link types with a variable header (802.11 behind radiotap/PPI/AVS/Prism headers,
#   pflog) get a preamble that computes the offsets into scratch slots first, as libpcap's
#   programs do (_linkgen.py); IP over 802.11 is a data frame's LLC/SNAP type, as there.
#   Those slots are the preamble's alone: libpcap 1.10.3 lets arithmetic reuse them, so
#   there `len > 100 and not link proto 0xaa` on PPI reads the 802.11 header at 100.
# - ARCNET `$xx` is the hex address written; libpcap 1.10.3 misreads it (`$12` as 0xd1,
#   `$a` as 0xda), so its programs differ from ours for all but `$dd`.
# - pflog's `ip6` matches AF_INET6 as libpcap on Linux compares it (10) and as the BSDs
#   that write pflog captures do (24, 28, 30), as for NULL above.
# - `dpc/opc/sls/sio/vpi/vci != N` is `not ... N` (libpcap 1.10.3 compiles it as `== N`;
#   later versions and libpcap's own tests do not); `wlan type/subtype/dir` work on PPI
#   too (libpcap 1.10.3 refuses them there, its own tests expect them).
# - SLIP: `inbound`/`outbound` are the direction byte 0 and 1 (libpcap 1.10.3 takes any
#   non-zero byte for outbound; its own tests, from later versions, do not), and `ip`/`ip6`
#   test the version after the 16-byte pseudo-header (1.10.3 tests the direction byte's).
# - BACnet MS/TP takes `link host/src/dst $xx` and `link broadcast`, as libpcap's own
#   tests expect (1.10.3 refuses them).
# - Not (yet): atalk/ipx over ARCNET or LLC. After a second `lane` libpcap 1.10.3 reads LANE's fields 6 bytes
#   further on; ours read them where the first put them.
# - `inbound`/`outbound` read the packet type of LINUX_SLL/SLL2 captures (pflog: the
#   rule's direction); on other link types offline matching refuses them and compile_bpf
#   emits Linux's ancillary packet-type load (as `tcpdump -d` does), which only the
#   Linux kernel understands.
# - A load past the captured bytes rejects the packet, also under `not` (cBPF rule).
# - compile_bpf optimises programs (_optimize.py) to about libpcap's length, never
#   changing a verdict; libpcap's optimiser does drop loads whose value cannot change
#   the verdict (so `X or not X` accepts truncated packets there), ours keeps them. The
#   kernel's optmem limit (net.core.optmem_max, ~2,500 instructions by default)
#   bounds what SO_ATTACH_FILTER accepts.
# - `protochain` walks at most CHAIN_STEPS (100) headers, unrolled alike in both back
#   ends (libpcap loops in cBPF, which no kernel accepts); after AH it takes the offset
#   libpcap 1.10 takes (AH's length from the IP header). IS-IS PDU types over Cisco HDLC
#   skip its pad byte and OSI over Linux cooked captures is read after the 802.2 header
#   (libpcap 1.10 does neither; its later TESTrun expects the first). `gateway` is
#   refused (names).
# - After `geneve`/`vxlan` every test reads the encapsulated packet, at offsets computed
#   when the tunnel matches (_tunnel.py), as libpcap does: an Ethernet frame (Geneve
#   protocol 0x6558, VXLAN always) or for Geneve the network layer typed by its protocol
#   field; link-address tests need the Ethernet frame. A test that could run where its
#   tunnel did not match (`geneve or ip`, `not geneve and tcp`) is refused: libpcap's
#   program reads scratch memory it never set there (Linux refuses such a program).
#   tcpdump does not optimise such programs, so alternatives keep their written order.
#   Behind 802.11/pflog headers the tunnel's offsets include the link header's (libpcap
#   1.10 reads an unset slot there). protochain after a tunnel is refused, as in libpcap.
#   VXLAN (not in libpcap 1.10) follows later libpcap: the inner Ethernet frame.
# - atalk/aarp/ipx/netbeui and LLC SAPs as libpcap 1.10 (SNAP, IPX's four framings on
#   Ethernet; false where the link type has no LLC). After `pppoes` on pflog, libpcap
#   1.10 reads the payload offset from a slot it never set; ours reads the real one.
# - Hostile expressions cost bounded work: at most MAX_LENGTH characters and
#   MAX_TOKENS tokens (checked before any tree is built) and MAX_DEPTH levels of
#   nesting; past them, a FilterError.
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import FilterError
from ..linktypes import MAX_SNAPLEN
from ._bpf import dump_bpf, run_bpf, validate
from ._codegen import SUPPORTED_LINKTYPES, emit_bpf, linux_cooked_fixup, lower
from ._lexer import MAX_LENGTH, MAX_TOKENS
from ._match import build_matcher
from ._optimize import optimize as optimize_bpf
from ._parser import MAX_DEPTH, Node, parse, stack_exhausted

if TYPE_CHECKING:
    from ..format import Packet

__all__ = ["offline_matcher", "compile_bpf", "run_bpf", "dump_bpf", "parse", "FilterError",
           "SUPPORTED_LINKTYPES", "MAX_DEPTH", "MAX_LENGTH", "MAX_TOKENS", "Node"]


def offline_matcher(expression: str) -> Callable[[Packet], bool]:
    """A function Packet -> bool that says whether a packet matches ``expression``.

    The expression is parsed now (syntax errors raise FilterError at once); code is
    generated per link type when the first packet of that link type arrives. ``len``,
    ``less`` and ``greater`` use the packet's original length (Packet.length).

    The function also has ``select(packets)``, a generator of the matching Packets,
    and ``test_for(linktype)``, a test ``(data: bytes, length: int) -> bool`` for the
    packets of one link type, which a reader can run before it makes a Packet
    (``Capture.keep_only``).
    """
    return build_matcher(expression, parse(expression))


def compile_bpf(expression: str, linktype: int = 1, snaplen: int = MAX_SNAPLEN, *,
                linux_cooked: bool = False, optimize: bool = True) -> list[tuple[int, int, int, int]]:
    """Compile ``expression`` to a classic BPF program for ``linktype``.

    The program is optimised (as tcpdump does; ``optimize=False`` as ``tcpdump -O``):
    shorter, with the same verdict for every packet as the unoptimised one.

    Accepted packets return ``snaplen``, others 0. With ``linux_cooked=True`` (only for
    LINUX_SLL or LINUX_SLL2) the program is rewritten for a Linux SOCK_DGRAM packet
    socket, where the kernel filter sees no SLL header (see
    _codegen.linux_cooked_fixup for the exact rules). ``inbound``/``outbound`` on other
    link types compile to Linux's ancillary packet-type load, as tcpdump -d does.
    """
    if not 0 <= snaplen <= 0xFFFFFFFF:
        raise FilterError(f"snaplen {snaplen} is out of range", expression=expression)
    tree = parse(expression)
    try:
        ir = lower(tree, expression, linktype, offline=False)
        program = emit_bpf(ir, snaplen, expression)
        if optimize:
            program = optimize_bpf(program)
    except RecursionError:
        raise stack_exhausted(expression) from None
    if linux_cooked:
        program = linux_cooked_fixup(program, linktype, expression)
    validate(program)
    return program

