"""The parser of the ``xzaro`` command and ``main``: one line per error, exit statuses."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, NoReturn

from xzaro.cli import bench, convert, demo, info, read, show
from xzaro.cli.options import UsageError

DESCRIPTION = "Read, write and inspect Zarr V2 and V3 stores with xzaro."
EPILOG = "Run 'xzaro COMMAND --help' for the options of one command."
DEBUG_HELP = "show the full traceback of an error"


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line on stderr and exit status 2."""

    def error(self, message: str) -> NoReturn:
        """Print ``xzaro: error: MESSAGE`` and exit with status 2."""
        self.exit(2, f"xzaro: error: {message} (see '{self.prog} --help')\n")


class VersionAction(argparse.Action):
    """``--version``: print ``xzaro VERSION`` and exit; the version is looked up only then."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> NoReturn:
        print(f"xzaro {version()}")
        parser.exit(0)


def version() -> str:
    """The installed version of xzaro (its distribution metadata, else ``xzaro.__version__``)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("xzaro")
    except PackageNotFoundError:
        import xzaro

        return xzaro.__version__


REFS_HELP = "scan NetCDF4/HDF5 files into Kerchunk references (JSON or Parquet)"


def build_parser(*, refs: bool = True) -> argparse.ArgumentParser:
    """The parser of the ``xzaro`` command and its sub-commands.

    ``refs=False`` gives ``refs`` a placeholder without options: defining the real one imports
    the reference writer (numpy and more), which ``--help`` and the other commands do not need.
    """
    parser = Parser(prog="xzaro", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("--version", action=VersionAction, help="print the version and exit")
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    common = Parser(add_help=False)
    # SUPPRESS: a --debug before the command is not reset by the sub-command's default
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
    for command in (info, read, show, convert, bench, demo):
        command.add_command(sub, [common])

    if not refs:
        sub.add_parser("refs", parents=[common], add_help=False, help=REFS_HELP)
        return parser
    from xzaro.virtual.cli import add_refs_command

    p_refs = add_refs_command(sub)
    p_refs.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
    return parser


def parse(argv: list[str] | None) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    """The parser and the parsed arguments; the real ``refs`` parser is built only for
    ``xzaro refs``."""
    parser = build_parser(refs=False)
    args, extra = parser.parse_known_args(argv)
    if args.command == "refs":
        parser = build_parser()
        args = parser.parse_args(argv)
    elif extra:
        parser.parse_args(argv)  # reports the arguments it does not know, exit status 2
    return parser, args


def error_line(exc: BaseException) -> str:
    """The one line ``xzaro`` prints for an error: a ``ZaroError`` names its URL, key and field
    itself, a usage error or a missing optional package says what to do; anything else is
    prefixed with its type."""
    from xzaro.errors import ZaroError

    if isinstance(exc, (ZaroError, UsageError, ImportError)):
        text = str(exc)
    elif isinstance(exc, json.JSONDecodeError):
        text = f"not valid JSON: {exc}"
    else:
        text = f"{type(exc).__name__}: {exc} (run with --debug for the traceback)"
    return "xzaro: error: " + " ".join(text.split())


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``xzaro`` command; returns the exit status (0, 1 for a failure while
    running, 2 for a usage error)."""
    parser, args = parse(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        status: int = args.func(args)
        return status
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("xzaro: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if args.debug:
            raise
        print(error_line(e), file=sys.stderr)
        return 2 if isinstance(e, (json.JSONDecodeError, UsageError)) else 1
