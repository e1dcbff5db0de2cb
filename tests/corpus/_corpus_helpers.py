"""Paths and source specifications of the corpus tests."""

from pathlib import Path

DATA = Path(__file__).parents[1] / "data"
SOURCES = DATA / "corpus" / "sources"


def source_specs() -> list[str]:
    """The fake sources at test scale: 32-px crops, small images kept whole, iSAID at 32 px."""
    return [
        f"dota={SOURCES / 'dota'},crop=32",
        f"sior={SOURCES / 'sior'},crop=whole",
        f"geo={SOURCES / 'geo'},crop=32,stride=16",
        f"isaid={DATA / 'isaid'},crop=32",
    ]
