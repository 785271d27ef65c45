"""hookd.urls: a hook URL is read once, by RFC 3986's rules, into what the client connects to and sends."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hookd.errors import ConfigError, HookdError
from hookd.netpolicy import literal_address
from hookd.urls import HookURL, UrlError, parse, problem

_ALPHA = "abcdefghijklmnopqrstuvwxyz"
_labels = st.from_regex(r"\A[a-z0-9](?:[a-z0-9\-_]{0,20}[a-z0-9])?\Z").filter(lambda s: not s.startswith("xn--"))
_names = st.lists(_labels, min_size=1, max_size=4).map(".".join).map(lambda n: f"{n}.example")
_pchars = st.text(alphabet=_ALPHA + "ABC0123456789-._~!$&'()*+,;=:@", max_size=12)
_paths = st.lists(_pchars, max_size=4).map(lambda segments: "".join("/" + s for s in segments))
_queries = st.one_of(st.just(""), st.text(alphabet=_ALPHA + "0123456789=&/?:@-", max_size=20).map(lambda q: "?" + q))
_ports = st.one_of(st.none(), st.integers(1, 65535))


@st.composite
def _valid_urls(draw: st.DrawFn) -> tuple[str, str, str, int | None, str]:
    """A URL these rules accept, with its parts: scheme, host as written, port, target as written."""
    scheme = draw(st.sampled_from(["http", "https", "HTTP", "Https"]))
    host = draw(st.one_of(_names, st.ip_addresses(v=4).map(str), st.ip_addresses(v=6).map(lambda a: f"[{a}]")))
    port = draw(_ports)
    target = draw(_paths) + draw(_queries)
    authority = host if port is None else f"{host}:{port}"
    return f"{scheme}://{authority}{target}", scheme, host, port, target


@pytest.mark.parametrize(
    ("url", "host", "port", "target", "host_header"),
    [
        ("https://hooks.example.com/in", "hooks.example.com", 443, "/in", "hooks.example.com"),
        ("http://hooks.example.com:8080/in?x=1", "hooks.example.com", 8080, "/in?x=1", "hooks.example.com:8080"),
        ("HTTPS://Hooks.Example.COM", "hooks.example.com", 443, "/", "hooks.example.com"),
        ("http://hooks.example.com?x=1", "hooks.example.com", 80, "/?x=1", "hooks.example.com"),
        ("https://[2001:DB8::0:1]:8443/a", "2001:db8::1", 8443, "/a", "[2001:db8::1]:8443"),
        ("http://203.0.113.9/a%20b", "203.0.113.9", 80, "/a%20b", "203.0.113.9"),
        ("http://internal_host.corp/x", "internal_host.corp", 80, "/x", "internal_host.corp"),
        ("https://r3---sn-x.example.net/", "r3---sn-x.example.net", 443, "/", "r3---sn-x.example.net"),
    ],
)
def test_a_valid_url_is_taken_apart(url: str, host: str, port: int, target: str, host_header: str) -> None:
    """A valid URL gives the ASCII host, the port, the request target as written and the Host header."""
    parsed = parse(url)
    assert (parsed.host, parsed.port, parsed.target, parsed.host_header) == (host, port, target, host_header)
    assert problem(url) is None


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://faß.de/", "xn--fa-hia.de"),  # IDNA 2008; IDNA 2003 would say fass.de, another domain
        ("https://FAß.DE/", "xn--fa-hia.de"),
        ("https://bücher.example/", "xn--bcher-kva.example"),
        ("https://日本.jp/", "xn--wgv71a.jp"),
        ("https://\uff25\uff38\uff21\uff2d\uff30\uff2c\uff25\u3002com/", "example.com"),  # full-width, UTS 46
        ("https://XN--FA-HIA.de/", "xn--fa-hia.de"),
    ],
)
def test_names_are_read_by_idna_2008_with_uts46(url: str, host: str) -> None:
    """International names become IDNA 2008 A-labels (UTS 46 mapping): faß.de goes to xn--fa-hia.de."""
    parsed = parse(url)
    assert parsed.host == host
    assert parsed.host_header == host
    assert not parsed.literal


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("ftp://hooks.example.com/", "must use http or https, not 'ftp'"),
        ("hooks.example.com/in", "must use http or https, not 'no scheme'"),
        ("https:hooks.example.com/in", "must name a host"),
        ("https:///in", "must name a host"),
        ("https://u:p@hooks.example.com/", "must not carry credentials"),
        ("https://u@hooks.example.com/", "must not carry credentials"),
        ("https://hooks.example.com:http/", "a port is a number from 1 to 65535"),
        ("https://hooks.example.com:0/", "a port is a number from 1 to 65535"),
        ("https://hooks.example.com:65536/", "a port is a number from 1 to 65535"),
        ("https://hooks.example.com:08080/", "without leading zeros"),
        ("https://hooks.example.com:/", "a port is a number"),
        ("https://[::1/", "without its closing ']'"),
        ("https://[fe80::1%25eth0]/", "IPv6 zone"),
        ("https://[v1.x]/", "IPvFuture"),
        ("https://[not:an:address::x]/", "invalid IPv6 address"),
        ("https://2001:db8::1/", "not in brackets"),
        ("", "must be a non-empty http or https URL"),
        ("   ", "must be a non-empty http or https URL"),
        (None, "must be a non-empty http or https URL"),
        (7, "must be a non-empty http or https URL"),
        ("  https://padded.example.com/  ", "must not contain a space (at character 1)"),
        ("https://hooks.example.com/in\r\n", "carriage return"),
        ("https://hooks.example.com/i\nn", "line feed"),
        ("https://hooks.\texample.com/", "a tab"),
        ("https://exa mple.com/", "a space"),
        ('https://hooks.example.com/"x"', "'\"'"),
        ("https://hooks.example.com/<x>", "'<'"),
        ("https://hooks.example.com/a|b", "'|'"),
        ("https://hooks.example.com/a\\b", "'\\\\'"),
        ("https://hooks.example.com/a\x00b", "U+0000"),
        ("https://hooks.example.com/café", "percent-encode it (UTF-8)"),
        ("https://hooks.example.com/a[0]", "'['"),
        ("https://hooks.example.com/in#frag", "fragment"),
        ("https://hooks.example.com/100%", "'%' that is not followed by two hex digits"),
        ("https://hooks.example.com/%zz", "'%' that is not followed by two hex digits"),
        ("https://hooks.example.com./", "ending with a dot"),
        ("https://hooks..example.com/", "empty label"),
        ("https://-hooks.example.com/", "not starting or ending with '-'"),
        ("https://hooks!.example.com/", "with label 'hooks!'"),
        ("https://%68ooks.example.com/", "percent-encoded host"),
        ("https://" + "a" * 64 + ".example.com/", "1 to 63"),
        ("https://" + "abcdefgh." * 30 + "com/", "longer than 253"),
        ("https://xn--zz.example/", "IDNA 2008"),
        ("https://a\u200db.example/", "U+200D"),
        ("https://hooks.example.com/" + "a" * 2100, "at most 2048 characters"),
    ],
)
def test_an_unacceptable_url_is_refused_with_its_reason(url: object, fragment: str) -> None:
    """Each unacceptable URL is refused, with a reason naming what is wrong."""
    found = problem(url)
    assert found is not None
    assert fragment in found
    with pytest.raises(UrlError, match=r"^url: "):
        parse(url)


@pytest.mark.parametrize(
    ("host", "dotted"),
    [("2130706433", "127.0.0.1"), ("0x7f.1", "127.0.0.1"), ("0177.0.0.1", "127.0.0.1"), ("127.1", "127.0.0.1"),
     ("127.0.0.01", "127.0.0.1"), ("0x7F000001", "127.0.0.1"),
     ("\uff11\uff12\uff17.\uff10.\uff10.\uff11", "127.0.0.1")],  # full-width digits
)  # fmt: skip
def test_a_numeric_host_not_in_dotted_decimal_is_refused_with_the_dotted_form(host: str, dotted: str) -> None:
    """inet_aton's other IPv4 spellings are refused (never normalised), naming the dotted form to write."""
    found = problem(f"http://{host}:8080/in")
    assert found is not None
    assert f"write it as {dotted}" in found


@pytest.mark.parametrize("host", ["1.2.3.4.5", "256.1.1.1", "example.0x", "hooks.123"])
def test_a_host_ending_in_a_number_that_is_no_address_is_refused(host: str) -> None:
    """A host whose last label is a number must be a dotted-decimal IPv4 address."""
    found = problem(f"http://{host}/")
    assert found is not None
    assert "ends in a number but is not an IPv4 address" in found


def test_a_refused_url_is_not_echoed_with_its_credentials() -> None:
    """The reason never repeats the URL, so a password in it stays out of logs and error messages."""
    for url in ("https://user:hunter2@hooks.example.com/", "https://hooks.example.com/?token=hunter2#x"):
        found = problem(url)
        assert found is not None and "hunter2" not in found


def test_url_error_is_a_config_error() -> None:
    """UrlError sits in hookd's tree under ConfigError: a bad URL is a bad hook."""
    assert issubclass(UrlError, ConfigError) and issubclass(UrlError, HookdError)


@given(_valid_urls())
def test_every_valid_url_is_read_as_written(parts: tuple[str, str, str, int | None, str]) -> None:
    """A valid URL keeps its path and query exactly as written; host and port are what it names."""
    url, scheme, host, port, target = parts
    parsed = parse(url)
    assert parsed.scheme == scheme.lower()
    assert parsed.target == (target if target.startswith("/") else "/" + target)
    assert parsed.port == (port if port is not None else (443 if scheme.lower() == "https" else 80))
    written = host.strip("[]")
    assert parsed.host == (str(ipaddress.ip_address(written)) if parsed.literal else written)
    assert parsed.host_header.startswith(f"[{parsed.host}]" if ":" in parsed.host else parsed.host)
    assert parsed.host_header.endswith(f":{port}") == (port is not None)


@given(_valid_urls(), st.sampled_from(["\r", "\n", "\t", " ", '"', "<", ">", "\x00", "\x7f", "{", "`"]), st.data())
def test_a_forbidden_character_anywhere_is_refused_never_stripped(
    parts: tuple[str, str, str, int | None, str], char: str, data: st.DataObject
) -> None:
    """CR, LF, TAB, space, quotes, <> and the like make any URL invalid wherever they stand."""
    url = parts[0]
    at = data.draw(st.integers(0, len(url)))
    assert problem(url[:at] + char + url[at:]) is not None


@given(st.one_of(st.text(max_size=80), st.from_regex(r"\Ahttps?://[^/]{0,40}(/.{0,30})?\Z"), st.none(), st.binary()))
def test_problem_never_raises_and_agrees_with_parse(url: object) -> None:
    """problem() returns None exactly when parse() succeeds, for any value; neither raises anything else."""
    try:
        parsed: HookURL | None = parse(url)
    except UrlError:
        parsed = None
    assert (problem(url) is None) == (parsed is not None)


@given(
    st.one_of(
        st.from_regex(r"\A(0x[0-9a-fA-F]{0,10}|0[0-7]{0,12}|[0-9]{1,12})(\.(0x[0-9a-f]{0,4}|[0-9]{1,5})){0,4}\Z"),
        st.ip_addresses(v=4).map(str),
        _names,
    )
)
def test_the_host_connected_to_is_the_host_sent(host: str) -> None:
    """An accepted host is read the same way by the policy (address or name): connection and Host agree."""
    try:
        parsed = parse(f"http://{host}:8080/")
    except UrlError:
        return
    seen_by_policy = literal_address(parsed.host)
    assert (seen_by_policy is not None) == parsed.literal
    if seen_by_policy is not None:
        assert str(seen_by_policy) == parsed.host == parsed.host_header.rsplit(":", 1)[0]
