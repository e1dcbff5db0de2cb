"""The CLI lists every datamodule option, the shared ones passed on with ``**kwargs`` included."""

import inspect

import pytest
from jsonargparse import ArgumentParser

from s5geo.datamodules import MillionSegDataModule, SemiSupervisedDataModule, SEPDataModule
from s5geo.datamodules.base import ScaledDataModule

SHARED = {
    name: p.default
    for name, p in inspect.signature(ScaledDataModule.__init__).parameters.items()
    if p.kind is p.KEYWORD_ONLY
}


@pytest.mark.parametrize(
    ("cls", "own"),
    [
        (
            SemiSupervisedDataModule,
            {
                "batch_size_labeled": 12,
                "rescale": (0.5, 2.0),
                "seed": 0,
                "crop_order": "rescale_then_crop",
                "partner_batch": "same_images",
            },
        ),
        (MillionSegDataModule, {"root": "data/MillionSeg", "batch_size_unlabeled": 12}),
        (SEPDataModule, {"shards": None, "batch_size": 24, "augment": True}),
    ],
)
def test_cli_lists_shared_options_with_defaults_and_docs(cls: type, own: dict) -> None:
    assert SHARED["crop_size"] == 512 and SHARED["in_channels"] is None and len(SHARED) == 9
    parser = ArgumentParser()
    parser.add_class_arguments(cls, "data")
    defaults = parser.get_defaults().data.as_dict()
    for name, value in {**SHARED, **own}.items():
        assert name in defaults, name
        assert defaults[name] == value, name
    helps = {a.dest.removeprefix("data."): a.help for a in parser._actions if a.dest.startswith("data.")}
    assert all(helps.get(name) for name in SHARED), [n for n in SHARED if not helps.get(n)]


def test_shared_options_reach_the_datamodule() -> None:
    dm = SEPDataModule(crop_size=64, num_workers=0, scale=[255.0, 255.0, 255.0], in_channels=3)
    assert dm.crop_size == dm.loader_crop_size == 64 and dm.in_channels == 3
    assert dm.scale == [255.0, 255.0, 255.0] and len(dm.classes) == 16
    assert dm.train_augmentation is not None and dm.train_augmentation.geometry.crop_size == 64
