import sys
from pathlib import Path

import pytest

# The tiny class-from-red-band model of the inference tests filters the crops here.
sys.path.insert(0, str(Path(__file__).parents[1] / "inference"))

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


@pytest.fixture(scope="session")
def built_corpus(tmp_path_factory):
    """A corpus built from the fake sources with the foreground filter (shared, read-only)."""
    from _inference_helpers import IdentityModel, make_metadata

    from s5geo.corpus import build_corpus, parse_source

    out = tmp_path_factory.mktemp("corpus") / "millionseg"
    stats = build_corpus([parse_source(s) for s in source_specs()], out, filter_model=IdentityModel(),
                         metadata=make_metadata(32, bands=3), device="cpu", progress=False)
    return out, stats
