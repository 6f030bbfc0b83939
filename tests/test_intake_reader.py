# intake 2's new-style plugin: the PCAP datatype is recognised by its magic bytes (and
# by name), reads to pandas and to Dask, round-trips through a version-2 catalog, and
# registering it does not import pandas when `import intake` runs.
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib.metadata import entry_points

import pandas as pd
import pytest
from conftest import FIXTURES, ROOT

import purepcap
from purepcap.dataframe import to_pandas

intake = pytest.importorskip("intake")
pytest.importorskip("intake.readers", reason="intake 2's new-style readers (intake 0.7 has none)")
from intake.readers.datatypes import recommend  # noqa: E402

from purepcap._intake_reader import PCAP, PcapToDask, PcapToPandas  # noqa: E402

installed = pytest.mark.skipif(
    not any(ep.value == "purepcap._intake_reader" for ep in entry_points(group="intake.imports")),
    reason="purepcap is not pip-installed, so intake does not see its entry points")


@installed
def test_import_intake_registers_the_reader_without_pandas():
    code = ("import sys, intake\n"
            "from intake.readers.datatypes import recommend\n"
            "print('pandas' in sys.modules, 'numpy' in sys.modules,\n"
            "      'purepcap._intake_reader' in sys.modules,\n"
            "      [c.__name__ for c in recommend(sys.argv[1], head=True)])\n")
    out = subprocess.run([sys.executable, "-c", code, str(FIXTURES / "local.pcap")], cwd="/",
                         capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.stdout.split() == ["False", "False", "True", "['PCAP']"]


@pytest.mark.parametrize("name", ["local.pcap", "local.pcapng", "truncated-be.pcap"])
def test_recognised_by_magic_bytes_whatever_the_name(name, tmp_path):
    odd = tmp_path / "capture.bin"
    shutil.copy(FIXTURES / name, odd)
    assert recommend(str(odd), head=True)[0] is PCAP
    assert PCAP in recommend(str(FIXTURES / name), head=False)  # and by its name
    text = tmp_path / "notes.bin"
    text.write_bytes(b"just some text, not a capture")
    assert PCAP not in recommend(str(text), head=True)


def test_reads_to_pandas_and_dask():
    data = PCAP(url=str(FIXTURES / "local.pcap"))
    readers = list(data.possible_outputs)
    assert {PcapToPandas, PcapToDask} <= set(readers)
    df = data.to_reader("pandas").read()
    pd.testing.assert_frame_equal(df, to_pandas(FIXTURES / "local.pcap"))
    udp = data.to_reader("pandas", protocol="udp", payload=True).read()
    pd.testing.assert_frame_equal(udp, to_pandas(FIXTURES / "local.pcap", protocol="udp", payload=True))
    ddf = data.to_reader("dask").read()
    assert ddf.compute()["src_host"].astype(str).tolist() == df["src_host"].astype(str).tolist()
    first = data.to_reader("pandas").discover()
    assert list(first.columns) == list(df.columns)


def test_glob_url_reads_every_file_in_order():
    data = PCAP(url=str(FIXTURES / "multi" / "*.pcap"))
    df = data.to_reader("pandas").read()
    files = sorted((FIXTURES / "multi").glob("*.pcap"))
    assert len(df) == sum(len(to_pandas(f)) for f in files)
    assert len(data.to_reader("pandas").discover()) == len(to_pandas(files[0]))


def test_version_2_catalog_round_trip(tmp_path):
    data = PCAP(url=str(FIXTURES / "http.pcap"))
    cat = intake.entry.Catalog()
    cat["tcp_http"] = data.to_reader("pandas", protocol="tcp")
    path = tmp_path / "cat.yaml"
    cat.to_yaml_file(str(path))
    again = intake.from_yaml_file(str(path))
    df = again["tcp_http"].read()
    assert len(df) == sum(1 for _ in purepcap.records(FIXTURES / "http.pcap", protocol="tcp")) > 0
    assert set(df["protocol"]) == {"tcp"}


def test_new_style_readers_take_errors(tmp_path):
    """issue 20: errors= reaches the new-style readers too (they build a PcapSource)."""
    import warnings

    from purepcap import PcapWarning, TruncatedError

    cut = tmp_path / "t.pcap"
    cut.write_bytes((FIXTURES / "local.pcap").read_bytes()[:3000])
    good = to_pandas((FIXTURES / "local.pcap").read_bytes()[:2981], errors="raise")
    data = PCAP(url=str(cut))
    with warnings.catch_warnings():
        warnings.simplefilter("error", PcapWarning)
        pd.testing.assert_frame_equal(data.to_reader("pandas", errors="ignore").read(), good)
        got = data.to_reader("dask", errors="ignore").read().compute()
    assert got["time"].tolist() == good["time"].tolist()
    with pytest.raises(TruncatedError):
        data.to_reader("pandas", errors="raise").read()
