"""Reading the migration guide's code blocks, and running one as written (top-level await)."""

from __future__ import annotations

import ast
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "migration-guide.md"
SHARED_GUIDE = ROOT.parent / "shared" / "spec" / "migration-guide.md"


@dataclass(frozen=True)
class Block:
    section: str
    subsection: str | None
    marker: str | None
    code: str

    @property
    def title(self) -> str:
        return f"{self.section} / {self.subsection} / {self.marker}"


def blocks() -> list[Block]:
    """Every ```python block of the guide with its headings and the bold marker above it."""
    lines = GUIDE.read_text(encoding="utf-8").split("\n")
    out: list[Block] = []
    h2 = h3 = marker = None
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("## "):
            h2, h3, marker = line[3:], None, None
        elif line.startswith("### "):
            h3, marker = line[4:], None
        elif line.startswith("**"):
            marker = line
        elif line.startswith("```python"):
            j = i + 1
            while not lines[j].startswith("```"):
                j += 1
            out.append(Block(h2 or "", h3, marker, "\n".join(lines[i + 1:j])))
            i = j
        i += 1
    return out


def covet_block(section: str, subsection: str | None = None, index: int = 0) -> str:
    """The ``index``-th CovetPy block (marker starting with ``**CovetPy``) of a section."""
    found = [b for b in blocks() if b.section == section
             and (subsection is None or b.subsection == subsection)
             and b.marker is not None and b.marker.startswith("**CovetPy")]
    if index >= len(found):
        raise LookupError(f"no CovetPy block #{index} in {section} / {subsection}")
    return found[index].code


def block_with(section: str, subsection: str, marker_prefix: str) -> str:
    for b in blocks():
        if b.section == section and b.subsection == subsection and b.marker \
                and b.marker.startswith(marker_prefix):
            return b.code
    raise LookupError(f"no block under {marker_prefix!r} in {section} / {subsection}")


async def run_block(code: str, namespace: dict[str, Any]) -> dict[str, Any]:
    """Execute ``code`` exactly as written, with top-level ``await``, in ``namespace``."""
    namespace.setdefault("__name__", "guide_block")
    compiled = compile(code, "<migration-guide>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(compiled, namespace)  # noqa: S307 - the guide's own code is the test subject
    if inspect.iscoroutine(result):
        await result
    return namespace


def statements(code: str) -> list[str]:
    """The top-level statements of ``code``, each as its own source text."""
    tree = compile(code, "<migration-guide>", "exec",
                   flags=ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    return [ast.get_source_segment(code, node) or "" for node in tree.body]  # type: ignore[attr-defined]
