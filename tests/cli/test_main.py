"""The ``s5geo`` dispatcher: fast help/version without torch, unknown commands, LightningCLI help."""

from __future__ import annotations

import subprocess
import sys

import pytest

from s5geo._version import __version__
from s5geo.cli.main import main


def _run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_help_and_version_do_not_import_torch(flag: str) -> None:
    code = (
        "import sys\n"
        "from s5geo.cli.main import main\n"
        f"status = main([{flag!r}])\n"
        "assert status == 0, status\n"
        "heavy = [m for m in ('torch', 'lightning', 'torchgeo') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    result = _run_python(code)
    assert result.returncode == 0, result.stderr
    if flag == "--version":
        assert result.stdout.strip() == f"s5geo {__version__}"
    else:
        assert "predict" in result.stdout and "segment" in result.stdout


def test_no_arguments_prints_usage_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: s5geo" in capsys.readouterr().out


def test_unknown_command_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err


def test_fit_help_goes_to_lightning_cli(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--trainer" in out and "--model" in out and "--data" in out


def test_predict_help_lists_ckpt_path(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", "--help"])
    assert exit_info.value.code == 0
    assert "--ckpt_path" in capsys.readouterr().out


def test_only_fit_saves_its_config(monkeypatch) -> None:
    # predict/test would write config.yaml into their log dir, the working folder without a logger.
    from s5geo.cli import lightning

    seen = {}

    def fake_cli(**kwargs):
        seen.update(kwargs)

    monkeypatch.setattr(lightning, "LightningCLI", fake_cli)
    lightning.run_lightning_cli(["predict", "--config", "x.yaml"])
    assert seen["save_config_callback"] is None
    seen.clear()
    lightning.run_lightning_cli(["fit", "--config", "x.yaml"])
    assert "save_config_callback" not in seen and seen["save_config_kwargs"] == {"overwrite": True}
