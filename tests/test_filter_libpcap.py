# libpcap's own filter tests (testprogs/TESTrun's apply_blocks, transcribed in
# tests/_libpcap_filter_cases.py) as a test: for every case whose capture is in
# ../shared/corpus, the packets purepcap selects, both with the offline matcher and
# with its cBPF program (optimised and not) run by purepcap's interpreter, are exactly
# the packets libpcap selects. Cases purepcap does not accept yet are listed in NOT_YET
# and must still raise FilterError (so the day one is accepted it must move out of the
# list); cases that need host names resolved are in NEEDS_NAMES (purepcap never
# resolves names). Where tcpdump is installed its own selection of the same file is
# compared with the table too, except where the installed libpcap (1.10) is older than
# the TESTrun the table comes from and selects differently (LIBPCAP_1_10_DIFFERS).
from __future__ import annotations

import shutil
import subprocess

import pytest
from _libpcap_filter_cases import CASE_DIRS, CASES, Case
from conftest import CORPUS, needs_corpus

import purepcap
from purepcap.errors import FilterError
from purepcap.filter import compile_bpf, offline_matcher, run_bpf

TCPDUMP = shutil.which("tcpdump")

NEEDS_NAMES = {
    "gateway_eth_ipv4_ipv6": "eth-ipv4-ipv6.host123.libpcap.test (ethers and hosts)",
    "gateway_eth_ipv4_noipv6": "eth-ipv4-noipv6.host123.libpcap.test (ethers and hosts)",
    "ip_gateway_eth_ipv4_ipv6": "eth-ipv4-ipv6.host123.libpcap.test (ethers and hosts)",
    "arp_gateway_eth_ipv4_ipv6": "eth-ipv4-ipv6.host123.libpcap.test (ethers and hosts)",
    "rarp_gateway_eth_ipv4_ipv6": "eth-ipv4-ipv6.host123.libpcap.test (ethers and hosts)",
}

NOT_YET: dict[str, str] = {
}

# Where purepcap keeps the installed libpcap's (1.10) reading and not the newer TESTrun's:
# the test checks that it selects what the installed tcpdump selects (where it is there),
# and not the table's frames.
FOLLOWS_INSTALLED_LIBPCAP: dict[str, str] = {
    "rfc1051_arp": "RFC 1051 ARCNET framing: libpcap 1.10 selects these packets, the newer TESTrun not",
    "rfc1051_ip": "RFC 1051 ARCNET framing: libpcap 1.10 selects these packets, the newer TESTrun not",
}

# The installed tcpdump's libpcap (1.10) selects differently from the TESTrun the table
# is from: these cases are checked against the table only.
LIBPCAP_1_10_DIFFERS = {
    "dpc_ne_0": "SS7 point codes were read with the wrong bit order before libpcap 1.11",
    "opc_ne_0": "SS7 point codes were read with the wrong bit order before libpcap 1.11",
    "sls_ne_9": "SS7 point codes were read with the wrong bit order before libpcap 1.11",
    "link_host_c0_on_arcnet": "ARCnet address tests were wrong before libpcap 1.11",
    "link_src_host_c0_on_arcnet": "ARCnet address tests were wrong before libpcap 1.11",
    "link_dst_host_c0_on_arcnet": "ARCnet address tests were wrong before libpcap 1.11",
    "link_host_not_c0_on_arcnet": "ARCnet address tests were wrong before libpcap 1.11",
    "rfc1051_arp": "libpcap 1.10 matches RFC 1051 ARCnet encapsulation, later ones do not",
    "rfc1051_ip": "libpcap 1.10 matches RFC 1051 ARCnet encapsulation, later ones do not",
    "mstp_link_host": "libpcap 1.10 has no MS/TP addresses",
    "mstp_link_src_host": "libpcap 1.10 has no MS/TP addresses",
    "mstp_link_dst_host": "libpcap 1.10 has no MS/TP addresses",
    "mstp_link_src_and_dst_host": "libpcap 1.10 has no MS/TP addresses",
    "mstp_link_broadcast": "libpcap 1.10 has no MS/TP broadcast",
    "slip_outbound_on_invalid": "libpcap 1.10 takes any SLIP direction byte but 0 as outbound",
    "wlan_subtype_ack_PPI": "libpcap 1.10 has no 802.11 tests over PPI",
    "wlan_dir_nods_PPI": "libpcap 1.10 has no 802.11 tests over PPI",
    "csnp_C_HDLC": "libpcap 1.10 reads IS-IS over Cisco HDLC one byte off",
    "vxlan": "libpcap 1.10 has no vxlan",
    "vxlan_100": "libpcap 1.10 has no vxlan",
    "vxlan_101": "libpcap 1.10 has no vxlan",
}

_PRESENT = [c for c in CASES if any((CORPUS / d / c.savefile).is_file() for d in CASE_DIRS)]


def _path(case: Case):
    for d in CASE_DIRS:
        p = CORPUS / d / case.savefile
        if p.is_file():
            return p
    raise AssertionError(case.savefile)


def _packets(case: Case) -> list:
    with purepcap.open(_path(case)) as cap:
        packets = list(cap)
    assert len(packets) == case.packets, f"{case.savefile}: {len(packets)} packets"
    return packets


def _selected(case: Case, packets: list) -> dict[str, tuple]:
    """The frames each of purepcap's back ends selects; FilterError if it refuses."""
    m = offline_matcher(case.expression)
    out = {"matcher": tuple(i for i, p in enumerate(packets, 1) if m(p))}
    linktypes = {p.linktype for p in packets}
    progs = {(lt, opt): compile_bpf(case.expression, lt, optimize=opt)
             for lt in linktypes for opt in (True, False)}
    for opt in (True, False):
        out[f"cbpf optimize={opt}"] = tuple(
            i for i, p in enumerate(packets, 1)
            if run_bpf(progs[(p.linktype, opt)], p.data, p.length) != 0)
    return out


def test_the_lists_name_cases() -> None:
    names = {c.name for c in CASES}
    assert len(names) == len(CASES)
    assert set(NOT_YET) <= names and set(NEEDS_NAMES) <= names
    assert set(LIBPCAP_1_10_DIFFERS) <= names
    assert not set(NOT_YET) & set(NEEDS_NAMES)


@needs_corpus
def test_how_many_cases_purepcap_passes() -> None:
    supported = [c for c in _PRESENT if c.name not in NOT_YET and c.name not in NEEDS_NAMES]
    print(f"libpcap TESTrun apply cases: {len(supported)} supported / {len(_PRESENT)} with "
          f"captures in the corpus ({len(CASES)} in all; {len(NOT_YET)} not yet, "
          f"{len(NEEDS_NAMES)} need name resolution)")
    assert len(_PRESENT) == len(CASES)


@needs_corpus
@pytest.mark.parametrize("case", _PRESENT, ids=[c.name for c in _PRESENT])
def test_purepcap_selects_what_libpcap_selects(case: Case) -> None:
    packets = _packets(case)
    if case.name in NEEDS_NAMES or case.name in NOT_YET:
        with pytest.raises(FilterError):
            _selected(case, packets)
        return
    if case.name in FOLLOWS_INSTALLED_LIBPCAP:
        installed = _tcpdump_frames(case, packets) if TCPDUMP is not None else None
        for back_end, frames in _selected(case, packets).items():
            assert frames != case.frames, (back_end, case.expression)
            assert installed is None or frames == installed, (back_end, case.expression)
        return
    for back_end, frames in _selected(case, packets).items():
        assert frames == case.frames, (back_end, case.expression)


def _tcpdump_frames(case: Case, packets: list) -> tuple | None:
    proc = subprocess.run([TCPDUMP, "-r", str(_path(case)), "-w", "-", case.expression],
                          capture_output=True, timeout=30)
    if proc.returncode != 0:
        return None
    with purepcap.open(proc.stdout) as cap:
        theirs = [(p.length, bytes(p.data)) for p in cap]
        snap = cap.snaplen  # tcpdump -w cuts packets at the file's snaplen
    frames = []
    i = 0
    # identical packets get the same verdict, so the first match in order is the one
    for n, p in enumerate(packets, 1):
        if i < len(theirs) and theirs[i] == (p.length, bytes(p.data[:snap])):
            frames.append(n)
            i += 1
    assert i == len(theirs)
    return tuple(frames)


@needs_corpus
@pytest.mark.skipif(TCPDUMP is None, reason="tcpdump is not installed")
@pytest.mark.parametrize("case", [c for c in _PRESENT if c.name not in LIBPCAP_1_10_DIFFERS
                                  and c.name not in NEEDS_NAMES],
                         ids=lambda c: c.name)
def test_tcpdump_confirms_the_table(case: Case) -> None:
    assert _tcpdump_frames(case, _packets(case)) == case.frames
