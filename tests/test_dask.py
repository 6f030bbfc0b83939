# to_dask() on a real dask.distributed cluster with worker processes: every partition
# is read by a worker from its own byte range, and the rows equal read().
from __future__ import annotations

import pandas as pd
import pytest
from conftest import FIXTURES

import purepcap
from purepcap import build
from purepcap.format import PcapWriter

intake = pytest.importorskip("intake")
distributed = pytest.importorskip("distributed")

if "pcap" not in intake.registry:  # a checkout run without pip install: no entry points
    from purepcap.intake_source import PcapSource

    intake.register_driver("pcap", PcapSource)


def normal(df: pd.DataFrame) -> pd.DataFrame:
    df = df.reset_index(drop=True)
    for c in df.columns:
        if isinstance(df[c].dtype, pd.CategoricalDtype):
            df[c] = df[c].cat.set_categories(sorted(df[c].cat.categories))
    return df


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(processes=True, n_workers=2, threads_per_worker=1, memory_limit="400MiB",
                                  dashboard_address=None, silence_logs=40) as cluster, \
            distributed.Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def big_capture(tmp_path_factory):
    """A capture of TCP, UDP, ICMP, IPv6, VLAN-tagged and fragmented packets."""
    path = tmp_path_factory.mktemp("dask") / "big.pcap"
    with PcapWriter(path, nanosecond=True) as w:
        t = 1_700_000_000_000_000_000
        for i in range(4000):
            kind = i % 6
            if kind == 0:
                pkt = build.ether() / build.ipv4(src=f"10.0.{i % 9}.1", dst="10.0.0.2") / build.tcp(
                    sport=40000 + i % 100, dport=443) / bytes(i % 300)
            elif kind == 1:
                pkt = build.ether() / build.ipv4(src="10.0.0.2", dst=f"10.1.{i % 5}.1") / build.udp(
                    sport=53, dport=5000 + i % 30) / b"dns"
            elif kind == 2:
                pkt = build.ether() / build.ipv4(src="10.0.0.3", dst="10.0.0.4") / build.icmp(8, 0) / b"ping"
            elif kind == 3:
                pkt = build.ether() / build.ipv6(src="2001:db8::1", dst=f"2001:db8::{i % 40:x}") / build.udp(
                    sport=123, dport=123)
            elif kind == 4:
                pkt = build.ether(vlans=[100 + i % 3]) / build.ipv4(src="192.168.0.1", dst="192.168.0.2") / \
                    build.tcp(sport=80, dport=1024 + i % 7)
            else:
                whole = build.ether() / build.ipv4(src="172.16.0.1", dst="172.16.0.2", id=i) / build.udp(
                    sport=9, dport=9) / bytes(100)
                for frag in build.ipv4_fragments(whole, 48):
                    t += 1000
                    w.write_packet(t, bytes(frag))
                continue
            t += 1000
            w.write_packet(t, bytes(pkt))
    return path


def test_localcluster_rows_equal_read(client, big_capture):
    columns = ["frame", "vlan", "fragment", "ttl"]
    ds = intake.open_pcap(str(big_capture), partition_size="40kB", payload=True, columns=columns)
    n = ds.discover()["npartitions"]
    assert n >= 6
    ddf = ds.to_dask()
    assert ddf.npartitions == n
    # one task per partition, each reading its own byte range
    starts = [p["start"] for p in ds.metadata["partitions"]]
    assert len(set(starts)) == n
    result = ddf.compute()
    assert set(client.has_what()) and len(client.scheduler_info()["workers"]) == 2
    local = ds.read()
    pd.testing.assert_frame_equal(normal(result), normal(local))
    pd.testing.assert_frame_equal(local, purepcap.to_pandas(big_capture, payload=True, columns=columns))
    assert result["fragment"].notna().any() and result["vlan"].notna().any()
    assert set(result["protocol"]) == {"tcp", "udp", "icmp"}


def test_localcluster_glob_partitions(client):
    ds = intake.open_pcap(str(FIXTURES / "multi" / "*.pcap"))
    ddf = ds.to_dask()
    assert ddf.npartitions == 3
    per_partition = ddf.map_partitions(len).compute().tolist()
    assert per_partition == [len(ds.read_partition(i)) for i in range(3)]
    pd.testing.assert_frame_equal(normal(ddf.compute()), normal(ds.read()))


def test_workers_compute_partitions_without_the_client_reading(client, big_capture, monkeypatch):
    """The client never decodes a packet: reading is done in the worker processes."""
    import purepcap.dataframe as dataframe

    ds = intake.open_pcap(str(big_capture), partition_size="100kB")
    ddf = ds.to_dask()

    def refuse(*a, **k):
        raise AssertionError("to_pandas ran in the client process")

    monkeypatch.setattr(dataframe, "to_pandas", refuse)
    total = ddf.map_partitions(len).compute().sum()
    monkeypatch.undo()
    assert total == len(ds.read())
