# pcap-filter (tcpdump syntax) compiler. Placeholder until the filter issue lands.
from __future__ import annotations

from collections.abc import Callable

from ..format import Packet


def offline_matcher(expression: str) -> Callable[[Packet], bool]:
    raise NotImplementedError("filter= needs the pcap-filter compiler (the filter issue), not yet built")
