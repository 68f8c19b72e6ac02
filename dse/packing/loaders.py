"""Ternary Linear layers + scales from real files: HF BitNet checkpoints and GGUF.

Every loader yields ``TernaryLayer``s (name, int8 N x K in {-1, 0, 1}, ``scale``, source) one
at a time, so a 2B model never sits in memory at once. ``scale`` is always the multiplier:
``W_float ~= scale * w``, whatever convention the file used.

HF checkpoints (``config.json`` + ``*.safetensors``):

- float weights (bf16, f16, f32) are ternarized with absmean (``dse.packing.quant``), unless
  they are already ternary and come with a ``weight_scale`` (then that scale is used, with
  the convention below);
- packed uint8 ``weight`` (transformers ``BitLinear``: 4 codes per byte along the OUT dim,
  blocked: byte ``[r, k]`` holds rows ``r + i*P`` (P = packed rows) at bits ``2i``, code
  ``w + 1``) with a per-tensor ``weight_scale``. The scale's meaning depends on the layer
  class, read from ``quantization_config.linear_class``:
  ``bitlinear`` (the default) divides its output by ``weight_scale``, so ``scale = 1 /
  weight_scale``; ``autobitlinear`` (e.g. microsoft/bitnet-b1.58-2B-4T) multiplies, so
  ``scale = weight_scale``.

GGUF files: TQ1_0 / TQ2_0 are decoded bit-exactly with ``dse.packing.schemes``; their block
scales ``d`` become the tensor scale when all nonzero blocks share it (as llama.cpp's BitNet
conversion writes), else the dequantized tensor is re-ternarized (source ``...+reternarized``).
F32 / F16 / BF16 are ternarized on load. Any other type of a Linear weight is a ``DseError``.

Not ternary, hence skipped (reported through ``on_skip``): embeddings, ``lm_head`` /
``output.weight`` (dense in BitNet), anything in ``modules_to_not_convert``, and tensors that
are not 2-D ``.weight`` matrices (norms, biases).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dse.errors import DseError
from dse.packing.quant import ternarize
from dse.packing.schemes import block_scales, unpack_tq1_0, unpack_tq2_0

SkipHook = Callable[[str, str], None]

#: model_type / architectures that are BitNet or the Llama family BitNet checkpoints use.
_BITNET_TYPES = ("bitnet", "llama")
_NOT_TERNARY = "not ternary (embedding / lm_head stay dense in BitNet)"


@dataclass(frozen=True)
class TernaryLayer:
    """One Linear layer: ``W_float ~= scale * w`` with ``w`` int8 (N out x K in)."""

    name: str
    w: np.ndarray
    scale: float
    source: str

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.w.shape[0]), int(self.w.shape[1]))

    @property
    def zero_fraction(self) -> float:
        """Share of zero weights (what bit-plane zero-group skipping could exploit)."""
        return float(np.count_nonzero(self.w == 0) / self.w.size) if self.w.size else 0.0


def _require(module: str, path: Path) -> None:
    """A missing optional dependency is a setup problem the user fixes, not a crash."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise DseError(f"{path}: reading it needs the {module} package: expected it installed "
                       "(pip install 'dse[weights]')")


def _skip(on_skip: SkipHook | None, name: str, reason: str) -> None:
    if on_skip is not None:
        on_skip(name, reason)


def _natural_key(name: str) -> list[object]:
    """Sort ``layers.10`` after ``layers.9``."""
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


def bf16_to_f32(raw: np.ndarray) -> np.ndarray:
    """bfloat16 bit patterns (uint16) to float32: they are the top half of a float32."""
    return (np.asarray(raw, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def _from_float(name: str, w_float: np.ndarray, mult: float | None, source: str
                ) -> TernaryLayer:
    """A float matrix: already ternary with a known multiplier, or ternarized (absmean)."""
    if mult is not None and w_float.size and np.isin(w_float, (-1.0, 0.0, 1.0)).all():
        return TernaryLayer(name, w_float.astype(np.int8), float(mult), source)
    scaled = w_float if mult is None else w_float * np.float32(mult)
    w, scale = ternarize(scaled, name)
    return TernaryLayer(name, w, scale, source)


# -- HF checkpoints --------------------------------------------------------------------------

def hf_pack_weights(w: np.ndarray) -> np.ndarray:
    """transformers ``pack_weights``: int8 (N, K) -> uint8 (ceil(N/4), K), blocked rows."""
    w = np.asarray(w, dtype=np.int8)
    n = w.shape[0]
    p = math.ceil(n / 4)
    codes = np.ones((4 * p, *w.shape[1:]), dtype=np.uint8)
    codes[:n] = w.view(np.uint8) + np.uint8(1)
    out = np.zeros((p, *w.shape[1:]), dtype=np.uint8)
    for i in range(4):
        out |= codes[i * p:(i + 1) * p] << (2 * i)
    return out


def hf_unpack_weights(packed: np.ndarray, name: str = "weights") -> np.ndarray:
    """transformers ``unpack_weights``: uint8 (P, K) -> int8 (4P, K); code 3 is an error."""
    packed = np.asarray(packed, dtype=np.uint8)
    p = packed.shape[0]
    out = np.empty((4, *packed.shape), dtype=np.int8)
    for i in range(4):
        out[i] = ((packed >> (2 * i)) & 3).view(np.int8) - np.int8(1)
    if (out == 2).any():
        raise DseError(f"{name}: packed weight: expected 2-bit codes 0..2, got code 3")
    return out.reshape(4 * p, *packed.shape[1:])


def _read_json(path: Path, what: str) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DseError(f"{path}: expected the {what} of an HF checkpoint, file not found"
                       ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DseError(f"{path}: expected JSON ({what}), got {type(exc).__name__}: {exc}"
                       ) from None
    if not isinstance(data, dict):
        raise DseError(f"{path}: expected a JSON object ({what})")
    return data


def check_bitnet_config(config: dict, path: Path) -> dict:
    """The quantization_config of a BitNet/Llama-like config, else "not a BitNet checkpoint"."""
    model_type = str(config.get("model_type", "")).lower()
    archs = " ".join(str(a) for a in config.get("architectures") or []).lower()
    quant = config.get("quantization_config") or {}
    if not isinstance(quant, dict):
        quant = {}
    if not (model_type in _BITNET_TYPES or any(t in archs for t in _BITNET_TYPES)
            or quant.get("quant_method") == "bitnet"):
        raise DseError(f"{path}: model_type: expected a BitNet or Llama-like config (not a "
                       f"BitNet checkpoint), got {config.get('model_type')!r}")
    return quant


@dataclass(frozen=True)
class _StTensor:
    file: Path
    name: str
    dtype: str
    shape: tuple[int, ...]
    start: int
    stop: int


def _safetensors_index(path: Path) -> dict[str, _StTensor]:
    """Tensor directory of one safetensors file (dtypes, shapes, byte offsets), header only."""
    try:
        with path.open("rb") as fh:
            head = fh.read(8)
            size = int.from_bytes(head, "little") if len(head) == 8 else -1
            header = json.loads(fh.read(size)) if 0 < size < 100_000_000 else None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, ValueError):
        header = None
    if not isinstance(header, dict):
        raise DseError(f"{path}: expected a safetensors file (8-byte length + JSON header)")
    base = 8 + size
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            start, stop = info["data_offsets"]
            shape = tuple(info["shape"])
            out[name] = _StTensor(path, name, str(info["dtype"]), shape,
                                  base + int(start), base + int(stop))
        except (KeyError, TypeError, ValueError):
            raise DseError(f"{path}: tensor {name}: expected dtype, shape and data_offsets "
                           "in the safetensors header") from None
        if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
            raise DseError(f"{path}: tensor {name}: shape: expected sizes >= 0, got "
                           f"{list(shape)}")
    return out


def _read_st(t: _StTensor) -> np.ndarray:
    """One tensor as numpy: bf16 from raw bytes (numpy has no bf16), others via safetensors."""
    if t.dtype == "BF16":
        count = math.prod(t.shape)
        if t.stop - t.start != 2 * count:
            raise DseError(f"{t.file}: tensor {t.name}: expected {2 * count} bytes of bf16, "
                           f"got {t.stop - t.start}")
        raw = np.fromfile(t.file, dtype="<u2", count=count, offset=t.start)
        if raw.size != count:
            raise DseError(f"{t.file}: tensor {t.name}: truncated, expected {2 * count} "
                           f"bytes, got {2 * raw.size}")
        return bf16_to_f32(raw).reshape(t.shape)
    from safetensors import safe_open

    try:
        with safe_open(str(t.file), framework="np") as fh:
            return fh.get_tensor(t.name)
    except Exception as exc:  # safetensors raises its own error types
        raise DseError(f"{t.file}: tensor {t.name}: expected a readable {t.dtype} tensor, "
                       f"got {type(exc).__name__}: {exc}") from None


def _scale_value(t: _StTensor) -> float:
    arr = np.asarray(_read_st(t), dtype=np.float64).ravel()
    if arr.size != 1 or not np.isfinite(arr[0]) or arr[0] == 0:
        raise DseError(f"{t.file}: tensor {t.name}: expected one finite nonzero scale, got "
                       f"{arr[:4].tolist()}")
    return float(arr[0])


def _hf_plan(directory: Path, quant: dict, on_skip: SkipHook | None
             ) -> list[tuple[_StTensor, _StTensor | None]]:
    """Check every tensor up front (errors before any layer is yielded): (weight, scale)."""
    files = sorted(directory.glob("*.safetensors"))
    if not files:
        raise DseError(f"{directory}: expected *.safetensors shards beside config.json, "
                       "found none")
    index: dict[str, _StTensor] = {}
    for f in files:
        index.update(_safetensors_index(f))
    skip_modules = [str(m) for m in quant.get("modules_to_not_convert") or []]
    plan = []
    for name in sorted(index, key=_natural_key):
        t = index[name]
        if name.endswith(".weight_scale"):
            continue
        if not name.endswith(".weight") or len(t.shape) != 2:
            _skip(on_skip, name, f"not a Linear weight ({len(t.shape)}-D {t.dtype})")
            continue
        module = name[: -len(".weight")]
        if "embed" in module or module.split(".")[-1] in ("lm_head", "wte"):
            _skip(on_skip, name, _NOT_TERNARY)
            continue
        _check_matrix(t.file, name, t.shape)
        if any(m and m in module for m in skip_modules):
            _skip(on_skip, name, "not ternary (in quantization_config.modules_to_not_convert)")
            continue
        scale = index.get(module + ".weight_scale")
        if t.dtype == "U8" and scale is None:
            raise DseError(f"{t.file}: tensor {name}: expected {module}.weight_scale beside a "
                           "packed uint8 BitLinear weight, not found")
        if t.dtype not in ("U8", "BF16", "F16", "F32"):
            raise DseError(f"{t.file}: tensor {name}: dtype: expected U8 (packed), BF16, F16 "
                           f"or F32, got {t.dtype}")
        plan.append((t, scale))
    return plan


def _check_matrix(path: Path, name: str, shape: tuple[int, ...]) -> None:
    """A Linear weight has at least one row and one column (an empty one is a broken file)."""
    if min(shape) < 1:
        raise DseError(f"{path}: tensor {name}: shape: expected a Linear weight with at least "
                       f"one row and one column, got {list(shape)}")


def load_hf_checkpoint(directory: str | Path, on_skip: SkipHook | None = None
                       ) -> Iterator[TernaryLayer]:
    """Ternary Linear layers of an HF BitNet checkpoint directory, in natural name order.

    ``on_skip(name, reason)`` hears about every tensor that is not a ternary Linear weight.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise DseError(f"{directory}: expected an HF checkpoint directory")
    _require("safetensors", directory)
    config_path = directory / "config.json"
    quant = check_bitnet_config(_read_json(config_path, "config.json"), config_path)
    linear_class = str(quant.get("linear_class", "bitlinear")).lower()
    if linear_class not in ("bitlinear", "autobitlinear"):
        raise DseError(f"{config_path}: quantization_config.linear_class: expected bitlinear "
                       f"or autobitlinear, got {linear_class!r}")
    plan = _hf_plan(directory, quant, on_skip)
    return _hf_layers(plan, linear_class)


def _hf_layers(plan: list[tuple[_StTensor, _StTensor | None]], linear_class: str
               ) -> Iterator[TernaryLayer]:
    for t, scale_t in plan:
        name = t.name[: -len(".weight")]
        mult = None
        if scale_t is not None:
            ws = _scale_value(scale_t)
            mult = ws if linear_class == "autobitlinear" else 1.0 / ws
        data = _read_st(t)
        if t.dtype == "U8":
            w = hf_unpack_weights(data, f"{t.file}: tensor {t.name}")
            yield TernaryLayer(name, w, float(mult), f"hf-packed-{linear_class}")
        else:
            yield _from_float(name, np.asarray(data, dtype=np.float32), mult,
                              f"hf-{t.dtype.lower()}")


# -- GGUF ------------------------------------------------------------------------------------

_GGUF_DENSE = ("token_embd.weight", "output.weight")


def _gguf_tq(name: str, scheme: str, data: np.ndarray, n: int, k: int, where: str
             ) -> TernaryLayer:
    unpacker = unpack_tq1_0 if scheme == "tq1_0" else unpack_tq2_0
    w = unpacker(data, n, k, name=where)
    d = block_scales(scheme, data, n, k, name=where)
    used = d[d != 0]
    if used.size == 0:
        return TernaryLayer(name, w, 0.0, f"gguf-{scheme}")
    if (used == used[0]).all():
        return TernaryLayer(name, w, float(used[0]), f"gguf-{scheme}")
    dense = np.repeat(d, 256, axis=1)[:, :k] * w
    wt, scale = ternarize(dense, where)
    return TernaryLayer(name, wt, scale, f"gguf-{scheme}+reternarized")


def load_gguf(path: str | Path, on_skip: SkipHook | None = None) -> Iterator[TernaryLayer]:
    """Ternary Linear layers of a GGUF file (TQ1_0, TQ2_0, F32, F16, BF16), in file order."""
    path = Path(path)
    if not path.is_file():
        raise DseError(f"{path}: expected a GGUF file, not found")
    _require("gguf", path)
    from gguf import GGMLQuantizationType as Q
    from gguf import GGUFReader

    try:
        reader = GGUFReader(str(path))
    except Exception as exc:  # the reader raises ValueError, struct errors, ...
        raise DseError(f"{path}: expected a readable GGUF file, got {type(exc).__name__}: "
                       f"{exc}") from None
    kinds = {Q.TQ1_0: "tq1_0", Q.TQ2_0: "tq2_0", Q.F32: "f32", Q.F16: "f16", Q.BF16: "bf16"}
    plan = []
    for t in reader.tensors:
        dims = [int(x) for x in t.shape]
        if not t.name.endswith(".weight") or len(dims) != 2:
            _skip(on_skip, t.name, f"not a Linear weight ({len(dims)}-D {t.tensor_type.name})")
            continue
        if t.name in _GGUF_DENSE:
            _skip(on_skip, t.name, _NOT_TERNARY)
            continue
        if t.tensor_type not in kinds:
            raise DseError(f"{path}: tensor {t.name}: type: expected TQ1_0, TQ2_0, F32, F16 or "
                           f"BF16, got {t.tensor_type.name}")
        _check_matrix(path, t.name, tuple(reversed(dims)))
        plan.append(t)
    return _gguf_layers(path, plan, kinds)


def _gguf_layers(path: Path, plan: list, kinds: dict) -> Iterator[TernaryLayer]:
    for t in plan:
        k, n = (int(x) for x in t.shape)  # GGUF lists ne0 (K, contiguous) first
        kind = kinds[t.tensor_type]
        name = t.name[: -len(".weight")]
        where = f"{path}: tensor {t.name}"
        if kind in ("tq1_0", "tq2_0"):
            yield _gguf_tq(name, kind, np.asarray(t.data), n, k, where)
            continue
        if kind == "bf16":
            dense = bf16_to_f32(np.asarray(t.data).view("<u2")).reshape(n, k)
        else:
            dense = np.asarray(t.data, dtype=np.float32).reshape(n, k)
        yield _from_float(name, dense, None, f"gguf-{kind}")


def load_weights(path: str | Path, on_skip: SkipHook | None = None) -> Iterator[TernaryLayer]:
    """Either loader: a directory is an HF checkpoint, a ``.gguf`` file a GGUF."""
    p = Path(path)
    if p.is_dir():
        return load_hf_checkpoint(p, on_skip)
    if p.suffix.lower() == ".gguf":
        return load_gguf(p, on_skip)
    raise DseError(f"{p}: expected an HF checkpoint directory or a .gguf file")
