# Private network namespaces for the live-capture tests (test_live, test_intake_live,
# test_hostile_round2): made with iproute2, entered per thread with setns(), removed
# afterwards. A socket made inside a namespace stays there, so a test enters one only to
# make its sockets and captures, then drives them from anywhere. Needs root on Linux.
from __future__ import annotations

import contextlib
import ctypes
import os
import subprocess
from collections.abc import Iterator

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=30)


def setns(fd: int) -> None:
    """Move this thread into the network namespace open as ``fd`` (os.setns arrived in
    Python 3.12)."""
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


@contextlib.contextmanager
def netns(name: str) -> Iterator[None]:
    """Run the current thread in network namespace ``name`` for the block."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        setns(target)
        yield
    finally:
        setns(home)
        os.close(target)
        os.close(home)


def make_namespace(name: str, *, ipv6: bool = False, loopback_up: bool = False) -> None:
    """Make namespace ``name`` (IPv6 off unless ``ipv6``, so no router solicitations or
    DAD packets appear; its loopback device up with ``loopback_up``)."""
    sh("ip", "netns", "add", name)
    if not ipv6 and os.path.exists("/proc/sys/net/ipv6"):
        sh("ip", "netns", "exec", name, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
           "net.ipv6.conf.default.disable_ipv6=1")
    if loopback_up:
        sh("ip", "-n", name, "link", "set", "lo", "up")


def remove_namespaces(names: list[str]) -> None:
    for ns in names:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)


def link_veth(a: str, b: str, va: str, vb: str, mac_a: str, mac_b: str, ip_a: str, ip_b: str) -> None:
    """Join namespaces ``a`` and ``b`` by a veth pair (``va`` in a, ``vb`` in b), each end
    up with its /24 address and the peer as a permanent neighbour (so no ARP)."""
    sh("ip", "link", "add", va, "netns", a, "address", mac_a, "type", "veth", "peer", "name", vb, "netns", b,
       "address", mac_b)
    for ns, dev, mine, peer, peer_mac in ((a, va, ip_a, ip_b, mac_b), (b, vb, ip_b, ip_a, mac_a)):
        sh("ip", "-n", ns, "addr", "add", f"{mine}/24", "dev", dev)
        sh("ip", "-n", ns, "link", "set", dev, "up")
        sh("ip", "-n", ns, "neigh", "replace", peer, "lladdr", peer_mac, "dev", dev, "nud", "permanent")


@contextlib.contextmanager
def namespaces(*names: str, skip: object = None, **kwargs: object) -> Iterator[None]:
    """Make ``names`` (make_namespace's ``kwargs``) for the block and remove them after;
    when they cannot be made, call ``skip`` (pytest.skip) with the reason."""
    made: list[str] = []
    try:
        try:
            for ns in names:
                make_namespace(ns, **kwargs)  # type: ignore[arg-type]
                made.append(ns)
        except (subprocess.CalledProcessError, OSError) as exc:
            if skip is None:
                raise
            skip(f"cannot make network namespaces here: {exc}")  # type: ignore[operator]
        yield
    finally:
        remove_namespaces(made)
