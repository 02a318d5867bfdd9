"""What every ``lstmlens`` command shares: the typer app, the consoles and the error guard.

Command modules (``cli.py``, ``cli_*.py``) import from here, never from each other, so
``python -m lstmlens.cli`` has no import cycle.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from . import __version__

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Open up LSTM networks: every gate at every step, and why they decide.")
err = Console(stderr=True)
out = Console()


def _fail(message: str) -> None:
    # escape: messages name shapes like "[batch, time, 12]", which rich would take as markup
    one_line = " ".join(str(message).split())
    err.print(f"[bold red]error:[/] {escape(one_line)}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def _guard(fn):
    """Run a command body; expected errors become one line on stderr and exit code 1."""
    from .datasets import DataUnavailableError
    from .errors import LstmlensError
    try:
        return fn()
    except (LstmlensError, DataUnavailableError, OSError) as e:
        _fail(str(e))
    except KeyboardInterrupt:
        _fail("interrupted")
    except Exception as e:  # a bug: still one line, never a traceback
        _fail(f"unexpected {type(e).__name__}: {e} (this is a bug in lstmlens; please report it)")


def _version(value: bool) -> None:
    if value:
        out.print(f"lstmlens {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """lstmlens command line."""
