"""Regenerate README's picture of the shutdown race, docs/trace-shutdown.svg, from a real run.

The picture is made by the tool itself: ``wschan trace-shutdown --scenario deinit-first
--export docs/trace-shutdown.svg`` against the embedded server on 127.0.0.1, so what a reader
sees is what the command draws on a terminal (the swimlanes, then the verdicts). Times, the
port and the exact interleaving of the reader come from that run; the script refuses a run
whose verdicts did not all pass.

    .venv/bin/python scripts/readme_picture.py [--out docs/trace-shutdown.svg]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMAND = ["trace-shutdown", "--scenario", "deinit-first", "--senders", "2"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "trace-shutdown.svg")
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [sys.executable, "-m", "wschan_cli", *COMMAND, "--export", str(args.out)],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        cwd=ROOT,
    )
    if result.returncode != 0:
        print(result.stdout + result.stderr, file=sys.stderr)
        print(f"wschan {' '.join(COMMAND)} exited {result.returncode}", file=sys.stderr)
        return 1
    print(f"wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
