"""The code examples of docs/architecture.md ("Where to add things") compile, and the method runs."""

import ast
import re
from pathlib import Path

import torch

DOC = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)


def test_examples_are_python() -> None:
    blocks = _blocks()
    assert len(blocks) >= 4
    for block in blocks:
        ast.parse(block)


def test_method_example_trains_on_the_batch_contract() -> None:
    source = next(b for b in _blocks() if "class SoftFixMatch(FixMatch)" in b)
    namespace: dict = {}
    exec(compile(source, "soft_fixmatch.py", "exec"), namespace)
    task = namespace["SoftFixMatch"](
        model="upernet_resnet18", model_kwargs={"channels": 8}, num_classes=3, power=2.0, tau=0.0
    )
    assert task.hparams.power == 2.0 and task.hparams.lr == 6e-5
    padding = torch.zeros(2, 16, 16, dtype=torch.bool)
    padding[:, :, -4:] = True
    batch = {
        "labeled": {"image": torch.rand(2, 3, 16, 16), "mask": torch.randint(0, 3, (2, 16, 16))},
        "unlabeled": {"image": torch.rand(2, 3, 16, 16), "padding": padding},
        "unlabeled_mix": {"image": torch.rand(2, 3, 16, 16), "padding": padding.flip(-1)},
    }
    losses = task.compute_losses(batch)
    assert losses["loss"].requires_grad and losses["loss_u"] > 0
