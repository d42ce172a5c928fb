"""The wheel: built from a copy of the source tree, it ships every man page under
``share/man/man1``; installed into a throwaway venv, ``man wschan`` finds them through PATH alone,
and both ``wschan`` and ``python -m wschan_cli`` run from it.

Offline: the wheel is built without build isolation (setuptools comes from the test extra) and
installed without dependencies; the throwaway venv borrows this venv's dependencies through a
``.pth`` line, which does not make this venv's editable ``wschan_cli`` visible.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted(path.name for path in (ROOT / "man").glob("*.1"))


def run(*args: str | Path, env: dict[str, str] | None = None) -> str:
    # Run from / : with the source tree as the current directory,
    # ``python -c``/``-m`` would import wschan_cli from it instead of from the venv.
    result = subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd="/",
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # A copy, so that the build leaves nothing (build/, *.egg-info) in the source tree.
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for name in ("wschan_cli", "man"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("wheel")
    run(
        sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
        "--wheel-dir", out, source,
    )  # fmt: skip
    (built,) = out.glob("wschan-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    prefix = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(with_pip=False).create(prefix)
    python = prefix / "bin" / "python"
    run(sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps",
        "--no-index", wheel)  # fmt: skip
    purelib = run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))").strip()
    (Path(purelib) / "borrowed-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    yield prefix


def test_the_wheel_ships_every_man_page(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        shipped = sorted(
            Path(name).name
            for name in archive.namelist()
            if name.startswith("wschan-0.1.0.data/data/share/man/man1/")
        )
    assert PAGES and shipped == PAGES


def test_the_pages_land_in_the_venv_share_man(installed: Path) -> None:
    assert sorted(p.name for p in (installed / "share/man/man1").iterdir()) == PAGES


@pytest.mark.skipif(shutil.which("man") is None, reason="man is not installed")
def test_man_finds_the_pages_from_path_alone(installed: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MANPATH"}
    env["PATH"] = f"{installed / 'bin'}{os.pathsep}/usr/bin{os.pathsep}/bin"
    for page in ("wschan", "wschan-serve", "wschan-completion"):
        found = run("man", "-w", page, env=env).strip()
        assert Path(found) == installed / "share/man/man1" / f"{page}.1"


def test_the_installed_console_script_and_python_m_run(installed: Path) -> None:
    script = run(installed / "bin" / "wschan", "--version")
    assert script.startswith("wschan 0.1.0\n")
    python = installed / "bin" / "python"
    assert run(python, "-m", "wschan_cli", "--version") == script
    # The code that ran is the wheel's copy, not this venv's editable checkout.
    where = run(python, "-c", "import wschan_cli; print(wschan_cli.__file__)")
    assert Path(where.strip()).is_relative_to(installed)
