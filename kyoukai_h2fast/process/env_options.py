"""Options from the environment (``KYOUKAI_H2FAST_<OPTION>``) and from an env file.

Every long option of the command line's parser has a variable: ``--port`` is
``KYOUKAI_H2FAST_PORT``, ``--forwarded-allow-ips`` is ``KYOUKAI_H2FAST_FORWARDED_ALLOW_IPS``
(upper case, ``-`` as ``_``), and the APP argument is ``KYOUKAI_H2FAST_APP``. The names are
derived from the parser itself (:func:`option_variables`), so an option added to
:mod:`kyoukai_h2fast.process.cli` has its variable without more code here. Values:

* flags (``--access-log``, ``--http1``/``--no-http1``): ``1``/``true``/``yes``/``on`` or
  ``0``/``false``/``no``/``off`` (any case; empty: not set);
* repeatable options (``--static``, ``--reload-dir``): the values separated by spaces, with
  shell quoting for a value that has spaces of its own (``'/s=/srv/my files' /m=/srv/m``);
* any other option: its value as it is written after the option.

Precedence: the command line, then the environment, then the env file (``--env-file PATH``,
or ``KYOUKAI_H2FAST_ENV_FILE``), then the defaults. The env file is read as uvicorn and
docker do: ``KEY=VALUE`` lines (an ``export`` prefix allowed), ``#`` comments, blank lines,
values in single quotes (as they are) or double quotes (``\\n``, ``\\"`` and ``\\\\``
escapes); every variable of it that the environment does not have already is put in the
environment, so the app reads its own settings (``DATABASE_URL``...) from the same file. A
bad value is a one-line error naming the variable (:class:`EnvError`; the command line makes
it exit 2). Variables that name no option (``KYOUKAI_H2FAST_NO_EXTENSIONS``...) are ignored.
"""
from __future__ import annotations

import argparse
import os
import re
import shlex
from collections.abc import Iterator, MutableMapping, Sequence

__all__ = ["PREFIX", "EnvError", "option_variables", "read_env_file", "load_env_file",
           "apply_environment", "env_file_path", "merge_environment", "name_source"]

PREFIX = "KYOUKAI_H2FAST_"
#: The variable of the APP argument.
APP_VARIABLE = PREFIX + "APP"
#: Options that make no sense from the environment.
_SKIPPED = {"help", "version"}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class EnvError(Exception):
    """A bad variable or env file line: the message is one line naming it."""


def _variable(option: str) -> str:
    return PREFIX + option.lstrip("-").replace("-", "_").upper()


def option_variables(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """``{variable name: action}`` for every long option of ``parser`` (the negative twin of
    a ``--x``/``--no-x`` pair has none: ``KYOUKAI_H2FAST_X=0`` says it)."""
    found: dict[str, argparse.Action] = {}
    for action in parser._actions:  # (argparse has no public list of its actions)
        if action.dest in _SKIPPED or not action.option_strings:
            continue
        longs = [o for o in action.option_strings if o.startswith("--")]
        if isinstance(action, argparse.BooleanOptionalAction):
            longs = [o for o in longs if not o.startswith("--no-")]
        if longs:
            found[_variable(longs[0])] = action
    return found


def _flag(name: str, text: str) -> bool:
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise EnvError(f"{name}={text!r}: expected 1/true/yes/on or 0/false/no/off")


def _convert(parser: argparse.ArgumentParser, action: argparse.Action, text: str) -> object:
    """One value as the option's type makes it (its choices checked)."""
    convert = parser._registry_get("type", action.type, action.type)  # (as argparse does)
    if not callable(convert):
        raise EnvError(f"option {action.dest}: unknown type {action.type!r}")
    try:
        value = convert(text)
    except argparse.ArgumentTypeError as e:
        raise EnvError(str(e)) from None
    except (TypeError, ValueError):
        kind = getattr(action.type, "__name__", "value")
        raise EnvError(f"invalid {kind} value: {text!r}") from None
    if action.choices is not None and value not in action.choices:
        choices = ", ".join(map(repr, action.choices))
        raise EnvError(f"invalid choice: {value!r} (choose from {choices})")
    return value


def _value(parser: argparse.ArgumentParser, name: str, action: argparse.Action,
           text: str) -> object:
    """What ``action`` would store for the variable ``name`` = ``text`` on its own."""
    if action.nargs == 0:  # flags: store_true/false/const, --x/--no-x
        on = _flag(name, text)
        if isinstance(action, argparse.BooleanOptionalAction):
            return on
        if isinstance(action, argparse._CountAction):
            return int(on)
        return action.const if on else action.default
    try:
        if isinstance(action, argparse._AppendAction) or action.nargs in ("*", "+"):
            try:
                parts = shlex.split(text)
            except ValueError as e:
                raise EnvError(f"cannot split the values: {e}") from None
            return [_convert(parser, action, part) for part in parts]
        if isinstance(action.nargs, int) and action.nargs > 1:
            parts = text.split()
            if len(parts) != action.nargs:
                raise EnvError(f"expected {action.nargs} values, got {len(parts)}")
            return [_convert(parser, action, part) for part in parts]
        return _convert(parser, action, text)
    except EnvError as e:
        raise EnvError(f"{name}={text!r}: {e}") from None


def apply_environment(parser: argparse.ArgumentParser, args: argparse.Namespace,
                      argv: Sequence[str], environ: MutableMapping[str, str]) -> None:
    """Fill in ``args`` (parsed from ``argv``) from ``environ`` for every option the command
    line did not give; raises :class:`EnvError`."""
    given = set(_given_dests(parser, argv))
    sources: dict[str, str] = {}
    for name, action in option_variables(parser).items():
        text = environ.get(name)
        if text is None or action.dest in given:
            continue
        if text == "" and action.nargs == 0:
            continue  # (an empty flag variable: not set)
        setattr(args, action.dest, _value(parser, name, action, text))
        sources[action.dest] = name
    if getattr(args, "app", None) is None and environ.get(APP_VARIABLE):
        args.app = environ[APP_VARIABLE]
    #: ``{dest: variable}`` of the options the environment set (see :func:`name_source`).
    args.env_sources = sources


def name_source(message: str, args: argparse.Namespace) -> str:
    """A configuration error ``message`` with the variable that set the option it names, if
    the environment set it: ``port must be 0..65535, got 70000 (from KYOUKAI_H2FAST_PORT)``."""
    for dest, name in getattr(args, "env_sources", {}).items():
        option = re.escape(dest.replace("_", "-"))
        if re.search(rf"(?:^|[^\w-]|(?<![\w-])--){option}(?![\w-])", message):
            return f"{message} (from {name})"
    return message


def _given_dests(parser: argparse.ArgumentParser, argv: Sequence[str]) -> Iterator[str]:
    """The destinations of the options that ``argv`` names (``--opt``, ``--opt=value``,
    unambiguous abbreviations, short forms)."""
    strings = parser._option_string_actions
    for token in argv:
        if token == "--":
            return
        if not token.startswith("-") or token == "-":
            continue
        option = token.partition("=")[0]
        action = strings.get(option)
        if action is None and option.startswith("--"):
            matches = {a for o, a in strings.items() if o.startswith(option)}
            action = matches.pop() if len(matches) == 1 else None
        if action is None and not option.startswith("--") and len(option) > 2:
            action = strings.get(option[:2])  # -p9000
        if action is not None:
            yield action.dest


def read_env_file(path: str) -> dict[str, str]:
    """The variables of a dotenv-style file (see the module docstring); raises
    :class:`EnvError` for a file that cannot be read or a line that is not ``KEY=VALUE``."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        reason = getattr(e, "strerror", None) or str(e)
        raise EnvError(f"--env-file {path}: {reason}") from None
    values: dict[str, str] = {}
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key.replace("_", "a").isalnum() or key[0].isdigit():
            raise EnvError(f"--env-file {path}, line {number}: expected KEY=VALUE, "
                           f"got {raw.strip()!r}")
        try:
            values[key] = _unquote(value.strip())
        except ValueError as e:
            raise EnvError(f"--env-file {path}, line {number}: {e}") from None
    return values


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}


def _unquote(value: str) -> str:
    """``'x'`` -> ``x`` (as it is); ``"x"`` -> ``x`` (escapes); ``x # note`` -> ``x``."""
    if value[:1] in ("'", '"'):
        quote = value[0]
        end = value.find(quote, 1)
        while quote == '"' and end > 0 and _escaped(value, end):
            end = value.find(quote, end + 1)
        if end < 0:
            raise ValueError(f"no closing {quote} in {value!r}")
        rest = value[end + 1:].strip()
        if rest and not rest.startswith("#"):
            raise ValueError(f"text after the closing {quote}: {rest!r}")
        inner = value[1:end]
        if quote == "'":
            return inner
        out, i = [], 0
        while i < len(inner):
            char = inner[i]
            if char == "\\" and i + 1 < len(inner) and inner[i + 1] in _ESCAPES:
                out.append(_ESCAPES[inner[i + 1]])
                i += 2
            else:
                out.append(char)
                i += 1
        return "".join(out)
    comment = value.find(" #")
    return (value[:comment] if comment >= 0 else value).rstrip()


def _escaped(text: str, index: int) -> bool:
    """Whether ``text[index]`` follows an odd number of backslashes."""
    count = 0
    while index - count - 1 >= 0 and text[index - count - 1] == "\\":
        count += 1
    return count % 2 == 1


def load_env_file(path: str, environ: MutableMapping[str, str]) -> None:
    """Put the variables of the env file at ``path`` into ``environ``, except those it has
    already (the environment wins over the file)."""
    for key, value in read_env_file(path).items():
        environ.setdefault(key, value)


def env_file_path(args: argparse.Namespace, environ: MutableMapping[str, str]) -> str | None:
    """``--env-file``, else ``KYOUKAI_H2FAST_ENV_FILE``, else None."""
    return getattr(args, "env_file", None) or environ.get(PREFIX + "ENV_FILE") or None


def merge_environment(parser: argparse.ArgumentParser, args: argparse.Namespace,
                      argv: Sequence[str], environ: MutableMapping[str, str]) -> None:
    """The env file (if any) into ``environ``, then ``environ`` into ``args``."""
    path = env_file_path(args, environ)
    if path:
        load_env_file(os.fspath(path), environ)
    apply_environment(parser, args, argv, environ)
