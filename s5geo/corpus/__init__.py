"""Building the MillionSeg corpus from source datasets and writing it into streaming shards.

* :func:`build_corpus` (``s5geo corpus build``): crops source images as the S5 paper does, keeps
  the unlabeled crops whose pseudo-label holds foreground, and writes the RS4P-1M layout that
  :class:`~s5geo.datasets.MillionSeg` reads, a manifest and per-class statistics.
* :func:`write_shards` (``s5geo corpus shard``): writes a manifest's samples into LitData chunks
  that :class:`~s5geo.datasets.shards.ShardedSegmentation` streams, each rank reading its own chunks.
"""

from s5geo.corpus.build import BuildStats, Source, build_corpus, parse_source
from s5geo.corpus.shard import write_shards

__all__ = ["BuildStats", "Source", "build_corpus", "parse_source", "write_shards"]
