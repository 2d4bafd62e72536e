"""The bearer token's pure parts: format check, constant-time header check, loopback."""

from __future__ import annotations

import pytest

from imgbench.security.token import authorized, bearer, check_token, is_loopback

TOKEN = "s3cret-token_0123456789"


@pytest.mark.parametrize(
    "header",
    [f"Bearer {TOKEN}", f"bearer {TOKEN}", f"BEARER {TOKEN}", f"  Bearer {TOKEN}  ",
     f"Bearer {TOKEN}".encode(), bearer(TOKEN)],
)  # fmt: skip
def test_the_right_token_is_authorized(header: str | bytes) -> None:
    assert authorized(header, TOKEN)


@pytest.mark.parametrize(
    "header",
    [None, "", TOKEN, f"Basic {TOKEN}", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}",
     "Bearer ", f"Token {TOKEN}", f"Bearer{TOKEN}", "Bearer s3cret-token_012345678\u00e9"],
)  # fmt: skip
def test_anything_else_is_not(header: str | None) -> None:
    assert not authorized(header, TOKEN)


@pytest.mark.parametrize(
    ("token", "problem"),
    [("short", "at least 16"), ("x" * 5000, "at most"), ("has space in it 123", "may only"),
     ("quote\"-0123456789abc", "may only"), ("newline\n0123456789abc", "may only")],
)  # fmt: skip
def test_unusable_tokens_are_refused_with_the_reason(token: str, problem: str) -> None:
    reason = check_token(token)
    assert reason is not None and problem in reason


@pytest.mark.parametrize("token", [TOKEN, "A" * 16, "abc+/~._-0123456789==", "x" * 4096])
def test_header_safe_tokens_are_accepted(token: str) -> None:
    assert check_token(token) is None


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("[::1]", True),
     ("localhost", True), ("LOCALHOST", True), ("api.localhost", True), ("0.0.0.0", False),
     ("::", False), ("", False), ("198.18.0.1", False), ("receiver", False),
     ("example.com", False)],
)  # fmt: skip
def test_what_counts_as_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_length_limits_are_inclusive_and_named() -> None:
    assert check_token("A" * 16) is None and check_token("A" * 4096) is None
    assert check_token("A" * 15) == "must be at least 16 characters (got 15)"
    assert check_token("A" * 4097) == "must be at most 4096 characters (got 4097)"
    assert check_token("A" * 16 + " ") == (
        "may only contain letters, digits and - . _ ~ + / (then = padding)"
    )


def test_spaces_between_scheme_and_token_are_ignored() -> None:
    assert authorized(f"Bearer   {TOKEN}", TOKEN)
    assert authorized(f"Bearer {TOKEN}\t".encode(), TOKEN)


def test_an_unencodable_header_is_refused_not_raised() -> None:
    # A lone surrogate cannot be UTF-8 encoded: replaced, then compared (and refused).
    assert not authorized("Bearer s3cret-token_\udc80123456789", TOKEN)


def test_loopback_ignores_surrounding_spaces() -> None:
    assert is_loopback(" 127.0.0.1 ") and is_loopback(" [::1] ")
    assert not is_loopback("localhost.example") and not is_loopback("XLOCALHOST")
