"""Which API URLs the runner may send a Coalesce token to.

A spec edited in a pull request must not be able to send credentials to a host of its
choosing, so the URL is checked against an allow-list before any request is made:

- ``https`` to ``coalescesoftware.io``, ``coalesce.io`` and their subdomains;
- loopback (``127.0.0.0/8``, ``::1``, ``localhost``) over ``http`` or ``https``;
- ``sim://``, the embedded simulator;
- hosts named in ``RUNNER_ALLOWED_HOSTS`` (comma-separated). An entry is a host name
  (``coalesce.corp.example``), optionally with a port (``host:8443``), a ``*.`` prefix
  for every subdomain (``*.corp.example``), or an ``http://`` prefix to also allow plain
  http to it (``http://coalesce-sim:8765``, for a simulator in a CI network).

:func:`check_url` is pure, so ``runner validate`` can call it offline.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from runner.errors import RunnerError

__all__ = [
    "ALLOWED_HOSTS_ENV",
    "COALESCE_DOMAINS",
    "SIM_URL",
    "URLNotAllowedError",
    "check_url",
    "is_loopback_url",
    "is_sim_url",
]

ALLOWED_HOSTS_ENV = "RUNNER_ALLOWED_HOSTS"
COALESCE_DOMAINS = ("coalescesoftware.io", "coalesce.io")
SIM_URL = "sim://"

_DEFAULT_PORTS = {"http": 80, "https": 443}
_LOCALHOST_NAMES = ("localhost",)


class URLNotAllowedError(RunnerError):
    """A Coalesce URL that the runner refuses to send credentials to."""


@dataclass(frozen=True)
class _AllowedHost:
    """One entry of ``RUNNER_ALLOWED_HOSTS``."""

    host: str
    port: int | None
    any_subdomain: bool
    plain_http: bool

    def matches(self, scheme: str, host: str, port: int) -> bool:
        if scheme == "http" and not self.plain_http:
            return False
        if self.port is not None and self.port != port:
            return False
        if self.any_subdomain:
            return host.endswith("." + self.host)
        return host == self.host


def is_sim_url(url: str) -> bool:
    """Whether ``url`` names the embedded simulator."""
    return url.strip().lower().rstrip("/") in ("sim:", "sim://", "sim:/")


def check_url(url: str, environ: Mapping[str, str] | None = None) -> str:
    """The normalised base URL of ``url`` if a token may be sent there; otherwise raise
    :class:`URLNotAllowedError` saying why and how to allow it.

    Messages name the host, never the whole URL: a URL may carry a password or token.

    Normalisation lower-cases the scheme and host, drops a default port, a trailing dot
    on the host and a trailing slash on the path.
    """
    env = os.environ if environ is None else environ
    if is_sim_url(url):
        return SIM_URL
    _refuse_userinfo(url)
    _refuse_odd_characters(url)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise URLNotAllowedError(
            f"The Coalesce URL uses the scheme {scheme + ':' if scheme else '(none)'}; "
            "only https:// (http:// for loopback) and sim:// are supported.",
            hint="Write the URL in full, e.g. https://app.coalescesoftware.io",
        )
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise URLNotAllowedError(
            f"The Coalesce URL for {parts.hostname or '?'} has a query or fragment "
            "('?' or '#'); a base URL has neither.",
            hint="Use just the scheme and host, e.g. https://app.coalescesoftware.io",
        )
    host = _host_of(parts.hostname)
    port = _port_of(parts, scheme)
    _check_host_allowed(scheme, host, port, env)
    return _normalised(scheme, host, port, parts.path)


def _refuse_userinfo(url: str) -> None:
    # Checked first, and the URL is not echoed: the part before '@' may be a password.
    authority = url.partition("://")[2].split("/", 1)[0]
    if "@" in authority:
        host = authority.rpartition("@")[2] or "?"
        raise URLNotAllowedError(
            f"The Coalesce URL for host {host} contains a user name or password before "
            "'@'; the runner never sends credentials inside a URL.",
            hint="Remove the part before '@'; the token goes in coalesce.token.",
        )


def _refuse_odd_characters(url: str) -> None:
    # Backslashes, whitespace and control characters are parsed differently by different
    # URL parsers; a URL that means one host to the check and another to the sender
    # would defeat the allow-list.
    if any(ch == "\\" or ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise URLNotAllowedError(
            "The Coalesce URL contains a backslash, a space or a control character.",
            hint="Write the URL plainly, e.g. https://app.coalescesoftware.io",
        )
    if not url.isascii():
        raise URLNotAllowedError(
            "The Coalesce URL contains non-ASCII characters.",
            hint="Write an international host name in its ASCII (xn--) form.",
        )


def _host_of(hostname: str | None) -> str:
    host = (hostname or "").lower()
    if host.endswith("."):
        host = host[:-1]
    if not host:
        raise URLNotAllowedError(
            "The Coalesce URL has no host.",
            hint="Write the URL in full, e.g. https://app.coalescesoftware.io",
        )
    return host


def _port_of(parts: SplitResult, scheme: str) -> int:
    try:
        port = parts.port
    except ValueError:
        raise URLNotAllowedError(
            f"The Coalesce URL for {parts.hostname or '?'} has an invalid port.",
            hint="A port is a number from 1 to 65535, e.g. https://localhost:8765",
        ) from None
    return _DEFAULT_PORTS[scheme] if port is None else port


def is_loopback_url(url: str) -> bool:
    """Whether ``url`` points at this machine (``127.0.0.0/8``, ``::1``, ``localhost``):
    such requests never go through a proxy."""
    try:
        hostname = urlsplit(url).hostname
    except ValueError:
        return False
    host = (hostname or "").lower().rstrip(".")
    return bool(host) and _is_loopback(host)


def _is_loopback(host: str) -> bool:
    if host in _LOCALHOST_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_coalesce_host(host: str) -> bool:
    return any(host == domain or host.endswith("." + domain) for domain in COALESCE_DOMAINS)


def _check_host_allowed(scheme: str, host: str, port: int, env: Mapping[str, str]) -> None:
    if _is_loopback(host):
        return
    if any(entry.matches(scheme, host, port) for entry in _allowed_hosts(env)):
        return
    if _is_coalesce_host(host):
        if scheme == "https":
            return
        raise URLNotAllowedError(
            f"The Coalesce URL for {host} uses plain http: the access token would be sent "
            "unencrypted.",
            hint=f"Use https://{host}",
        )
    raise URLNotAllowedError(
        f"The Coalesce URL points to {host}, which is not a Coalesce host: the runner "
        "would send your Coalesce token (and Snowflake credentials) there.",
        hint=(
            "Use a Coalesce URL (https://*.coalescesoftware.io or https://*.coalesce.io), "
            "a loopback address or sim://. If this host is really yours, allow it with "
            f"the environment variable {ALLOWED_HOSTS_ENV}={host}"
            + (f" (or http://{host} to allow plain http)" if scheme == "http" else "")
        ),
    )


def _allowed_hosts(env: Mapping[str, str]) -> list[_AllowedHost]:
    raw = env.get(ALLOWED_HOSTS_ENV, "")
    return [entry for item in raw.split(",") if (entry := _parse_entry(item)) is not None]


def _parse_entry(item: str) -> _AllowedHost | None:
    text = item.strip().lower()
    plain_http = text.startswith("http://")
    for prefix in ("http://", "https://"):
        text = text.removeprefix(prefix)
    text = text.rstrip("/")
    any_subdomain = text.startswith("*.")
    text = text.removeprefix("*.")
    host, port = _split_port(text)
    host = host.removesuffix(".")
    if not host or "*" in host or "/" in host or "@" in host:
        return None  # malformed entries allow nothing
    return _AllowedHost(host, port, any_subdomain, plain_http)


def _split_port(text: str) -> tuple[str, int | None]:
    if text.startswith("["):  # [::1]:8080
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, ""
    if not port_text:
        return host, None
    return (host, int(port_text)) if port_text.isdigit() else ("", None)


def _normalised(scheme: str, host: str, port: int, path: str) -> str:
    shown_host = f"[{host}]" if ":" in host else host
    shown_port = "" if port == _DEFAULT_PORTS[scheme] else f":{port}"
    return f"{scheme}://{shown_host}{shown_port}{path.rstrip('/')}"
