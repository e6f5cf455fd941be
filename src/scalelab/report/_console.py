"""Where rich tables go: the terminal at its width, or 200 columns into a file or a pipe."""

from __future__ import annotations


def _console():
    import sys

    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=200)


def print_rich(renderable) -> None:
    """Print a rich table to stdout: at the terminal's width (columns wrap to fit), or 200
    columns wide into a file or a pipe."""
    _console().print(renderable)
