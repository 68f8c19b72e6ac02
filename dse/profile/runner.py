"""Load a BitNet model (checkpoint folder or preset) and run one measured greedy generation.

The loop is written out by hand (one prefill forward over the prompt, then one forward per
generated token on the KV cache) rather than calling ``generate``: that way each phase and
each token is timed exactly, with nothing of ``generate``'s bookkeeping in between, and the
timed modules see exactly one prefill call and one call per decode step. Warm-up runs (same
prompt, a few tokens) go first and are not recorded, so one-off costs (oneDNN primitive
creation, allocator growth, the seed's 4969 ms first q_proj call) stay out of the numbers.

Tokens: ``gen_tokens`` = N decode steps, each producing one token and timed as one Token, as
in the seed (50 tokens, 51 calls per Linear: 1 prefill + 50 decode). The prefill forward also
yields a token (the first decode step's input); it is part of the prefill phase and noted in
the provenance. Nothing is downloaded: presets are built from configs, checkpoints are read
with ``local_files_only``, and the hub is switched to offline mode.

``check_options`` validates everything it can without torch (paths, config.json, preset
names, token counts against the context), so bad input fails in milliseconds with one line.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dse.errors import DseError
from dse.profile.hooks import RawTrace
from dse.profile.presets import check_preset

DTYPES = ("float32", "bfloat16")
DEFAULT_PROMPT_TOKENS = 32
DEFAULT_GEN_TOKENS = 32
#: Decode steps of each warm-up run: enough to build the decode-shaped kernels and cache.
WARMUP_DECODE_STEPS = 3
_WEIGHT_GLOBS = ("*.safetensors", "pytorch_model*.bin")
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json")


@dataclass(frozen=True)
class RunOptions:
    """What ``dse profile`` was asked to run."""

    model: Path | None = None
    preset: str | None = None
    dtype: str = "float32"
    threads: int | None = None
    prompt: str | None = None
    prompt_tokens: int | None = None
    gen_tokens: int = DEFAULT_GEN_TOKENS
    warmup: int = 1
    memory_interval_s: float = 0.25
    seed: int = 0
    progress: bool = True


@dataclass(frozen=True)
class Source:
    """The model to run, as far as it is known before loading it."""

    label: str
    max_positions: int
    tokenizer_dir: Path | None
    quantization: str | None = None


@dataclass
class RunData:
    """Everything one measured run produced (raw; ``dse.profile.assemble`` makes a Profile)."""

    source: Source
    dtype: str
    threads: int
    phases_ms: dict[str, float] = field(default_factory=dict)
    phase_mem_mb: dict[str, float | None] = field(default_factory=dict)
    trace: RawTrace = field(default_factory=RawTrace)
    prompt_len: int = 0
    synthesized_prompt: bool = False
    prefill_token: tuple[int, str] | None = None
    token_ids: list[int] = field(default_factory=list)
    token_texts: list[str] = field(default_factory=list)
    token_ms: list[float] = field(default_factory=list)
    token_mem_mb: list[float] = field(default_factory=list)
    memory: tuple = ()
    peak_rss_mb: float | None = None
    model_bytes: int = 0
    #: The config fields the operator list is built from (``dse.model.arch``).
    model_config: dict[str, Any] | None = None
    versions: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


# -- validation (no torch) -----------------------------------------------------------------------

def _positive(option: str, value: int | None, *, zero_ok: bool = False) -> None:
    low = 0 if zero_ok else 1
    if value is not None and value < low:
        raise DseError(f"{option}: expected an integer >= {low}, got {value}")


#: Config fields a profile keeps (what ``dse.model.arch.config_from_mapping`` reads).
CONFIG_FIELDS = ("model_type", "hidden_size", "intermediate_size", "num_hidden_layers",
                 "num_attention_heads", "num_key_value_heads", "vocab_size", "hidden_act",
                 "tie_word_embeddings", "max_position_embeddings")


def config_fields(config: Any) -> dict[str, Any]:
    """The fields of a transformers config that size the model's operators."""
    out = {k: getattr(config, k) for k in CONFIG_FIELDS if getattr(config, k, None) is not None}
    out["_name_or_path"] = str(getattr(config, "name_or_path", "") or "")
    return out


def _read_config(model: Path) -> dict[str, Any]:
    if not model.exists():
        raise DseError(f"--model {model}: no such folder")
    if not model.is_dir():
        raise DseError(f"--model {model}: expected a checkpoint folder (with config.json), "
                       f"got a file")
    cfg = model / "config.json"
    if not cfg.exists():
        raise DseError(f"--model {model}: expected a BitNet checkpoint folder, but it has no "
                       f"config.json")
    from dse.io import load_json

    data = load_json(cfg, "model config")
    if not isinstance(data, dict):
        raise DseError(f"{cfg}: expected a JSON object, got {type(data).__name__}")
    return data


def checkpoint_source(model: Path) -> Source:
    """Check a checkpoint folder is a BitNet one with weights; read its context length."""
    data = _read_config(model)
    cfg = model / "config.json"
    kind = data.get("model_type")
    if kind != "bitnet":
        raise DseError(f"{cfg}: model_type: expected 'bitnet' (a BitNet b1.58 checkpoint for "
                       f"transformers' BitNetForCausalLM), got {kind!r}")
    quant = data.get("quantization_config")
    label = None
    if quant is not None:
        method = quant.get("quant_method") if isinstance(quant, dict) else None
        if method != "bitnet":
            raise DseError(f"{cfg}: quantization_config.quant_method: expected 'bitnet' (packed "
                           f"ternary) or no quantization_config (bf16), got {method!r}")
        label = (f"bitnet ({quant.get('linear_class', 'bitlinear')}, "
                 f"{quant.get('quantization_mode', 'offline')})")
    if not any(next(model.glob(g), None) for g in _WEIGHT_GLOBS):
        raise DseError(f"--model {model}: expected weights (*.safetensors or "
                       f"pytorch_model*.bin), found none")
    max_pos = data.get("max_position_embeddings", 2048)
    if not isinstance(max_pos, int) or max_pos < 1:
        raise DseError(f"{cfg}: max_position_embeddings: expected an integer >= 1, "
                       f"got {max_pos!r}")
    has_tok = any((model / f).exists() for f in _TOKENIZER_FILES)
    return Source(label=str(model), max_positions=max_pos,
                  tokenizer_dir=model if has_tok else None, quantization=label)


def check_options(opts: RunOptions) -> Source:
    """Validate the options (before any heavy import); the model source they name."""
    if (opts.model is None) == (opts.preset is None):
        raise DseError("--model/--preset: expected exactly one of them")
    if opts.dtype not in DTYPES:
        raise DseError(f"--dtype: expected one of {', '.join(DTYPES)}, got {opts.dtype!r}")
    _positive("--gen-tokens", opts.gen_tokens)
    _positive("--prompt-tokens", opts.prompt_tokens)
    _positive("--threads", opts.threads)
    _positive("--warmup", opts.warmup, zero_ok=True)
    if opts.prompt is not None and opts.prompt_tokens is not None:
        raise DseError("--prompt/--prompt-tokens: expected at most one of them")
    if opts.prompt is not None and not opts.prompt.strip():
        raise DseError("--prompt: expected some text, got an empty prompt")
    if opts.preset is not None:
        fields = check_preset(opts.preset)
        source = Source(label=f"preset:{opts.preset}",
                        max_positions=int(fields["max_position_embeddings"]), tokenizer_dir=None)
    else:
        assert opts.model is not None
        source = checkpoint_source(opts.model)
    if opts.prompt is not None and source.tokenizer_dir is None:
        where = "presets have none" if opts.preset else f"{opts.model} has none"
        raise DseError(f"--prompt: needs a tokenizer in the model folder ({where}); use "
                       f"--prompt-tokens N for synthesized prompt ids")
    n_prompt = opts.prompt_tokens or (None if opts.prompt else DEFAULT_PROMPT_TOKENS)
    if n_prompt is not None:
        check_context(source, n_prompt, opts.gen_tokens)
    return source


def check_context(source: Source, prompt_len: int, gen_tokens: int) -> None:
    """Prompt + generated tokens must fit the model's context."""
    if prompt_len < 1:
        raise DseError("--prompt: expected at least one token after tokenization, got 0")
    if prompt_len + gen_tokens > source.max_positions:
        raise DseError(f"--prompt-tokens/--gen-tokens: expected prompt + generated tokens <= "
                       f"{source.max_positions} (max_position_embeddings of {source.label}), "
                       f"got {prompt_len} + {gen_tokens} = {prompt_len + gen_tokens}")


# -- the run (torch) -----------------------------------------------------------------------------

def prepare_environment() -> None:
    """Environment for a reproducible offline CPU run; call before importing torch.

    ``TORCHDYNAMO_DISABLE``: transformers' BitLinear helpers are ``torch.compile``d, and the
    first call would compile with g++ for 15-18 s (inside a timed module call). The user's own
    setting wins.
    """
    os.environ.setdefault("TORCHDYNAMO_DISABLE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _bar(opts: RunOptions, **kw: Any):
    from tqdm import tqdm

    return tqdm(file=sys.stderr, disable=not opts.progress or None, leave=False, **kw)


def load_model(opts: RunOptions, source: Source, torch_dtype: Any) -> Any:
    """The model in eval mode, from a checkpoint folder or built from a preset."""
    if opts.preset is not None:
        from dse.profile.presets import build_preset

        with _bar(opts, desc=f"build {opts.preset}", unit="tensor") as bar:
            return build_preset(opts.preset, torch_dtype, opts.seed, progress=bar.update)
    from transformers import BitNetForCausalLM
    from transformers.utils import logging as hf_logging

    if not opts.progress:
        hf_logging.disable_progress_bar()
    with _bar(opts, desc=f"load {opts.model}", total=1, unit="model") as bar:
        try:
            model = BitNetForCausalLM.from_pretrained(str(opts.model), dtype=torch_dtype,
                                                      local_files_only=True)
        except ImportError as exc:
            raise DseError(f"--model {opts.model}: loading needs a missing package "
                           f"({str(exc).splitlines()[0]})") from None
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise DseError(f"--model {opts.model}: expected a loadable BitNet checkpoint "
                           f"({first})") from None
        bar.update()
    return model.eval()


def cache_factory(model: Any):
    """A fresh KV cache and the forward keyword it goes in (``cache`` in transformers >= 5.x
    late releases, ``past_key_values`` before)."""
    import inspect

    from transformers import DynamicCache

    params = inspect.signature(model.forward).parameters
    key = "cache" if "cache" in params else "past_key_values"

    def new() -> Any:
        try:
            return DynamicCache(config=model.config)
        except TypeError:
            return DynamicCache()

    return key, new


def greedy_step(model: Any, ids: Any, cache_key: str, cache: Any) -> Any:
    """One forward; the argmax token as a (1, 1) tensor. Only the last position's logits are
    computed (``logits_to_keep=1``), as ``generate`` does."""
    out = model(input_ids=ids, use_cache=True, logits_to_keep=1, **{cache_key: cache})
    return out.logits[:, -1, :].argmax(-1, keepdim=True)


def synthesize_prompt(vocab_size: int, n: int, seed: int) -> list[int]:
    """``n`` deterministic pseudo-random ids, avoiding the lowest ids (often special tokens)."""
    import random

    rng = random.Random(seed)
    low = min(3, vocab_size - 1)
    return [rng.randrange(low, vocab_size) for _ in range(n)]


def run(opts: RunOptions, source: Source) -> RunData:
    """Load, warm up, and measure one greedy generation; returns the raw data."""
    prepare_environment()
    import torch

    # Imported before the clock starts, so model_load times loading, not Python imports.
    from transformers import BitNetForCausalLM  # noqa: F401

    from dse.profile.hooks import CallRecorder
    from dse.profile.memory import MemorySampler, phase_delta_mb

    threads = opts.threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    torch.manual_seed(opts.seed)
    torch_dtype = getattr(torch, opts.dtype)
    data = RunData(source=source, dtype=str(torch_dtype), threads=threads)
    pc = time.perf_counter_ns
    with MemorySampler(opts.memory_interval_s) as mem:
        tokenizer = None
        if source.tokenizer_dir is not None:
            from transformers import AutoTokenizer

            mem.mark("tokenizer_load:start")
            t0 = pc()
            tokenizer = AutoTokenizer.from_pretrained(str(source.tokenizer_dir),
                                                      local_files_only=True)
            data.phases_ms["tokenizer_load"] = (pc() - t0) / 1e6
            mem.mark("tokenizer_load:end")
        if opts.prompt is not None:
            assert tokenizer is not None
            mem.mark("encode:start")
            t0 = pc()
            prompt_ids = list(tokenizer(opts.prompt)["input_ids"])
            data.phases_ms["encode"] = (pc() - t0) / 1e6
            mem.mark("encode:end")
            check_context(source, len(prompt_ids), opts.gen_tokens)
        mem.mark("model_load:start")
        t0 = pc()
        model = load_model(opts, source, torch_dtype)
        data.phases_ms["model_load"] = (pc() - t0) / 1e6
        mem.mark("model_load:end")
        if opts.prompt is None:
            n = opts.prompt_tokens or DEFAULT_PROMPT_TOKENS
            prompt_ids = synthesize_prompt(int(model.config.vocab_size), n, opts.seed)
            data.synthesized_prompt = True
        data.prompt_len = len(prompt_ids)
        data.model_bytes = model_bytes(model)
        data.model_config = config_fields(model.config)
        ids = torch.tensor([prompt_ids], dtype=torch.long)
        cache_key, new_cache = cache_factory(model)
        recorder = CallRecorder(model)
        with torch.inference_mode():
            for _ in range(opts.warmup):
                cache = new_cache()
                nxt = greedy_step(model, ids, cache_key, cache)
                for _ in range(min(opts.gen_tokens, WARMUP_DECODE_STEPS)):
                    nxt = greedy_step(model, nxt, cache_key, cache)
            cache = new_cache()
            recorder.attach()
            try:
                mem.mark("prefill:start")
                recorder.mark("prefill")
                t0 = pc()
                nxt = greedy_step(model, ids, cache_key, cache)
                first = int(nxt.item())
                data.phases_ms["prefill"] = (pc() - t0) / 1e6
                mem.mark("prefill:end")
                recorder.mark("decode")
                mem.mark("decode:start")
                with _bar(opts, desc="generate", total=opts.gen_tokens, unit="tok") as bar:
                    t_dec = pc()
                    for _ in range(opts.gen_tokens):
                        t1 = pc()
                        nxt = greedy_step(model, nxt, cache_key, cache)
                        tok = int(nxt.item())
                        t2 = pc()
                        data.token_ms.append((t2 - t1) / 1e6)
                        data.token_ids.append(tok)
                        data.token_mem_mb.append(mem.last_rss_mb)
                        bar.update()
                    data.phases_ms["decode"] = (pc() - t_dec) / 1e6
                mem.mark("decode:end")
            finally:
                recorder.detach()
        if tokenizer is not None:
            mem.mark("detokenize:start")
            t0 = pc()
            tokenizer.decode([first, *data.token_ids])
            data.phases_ms["detokenize"] = (pc() - t0) / 1e6
            mem.mark("detokenize:end")
            data.token_texts = [tokenizer.decode([t]) for t in data.token_ids]
            data.prefill_token = (first, tokenizer.decode([first]))
        else:
            data.token_texts = [""] * len(data.token_ids)
            data.prefill_token = (first, "")
    data.trace = recorder.trace
    data.phase_mem_mb = {p: phase_delta_mb(mem.marks, p) for p in data.phases_ms}
    data.memory = mem.samples
    data.peak_rss_mb = mem.peak_rss_mb()
    data.versions = versions()
    data.notes = _notes(opts, data, model)
    return data


def model_bytes(model: Any) -> int:
    """Bytes of the model's parameters and buffers, each storage counted once (tied weights)."""
    seen: set[int] = set()
    total = 0
    for t in (*model.parameters(), *model.buffers()):
        key = t.untyped_storage().data_ptr()
        if key in seen:
            continue
        seen.add(key)
        total += t.untyped_storage().nbytes()
    return total


def versions() -> dict[str, str]:
    import platform

    import torch
    import transformers

    from dse import __version__

    return {"dse": __version__, "torch": torch.__version__,
            "transformers": transformers.__version__, "python": platform.python_version()}


def _notes(opts: RunOptions, data: RunData, model: Any) -> list[str]:
    notes = [
        f"{opts.warmup} warm-up run(s) (prefill + up to {WARMUP_DECODE_STEPS} decode steps) "
        f"before the measured run, not recorded",
        f"greedy decoding with KV cache: 1 prefill forward over {data.prompt_len} prompt "
        f"tokens, then {opts.gen_tokens} decode forwards of one token each; the prefill's "
        f"argmax (token id {data.prefill_token[0] if data.prefill_token else '?'}) is the "
        f"first decode input and belongs to the prefill phase",
        "Attention modules are timed exclusive of their projections and sub-norm (the "
        "attention core: rotary, KV-cache update, softmax(QK^T)V); every other module "
        "inclusive",
        f"torch threads: {data.threads}; TORCHDYNAMO_DISABLE="
        f"{os.environ.get('TORCHDYNAMO_DISABLE', '')}",
    ]
    if data.synthesized_prompt:
        why = "a preset has no tokenizer" if opts.preset else "--prompt-tokens was given"
        notes.insert(0, f"prompt: {data.prompt_len} synthesized token ids ({why}); token "
                        f"texts are empty")
    if opts.preset is not None:
        notes.insert(0, f"preset {opts.preset}: config only, random weights (plain "
                        f"nn.Linear, no ternary kernels); shapes and timings are what matter")
    if data.source.quantization:
        cls = sorted({type(m).__name__ for m in model.modules()
                      if "BitLinear" in type(m).__name__})
        notes.append(f"quantization_config: {data.source.quantization}; Linear layers run as "
                     f"{', '.join(cls) or 'nn.Linear'}")
    return notes


__all__ = ["DEFAULT_GEN_TOKENS", "DEFAULT_PROMPT_TOKENS", "DTYPES", "RunData", "RunOptions",
           "Source", "cache_factory", "check_context", "check_options", "checkpoint_source",
           "greedy_step", "load_model", "model_bytes", "prepare_environment", "run",
           "synthesize_prompt", "versions"]
