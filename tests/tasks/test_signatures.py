"""The CLI lists every task argument, inherited ones included, with its default and its docs."""

import inspect

import pytest
from jsonargparse import ArgumentParser

from s5geo.tasks import BaseSegmentationTask, FixMatch, SupervisedSegmentation, UniMatch


def _defaults(cls: type) -> dict:
    params = inspect.signature(cls.__init__).parameters.values()
    return {
        p.name: p.default for p in params if p.kind is p.KEYWORD_ONLY or p.kind is p.POSITIONAL_OR_KEYWORD
    }


BASE = {name: value for name, value in _defaults(BaseSegmentationTask).items() if name != "self"}
FIXMATCH = {
    **BASE,
    "lr": 6e-5,
    "tau": 0.95,
    "unlabeled_weight": 1.0,
    "teacher_mode": "eval",
    "cutmix_partner": "loader",
    "pseudo_label_autocast": False,
    "ema": None,
    "cutmix_p": 0.5,
    "strong_kwargs": None,
    "joint_forward": True,
}


@pytest.mark.parametrize(
    ("cls", "expected"),
    [
        (SupervisedSegmentation, BASE),
        (FixMatch, FIXMATCH),
        (UniMatch, {**FIXMATCH, "fp_dropout": 0.5, "teacher_mode": "train"}),
    ],
)
def test_cli_lists_inherited_arguments_with_defaults_and_docs(cls: type, expected: dict) -> None:
    assert len(BASE) == 20 and BASE["lr"] == 1e-4 and BASE["eval_mode"] is None
    parser = ArgumentParser()
    parser.add_class_arguments(cls, "model")
    defaults = parser.get_defaults().model.as_dict()
    assert defaults == expected
    helps = {a.dest.removeprefix("model."): a.help for a in parser._actions if a.dest.startswith("model.")}
    assert all(helps.get(name) for name in expected), [n for n in expected if not helps.get(n)]
    assert helps["num_classes"] == "number of classes."


def test_subclass_arguments_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        FixMatch("upernet_resnet18")  # would otherwise bind the model name to tau
    task = FixMatch(model="upernet_resnet18", model_kwargs={"channels": 8}, num_classes=3, tau=0.5)
    assert task.hparams.lr == 6e-5 and task.hparams.tau == 0.5 and task.hparams.num_classes == 3
    assert task.model.classifier.out_channels == 3
