# intake.open_pcap(urlpath, flows=True): the flow table through Intake, catalogs and Dask.
# A file is one partition whatever partition_size says, so a flow whose packets span the
# byte ranges a packet source would read separately still comes out as one flow.
from __future__ import annotations

import io

import pytest
from conftest import FIXTURES

pytest.importorskip("intake")
pd = pytest.importorskip("pandas")

import intake  # noqa: E402

import purepcap  # noqa: E402
from purepcap import build  # noqa: E402
from purepcap.dataframe import concat_frames  # noqa: E402
from purepcap.format import PcapWriter  # noqa: E402

T0 = 1_700_000_000_000_000_000


def _long_flow_capture(path) -> None:
    """2000 packets of one UDP flow, interleaved with 2000 one-packet flows."""
    out = io.BytesIO()
    w = PcapWriter(out, nanosecond=True)
    for i in range(2000):
        w.write_packet(T0 + 2 * i, bytes(build.ether() / build.ipv4(src="10.0.0.1", dst="10.0.0.2")
                                         / build.udp(sport=7, dport=7) / (b"x" * 200)))
        w.write_packet(T0 + 2 * i + 1, bytes(build.ether() / build.ipv4(src="10.0.1.1", dst="10.0.0.2")
                                             / build.udp(sport=1000 + i, dport=53)))
    path.write_bytes(out.getvalue())


def test_read_is_the_flows_of_each_file():
    src = intake.open_pcap(str(FIXTURES / "multi" / "*.pcap"), flows=True)
    df = src.read()
    files = sorted((FIXTURES / "multi").glob("*.pcap"))
    expected = concat_frames([purepcap.flows_to_pandas(f) for f in files])
    pd.testing.assert_frame_equal(df, expected)
    assert src.npartitions == len(files)


def test_a_flow_across_byte_ranges_stays_one_flow(tmp_path):
    path = tmp_path / "long.pcap"
    _long_flow_capture(path)
    packets = intake.open_pcap(str(path), partition_size=50_000)
    packets.discover()
    assert packets.npartitions > 5  # as packets, the file is read in byte ranges
    src = intake.open_pcap(str(path), partition_size=50_000, flows=True)
    df = src.read()
    assert src.npartitions == 1
    pd.testing.assert_frame_equal(df, purepcap.flows_to_pandas(path))
    long = df[df["src_port"] == 7]
    assert len(long) == 1 and int(long["src_packets"].iloc[0]) == 2000
    dd = src.to_dask().compute().reset_index(drop=True)
    pd.testing.assert_frame_equal(dd, df, check_categorical=False)


def test_options_pass_through():
    src = intake.open_pcap(str(FIXTURES / "local.pcap"), flows={"idle_timeout": None, "stats": True},
                           protocol="tcp")
    df = src.read()
    pd.testing.assert_frame_equal(df, purepcap.flows_to_pandas(FIXTURES / "local.pcap", protocol="tcp",
                                                               idle_timeout=None, stats=True))
    assert src.discover()["dtype"]["bidirectional_mean_ps"] == "float64"


def test_catalog(tmp_path):
    cat = tmp_path / "cat.yml"
    cat.write_text("sources:\n  conversations:\n    driver: pcap\n    args:\n"
                   f"      urlpath: '{FIXTURES / 'local.pcap'}'\n      flows: true\n")
    df = intake.open_catalog(str(cat)).conversations.read()
    pd.testing.assert_frame_equal(df, purepcap.flows_to_pandas(FIXTURES / "local.pcap"))


def test_bad_combinations():
    with pytest.raises(ValueError, match="live"):
        intake.open_pcap(None, interface="lo", flows=True)
    with pytest.raises(ValueError, match="payload"):
        intake.open_pcap(str(FIXTURES / "local.pcap"), flows=True, payload=True)
    with pytest.raises(ValueError, match="unknown flows option"):
        intake.open_pcap(str(FIXTURES / "local.pcap"), flows={"idle": 3})
