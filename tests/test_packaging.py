"""The shipped models travel with a regular (non-editable) install."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest

from tests.conftest import ROOT


@pytest.mark.slow
def test_wheel_contains_the_shipped_models(tmp_path):
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=300,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    [wheel] = tmp_path.glob("banana_monitor-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {p.name for p in (ROOT / "models").glob("*.npz")}
    assert {"seed-binary.npz", "seed-multiclass.npz"} <= shipped
    assert {f"monitor/_models/{name}" for name in shipped} <= names
    assert "monitor/cli.py" in names and "plugins/__init__.py" in names
