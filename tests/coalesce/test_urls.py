from __future__ import annotations

import pytest

from runner.coalesce import URLNotAllowedError, check_url
from runner.errors import RunnerError

ALLOWED = [
    ("https://app.coalescesoftware.io", "https://app.coalescesoftware.io"),
    ("https://app.coalescesoftware.io/", "https://app.coalescesoftware.io"),
    ("HTTPS://App.EU.CoalesceSoftware.IO", "https://app.eu.coalescesoftware.io"),
    (
        "https://app.us-east-1.aws.coalescesoftware.io:443",
        "https://app.us-east-1.aws.coalescesoftware.io",
    ),
    ("https://acme.app.eu.coalescesoftware.io", "https://acme.app.eu.coalescesoftware.io"),
    ("https://coalescesoftware.io", "https://coalescesoftware.io"),
    ("https://app.coalesce.io", "https://app.coalesce.io"),
    ("https://coalesce.io", "https://coalesce.io"),
    ("https://app.coalescesoftware.io.", "https://app.coalescesoftware.io"),
    ("https://app.coalescesoftware.io:8443", "https://app.coalescesoftware.io:8443"),
    ("http://127.0.0.1:8765", "http://127.0.0.1:8765"),
    ("http://127.1.2.3", "http://127.1.2.3"),
    ("https://127.0.0.1:8765/", "https://127.0.0.1:8765"),
    ("http://localhost:8765", "http://localhost:8765"),
    ("http://[::1]:8765", "http://[::1]:8765"),
    ("sim://", "sim://"),
    ("SIM://", "sim://"),
]

REFUSED = [
    ("https://app.coalescesoftware.io.evil.com", "evil.com"),
    ("https://evil.com#.coalescesoftware.io", "evil.com"),
    ("https://evil.com/?.coalescesoftware.io", "evil.com"),
    ("http://app.coalescesoftware.io", "plain http"),
    ("https://evilcoalescesoftware.io", "evilcoalescesoftware.io"),
    ("https://coalescesoftware.io.evil.com", "coalescesoftware.io.evil.com"),
    ("https://user:pw@app.coalescesoftware.io", "before '@'"),
    ("https://app.coalescesoftware.io@evil.com", "before '@'"),
    ("https://evil.com\\@app.coalescesoftware.io", "before '@'"),
    ("https://evil.com\\.coalescesoftware.io", "backslash"),
    ("https://app.coalescesoftware.io evil.com", "space"),
    ("ftp://app.coalescesoftware.io", "scheme ftp"),
    ("file:///etc/passwd", "scheme file"),
    ("app.coalescesoftware.io", "scheme"),
    ("https://", "no host"),
    ("https://app.coalescesoftware.io:99999", "invalid port"),
    ("https://evil.com", "evil.com"),
    ("http://0.0.0.0:8765", "0.0.0.0"),
    ("http://10.1.2.3", "10.1.2.3"),
    ("https://app.coalescesoftw\u0430re.io", "non-ASCII"),  # a Cyrillic letter a
    ("sim://elsewhere", "scheme sim"),
]


@pytest.mark.parametrize(("url", "expected"), ALLOWED)
def test_allowed_urls_are_normalised(url: str, expected: str) -> None:
    assert check_url(url, {}) == expected


@pytest.mark.parametrize(("url", "reason"), REFUSED)
def test_refused_urls_say_why(url: str, reason: str) -> None:
    with pytest.raises(URLNotAllowedError) as caught:
        check_url(url, {})
    assert reason in str(caught.value)
    assert isinstance(caught.value, RunnerError)


def test_refusal_names_the_host_the_risk_and_the_way_out() -> None:
    with pytest.raises(URLNotAllowedError) as caught:
        check_url("https://coalesce.example.org", {})
    text = str(caught.value)
    assert "coalesce.example.org" in text
    assert "token" in text
    assert "RUNNER_ALLOWED_HOSTS=coalesce.example.org" in text


def test_userinfo_password_is_never_echoed() -> None:
    with pytest.raises(URLNotAllowedError) as caught:
        check_url("https://admin:CANARY-URL-PW-81@app.coalescesoftware.io", {})
    assert "CANARY-URL-PW-81" not in str(caught.value)
    assert "CANARY-URL-PW-81" not in repr(caught.value.args)


def test_query_token_is_never_echoed() -> None:
    with pytest.raises(URLNotAllowedError) as caught:
        check_url("https://app.coalescesoftware.io/?token=CANARY-QUERY-5", {})
    assert "CANARY-QUERY-5" not in str(caught.value)


ENV_ALLOWED = [
    ("coalesce.corp.example", "https://coalesce.corp.example"),
    (" other.example , coalesce.corp.example ", "https://coalesce.corp.example"),
    ("COALESCE.CORP.EXAMPLE", "https://coalesce.corp.example"),
    ("*.corp.example", "https://coalesce.corp.example"),
    ("coalesce.corp.example:443", "https://coalesce.corp.example"),
    ("https://coalesce.corp.example/", "https://coalesce.corp.example"),
]


@pytest.mark.parametrize(("entry", "expected"), ENV_ALLOWED)
def test_runner_allowed_hosts_admits_named_hosts(entry: str, expected: str) -> None:
    env = {"RUNNER_ALLOWED_HOSTS": entry}
    assert check_url("https://coalesce.corp.example", env) == expected


ENV_REFUSED = [
    ("https://coalesce.corp.example", "other.example"),
    ("https://coalesce.corp.example", "corp.example"),  # no subdomains without "*."
    ("https://corp.example", "*.corp.example"),  # "*." means subdomains only
    ("https://coalesce.corp.example.evil.com", "coalesce.corp.example"),
    ("https://coalesce.corp.example:8443", "coalesce.corp.example:443"),
    ("http://coalesce.corp.example", "coalesce.corp.example"),  # http needs http://
    ("https://evil.com", "*"),
    ("https://evil.com", ""),
    ("https://evil.com", "user@evil.com"),
]


@pytest.mark.parametrize(("url", "entry"), ENV_REFUSED)
def test_runner_allowed_hosts_admits_nothing_else(url: str, entry: str) -> None:
    with pytest.raises(URLNotAllowedError):
        check_url(url, {"RUNNER_ALLOWED_HOSTS": entry})


def test_plain_http_to_an_allowed_host_needs_an_explicit_http_entry() -> None:
    env = {"RUNNER_ALLOWED_HOSTS": "http://coalesce-sim:8765"}
    assert check_url("http://coalesce-sim:8765", env) == "http://coalesce-sim:8765"
    with pytest.raises(URLNotAllowedError):
        check_url("http://coalesce-sim:9999", env)


def test_environ_defaults_to_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNNER_ALLOWED_HOSTS", "coalesce.corp.example")
    assert check_url("https://coalesce.corp.example") == "https://coalesce.corp.example"
    monkeypatch.delenv("RUNNER_ALLOWED_HOSTS")
    with pytest.raises(URLNotAllowedError):
        check_url("https://coalesce.corp.example")
