"""The error a command raises for a mistake its user can fix (a module of its own: `python -m reframe_cli.cli`
runs cli.py as __main__, and a class defined there would be a different class from the one others import)."""

from __future__ import annotations

# Exit status of a command that could not run: a mistake the message explains (1 is a command's own "no").
CANNOT_RUN = 2


class UserError(Exception):
    """A mistake the user can fix, e.g. a wrong argument: printed as one line, without a traceback."""
