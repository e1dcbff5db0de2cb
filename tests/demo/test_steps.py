from pathlib import Path

import pytest

from s5geo.demo.steps import StepRunner, atomic_path, folder_lock, publish
from s5geo.errors import S5GeoError


def _writer(path: Path, calls: list[str], text: str = "x"):
    def run() -> dict[str, str]:
        calls.append(path.name)
        tmp = atomic_path(path)
        tmp.write_text(text)
        publish(tmp, path)
        return {"text": text}

    return run


def test_step_runs_once_then_is_skipped(tmp_path: Path) -> None:
    calls: list[str] = []
    out = tmp_path / "a.txt"
    runner = StepRunner(tmp_path, log=lambda _: None)
    assert runner.run("a", {"k": 1}, [out], _writer(out, calls)) == {"text": "x"}
    assert runner.run("a", {"k": 1}, [out], _writer(out, calls)) == {"text": "x"}
    assert calls == ["a.txt"]


def test_step_reruns_on_new_config_missing_output_or_force(tmp_path: Path) -> None:
    calls: list[str] = []
    out = tmp_path / "a.txt"
    StepRunner(tmp_path, log=lambda _: None).run("a", {"k": 1}, [out], _writer(out, calls))
    StepRunner(tmp_path, log=lambda _: None).run("a", {"k": 2}, [out], _writer(out, calls))
    out.unlink()
    StepRunner(tmp_path, log=lambda _: None).run("a", {"k": 2}, [out], _writer(out, calls))
    StepRunner(tmp_path, force=True, log=lambda _: None).run("a", {"k": 2}, [out], _writer(out, calls))
    assert len(calls) == 4


def test_failed_step_leaves_no_record_and_no_output(tmp_path: Path) -> None:
    out = tmp_path / "a.txt"
    runner = StepRunner(tmp_path, log=lambda _: None)

    def broken() -> dict[str, str]:
        atomic_path(out).write_text("partial")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        runner.run("a", {}, [out], broken)
    assert not out.exists()
    assert runner.done("a", {}, [out]) is None
    with pytest.raises(S5GeoError, match="did not write"):
        runner.run("b", {}, [tmp_path / "never.txt"], lambda: {})


def test_second_run_into_a_locked_folder_is_refused(tmp_path: Path) -> None:
    with folder_lock(tmp_path), pytest.raises(S5GeoError, match="another s5geo run"), folder_lock(tmp_path):
        pass
    with folder_lock(tmp_path):  # released after the first holder left
        pass
