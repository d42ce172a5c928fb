"""The usage rules of ``--exec CMD [ARGS]...``, the same for ``serve`` and ``connect``: CMD comes
with --exec and only with it, each command's options of the other mode are refused by name, and
CMD must be found before anything starts. Imports click only, so ``--help`` stays cheap."""

from __future__ import annotations

import shutil

import click
from click.core import ParameterSource

__all__ = ["check_exec_usage", "check_program_found"]


def check_exec_usage(
    ctx: click.Context,
    exec_: bool,
    argv: tuple[str, ...],
    *,
    not_with_exec: tuple[str, ...],
    exec_only: tuple[str, ...],
) -> None:
    """Refuse CMD without --exec, --exec without CMD, and options given for the other mode
    (``not_with_exec``, ``exec_only``: parameter names, reported in the command's order)."""
    if not exec_:
        if argv:
            raise click.UsageError(f"unexpected argument {argv[0]!r} (to run it: --exec CMD)")
        _refuse_given(ctx, exec_only, "needs --exec")
        return
    if not argv:
        raise click.UsageError("--exec needs a command: --exec CMD [ARGS]...")
    _refuse_given(ctx, not_with_exec, "cannot be used with --exec")


def check_program_found(argv: tuple[str, ...]) -> None:
    """Refuse a CMD that is not on PATH (or not an executable path) before anything starts."""
    if shutil.which(argv[0]) is None:
        raise click.UsageError(f"--exec: command not found: {argv[0]}")


def _refuse_given(ctx: click.Context, names: tuple[str, ...], problem: str) -> None:
    """Refuse the first of ``names`` given on the command line (defaults are no choice)."""
    for param in ctx.command.params:
        if param.name in names and ctx.get_parameter_source(param.name) is (
            ParameterSource.COMMANDLINE
        ):
            raise click.UsageError(f"{param.opts[0]} {problem}")
