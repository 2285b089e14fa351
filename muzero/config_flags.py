"""The config's command line and its reference page, both generated from the fields of
`config.Config`: one flag per field (runtime options in a group of their own), and
docs/configuration.md (a test checks that the page is current).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import typing
from typing import Any

from muzero.config import Config


def _parse_bool(text: str) -> bool:
    """Command-line booleans: true/false, yes/no, 1/0."""
    lowered = text.strip().lower()
    if lowered in ("true", "yes", "1"):
        return True
    if lowered in ("false", "no", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _parse_json_object(text: str) -> dict:
    """Command-line JSON objects, e.g. --game-options '{"horizon": 10}'."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"expected a JSON object such as '{{\"key\": 1}}', "
                                         f"got {text!r} ({error})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


PARSERS = {dict: _parse_json_object, bool: _parse_bool}


def _flag(field: dataclasses.Field) -> str:
    return field.metadata["flag"] or "--" + field.name.replace("_", "-")


def add_config_arguments(parser: argparse.ArgumentParser, exclude: tuple[str, ...] = ()) -> None:
    """Add one optional flag per config field (but `exclude`); a flag left out keeps the default."""
    hints = typing.get_type_hints(Config)
    groups = {False: parser.add_argument_group("hyper-parameters (defaults come from the game; "
                                               "saved with the run)"),
              True: parser.add_argument_group("runtime options (this machine's; not saved)")}
    for field in dataclasses.fields(Config):
        if field.name in exclude:
            continue
        kind = hints[field.name]
        groups[field.metadata["runtime"]].add_argument(
            _flag(field), dest=field.name, type=PARSERS.get(kind, kind),
            default=argparse.SUPPRESS, metavar="JSON" if kind is dict else kind.__name__.upper(),
            help=field.metadata["help"].replace("%", "%%"))  # argparse %-formats help


def config_overrides(arguments: argparse.Namespace) -> dict[str, Any]:
    """The config fields the user set on the command line. `--game` is optional with `--resume
    DIR` (the checkpoint names its game), so a game left out is not an override."""
    names = {field.name for field in dataclasses.fields(Config)}
    return {name: value for name, value in vars(arguments).items()
            if name in names and not (name == "game" and value is None)}


def markdown_reference() -> str:
    """docs/configuration.md: every field with its flag, type, default and help, generated from
    this file so that the page cannot drift from the code (a test compares them)."""
    hints = typing.get_type_hints(Config)
    lines = ["# Configuration reference", "",
             "Generated from `muzero/config.py` by `muzero/config_flags.py` (regenerate: "
             "`python -c \"from muzero.config_flags import markdown_reference; "
             "print(markdown_reference(), end='')\" > "
             "docs/configuration.md`). Every field is also a command-line flag. The defaults "
             "below are the config's own; a game's `make_config()` sets its own values on top "
             "(see `games/`), and flags given on the command line override both. Runtime options "
             "are this machine's and are not saved with a run: a resumed run takes them from "
             "its command line.", "",
             "| flag | type | default | what |", "| --- | --- | --- | --- |"]
    for field in dataclasses.fields(Config):
        default = (field.default_factory() if field.default is dataclasses.MISSING
                   else field.default)
        text = json.dumps(default) if isinstance(default, (dict, bool)) or default is None \
            else repr(default)
        help_text = field.metadata["help"].replace("|", "\\|")
        if field.metadata["runtime"]:
            help_text = "runtime option: " + help_text
        lines.append(f"| `{_flag(field)}` | {hints[field.name].__name__} | `{text}` | "
                     f"{help_text} |")
    return "\n".join(lines) + "\n"
