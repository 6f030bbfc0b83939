# Shared test plumbing: where the external oracle lives (../shared, optional), a
# cached reader for its tables, and the hypothesis profiles.
from __future__ import annotations

import csv
import functools
import gzip
import importlib.util
import os
from collections import defaultdict
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("PUREPCAP_SHARED", ROOT.parent / "shared"))
CORPUS = SHARED / "corpus"
META = SHARED / "corpus-meta"
FIXTURES = ROOT / "fixtures"

settings.register_profile("default", max_examples=100, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", max_examples=60, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "default"))


def have_corpus() -> bool:
    return (META / "oracle.csv.gz").is_file() and CORPUS.is_dir()


needs_corpus = pytest.mark.skipif(not have_corpus(), reason="../shared/corpus (the external oracle) is absent")


@functools.cache
def oracle_rows() -> dict[str, list[dict[str, str]]]:
    """tshark's rows from corpus-meta/oracle.csv.gz, grouped by file, in frame order."""
    rows: dict[str, list[dict[str, str]]] = defaultdict(list)
    with gzip.open(META / "oracle.csv.gz", "rt", newline="") as f:
        for r in csv.DictReader(f):
            rows[r["file"]].append(r)
    return dict(rows)


@functools.cache
def oracle_summary() -> dict[str, dict[str, str]]:
    with open(META / "oracle-summary.tsv", newline="") as f:
        return {r["file"]: r for r in csv.DictReader(f, delimiter="\t")}


@functools.cache
def manifest() -> dict[str, dict[str, str]]:
    with open(META / "manifest.tsv", newline="") as f:
        return {r["path"]: r for r in csv.DictReader(f, delimiter="\t")}


@functools.cache
def tcpdump_lines() -> dict[str, tuple[int, list[str]]]:
    """`tcpdump -tttt -n -q --time-stamp-precision=nano` output per file: (rc, lines)."""
    out: dict[str, tuple[int, list[str]]] = {}
    current = None
    with gzip.open(META / "tcpdump-q.txt.gz", "rt", errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("### "):
                path, rc = line[4:].rsplit(" rc=", 1)
                current = []
                out[path] = (int(rc), current)
            elif current is not None:
                current.append(line)
    return out


def oracle_time_ns(text: str) -> int | None:
    """tshark's frame.time_epoch as integer ns.

    tshark prints seconds and a *signed* nanosecond field joined by a dot; when the
    nanoseconds are negative (only in files with invalid fractions) it prints a
    leading '-' and their absolute value, and values of 1e9 or more print 10 digits.
    """
    if not text:
        return None
    sec, frac = text.lstrip("-").split(".")
    if text.startswith("-"):
        return int(sec) * 1_000_000_000 - int(frac)
    return int(sec) * 1_000_000_000 + int(frac)


def corpus_path(rel: str) -> Path:
    return CORPUS / rel


# -- the core suite ------------------------------------------------------------------------
# The core suite is every test file but these: the ones that test the extras, whose
# libraries each have their own range of Pythons. The core suite runs on every Python
# purepcap supports (CPython 3.9+ and PyPy) with only pytest and hypothesis installed
# (.ci/pythons.sh: `pytest -m core`); an extras file whose libraries are absent is
# reported as skipped instead of failing to import.
EXTRAS_TESTS = {
    "test_bench_smoke.py": ("dpkt", "pandas"),
    "test_dask.py": ("pandas", "intake", "distributed"),
    "test_dataframe.py": ("numpy", "pandas", "pyarrow"),
    "test_intake.py": ("pandas", "pyarrow", "intake"),
    "test_intake_live.py": ("pandas", "intake"),
    "test_intake_reader.py": ("pandas", "intake"),
}


class _ExtrasAbsent(pytest.Module):
    def collect(self):
        missing = [m for m in EXTRAS_TESTS[self.path.name] if importlib.util.find_spec(m) is None]
        pytest.skip(f"{self.path.name} needs {', '.join(missing)} (not installed)", allow_module_level=True)


def pytest_pycollect_makemodule(module_path: Path, parent):
    needs = EXTRAS_TESTS.get(module_path.name)
    if needs and any(importlib.util.find_spec(m) is None for m in needs):
        return _ExtrasAbsent.from_parent(parent, path=module_path)
    return None


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        if item.path.name not in EXTRAS_TESTS:
            item.add_marker(pytest.mark.core)
