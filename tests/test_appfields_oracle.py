# purepcap's application fields against tshark 4.0's (reassembly off) on the shared
# corpus, by the comparison rules of corpus-meta/README.md: at least 99.5% of the field
# values agree, and every value that does not is named below with its reason.
from __future__ import annotations

import pytest
from conftest import META, have_corpus

pytestmark = pytest.mark.skipif(not (have_corpus() and (META / "appfields.csv.gz").is_file()),
                                reason="../shared/corpus-meta/appfields.csv.gz (the external oracle) is absent")

_PROXY_TLS = ("TLS inside an HTTP CONNECT tunnel on a proxy port: tshark knows it from the CONNECT; "
              "purepcap, reading one packet, reads TLS on a proxy port whenever a TLS record starts it")
_HTTP_STATE = ("header lines alone on a port nobody claims: tshark's HTTP heuristic claimed the "
               "conversation at an earlier request; purepcap takes header lines without a request "
               "line only on HTTP's ports")

# (file, frame, field) -> why purepcap and tshark differ there
KNOWN = {
    ("ndpi/tests/cfgs/default/pcap/ookla.pcap", 88, "tls_sni"): _PROXY_TLS,
    ("ndpi/tests/cfgs/default/pcap/ookla.pcap", 88, "tls_alpn"): _PROXY_TLS,
    ("ndpi/tests/cfgs/default/pcap/ookla.pcap", 88, "ja3"): _PROXY_TLS,
    ("ndpi/tests/cfgs/default/pcap/ookla.pcap", 88, "ja4"): _PROXY_TLS,
    ("ndpi/tests/cfgs/default/pcap/ookla.pcap", 90, "ja3s"): _PROXY_TLS,
    ("ndpi/tests/cfgs/default/pcap/http-lines-split.pcap", 6, "http_user_agent"): _HTTP_STATE,
}


@pytest.fixture(scope="module")
def comparison():
    import appfields_oracle
    return appfields_oracle.compare()


def test_agreement_with_tshark(comparison):
    agree, total, _ = comparison
    assert sum(total.values()) > 5000  # the corpus has ~5,800 values to compare
    assert sum(agree.values()) >= 0.995 * sum(total.values())
    for field, n in total.items():
        assert agree[field] >= 0.99 * n, field


def test_every_difference_is_named(comparison):
    _, _, diffs = comparison
    assert {(name, frame, field) for name, frame, field, _, _ in diffs} == set(KNOWN)


def test_dns_away_from_its_ports_agrees_where_tshark_found_it():
    # frames tshark's UDP heuristic called DNS on other ports are not scored (the
    # comparison above skips them; a value purepcap finds on any other frame counts
    # against it there): here purepcap's own port-independent test must find most of
    # them, with tshark's values
    import appfields_oracle as ao

    from purepcap._appfields import APP_FIELDS
    rows, _ = ao.load_oracle()
    found = agree = compared = 0
    for name, frames in rows.items():
        off_port = [f for f, r in frames.items() if r["scope"] == "dns-off-port"]
        if not off_port:
            continue
        ours = ao.ours(ao.CORPUS / name)
        for frame in off_port:
            values = ours.get(frame)
            if values is None:
                continue
            found += 1
            for i, field in enumerate(APP_FIELDS[:5]):
                mine, theirs = ao.our_value(values[i], field), ao.oracle_value(frames[frame], field)
                if mine is not None or theirs is not None:
                    compared += 1
                    agree += mine == theirs
    assert found >= 80  # of 90; the others are messages it finds implausible
    assert agree == compared


def test_dataframe_equals_records_on_captures_with_application_fields():
    # the DataFrame decodes only the packets its vectorised candidate test lets through
    # (and the reference decoder's rows one by one): the same values as records()
    import appfields_oracle as ao

    import purepcap
    from purepcap._appfields import APP_FIELDS
    rows, files = ao.load_oracle()
    busiest = sorted(rows, key=lambda name: -len(rows[name]))[:40]
    checked = 0
    for name in busiest:
        path = ao.CORPUS / name
        try:
            expected = [[r[f] for f in APP_FIELDS] for r in purepcap.records(path, fields=APP_FIELDS)]
            df = purepcap.to_pandas(path, columns=APP_FIELDS)
        except purepcap.PcapError:
            continue
        got = [list(t) for t in zip(*(df[f].tolist() for f in APP_FIELDS))]  # noqa: B905
        assert got == expected, name
        assert all(df[f].dtype == object for f in APP_FIELDS)
        checked += sum(any(v is not None for v in row) for row in expected)
    assert checked > 1000
