"""Hook URLs (pure): the one reading of a hook's URL, by RFC 3986's rules, for every entry and the client.

A hook URL is chosen by an account admin and then stored; the delivery client sends exactly what is
stored, so it is judged once, here, when it is written (hooks file, CLI, API, console: through
`subscriptions.rules.url_problem`) and again when a delivery is made (rows written before these
rules are refused then, as a permanent failure, rather than repaired). Nothing is ever stripped or
repaired silently: a URL is taken as written, or refused with a reason.

What is accepted (RFC 3986 §3, HTTP's `http`/`https` schemes of RFC 9110 §4.2):
- `http` or `https` (any case), then `//` and an authority with no userinfo (`user:pass@`: basic
  auth has its own field, so credentials never sit in a URL that is shown and logged);
- a host that is a registered name, an IPv4 address in dotted decimal, or an IPv6 address in
  brackets. A name is read by IDNA 2008 with UTS 46 mapping (the `idna` library, as browsers do):
  `faß.de` is `xn--fa-hia.de`, never `fass.de` (IDNA 2003's answer, another domain). ASCII labels are
  letters, digits, `-` and `_` (no leading or trailing `-`), at most 63 characters, 253 in all;
- an optional port, 1 to 65535, in plain decimal;
- a path and query made of the characters RFC 3986 allows there, `%` only as `%XX`.

What is refused, each with its own reason: control characters (CR, LF, TAB...), spaces, `"`, `<`,
`>`, `\\`, `^`, backquote, `{`, `|`, `}`, non-ASCII characters outside the host (percent-encode
them), a fragment (it is never sent), a trailing dot, a percent-encoded host, an IPv6 zone, and a
host that ends in a number without being a dotted-decimal IPv4 address. The last one is the rule for
numeric hosts: `http://2130706433/`, `0x7f.1` or `0177.0.0.1` are IPv4 addresses to `inet_aton` and
to browsers but not to RFC 3986, so the connection and the `Host` header could disagree; they are
refused with the dotted form to write instead (refused, not normalised: what is stored is what is
sent).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass

import idna

from hookd.errors import ConfigError

#: Longest hook URL accepted: what every common server takes on a request line (nginx's default
#: large_client_header_buffers is 8 KiB) with room for the method and version.
MAX_URL_LENGTH = 2048

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
# RFC 3986 §3.3 and §3.4: pchar = unreserved / pct-encoded / sub-delims / ":" / "@"; "/" and "?" too.
_TARGET_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@/?%")
_HEX = frozenset("0123456789abcdefABCDEF")
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_\-]{0,61}[a-z0-9_])?")
_NUMERIC_LABEL = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)", re.IGNORECASE)
_PORT = re.compile(r"[1-9][0-9]{0,4}")
_NAMED = {"\r": "a carriage return (CR)", "\n": "a line feed (LF)", "\t": "a tab", " ": "a space"}


class UrlError(ConfigError):
    """A hook URL that no request can be made to, or that these rules refuse; `problem` says why, in a
    phrase that reads after `url: ` (it never repeats the URL, which may carry credentials)."""

    def __init__(self, problem: str) -> None:
        self.problem = problem
        super().__init__([problem], "url")

    def __str__(self) -> str:
        return f"url: {self.problem}"


@dataclass(frozen=True, slots=True)
class HookURL:
    """A valid hook URL taken apart: what the client connects to, verifies and writes on the request."""

    scheme: str  # "http" or "https"
    host: str  # ASCII, for DNS, TLS and the network policy: the A-label name, or the IP address
    port: int  # as written, else 80 or 443
    target: str  # the request target: the path ("/" when empty) and the query, exactly as written
    host_header: str  # the Host header: the host (IPv6 in brackets), with ":port" when one is written
    literal: bool  # the host is an IP address (nothing to resolve)


def parse(url: object) -> HookURL:
    """Read a hook URL by the rules above; `UrlError` (with the reason) for one they refuse."""
    if not isinstance(url, str) or not url or url.isspace():
        raise UrlError("must be a non-empty http or https URL")
    if len(url) > MAX_URL_LENGTH:
        raise UrlError(f"must be at most {MAX_URL_LENGTH} characters long (this one has {len(url)})")
    _refuse_forbidden(url)
    scheme_match = _SCHEME.match(url)
    scheme = scheme_match.group(1).lower() if scheme_match else ""
    if scheme not in ("http", "https"):
        raise UrlError(f"must use http or https, not {scheme or 'no scheme'!r}")
    rest = url[len(scheme) + 1 :]
    if not rest.startswith("//"):
        raise UrlError(f"must name a host: {scheme}://host/...")
    rest = rest[2:]
    end = next((i for i, c in enumerate(rest) if c in "/?#"), len(rest))
    authority, tail = rest[:end], rest[end:]
    if "@" in authority:
        raise UrlError("must not carry credentials (use basic_auth instead)")
    raw_host, port_text = _split_authority(authority)
    host, literal = _host(raw_host)
    port = _port(port_text, scheme)
    target = _target(tail)
    shown = f"[{host}]" if ":" in host else host
    return HookURL(scheme, host, port, target, shown if port_text is None else f"{shown}:{port}", literal)


def problem(url: object) -> str | None:
    """Why `url` is not an acceptable hook URL (a phrase for after `url: `), or None when it is."""
    try:
        parse(url)
    except UrlError as exc:
        return exc.problem
    return None


def _refuse_forbidden(url: str) -> None:
    """Characters no part of a URL may hold: controls, spaces and RFC 3986's excluded ASCII."""
    for index, char in enumerate(url):
        if char in _NAMED or char.isspace() or not char.isprintable() or char in '"<>\\^`{|}':
            name = _NAMED.get(char) or f"{char!r} (U+{ord(char):04X})"
            raise UrlError(f"must not contain {name} (at character {index + 1}); percent-encode it or remove it")


def _split_authority(authority: str) -> tuple[str, str | None]:
    """`host` and the port's text (None when no ":" is written)."""
    if authority.startswith("["):
        close = authority.find("]")
        if close < 0:
            raise UrlError("has an IPv6 address without its closing ']'")
        after = authority[close + 1 :]
        if after and not after.startswith(":"):
            raise UrlError("has characters after the IPv6 address's ']' that are not a port")
        return authority[: close + 1], after[1:] if after else None
    host, colon, port = authority.rpartition(":")
    if not colon:
        return authority, None
    if ":" in host or "[" in host or "]" in host:
        raise UrlError("has an IPv6 address that is not in brackets, or a malformed port")
    return host, port


def _port(text: str | None, scheme: str) -> int:
    if text is None:
        return 443 if scheme == "https" else 80
    if not text.isascii() or not _PORT.fullmatch(text) or int(text) > 65535:
        raise UrlError(f"has port {text[:20]!r}: a port is a number from 1 to 65535, without leading zeros")
    return int(text)


def _host(raw: str) -> tuple[str, bool]:
    """The ASCII host and whether it is an IP address."""
    if not raw:
        raise UrlError("must name a host")
    if raw.startswith("["):
        inner = raw[1:-1]
        if "%" in inner:
            raise UrlError("has an IPv6 zone (%25...): zones are not supported in hook URLs")
        if inner[:1] in ("v", "V"):
            raise UrlError("has an IPvFuture address, which hookd cannot reach")
        try:
            return str(ipaddress.IPv6Address(inner)), True
        except ValueError:
            raise UrlError(f"has an invalid IPv6 address [{inner[:60]}]") from None
    if "[" in raw or "]" in raw:
        raise UrlError("has '[' or ']' outside an IPv6 address")
    if "%" in raw:
        raise UrlError("has a percent-encoded host; write the host name itself")
    if raw.endswith("."):
        raise UrlError(f"has host {raw[:100]!r} ending with a dot; write it without the final dot")
    ascii_host = _to_ascii(raw)
    last = ascii_host.rpartition(".")[2]
    if _NUMERIC_LABEL.fullmatch(last):
        return _ipv4(raw, ascii_host), True
    return ascii_host, False


def _to_ascii(raw: str) -> str:
    """The host name with every label in ASCII: IDNA 2008 A-labels for the others (UTS 46 mapping)."""
    text = raw.lower() if raw.isascii() else _remap(raw)
    if len(text) > 253:
        raise UrlError("has a host name longer than 253 characters")
    labels = []
    for label in text.split("."):
        if not label:
            raise UrlError(f"has an empty label in host {raw[:100]!r}")
        labels.append(_label(label, raw))
    return ".".join(labels)


def _remap(raw: str) -> str:
    try:
        return idna.uts46_remap(raw, std3_rules=False, transitional=False)
    except idna.IDNAError as exc:
        raise UrlError(f"has host {raw[:100]!r}, not a valid internationalised name: {exc}") from None


def _label(label: str, raw: str) -> str:
    if label.isascii() and not label.startswith("xn--"):
        if not _LABEL.fullmatch(label):
            raise UrlError(
                f"has host {raw[:100]!r} with label {label[:70]!r}: a label is 1 to 63 letters, digits, '-' or '_',"
                " not starting or ending with '-'"
            )
        return label
    try:
        encoded = idna.encode(label, uts46=True) if not label.isascii() else label.encode("ascii")
        idna.decode(encoded)  # an A-label (xn--) must be one IDNA 2008 accepts
    except (idna.IDNAError, UnicodeError) as exc:
        raise UrlError(f"has host {raw[:100]!r}, not a valid internationalised name (IDNA 2008): {exc}") from None
    return encoded.decode("ascii")


def _ipv4(raw: str, ascii_host: str) -> str:
    """A host ending in a number is an IPv4 address, accepted in dotted decimal only (see the docstring)."""
    try:
        address = ipaddress.IPv4Address(ascii_host)
    except ValueError:
        address = None
    if address is not None and str(address) == raw:
        return raw
    try:
        dotted = socket.inet_ntoa(socket.inet_aton(ascii_host)) if ascii_host.isascii() else None
    except OSError:
        dotted = None
    if dotted is None:
        raise UrlError(f"has host {raw[:100]!r}, which ends in a number but is not an IPv4 address (a.b.c.d)")
    raise UrlError(f"has host {raw[:100]!r}, an IPv4 address not in dotted decimal: write it as {dotted}")


def _target(tail: str) -> str:
    """The path and query as written ("/" for an empty path, RFC 9112 §3.2.1); no fragment."""
    if "#" in tail:
        raise UrlError("must not have a fragment (#...): a fragment is never sent to the receiver")
    for index, char in enumerate(tail):
        if char not in _TARGET_CHARS:
            hint = "percent-encode it (UTF-8)" if not char.isascii() else "percent-encode it"
            raise UrlError(f"must not contain {char!r} (U+{ord(char):04X}) in its path or query; {hint}")
        if char == "%" and not (tail[index + 1 : index + 2] in _HEX and tail[index + 2 : index + 3] in _HEX):
            raise UrlError("has a '%' that is not followed by two hex digits (write %25 for a literal '%')")
    return tail if tail.startswith("/") else "/" + tail
