"""MkDocs hooks of the tracetorch site (``hooks:`` in mkdocs.yml).

- Optional guide pages (written by other changes) join the "Guides" section of the nav when
  their file exists, so a missing one never breaks the build.
- Links from a page to a repository file outside ``docs/`` (``../examples/digits.py``) point
  to ``repo_url`` when it is set, else become plain text; a target that does not exist is a
  warning (so ``mkdocs build --strict`` fails on it).
- Every name in the ``__all__`` of the documented modules must have a docstring: a missing
  one is a warning, so the strict build fails on it.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

log = logging.getLogger("mkdocs.hooks.tracetorch")

ROOT = Path(__file__).resolve().parents[1]

#: (nav title, file under docs/) of the guides that are added to the nav only if they exist.
OPTIONAL_GUIDES = [
    ("Neurons", "neurons.md"),
    ("Learning modes", "learning-modes.md"),
    ("Your data", "data.md"),
    ("Rewards", "reward.md"),
]

#: The modules of the API reference (one page each under docs/api/).
API_MODULES = [
    "tracetorch",
    "tracetorch.nn",
    "tracetorch.functional",
    "tracetorch.learning",
    "tracetorch.data",
    "tracetorch.encode",
    "tracetorch.training",
    "tracetorch.metrics",
    "tracetorch.plot",
    "tracetorch.models",
    "tracetorch.nir",
]

# [text](target) where target is relative and leaves docs/ (starts with ../ often enough to
# climb out of the page's folder); images and absolute URLs are left alone.
_LINK = re.compile(r"(?<!!)\[([^\]]+)\]\((?!https?://|#|mailto:)([^)\s]+)\)")


def missing_docstrings(search_path: Path = ROOT / "src") -> list[str]:
    """``module.name`` of every name in an API module's ``__all__`` that has no docstring.

    Read statically with griffe (what mkdocstrings renders), so a constant documented by a
    string literal after its assignment counts, and an inherited or generated ``__doc__``
    (a NamedTuple's ``"LIFState(membrane,)"``) does not.
    """
    import griffe

    pkg = griffe.load("tracetorch", search_paths=[str(search_path)], docstring_parser="google")
    missing = []
    for name in API_MODULES:
        module = pkg if name == "tracetorch" else pkg[name.split(".", 1)[1]]
        exports = [e if isinstance(e, str) else e.name for e in (module.exports or [])]
        if not exports:
            missing.append(f"{name}.__all__")
        for export in exports:
            obj = module[export]
            target = obj.final_target if obj.is_alias else obj
            if not (target.docstring and target.docstring.value.strip()):
                missing.append(f"{name}.{export}")
    return missing


def on_config(config: Any) -> Any:
    """Add the optional guides that exist to the "Guides" section of the nav."""
    docs_dir = Path(config["docs_dir"])
    for section in config["nav"] or []:
        if isinstance(section, dict) and "Guides" in section:
            guides = section["Guides"]
            listed = {next(iter(e.values())) if isinstance(e, dict) else e for e in guides}
            for title, page in OPTIONAL_GUIDES:
                if (docs_dir / page).exists() and page not in listed:
                    guides.append({title: page})
    return config


def on_pre_build(config: Any) -> None:
    """Warn (strict: fail) for each public name without a docstring."""
    for name in missing_docstrings():
        log.warning("public name without a docstring: %s", name)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Point links to repository files outside docs/ at ``repo_url``, or make them text."""
    docs_dir = Path(config["docs_dir"]).resolve()
    page_dir = (docs_dir / page.file.src_path).parent
    repo_url = (config.get("repo_url") or "").rstrip("/")

    def fix(match: re.Match[str]) -> str:
        text, target = match.group(1), match.group(2)
        path, _, anchor = target.partition("#")
        resolved = (page_dir / path).resolve()
        if not path or resolved.is_relative_to(docs_dir):
            return match.group(0)  # a page of the site: mkdocs checks it
        if not resolved.is_relative_to(ROOT) or not resolved.exists():
            log.warning("%s: link to a missing file %r", page.file.src_path, target)
            return match.group(0)
        if not repo_url:
            return text
        rel = resolved.relative_to(ROOT).as_posix()
        kind = "tree" if resolved.is_dir() else "blob"
        return f"[{text}]({repo_url}/{kind}/main/{rel}{'#' + anchor if anchor else ''})"

    return _LINK.sub(fix, markdown)
