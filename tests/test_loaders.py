"""Loaders (dse.packing.loaders) on small files the tests write themselves: HF BitNet
checkpoints (bf16 and packed uint8 BitLinear, both scale conventions, sharded), GGUF files
(TQ1_0, TQ2_0, F32, F16) and the bad cases; then ``dse weights inspect`` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dse.cli import main
from dse.errors import DseError
from dse.model.packing import PACKINGS
from dse.packing.loaders import (
    hf_pack_weights,
    hf_unpack_weights,
    load_gguf,
    load_hf_checkpoint,
    load_weights,
)
from dse.packing.quant import ternarize

gguf = pytest.importorskip("gguf")
st_numpy = pytest.importorskip("safetensors.numpy")
Q = gguf.GGMLQuantizationType

CONFIG = {"model_type": "bitnet", "architectures": ["BitNetForCausalLM"], "hidden_size": 64,
          "intermediate_size": 96, "num_hidden_layers": 2}


def f32_to_bf16(a: np.ndarray) -> np.ndarray:
    """float32 -> bf16 bit patterns (uint16), round to nearest even."""
    u = np.asarray(a, dtype=np.float32).view(np.uint32)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def write_safetensors(path: Path, tensors: dict[str, tuple[str, np.ndarray]]) -> None:
    """A safetensors file by hand, so bf16 (which numpy lacks) can be written as raw uint16."""
    header, blobs, offset = {}, [], 0
    for name, (dtype, arr) in tensors.items():
        raw = np.ascontiguousarray(arr).tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(len(text).to_bytes(8, "little") + text + b"".join(blobs))


def write_config(directory: Path, **extra) -> None:
    (directory / "config.json").write_text(json.dumps({**CONFIG, **extra}))


def test_hf_unpack_matches_the_transformers_docstring_example():
    packed = np.array([[0b10100001, 0b00011000], [0b10010000, 0b00001010]], dtype=np.uint8)
    expect = [[0, -1], [-1, 1], [-1, 1], [-1, 1], [1, 0], [0, -1], [1, -1], [1, -1]]
    assert hf_unpack_weights(packed).tolist() == expect
    np.testing.assert_array_equal(hf_pack_weights(np.array(expect, dtype=np.int8)), packed)
    with pytest.raises(DseError, match="code 3"):
        hf_unpack_weights(np.full((1, 2), 0xFF, dtype=np.uint8), "w")


def test_bf16_checkpoint_is_ternarized_with_absmean(tmp_path):
    rng = np.random.default_rng(0)
    q = rng.normal(0, 0.02, (64, 64)).astype(np.float32)
    down = rng.normal(0, 0.02, (64, 96)).astype(np.float32)
    write_config(tmp_path)
    write_safetensors(tmp_path / "model.safetensors", {
        "model.embed_tokens.weight": ("BF16", f32_to_bf16(rng.normal(size=(100, 64)))),
        "model.layers.0.input_layernorm.weight": ("F32", np.ones(64, dtype=np.float32)),
        "model.layers.0.self_attn.q_proj.weight": ("BF16", f32_to_bf16(q)),
        "model.layers.10.mlp.down_proj.weight": ("F32", down),
        "model.layers.2.mlp.down_proj.weight": ("F16", down.astype(np.float16)),
        "lm_head.weight": ("BF16", f32_to_bf16(rng.normal(size=(100, 64)))),
    })
    skipped: list[tuple[str, str]] = []
    layers = list(load_hf_checkpoint(tmp_path, on_skip=lambda n, why: skipped.append((n, why))))
    assert [ly.name for ly in layers] == ["model.layers.0.self_attn.q_proj",
                                          "model.layers.2.mlp.down_proj",
                                          "model.layers.10.mlp.down_proj"]
    q_bf16 = (f32_to_bf16(q).astype(np.uint32) << 16).view(np.float32)
    w, scale = ternarize(q_bf16)
    np.testing.assert_array_equal(layers[0].w, w)
    assert layers[0].scale == scale and layers[0].source == "hf-bf16"
    assert layers[0].w.dtype == np.int8 and layers[0].shape == (64, 64)
    assert [ly.source for ly in layers[1:]] == ["hf-f16", "hf-f32"]
    assert 0 < layers[0].zero_fraction < 1
    reasons = dict(skipped)
    assert "not ternary" in reasons["lm_head.weight"]
    assert "not ternary" in reasons["model.embed_tokens.weight"]
    assert "not a Linear weight" in reasons["model.layers.0.input_layernorm.weight"]


@pytest.mark.parametrize(("linear_class", "expect_scale"), [
    ("autobitlinear", 2.5),      # forward multiplies by weight_scale
    ("bitlinear", 1 / 2.5),      # forward divides by weight_scale
    (None, 1 / 2.5),             # transformers' default linear_class is bitlinear
])
def test_packed_checkpoint_and_scale_conventions(tmp_path, linear_class, expect_scale):
    rng = np.random.default_rng(1)
    w = rng.integers(-1, 2, (96, 64), dtype=np.int8)
    quant = {"quant_method": "bitnet", "quantization_mode": "offline"}
    if linear_class:
        quant["linear_class"] = linear_class
    write_config(tmp_path, quantization_config=quant)
    # weight and its scale in different shards: the loader pairs them across files
    st_numpy.save_file({"model.layers.0.mlp.up_proj.weight": hf_pack_weights(w)},
                       str(tmp_path / "model-00001-of-00002.safetensors"))
    write_safetensors(tmp_path / "model-00002-of-00002.safetensors", {
        "model.layers.0.mlp.up_proj.weight_scale": ("BF16", f32_to_bf16(np.array([2.5]))),
    })
    (layer,) = load_hf_checkpoint(tmp_path)
    np.testing.assert_array_equal(layer.w, w)
    assert layer.scale == pytest.approx(expect_scale)
    assert layer.source == f"hf-packed-{linear_class or 'bitlinear'}"


def test_ternary_float_weights_with_scale_keep_their_values(tmp_path):
    w = np.random.default_rng(2).integers(-1, 2, (8, 16)).astype(np.float32)
    write_config(tmp_path, quantization_config={"quant_method": "bitnet",
                                                "linear_class": "autobitlinear"})
    st_numpy.save_file({"model.layers.0.self_attn.o_proj.weight": w,
                        "model.layers.0.self_attn.o_proj.weight_scale":
                            np.array([0.5], dtype=np.float32)},
                       str(tmp_path / "model.safetensors"))
    (layer,) = load_hf_checkpoint(tmp_path)
    np.testing.assert_array_equal(layer.w, w.astype(np.int8))
    assert layer.scale == 0.5


def test_not_a_bitnet_checkpoint(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2",
                                                      "architectures": ["GPT2LMHeadModel"]}))
    st_numpy.save_file({"h.0.attn.weight": np.zeros((4, 4), np.float32)},
                       str(tmp_path / "model.safetensors"))
    with pytest.raises(DseError, match=r"config\.json: model_type: .*not a BitNet checkpoint"):
        load_hf_checkpoint(tmp_path)


def test_checkpoint_errors_name_the_file_and_tensor(tmp_path):
    write_config(tmp_path)
    with pytest.raises(DseError, match=r"expected \*\.safetensors"):
        load_hf_checkpoint(tmp_path)
    st_numpy.save_file({"model.layers.0.mlp.up_proj.weight": np.zeros((2, 8), np.uint8)},
                       str(tmp_path / "model.safetensors"))
    with pytest.raises(DseError, match=r"up_proj\.weight: expected .*weight_scale"):
        load_hf_checkpoint(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"\x05\0\0\0\0\0\0\0{oops")
    with pytest.raises(DseError, match="expected a safetensors file"):
        load_hf_checkpoint(tmp_path)
    with pytest.raises(DseError, match="missing: expected an HF checkpoint directory"):
        load_hf_checkpoint(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DseError, match=r"config\.json: expected the config\.json"):
        load_hf_checkpoint(empty)


# -- GGUF ------------------------------------------------------------------------------------

def write_gguf(path: Path, tensors: list[tuple[str, np.ndarray, object]]) -> None:
    writer = gguf.GGUFWriter(str(path), "bitnet")
    for name, arr, qtype in tensors:
        if qtype is None:
            writer.add_tensor(name, arr)
        else:
            writer.add_tensor(name, gguf.quants.quantize(arr, qtype), raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


@pytest.fixture
def model_gguf(tmp_path):
    rng = np.random.default_rng(3)
    w1 = rng.integers(-1, 2, (64, 512), dtype=np.int8)
    w2 = rng.integers(-1, 2, (32, 256), dtype=np.int8)
    dense = rng.normal(0, 0.02, (16, 64)).astype(np.float32)
    path = tmp_path / "tiny.gguf"
    write_gguf(path, [
        ("token_embd.weight", rng.normal(size=(100, 64)).astype(np.float32), None),
        ("blk.0.attn_norm.weight", np.ones(64, dtype=np.float32), None),
        ("blk.0.ffn_up.weight", (w1 * 0.75).astype(np.float32), Q.TQ1_0),
        ("blk.0.attn_q.weight", (w2 * 1.25).astype(np.float32), Q.TQ2_0),
        ("blk.0.attn_k.weight", dense, None),
        ("blk.0.attn_v.weight", dense.astype(np.float16), None),
        ("output.weight", rng.normal(size=(100, 64)).astype(np.float32), None),
    ])
    return path, w1, w2, dense


def test_gguf_tq_and_float_tensors(model_gguf):
    path, w1, w2, dense = model_gguf
    skipped: list[tuple[str, str]] = []
    layers = {ly.name: ly for ly in load_gguf(path, lambda n, why: skipped.append((n, why)))}
    assert list(layers) == ["blk.0.ffn_up", "blk.0.attn_q", "blk.0.attn_k", "blk.0.attn_v"]
    np.testing.assert_array_equal(layers["blk.0.ffn_up"].w, w1)
    assert layers["blk.0.ffn_up"].scale == 0.75 and layers["blk.0.ffn_up"].source == "gguf-tq1_0"
    np.testing.assert_array_equal(layers["blk.0.attn_q"].w, w2)
    assert layers["blk.0.attn_q"].scale == 1.25 and layers["blk.0.attn_q"].source == "gguf-tq2_0"
    w, scale = ternarize(dense)
    np.testing.assert_array_equal(layers["blk.0.attn_k"].w, w)
    assert layers["blk.0.attn_k"].scale == pytest.approx(scale)
    assert layers["blk.0.attn_k"].shape == (16, 64)
    assert layers["blk.0.attn_v"].source == "gguf-f16"
    assert {n for n, _ in skipped} == {"token_embd.weight", "blk.0.attn_norm.weight",
                                       "output.weight"}


def test_gguf_tq_with_per_block_scales_is_reternarized(tmp_path):
    w = np.random.default_rng(4).integers(-1, 2, (4, 512), dtype=np.int8)
    arr = w.astype(np.float32)
    arr[:, 256:] *= 3.0  # second block of every row: another d
    path = tmp_path / "blocks.gguf"
    write_gguf(path, [("blk.0.ffn_down.weight", arr, Q.TQ2_0)])
    (layer,) = load_gguf(path)
    assert layer.source == "gguf-tq2_0+reternarized"
    expect_w, expect_scale = ternarize(arr)
    np.testing.assert_array_equal(layer.w, expect_w)
    assert layer.scale == pytest.approx(expect_scale)


def test_gguf_unsupported_type_names_tensor_and_type(tmp_path):
    path = tmp_path / "q8.gguf"
    write_gguf(path, [
        ("blk.0.ffn_up.weight", np.ones((4, 256), dtype=np.float32), Q.TQ1_0),
        ("blk.0.ffn_gate.weight", np.ones((4, 256), dtype=np.float32), Q.Q8_0),
    ])
    with pytest.raises(DseError, match=r"q8\.gguf: tensor blk\.0\.ffn_gate\.weight: type: "
                                       r"expected TQ1_0, .*got Q8_0"):
        load_gguf(path)  # raised before any layer is yielded


def test_gguf_not_a_gguf(tmp_path):
    path = tmp_path / "junk.gguf"
    path.write_bytes(b"not a gguf file at all")
    with pytest.raises(DseError, match=r"junk\.gguf: expected a readable GGUF file"):
        load_gguf(path)
    with pytest.raises(DseError, match=r"expected an HF checkpoint directory or a \.gguf file"):
        load_weights(tmp_path / "model.bin")


# -- dse weights inspect ---------------------------------------------------------------------

def test_inspect_gguf(model_gguf, capsys):
    path = model_gguf[0]
    assert main(["weights", "inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "blk.0.ffn_up" in out and "64x512" in out and "gguf-tq1_0" in out
    assert f"{PACKINGS['tq1_0'].matrix_bytes(64, 512):,}" in out
    assert f"{PACKINGS['base3'].matrix_bytes(16, 64):,}" in out
    assert "total (4 layers)" in out
    assert "skipped 3 tensors" in out and "output.weight" in out


def test_inspect_limit_and_errors(model_gguf, tmp_path, capsys):
    assert main(["weights", "inspect", str(model_gguf[0]), "--limit", "1"]) == 0
    out = capsys.readouterr().out
    assert "total (1 layers)" in out and "attn_q" not in out
    assert main(["weights", "inspect", str(tmp_path / "nothing.gguf")]) == 2
    assert main(["weights", "inspect", str(model_gguf[0]), "--limit", "0"]) == 2
    assert "--limit" in capsys.readouterr().err


def test_inspect_hf_checkpoint(tmp_path, capsys):
    write_config(tmp_path)
    w = np.random.default_rng(5).normal(0, 1, (640, 256)).astype(np.float32)
    st_numpy.save_file({"model.layers.0.self_attn.k_proj.weight": w},
                       str(tmp_path / "model.safetensors"))
    assert main(["weights", "inspect", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "model.layers.0.self_attn.k_proj" in out and "640x256" in out
    assert f"{PACKINGS['tl2'].matrix_bytes(640, 256):,}" in out
