# The public import path of purepcap's Intake plugin, on intake 0.7 and 2.x:
#   from purepcap.intake import PcapSource          # the old-style source (driver: pcap)
#   from purepcap.intake import PCAP                # intake 2's new-style datatype
#
# Strategy: only re-exports. intake keeps plugin datatypes out of its own modules
# (`intake.readers.datatypes.PCAP` does not exist), so a plugin's datatypes are
# imported from the plugin. The new-style names need intake 2 (intake 0.7 has no
# `intake.readers`); asking for them on 0.7 raises the one-line ImportError that
# names what to install, while PcapSource keeps working.
from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import missing_extra
from .intake_source import DEFAULT_PARTITION_SIZE, PcapSource

if TYPE_CHECKING:
    from ._intake_reader import PCAP, PCAP_MAGICS, PcapToDask, PcapToPandas

__all__ = ["PcapSource", "DEFAULT_PARTITION_SIZE", "PCAP", "PcapToPandas", "PcapToDask", "PCAP_MAGICS"]

_NEW_STYLE = frozenset(("PCAP", "PcapToPandas", "PcapToDask", "PCAP_MAGICS"))


def __getattr__(name: str) -> object:
    if name in _NEW_STYLE:
        try:
            import intake.readers  # noqa: F401 - intake 2 only
        except ImportError:
            raise _needs_intake_2() from None
        from . import _intake_reader

        value = getattr(_intake_reader, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'purepcap.intake' has no attribute {name!r}")


def _needs_intake_2() -> ImportError:
    try:
        from importlib.metadata import version

        have = version("intake")
    except Exception:  # noqa: BLE001 - not installed, or no metadata: the extra installs it
        return missing_extra("intake", "intake>=2")
    # the extra accepts intake 0.7, so naming it would not upgrade: name intake itself
    return ImportError(f"this needs the optional dependency 'intake>=2' (intake {have} is installed): "
                       f"pip install -U 'intake>=2'")


def __dir__() -> list[str]:
    return sorted(set(__all__) | _NEW_STYLE)
