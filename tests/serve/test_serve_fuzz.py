"""Property-based fuzz of every endpoint: whatever the body, headers, ids or frames, the server answers
a 4xx (or 2xx) with a well-formed body, never a 5xx, and keeps serving."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from anyio.from_thread import start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serve_helpers import AUTH_A, AUTH_B, TOKEN_A, running
from websockets.sync.client import ClientConnection, connect

from dreamgym_sdk.serve.protocol import ERROR_STATUS

FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
tasks = st.one_of(
    json_values,
    st.text(max_size=30),
    st.fixed_dictionaries(
        {"instruction": json_values},
        optional={
            "id": json_values,
            "environment": json_values,
            "initial_state": json_values,
            "metadata": json_values,
        },
    ),
)
reset_bodies = st.fixed_dictionaries(
    {},
    optional={
        "task": tasks,
        "seed": json_values,
        "options": st.one_of(
            json_values, st.dictionaries(st.sampled_from(["initial_state", "x"]), json_values)
        ),
        "episode_id": json_values,
        "request_id": json_values,
        "unknown": json_values,
    },
)
step_bodies = st.fixed_dictionaries(
    {"action": st.one_of(st.text(max_size=30), json_values)},
    optional={"request_id": json_values, "metadata": json_values, "unknown": json_values},
)
ascii_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
header_text = ascii_text.map(str.strip)  # clients cannot send values with surrounding spaces
auth_headers = st.one_of(
    st.just(AUTH_A),
    st.just(AUTH_B),
    st.just({}),
    header_text.map(lambda t: {"Authorization": t}),
    header_text.map(lambda t: {"Authorization": f"Bearer {t}".strip()}),
    st.just({"Authorization": f"Bearer {TOKEN_A} extra"}),
)


class Live:
    """A server running in a background event loop, with a session for each token."""

    def __init__(self, url: str, ws_url: str) -> None:
        self.url = url
        self.ws_url = ws_url
        self.http = httpx.Client(base_url=url, timeout=30)
        self.session_a = self.new_session(AUTH_A)
        self.session_b = self.new_session(AUTH_B)

    def new_session(self, headers: dict[str, str]) -> str:
        sid = self.http.post("/sessions", headers=headers).json()["session_id"]
        self.http.post(f"/sessions/{sid}/reset", headers=headers, json={"task": "fuzz"})
        return sid


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    with (
        start_blocking_portal("asyncio") as portal,
        portal.wrap_async_context_manager(running(max_request_bytes=65_536, max_steps=5)) as server,
    ):
        state = Live(server.url, server.ws_url)
        yield state
        state.http.close()


def check(response: httpx.Response) -> None:
    assert response.status_code < 500, f"{response.request.method} {response.request.url}: {response.text}"
    if response.status_code >= 400:
        error = response.json()["error"]
        assert ERROR_STATUS[error["type"]] == response.status_code == error["status"]
        assert isinstance(error["message"], str) and error["code"] == error["type"].upper()
        assert TOKEN_A not in response.text


def session_ids(live: Live) -> st.SearchStrategy[str]:
    return st.one_of(
        st.just(live.session_a),
        st.just(live.session_b),
        st.text(alphabet="0123456789abcdef", min_size=32, max_size=32),
        st.text(min_size=1, max_size=40)
        .map(lambda s: quote(s, safe=""))
        .filter(lambda s: s not in (".", "..")),
    )


def encoded(body: Any) -> st.SearchStrategy[tuple[bytes, str | None]]:
    return st.one_of(
        st.just((json.dumps(body).encode(), "application/json")),
        st.tuples(st.binary(max_size=64), st.sampled_from(["application/json", "text/plain", None])),
    )


@FUZZ
@given(data=st.data())
def test_fuzz_http_reset_and_step(live: Live, data: st.DataObject) -> None:
    kind = data.draw(st.sampled_from(["reset", "step"]))
    body = data.draw(reset_bodies if kind == "reset" else step_bodies)
    content, content_type = data.draw(encoded(body))
    headers = dict(data.draw(auth_headers))
    if content_type is not None:
        headers["Content-Type"] = content_type
    sid = data.draw(session_ids(live))
    check(live.http.post(f"/sessions/{sid}/{kind}", content=content, headers=headers))


@FUZZ
@given(data=st.data())
def test_fuzz_http_other_endpoints(live: Live, data: st.DataObject) -> None:
    headers = data.draw(auth_headers)
    sid = data.draw(session_ids(live))
    method, path = data.draw(
        st.sampled_from(
            [
                ("POST", "/sessions"),
                ("GET", f"/sessions/{sid}/state"),
                ("DELETE", f"/sessions/{sid}"),
                ("GET", "/metrics"),
                ("GET", "/health"),
                ("GET", "/schema"),
                ("GET", "/openapi.json"),
                ("PATCH", f"/sessions/{sid}/step"),
                ("GET", f"/{sid}"),
            ]
        )
    )
    if method == "DELETE" and sid in (live.session_a, live.session_b):
        return  # keep the shared sessions alive for the other examples
    params = {"format": data.draw(ascii_text)} if path == "/metrics" else None
    body = data.draw(st.one_of(st.none(), json_values))
    check(live.http.request(method, path, headers=headers, params=params, json=body))


frames = st.one_of(
    st.fixed_dictionaries({"type": st.just("reset"), "data": reset_bodies}),
    st.fixed_dictionaries({"type": st.just("step"), "data": step_bodies}),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["state", "close", "nope", ""])}, optional={"data": json_values}
    ),
    json_values,
)


@FUZZ
@given(data=st.data())
def test_fuzz_websocket_frames(live: Live, data: st.DataObject) -> None:
    frame = data.draw(frames)
    raw = data.draw(st.one_of(st.just(json.dumps(frame)), st.text(max_size=40), st.binary(max_size=40)))
    with connect(live.ws_url, additional_headers=AUTH_A, open_timeout=10, close_timeout=2) as ws:
        answer = exchange(ws, raw)
        if answer is None:  # a "close" frame closes the session and the socket
            assert isinstance(frame, dict) and frame.get("type") == "close"  # pyright: ignore[reportUnknownMemberType]
            return
        assert answer["type"] in ("observation", "state", "error")
        if answer["type"] == "error":
            error = answer["data"]
            assert ERROR_STATUS[error["type"]] < 500, error
        # the socket still works after anything
        follow = exchange(ws, json.dumps({"type": "state"}))
        assert follow is not None and follow["type"] in ("state", "error")


def exchange(ws: ClientConnection, raw: str | bytes) -> dict[str, Any] | None:
    from websockets.exceptions import ConnectionClosedOK

    ws.send(raw)
    try:
        return json.loads(ws.recv(timeout=10))
    except ConnectionClosedOK:
        return None


def test_server_still_healthy_after_the_fuzz(live: Live) -> None:
    response = live.http.get("/metrics", headers=AUTH_A)
    assert response.status_code == 200
    assert "internal_error" not in response.json()["errors"]
