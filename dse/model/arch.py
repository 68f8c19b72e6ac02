"""The model's architecture: the few config fields the operator list is built from.

A ``ModelConfig`` comes from a transformers ``config.json`` mapping (``--model DIR`` or
``config.json``, or the ``model_config`` a profile carries), from a preset's fields (the
published configs in ``dse/data/models.yaml``), or, for a profile that holds neither (the seed
import has Linear shapes only), from the Linear shapes themselves.

Only the BitNet b1.58 decoders dse prices are accepted, told apart by the config itself:

- ``model_type: bitnet`` (BitNetForCausalLM, e.g. 2B-4T): the BitNet sub-norms before o_proj
  and down_proj, squared ReLU by default;
- ``model_type: llama`` with ``architectures: [BitnetForCausalLM]`` (1bitLLM's
  reproductions): the same sub-norms under their older names (``inner_attn_ln``,
  ``ffn_layernorm``);
- ``model_type: llama`` with ``quantization_config.quant_method: bitnet`` (LlamaForCausalLM
  with transformers' BitLinear: HF1BitLLM, Falcon3 1.58-bit): no sub-norms.

Anything else, a full-precision Llama included, is rejected with a one-line error rather than
priced as if it were a BitNet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from dse.errors import DseError, located

#: model_type values whose decoder is q/k/v/o + gate/up/down around RMSNorms, as priced here.
KNOWN_MODEL_TYPES = ("bitnet", "llama")
#: Activations of the gate projection dse knows how to price.
KNOWN_ACTS = ("relu2", "silu")
#: head_dim assumed when only Linear shapes are known (BitNet 2B-4T, Llama 3: 128).
DEFAULT_HEAD_DIM = 128
#: The architecture name of 1bitLLM's BitNet reproductions (model_type llama, sub-norms).
ONEBIT_ARCH = "BitnetForCausalLM"


@dataclass(frozen=True)
class ModelConfig:
    """Shapes of a BitNet-style decoder, with where they came from."""

    name: str
    model_type: str
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    vocab: int
    act: str = "relu2"
    tied_embeddings: bool = True
    max_positions: int = 4096
    #: BitNet's extra RMSNorms before o_proj and down_proj (attn_sub_norm, ffn_sub_norm).
    sub_norms: bool = True
    source: str = ""
    #: The config's head_dim where it states one (0: hidden / heads).
    head_dim_cfg: int = 0
    #: Which of the BitNet families above the config is (for reports).
    family: str = ""

    @property
    def head_dim(self) -> int:
        return self.head_dim_cfg or self.hidden // self.heads

    @property
    def q_dim(self) -> int:
        """Width of Q (and of o_proj's input) per token per layer: heads x head_dim."""
        return self.heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        """Width of K (and of V) per token per layer: kv_heads x head_dim."""
        return self.kv_heads * self.head_dim

    def kv_bytes_per_token(self, elem_bytes: float) -> float:
        """KV-cache bytes one token of context holds: K and V of every layer."""
        return 2 * self.layers * self.kv_dim * elem_bytes

    def linear_shapes(self) -> dict[str, tuple[int, int]]:
        """(N outputs, K inputs) of each Linear of one decoder layer, and of the head."""
        return {"q_proj": (self.q_dim, self.hidden), "k_proj": (self.kv_dim, self.hidden),
                "v_proj": (self.kv_dim, self.hidden), "o_proj": (self.hidden, self.q_dim),
                "gate_proj": (self.intermediate, self.hidden),
                "up_proj": (self.intermediate, self.hidden),
                "down_proj": (self.hidden, self.intermediate),
                "lm_head": (self.vocab, self.hidden)}

    @property
    def ternary_weights(self) -> int:
        """Ternary weights of the decoder (every Linear but the head)."""
        return self.layers * sum(n * k for role, (n, k) in self.linear_shapes().items()
                                 if role != "lm_head")


#: The largest a config's sizes may be (hidden, vocabulary, positions: 2**24 is 16M; layers
#: and heads far fewer): ``vocab_size: 1e30`` is a typo, not a model.
MAX_SIZE = 2**24
#: The most decoder layers a config may have: twice the deepest published decoder (Llama 3.1
#: 405B, 126 layers). The workload lists every layer's operators, so a config's layer count
#: sets dse's memory (about 1 MB a layer): ``num_hidden_layers: 16777216`` must stop here,
#: not in the out-of-memory killer.
MAX_LAYERS = 256
#: What may not be in a model's name (it is printed on one line and written to JSON).
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _int(data: dict, key: str, where: str, default: int | None = None,
         most: int = MAX_SIZE, why: str = "") -> int:
    v = data.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= most:
        raise located(where, key, f"an integer from 1 to {most:,}{why}", v)
    return v


def _family(data: dict, mtype: str, where: str) -> tuple[str, bool]:
    """(family, whether the decoder has BitNet's sub-norms), from the config's own keys."""
    archs = data.get("architectures")
    archs = [str(a) for a in archs] if isinstance(archs, list) else []
    quant = data.get("quantization_config")
    method = quant.get("quant_method") if isinstance(quant, dict) else None
    if mtype == "bitnet":
        return "BitNet (BitNetForCausalLM): sub-norms", True
    if ONEBIT_ARCH in archs:
        return "1bitLLM BitnetForCausalLM (Llama-shaped): sub-norms", True
    if method == "bitnet" or data.get("is_bitnet_config") is True:
        return "Llama with BitLinear (quant_method bitnet): no sub-norms", False
    raise located(where, "quantization_config.quant_method", "'bitnet' (a model_type llama "
                  "config is a BitNet b1.58 model only with quant_method bitnet or "
                  f"architectures [{ONEBIT_ARCH}]; dse does not price a full-precision Llama)",
                  method)


def config_from_mapping(data: object, where: str = "config.json") -> ModelConfig:
    """Validate a transformers config mapping of a known BitNet decoder family (pure)."""
    if not isinstance(data, dict):
        raise located(where, "", "a JSON object with the model's config", type(data).__name__)
    mtype = str(data.get("model_type", "")).lower()
    if mtype not in KNOWN_MODEL_TYPES:
        archs = data.get("architectures")
        got = mtype or (archs[0] if isinstance(archs, list) and archs else None)
        raise located(where, "model_type", f"one of {', '.join(KNOWN_MODEL_TYPES)} (a BitNet "
                      f"or Llama-shaped decoder dse can price)", got)
    family, sub_norms = _family(data, mtype, where)
    hidden = _int(data, "hidden_size", where)
    heads = _int(data, "num_attention_heads", where)
    head_dim = 0
    if data.get("head_dim") is not None:
        head_dim = _int(data, "head_dim", where)
    elif hidden % heads:
        raise located(where, "num_attention_heads", f"a divisor of hidden_size ({hidden})", heads)
    kv_heads = _int(data, "num_key_value_heads", where, heads)
    if heads % kv_heads:
        raise located(where, "num_key_value_heads", f"a divisor of num_attention_heads ({heads})",
                      kv_heads)
    act = str(data.get("hidden_act", "relu2" if mtype == "bitnet" else "silu"))
    if act not in KNOWN_ACTS:
        raise located(where, "hidden_act", f"one of {', '.join(KNOWN_ACTS)}", act)
    tied = data.get("tie_word_embeddings", mtype == "bitnet")
    if not isinstance(tied, bool):
        raise located(where, "tie_word_embeddings", "true or false", tied)
    key = "_name_or_path" if data.get("_name_or_path") else "name_or_path"
    name = data.get(key) or mtype
    if not isinstance(name, str) or _CONTROL.search(name):
        raise located(where, key, "a model name or path on one line (a string without "
                      "control characters)", name)
    return ModelConfig(
        name=name, model_type=mtype, hidden=hidden,
        intermediate=_int(data, "intermediate_size", where),
        layers=_int(data, "num_hidden_layers", where, most=MAX_LAYERS,
                    why=" (decoder layers: twice the deepest published model's)"),
        heads=heads, kv_heads=kv_heads,
        vocab=_int(data, "vocab_size", where), act=act, tied_embeddings=tied,
        max_positions=_int(data, "max_position_embeddings", where, 2048),
        sub_norms=sub_norms, source=where,
        head_dim_cfg=0 if head_dim == hidden // heads else head_dim, family=family)


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def preset_for(model_name: str) -> str | None:
    """The preset whose name a model name contains (``../models/...2B-4T-bf16`` -> 2B-4T)."""
    from dse.profile.presets import PRESETS

    key = _norm(model_name)
    hits = [p for p in PRESETS if _norm(p) in key]
    return max(hits, key=len) if hits else None


def preset_config(name: str) -> ModelConfig:
    """A preset's shapes as a ModelConfig (the preset table is plain data, no torch)."""
    from dse.profile.presets import PRESETS, preset_source

    cfg = config_from_mapping(dict(PRESETS[name]), f"preset {name}")
    return replace(cfg, name=name, source=f"preset {name} ({preset_source(name)})")


def config_from_linears(model_name: str, shapes: dict[str, tuple[int, int]], layers: int,
                        where: str) -> ModelConfig:
    """Shapes from the Linears alone: ``shapes`` maps role -> (N, K) of one block (+ lm_head).

    A preset whose name the model's name contains and whose shapes agree is used as it is;
    otherwise heads follow from hidden / 128 (``DEFAULT_HEAD_DIM``), stated in ``source``.
    """
    need = ("q_proj", "k_proj", "gate_proj")
    missing = [r for r in need if r not in shapes]
    if missing:
        raise DseError(f"{where}: modules: expected Linear layers {', '.join(need)} of a "
                       f"BitNet/Llama decoder to build the operator list, missing "
                       f"{', '.join(missing)}")
    hidden = shapes["q_proj"][1]
    kv_dim = shapes["k_proj"][0]
    inter = shapes["gate_proj"][0]
    vocab = shapes.get("lm_head", (0, 0))[0]
    preset = preset_for(model_name)
    if preset is not None:
        cfg = preset_config(preset)
        if (cfg.hidden, cfg.kv_dim, cfg.intermediate, cfg.layers) == (hidden, kv_dim, inter,
                                                                       layers) and (
                not vocab or vocab == cfg.vocab):
            return replace(cfg, source=f"preset {preset} (its name and Linear shapes match "
                           f"the profile's)")
    head_dim = DEFAULT_HEAD_DIM if hidden % DEFAULT_HEAD_DIM == 0 else hidden
    if kv_dim % head_dim:
        head_dim = hidden
    return ModelConfig(
        name=model_name, model_type="bitnet", hidden=hidden, intermediate=inter, layers=layers,
        heads=hidden // head_dim, kv_heads=max(1, kv_dim // head_dim), vocab=vocab or 1,
        source=f"inferred from the profile's Linear shapes (head_dim {head_dim} assumed)")
