# Shared test plumbing: where the external oracle lives (../shared, optional), a
# cached reader for its tables, and the hypothesis profiles.
from __future__ import annotations

import csv
import functools
import gzip
import importlib.util
import os
import sys
import warnings
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from purepcap import PcapWarning

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
# .ci/pythons.sh: the core suite again on the oldest and newest CPython and on PyPy, where
# the main run (profile "ci") has already tried 60 examples per property
settings.register_profile("pythons", max_examples=10, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "default"))


def pytest_configure(config: pytest.Config) -> None:
    # A file or socket left for the collector to close is a leak. CPython closes it the
    # moment its last reference goes, inside the test that dropped it, so there a leak
    # fails that test; PyPy's collector runs when it likes, so there it stays a warning.
    if sys.implementation.name == "cpython":
        config.addinivalue_line("filterwarnings", "error::ResourceWarning")
        config.addinivalue_line("filterwarnings", "error::pytest.PytestUnraisableExceptionWarning")


def with_pcap_warnings(work: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, list[str]]:
    """What ``work(*args, **kwargs)`` returns, and the texts of the PcapWarnings it gave:
    expected ones, for the test to compare rather than leave in pytest's summary. Any
    other warning is given again, as if it had not been caught."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PcapWarning)
        result = work(*args, **kwargs)
    said = []
    for w in caught:
        if issubclass(w.category, PcapWarning):
            said.append(str(w.message))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return result, said


def have_corpus() -> bool:
    return (META / "oracle.csv.gz").is_file() and CORPUS.is_dir()


needs_corpus = pytest.mark.skipif(not have_corpus(), reason="../shared/corpus (the external oracle) is absent")
# tracemalloc is CPython's; PyPy has none (there the address-space limits of
# test_robustness_resources.py are what bound memory)
needs_tracemalloc = pytest.mark.skipif(importlib.util.find_spec("_tracemalloc") is None,
                                       reason="this Python has no tracemalloc (PyPy)")


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


# Core tests that are heavy (5 s or more of work each, most of it in tcpdump, tshark or
# hypothesis's shrinker rather than in purepcap), which .ci/pythons.sh leaves to the main
# run (`-m "core and not heavy"`): the other Pythons run every other core test.
HEAVY_TESTS = {
    "test_filter_tcpdump.py::test_selection_equals_tcpdump",  # ~160 s: tcpdump per file and expression
    "test_cli_oracle.py::test_read_lines_match_tcpdump_on_ethernet_corpus",
    "test_live.py::test_no_fd_or_mmap_leak_over_1000_cycles",
    "test_robustness_resources.py::test_ten_thousand_corpus_mutations_stay_under_the_limit",
    "test_roundtrip.py::test_tshark_finds_every_built_checksum_correct_and_agrees_on_fields",
    "test_strategies.py::test_a_buggy_decoder_is_caught_and_shrinks_to_one_small_packet",
}


@pytest.hookimpl(tryfirst=True)  # before -k/-m deselect, so a renamed test is noticed below
def pytest_collection_modifyitems(items) -> None:
    seen_files, matched = set(), set()
    for item in items:
        name = item.path.name
        seen_files.add(name)
        if name not in EXTRAS_TESTS:
            item.add_marker(pytest.mark.core)
        key = f"{name}::{getattr(item, 'originalname', item.name)}"
        if key in HEAVY_TESTS:
            item.add_marker(pytest.mark.heavy)
            matched.add(key)
    stale = {k for k in HEAVY_TESTS if k.split("::")[0] in seen_files} - matched
    if stale:
        raise pytest.UsageError(f"HEAVY_TESTS in tests/conftest.py names tests that are not there: {sorted(stale)}")
