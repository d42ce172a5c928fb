"""The ``wschan`` command group.

Commands are imported only when they run, so ``wschan --help`` and ``wschan --version`` stay fast
(websockets' asyncio modules and rich cost tens of milliseconds to import).
"""

from __future__ import annotations

import importlib
import os
import sys

import click

# name -> (module, attribute, one-line help shown in ``wschan --help``)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "connect": (
        "wschan_cli.commands.connect",
        "connect",
        "Interactive session with the channel's state in view (a line bridge off a terminal).",
    ),
    "send": (
        "wschan_cli.commands.send",
        "send",
        "Send messages, wait for the replies asked for, close cleanly.",
    ),
    "trace-shutdown": (
        "wschan_cli.commands.trace_shutdown",
        "trace_shutdown",
        "Run the deinit / handle_terminate race and show every transition.",
    ),
    "serve": (
        "wschan_cli.commands.serve",
        "serve",
        "Run the embedded WebSocket server (echo, or a program per connection with --exec).",
    ),
    "completion": (
        "wschan_cli.commands.completion",
        "completion",
        "Print the shell completion script (bash, zsh, fish).",
    ),
}


def terminal_columns() -> int:
    """``shutil.get_terminal_size().columns`` (COLUMNS, else the terminal's, else 80), without
    importing shutil, which loads bz2, lzma and zlib for its archives: ~2 ms of every --help."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        stdout = sys.__stdout__
        try:
            columns = os.get_terminal_size(stdout.fileno()).columns if stdout else 0
        except (AttributeError, ValueError, OSError):
            columns = 0
        columns = columns or 80
    return columns


class HelpContext(click.Context):
    """A click context whose help formatter gets the width click would compute itself, from
    ``terminal_columns`` (click's own way imports shutil)."""

    def make_formatter(self) -> click.HelpFormatter:
        width = self.terminal_width or click.formatting.FORCED_WIDTH
        if width is None:
            width = max(min(terminal_columns(), self.max_content_width or 80) - 2, 50)
        return self.formatter_class(width=width, max_width=self.max_content_width)


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    context_class = HelpContext

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attr, _ = COMMANDS[cmd_name]
        command: click.Command = getattr(importlib.import_module(module), attr)
        command.context_class = HelpContext
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help from the table above, so listing commands imports none of them.
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from wschan_cli.version import version_text

    click.echo(version_text())
    ctx.exit(0)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Print the versions of wschan, websockets and Python, then exit.",
)
def cli() -> None:
    """wschan: a WebSocket client whose channel you can watch.

    Exit status: 0 done, 1 other error, 2 usage error, 3 could not connect,
    4 handshake rejected, 5 closed abnormally, 6 invariant violation,
    124 timeout, 130 interrupted.
    """


def main() -> None:
    """Run the command line; click's errors are shown here, so that their secrets are masked
    (a malformed URL with a password in it) and a Ctrl-C before a command took over is 130."""
    # The exit rule and the masking are imported when an error needs them: --help does not.
    try:
        status = cli.main(prog_name="wschan", standalone_mode=False)
    except click.exceptions.Abort as exc:  # click's name for a KeyboardInterrupt (or EOF)
        from wschan_cli.exitcodes import status_for

        click.echo("wschan: interrupted", err=True)
        sys.exit(status_for(exc))
    except click.ClickException as exc:
        from wschan_cli.exitcodes import status_for
        from wschan_cli.secrets import mask_url

        exc.message = mask_url(exc.message)
        exc.show()
        sys.exit(status_for(exc))
    sys.exit(status if isinstance(status, int) else 0)
