"""The model a command prices: ``--model NAME|config.json|DIR`` and ``--profile P.json``.

Not a sub-command. The operators and Linear shapes come from the model's config (a preset of
``dse/data/models.yaml``, a config.json, or a checkpoint folder's config.json); a profile, when
given, adds what it measured on its host (and so the ``torch`` runtime, which moves measured
times). Neither imports torch or transformers. With neither option the embedded BitNet-2B-4T
profile is used, as before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

from dse.errors import DseError
from dse.model.arch import ModelConfig, config_from_mapping, preset_config
from dse.model.workload import Workload, with_config, workload_from_config, workload_from_profile
from dse.profile.format import Profile

MODEL_HELP = ("model to price: a preset name (see `dse matrix --list`), a config.json, or a "
              "checkpoint folder with one (a folder named like a preset, holding a "
              "config.json, is read instead of the preset); its config gives the operators "
              "and Linear shapes (no torch needed). With --profile too, the profile adds "
              "measured host times")


@dataclass(frozen=True)
class ModelInput:
    """What a command prices, and where it came from."""

    workload: Workload
    #: The profile given (or the embedded one), None for a model config alone.
    profile: Profile | None
    #: File stem for default report names.
    stem: str
    #: What the run priced, for the summary and the JSON ("profile: ...").
    source: str
    #: Files the run reads, which no output may overwrite.
    inputs: tuple[Path, ...]
    #: The report the profile was written with or imported from (``Profile.report``,
    #: resolved beside the profile JSON), where its sections go by default; None if unknown.
    report: Path | None = None


def linked_report(profile: Profile | None, profile_path: Path | None) -> Path | None:
    """The report a profile JSON names (relative to the JSON's folder), if it names one."""
    if profile is None or profile_path is None or not profile.report:
        return None
    import os

    return Path(os.path.normpath(profile_path.parent / profile.report))


def preset_names() -> tuple[str, ...]:
    from dse.profile.presets import PRESETS

    return tuple(PRESETS)


def _preset_named(name: str) -> str | None:
    """The preset a name or a Hugging Face repo id names (case-insensitive)."""
    from dse.profile.presets import model_table

    low = name.lower()
    for preset, entry in model_table().items():
        repo = str(entry.get("repo") or "").lower()
        if low == preset.lower() or (repo and low == repo):
            return preset
    return None


def model_config(option: str) -> tuple[ModelConfig, Path | None]:
    """The config ``--model`` names, and the file it was read from (None for a preset)."""
    if not option.strip():
        raise DseError(f"--model: expected a preset name ({', '.join(preset_names())}), a "
                       f"config.json or a checkpoint folder, got {option!r}")
    if option == "all":
        raise DseError("--model all: expected one model (a preset, a config.json or a "
                       "folder); `dse matrix` searches every preset on every board")
    path = Path(option)
    preset = _preset_named(option)
    # a checkpoint folder of that name beside the user wins over the preset, as it does in
    # transformers' from_pretrained: its config may be the user's own variant
    if preset is not None and not (path.is_dir() and (path / "config.json").is_file()):
        return preset_config(preset), None
    if path.is_dir():
        path = path / "config.json"
        if not path.is_file():
            raise DseError(f"--model {option}: expected a checkpoint folder with a config.json, "
                           f"found none")
    elif not path.exists():
        raise DseError(f"--model: expected a preset name ({', '.join(preset_names())}), a "
                       f"config.json or a checkpoint folder, got {option!r} (no such preset "
                       f"or file)")
    from dse.io import load_json

    cfg = config_from_mapping(load_json(path, "model config"), str(path))
    if cfg.name in (cfg.model_type, ""):
        stem = path.parent.name if path.name == "config.json" else path.stem
        cfg = replace(cfg, name=stem or cfg.name)
    return cfg, path


def slug(name: str) -> str:
    """A file-name stem for a model name (``1bitLLM/bitnet_b1_58-large`` -> the last part)."""
    last = name.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", last).strip("-.") or "model"


def load_model_input(model: str | None, profile_path: Path | None) -> ModelInput:
    """Resolve ``--model`` and ``--profile`` into the workload a command prices."""
    from dse.commands.common import load_profile_option, profile_inputs

    if model is None:
        profile, stem, source = load_profile_option(profile_path)
        return ModelInput(workload_from_profile(profile, source), profile, stem, source,
                          tuple(profile_inputs(profile_path)),
                          linked_report(profile, profile_path))
    cfg, cfg_path = model_config(model)
    inputs = () if cfg_path is None else (cfg_path,)
    if profile_path is None:
        where = "preset" if cfg_path is None else str(cfg_path)
        return ModelInput(workload_from_config(cfg), None, slug(cfg.name),
                          f"none; model {cfg.name} from its config ({where})", inputs)
    profile, stem, source = load_profile_option(profile_path)
    wl = with_config(workload_from_profile(profile, source), cfg,
                     f"--model {model} (against --profile {profile_path})")
    where = "preset" if cfg_path is None else str(cfg_path)
    return ModelInput(wl, profile, stem, f"{source}; model {cfg.name} from its config "
                      f"({where})", (*inputs, profile_path), linked_report(profile, profile_path))


def runtimes_for(wl: Workload, asked: tuple[str, ...], option: str) -> tuple[str, ...]:
    """The PS runtimes a search may use: those asked for that the workload can price. Asking
    for ``torch`` alone without a profile is a one-line error (it would be a guess)."""
    usable = tuple(r for r in asked if r in wl.runtimes)
    if not usable:
        raise DseError(f"--runtime {option}: expected {' or '.join(wl.runtimes)} for a model "
                       f"without a profile (the torch runtime moves measured host times; give "
                       f"--profile to price it)")
    return usable


def not_measured(wl: Workload) -> tuple[str, ...]:
    """The runtimes the workload lists as not measured (torch without a profile)."""
    from dse.model.cpu import RUNTIMES

    return tuple(r for r in RUNTIMES if r not in wl.runtimes)


__all__ = ["MODEL_HELP", "ModelInput", "load_model_input", "model_config", "not_measured",
           "runtimes_for", "slug"]
