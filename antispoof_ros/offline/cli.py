"""What every command-line tool shares: exit statuses, a one-line argument parser, ``fail``.

Tools report a problem as one line ``<program>: error: <reason>`` on stderr and exit with
EXIT_BAD_INPUT (2) for unusable arguments or input, EXIT_FAILED (1) when the work failed.
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


class OneLineArgumentParser(argparse.ArgumentParser):
    """Argument errors as a single line (no usage dump), exit status 2."""

    def error(self, message: str) -> NoReturn:  # noqa: D102
        self.exit(EXIT_BAD_INPUT, f'{self.prog}: error: {message}\n')


def positive_number(text: str) -> float:
    """Argparse type: a number above zero."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"'{text}' is not a positive number")
    return value


def fail(program: str, reason: object, status: int = EXIT_BAD_INPUT) -> int:
    """Print one error line for ``program``; return ``status`` (default: bad input)."""
    print(f'{program}: error: {reason}', file=sys.stderr, flush=True)
    return status
