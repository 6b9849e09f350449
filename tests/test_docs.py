"""The documentation stays true to the code.

- ``mkdocs build --strict`` passes (a broken link or snippet, a docstring griffe cannot
  parse, or a public name without a docstring fails it; see ``docs/hooks.py``);
- every name in the ``__all__`` of each documented module has a docstring;
- every fenced ```` ```python ```` block of README.md and docs/ runs: each page's blocks in
  order, in one namespace, with ``torch``, ``torch.nn.functional as F`` and
  ``tracetorch as tt`` imported. A block that is illustrative only is marked by the line
  ``<!-- no-run -->`` just before its fence (it renders as nothing).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NO_RUN = "<!-- no-run -->"
SNIPPET = re.compile(r'^\s*--8<--\s+"[^"]+"\s*$')

#: Pages whose blocks are not run here, and why.
NOT_RUN = {
    "docs/custom-neuron.md": "its blocks are excerpts of examples/custom_neuron.py, checked "
    "verbatim and run by tests/test_custom_neuron.py",
}


def _api_modules() -> list[str]:
    """The modules of the API reference (docs/api/): docs/hooks.py's list, the one source."""
    spec = importlib.util.spec_from_file_location("_docs_hooks", ROOT / "docs" / "hooks.py")
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    return hooks.API_MODULES


API_MODULES = _api_modules()


# ----------------------------------------------------------------------------- the site
def test_mkdocs_build_strict(tmp_path: Path) -> None:
    tools = ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers")
    missing = [m for m in tools if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(
            f"the docs tools are not installed ({', '.join(missing)}): pip install -e '.[docs]'"
        )
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    assert (tmp_path / "site" / "api" / "nn" / "index.html").exists()


def test_api_pages_cover_the_modules() -> None:
    """One page per module under docs/api/, each rendering that module."""
    for name in API_MODULES:
        page = ROOT / "docs" / "api" / f"{name.split('.')[-1]}.md"
        assert page.exists(), f"no API page for {name}: {page}"
        assert re.search(rf"^::: {re.escape(name)}\s*$", page.read_text(), re.M), page


# ----------------------------------------------------------------------------- docstrings
_GENERATED_DOC = re.compile(r"^\w+\(.*\)$")  # NamedTuple's "LIFState(membrane,)"


def _attribute_docstrings() -> dict[str, str]:
    """``name -> docstring`` of every module-level assignment followed by a string literal."""
    docs: dict[str, str] = {}
    for path in (ROOT / "src" / "tracetorch").rglob("*.py"):
        body = ast.parse(path.read_text()).body
        for node, after in zip(body, body[1:], strict=False):
            target = (
                node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
            )
            if (
                isinstance(target, ast.Name)
                and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                docs[target.id] = after.value.value
    return docs


def _own_docstring(obj: object) -> str | None:
    if inspect.isclass(obj):
        doc = vars(obj).get("__doc__")
        return None if doc and _GENERATED_DOC.match(doc.strip()) else doc
    return getattr(obj, "__doc__", None)


def test_public_names_have_docstrings() -> None:
    attributes = _attribute_docstrings()
    missing = []
    for name in API_MODULES:
        module = importlib.import_module(name)
        assert module.__doc__ and module.__doc__.strip(), f"{name} has no docstring"
        for export in module.__all__:
            obj = getattr(module, export)
            if inspect.ismodule(obj) or inspect.isclass(obj) or callable(obj):
                doc = _own_docstring(obj)
            else:
                doc = attributes.get(export)
            if not (doc and doc.strip()):
                missing.append(f"{name}.{export}")
    assert not missing, f"public names without a docstring: {missing}"


def test_attribute_docstrings_are_found() -> None:
    """The constant check above reads what it should (a check that could silently pass)."""
    docs = _attribute_docstrings()
    assert "LIF rate functions" in docs["RATE_FUNCTIONS"]
    assert "_WIDTH" not in docs


# ----------------------------------------------------------------------------- code blocks
def python_blocks(text: str) -> list[tuple[int, str, bool]]:
    """``(line, code, run)`` of each ```` ```python ```` block of a Markdown text.

    ``run`` is False for a block marked ``<!-- no-run -->`` (the last non-blank line before
    its fence) and for a block of snippet includes only (its file is run elsewhere).
    """
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        fence = re.match(r"^(\s*)(`{3,}|~{3,})\s*python\s*$", lines[i])
        if not fence:
            i += 1
            continue
        indent, marker, start = fence.group(1), fence.group(2), i
        body = []
        i += 1
        while i < len(lines) and lines[i].strip() != marker:
            body.append(lines[i][len(indent) :] if lines[i].startswith(indent) else lines[i])
            i += 1
        previous = next((ln.strip() for ln in reversed(lines[:start]) if ln.strip()), "")
        code = "\n".join(body)
        snippets_only = all(SNIPPET.match(ln) or not ln.strip() for ln in body)
        blocks.append((start + 1, code, previous != NO_RUN and not snippets_only))
        i += 1
    return blocks


def test_python_blocks_parser() -> None:
    text = textwrap.dedent("""\
        ```python
        a = 1
        ```

        <!-- no-run -->
        ```python
        undefined_name
        ```

        ```python
        --8<-- "examples/tutorial_quickstart.py:model"
        ```

        ```bash
        ls
        ```
        """)
    assert python_blocks(text) == [
        (1, "a = 1", True),
        (6, "undefined_name", False),
        (10, '--8<-- "examples/tutorial_quickstart.py:model"', False),
    ]


def doc_pages() -> list[str]:
    pages = [
        "README.md",
        *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").rglob("*.md")),
    ]
    return [
        p
        for p in pages
        if any(run for _, _, run in python_blocks((ROOT / p).read_text())) or p in NOT_RUN
    ]


_RUNNER = """
import sys, runpy
import torch, torch.nn.functional as F
import tracetorch as tt
torch.manual_seed(0)
namespace = {"torch": torch, "F": F, "tt": tt, "__name__": "__doc_page__"}
for line, code in BLOCKS:
    try:
        exec(compile(code, f"{PAGE}:{line}", "exec"), namespace)
    except BaseException:
        print(f"block at {PAGE}:{line} failed", file=sys.stderr)
        raise
"""


@pytest.mark.parametrize("page", doc_pages())
def test_code_blocks_run(page: str, tmp_path: Path) -> None:
    """Run the page's blocks in order, in a fresh process, in an empty working directory."""
    if page in NOT_RUN:
        pytest.skip(NOT_RUN[page])
    blocks = [(line, code) for line, code, run in python_blocks((ROOT / page).read_text()) if run]
    script = f"PAGE = {page!r}\nBLOCKS = {blocks!r}\n{_RUNNER}"
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "MPLBACKEND": "Agg"},
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
