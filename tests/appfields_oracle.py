# The comparison of purepcap's application fields with tshark's (corpus-meta/
# appfields.csv.gz), by the rules of corpus-meta/README.md, shared by the oracle test
# and by a report run: python tests/appfields_oracle.py [-v] [FIELD]
from __future__ import annotations

import csv
import gzip
import re
import sys
import warnings
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

from conftest import CORPUS, META  # noqa: E402

from purepcap import PcapError, PcapWarning, records  # noqa: E402
from purepcap._appfields import APP_FIELDS  # noqa: E402

APPFIELDS = META / "appfields.csv.gz"

# link types records() reads (headers.decode)
READ_LINKTYPES = frozenset((0, 1, 9, 12, 14, 50, 101, 104, 108, 113, 228, 229, 276))
_INT_FIELDS = ("dns_id", "dns_qtype", "dns_rcode", "http_status")
_ESCAPE = re.compile(r"\\(?:[0-7]{3}|[tnrabfv])")
_NON_PRINTABLE_RUN = re.compile(r"[^\x20-\x7e]+")


def load_oracle() -> tuple[dict[str, dict[int, dict[str, str]]], dict[str, str]]:
    """(rows by file and frame, linktype of each file's first row) from appfields.csv.gz."""
    rows: dict[str, dict[int, dict[str, str]]] = defaultdict(dict)
    files: list[str] = []
    with gzip.open(APPFIELDS, "rt", newline="") as f:
        for r in csv.DictReader(f):
            if r["scope"] == "file":
                files.append(r["file"])
            else:
                rows[r["file"]][int(r["frame"])] = r
    return rows, files


def _placeholder(s: str) -> str:
    return _NON_PRINTABLE_RUN.sub("\x00", _ESCAPE.sub("\x01", s).replace("\x01", "\x00"))


def oracle_value(row: dict[str, str], field: str):
    """tshark's value of ``field`` in a row, normalised as the README says (None: no value)."""
    v = row[field]
    if field == "dns_qname":
        if not row["dns_id"] or (v == "" and not row["dns_qtype"]):
            return None
        return "" if v == "<Root>" else _placeholder(v.removesuffix("."))
    if v == "":
        return None
    if field in _INT_FIELDS:
        return int(v)
    if field == "dns_answers":
        return frozenset(v.split("|"))
    if field == "tls_alpn":
        return tuple(_placeholder(x) for x in v.split("|"))
    if field in ("http_host", "http_user_agent"):
        return _placeholder(v.strip(" \t")) or None
    if field in ("ja3", "ja3s"):
        return v.lower()
    return _placeholder(v)


def our_value(value, field: str):
    if value is None or value == "" and field != "dns_qname" or value == ():
        return None
    if field == "dns_answers":
        return frozenset(value)
    if field == "tls_alpn":
        return tuple(_placeholder(x) for x in value)
    if field in ("http_host", "http_user_agent"):
        return _placeholder(value.strip(" \t")) or None
    if isinstance(value, str):
        return _placeholder(value)
    return value


def ours(path: Path):
    """frame -> the app field values (a tuple in APP_FIELDS' order, None where there are
    none) of every record of a capture, from records(fields=...)."""
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PcapWarning)
        try:
            for r in records(str(path), fields=APP_FIELDS, strict=False):
                values = tuple(r[f] for f in APP_FIELDS)
                out[r["frame"]] = values if any(v is not None for v in values) else None
        except PcapError:
            pass
    return out


def compare(fields=APP_FIELDS, files=None):
    """Per field: (agreeing, compared) counts, and the list of disagreements
    (file, frame, field, ours, tshark's)."""
    rows, all_files = load_oracle()
    agree = Counter()
    total = Counter()
    diffs = []
    for name in (files or all_files):
        path = CORPUS / name
        if not path.is_file():
            continue
        got = ours(path)
        frame_rows = rows.get(name, {})
        for frame in sorted(set(got) | set(frame_rows)):
            row = frame_rows.get(frame)
            if row is not None and row["scope"] != "scored":
                continue
            if row is not None and row["linktype"] and int(row["linktype"]) not in READ_LINKTYPES:
                continue
            values = got.get(frame)
            for i, field in enumerate(APP_FIELDS):
                if field not in fields:
                    continue
                if field == "dns_answers" and row is not None and "dns-answers-unaligned" in row["note"]:
                    continue
                mine = our_value(values[i], field) if values is not None else None
                theirs = oracle_value(row, field) if row is not None else None
                if mine is None and theirs is None:
                    continue
                total[field] += 1
                if mine == theirs:
                    agree[field] += 1
                else:
                    diffs.append((name, frame, field, mine, theirs))
    return agree, total, diffs


if __name__ == "__main__":
    verbose = "-v" in sys.argv
    wanted = [a for a in sys.argv[1:] if a != "-v"] or list(APP_FIELDS)
    agree, total, diffs = compare(wanted)
    for f in wanted:
        print(f"{f:16} {agree[f]:6} / {total[f]:6}")
    print(f"{'all':16} {sum(agree.values()):6} / {sum(total.values()):6}")
    if verbose:
        for d in diffs:
            print(*d, sep="  |  ")
