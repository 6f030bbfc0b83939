# Hostile filter expressions (issue 23, items 7-9): whatever the text, compile_bpf and
# offline_matcher raise only FilterError, naming a column where there is one, in bounded
# time and memory; deep nesting is a FilterError, never a RecursionError.
from __future__ import annotations

import pytest

from purepcap.errors import FilterError
from purepcap.filter import compile_bpf, offline_matcher
from purepcap.format import Packet

# An Ethernet/IPv4/TCP packet, so a matcher built lazily per link type runs its code.
TCP = (bytes(12) + b"\x08\x00" + b"\x45" + bytes(8) + b"\x06" + bytes(10)
       + bytes(20))


def _packet(data: bytes = TCP, linktype: int = 1) -> Packet:
    return Packet(1, 0, len(data), len(data), linktype, 0, data)


def _filter_error(expr: str) -> list[FilterError]:
    """The FilterErrors of compile_bpf and of the matcher (built, then run on a packet);
    any other exception fails the test."""
    errors = []
    with pytest.raises(FilterError) as info:
        compile_bpf(expr)
    errors.append(info.value)
    with pytest.raises(FilterError) as info:
        offline_matcher(expr)(_packet())
    errors.append(info.value)
    return errors


# -- item 9: plain ValueErrors --------------------------------------------------------------
@pytest.mark.parametrize("expr,column,message", [
    # Python refuses int() of more than 4,300 decimal digits
    ("host 1." + "1" * 5000, 6, "not a valid IPv4 address"),
    ("portrange 1-" + "1" * 5000, 11, "illegal port number"),
    ("port " + "1" * 5000, 6, "overflows 32 bits"),
    ("len = " + "9" * 5000, 7, "overflows 32 bits"),
    ("vlan 0x" + "f" * 5000, 6, "overflows 32 bits"),  # its message would print it in decimal
    ("ip[0] = 0" + "7" * 5000, 9, "overflows 32 bits"),
    # a digit to str.isdigit(), not to int()
    ("port \\\N{SUPERSCRIPT TWO}", 6, "unknown port name"),
    ("portrange \\1-\N{SUPERSCRIPT TWO}", 11, "unknown port name"),
    # a NUL makes getservbyname raise ValueError
    ("port \\a\x00b", 6, "unknown port name"),
    ("tcp portrange \\a\x00b-c", 15, "unknown port name"),
])
def test_odd_numbers_and_names_are_filter_errors_naming_the_column(
        expr: str, column: int, message: str) -> None:
    for err in _filter_error(expr):
        assert message in err.message, err.message
        assert err.column == column
        assert len(err.message) < 300  # a 5,000-digit token is not printed whole


@pytest.mark.parametrize("expr", ["host 1.0000000000000000001", "port 0000000000000070",
                                  "len = 0x00000000000000ff", "portrange 1-0000080"])
def test_leading_zeros_are_not_overflow(expr: str) -> None:
    assert compile_bpf(expr)  # libpcap accepts these too
