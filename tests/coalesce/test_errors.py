"""Errors a person reads at 3 a.m.: what failed, where, how to fix it, and never a secret."""

from __future__ import annotations

import httpx
import pytest

from runner.coalesce import CoalesceAPIError, CoalesceUnreachable
from runner.coalesce.requests import StartRunRequest
from runner.secrets import Secret

from .fakes import TOKEN_VALUE, FakeCoalesce, answer, error, make_client, refuse

CANARY = "CANARY-PASSWORD-7f3a"


def all_text(exc: BaseException) -> str:
    """Every way an exception can end up printed."""
    return "\n".join([str(exc), repr(exc), repr(exc.args), repr(vars(exc))])


async def test_401_hint_names_the_token_source_and_how_to_make_a_token() -> None:
    server = FakeCoalesce(
        [error(401, "401: Unable to authenticate, please ensure your token is valid.")]
    )
    async with make_client(server, token_source="the environment variable COALESCE_TOKEN") as c:
        with pytest.raises(CoalesceAPIError) as caught:
            await c.get_environment("4")
    text = str(caught.value)
    assert caught.value.status == 401
    assert "Unable to authenticate" in text
    assert "the environment variable COALESCE_TOKEN" in text
    assert "Generate Access Token" in text
    assert "GET /api/v1/environments/4" in text


async def test_a_server_echoing_a_password_is_withheld_everywhere() -> None:
    Secret(CANARY)  # registered as every resolved secret is
    server = FakeCoalesce(
        [error(400, f"Invalid snowflakePassword {CANARY}", f'{{"snowflakePassword": "{CANARY}"}}')]
    )
    async with make_client(server) as client:
        with pytest.raises(CoalesceAPIError) as caught:
            await client.fire(StartRunRequest("4"))
    exc = caught.value
    assert CANARY not in all_text(exc)
    assert exc.error_detail == (
        "Coalesce's error text was withheld because it contained a credential "
        "(status 400; fields: snowflakePassword)"
    )
    assert "snowflakePassword" in (exc.hint or "")


async def test_the_token_never_appears_in_an_error_even_when_echoed() -> None:
    server = FakeCoalesce([error(401, f"bad token {TOKEN_VALUE}", f"Bearer {TOKEN_VALUE}")])
    async with make_client(server) as client:
        with pytest.raises(CoalesceAPIError) as caught:
            await client.get_run(1)
    assert server.reached[0].headers["authorization"] == f"Bearer {TOKEN_VALUE}"
    assert TOKEN_VALUE not in all_text(caught.value)


async def test_unreachable_errors_carry_no_token_or_body() -> None:
    Secret(CANARY)
    server = FakeCoalesce([refuse() for _ in range(4)])
    async with make_client(server) as client:
        with pytest.raises(CoalesceUnreachable) as caught:
            await client.fire(
                StartRunRequest("4", credentials={"snowflakePassword": Secret(CANARY)})
            )
    text = all_text(caught.value)
    assert TOKEN_VALUE not in text
    assert CANARY not in text
    assert "snowflakePassword" not in text
    # Tracebacks do not chain to the httpx exception (which holds the request).
    assert caught.value.__cause__ is None and caught.value.__context__ is None


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ("runDetails.environmentID is required", "environmentID"),
        ("Invalid includeNodesSelector: unexpected '}'", "includeNodesSelector"),
        ("parallelism must be between 1 and 1024", "parallelism"),
    ],
)
async def test_400_hint_points_at_the_field_when_the_message_names_one(
    message: str, field: str
) -> None:
    server = FakeCoalesce([error(400, message)])
    async with make_client(server) as client:
        with pytest.raises(CoalesceAPIError) as caught:
            await client.fire(StartRunRequest("4"))
    assert f"the field {field}" in (caught.value.hint or "")


async def test_404_says_the_environment_or_run_may_not_exist() -> None:
    server = FakeCoalesce([error(404, "Not found")])
    async with make_client(server) as client:
        with pytest.raises(CoalesceAPIError) as caught:
            await client.get_environment("99")
    assert "may not exist" in str(caught.value)


async def test_an_error_page_that_is_not_coalesce_json_is_shown_briefly() -> None:
    page = "<html><body>" + "Bad gateway " * 100 + "</body></html>"
    server = FakeCoalesce([answer(403, text=page)])
    async with make_client(server) as client:
        with pytest.raises(CoalesceAPIError) as caught:
            await client.get_run(1)
    assert "Bad gateway" in str(caught.value)
    assert len(str(caught.value)) < 1000


async def test_a_redirect_is_not_followed_and_says_where_it_went() -> None:
    server = FakeCoalesce(
        [answer(301, headers={"Location": "https://app.eu.coalescesoftware.io/api/v1/runs/1"})]
    )
    async with make_client(server) as client:
        with pytest.raises(CoalesceAPIError) as caught:
            await client.get_run(1)
    assert len(server.attempted) == 1
    assert "app.eu.coalescesoftware.io" in str(caught.value)


def test_a_local_transport_mistake_is_not_called_unreachable() -> None:
    # Guard for the classification table: protocol bugs are not network weather.
    from runner.coalesce.retry import Verdict, read_exception_verdict, write_exception_verdict

    bug = httpx.UnsupportedProtocol("no")
    assert read_exception_verdict(bug) is Verdict.FAIL
    assert write_exception_verdict(bug) is Verdict.FAIL
