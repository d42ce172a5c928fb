"""Secrets are masked wherever wschan prints them (issue 10): click's usage errors, --debug
tracebacks, -v and -i, by name for headers and query parameters; --mask adds names,
--show-secrets shows everything. And -i prints a rejected upgrade's response.

The real executable against servers on 127.0.0.1.
"""

from __future__ import annotations

import pytest

from wschan_cli.server import Behaviour

from .send_helpers import HttpAnswer, LoopThread, wschan
from .servers import ThreadedServer

SECRETS = [f"SECRET{n}" for n in range(1, 8)]


def secret_args(url: str) -> list[str]:
    """A URL and headers carrying SECRET1..SECRET7 where people put secrets, plus data that is
    not secret (page=2, X-Trace: visible)."""
    return [
        f"{url}?access_token=SECRET1&page=2&sig=SECRET2",
        "-H",
        "X-Api-Key: SECRET3",
        "-H",
        "X-Auth-Token: SECRET4",
        "-H",
        "Client-Secret: SECRET5",
        "-H",
        "Cookie: session=SECRET6",
        "-H",
        "X-Custom: SECRET7",
        "-H",
        "X-Trace: visible",
        "--mask",
        "x-custom",
    ]


def test_a_usage_error_masks_the_url_password() -> None:
    result = wschan("send", "ws://user:PW123@host:99999/", "x")
    err = result.stderr.decode()
    assert result.returncode == 2, err
    assert "PW123" not in err
    assert "ws://user:****@host:99999/" in err


def test_the_debug_traceback_of_a_rejected_upgrade_masks_password_and_token() -> None:
    with ThreadedServer(Behaviour(reject_status=403)) as server:
        host = server.url.removeprefix("ws://")
        url = f"ws://user:PW123@{host}?token=TOKEN1"
        result = wschan("send", url, "x", "--debug")
    err = result.stderr.decode()
    assert result.returncode == 4, err
    assert "Traceback" in err and "HandshakeRejected" in err
    assert "PW123" not in err and "TOKEN1" not in err, err
    assert "user:****@" in err and "token=****" in err


def test_verbose_masks_secret_headers_and_parameters_by_name() -> None:
    with ThreadedServer() as server:
        result = wschan("send", *secret_args(server.url), "hi", "-v")
    err = result.stderr.decode()
    assert result.returncode == 0, err
    for secret in SECRETS:
        assert secret not in err, (secret, err)
    assert "page=2" in err and "X-Trace: visible" in err
    assert "X-Api-Key: ****" in err and "X-Custom: ****" in err and "sig=****" in err


def test_show_secrets_shows_them() -> None:
    with ThreadedServer() as server:
        result = wschan("send", *secret_args(server.url), "hi", "-v", "--show-secrets")
    err = result.stderr.decode()
    assert result.returncode == 0, err
    for secret in SECRETS:
        assert secret in err, secret


@pytest.mark.parametrize("command", ["send", "connect"])
def test_include_prints_a_rejected_upgrade_with_secrets_masked(command: str) -> None:
    headers = ("Set-Cookie: id=SECRET8", "X-Reason: banned")
    with LoopThread() as loop:
        server = loop.call(HttpAnswer(403, headers).start())
        result = wschan(command, server.url, "-i")
    err = result.stderr.decode()
    assert result.returncode == 4, err
    assert "< HTTP/1.1 403 Forbidden" in err, err
    assert "< X-Reason: banned" in err and "< Set-Cookie: ****" in err, err
    assert "SECRET8" not in err


@pytest.mark.parametrize("command", ["send", "connect"])
def test_a_refusal_that_quotes_our_credentials_is_shown_with_them_masked(command: str) -> None:
    # The error line quotes the refusal's reason and body, which are the server's text; a
    # server that echoes what it refused ("invalid token X") printed our secret in clear.
    basic = "dXNlcjpQVzEyMw=="  # base64 of user:PW123, the Authorization the URL's userinfo makes
    body = f"bad: BEARER-SECRET9 / {basic} / PW123 / TOKEN1 / session=SECRET6 / SECRET3"
    with LoopThread() as loop:
        server = loop.call(HttpAnswer(401, reason="No TOKEN1", body=body).start())
        host = server.url.removeprefix("ws://")
        result = wschan(
            command,
            f"ws://user:PW123@{host}?token=TOKEN1",
            "-H",
            "Cookie: session=SECRET6",
            "-H",
            "X-Api-Key: SECRET3",
            "-H",
            "X-Bearer-Token: BEARER-SECRET9",
        )
    err = result.stderr.decode()
    assert result.returncode == 4, err
    for secret in ("BEARER-SECRET9", basic, "PW123", "TOKEN1", "SECRET6", "SECRET3"):
        assert secret not in err, (secret, err)
    assert "bad: **** / **** / **** / **** / **** / ****" in err, err
