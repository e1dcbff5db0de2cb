"""Segmentation datasets: benchmarks, the MillionSeg corpus, user folders, georeferenced data."""

from s5geo.datasets.folder import DUBAI_AERIAL, SegmentationFolder
from s5geo.datasets.geo import LandsatScene, RasterLabels, VectorLabels
from s5geo.datasets.geo_chips import GeoChips
from s5geo.datasets.isaid import ISAIDSegmentation
from s5geo.datasets.loveda import LoveDA
from s5geo.datasets.millionseg import MillionSeg
from s5geo.datasets.openearthmap import OpenEarthMap
from s5geo.datasets.potsdam import Potsdam
from s5geo.datasets.udd6 import UDD6
from s5geo.datasets.unlabeled import UnlabeledFolder
from s5geo.datasets.vaihingen import Vaihingen
from s5geo.datasets.vdd import VDD

__all__ = [
    "DUBAI_AERIAL",
    "UDD6",
    "VDD",
    "GeoChips",
    "ISAIDSegmentation",
    "LandsatScene",
    "LoveDA",
    "MillionSeg",
    "OpenEarthMap",
    "Potsdam",
    "RasterLabels",
    "SegmentationFolder",
    "UnlabeledFolder",
    "Vaihingen",
    "VectorLabels",
]
