"""The channel package imports a module when one of its names is first used: the command line
reads ``ChannelOptions`` (its defaults are the ``--help`` defaults) without loading websockets."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

import wschan_cli.channel as package

pytestmark = pytest.mark.timeout(30)


def test_every_public_name_resolves_to_its_module() -> None:
    for name in package.__all__:
        value = getattr(package, name)
        if isinstance(value, type) or inspect.isfunction(value):  # not an alias like Subscriber
            assert value.__module__.startswith("wschan_cli.channel."), name
    with pytest.raises(AttributeError):
        package.NoSuchName  # noqa: B018


def test_the_options_of_the_command_line_load_no_websockets() -> None:
    probe = (
        "import sys, wschan_cli.options, wschan_cli.channel; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('websockets', 'ssl')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
