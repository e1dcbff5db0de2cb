"""``s5geo fit|validate|test|predict``: LightningCLI, configured as in ``torchgeo``.

s5geo's :class:`LightningCLI` differs from Lightning's in what a user meets when something is wrong:

* checkpoints (``--ckpt_path``, the hyper-parameters LightningCLI reads from them) are always loaded
  with ``torch.load(weights_only=True)``: a checkpoint from the internet is never unpickled;
* ``fit`` saves its configuration without replacing a file it did not write (such as the user's
  ``config.yaml`` in the working folder when there is no logger);
* usage errors are one line plus a hint, not the whole usage text; a YAML syntax error names the file;
* a model whose ``num_classes`` is smaller than the data's classes is refused before training.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch import LightningDataModule, LightningModule, Trainer
from lightning.pytorch.cli import ArgsType, LightningArgumentParser, SaveConfigCallback
from lightning.pytorch.cli import LightningCLI as _LightningCLI

from s5geo.errors import S5GeoError

#: Second header line of configurations saved by ``s5geo fit``; only such files are replaced.
SAVED_CONFIG_MARKER = "s5geo fit: configuration of a training run (replaced by the next run here)"

#: ``--ckpt_path`` values that Lightning resolves itself (not file names).
_SPECIAL_CKPT_PATHS = {"last", "best", "hpc", "registry"}


class ConciseArgumentParser(LightningArgumentParser):
    """LightningCLI's parser, reporting a usage error in one line instead of after the usage text."""

    def error(self, message: str, ex: Exception | None = None) -> Any:  # type: ignore[override]
        """Print ``<prog>: error: <message>`` and a hint, then exit 2."""
        from jsonargparse import ArgumentParser

        if not self.exit_on_error or os.environ.get("JSONARGPARSE_DEBUG"):
            return ArgumentParser.error(self, message, ex)
        self._logger.error(message)
        parser = getattr(ex, "subcommand_parser", None) or self
        prog = parser.prog.replace(" [options]", "")
        sys.stderr.write(f"{prog}: error: {condense_message(message)}\n")
        sys.stderr.write(f"(run `{prog} --help` for the options)\n")
        self.exit(2)


def condense_message(message: str, limit: int = 6) -> str:
    """Shorten jsonargparse's nested messages: drop the repeated ``Given value`` and subtype lists.

    The result keeps the lines that say what went wrong, at most ``limit`` of them.
    """
    lines = [line.rstrip() for line in message.strip().splitlines() if line.strip()]
    keep = [
        line
        for line in lines
        if not line.lstrip().startswith(
            ("Given value", "Subtypes:", "Errors:", "- Expected a <class 'NoneType'>")
        )
    ]
    keep = keep or lines
    if len(keep) > limit:
        keep = [*keep[:limit], "  ..."]
    return "\n".join(keep)


class SafeSaveConfigCallback(SaveConfigCallback):
    """Save the run's configuration without replacing a file that ``s5geo fit`` did not write.

    A ``config.yaml`` already in the log folder is replaced only when it is an earlier run's saved
    configuration (it holds :data:`SAVED_CONFIG_MARKER`) and was not given as ``--config``;
    otherwise the configuration goes to the first free ``config.s5geo[.N].yaml``.
    """

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Pick a file name that replaces nothing of the user's, then save as Lightning does."""
        if self.already_saved or not self.save_to_log_dir:
            return super().setup(trainer, pl_module, stage)
        log_dir = trainer.log_dir
        name = self.config_filename
        if trainer.is_global_zero and log_dir is not None:
            name = _free_config_name(Path(log_dir), self.config_filename, _config_inputs(self.config))
            if name != self.config_filename:
                print(
                    f"s5geo fit: {Path(log_dir) / self.config_filename} is not a configuration saved by "
                    f"s5geo fit; saving this run's configuration as {name}",
                    file=sys.stderr,
                )
        self.config_filename = trainer.strategy.broadcast(name)
        self.overwrite = True
        return super().setup(trainer, pl_module, stage)


def _config_inputs(config: Any) -> set[Path]:
    """Resolved paths of the ``--config`` files of a parsed configuration."""
    found: set[Path] = set()

    def visit(value: Any) -> None:
        if isinstance(value, (list, tuple)):
            for item in value:
                visit(item)
        elif value is not None and hasattr(value, "absolute"):  # jsonargparse Path
            found.add(Path(str(value.absolute)).resolve())
        elif isinstance(value, (str, os.PathLike)):
            found.add(Path(value).resolve())

    getter = getattr(config, "get", None)
    if getter is not None:
        visit(getter("config"))
        subcommand = getter("subcommand")
        if subcommand and getter(subcommand) is not None:
            visit(getter(subcommand).get("config"))
    return found


def _is_saved_config(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            head = [handle.readline() for _ in range(3)]
    except OSError:
        return False
    return any(SAVED_CONFIG_MARKER in line for line in head)


def _free_config_name(log_dir: Path, filename: str, inputs: set[Path]) -> str:
    """Return ``filename`` if writing it replaces no user file, else the first free alternative."""
    stem, suffix = Path(filename).stem, Path(filename).suffix or ".yaml"
    candidates = [filename, f"{stem}.s5geo{suffix}"] + [f"{stem}.s5geo.{n}{suffix}" for n in range(1, 1000)]
    for name in candidates:
        path = log_dir / name
        if not path.exists() and not path.is_symlink():
            return name
        if path.is_file() and path.resolve() not in inputs and _is_saved_config(path):
            return name
    raise S5GeoError(f"{log_dir}: no free file name to save the configuration (tried {filename}...)")


class LightningCLI(_LightningCLI):
    """Lightning's CLI with s5geo's safety rules (see the module docstring)."""

    def __init__(
        self,
        *args: Any,
        save_config_callback: type[SaveConfigCallback] | None = SafeSaveConfigCallback,
        parser_class: type[LightningArgumentParser] = ConciseArgumentParser,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            *args, save_config_callback=save_config_callback, parser_class=parser_class, **kwargs
        )

    def init_parser(self, **kwargs: Any) -> LightningArgumentParser:
        """Add :data:`SAVED_CONFIG_MARKER` to the header of saved configurations."""
        kwargs.setdefault("dump_header", [f"lightning.pytorch=={pl.__version__}", SAVED_CONFIG_MARKER])
        return super().init_parser(**kwargs)

    def _ckpt_path(self) -> str | None:
        subcommand = self.config.get("subcommand")
        if not subcommand:
            return None
        value = self.config[subcommand].get("ckpt_path")
        return None if value is None else str(value)

    def _parse_ckpt_path(self) -> None:
        """Read hyper-parameters from ``--ckpt_path`` with ``weights_only=True`` and one-line errors."""
        from s5geo.inference.loading import checkpoint_error, safe_checkpoint_loading

        subcommand = self.config.get("subcommand")
        if subcommand:
            if self.config[subcommand].get("weights_only") is False:
                raise S5GeoError(
                    "--weights_only false is not supported: s5geo never unpickles checkpoints; "
                    "re-save the checkpoint's weights from a trusted session"
                )
            ckpt = self._ckpt_path()
            if ckpt and ckpt not in _SPECIAL_CKPT_PATHS and "://" not in ckpt and not Path(ckpt).is_file():
                raise S5GeoError(f"checkpoint {ckpt!r} (--ckpt_path) not found")
        try:
            with safe_checkpoint_loading():
                super()._parse_ckpt_path()
        except S5GeoError:
            raise
        except Exception as error:  # torch.load raises many types for unsafe or corrupt files
            raise checkpoint_error(self._ckpt_path() or "--ckpt_path", error) from error

    def _prepare_subcommand_kwargs(self, subcommand: str) -> dict[str, Any]:
        """Always pass ``weights_only=True`` to the trainer's ``fit``/``validate``/``test``/``predict``."""
        kwargs = super()._prepare_subcommand_kwargs(subcommand)
        if "weights_only" in self._subcommand_method_arguments.get(subcommand, []):
            kwargs["weights_only"] = True
        return kwargs

    def before_fit(self) -> None:
        """Refuse a model with fewer classes than the data before any training step."""
        check_num_classes(self.model, self.datamodule)

    def _run_subcommand(self, subcommand: str) -> None:
        with _lightning_errors(self._ckpt_path(), self.model):
            super()._run_subcommand(subcommand)


def check_num_classes(model: Any, datamodule: Any) -> None:
    """Raise when the datamodule names more classes than ``model.hparams.num_classes``.

    Args:
        model: the LightningModule (its ``hparams.num_classes``, when present, is checked).
        datamodule: the LightningDataModule (its ``classes``, when known without loading data).

    Raises:
        S5GeoError: the model cannot predict every class of the data.
    """
    hparams = getattr(model, "hparams", None)
    num_classes = hparams.get("num_classes") if hparams is not None and hasattr(hparams, "get") else None
    classes = _known_classes(datamodule)
    if not isinstance(num_classes, int) or not classes or len(classes) <= num_classes:
        return
    name = type(datamodule).__name__
    raise S5GeoError(
        f"model num_classes={num_classes} but the data ({name}) have {len(classes)} classes "
        f"({', '.join(map(str, classes[:8]))}{', ...' if len(classes) > 8 else ''}); "
        f"set model.init_args.num_classes to {len(classes)}"
    )


def _known_classes(datamodule: Any) -> list[Any] | None:
    """The datamodule's class names, or None when it has none (or they cannot be known yet)."""
    try:
        classes = getattr(datamodule, "classes", None)
    except Exception:  # a property that needs data not set up yet: no check
        return None
    return list(classes) if isinstance(classes, (list, tuple)) and classes else None


@contextmanager
def _lightning_errors(ckpt_path: str | None, model: Any) -> Iterator[None]:
    """Load checkpoints safely during a run and turn known failures into one-line errors."""
    import pickle

    from s5geo.inference.loading import checkpoint_error, safe_checkpoint_loading

    try:
        with safe_checkpoint_loading():
            yield
    except (pickle.UnpicklingError, EOFError) as error:
        raise checkpoint_error(ckpt_path or "checkpoint", error) from error
    except IndexError as error:
        text = str(error)
        if "Target" not in text or "out of bounds" not in text:
            raise
        hparams = getattr(model, "hparams", None)
        num_classes = hparams.get("num_classes") if hparams is not None and hasattr(hparams, "get") else None
        value = text.split("Target", 1)[1].split("is out", 1)[0].strip()
        raise S5GeoError(
            f"a mask holds class {value} but the model has num_classes={num_classes} (classes 0 to "
            f"{num_classes - 1 if isinstance(num_classes, int) else 'K-1'}; 255 is ignored): raise "
            "model.init_args.num_classes or fix the masks"
        ) from error


def check_config_files(argv: Sequence[str]) -> None:
    """Check that the existing YAML files given on a LightningCLI command line parse.

    jsonargparse reports a YAML syntax error as ``"<unicode string>", line 4``; this names the file.

    Raises:
        S5GeoError: a ``--config`` file or ``.yaml``/``.yml`` argument cannot be read or parsed.
    """
    import yaml

    paths: list[str] = []
    args = list(argv)
    for k, arg in enumerate(args):
        option, _, inline = arg.partition("=")
        if option in {"--config", "-c"}:
            value = inline if inline else (args[k + 1] if k + 1 < len(args) else None)
            if value is not None:
                paths.append(value)
        elif arg.lower().endswith((".yaml", ".yml")) and not arg.startswith("-"):
            paths.append(arg)
        elif inline and inline.lower().endswith((".yaml", ".yml")):
            paths.append(inline)
    for value in paths:
        path = Path(value)
        try:
            exists = path.exists()
        except OSError:  # an inline YAML string too long to be a file name
            exists = False
        if not exists:
            continue  # jsonargparse reports a missing --config file; other values may not be files
        if not path.is_file():
            raise S5GeoError(f"config {value!r} is not a file")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise S5GeoError(f"{path}: cannot read config ({error})") from error
        try:
            yaml.safe_load(text)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            problem = getattr(error, "problem", None) or str(error).splitlines()[0]
            raise S5GeoError(f"{path}: YAML syntax error{where}: {problem}") from error


def run_lightning_cli(args: Sequence[str] | ArgsType = None) -> LightningCLI:
    """Run LightningCLI with any LightningModule / LightningDataModule given by ``class_path``.

    Args:
        args: command line, starting with the subcommand (``fit``, ``validate``, ``test``, ``predict``);
            None reads ``sys.argv`` (what DDP's launcher re-runs in the other processes).

    Returns:
        The CLI object (its ``trainer``, ``model`` and ``datamodule`` are set after the run).

    Raises:
        S5GeoError: a bad config file, an unsafe or unreadable checkpoint, or a dataset error that
            jsonargparse wrapped while building the classes.
    """
    argv = list(args) if args is not None else sys.argv[1:]
    check_config_files(argv[1:])
    # Only training runs save their config: evaluation and prediction would otherwise write
    # config.yaml into the working folder (their log dir), replacing a user's file of that name.
    save = {} if argv[:1] == ["fit"] else {"save_config_callback": None}
    try:
        return LightningCLI(
            model_class=LightningModule,
            datamodule_class=LightningDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            seed_everything_default=0,
            save_config_kwargs={"overwrite": True},
            args=list(args) if args is not None else None,
            **save,  # type: ignore[arg-type]
        )
    except S5GeoError:
        raise
    except Exception as error:
        cause = user_error_in_chain(error)
        if cause is None:
            raise
        raise S5GeoError(str(cause)) from error


def user_error_in_chain(error: BaseException) -> S5GeoError | None:
    """Return the first :class:`S5GeoError` among ``error``'s causes and contexts, if any."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, S5GeoError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None
