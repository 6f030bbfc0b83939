# Hostile input, round two (issue 23, items 2, 3, 10-14): each test here failed before
# its fix. Captures are built here with our own writers; live tests run inside a
# private network namespace made and removed by the test, on its loopback device only.
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import purepcap

ROOT = Path(__file__).resolve().parent.parent
LOCAL = ROOT / "fixtures" / "local.pcap"


def run_py(code: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (our tree first on the path)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=str(ROOT))


def run_cli(*args: str, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "purepcap", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, **kw)


def assert_one_line(r: subprocess.CompletedProcess, *needles: str) -> str:
    assert r.returncode != 0, r
    assert "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


# -- item 2: a FIFO, /dev/stdin or <(...) path is read once, never opened twice -----------------
FIFO_FEEDER = """
    import os, sys, threading
    fifo, src = sys.argv[1], sys.argv[2]
    os.mkfifo(fifo)
    def feed():
        try:
            with open(fifo, "wb") as w:
                w.write(open(src, "rb").read())
        except BrokenPipeError:
            pass
    threading.Thread(target=feed, daemon=True).start()
"""


@pytest.mark.parametrize("how", ["to_pandas", "intake"])
def test_a_fifo_path_is_read_once(tmp_path, how):
    pytest.importorskip("pandas")
    if how == "intake":
        pytest.importorskip("intake")
        read = "from purepcap.intake_source import PcapSource; df = PcapSource(fifo).read()"
    else:
        read = "df = purepcap.to_pandas(fifo)"
    r = run_py(FIFO_FEEDER + f"""
    import purepcap
    {read}
    print(len(df))
    """, str(tmp_path / "fifo"), str(LOCAL), timeout=30)
    assert r.returncode == 0, r.stderr
    assert int(r.stdout) == len(purepcap.to_pandas(LOCAL))


@pytest.mark.parametrize("out", ["out.parquet", "out.csv"])
def test_convert_reads_a_process_substitution(tmp_path, out):
    if out.endswith(".parquet"):
        pytest.importorskip("pyarrow")
        pytest.importorskip("pandas")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run(["bash", "-c", f'"{sys.executable}" -m purepcap convert <(cat "{LOCAL}") "{tmp_path / out}"'],
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    direct = tmp_path / ("direct" + Path(out).suffix)
    assert run_cli("convert", str(LOCAL), str(direct)).returncode == 0
    if out.endswith(".parquet"):
        import pandas as pd

        assert pd.read_parquet(tmp_path / out).equals(pd.read_parquet(direct))
    else:
        assert (tmp_path / out).read_bytes() == direct.read_bytes()
