"""``wschan connect URL --exec CMD [ARGS]...``: the options, and the hand-over to
:mod:`wschan_cli.sessions.program_bridge`. Imports click only, so ``connect --help`` stays
cheap."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from wschan_cli.commands.exec_usage import check_exec_usage, check_program_found
from wschan_cli.options import Seconds

if TYPE_CHECKING:
    from wschan_cli.sessions.link import LinkConfig

DEFAULT_EXEC_WAIT = 5.0
# connect's options that mean nothing when CMD, not stdout, gets the messages.
NOT_WITH_EXEC = ("reconnect", "wait", "timestamps", "pretty", "json")
EXEC_ONLY = ("exec_close_code", "exec_wait")


def _close_code(ctx: click.Context, param: click.Parameter, value: int) -> int:
    from wschan_cli.render.closecodes import SENDABLE_CLOSE_CODES, close_frame_problem

    if close_frame_problem(value, ""):  # RFC 6455 7.4: 1004-1006 and 1015 are never sent
        raise click.BadParameter(
            f"{value} cannot be sent in a Close frame (use {SENDABLE_CLOSE_CODES})"
        )
    return value


def exec_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--exec``, its two settings and the trailing ``CMD [ARGS]...``."""
    for decorator in reversed(
        [
            click.option(
                "--exec",
                "exec_",
                is_flag=True,
                help="Run CMD [ARGS]... (no shell) and bridge it to the connection: each "
                "message received is a line on its stdin, each line of its stdout is sent; "
                "wschan exits with CMD's status when it is not 0. Put -- before CMD if its "
                "arguments start with a dash.",
            ),
            click.option(
                "--exec-close-code",
                type=click.IntRange(1000, 4999),
                default=1000,
                show_default=True,
                metavar="CODE",
                callback=_close_code,
                help="With --exec: the close code sent when CMD exits (1000-1003, 1007-1014 "
                "or 3000-4999).",
            ),
            click.option(
                "--exec-wait",
                type=Seconds(min=0),
                default=DEFAULT_EXEC_WAIT,
                show_default=True,
                metavar="SECONDS",
                help="With --exec: when the connection ends, how long CMD may take to exit "
                "after its input ended; then SIGTERM, and SIGKILL 2s later.",
            ),
            click.argument("command", nargs=-1, metavar="[--exec [--] CMD [ARGS]...]"),
        ]
    ):
        command = decorator(command)
    return command


def run_exec_if_asked(ctx: click.Context, cfg: LinkConfig, options: dict[str, Any]) -> None:
    """With --exec, run the program bridge and exit; without, refuse its settings."""
    argv: tuple[str, ...] = options["command"]
    check_exec_usage(ctx, options["exec_"], argv, not_with_exec=NOT_WITH_EXEC, exec_only=EXEC_ONLY)
    if not options["exec_"]:
        return
    check_program_found(argv)
    from wschan_cli.sessions.program_bridge import run_program_bridge

    ctx.exit(
        run_program_bridge(
            cfg, argv, close_code=options["exec_close_code"], wait=options["exec_wait"]
        )
    )
