"""trace-shutdown --repeat and --export against the embedded server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def wschan(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wschan_cli", "trace-shutdown", *args],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.timeout(60)
def test_repeat_counts_orderings(tmp_path: Path) -> None:
    result = wschan("--scenario", "deinit-first", "--repeat", "3", "--senders", "1")
    assert result.returncode == 0, result.stderr
    assert "deinit-first: orderings over 3 runs" in result.stdout
    assert result.stdout.count("deinit-first: verdicts") == 1  # only the first run is drawn


@pytest.mark.timeout(60)
def test_repeat_json_has_run_numbers_and_ordering_counts() -> None:
    result = wschan("--scenario", "race", "--repeat", "2", "--senders", "1", "--json")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert {r["run"] for r in records if "what" in r} == {1, 2}
    counts = [r for r in records if "ordering" in r]
    assert counts and sum(r["count"] for r in counts) == 2


@pytest.mark.timeout(60)
@pytest.mark.parametrize("suffix", ["md", "svg", "html"])
def test_export_writes_the_timeline(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"trace.{suffix}"
    result = wschan("--scenario", "terminate-first", "--senders", "1", "--export", str(out))
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert "handle_terminate()" in text and "established" in text
    if suffix == "md":
        assert "| # | ms | client.deinit() | handle_terminate() |" in text
        assert "| 7 | no hang; disposed last" in text
    elif suffix == "svg":
        assert text.lstrip().startswith("<svg")
        assert "S&#160;sending&#160;(█&#160;taken" in text  # the swimlanes' legend
        assert ">wait&#160;(1&#160;queued)<" in text  # an event in words
    else:
        assert "<html" in text.lower()


@pytest.mark.timeout(30)
def test_export_needs_a_known_extension_and_live_mode() -> None:
    assert wschan("--export", "trace.txt").returncode == 2
    assert wschan("--explore", "--repeat", "2").returncode == 2
    assert wschan("--explore", "--pace", "100").returncode == 2


@pytest.mark.timeout(60)
def test_the_readme_picture_script_draws_a_real_run(tmp_path: Path) -> None:
    out = tmp_path / "picture.svg"
    script = Path(__file__).resolve().parent.parent / "scripts" / "readme_picture.py"
    result = subprocess.run(
        [sys.executable, str(script), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert text.lstrip().startswith("<svg") and "deinit-first:&#160;2&#160;pending" in text
    assert "established&#160;==&#160;0:&#160;leave" in text  # terminate left, as drawn


@pytest.mark.timeout(60)
def test_an_export_into_a_missing_directory_is_a_usage_error_before_the_run(
    tmp_path: Path,
) -> None:
    # It ran the whole race first, then failed: "internal error: FileNotFoundError", exit 1.
    result = wschan("--scenario", "deinit-first", "--export", str(tmp_path / "no" / "t.svg"))
    assert result.returncode == 2, result.stderr
    assert "Error: Invalid value for '--export'" in result.stderr
    assert "no such directory" in result.stderr and result.stdout == ""


@pytest.mark.timeout(60)
def test_an_export_that_cannot_be_written_is_one_line_and_exit_1(tmp_path: Path) -> None:
    # A full disk: it was "internal error: OSError: [Errno 28] ... (run with --debug...)".
    full = tmp_path / "full.md"
    full.symlink_to("/dev/full")
    result = wschan("--scenario", "deinit-first", "--export", str(full))
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip() == (
        f"wschan: cannot write {full} (--export): No space left on device"
    )
