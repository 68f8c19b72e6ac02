"""Operators of a decoder forward, as data, with their FLOPs and bytes.

The unit of the workload is the operator, as in LLM-Viewer and GenZ: one record per operator
class of a decoder block (counted once per layer) and of the stem and the head, each with pure
functions for the work it does on M tokens at a context length. The Linears are priced from
their measured shapes (``dse.model.workload.Layer``); everything else a token costs is here:
embedding lookup, RMSNorms, per-token int8 activation quantization, RoPE, the KV-cache write,
attention scores over the context (GQA), softmax, attention x V, residual adds, the FFN's
activation and gate product, and sampling.

The list comes from the model's config (``decoder_ops``), not from a fixed 2B-4T.
"""

from __future__ import annotations

from dataclasses import dataclass

from dse.errors import DseError
from dse.model.arch import ModelConfig

#: The closed set of non-Linear operator kinds.
KINDS = ("embed", "rmsnorm", "quant", "rope", "kv_write", "attn_score", "softmax", "attn_v",
         "residual", "act", "gate_mul", "sample")
#: Kinds that scale with the context (attention over the KV cache).
ATTENTION_KINDS = ("attn_score", "softmax", "attn_v")
#: Element types of the KV cache and their bytes.
KV_DTYPES = {"fp32": 4, "bf16": 2, "fp16": 2, "int8": 1}

#: FLOPs per element (per score for softmax, per MAC x 2 for the attention matmuls).
_FLOPS_PER_ELEM = {"embed": 0, "rmsnorm": 4, "quant": 5, "rope": 3, "kv_write": 0,
                   "softmax": 5, "residual": 1, "act": 2, "gate_mul": 1, "sample": 1}
#: Activation inputs per element (residual and gate product read two tensors).
_INPUTS = {"residual": 2, "gate_mul": 2}


@dataclass(frozen=True)
class Op:
    """One operator class, ``count`` times per forward (once per decoder layer, or once).

    ``width`` is the elements per token it touches (hidden, intermediate, the q+k width for
    RoPE, 2 x kv_dim for the cache write, the vocabulary for sampling). ``measured_as`` is the
    profiled module whose time covers it (``self_attn`` covers RoPE, the cache write and the
    attention core); ``feeds`` names the Linear group a quantization feeds.
    """

    kind: str
    role: str
    count: int
    width: int
    heads: int = 0
    kv_heads: int = 0
    head_dim: int = 0
    measured_as: str = ""
    feeds: str = ""


@dataclass(frozen=True)
class OpBytes:
    """Bytes one forward of an operator moves, by kind of traffic."""

    weights: float = 0.0
    act_in: float = 0.0
    act_out: float = 0.0
    kv_read: float = 0.0
    kv_write: float = 0.0

    @property
    def total(self) -> float:
        return self.weights + self.act_in + self.act_out + self.kv_read + self.kv_write


def kv_bytes(kv_dtype: str, where: str = "kv_dtype") -> int:
    """Bytes per KV-cache element, with a one-line error for an unknown type."""
    try:
        return KV_DTYPES[kv_dtype]
    except KeyError:
        raise DseError(f"{where}: expected one of {', '.join(KV_DTYPES)}, got {kv_dtype!r}"
                       ) from None


def positions(m: int, context: int) -> int:
    """Query x key pairs of ``m`` new tokens whose last sits at position ``context`` (causal).

    Decode (m=1) attends over the whole context; a prefill of m tokens from an empty cache
    (context = m) attends over m(m+1)/2 pairs.
    """
    if m < 1 or context < m:
        raise ValueError(f"positions: need 1 <= m <= context, got m={m}, context={context}")
    return m * context - m * (m - 1) // 2


def op_elements(op: Op, m: int, context: int) -> float:
    """Work items of one forward: elements, scores (softmax) or MACs (attention matmuls)."""
    if op.kind in ("attn_score", "attn_v"):
        return float(op.count * op.heads * op.head_dim * positions(m, context))
    if op.kind == "softmax":
        return float(op.count * op.heads * positions(m, context))
    return float(op.count * m * op.width)


def op_flops(op: Op, m: int, context: int) -> float:
    """FLOPs of one forward over ``m`` tokens at ``context``."""
    if op.kind in ("attn_score", "attn_v"):
        return 2.0 * op_elements(op, m, context)
    return _FLOPS_PER_ELEM[op.kind] * op_elements(op, m, context)


def op_bytes(op: Op, m: int, context: int, act_bytes: float, kv_elem_bytes: float,
             emb_bytes: float = 2.0) -> OpBytes:
    """Bytes of one forward: each tensor counted once (the roofline's minimum traffic)."""
    n = op.count
    if op.kind in ("attn_score", "attn_v"):
        cache = n * op.kv_heads * op.head_dim * context * kv_elem_bytes
        q_or_out = n * m * op.heads * op.head_dim * act_bytes
        probs = n * op.heads * positions(m, context) * 4.0
        if op.kind == "attn_score":
            return OpBytes(act_in=q_or_out, act_out=probs, kv_read=cache)
        return OpBytes(act_in=probs, act_out=q_or_out, kv_read=cache)
    if op.kind == "softmax":
        probs = op_elements(op, m, context) * 4.0
        return OpBytes(act_in=probs, act_out=probs)
    elems = op_elements(op, m, context)
    if op.kind == "embed":
        return OpBytes(weights=elems * emb_bytes, act_out=elems * act_bytes)
    if op.kind == "kv_write":
        return OpBytes(act_in=elems * act_bytes, kv_write=elems * kv_elem_bytes)
    if op.kind == "sample":
        return OpBytes(act_in=elems * 4.0)
    out = 1.0 if op.kind == "quant" else act_bytes
    weights = n * op.width * 2.0 if op.kind == "rmsnorm" else 0.0
    return OpBytes(weights=weights, act_in=elems * act_bytes * _INPUTS.get(op.kind, 1),
                   act_out=elems * out)


def decoder_ops(cfg: ModelConfig) -> tuple[Op, ...]:
    """The non-Linear operators of one forward of ``cfg``, in execution order."""
    L, h, i = cfg.layers, cfg.hidden, cfg.intermediate
    att = {"heads": cfg.heads, "kv_heads": cfg.kv_heads, "head_dim": cfg.head_dim,
           "measured_as": "self_attn"}
    ops = [
        Op("embed", "embed_tokens", 1, h, measured_as="embed_tokens"),
        Op("rmsnorm", "input_layernorm", L, h, measured_as="input_layernorm"),
        Op("quant", "quant_qkv", L, h, feeds="qkv"),
        Op("rope", "rope", L, (cfg.heads + cfg.kv_heads) * cfg.head_dim, **att),
        Op("kv_write", "kv_write", L, 2 * cfg.kv_dim, **att),
        Op("attn_score", "attn_score", L, 0, **att),
        Op("softmax", "softmax", L, 0, **att),
        Op("attn_v", "attn_v", L, 0, **att),
    ]
    if cfg.sub_norms:
        ops.append(Op("rmsnorm", "attn_sub_norm", L, h, measured_as="attn_sub_norm"))
    ops += [
        Op("quant", "quant_o", L, h, feeds="o"),
        Op("residual", "residual_attn", L, h),
        Op("rmsnorm", "post_attention_layernorm", L, h, measured_as="post_attention_layernorm"),
        Op("quant", "quant_gateup", L, h, feeds="gateup"),
        Op("act", "act_fn", L, i, measured_as="act_fn"),
        Op("gate_mul", "gate_mul", L, i),
    ]
    if cfg.sub_norms:
        ops.append(Op("rmsnorm", "ffn_sub_norm", L, i, measured_as="ffn_sub_norm"))
    ops += [
        Op("quant", "quant_down", L, i, feeds="down"),
        Op("residual", "residual_ffn", L, h),
        Op("rmsnorm", "norm", 1, h, measured_as="norm"),
        Op("sample", "sample", 1, cfg.vocab),
    ]
    return tuple(ops)


#: The Linear group each role's input quantization feeds (o and down quantize on their own).
QUANT_GROUP = {"q_proj": "qkv", "k_proj": "qkv", "v_proj": "qkv", "o_proj": "o",
               "gate_proj": "gateup", "up_proj": "gateup", "down_proj": "down"}

#: Report component of each operator kind (the per-token breakdown).
COMPONENT = {"embed": "norms_quant_rope_residual", "rmsnorm": "norms_quant_rope_residual",
             "quant": "norms_quant_rope_residual", "rope": "norms_quant_rope_residual",
             "residual": "norms_quant_rope_residual", "kv_write": "attention",
             "attn_score": "attention", "softmax": "attention", "attn_v": "attention",
             "act": "elementwise", "gate_mul": "elementwise", "sample": "sampling",
             "glue": "elementwise", "attention": "attention"}
