"""The shared bearer token: format, constant-time check, loopback addresses.

Pure: no I/O. The token travels as ``Authorization: Bearer <token>`` (RFC 6750)
in the WebSocket handshake, in every gRPC call's metadata and in every HTTP
request; the receiving side compares it with :func:`hmac.compare_digest`.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
from typing import Final

#: The header (HTTP, WebSocket handshake) and gRPC metadata key (lower case, as
#: gRPC requires) that carries the token.
AUTHORIZATION: Final = "authorization"
#: Shortest token accepted: 16 characters of a random token are ~96 bits.
MIN_LENGTH: Final = 16
MAX_LENGTH: Final = 4096
#: RFC 6750 ``b64token``: what may follow ``Bearer `` in a header unquoted.
_B64TOKEN: Final = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


def bearer(token: str) -> str:
    """The ``Authorization`` value that carries ``token``."""
    return f"Bearer {token}"


def check_token(token: str) -> str | None:
    """Why ``token`` is unusable (a settings check), or None.

    It must be header-safe (RFC 6750 b64token characters) and at least
    :data:`MIN_LENGTH` characters, e.g. ``python -c "import secrets;
    print(secrets.token_urlsafe(32))"``.
    """
    if len(token) < MIN_LENGTH:
        return f"must be at least {MIN_LENGTH} characters (got {len(token)})"
    if len(token) > MAX_LENGTH:
        return f"must be at most {MAX_LENGTH} characters (got {len(token)})"
    if not _B64TOKEN.fullmatch(token):
        return "may only contain letters, digits and - . _ ~ + / (then = padding)"
    return None


def authorized(header: str | bytes | None, token: str) -> bool:
    """True when ``header`` is ``Bearer <token>``; the token compared in constant time.

    The scheme is case-insensitive (RFC 7235 2.1). ``hmac.compare_digest`` runs in
    time independent of where the values differ, so a client cannot find the
    token byte by byte from response times (their lengths may still show).
    """
    if header is None:
        return False
    raw = header if isinstance(header, bytes) else header.encode("utf-8", "replace")
    scheme, _, value = raw.strip().partition(b" ")
    if scheme.lower() != b"bearer":
        return False
    return hmac.compare_digest(value.strip(), token.encode())


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1).

    Anything else, including the wildcard ``0.0.0.0`` / ``::`` (every interface)
    and names, counts as reachable from the network.
    """
    name = host.strip().strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
