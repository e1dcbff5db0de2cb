"""``s5geo fit|validate|test|predict`` on bad configs, data and checkpoints: one line, exit non-zero."""

from __future__ import annotations

from pathlib import Path

import pytest
from lightning_tiny import FOLDER_DATA_CONFIG, QUIET_TRAINER_CONFIG, write_tiny_folder

from s5geo.cli import lightning
from s5geo.cli.main import main
from s5geo.errors import S5GeoError

CONFIG = (
    """\
model:
  class_path: lightning_tiny.TinyTask
  init_args:
    num_classes: 3
"""
    + FOLDER_DATA_CONFIG
    + """\
trainer:
  max_steps: 2
"""
    + QUIET_TRAINER_CONFIG
)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder with a 3-class image/mask folder and ``cfg.yaml``."""
    write_tiny_folder(tmp_path / "data")
    (tmp_path / "cfg.yaml").write_text(CONFIG)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _fit(*extra: str) -> int:
    return main(["fit", "--config", "cfg.yaml", *extra])


def _error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "error" in line]
    assert lines, err
    assert "Traceback" not in err
    return lines[-1]


def test_fit_keeps_the_users_config_yaml(workdir: Path, capsys) -> None:
    # Case 2: without a logger the log dir is the working folder.
    (workdir / "config.yaml").write_text("my: own config\n")
    assert _fit() == 0
    assert (workdir / "config.yaml").read_text() == "my: own config\n"
    saved = workdir / "config.s5geo.yaml"
    assert lightning.SAVED_CONFIG_MARKER in saved.read_text()
    assert "config.s5geo.yaml" in capsys.readouterr().err
    # A second run replaces its own saved config, still not the user's.
    saved.write_text(saved.read_text() + "# stale\n")
    assert _fit() == 0
    assert "# stale" not in saved.read_text()
    assert (workdir / "config.yaml").read_text() == "my: own config\n"


def test_fit_saves_config_yaml_when_free_and_replaces_its_own(workdir: Path) -> None:
    assert _fit() == 0
    first = (workdir / "config.yaml").read_text()
    assert lightning.SAVED_CONFIG_MARKER in first
    assert _fit() == 0
    assert not (workdir / "config.s5geo.yaml").exists()


def test_fit_never_overwrites_its_own_config_input(workdir: Path) -> None:
    # The user's --config file is named config.yaml and even carries the marker: still kept.
    text = f"# {lightning.SAVED_CONFIG_MARKER}\n" + CONFIG
    (workdir / "config.yaml").write_text(text)
    assert main(["fit", "--config", "config.yaml"]) == 0
    assert (workdir / "config.yaml").read_text() == text
    assert (workdir / "config.s5geo.yaml").exists()


def test_resume_with_ckpt_path_loads_weights_only(workdir: Path, monkeypatch) -> None:
    import torch

    calls: list[object] = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    assert _fit() == 0
    monkeypatch.setattr(torch, "load", spy)
    assert _fit("--ckpt_path", "ckpts/last.ckpt", "--trainer.max_steps", "4") == 0
    assert calls and all(value is True for value in calls)


@pytest.mark.parametrize("command", ["fit", "validate", "test", "predict"])
def test_malicious_ckpt_path_is_never_unpickled(workdir: Path, evil_checkpoint, command, capsys) -> None:
    # Case 17.
    path, marker = evil_checkpoint
    assert main([command, "--config", "cfg.yaml", "--ckpt_path", str(path)]) == 1
    assert not marker.exists()
    line = _error(capsys)
    assert "evil.ckpt" in line and "posix.system" in line and "weights_only=False" not in line


def test_weights_only_false_is_refused(workdir: Path, capsys) -> None:
    assert _fit() == 0
    assert _fit("--ckpt_path", "ckpts/last.ckpt", "--weights_only", "false") == 1
    assert "--weights_only false is not supported" in _error(capsys)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"\x00\x01garbage" * 100, "not a PyTorch checkpoint"),
        (b"", "truncated or damaged"),
        (b"PK\x03\x04" + b"\x00" * 50, "truncated or damaged"),
    ],
)
def test_unreadable_ckpt_path(workdir: Path, content: bytes, expected: str, capsys) -> None:
    # Case 11 through LightningCLI: no "weights_only=False will likely succeed" advice.
    (workdir / "bad.ckpt").write_bytes(content)
    assert main(["validate", "--config", "cfg.yaml", "--ckpt_path", "bad.ckpt"]) == 1
    line = _error(capsys)
    assert "bad.ckpt" in line and expected in line and "weights_only" not in line


def test_missing_ckpt_path(workdir: Path, capsys) -> None:
    assert main(["test", "--config", "cfg.yaml", "--ckpt_path", "nope.ckpt"]) == 1
    assert "'nope.ckpt' (--ckpt_path) not found" in _error(capsys)


def test_missing_dataset_root(workdir: Path, capsys) -> None:
    # Case 8: jsonargparse wraps the dataset's error; the user sees the dataset's one line.
    assert _fit("--data.init_args.dataset.init_args.root", "nowhere") == 1
    line = _error(capsys)
    assert line.startswith("s5geo fit: error: nowhere: folder does not exist")


def test_num_classes_smaller_than_the_data(workdir: Path, capsys) -> None:
    # Case 9.
    assert _fit("--model.init_args.num_classes", "2") == 1
    line = _error(capsys)
    assert "num_classes=2" in line and "3 classes" in line


def test_mask_value_out_of_range_during_training_is_one_line() -> None:
    # Case 9 when the data module does not name its classes: the IndexError is translated.
    class Model:
        hparams = {"num_classes": 2}

    expected = "mask holds class 2 but the model has num_classes=2"
    with pytest.raises(S5GeoError, match=expected), lightning._lightning_errors(None, Model()):
        raise IndexError("Target 2 is out of bounds.")
    with pytest.raises(IndexError, match="list index"), lightning._lightning_errors(None, Model()):
        raise IndexError("list index out of range")


def test_yaml_syntax_error_names_the_file(workdir: Path, capsys) -> None:
    # Case 12.
    (workdir / "broken.yaml").write_text("model:\n  class_path: x\n   bad: [\n")
    assert main(["fit", "--config", "broken.yaml"]) == 1
    line = _error(capsys)
    assert "broken.yaml: YAML syntax error at line 3" in line and "<unicode string>" not in line


def test_yaml_syntax_error_in_a_component_file(workdir: Path, capsys) -> None:
    (workdir / "model.yaml").write_text("class_path: [unclosed\n")
    assert _fit("--model", "model.yaml") == 1
    assert "model.yaml: YAML syntax error" in _error(capsys)


@pytest.mark.parametrize(
    "extra",
    [["--trainer.max_stepz", "3"], ["--model.init_args.num_classes", "two"], ["--no-such-flag"]],
)
def test_usage_errors_are_short(workdir: Path, extra: list[str], capsys) -> None:
    # Case 13: the error comes first, without the 48-line usage text.
    with pytest.raises(SystemExit) as exit_info:
        _fit(*extra)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "usage:" not in err
    assert len(err.strip().splitlines()) <= 8
    assert "error:" in err.splitlines()[0] and "--help" in err


def test_missing_config_file_is_short(workdir: Path, capsys) -> None:
    with pytest.raises(SystemExit):
        main(["fit", "--config", "nope.yaml"])
    err = capsys.readouterr().err
    assert "nope.yaml" in err and "usage:" not in err


def test_debug_shows_the_traceback(workdir: Path) -> None:
    with pytest.raises(S5GeoError, match="YAML syntax error"):
        (workdir / "broken.yaml").write_text("a: [\n")
        main(["--debug", "fit", "--config", "broken.yaml"])
