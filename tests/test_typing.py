"""mypy sees the public API with its real types (``py.typed``): models, managers, QuerySets."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.mark.timeout(300)
def test_public_api_types_check_with_mypy() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", "--strict", "--follow-imports=silent",
         str(HERE / "typing" / "typed_usage.py")],
        capture_output=True, text=True, cwd=HERE.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.timeout(300)
def test_package_passes_mypy() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", "-p", "covet"],
        capture_output=True, text=True, cwd=HERE.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr
