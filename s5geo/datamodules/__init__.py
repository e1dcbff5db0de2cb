"""Lightning datamodules: one per benchmark, MillionSeg pre-training, any labeled/unlabeled pair."""

from s5geo.datamodules.base import S5DataModule, instantiate_dataset
from s5geo.datamodules.geo_predict import GeoPredictionDataModule
from s5geo.datamodules.isaid import ISAIDDataModule
from s5geo.datamodules.loveda import LoveDADataModule
from s5geo.datamodules.millionseg import MillionSegDataModule
from s5geo.datamodules.multi_dataset import MultiDatasetDataModule
from s5geo.datamodules.openearthmap import OpenEarthMapDataModule
from s5geo.datamodules.potsdam import PotsdamDataModule
from s5geo.datamodules.semi_supervised import PairedBatchSampler, SemiSupervisedDataModule
from s5geo.datamodules.sep import SEPDataModule
from s5geo.datamodules.udd6 import UDD6DataModule
from s5geo.datamodules.vaihingen import VaihingenDataModule
from s5geo.datamodules.vdd import VDDDataModule

__all__ = [
    "GeoPredictionDataModule",
    "ISAIDDataModule",
    "LoveDADataModule",
    "MillionSegDataModule",
    "MultiDatasetDataModule",
    "OpenEarthMapDataModule",
    "PairedBatchSampler",
    "PotsdamDataModule",
    "S5DataModule",
    "SEPDataModule",
    "SemiSupervisedDataModule",
    "UDD6DataModule",
    "VDDDataModule",
    "VaihingenDataModule",
    "instantiate_dataset",
]
