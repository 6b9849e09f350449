"""Every tutorial script (examples/tutorial_*.py) runs with its quick settings and does what
its page (docs/tutorials/) says."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_tutorial_is_tested_and_shown() -> None:
    scripts = sorted(p.stem for p in EXAMPLES.glob("tutorial_*.py"))
    tested = sorted(n[len("test_") :] for n in globals() if n.startswith("test_tutorial_"))
    assert scripts == tested
    pages = "".join(p.read_text() for p in (ROOT / "docs" / "tutorials").glob("*.md"))
    for name in scripts:
        assert f'"examples/{name}.py:' in pages, f"{name} is not included by a tutorial page"


def test_snippet_sections_exist() -> None:
    """Each ``--8<-- "examples/x.py:section"`` of a page names a section of the script."""
    for page in (ROOT / "docs" / "tutorials").glob("*.md"):
        for path, section in re.findall(r'--8<-- "([^":]+):([^"]+)"', page.read_text()):
            text = (ROOT / path).read_text()
            assert f"--8<-- [start:{section}]" in text, (page.name, path, section)
            assert f"--8<-- [end:{section}]" in text, (page.name, path, section)


def test_tutorial_quickstart() -> None:
    result = load("tutorial_quickstart").main(quick=True)
    assert result["by_hand"] > 0.3 and result["trainer"] > 0.3  # 10 classes: chance 0.1


def test_tutorial_own_data() -> None:
    module = load("tutorial_own_data")
    x, y = module.time_first([module.Sensors(4)[i] for i in range(3)])
    assert x.shape == (200, 3, 8) and y.shape == (3,)
    assert torch.equal(x[:, 1], module.Sensors(4)[1][0])
    result = module.main(quick=True)
    assert result["by_hand"] > 0.4  # 4 classes: chance 0.25


def test_tutorial_horizons(tmp_path: Path) -> None:
    result = load("tutorial_horizons").main(quick=True, plot_path=str(tmp_path / "h.png"))
    conv = result["conversions"]
    assert conv["decay"] == pytest.approx(0.95) and conv["horizon"] == pytest.approx(20)
    assert conv["halflife"] == pytest.approx(13.513, abs=1e-3)
    assert conv["stationary"] == pytest.approx(6.0, rel=1e-5)
    assert len(result["accuracy"]) == 3
    assert all(0 <= a <= 1 for a in result["accuracy"].values())
    assert (tmp_path / "h.png").stat().st_size > 1000


def test_tutorial_streaming() -> None:
    result = load("tutorial_streaming").main(quick=True)
    assert result["identical"] is True
    assert result["accuracy"] > 0.6  # 2 classes: chance 0.5


def test_tutorial_trace_vs_bptt() -> None:
    result = load("tutorial_trace_vs_bptt").main(quick=True)
    assert result["count_gap"] < 1.0  # spike counts do not tell the classes apart
    assert set(result) == {"count_gap", "trace", "eligibility", "bptt"}
    assert all(0 <= result[m] <= 1 for m in ("trace", "eligibility", "bptt"))


def test_tutorial_gpu() -> None:
    result = load("tutorial_gpu").main(quick=True)
    assert result["accuracy"] > 0.3
