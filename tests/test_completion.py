"""``wschan completion SHELL``: each script is loaded in the real shell and asked to complete.

bash: the completion function is called the way bash's programmable completion calls it
(COMP_WORDS / COMP_CWORD set, COMPREPLY read back), and a file path is completed by pressing
Tab on a pseudo-terminal. zsh: Tab on a pseudo-terminal. fish: ``complete -C``, fish's own way
of asking for completions. Shells that are not installed are skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)

BIN = str(Path(sys.executable).parent)  # where the ``wschan`` console script is installed
ENV = {**os.environ, "PATH": BIN + os.pathsep + os.environ.get("PATH", ""), "TERM": "dumb"}
COMMANDS = ["completion", "connect", "send", "serve", "trace-shutdown"]
SCENARIOS = ["deinit-first", "terminate-first", "race", "all"]


def needs(shell: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(shutil.which(shell) is None, reason=f"{shell} is not installed")


def wschan_completion(shell: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "wschan_cli", "completion", shell],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return result.stdout


@pytest.fixture
def cert(tmp_path: Path) -> Path:
    path = tmp_path / "uniquely-named-cert.pem"
    path.write_text("not read: only its name is completed\n")
    return path


# -- bash --------------------------------------------------------------------------------------


def bash_complete(*words: str) -> list[str]:
    """COMPREPLY after the bash completion function ran on ``words`` (the last one is the word
    being completed, "" for a new word)."""
    quoted = " ".join("'" + w.replace("'", "'\\''") + "'" for w in words)
    script = (
        "source <(wschan completion bash)\n"
        f"COMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}\n"
        "_wschan_completion wschan\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    result = subprocess.run(
        ["bash", "--norc", "--noprofile", "-i", "-c", script],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=30,
        check=True,
    )
    return [line for line in result.stdout.splitlines() if line]


@needs("bash")
def test_bash_completes_commands() -> None:
    assert bash_complete("wschan", "") == COMMANDS
    assert bash_complete("wschan", "tr") == ["trace-shutdown"]


@needs("bash")
def test_bash_completes_options_of_a_command() -> None:
    assert bash_complete("wschan", "send", "--cac") == ["--cacert"]
    assert "--exec" in bash_complete("wschan", "serve", "--")


@needs("bash")
def test_bash_completes_option_choices_and_the_shell_argument() -> None:
    assert bash_complete("wschan", "trace-shutdown", "--scenario", "") == SCENARIOS
    assert bash_complete("wschan", "connect", "--color", "a") == ["auto", "always"]
    assert bash_complete("wschan", "completion", "") == ["bash", "zsh", "fish"]


def tab_complete(shell: list[str], setup: str, typed: str, expected: str) -> None:
    """Type ``typed`` then Tab at an interactive ``shell`` on a pseudo-terminal; the line must
    then show ``expected`` (text that only the completion can have put there)."""
    import pexpect

    child = pexpect.spawn(
        shell[0], shell[1:], env=ENV, encoding="utf-8", timeout=15, dimensions=(24, 300)
    )
    try:
        child.sendline("PS1='READY> '; PROMPT='READY> '")
        child.expect("READY> ")
        # The marker is split in the command so that its echo cannot match; it is printed only
        # if the setup registered wschan's completion (both shells complete file names by
        # default, so a file name alone proves nothing).
        child.sendline(setup + " && echo SET''UP-DONE")
        child.expect("SETUP-DONE")
        child.expect("READY> ")
        child.send(typed + "\t")
        child.expect_exact(expected)
    finally:
        child.close(force=True)


@needs("bash")
def test_bash_completes_a_file_path_on_tab(cert: Path) -> None:
    tab_complete(
        ["bash", "--norc", "--noprofile", "-i"],
        "source <(wschan completion bash) && complete -p wschan",
        f"wschan send ws://127.0.0.1:1/ --cacert {cert.parent}/uniquely-na",
        cert.name,
    )


# -- zsh ---------------------------------------------------------------------------------------

ZSH = ["zsh", "-f", "-i"]
ZSH_SETUP = (
    'autoload -Uz compinit && compinit -u -D && eval "$(wschan completion zsh)" '
    "&& (( $+_comps[wschan] ))"
)


@needs("zsh")
def test_zsh_completes_a_command_and_an_option_on_tab() -> None:
    tab_complete(ZSH, ZSH_SETUP, "wschan trace-sh", "trace-shutdown ")
    tab_complete(ZSH, ZSH_SETUP, "wschan trace-shutdown --scen", "--scenario ")


@needs("zsh")
def test_zsh_completes_a_file_path_on_tab(cert: Path) -> None:
    tab_complete(ZSH, ZSH_SETUP, f"wschan send --cacert {cert.parent}/uniquely-na", cert.name)


# -- fish --------------------------------------------------------------------------------------


def fish_complete(line: str) -> list[str]:
    """What fish offers for ``line`` (value only, without the description)."""
    script = f"wschan completion fish | source; complete -C {line!r}"
    result = subprocess.run(
        ["fish", "--no-config", "-c", script],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=30,
        check=True,
    )
    return [row.split("\t")[0] for row in result.stdout.splitlines()]


@needs("fish")
def test_fish_completes_commands_options_choices_and_paths(cert: Path) -> None:
    assert fish_complete("wschan tr") == ["trace-shutdown"]
    assert fish_complete("wschan send --cac") == ["--cacert"]
    assert sorted(fish_complete("wschan trace-shutdown --scenario ")) == sorted(SCENARIOS)
    assert fish_complete(f"wschan send --cacert {cert.parent}/uniquely-na") == [str(cert)]


def test_an_unknown_shell_is_a_usage_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "wschan_cli", "completion", "tcsh"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "'tcsh' is not one of" in result.stderr


def test_the_scripts_call_wschan_back_through_click() -> None:
    for shell in ("bash", "zsh", "fish"):
        script = wschan_completion(shell)
        assert "_WSCHAN_COMPLETE=" in script and f"{shell}_complete" in script
