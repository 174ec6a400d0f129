"""The CLI's argument parser behaviour: every error on stderr as `error: …` with exit 2, the nearest command, option
or choice suggested, the usage shown when the command's shape is wrong (a missing or unknown argument), and the
help's examples and exit codes kept verbatim.
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from sizing.core.errors import ConfigError, did_you_mean

EXIT_BAD_INPUT = 2
# Errors about the shape of the command line, not a value: the usage says what the command takes.
_SHAPE_ERRORS = (
    "the following arguments are required",
    "one of the arguments",
    "unrecognized arguments",
    "argument COMMAND:",
    "argument ACTION:",
)


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and epilogs as written (their examples and exit-code tables), options wrapped as usual."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=30)


class Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        usage = self.format_usage() if message.startswith(_SHAPE_ERRORS) else ""
        self.exit(EXIT_BAD_INPUT, f"{usage}error: {message}\n")

    def _check_value(self, action: argparse.Action, value: object) -> None:
        # argparse's own message, with the nearest choice: `plna` → plan, `-o jsno` → json.
        if action.choices is not None and value not in action.choices:
            choices = [str(c) for c in action.choices]
            raise argparse.ArgumentError(
                action,
                f"invalid choice: {value!r} (choose from {', '.join(choices)}){did_you_mean(str(value), choices)}",
            )

    def parse_args(self, args=None, namespace=None):  # type: ignore[override]
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            # The parser of the (sub)command the extras were given to: its usage, its nearest option.
            parser = self._innermost(parsed)
            options = [o for a in parser._actions for o in a.option_strings]
            shown = [f"{extra}{did_you_mean(extra, options)}" if extra.startswith("-") else extra for extra in extras]
            parser.error(f"unrecognized arguments: {' '.join(shown)}")
        return parsed

    def _innermost(self, parsed: argparse.Namespace) -> Parser:
        parser: Parser = self
        for dest in ("command", "action"):
            chooser = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
            name = getattr(parsed, dest, None)
            if chooser is None or name is None or name not in chooser.choices:
                break
            parser = chooser.choices[name]
        return parser


def bare_usage(parser: argparse.ArgumentParser) -> int:
    """`python -m sizing` alone: the help on stderr, exit 2 (nothing was asked)."""
    sys.stderr.write(parser.format_help())
    return EXIT_BAD_INPUT


def check_history_source(args: argparse.Namespace) -> None:
    """`--since` and `--save` go with `--prometheus` only (`fit`, `rightsize`, `recommend --rightsized`)."""
    if args.since is not None and not args.prometheus:
        raise ConfigError(
            "--since", "goes with --prometheus only: an export (--from) holds the range it was saved with"
        )
    if args.save and not args.prometheus:
        raise ConfigError("--save", "needs --prometheus (an export is written from the data read there)")
