"""Every option from the environment (``KYOUKAI_H2FAST_<OPTION>``) and from ``--env-file``:
the variables derived from the parser (every long option has one), flags, repeatable and
typed values, precedence (command line > environment > env file > defaults), the env file's
syntax, and bad values as one line naming the variable, exit 2. The parsing runs in process
(fast); one real server checks that the values reach it."""
from __future__ import annotations

import argparse
import time

import pytest

from kyoukai_h2fast.process import cli
from kyoukai_h2fast.process.env_options import (
    PREFIX,
    EnvError,
    option_variables,
    read_env_file,
)
from tests.helpers.serverproc import ServerProcess

pytestmark = pytest.mark.timeout(60)


def parse(argv=(), **variables):
    environ = {PREFIX + key: value for key, value in variables.items()}
    return cli.parse_args(list(argv), environ), environ


# ---- the variables come from the parser ------------------------------------------------------

def test_every_long_option_has_a_variable():
    parser = cli.build_parser()
    variables = option_variables(parser)
    by_dest = {action.dest: name for name, action in variables.items()}
    for action in parser._actions:
        if action.dest in ("help", "version") or not action.option_strings:
            continue
        first = next(o for o in action.option_strings if o.startswith("--"))
        assert by_dest[action.dest] == PREFIX + first[2:].replace("-", "_").upper()
    assert variables[PREFIX + "HTTP1"].dest == "http1"  # --http1/--no-http1: one variable
    assert PREFIX + "NO_HTTP1" not in variables


def test_an_option_added_to_the_parser_gets_its_variable():
    parser = cli.build_parser()
    parser.add_argument("--brand-new-option", type=int, default=1)
    args = parser.parse_args([])
    from kyoukai_h2fast.process.env_options import apply_environment
    apply_environment(parser, args, [], {PREFIX + "BRAND_NEW_OPTION": "7"})
    assert args.brand_new_option == 7


# ---- values ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("variable", "text", "dest", "expected"), [
    ("PORT", "9000", "port", 9000),
    ("HOST", "0.0.0.0", "host", "0.0.0.0"),
    ("WORKERS", "auto", "workers", 0),
    ("LOOP", "asyncio", "loop", "asyncio"),
    ("MAX_BODY_SIZE", "2M", "max_body_size", 2 * 1024 * 1024),
    ("IDLE_TIMEOUT", "2.5", "idle_timeout", 2.5),
    ("ACCESS_LOG", "1", "access_log", True),
    ("ACCESS_LOG", "yes", "access_log", True),
    ("ACCESS_LOG", "0", "access_log", False),
    ("ACCESS_LOG", "", "access_log", False),
    ("HTTP1", "false", "http1", False),
    ("HTTP1", "ON", "http1", True),
    ("FORWARDED_ALLOW_IPS", "10.0.0.1, 10.1.0.0/16", "forwarded_allow_ips",
     ("10.0.0.1", "10.1.0.0/16")),
    ("STATIC", "/a=x '/b c=my dir'", "static", [("/a", "x"), ("/b c", "my dir")]),
    ("RELOAD_DIR", "src lib", "reload_dir", ["src", "lib"]),
    ("ROOT_PATH", "/api/", "root_path", "/api"),
    ("FACTORY", "true", "factory", True),
    ("APP", "pkg.mod:app", "app", "pkg.mod:app"),
])
def test_a_variable_sets_its_option(variable, text, dest, expected):
    args, _ = parse(**{variable: text})
    assert getattr(args, dest) == expected


def test_variables_that_name_no_option_are_ignored():
    args, _ = parse(NO_EXTENSIONS="1", ENGINE="pure", SOMETHING_ELSE="x")
    assert args.port == 4444


# ---- precedence ------------------------------------------------------------------------------

@pytest.mark.parametrize("argv", [["--port", "8000"], ["--port=8000"], ["--po", "8000"]])
def test_the_command_line_wins_over_the_environment(argv):
    args, _ = parse(argv, PORT="9000", HOST="0.0.0.0")
    assert args.port == 8000
    assert args.host == "0.0.0.0"


def test_a_repeatable_option_on_the_command_line_replaces_the_environment_values():
    args, _ = parse(["--static", "/c=z"], STATIC="/a=x /b=y")
    assert args.static == [("/c", "z")]


def test_a_negative_flag_on_the_command_line_wins():
    args, _ = parse(["--no-http1"], HTTP1="1")
    assert args.http1 is False


def test_app_argument_wins_over_its_variable():
    args, _ = parse(["mine:app"], APP="theirs:app")
    assert args.app == "mine:app"


def test_environment_wins_over_the_env_file_which_wins_over_defaults(tmp_path):
    env_file = tmp_path / "prod.env"
    env_file.write_text(f"{PREFIX}PORT=7000\n{PREFIX}HOST=0.0.0.0\nDATABASE_URL=sqlite://x\n"
                        "ALREADY=from-file\n")
    args, environ = parse(["--env-file", str(env_file)], PORT="9000")
    environ_extra = {"ALREADY": "from-env"}
    assert (args.port, args.host) == (9000, "0.0.0.0")
    # every variable of the file reaches the environment (the app's settings), unless set
    assert environ["DATABASE_URL"] == "sqlite://x"
    args, environ = cli.parse_args(["--env-file", str(env_file)], environ_extra), environ_extra
    assert (args.port, environ["ALREADY"]) == (7000, "from-env")


def test_the_env_file_may_be_named_by_its_variable(tmp_path):
    env_file = tmp_path / "x.env"
    env_file.write_text(f"{PREFIX}PORT=7001\n")
    args, _ = parse(ENV_FILE=str(env_file))
    assert args.port == 7001


# ---- the env file's syntax -------------------------------------------------------------------

def test_env_file_syntax(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text(
        "# a comment\n"
        "\n"
        "PLAIN=value\n"
        "  SPACED = some value  \n"
        "export EXPORTED=1\n"
        "SINGLE='it is $raw \\n'\n"
        'DOUBLE="line\\nnext \\"quoted\\" \\\\"\n'
        "INLINE=value # a comment\n"
        "HASH='a # b'\n"
        "EMPTY=\n"
        "EQUALS=a=b=c\n")
    assert read_env_file(str(env_file)) == {
        "PLAIN": "value", "SPACED": "some value", "EXPORTED": "1",
        "SINGLE": "it is $raw \\n", "DOUBLE": 'line\nnext "quoted" \\', "INLINE": "value",
        "HASH": "a # b", "EMPTY": "", "EQUALS": "a=b=c"}


@pytest.mark.parametrize(("line", "why"), [
    ("no equals sign", "line 2: expected KEY=VALUE"),
    ("1ABC=x", "line 2: expected KEY=VALUE"),
    ("BAD-KEY=x", "line 2: expected KEY=VALUE"),
    ("OPEN='never closed", "line 2: no closing '"),
    ('AFTER="x" y', "line 2: text after the closing"),
])
def test_a_bad_env_file_line_is_named(tmp_path, line, why):
    env_file = tmp_path / "bad.env"
    env_file.write_text(f"OK=1\n{line}\n")
    with pytest.raises(EnvError, match=why):
        read_env_file(str(env_file))


# ---- bad values: one line naming the variable, exit 2 ----------------------------------------

@pytest.mark.parametrize(("variable", "text", "message"), [
    ("PORT", "abc", "KYOUKAI_H2FAST_PORT='abc': invalid int value: 'abc'"),
    ("LOOP", "trio", "KYOUKAI_H2FAST_LOOP='trio': invalid choice: 'trio'"),
    ("ACCESS_LOG", "maybe", "KYOUKAI_H2FAST_ACCESS_LOG='maybe': expected 1/true/yes/on"),
    ("WORKERS", "many", "KYOUKAI_H2FAST_WORKERS='many': not a number or 'auto'"),
    ("STATIC", "nope", "KYOUKAI_H2FAST_STATIC='nope': expected /PREFIX=DIR"),
    ("STATIC", "'/a=unclosed", "KYOUKAI_H2FAST_STATIC=\"'/a=unclosed\": cannot split"),
    ("PORT", "70000", "port must be 0..65535, got 70000 (from KYOUKAI_H2FAST_PORT)"),
    ("METRICS_PORT", "70000", "(from KYOUKAI_H2FAST_METRICS_PORT)"),
    ("ROOT_PATH", "/a/../b", "(from KYOUKAI_H2FAST_ROOT_PATH)"),
    ("ENV_FILE", "/no/such/file.env", "--env-file /no/such/file.env: No such file"),
])
def test_a_bad_variable_is_one_line_naming_it_exit_2(monkeypatch, capsys, variable, text,
                                                     message):
    monkeypatch.setenv(PREFIX + variable, text)
    assert cli.main([]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kyoukai-h2fast: error: ") and message in err, err
    assert err.count("\n") == 1, err


def test_the_port_error_is_not_blamed_on_the_metrics_port_variable(monkeypatch, capsys):
    monkeypatch.setenv(PREFIX + "METRICS_HOST", "127.0.0.1")
    assert cli.main(["--port", "70000"]) == 2
    assert "(from" not in capsys.readouterr().err


def test_help_names_the_environment():
    text = cli.build_parser().format_help()
    assert "KYOUKAI_H2FAST_<OPTION>" in text and "--env-file" in text
    assert isinstance(cli.build_parser(), argparse.ArgumentParser)


# ---- a real server ---------------------------------------------------------------------------

def test_a_server_takes_its_options_from_the_environment_and_the_env_file(tmp_path, impl):
    """The env file turns the access log on and mounts the app under /file; the environment
    mounts it under /env instead (it wins); the command line's --port 0 wins over PORT=1."""
    import httpx

    env_file = tmp_path / "server.env"
    env_file.write_text(f"{PREFIX}ACCESS_LOG=1\n{PREFIX}ROOT_PATH=/file\n")
    server = ServerProcess("tests.served_apps.basic:wsgi_app", impl,
                           args=["--env-file", str(env_file)],
                           env={PREFIX + "ROOT_PATH": "/env", PREFIX + "PORT": "1"})
    try:
        with httpx.Client(http1=False, http2=True, base_url=server.url) as client:
            ok = client.get("/env/")
            assert (ok.status_code, ok.text, ok.http_version) == (200, "Hello, world!",
                                                                  "HTTP/2")
            assert client.get("/file/").status_code == 404
        deadline = time.monotonic() + 10
        while '"GET /env/ HTTP/2" 200' not in server.log:
            assert time.monotonic() < deadline, server.log
            time.sleep(0.05)
    finally:
        server.stop()
