"""Known BitNet model shapes, built with random weights so profiling needs no download.

Timings depend on shapes, dtype and the kernels, not on the weight values, so a preset model
with cheap random weights measures what the real checkpoint would (the packed-ternary kernels
aside, which need ``--model``). The configs are plain dicts so that ``dse profile`` can reject
an unknown preset before importing torch; ``build_preset`` imports torch and transformers.

Building goes through the ``meta`` device and ``to_empty()``: transformers' default init
draws ~2.4 G normal samples for 2B-4T (tens of seconds); ``fill_weights_`` instead tiles one
small seeded random block over every tensor at memcpy speed, which is deterministic and keeps
activations finite through the RMS-normed stack.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from dse.errors import DseError

if TYPE_CHECKING:
    import torch

#: The table of published BitNet models, each a config.json's fields with its source:
#: ``dse/data/models.yaml`` (the one home of the presets; dse.model.arch reads the same).
MODELS_FILE = "models.yaml"


@lru_cache(maxsize=1)
def model_table() -> dict[str, dict[str, Any]]:
    """name -> {repo, source, config, test_only} from the shipped table (read once)."""
    from dse.io import parse_yaml
    from dse.profile.default import data_file

    # dse.io's parser: libyaml's where the wheel has it (the pure-Python one took ~15 ms)
    data = parse_yaml(data_file(MODELS_FILE).read_text(encoding="utf-8"),
                      f"dse/data/{MODELS_FILE}")
    return {name: dict(entry) for name, entry in data["models"].items()}


#: Each preset's config.json fields (plain dicts, so that ``dse profile`` can reject an
#: unknown preset before importing torch).
PRESETS: dict[str, dict[str, Any]] = {name: dict(entry["config"])
                                      for name, entry in model_table().items()}
#: The presets of published models (every one but the test model).
PUBLISHED: tuple[str, ...] = tuple(name for name, entry in model_table().items()
                                   if not entry.get("test_only"))
#: The fields of a preset that transformers' BitNetConfig takes when ``dse profile`` builds
#: the model (the architecture keys are dse's to read, not the class's).
_BUILD_FIELDS = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                 "num_key_value_heads", "vocab_size", "hidden_act", "rope_theta", "rms_norm_eps",
                 "max_position_embeddings", "tie_word_embeddings", "bos_token_id",
                 "eos_token_id", "head_dim")


def preset_source(name: str) -> str:
    """Where a preset's config was read (its published config.json)."""
    return str(model_table()[name]["source"])


#: Size of the random block tiled over every weight; odd, so it does not line up with rows.
_BLOCK = 65_521


def check_preset(name: str) -> dict[str, Any]:
    """The preset's config fields; a ``DseError`` naming the known presets if there is none."""
    if name not in PRESETS:
        raise DseError(f"--preset: expected one of {', '.join(PRESETS)}, got {name!r}")
    return dict(PRESETS[name])


def max_positions(name: str) -> int:
    """The preset's context length (prompt + generated tokens must fit)."""
    return int(check_preset(name)["max_position_embeddings"])


def preset_config(name: str):
    """The transformers ``BitNetConfig`` of a preset."""
    from transformers import BitNetConfig

    fields = {k: v for k, v in check_preset(name).items() if k in _BUILD_FIELDS}
    if fields.get("head_dim") == fields["hidden_size"] // fields["num_attention_heads"]:
        fields.pop("head_dim")
    theta = fields.pop("rope_theta")
    config = BitNetConfig(**fields)
    # transformers 5 keeps rope_theta in rope_parameters; 4.x reads the attribute.
    if isinstance(getattr(config, "rope_parameters", None), dict):
        config.rope_parameters["rope_theta"] = theta
    else:
        config.rope_theta = theta
    config.name_or_path = f"preset:{name}"
    return config


def fill_weights_(model: torch.nn.Module, seed: int = 0,
                  progress: Callable[[int], object] | None = None) -> None:
    """Give every parameter cheap deterministic values (in place).

    Norm weights (1-D, named ``*norm*``) are ones, as at init. Other tensors get a seeded
    uniform block of ``_BLOCK`` values scaled by 1/sqrt(fan-in), tiled: copies, not a random
    draw per element, so 2B-4T fills in seconds instead of tens. ``progress(1)`` is called
    after each tensor (a progress bar's ``update``).
    """
    import torch

    gen = torch.Generator().manual_seed(seed)
    block = torch.rand(_BLOCK, generator=gen, dtype=torch.float32) * 2 - 1
    with torch.no_grad():
        for name, p in model.named_parameters(recurse=True):
            if p.dim() == 1 and "norm" in name:
                p.fill_(1.0)
            else:
                scale = 1.0 / max(1, p.shape[-1]) ** 0.5
                _tile_(p.view(-1), (block * scale).to(p.dtype))
            if progress is not None:
                progress(1)
        for name, b in model.named_buffers(recurse=True):
            if "inv_freq" in name:
                continue
            if b.is_floating_point() and not torch.isfinite(b).all():
                b.zero_()


def _tile_(flat: torch.Tensor, block: torch.Tensor) -> None:
    """Fill ``flat`` with repeats of ``block`` by doubling: log2(n) large copies, not n/len
    small ones (per-copy overhead dominated the many-small-copies version: ~20 s for 2B-4T)."""
    total = flat.numel()
    n = min(total, block.numel())
    flat[:n].copy_(block[:n])
    while n < total:
        step = min(n, total - n)
        flat[n:n + step].copy_(flat[:step])
        n += step


def build_preset(name: str, dtype: torch.dtype, seed: int = 0,
                 progress: Callable[[int], object] | None = None) -> torch.nn.Module:
    """A ``BitNetForCausalLM`` of the preset's shapes with random weights, in eval mode."""
    import torch
    from transformers import BitNetForCausalLM

    config = preset_config(name)
    with torch.device("meta"):
        model = BitNetForCausalLM(config)
    model = model.to(dtype=dtype).to_empty(device="cpu")
    # to_empty() gives tied modules separate storage; tie again, then fill once.
    if config.tie_word_embeddings:
        model.lm_head.weight = model.model.embed_tokens.weight
    _reset_rotary(model)
    fill_weights_(model, seed, progress)
    return model.eval()


def _reset_rotary(model: torch.nn.Module) -> None:
    """Rebuild the rotary embeddings on the CPU: ``to_empty()`` left their ``inv_freq`` buffers
    uninitialised, and a fresh module computes them as the model's own code does."""
    for name, module in list(model.named_modules()):
        if hasattr(module, "inv_freq") and hasattr(module, "config"):
            model.set_submodule(name, type(module)(config=module.config))


__all__ = ["PRESETS", "PUBLISHED", "build_preset", "check_preset", "fill_weights_",
           "max_positions", "model_table", "preset_config", "preset_source"]
