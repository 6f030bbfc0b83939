# What a new user meets first (issue 20): the package's face (py.typed, repr, dir,
# import paths), the command line's small promises (tcpdump's time digits, capinfos'
# exit code, usage lines, messages) and the README's examples, each run as written.
from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import FIXTURES, ROOT

import purepcap
from purepcap.cli import main

LOCAL = FIXTURES / "local.pcap"


def run_main(*argv: str) -> tuple[int, str, str]:
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(argv))
    return rc, out.getvalue(), err.getvalue()


def run_python(code: str, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH"))))}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=env, cwd=kw.pop("cwd", ROOT), **kw)


# Imports made to fail in a child process, as on a machine without that package
BLOCK = ("import sys\n"
         "class _Block:\n"
         "    def __init__(self, names): self.names = names\n"
         "    def find_spec(self, name, path=None, target=None):\n"
         "        if name.split('.')[0] in self.names: raise ModuleNotFoundError(f'No module named {name!r}')\n"
         "sys.meta_path.insert(0, _Block({names!r}))\n")


def without(*names: str) -> str:
    return BLOCK.replace("{names!r}", repr(set(names)))


# -- the package's face -------------------------------------------------------------------------
def test_py_typed_is_shipped(tmp_path: Path):
    assert (ROOT / "purepcap" / "py.typed").is_file()
    # the wheel holds it: built from a copy, so the checkout gets no build/ or egg-info
    src = tmp_path / "src"
    shutil.copytree(ROOT / "purepcap", src / "purepcap", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "w"),
                        str(src)], capture_output=True, text=True, timeout=300)
    if r.returncode and re.search(r"Could not find a version|No matching distribution|connection",
                                  r.stdout + r.stderr, re.I):
        pytest.skip("the build backend cannot be installed here (no package index)")
    assert r.returncode == 0, r.stderr[-2000:]
    (wheel,) = (tmp_path / "w").glob("purepcap-*.whl")
    assert "purepcap/py.typed" in zipfile.ZipFile(wheel).namelist()


def test_repr_of_capture_and_filtered_capture():
    with purepcap.open(LOCAL) as cap:
        text = repr(cap)
        assert text.startswith("<purepcap.Capture ") and "local.pcap" in text
        assert "pcap 2.4" in text and "EN10MB" in text and " us" in text
        assert "ended" not in text
        list(cap)
        assert repr(cap).endswith(", ended after 38 packets>")
    with purepcap.open(FIXTURES / "local.pcapng", filter="udp port 53") as cap:
        text = repr(cap)
        assert "pcapng 1.0" in text and " ns" in text and "filter 'udp port 53'" in text
    with purepcap.open(gzip.compress(LOCAL.read_bytes())) as cap:
        assert "'<bytes>' pcap 2.4 gzip EN10MB" in repr(cap)
    cut = LOCAL.read_bytes()[:3000]
    with pytest.warns(purepcap.PcapWarning), purepcap.open(cut, strict=False) as cap:
        list(cap)
    assert repr(cap).endswith("stopped at damage after 13 packets>")


def test_repr_of_packet():
    with purepcap.open(LOCAL) as cap:
        p = next(cap)
    assert repr(p).startswith("Packet(frame=1, time=1704164645014873000, caplen=60, length=60, linktype=1, ")


def test_repr_of_live_capture():
    from purepcap import live

    try:
        cap = live.capture("lo", count=1, timeout=0.01)
    except purepcap.CaptureError as exc:
        pytest.skip(f"no live capture here: {exc}")
    with cap:
        assert re.fullmatch(r"<LiveCapture lo linktype=1 snaplen=262144 method=\S+ open>", repr(cap))
    assert repr(cap).endswith(" closed>")


def test_dir_shows_the_public_surface_only():
    names = dir(purepcap)
    for plumbing in ("Any", "TYPE_CHECKING", "annotations"):
        assert plumbing not in names
    for public in ("open", "records", "to_pandas", "Capture", "Packet", "PcapError", "live", "build",
                   "__version__"):
        assert public in names
    assert set(purepcap.__all__) <= set(names)


def test_pcap_datatype_has_a_public_import_path():
    pytest.importorskip("intake.readers")
    from intake.readers.datatypes import recommend

    from purepcap._intake_reader import PCAP as private
    from purepcap.intake import PCAP, PcapSource, PcapToPandas

    assert PCAP is private and "PCAP" in dir(purepcap.intake)
    assert PCAP in recommend(str(LOCAL), head=True)
    df = PCAP(url=str(LOCAL)).to_reader("pandas").read()
    assert PcapToPandas in PCAP(url=str(LOCAL)).possible_outputs
    assert len(df) == len(PcapSource(str(LOCAL)).read()) == 36


def test_intake_module_on_old_intake_names_what_to_install():
    """Run by .ci/compat.sh on intake 0.7, which has no intake.readers (intake 2 cannot
    be made to look like it: its own __init__ imports intake.readers)."""
    intake = pytest.importorskip("intake")
    if int(intake.__version__.split(".")[0]) >= 2:
        pytest.skip("intake 2 is installed; .ci/compat.sh runs this on intake 0.7")
    from purepcap.intake import PcapSource

    assert len(PcapSource(str(LOCAL)).read()) == 36
    with pytest.raises(ImportError, match=r"^this needs the optional dependency 'intake>=2' \(intake 0\.7"
                                          r"\.\d+ is installed\): pip install -U 'intake>=2'$"):
        from purepcap.intake import PCAP  # noqa: F401


# -- the command line -------------------------------------------------------------------------
def _ns_capture(path: Path) -> Path:
    from purepcap import PcapWriter

    frame = LOCAL.read_bytes()[24 + 16:24 + 16 + 60]
    with PcapWriter(path, nanosecond=True) as w:
        w.write_packet(1_515_485_772_210_010_007, frame)
    return path


def test_read_prints_microseconds_like_tcpdump_and_nano_on_request(tmp_path: Path):
    ns = _ns_capture(tmp_path / "ns.pcap")
    ng = tmp_path / "ns.pcapng"
    assert run_main("read", str(ns), "-w", str(ng))[0] == 0
    for path in (ns, ng):
        rc, out, _ = run_main("read", str(path))
        assert rc == 0 and out.startswith("2018-01-09 08:16:12.210010 ARP"), out
        rc, out, _ = run_main("read", "--nano", str(path))
        assert rc == 0 and out.startswith("2018-01-09 08:16:12.210010007 ARP"), out
    # tcpdump --time-stamp-precision=nano prints 9 digits for a µs file too
    rc, out, _ = run_main("read", "--nano", "-c", "1", str(LOCAL))
    assert out.startswith("2024-01-02 03:04:05.014873000 ARP")


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="needs tcpdump")
def test_read_times_are_tcpdumps(tmp_path: Path):
    ns = _ns_capture(tmp_path / "ns.pcap")
    env = {**os.environ, "TZ": "UTC"}
    for ours, theirs in (([], []), (["--nano"], ["--time-stamp-precision=nano"])):
        t = subprocess.run(["tcpdump", "-tttt", "-n", "-q", *theirs, "-r", str(ns)], capture_output=True,
                           text=True, env=env, timeout=60)
        assert run_main("read", *ours, str(ns))[1].split(" ARP")[0] == t.stdout.split(" ARP")[0]


def test_info_on_a_cut_short_file_exits_1_like_capinfos(tmp_path: Path):
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(LOCAL.read_bytes()[:3000])
    for argv in (["info", str(cut)], ["info", "--json", str(cut)]):
        rc, out, err = run_main(*argv)
        assert rc == 1
        assert "13" in out  # the summary of what was read is still printed
        assert err.count("\n") == 1 and "cut.pcap" in err and "cut short" in err and "offset 2981" in err
    assert json.loads(run_main("info", "--json", str(cut))[1])[0]["packets"] == 13
    rc, out, err = run_main("info", str(LOCAL), str(cut), str(LOCAL))
    assert rc == 1 and out.count("File name:") == 3 and err.count("\n") == 1
    assert run_main("info", str(LOCAL))[0] == 0


@pytest.mark.parametrize("argv, required", [(["read"], "FILE"), (["convert"], "FILE, OUT"),
                                            (["convert", "x.pcap"], "OUT"), (["capture"], "-i")])
def test_usage_errors_do_not_call_the_expression_required(argv, required):
    rc, _, err = run_main(*argv)
    assert rc == 2
    assert err.strip().endswith(f"the following arguments are required: {required}"), err
    assert "[EXPR ...]" in err or argv == ["capture"]


def test_filter_errors_say_where_once():
    for expr, want in (("tcp port", "expected a value after 'port', found the end of the expression"),
                       ("tcp and", "expected an expression after 'and' at the end")):
        rc, _, err = run_main("read", str(LOCAL), expr)
        assert rc == 1 and err == f"purepcap read: bad filter expression {expr!r}: {want}\n"
    with pytest.raises(purepcap.FilterError) as e:
        purepcap.filter.offline_matcher("tcp port")
    assert e.value.message.count("end") == 1


def test_cut_short_record_message_reads_well(tmp_path: Path):
    with pytest.raises(purepcap.TruncatedError, match=r"cut short in a record's data at offset 2981 "
                                                      r"\(after frame 13\)"):
        list(purepcap.open(LOCAL.read_bytes()[:3000]))


def test_unknown_protocol_names_the_close_matches():
    with pytest.raises(ValueError) as e:
        purepcap.records(LOCAL, protocol="bogus")
    text = str(e.value)
    assert "unknown protocol 'bogus' (did you mean 'argus'?)" in text
    assert len(text) < 250 and "ip-proto-N" in text
    with pytest.raises(ValueError, match=r"did you mean 'tcp'\?"):
        purepcap.records(LOCAL, protocol=["udp", "tcpp"])
    with pytest.raises(ValueError, match=r"unknown protocol 'zzz'; names are tcp"):
        purepcap.records(LOCAL, protocol="zzz")


def test_bad_gzip_header_is_not_called_cut_short(tmp_path: Path):
    good = gzip.compress(LOCAL.read_bytes())
    for patch, want in (((3, 0xFF), "reserved flag bits set"), ((2, 7), "compression method 7 is not deflate")):
        bad = bytearray(good)
        bad[patch[0]] = patch[1]
        path = tmp_path / "bad.pcap.gz"
        path.write_bytes(bytes(bad))
        with pytest.raises(purepcap.DamagedError, match=f"bad gzip header at offset {patch[0]}: {want}") as e:
            purepcap.open(path)
        assert "cut short" not in str(e.value) and str(path) in str(e.value) and e.value.offset == patch[0]
        rc, _, err = run_main("read", str(path))
        assert rc == 1 and "bad gzip header" in err and err.count("\n") == 1
    # a stream really cut short is still called so
    with pytest.raises(purepcap.TruncatedError, match="cut short"):
        list(purepcap.open(good[:len(good) // 2]))


def test_missing_extra_is_not_blamed_on_the_input_file(tmp_path: Path):
    out = tmp_path / "o.parquet"
    r = run_python(without("pyarrow") + f"from purepcap.cli import main\n"
                   f"raise SystemExit(main(['convert', {str(LOCAL)!r}, {str(out)!r}]))\n")
    assert r.returncode == 1
    assert r.stderr == ("purepcap convert: this needs the optional dependency 'pyarrow': "
                        "pip install 'purepcap[parquet]'\n")


# -- extras -------------------------------------------------------------------------------------
def _extras() -> dict[str, list[str]]:
    tomllib = pytest.importorskip("tomllib")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]


def _names(reqs: list[str]) -> set[str]:
    return {re.split(r"[<>=!\[; ]", r, maxsplit=1)[0] for r in reqs}


def test_extras_cover_their_readme_sections_and_allow_intake_07():
    extras = _extras()
    # payload=True (shown in the DataFrame and Intake sections) is an Arrow column
    for name in ("pandas", "intake", "dask"):
        assert {"pandas", "numpy", "pyarrow"} <= _names(extras[name]), name
    # no extra forces intake 2: a catalog on intake 0.7 stays on it
    for name, reqs in extras.items():
        for r in reqs:
            if _names([r]) == {"intake"} and name != "test":
                assert re.search(r">=\s*0\.7", r) and "<3" in r, (name, r)


def test_payload_without_pyarrow_says_what_to_install():
    pytest.importorskip("pandas")  # pyarrow is hidden; pandas is needed
    r = run_python(without("pyarrow") + f"""
import purepcap
from purepcap.dataframe import empty_frame
df = purepcap.to_pandas({str(LOCAL)!r})          # no payload: pyarrow is not needed
print(len(df))
for call in (lambda: purepcap.to_pandas({str(LOCAL)!r}, payload=True), lambda: empty_frame(payload=True)):
    try:
        call()
    except ImportError as e:
        print(type(e).__name__, e)
""")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["36"] + [
        "ImportError this needs the optional dependency 'pyarrow': pip install 'purepcap[pandas]'"] * 2


def test_concat_with_an_empty_partition_warns_nothing():
    """pandas 2.1-2.3 warn (FutureWarning) when an empty frame's categories differ from
    the others'; .ci/compat.sh runs this on pandas 2.x, the main run on the newest."""
    pd = pytest.importorskip("pandas")
    import warnings

    from purepcap.dataframe import concat_frames, to_pandas

    with purepcap.open(LOCAL) as cap:
        arp_only = [(p.time, p.data) for p in cap if p.data[12:14] == b"\x08\x06"]
    empty = to_pandas(_capture_of(arp_only), columns=["eth_src", "frame"])
    assert len(empty) == 0
    parts = [to_pandas(LOCAL, columns=["eth_src", "frame"]), empty,
             to_pandas(FIXTURES / "http.pcap", columns=["eth_src", "frame"]), empty]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        both = concat_frames(parts)
        alone = concat_frames([empty, parts[2], empty])
    assert len(both) == 36 + 13 and list(both.index) == list(range(49))
    assert both["src_host"].dtype == pd.CategoricalDtype(sorted(set(parts[0].src_host) | set(parts[2].src_host)))
    pd.testing.assert_frame_equal(alone, parts[2])
    assert concat_frames([empty, empty]).dtypes.equals(empty.dtypes)


def _capture_of(pairs: list[tuple[int, bytes]]) -> bytes:
    import io

    from purepcap import PcapWriter

    out = io.BytesIO()
    with PcapWriter(out) as w:
        for t, data in pairs:
            w.write_packet(t, data)
    return out.getvalue()


# -- progress -----------------------------------------------------------------------------------
class FakeTTY:
    """A terminal to draw on: every write kept, isatty() true."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return True

    def text(self) -> str:
        return "".join(self.parts)


def _progress_capture(tmp_path: Path, copies: int = 40) -> Path:
    """A few batches' worth of packets (local.pcap's 38, many times over)."""
    from purepcap import PcapWriter

    with purepcap.open(LOCAL) as cap:
        packets = list(cap)
    path = tmp_path / "many.pcap"
    with PcapWriter(path) as w:
        for i in range(copies):
            for p in packets:
                w.write_packet(p.time + i * 1_000_000_000, p.data)
    return path


@pytest.fixture
def no_delay(monkeypatch):
    monkeypatch.setenv("PUREPCAP_PROGRESS_DELAY", "0")


def test_to_pandas_progress_true_draws_the_builtin_meter_on_stderr(tmp_path, monkeypatch, capsys, no_delay):
    pytest.importorskip("pandas")
    _block(monkeypatch, "tqdm")  # neither tqdm nor rich: the built-in line
    _block(monkeypatch, "rich")
    path = _progress_capture(tmp_path)
    quiet = purepcap.to_pandas(path)
    assert capsys.readouterr().err == ""  # no progress unless asked
    shown = purepcap.to_pandas(path, progress=True)
    err = capsys.readouterr().err
    assert shown.equals(quiet)
    lines = [line for line in err.split("\r") if line.strip()]
    assert lines and lines[-1].startswith(f"{38 * 40:,} packets") and "100%" in lines[-1]
    assert err.endswith("\r") and err.split("\r")[-2].strip() == ""  # wiped at the end


def test_flows_to_pandas_progress_true(monkeypatch, capsys, no_delay):
    pytest.importorskip("pandas")
    _block(monkeypatch, "tqdm")
    _block(monkeypatch, "rich")
    quiet = purepcap.flows_to_pandas(LOCAL)
    assert capsys.readouterr().err == ""
    shown = purepcap.flows_to_pandas(LOCAL, progress=True)
    err = capsys.readouterr().err
    assert shown.equals(quiet) and len(shown) > 0
    assert "38 packets" in err and err.endswith("\r")


def _block(monkeypatch, name: str) -> None:
    """Make ``import name`` (and its submodules, loaded or not) fail, as if not installed."""
    for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        monkeypatch.setitem(sys.modules, loaded, None)
    monkeypatch.setitem(sys.modules, name, None)


def test_progress_true_picks_tqdm_then_rich_then_the_builtin_line(monkeypatch, no_delay):
    import importlib.util

    from purepcap import _progress

    order = [("tqdm", _progress.TqdmProgress), ("rich", _progress.RichProgress), (None, _progress.LineProgress)]
    for i, (name, kind) in enumerate(order):
        if name is not None and importlib.util.find_spec(name) is None:
            continue  # not installed here (both are test dependencies, so CI has them)
        for earlier, _ in order[:i]:
            _block(monkeypatch, earlier)
        shown = _progress.progress_for(True, 1000)
        try:
            assert type(shown) is kind
        finally:
            shown.close()
    assert type(_progress.progress_for(False, 1000)) is _progress.Progress
    with pytest.raises(TypeError):
        _progress.progress_for("yes", 1000)


@pytest.mark.parametrize("kind", ["TqdmProgress", "RichProgress", "LineProgress"])
def test_each_display_follows_a_table_build(kind, tmp_path, no_delay):
    """tqdm and rich are test dependencies, so their paths run in CI, not only the line."""
    pytest.importorskip("pandas")
    from purepcap import _progress

    if kind != "LineProgress":
        pytest.importorskip(kind[:-len("Progress")].lower())
    path = _progress_capture(tmp_path)
    tty = FakeTTY()
    show = getattr(_progress, kind)(os.path.getsize(path), stream=tty)
    closed = []
    real_close = show.close
    show.close = lambda: (closed.append((show.packets, show.bytes)), real_close())
    df = purepcap.to_pandas(path, progress=show)
    assert len(df) == 36 * 40
    # every packet counted, and its bytes as a pcap file stores them: the whole file but its header
    assert closed == [(38 * 40, os.path.getsize(path) - 24)]
    if kind == "TqdmProgress":
        assert show._bar.n == os.path.getsize(path) - 24
    text = tty.text()
    assert text, "nothing was drawn"
    if kind == "LineProgress":
        assert f"{38 * 40:,} packets" in text


# -- the README, every example as written ------------------------------------------------------
def readme_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, re.S)


# what an example's purepcap calls import (the extras of the README's headings)
_EXTRAS_OF_CALLS = {"to_pandas": "pandas", "to_arrow": "pyarrow", "to_polars": "polars", "intake": "intake"}
# examples that need what a test machine does not have (a cluster, a named interface)
_ELSEWHERE = ("scheduler.example", 'live.capture("eth0"')


def readme_outputs() -> list[tuple[str, str]]:
    """The README's examples shown with their output: a python block followed at once by
    a text block."""
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```python\n([^`]*)```\n\n```text\n([^`]*)```", text)


@pytest.mark.parametrize("n", range(len(readme_outputs())))
def test_readme_outputs_are_what_the_examples_print(n: int):
    code, shown = readme_outputs()[n]
    for module in sorted({module for call, module in _EXTRAS_OF_CALLS.items() if call in code}):
        pytest.importorskip(module)
    r = run_python(code)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout == shown


@pytest.mark.parametrize("n", range(len(readme_blocks())))
def test_readme_python_examples_run_as_written(n: int, tmp_path: Path):
    code = readme_blocks()[n]
    if any(mark in code for mark in _ELSEWHERE):
        pytest.skip("needs a cluster or a named network interface")
    needs = set(re.findall(r"^\s*(?:import|from) (\w+)", code, re.M)) - {"purepcap"}
    needs |= {module for call, module in _EXTRAS_OF_CALLS.items() if call in code}
    for module in sorted(needs):
        pytest.importorskip(module)
    before = sorted(os.listdir(ROOT))
    # each block on its own, in a fresh interpreter, from the repository root (where the
    # README's paths point): an example must not lean on another's imports
    r = run_python(code)
    assert r.returncode == 0, f"README example {n} failed:\n{code}\n{r.stderr[-3000:]}"
    assert sorted(os.listdir(ROOT)) == before, "a README example left files in the checkout"
