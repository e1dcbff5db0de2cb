"""Write a benchmark's section of ``benchmarks/RESULTS.md``."""

from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")


def replace_section(text: str, results: Path = RESULTS) -> None:
    """Replace the section that ``text`` starts with (its ``## name`` line), or append it.

    Args:
        text: the new section, starting with its ``## name`` heading.
        results: the Markdown file.
    """
    heading = text.splitlines()[0].strip()
    old = results.read_text() if results.exists() else "# Benchmark results\n"
    lines = old.splitlines()
    start = next((k for k, line in enumerate(lines) if line.strip() == heading), None)
    if start is None:
        new = old.rstrip("\n") + "\n\n" + text
    else:
        end = next((k for k in range(start + 1, len(lines)) if lines[k].startswith("## ")), len(lines))
        new = "\n".join([*lines[:start], text.rstrip("\n"), "", *lines[end:]]).rstrip("\n") + "\n"
    results.write_text(new)
