"""``wschan completion SHELL``: print the shell completion script.

The script is click's own (:mod:`click.shell_completion`): it calls ``wschan`` back with
``_WSCHAN_COMPLETE`` set, and click answers from the command definitions, so commands, options,
option choices and file paths complete from the same source as ``--help``.
"""

from __future__ import annotations

import click

SHELLS = ("bash", "zsh", "fish")

EPILOG = """\b
Install (then start a new shell):
  bash  wschan completion bash > ~/.local/share/bash-completion/completions/wschan
  zsh   wschan completion zsh > ~/.zfunc/_wschan
        (with fpath+=~/.zfunc before compinit in ~/.zshrc)
  fish  wschan completion fish > ~/.config/fish/completions/wschan.fish
Or for the current shell only: eval "$(wschan completion bash)" (zsh alike),
wschan completion fish | source.
"""


def complete_var(prog_name: str) -> str:
    """The environment variable click's completion scripts set when they call ``prog_name``."""
    return f"_{prog_name}_COMPLETE".replace("-", "_").upper()


@click.command(
    "completion",
    epilog=EPILOG,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> None:
    """Print the completion script for SHELL (bash, zsh or fish) on stdout.

    It completes commands, options, option choices and file paths.
    """
    from click.shell_completion import get_completion_class

    root = ctx.find_root()
    prog_name = root.info_name or "wschan"
    completion_class = get_completion_class(shell)
    assert completion_class is not None  # SHELLS are all built into click
    script = completion_class(root.command, {}, prog_name, complete_var(prog_name)).source()
    click.echo(script)
