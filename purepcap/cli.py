# The `purepcap` command line: read, info, convert, flows, compile, capture, interfaces.
#
# Strategy: argparse verbs, each a small function over the public API; this module
# is a sink and only joins pieces (format, _lines, records/dataframe, filter, live).
# Every failure the user can cause ends in ONE line on stderr and exit code 1 (bad
# input) or 2 (usage, from argparse); no traceback reaches the terminal. A closed
# stdout (`| head`) ends the run quietly; SIGTERM unwinds like Ctrl-C (exit 143), so
# `convert` still removes its temporary file. Optional pieces are imported per verb so
# `purepcap read` starts fast and needs nothing outside the standard library.
from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import tempfile
import warnings
from collections.abc import Iterable, Sequence
from typing import IO, Any

from . import __version__, _schema, linktypes
from ._lines import LineFormatter, format_time, hexdump, network_offset
from ._progress import make_progress
from .errors import FilterError, PcapError, PcapWarning, damage_text

__all__ = ["main"]

PROG = "purepcap"


class UserError(Exception):
    """Bad input found by the command line itself: printed as one line, exit 1."""


class Terminated(BaseException):
    """SIGTERM arrived: unwind (so `convert` removes its temporary file) and exit 143.
    A BaseException, so that no handler of ordinary errors on the way swallows it."""


def _terminate(signum: int, frame: Any) -> None:
    raise Terminated


@contextlib.contextmanager
def _sigterm_unwinds():
    """SIGTERM raises Terminated for the block, unless it was ignored when we started (or we
    are not the main thread, where Python cannot handle signals)."""
    try:
        if signal.getsignal(signal.SIGTERM) is signal.SIG_IGN:
            old = None
        else:
            old = signal.signal(signal.SIGTERM, _terminate)
    except ValueError:
        old = None
    try:
        yield
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)


# -- argument parsing ------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    p = argparse.ArgumentParser(
        prog=PROG, formatter_class=fmt,
        description="Packet captures in pure Python: read, summarise, convert, filter and capture.",
        epilog="examples:\n"
               "  purepcap read fixtures/local.pcap udp\n"
               "  purepcap info fixtures/local.pcap\n"
               "  purepcap convert fixtures/local.pcap flows.parquet\n"
               "  purepcap compile 'tcp port 80' -d\n\n"
               "exit codes: 0 ok, 1 bad input (one line on stderr), 2 usage error",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="verb", metavar="VERB")
    sub.required = True

    r = sub.add_parser(
        "read", formatter_class=fmt, help="print one line per packet, like tcpdump -tttt -n -q",
        description="Print one line per packet in the style of `TZ=UTC tcpdump -tttt -n -q -r FILE`,\n"
                    "or with -w write the matching packets to a new capture file.",
        epilog="examples:\n"
               "  purepcap read fixtures/local.pcap\n"
               "  purepcap read fixtures/local.pcap -c 5 'tcp port 443'\n"
               "  purepcap read fixtures/local.pcap -w dns.pcapng udp port 53\n"
               "  tcpdump -U -w - -i eth0 | purepcap read -l - | grep 443")
    r.add_argument("file", metavar="FILE", help="capture file (pcap or pcapng, maybe compressed), or - for stdin")
    r.add_argument("-c", dest="count", type=_positive, metavar="N", help="stop after N matching packets")
    r.add_argument("-w", dest="write", metavar="OUT",
                   help="write matching packets to OUT (pcapng if it ends in .pcapng, else pcap; - for stdout)")
    r.add_argument("--payload", action="store_true", help="add a hex and ASCII dump of each packet (like tcpdump -X)")
    r.add_argument("--local-time", action="store_true", help="print local time instead of UTC")
    r.add_argument("--nano", action="store_true",
                   help="print times with 9 fraction digits (tcpdump --time-stamp-precision=nano); "
                        "the default is 6, as tcpdump")
    r.add_argument("-l", dest="line_buffered", action="store_true",
                   help="flush each line at once, for a live pipe into another program (as tcpdump -l)")
    _keep_going_option(r, "packet")
    r.add_argument("expression", nargs="*", default=[], metavar="EXPR",
                   help="pcap-filter expression (tcpdump syntax)")
    r.set_defaults(func=cmd_read)

    i = sub.add_parser(
        "info", formatter_class=fmt, help="summarise capture files, like capinfos",
        description="Summarise capture files like capinfos: format, byte order, interfaces, packets,\n"
                    "sizes, times, rates, truncated packets and whether the file ends cleanly.",
        epilog="examples:\n  purepcap info fixtures/local.pcap\n  purepcap info fixtures/multi/*.pcap --json")
    i.add_argument("files", nargs="+", metavar="FILE")
    i.add_argument("--json", action="store_true", help="print a JSON list, one object per file")
    i.set_defaults(func=cmd_info)

    c = sub.add_parser(
        "convert", formatter_class=fmt, help="write the records table as CSV, JSON Lines or Parquet",
        description="Write one row per IP packet (time, src_host, src_port, dst_host, dst_port,\n"
                    "protocol) as CSV, JSON Lines or Parquet, chosen by OUT's extension. The file\n"
                    "is written under a temporary name and renamed at the end, so a failed run\n"
                    "leaves no half-written file. Times are UTC with nanoseconds; payload is hex\n"
                    "in CSV and JSON Lines, binary in Parquet.",
        epilog="examples:\n"
               "  purepcap convert fixtures/local.pcap local.csv\n"
               "  purepcap convert fixtures/local.pcap local.parquet --payload udp\n"
               "  purepcap convert fixtures/local.pcap local.jsonl --columns ttl,tcp_flags")
    c.add_argument("file", metavar="FILE")
    c.add_argument("out", metavar="OUT", help="output file: .csv, .jsonl (or .ndjson) or .parquet")
    c.add_argument("--payload", action="store_true", help="add the payload column")
    c.add_argument("--columns", metavar="COLS", default="",
                   help="extra columns, comma separated (ttl, ip_version, tcp_flags, vlan, dns_qname, "
                        "tls_sni, ja4, ...); in CSV a tuple (dns_answers, tls_alpn) is its items joined by commas")
    _keep_going_option(c, "row")
    _reassemble_option(c, "the value is on the first segment")
    c.add_argument("expression", nargs="*", default=[], metavar="EXPR", help="pcap-filter expression")
    c.set_defaults(func=cmd_convert)

    fl = sub.add_parser(
        "flows", formatter_class=fmt, help="one line per flow (conversation), like tshark -z conv",
        description="Group the packets into flows (protocol, VLAN and the two endpoints, TCP connections\n"
                    "split as tshark's tcp.stream splits them) and print one line per flow as it\n"
                    "ends; --json prints JSON Lines, -w writes CSV, JSON Lines or Parquet (by extension).",
        epilog="examples:\n"
               "  purepcap flows fixtures/local.pcap\n"
               "  purepcap flows fixtures/local.pcap tcp --json\n"
               "  purepcap flows fixtures/local.pcap -w flows.parquet --stats --idle 60\n"
               "  purepcap flows fixtures/tls.pcap --columns server_name,ja4")
    fl.add_argument("file", metavar="FILE", help="capture file, or - for stdin")
    fl.add_argument("--json", action="store_true", help="print one JSON object per flow")
    fl.add_argument("-w", dest="write", metavar="OUT", help="write the flows to OUT (.csv, .jsonl or .parquet)")
    fl.add_argument("--idle", type=_timeout, default=120.0, metavar="S",
                    help="idle timeout in seconds, or 'none' (default 120)")
    fl.add_argument("--active", type=_timeout, default=1800.0, metavar="S",
                    help="active timeout in seconds, or 'none' (default 1800)")
    fl.add_argument("--stats", action="store_true", help="add nfstream's statistical features")
    fl.add_argument("--columns", metavar="COLS", default="",
                    help="add, comma separated, the first value in each flow of these packet columns "
                         "(ja3, ja4, ja3s, http_user_agent, dns_qname, ...) or server_name (TLS SNI, "
                         "else HTTP Host); a line shows those a flow has as name=value")
    _reassemble_option(fl, "they count for the flow")
    _keep_going_option(fl, "flow")
    fl.add_argument("expression", nargs="*", metavar="EXPR", help="pcap-filter expression")
    fl.set_defaults(func=cmd_flows)

    k = sub.add_parser(
        "compile", formatter_class=fmt, help="compile a filter to classic BPF, like tcpdump -d",
        description="Compile a pcap-filter expression to classic BPF and print it as tcpdump -d,\n"
                    "-dd or -ddd would (optimised, as tcpdump does; -O for the plain program).",
        epilog="examples:\n  purepcap compile 'tcp port 80'\n  purepcap compile -dd --linktype 113 'udp'")
    k.add_argument("expression", nargs="+", metavar="EXPR")
    k.add_argument("--linktype", type=_linktype, default=linktypes.EN10MB, metavar="N",
                   help="link type number or name (default 1, EN10MB)")
    k.add_argument("-s", dest="snaplen", type=_positive, default=linktypes.MAX_SNAPLEN, metavar="SNAPLEN")
    k.add_argument("-O", dest="optimize", action="store_false",
                   help="do not optimise the program (as tcpdump -O)")
    style = k.add_mutually_exclusive_group()
    style.add_argument("-d", dest="style", action="store_const", const="-d", help="readable (default)")
    style.add_argument("-dd", dest="style", action="store_const", const="-dd", help="as a C array")
    style.add_argument("-ddd", dest="style", action="store_const", const="-ddd", help="as decimal numbers")
    k.set_defaults(func=cmd_compile, style="-d")

    cap = sub.add_parser(
        "capture", formatter_class=fmt, help="capture live packets from an interface",
        description="Capture packets from a network interface (needs CAP_NET_RAW or root). Prints\n"
                    "lines as `read` does, or with -w writes them to a capture file that stays\n"
                    "readable if the run is stopped. Ctrl-C or SIGTERM stop cleanly and print\n"
                    "tcpdump's three counts on stderr.",
        epilog="examples:\n"
               "  purepcap capture -i eth0 -c 10 tcp port 443\n"
               "  purepcap capture -i lo --timeout 30 -w lo.pcapng")
    cap.add_argument("-i", dest="interface", required=True, metavar="IFACE")
    cap.add_argument("-c", dest="count", type=_positive, metavar="N", help="stop after N packets")
    cap.add_argument("--timeout", type=_seconds, metavar="S", help="stop after S seconds")
    cap.add_argument("-s", dest="snaplen", type=_positive, default=linktypes.MAX_SNAPLEN, metavar="SNAPLEN")
    cap.add_argument("-w", dest="write", metavar="OUT", help="write to OUT (.pcap or .pcapng)")
    cap.add_argument("--no-promisc", action="store_true", help="do not put the interface in promiscuous mode")
    cap.add_argument("--payload", action="store_true", help="add a hex and ASCII dump of each packet")
    cap.add_argument("--local-time", action="store_true", help="print local time instead of UTC")
    cap.add_argument("--nano", action="store_true", help="print times with 9 fraction digits")
    # default=[]: argparse counts a "*" positional without a default as required in its
    # error message ("required: FILE, EXPR") though it accepts no words at all
    cap.add_argument("expression", nargs="*", default=[], metavar="EXPR")
    cap.set_defaults(func=cmd_capture)

    ifs = sub.add_parser("interfaces", formatter_class=fmt, help="list the interfaces capture can use",
                         description="List the network interfaces `purepcap capture -i` can use.",
                         epilog="example:\n  purepcap interfaces")
    ifs.set_defaults(func=cmd_interfaces)
    return p


def _reassemble_option(parser: argparse.ArgumentParser, where: str) -> None:
    parser.add_argument("--reassemble", action="store_true",
                        help="join the TCP segments of split TLS hellos and HTTP request headers for the "
                             f"application columns (ja3, tls_sni, http_host, ...); {where}")


def _column_names(text: str) -> list[str]:
    return [c.strip() for c in text.split(",") if c.strip()]


def _keep_going_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--keep-going", action="store_true",
                        help=f"on a damaged or cut-short capture, write every good {what}, say on stderr "
                             "what was lost (file, offset, frame) and exit 1; without it the damage "
                             "ends the run there (exit 1)")


def _positive(text: str) -> int:
    try:
        n = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if n <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be positive")
    return n


def _timeout(text: str) -> float | None:
    if text.lower() in ("none", "never"):
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected seconds >= 0 or 'none', got {text!r}")
    return value


def _seconds(text: str) -> float:
    from .live import check_timeout

    try:
        return check_timeout(float(text))  # type: ignore[return-value]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number of seconds >= 0") from None


def _linktype(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        pass
    value = getattr(linktypes, text.upper(), None)
    if isinstance(value, int):
        return value
    raise argparse.ArgumentTypeError(f"unknown link type {text!r}")


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    # Expression words may come after options (`read f.pcap tcp -c 5 port 80`); argparse
    # leaves those over, so they are put back in order. Anything else is a usage error.
    unknown = [w for w in extra if w.startswith("-") and len(w) > 1]
    if unknown or (extra and not hasattr(args, "expression")):
        parser.parse_args(argv)  # reports the error and exits 2
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:
        args.expression = list(args.expression) + extra
    return args


def _expression(args: argparse.Namespace) -> str | None:
    words = getattr(args, "expression", None) or []
    text = " ".join(words).strip()
    return text or None


# -- error reporting -------------------------------------------------------------------------
def _one_line(exc: BaseException, where: str | None) -> str:
    if isinstance(exc, FilterError):
        msg = exc.message
        if exc.column is not None and "column" not in msg and "the end" not in msg:  # no "at the end at column 8"
            msg += f" at column {exc.column}"
        expr = exc.expression if exc.expression is not None else where
        text = f"bad filter expression {expr!r}: {msg}" if expr else f"bad filter expression: {msg}"
    elif isinstance(exc, PcapError):
        text = damage_text(exc)
        if where and not text.startswith(where):
            text = f"{where}: {text}"
    elif isinstance(exc, OSError):
        name = exc.filename if exc.filename is not None else where
        reason = exc.strerror or str(exc)
        text = f"{name}: {reason}" if name else reason
    elif isinstance(exc, ImportError):  # a missing extra is about this machine, not the input file
        text = str(exc)
    elif isinstance(exc, MemoryError):
        text = "out of memory" + (f" ({exc})" if str(exc) else "")
        if where:
            text = f"{where}: {text}"
    elif isinstance(exc, NotImplementedError):
        text = str(exc) or "not implemented yet"
        if where:
            text = f"{where}: {text}"
    else:
        text = str(exc) or type(exc).__name__
        if where and not text.startswith(str(where)):
            text = f"{where}: {text}"
    return " ".join(text.split())


def _error(verb: str, message: str) -> None:
    sys.stderr.write(f"{PROG} {verb}: {message}\n")
    sys.stderr.flush()


def _quiet_broken_pipe() -> None:
    # Python flushes stdout at exit and would complain a second time; point it at devnull.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 1 bad input, 2 usage)."""
    try:
        args = _parse(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:  # argparse: --help, --version (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else 2
    args.where = None
    try:
        with _sigterm_unwinds(), warnings.catch_warnings():
            warnings.simplefilter("ignore", PcapWarning)
            rc = args.func(args)
        sys.stdout.flush()
        return rc
    except Terminated:
        return 128 + signal.SIGTERM
    except BrokenPipeError:
        _quiet_broken_pipe()
        return 0
    except KeyboardInterrupt:
        sys.stderr.write("\n")
        return 130
    except MemoryError as exc:  # numpy's _ArrayMemoryError too; what was built is gone by now
        _error(args.verb, _one_line(exc, args.where))
        return 1
    except (PcapError, OSError, ImportError, NotImplementedError, UserError, ValueError) as exc:
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            _quiet_broken_pipe()
            return 0
        except OSError:
            pass
        _error(args.verb, _one_line(exc, args.where))
        return 1


# -- read ------------------------------------------------------------------------------------
class CaptureSink:
    """Writes packets to a pcap or pcapng file as `tcpdump -w` does.

    The writer is made on the first packet so it can copy that packet's interface
    (link type, snaplen, resolution). pcapng output gets one interface per input
    interface seen; pcap output can hold only one link type, which is checked.
    """

    def __init__(self, dest: str, capture: Any) -> None:
        self.dest = dest
        self.capture = capture
        self.pcapng = dest.endswith(".pcapng")
        self.writer: Any = None
        self._map: dict[int, int] = {}
        self.packets = 0

    def _iface(self, index: int) -> Any:
        ifaces = self.capture.interfaces
        return ifaces[index] if index < len(ifaces) else None

    def _open(self, iface: Any) -> None:
        from .format import PcapngWriter, PcapWriter

        if self.pcapng:
            self.writer = PcapngWriter(self.dest, linktype=None)
        else:
            linktype = iface.linktype if iface else linktypes.EN10MB
            snaplen = iface.snaplen if iface and iface.snaplen else linktypes.MAX_SNAPLEN
            nano = bool(iface) and iface.tsresol > 1_000_000
            self.writer = PcapWriter(self.dest, linktype=linktype, snaplen=snaplen, nanosecond=nano)

    def start(self) -> None:
        """Write the file header now (a live capture's file exists from the start, as tcpdump's)."""
        if self.writer is None:
            self._open(self._iface(0))

    def write(self, p: Any) -> None:
        iface = self._iface(p.interface)
        if self.writer is None:
            self._open(iface)
        w = self.writer
        if self.pcapng:
            out = self._map.get(p.interface)
            if out is None:
                out = self._map[p.interface] = w.add_interface(
                    p.linktype, snaplen=(iface.snaplen if iface and iface.snaplen else linktypes.MAX_SNAPLEN),
                    tsresol=9 if iface is None or iface.tsresol > 1_000_000 else 6,
                    name=iface.name if iface else None)
            if p.time is None:
                w.write_simple(p.data, length=p.length)
            else:
                w.write_packet(p.time, p.data, length=p.length, interface=out)
        else:
            if p.linktype != w.linktype:
                raise UserError(f"{self.dest}: packet {p.frame} has link type {linktypes.name(p.linktype)} but "
                                f"the pcap file holds {linktypes.name(w.linktype)}; write .pcapng instead")
            w.write_packet(p.time, p.data, length=p.length)
        self.packets += 1

    def flush(self) -> None:
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        if self.writer is None:  # no packet matched: still write a valid, empty capture
            self._open(self._iface(0))
        self.writer.close()


def _file_size(name: str) -> int | None:
    try:
        return os.path.getsize(name) if name != "-" else None
    except OSError:
        return None


class _Pipe:
    """Standard input as a live pipe: each read returns what has arrived (at least one
    byte, or b"" at the end) instead of waiting for a whole chunk, so packets from
    `tcpdump -U -w - | purepcap read -` show as they come. The readers take short reads."""

    name = "<stdin>"

    def __init__(self, raw: Any) -> None:
        self._raw = raw
        self._read1 = getattr(raw, "read1", raw.read)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            return self._raw.read()
        return self._read1(size) if size else b""

    def close(self) -> None:
        pass


def _stdin_or(name: str) -> Any:
    return _Pipe(sys.stdin.buffer) if name == "-" else name


def _open_capture(name: str, expression: str | None, *, errors: str = "raise") -> Any:
    import purepcap

    return purepcap.open(_stdin_or(name), filter=expression, errors=errors)


class KeepGoing:
    """--keep-going: the readers run with errors="warn", the PcapWarnings they give (what
    was lost: file, offset, frame) are gathered while the verb runs, and ``finish`` says
    in one line on stderr what was lost and makes the exit code 1. Without the option
    the readers raise (errors="raise") and nothing is gathered."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.on = bool(getattr(args, "keep_going", False))
        self.verb = args.verb
        self.errors = "warn" if self.on else "raise"
        self.lost: list[str] = []
        self._catch: Any = None

    def __enter__(self) -> KeepGoing:
        if self.on:
            self._catch = warnings.catch_warnings(record=True)
            self._seen = self._catch.__enter__()
            warnings.simplefilter("always", PcapWarning)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._catch is not None:
            self.lost = [str(w.message) for w in self._seen if issubclass(w.category, PcapWarning)]
            self._catch.__exit__(*exc)
            self._catch = None
            for w in self._seen:  # any other warning goes on as it came
                if not issubclass(w.category, PcapWarning):
                    warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)

    def finish(self, rc: int = 0) -> int:
        if not self.lost:
            return rc
        more = len(self.lost) - 1
        _error(self.verb, " ".join(self.lost[0].split())
               + (f" (and {more} more damaged block{'s' if more != 1 else ''} skipped)" if more else ""))
        return 1


def cmd_read(args: argparse.Namespace) -> int:
    args.where = "<stdin>" if args.file == "-" else args.file
    if args.line_buffered:
        with contextlib.suppress(AttributeError, ValueError):
            sys.stdout.reconfigure(line_buffering=True)
    expression = _expression(args)
    keep = KeepGoing(args)
    with keep:
        _read(args, expression, keep)
    return keep.finish()


def _read(args: argparse.Namespace, expression: str | None, keep: KeepGoing) -> None:
    cap = _open_capture(args.file, expression, errors=keep.errors)
    sink = None
    with contextlib.ExitStack() as stack:
        stack.callback(cap.close)
        count = args.count
        if args.write:
            sink = CaptureSink(args.write, cap)
            show = make_progress(_file_size(args.file))
            stack.callback(show.close)
            try:
                for p in cap:
                    sink.write(p)
                    show.tick(p.caplen + 16)
                    if count is not None and sink.packets >= count:
                        break
            finally:
                sink.close()  # errors about the output name it themselves (OSError, UserError)
            return
        out = sys.stdout
        write = out.write
        digits = 9 if args.nano else 6  # tcpdump's -tttt: µs unless asked, whatever the file holds
        lines = LineFormatter(lambda p: digits, local=args.local_time)
        show = make_progress(_file_size(args.file), enabled=None if not _isatty(out) else False)
        stack.callback(show.close)
        n = 0
        payload = args.payload
        for p in cap:
            write(lines.line(p) + "\n")
            if payload:
                write(hexdump(p.data, network_offset(p.linktype, p.data)) + "\n")
            show.tick(p.caplen + 16)
            n += 1
            if count is not None and n >= count:
                break


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


# -- info ------------------------------------------------------------------------------------
def summarise(name: str, progress: Any = None) -> dict[str, Any]:
    """Everything `purepcap info` reports for one file, as plain data."""
    tick = progress.tick if progress is not None else None
    import purepcap

    packets = captured = wire = truncated = 0
    first = last = None
    per_iface: dict[int, int] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PcapWarning)
        with purepcap.open(_stdin_or(name), strict=False) as cap:
            for p in cap:
                packets += 1
                captured += p.caplen
                if tick is not None:
                    tick(p.caplen + 16)
                wire += p.length
                if p.caplen < p.length:
                    truncated += 1
                per_iface[p.interface] = per_iface.get(p.interface, 0) + 1
                t = p.time
                if t is not None:
                    if first is None or t < first:
                        first = t
                    if last is None or t > last:
                        last = t
            desc = cap.describe()
            written_by = {k: getattr(cap, k, None) for k in ("application", "os", "hardware")}
            error = cap.error
            clean = cap.clean_end if cap.clean_end is not None else error is None
    fine = any(i.tsresol > 1_000_000 for i in cap.interfaces)
    digits = 9 if fine else 6
    duration = (last - first) if first is not None and last is not None else None
    info: dict[str, Any] = {
        "file": name,
        "format": desc["format"],
        "version": desc["version"],
        "byte_order": desc["byte_order"],
        "compression": desc["compression"],
        "precision": desc["precision"],
        "interfaces": [
            {"index": i["index"], "linktype": i["linktype"], "linktype_name": i["linktype_name"],
             "snaplen": i["snaplen"], "name": i["name"], "precision": i["precision"],
             "packets": per_iface.get(i["index"], 0)}
            for i in desc["interfaces"]
        ],
        "linktypes": sorted({i["linktype"] for i in desc["interfaces"]}),
        "packets": packets,
        "bytes_captured": captured,
        "bytes_on_wire": wire,
        "average_packet_size": (captured / packets) if packets else None,
        "first_time": first,
        "last_time": last,
        "first": format_time(first, digits) + " UTC" if first is not None else None,
        "last": format_time(last, digits) + " UTC" if last is not None else None,
        "duration_ns": duration,
        "packets_per_second": (packets * 1e9 / duration) if duration else None,
        "bytes_per_second": (captured * 1e9 / duration) if duration else None,
        "truncated_packets": truncated,
        "clean_end": bool(clean),
        "error": damage_text(error) if error is not None else None,
    }
    for key, value in written_by.items():
        if isinstance(value, str) and value:
            info[key] = value
    if desc.get("modified"):
        info["modified"] = True
    if desc.get("fcs_length"):
        info["fcs_length"] = desc["fcs_length"]
    return info


def _render_info(i: dict[str, Any]) -> str:
    order = {"<": "little", ">": "big"}.get(i["byte_order"], i["byte_order"]) + "-endian"
    kind = f"{i['format']} {i['version']}" + (" (modified)" if i.get("modified") else "")
    precision = {"s": "second", "ms": "millisecond", "us": "microsecond", "ns": "nanosecond"}.get(
        i["precision"], i["precision"])
    rows = [
        ("File name", i["file"]),
        ("File format", f"{kind}, {order}, {precision} timestamps"),
        ("Compression", i["compression"] or "none"),
    ]
    for key, label in (("application", "Written by"), ("os", "Operating system"), ("hardware", "Hardware")):
        if i.get(key):
            rows.append((label, i[key]))
    for f in i["interfaces"]:
        label = f"Interface {f['index']}" + (f" ({f['name']})" if f["name"] else "")
        rows.append((label, f"{f['linktype_name']} (link type {f['linktype']}), snaplen {f['snaplen']}"
                            + (f", {f['packets']:,} packet{'s' if f['packets'] != 1 else ''}"
                               if len(i["interfaces"]) > 1 else "")))
    rows += [
        ("Packets", f"{i['packets']:,}"),
        ("Data size", f"{i['bytes_captured']:,} bytes captured, {i['bytes_on_wire']:,} bytes on the wire"),
        ("Average size", f"{i['average_packet_size']:,.2f} bytes" if i["average_packet_size"] else "n/a"),
        ("First packet", i["first"] or "n/a"),
        ("Last packet", i["last"] or "n/a"),
        ("Duration", f"{i['duration_ns'] / 1e9:.6f} s" if i["duration_ns"] is not None else "n/a"),
        ("Packet rate", f"{i['packets_per_second']:,.2f} packets/s" if i["packets_per_second"] else "n/a"),
        ("Data rate", f"{i['bytes_per_second']:,.2f} bytes/s" if i["bytes_per_second"] else "n/a"),
        ("Truncated packets", f"{i['truncated_packets']:,} (captured length < original length)"),
        ("Ends cleanly", "yes" if i["clean_end"] else f"no: {i['error']}"),
    ]
    return "\n".join(f"{k + ':':<20} {v}" for k, v in rows)


def cmd_info(args: argparse.Namespace) -> int:
    results = []
    rc = 0
    for n, name in enumerate(args.files):
        try:
            with make_progress(_file_size(name)) as show:
                info = summarise(name, show)
        except (PcapError, OSError, MemoryError) as exc:
            _error("info", _one_line(exc, name))
            rc = 1
            continue
        if args.json:
            results.append(info)
        else:
            if n:
                sys.stdout.write("\n")
            sys.stdout.write(_render_info(info) + "\n")
        if not info["clean_end"]:  # as capinfos: the summary of what was read, then the error, exit 1
            _error("info", " ".join((info["error"] or f"{name}: the capture does not end cleanly").split()))
            rc = 1
    if args.json:
        sys.stdout.write(json.dumps(results, indent=2) + "\n")
    return rc


# -- convert ---------------------------------------------------------------------------------
# the columns of every output, as to_pandas gives them; from the one field table
BASE_COLUMNS = list(_schema.FRAME_DEFAULT)


def _out_kind(out: str) -> str:
    low = out.lower()
    for ext, kind in ((".csv", "csv"), (".jsonl", "jsonl"), (".ndjson", "jsonl"), (".parquet", "parquet"),
                      (".pq", "parquet")):
        if low.endswith(ext):
            return kind
    raise UserError(f"{out}: unknown output type (use .csv, .jsonl or .parquet)")


_TIMES = LineFormatter()  # caches the date part per second: convert formats a time per row


def _cell(key: str, value: Any) -> Any:
    if key == "time":
        return None if value is None else _TIMES.time(value, 9)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, tuple):
        return list(value)
    return value


def _csv_cell(key: str, value: Any) -> Any:
    """A CSV cell: _cell's, with None empty and a tuple's items joined by commas (as tshark
    -T fields and Zeek's logs join a field's several values)."""
    value = _cell(key, value)
    if value is None:
        return ""
    if isinstance(value, list):
        return ",".join(map(str, value))
    return value


@contextlib.contextmanager
def atomic_output(path: str, mode: str = "w"):
    """A temporary file next to ``path``, renamed onto it only when the block succeeds."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".part", dir=directory)
    except OSError as exc:  # name the file the user asked for, not our temporary one
        raise OSError(exc.errno, exc.strerror, path) from None
    try:
        if mode == "wb":
            f = os.fdopen(fd, "wb")
        else:
            f = os.fdopen(fd, "w", newline="", encoding="utf-8")
        with f:
            yield f, tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _records(args: argparse.Namespace, columns: list[str], errors: str) -> Iterable[dict]:
    from ._records import records

    # frame, length and caplen are in every records() row already: ask only for the rest
    extra = [c for c in columns if c not in _schema.ROW_DEFAULT and c != "payload"]
    kw: dict[str, Any] = {"payload": args.payload, "filter": _expression(args), "errors": errors}
    if extra:
        kw["fields"] = extra
    if args.reassemble:
        kw["reassemble"] = True
    return records(_stdin_or(args.file), **kw)


def cmd_convert(args: argparse.Namespace) -> int:
    args.where = args.file
    kind = _out_kind(args.out)
    extra = _column_names(args.columns)
    # the order of records() rows and of to_pandas(): the base columns, payload, the extras
    columns = BASE_COLUMNS + (["payload"] if args.payload else []) + [c for c in extra if c not in BASE_COLUMNS]
    keep = KeepGoing(args)
    with keep:
        if kind == "parquet":
            _convert_parquet(args, columns, keep.errors)
        else:
            _convert_rows(args, columns, kind, keep.errors)
    return keep.finish()


def _convert_rows(args: argparse.Namespace, columns: list[str], kind: str, errors: str) -> None:
    show = make_progress(_file_size(args.file))
    with show, atomic_output(args.out) as (f, _tmp):
        rows = _records(args, columns, errors)
        if kind == "csv":
            import csv

            w = csv.writer(f)
            w.writerow(columns)
            for r in rows:
                w.writerow([_csv_cell(c, r.get(c)) for c in columns])
                show.tick(r.get("caplen", 0) + 16)
        else:
            dumps = json.JSONEncoder(separators=(",", ":")).encode
            for r in rows:
                f.write(dumps({c: _cell(c, r.get(c)) for c in columns}) + "\n")
                show.tick(r.get("caplen", 0) + 16)


def _convert_parquet(args: argparse.Namespace, columns: list[str], errors: str) -> None:
    """Parquet from to_arrow's tables, a row group at a time (memory holds one group), in
    to_arrow's schema: the same file whatever else is installed."""
    from .errors import missing_extra

    try:
        import numpy  # noqa: F401
        import pyarrow.parquet as pq
    except ImportError:
        raise missing_extra("parquet", "pyarrow") from None
    from .arrow import ROW_GROUP_ROWS, arrow_schema, arrow_tables

    extra = [c for c in columns if c not in BASE_COLUMNS and c != "payload"]
    schema = arrow_schema(extra, args.payload)  # checks the names before a file is made
    show = make_progress(_file_size(args.file))
    with show, atomic_output(args.out, "wb") as (f, _tmp):
        with pq.ParquetWriter(f, schema, version="2.6") as writer:
            for table in arrow_tables(_stdin_or(args.file), payload=args.payload, filter=_expression(args),
                                      columns=extra, progress=show, errors=errors, reassemble=args.reassemble,
                                      part_rows=ROW_GROUP_ROWS // 8 if args.payload else ROW_GROUP_ROWS):
                writer.write_table(table, row_group_size=max(len(table), 1))


# -- flows -----------------------------------------------------------------------------------
def _line_value(value: Any) -> str:
    """A field's value after ``name=`` on a flow line: JSON-quoted when it holds a space or
    a quote (user agents do), so that each name=value stays one word."""
    text = str(value)
    return json.dumps(text) if not text or any(c.isspace() or c == '"' for c in text) else text


def _flow_line(f: dict[str, Any], fields: Sequence[str] = ()) -> str:
    def end(host: str, port: Any) -> str:
        host = f"[{host}]" if ":" in host and port is not None else host
        return host if port is None else f"{host}:{port}"

    start = _TIMES.time(f["start"], 6)
    secs = (f["end"] - f["start"]) / 1e9
    shown = "".join(f" {name}={_line_value(_csv_cell(name, f[name]))}" for name in fields
                    if f.get(name) is not None)
    return (f"{start} {secs:10.6f}s {f['protocol']:<6} {end(f['src_host'], f['src_port'])} <-> "
            f"{end(f['dst_host'], f['dst_port'])} {f['src_packets']} > {f['dst_packets']} pkts, "
            f"{f['src_bytes']:,} > {f['dst_bytes']:,} bytes, {f['conn_state']} {f['end_reason']}{shown}")


def cmd_flows(args: argparse.Namespace) -> int:
    args.where = args.file
    keep = KeepGoing(args)
    with keep:
        _flows(args, keep.errors)
    return keep.finish()


def _flows(args: argparse.Namespace, errors: str) -> None:
    from ._flows import flow_keys, flows

    keys = flow_keys(args.stats)
    fields = [c for c in dict.fromkeys(_column_names(args.columns)) if c not in keys]
    kw: dict[str, Any] = {"filter": _expression(args), "idle_timeout": args.idle, "active_timeout": args.active,
                          "stats": args.stats, "errors": errors}
    if fields:
        kw["fields"] = fields
    if args.reassemble:
        kw["reassemble"] = True
    if args.write and _out_kind(args.write) == "parquet":
        from .errors import missing_extra

        try:
            import numpy  # noqa: F401
            import pyarrow.parquet as pq
        except ImportError:
            raise missing_extra("parquet", "pyarrow") from None
        from .arrow import flows_to_arrow

        table = flows_to_arrow(_stdin_or(args.file), **kw)  # the schema of the columns asked for, whatever is installed
        with atomic_output(args.write, "wb") as (f, _tmp):
            pq.write_table(table, f, version="2.6")
        return
    rows = flows(_stdin_or(args.file), **kw)
    columns = flow_keys(args.stats, fields)
    if args.write:
        kind = _out_kind(args.write)
        with atomic_output(args.write) as (f, _tmp):
            if kind == "csv":
                import csv

                w = csv.writer(f)
                w.writerow(columns)
                for r in rows:
                    w.writerow([_csv_cell(c, r[c]) for c in columns])
            else:
                dumps = json.JSONEncoder(separators=(",", ":")).encode
                for r in rows:
                    f.write(dumps(r) + "\n")
        return
    out = sys.stdout
    if args.json:
        dumps = json.JSONEncoder(separators=(",", ":")).encode
        for r in rows:
            out.write(dumps(r) + "\n")
    else:
        for r in rows:
            out.write(_flow_line(r, fields) + "\n")


# -- compile ---------------------------------------------------------------------------------
def cmd_compile(args: argparse.Namespace) -> int:
    from .filter import compile_bpf, dump_bpf

    expression = _expression(args) or ""
    args.where = repr(expression)
    program = compile_bpf(expression, args.linktype, args.snaplen, optimize=args.optimize)
    sys.stdout.write(dump_bpf(program, args.style).rstrip("\n") + "\n")
    return 0


# -- capture ---------------------------------------------------------------------------------
def cmd_capture(args: argparse.Namespace) -> int:
    from . import live

    args.where = args.interface
    expression = _expression(args)
    stats: dict[str, Any] = {}
    captured = 0
    sink = None
    session = live.capture(args.interface, count=args.count, timeout=args.timeout, filter=expression,
                           snaplen=args.snaplen, promisc=not args.no_promisc, immediate=args.write is None)

    def _stop(signum: int, frame: Any) -> None:
        # Ask the capture to end after the packet in hand, so a packet is never cut in
        # half in the output file; a second Ctrl-C interrupts at once.
        session.stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    old = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with session:
            if args.write:
                sink = CaptureSink(args.write, _LiveInterfaces(session))
                sink.start()
                sink.flush()
            digits = 9 if args.nano else 6
            lines = LineFormatter(lambda p: digits, local=args.local_time)
            out = sys.stdout
            try:
                for p in session:
                    captured += 1
                    if sink is not None:
                        sink.write(p)
                        sink.flush()  # a killed capture still leaves every packet so far on disk
                    else:
                        out.write(lines.line(p) + "\n")
                        if args.payload:
                            out.write(hexdump(p.data, network_offset(p.linktype, p.data)) + "\n")
                        out.flush()
            except KeyboardInterrupt:
                pass
            finally:
                if sink is not None:
                    sink.close()
                stats = dict(getattr(session, "stats", {}) or {})
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
    received = stats.get("received", captured)
    dropped = stats.get("dropped", 0)
    sys.stderr.write(f"{captured} packet{'s' if captured != 1 else ''} captured\n"
                     f"{received} packet{'s' if received != 1 else ''} received by filter\n"
                     f"{dropped} packet{'s' if dropped != 1 else ''} dropped by kernel\n")
    return 0


class _LiveInterfaces:
    """What CaptureSink needs from a live capture: one interface, nanosecond stamps."""

    def __init__(self, session: Any) -> None:
        from .format import Interface

        linktype = getattr(session, "linktype", linktypes.EN10MB)
        self.interfaces = [Interface(linktype=linktype, snaplen=getattr(session, "snaplen", linktypes.MAX_SNAPLEN),
                                     tsresol=1_000_000_000, name=getattr(session, "interface", None))]
        self.precision = "ns"


def cmd_interfaces(args: argparse.Namespace) -> int:
    from . import live

    # tcpdump -D's layout: "1.eth0 [Up, Running]", then what else is cheap to know
    for n, item in enumerate(live.interfaces(), 1):
        name = getattr(item, "name", str(item))
        flags = [label for attr, label in (("up", "Up"), ("running", "Running"), ("loopback", "Loopback"),
                                           ("promisc", "Promiscuous")) if getattr(item, attr, False)]
        extra = []
        linktype = getattr(item, "linktype", None)
        if linktype is not None:
            extra.append(f"link type {linktypes.name(linktype)}")
        if getattr(item, "mtu", None):
            extra.append(f"mtu {item.mtu}")
        extra += list(getattr(item, "addresses", ()) or ())
        line = f"{getattr(item, 'index', n)}.{name}" + (f" [{', '.join(flags)}]" if flags else "")
        sys.stdout.write(line + (f"  {', '.join(extra)}" if extra else "") + "\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
