"""Griffe extension of the tracetorch site: Sphinx-flavoured docstrings render cleanly.

The docstrings are Google style with Sphinx roles, read by mkdocstrings as Markdown:

- doctests sit under ``Example:`` (Napoleon's spelling) or in free text; griffe's Google
  parser only knows ``Examples:``, so the ``>>>`` lines would render as nested block quotes.
  Each run of doctest lines (a ``>>>`` line up to the next blank line) is fenced as ``pycon``;
- roles such as ``:class:`LIF``` would show their markup; they become inline code.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_PROMPT = re.compile(r"^(\s*)>>> ")
_ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|obj|exc|math):`~?([^`]+)`")


def fence_doctests(text: str) -> str:
    """``text`` with each run of doctest lines wrapped in a ```` ```pycon ```` fence."""
    out: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        match = _PROMPT.match(lines[i])
        if not match:
            out.append(lines[i])
            i += 1
            continue
        indent = match.group(1)
        out += ["", f"{indent}```pycon"]
        while i < len(lines) and lines[i].strip():
            out.append(lines[i])
            i += 1
        out += [f"{indent}```", ""]
    return "\n".join(out)


class FenceDoctests(griffe.Extension):
    """Fence the doctests and unwrap the roles of every docstring before it is parsed."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _ROLE.sub(r"`\1`", fence_doctests(obj.docstring.value))
