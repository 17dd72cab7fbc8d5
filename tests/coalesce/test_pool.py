"""One connection pool per base URL, shared by clients with different tokens; sim://."""

from __future__ import annotations

import importlib

import httpx
import pytest

from runner.coalesce import ClientPool, CoalesceAPIError, CoalesceClient, URLNotAllowedError
from runner.coalesce.requests import StartRunRequest
from runner.coalesce.transport import SpreadTransport
from runner.errors import RunnerError
from runner.secrets import Secret

from .fakes import FakeCoalesce, answer, make_pool

STATUS = {"runStatus": "completed"}


async def test_clients_of_a_pool_share_a_url_but_send_their_own_token() -> None:
    server = FakeCoalesce([answer(200, STATUS), answer(200, STATUS), answer(200, STATUS)])
    async with make_pool(server) as pool:
        prod = pool.client("https://app.coalescesoftware.io/", Secret("TOKEN-PROD"))
        dev = pool.client("https://APP.coalescesoftware.io", Secret("TOKEN-DEV"))
        await prod.run_status(1)
        await dev.run_status(2)
        await dev.aclose()  # a pooled client does not close the shared connections
        await prod.run_status(3)
        assert prod._http is dev._http  # the connections of a base URL are shared
    auth = [r.headers["authorization"] for r in server.reached]
    assert auth == ["Bearer TOKEN-PROD", "Bearer TOKEN-DEV", "Bearer TOKEN-PROD"]
    assert {r.url.host for r in server.reached} == {"app.coalescesoftware.io"}


async def test_a_pool_refuses_a_url_off_the_allow_list_before_sending() -> None:
    server = FakeCoalesce([])
    async with ClientPool(transport=server.transport(), environ={}) as pool:
        with pytest.raises(URLNotAllowedError):
            pool.client("https://evil.example", Secret("TOKEN-X"))
    assert server.attempted == []


async def test_a_client_refuses_a_url_off_the_allow_list_before_sending() -> None:
    server = FakeCoalesce([])
    with pytest.raises(URLNotAllowedError):
        CoalesceClient(
            "https://evil.example", Secret("T"), transport=server.transport(), environ={}
        )
    assert server.attempted == []


async def test_allowed_hosts_come_from_the_given_environment() -> None:
    server = FakeCoalesce([answer(200, STATUS)])
    env = {"RUNNER_ALLOWED_HOSTS": "coalesce.corp.example"}
    async with ClientPool(transport=server.transport(), environ=env) as pool:
        await pool.client("https://coalesce.corp.example", Secret("T")).run_status(1)
    assert server.reached[0].url.host == "coalesce.corp.example"


async def test_sim_urls_talk_to_the_in_process_simulator_host() -> None:
    server = FakeCoalesce([answer(200, STATUS)])
    async with ClientPool(transport=server.transport(), environ={}) as pool:
        client = pool.client("sim://", Secret("T"))
        await client.run_status(1)
    assert str(server.reached[0].url) == "http://sim/scheduler/runStatus?runCounter=1"
    assert client.host == "sim"


def _embedded_app_available() -> bool:
    try:
        return hasattr(importlib.import_module("runner.sim"), "embedded_app")
    except ImportError:
        return False


@pytest.mark.skipif(not _embedded_app_available(), reason="runner.sim.embedded_app not built yet")
async def test_sim_url_reaches_the_embedded_simulator_mounted_by_the_runtime() -> None:
    from runner.runtime import Runtime

    async with Runtime(environ={}).pool() as pool:
        client = pool.client("sim://", Secret("not-a-demo-token"))
        with pytest.raises(CoalesceAPIError) as caught:
            await client.run_status(1)
    # Whatever the demo world accepts, a made-up token must be refused with a 401.
    assert caught.value.status == 401


async def test_a_bare_pool_knows_no_simulator() -> None:
    async with ClientPool(environ={}) as pool:
        with pytest.raises(RunnerError, match=r"embedded simulator \(sim://\) is not available"):
            pool.client("sim://", Secret("not-a-demo-token"))


async def test_transport_exceptions_other_than_httpx_are_not_swallowed() -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        raise RuntimeError("bug in a transport")

    async with CoalesceClient(
        "sim://", Secret("T"), transport=httpx.MockTransport(broken), environ={}
    ) as client:
        with pytest.raises(RuntimeError):
            await client.fire(StartRunRequest("1"))


async def test_a_pool_sized_for_many_calls_keeps_that_many_connections() -> None:
    url = "https://app.coalescesoftware.io"
    async with ClientPool(environ={}, max_connections=50) as pool:
        client = pool.client(url, Secret("TOKEN-X"))
        spread = client._http._transport_for_url(httpx.URL(url))
        assert isinstance(spread, SpreadTransport)
        pools = [t._pool for t in spread.transports]  # type: ignore[attr-defined]
        assert sum(p._max_connections for p in pools) == 50
        assert all(p._max_keepalive_connections == p._max_connections for p in pools)


async def test_a_cookie_set_for_one_token_never_rides_along_with_another() -> None:
    login = answer(200, STATUS, headers={"set-cookie": "session=ALICE; Path=/"})
    server = FakeCoalesce([login, answer(200, STATUS), answer(200, STATUS)])
    async with make_pool(server) as pool:
        alice = pool.client("https://app.coalescesoftware.io", Secret("TOKEN-ALICE"))
        bob = pool.client("https://app.coalescesoftware.io", Secret("TOKEN-BOB"))
        await alice.run_status(1)
        await bob.run_status(2)
        await alice.run_status(3)
    assert [r.headers.get("cookie") for r in server.reached] == [None, None, None]
