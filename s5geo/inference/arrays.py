"""Array helpers (normalise, pad, in-memory prediction): moved to :mod:`s5geo.runtime.arrays`."""

from s5geo.runtime.arrays import normalise, pad_to, predict_array

__all__ = ["normalise", "pad_to", "predict_array"]
