import sys
from pathlib import Path

import pytest

# The helpers beside this file, and the tiny class-from-red-band model of the inference tests (it
# filters the crops here), importable whatever pytest's import mode.
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "inference"))

from _corpus_helpers import source_specs


@pytest.fixture(scope="session")
def built_corpus(tmp_path_factory):
    """A corpus built from the fake sources with the foreground filter (shared, read-only)."""
    from _inference_helpers import IdentityModel, make_metadata

    from s5geo.corpus import build_corpus, parse_source

    out = tmp_path_factory.mktemp("corpus") / "millionseg"
    stats = build_corpus(
        [parse_source(s) for s in source_specs()],
        out,
        filter_model=IdentityModel(),
        metadata=make_metadata(32, bands=3),
        device="cpu",
        progress=False,
    )
    return out, stats
