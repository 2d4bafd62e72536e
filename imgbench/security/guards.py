"""The gates that ask for the bearer token, one per transport, alike in effect.

Each gate lets a request through when it carries ``Authorization: Bearer
<token>`` (:func:`imgbench.security.token.authorized`, constant time), and
otherwise refuses it with the transport's own "unauthenticated" answer before
any application code sees it, then calls ``refused(transport)`` (the caller
counts and logs):

* WebSocket: the opening handshake is answered ``401 Unauthorized`` (with
  ``WWW-Authenticate: Bearer``); no connection is opened.
* gRPC: a ``grpc.aio`` server interceptor ends the call with
  ``UNAUTHENTICATED`` before the method runs (the refusing handler is a
  request-streaming one, so grpcio does not wait for a whole, possibly large,
  request message first, as it would for a unary handler).
* HTTP: :class:`imgbench.runtime.http.HttpServer` answers 401 on every route
  but the open ones (``/healthz``, ``/metrics``).

The token is sent once per WebSocket connection (in the handshake) and in every
gRPC call's metadata (HPACK sends a repeated header as an index of a byte or two).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from http import HTTPStatus
from typing import Any, Final

import grpc
from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from imgbench.observe.logs import get_logger
from imgbench.security.token import AUTHORIZATION, authorized, bearer, is_loopback

#: ``refused(transport)``: one refusal on "websocket", "grpc" or "http".
Refused = Callable[[str], None]
TRANSPORTS: Final = ("websocket", "grpc", "http")
#: Said to a refused client (no detail on whether a token was sent or wrong).
REFUSAL: Final = "missing or wrong bearer token (IMGBENCH_TOKEN)"
CHALLENGE: Final = 'Bearer realm="imgbench"'

ProcessRequest = Callable[[ServerConnection, Request], Response | None]
log = get_logger("imgbench.security")


def warn_clear_token(token: str, tls: bool, address: str, setting: str) -> None:
    """A token sent without TLS can be read by anyone on the path: warn when the
    address is reachable from the network (not loopback; ``0.0.0.0`` is not)."""
    if token and not tls and not is_loopback(address):
        log.warning(
            "bearer token without TLS on a network address: it travels in clear text"
            " (set IMGBENCH_TLS_CERT and IMGBENCH_TLS_KEY, README 'Security')",
            address=address,
            setting=setting,
        )


def metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    """gRPC call metadata carrying ``token`` (empty without one).

    Per-call metadata rather than call credentials: grpcio runs a metadata
    plugin on a new thread for every call, inside the timed window.
    """
    return ((AUTHORIZATION, bearer(token)),) if token else ()


def headers(token: str | None) -> dict[str, str]:
    """HTTP / WebSocket handshake headers carrying ``token`` (empty without one)."""
    return {"Authorization": bearer(token)} if token else {}


def websocket_check(token: str, refused: Refused) -> ProcessRequest:
    """A websockets ``process_request`` answering 401 unless the token is there."""

    def check(connection: ServerConnection, request: Request) -> Response | None:
        if authorized(request.headers.get("Authorization"), token):
            return None
        refused("websocket")
        response = connection.respond(HTTPStatus.UNAUTHORIZED, REFUSAL + "\n")
        response.headers["WWW-Authenticate"] = CHALLENGE
        return response

    return check


def chain(*checks: ProcessRequest | None) -> ProcessRequest:
    """``process_request`` running ``checks`` in order; the first refusal wins."""
    active = [c for c in checks if c is not None]

    def run(connection: ServerConnection, request: Request) -> Response | None:
        for check in active:
            response = check(connection, request)
            if response is not None:
                return response
        return None

    return run


async def _deny(_: AsyncIterator[Any], context: grpc.aio.ServicerContext[Any, Any]) -> Any:
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, REFUSAL)


#: Request-streaming: grpcio hands it the request iterator at once, without
#: reading a (possibly large) first message as it would for a unary handler.
_DENY: Final = grpc.stream_unary_rpc_method_handler(_deny)


class TokenInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Ends every call without the token with ``UNAUTHENTICATED``
    (the shape of grpc's examples/python/auth/async_customized_auth_server.py)."""

    def __init__(self, token: str, refused: Refused) -> None:
        self._token = token
        self._refused = refused

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        for key, value in handler_call_details.invocation_metadata or ():
            if key == AUTHORIZATION and authorized(value, self._token):
                return await continuation(handler_call_details)
        self._refused("grpc")
        return _DENY
