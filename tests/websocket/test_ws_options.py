"""The WebSocket options: CLI flags map to ServerConfig fields, bad values are one-line errors
(exit 2), defaults are the README's limits table."""
from __future__ import annotations

import pytest

from kyoukai_h2fast.config import ServerConfig
from kyoukai_h2fast.errors import ConfigError
from kyoukai_h2fast.process.cli import _config_from, build_parser, main


def test_defaults():
    config = ServerConfig()
    assert (config.ws_http2, config.ws_max_message_size, config.ws_max_queue,
            config.ws_write_limit, config.ws_ping_interval, config.ws_ping_timeout,
            config.ws_per_message_deflate) == (True, 16 * 1024 * 1024, 32, 65536, 20.0, 20.0,
                                               True)


def test_flags_reach_the_config():
    args = build_parser().parse_args([
        "--ws-max-message-size", "1M", "--ws-max-queue", "4", "--ws-write-limit", "8k",
        "--ws-ping-interval", "5", "--ws-ping-timeout", "2.5", "--no-ws-per-message-deflate",
        "--no-ws-http2"])
    config = _config_from(args)
    assert (config.ws_max_message_size, config.ws_max_queue, config.ws_write_limit,
            config.ws_ping_interval, config.ws_ping_timeout, config.ws_per_message_deflate,
            config.ws_http2) == (1 << 20, 4, 8192, 5.0, 2.5, False, False)


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--ws-max-queue", "0", "ws-max-queue must be an integer in 1.."),
    ("--ws-max-message-size", "0", "ws-max-message-size must be an integer in 1.."),
    ("--ws-write-limit", "0", "ws-write-limit must be an integer in 1.."),
    ("--ws-ping-interval", "-1", "ws-ping-interval must be a number of seconds >= 0"),
    ("--ws-ping-timeout", "-0.5", "ws-ping-timeout must be a number of seconds >= 0"),
])
def test_bad_values_are_one_line_errors(capsys, flag, value, message):
    assert main([flag, value]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_config_checks_its_fields():
    with pytest.raises(ConfigError, match="ws-max-queue"):
        ServerConfig(ws_max_queue=-3).validate()


def test_environment_sets_them_too(monkeypatch, capsys):
    monkeypatch.setenv("KYOUKAI_H2FAST_WS_MAX_QUEUE", "0")
    assert main([]) == 2
    assert "(from KYOUKAI_H2FAST_WS_MAX_QUEUE)" in capsys.readouterr().err
