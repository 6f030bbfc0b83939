# intake 2's "new-style" plugin: a PCAP datatype (recognised by file name, MIME type or
# its magic bytes) and readers from it to pandas and to Dask.
#
# Strategy: intake imports this module when `import intake` runs (through the
# "intake.imports" entry point), so it must stay light: it imports only intake's own
# reader machinery and names pandas/dask as strings; purepcap.dataframe (and with it
# numpy and pandas) is imported only when a reader reads.
from __future__ import annotations

from typing import Any

from intake.readers import datatypes, readers

__all__ = ["PCAP", "PcapToPandas", "PcapToDask", "PCAP_MAGICS"]

# The first four bytes of every capture purepcap reads uncompressed: the six classic
# pcap magics in both byte orders, and the pcapng section header block type.
PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4",  # microseconds
    b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d",  # nanoseconds
    b"\x34\xcd\xb2\xa1", b"\xa1\xb2\xcd\x34",  # Kuznetzov's modified pcap
    b"\x0a\x0d\x0d\x0a",  # pcapng
}


class PCAP(datatypes.FileData):
    """A packet capture: classic pcap or pcapng (gzip/bz2/xz/zstd compressed too)"""

    filepattern = r"\.(pcap|pcapng|cap|dmp)(\.(gz|bz2|xz|zst))?$"
    mimetypes = r"application/(vnd\.tcpdump\.pcap|x-pcapng|x-pcap)"
    structure = {"table"}
    magic = PCAP_MAGICS


class PcapToPandas(readers.BaseReader):
    """One row per IP packet (purepcap.to_pandas); a glob or list gives the files in order.

    Keywords: protocol, payload, filter, columns, partition_size, errors (see PcapSource).
    """

    implements = {PCAP}
    imports = {"pandas", "numpy"}
    output_instance = "pandas:DataFrame"
    func = "purepcap.dataframe:to_pandas"

    def _read(self, data: PCAP, **kw: Any) -> Any:
        from .intake_source import PcapSource

        return PcapSource(data.url, storage_options=data.storage_options, **kw).read()

    def discover(self, **kw: Any) -> Any:
        """The first partition (the first file, or the first span of a big one)."""
        from .intake_source import PcapSource

        kw = {**self.kwargs, **kw}
        args = kw.pop("args", ())
        data = args[0] if args else kw.pop("data")
        src = PcapSource(data.url, storage_options=data.storage_options, **kw)
        return src.read_partition(0)


class PcapToDask(readers.BaseReader):
    """A dask DataFrame with one task per file or per span of a big file (PcapSource.to_dask)."""

    implements = {PCAP}
    imports = {"dask", "pandas", "numpy"}
    output_instance = "dask.dataframe:DataFrame"
    func = "purepcap.intake_source:PcapSource"

    def _read(self, data: PCAP, **kw: Any) -> Any:
        from .intake_source import PcapSource

        return PcapSource(data.url, storage_options=data.storage_options, **kw).to_dask()
