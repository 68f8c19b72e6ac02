"""Any BitNet model, without torch: the presets' configs, --model on the commands, bad input.

- every published preset is a config.json as published, its architecture read from the config
  (squared ReLU or SiLU, MHA or GQA, tied or untied head, BitNet sub-norms or not, head_dim,
  vocabulary) and its Linear shapes equal to bitnet.cpp's kernel table for the same models;
- a model alone prices the native runtime and lists torch as not measured; with a profile the
  profile's measured times come back (and torch with them);
- `dse explore --board pynq-z2 --model bitnet_b1_58-large` returns a feasible plan the shipped
  overlay builds, in a subprocess where torch and transformers cannot be imported;
- bad input is one line naming the option or file and what was expected, exit 2.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dse.cli import main
from dse.model.arch import config_from_mapping, preset_config
from dse.model.ops import decoder_ops
from dse.model.workload import workload_from_config
from dse.profile.presets import PRESETS, PUBLISHED, model_table

ROOT = Path(__file__).resolve().parent.parent


def test_every_published_preset_is_a_sourced_config():
    table = model_table()
    assert set(PUBLISHED) == {
        "bitnet-b1.58-2B-4T", "bitnet_b1_58-large", "bitnet_b1_58-3B",
        "Llama3-8B-1.58-100B-tokens", "Falcon3-1B-Instruct-1.58bit",
        "Falcon3-3B-Instruct-1.58bit", "Falcon3-7B-Instruct-1.58bit",
        "Falcon3-10B-Instruct-1.58bit"}
    for name in PUBLISHED:
        assert "/" in table[name]["repo"] and len(table[name]["source"]) > 40, name
        cfg = preset_config(name)
        assert cfg.source.startswith(f"preset {name} (") and cfg.family, name
    assert "tiny" in PRESETS and "tiny" not in PUBLISHED


@pytest.mark.parametrize(("name", "act", "heads", "kv_heads", "head_dim", "tied", "sub_norms",
                          "vocab"), [
    ("bitnet-b1.58-2B-4T", "relu2", 20, 5, 128, True, True, 128256),
    ("bitnet_b1_58-large", "silu", 16, 16, 96, True, True, 32002),       # MHA, sub-norms
    ("bitnet_b1_58-3B", "silu", 32, 32, 100, True, True, 32002),
    ("Llama3-8B-1.58-100B-tokens", "silu", 32, 8, 128, False, False, 128256),
    ("Falcon3-1B-Instruct-1.58bit", "silu", 8, 4, 256, False, False, 131072),
    ("Falcon3-10B-Instruct-1.58bit", "silu", 12, 4, 256, False, False, 131072),
])
def test_architecture_from_the_config(name, act, heads, kv_heads, head_dim, tied, sub_norms,
                                      vocab):
    cfg = preset_config(name)
    assert (cfg.act, cfg.heads, cfg.kv_heads, cfg.head_dim, cfg.tied_embeddings, cfg.sub_norms,
            cfg.vocab) == (act, heads, kv_heads, head_dim, tied, sub_norms, vocab)
    roles = [op.role for op in decoder_ops(cfg)]
    assert ("attn_sub_norm" in roles) == sub_norms and ("ffn_sub_norm" in roles) == sub_norms


@pytest.mark.parametrize(("name", "shapes"), [
    # microsoft/BitNet utils/codegen_tl2.py ModelShapeDict: [M, K] of the distinct matrices
    ("bitnet_b1_58-large", {(1536, 4096), (1536, 1536), (4096, 1536)}),
    ("bitnet_b1_58-3B", {(3200, 8640), (3200, 3200), (8640, 3200)}),
    ("Llama3-8B-1.58-100B-tokens", {(14336, 4096), (4096, 14336), (1024, 4096), (4096, 4096)}),
])
def test_linear_shapes_match_bitnet_cpp_kernel_table(name, shapes):
    cfg = preset_config(name)
    got = {nk for role, nk in cfg.linear_shapes().items() if role != "lm_head"}
    assert got == shapes


def test_2b4t_weights_and_falcon_head_dim_shapes():
    assert preset_config("bitnet-b1.58-2B-4T").ternary_weights == 2_084_044_800  # facts.md
    # a config stating head_dim: q_proj is heads x head_dim wide, k/v kv_heads x head_dim
    cfg = config_from_mapping({"model_type": "llama", "quantization_config": {
        "quant_method": "bitnet"}, "hidden_size": 512, "num_attention_heads": 4,
        "num_key_value_heads": 2, "head_dim": 64, "intermediate_size": 1024,
        "num_hidden_layers": 2, "vocab_size": 100})
    s = cfg.linear_shapes()
    assert s["q_proj"] == (256, 512) and s["k_proj"] == (128, 512) and s["o_proj"] == (512, 256)
    rope = next(op for op in decoder_ops(cfg) if op.kind == "rope")
    assert rope.width == (4 + 2) * 64


def test_a_model_alone_prices_native_and_lists_torch_as_not_measured(capsys, tmp_path,
                                                                        monkeypatch):
    monkeypatch.chdir(tmp_path)
    wl = workload_from_config(preset_config("bitnet_b1_58-large"))
    assert wl.runtimes == ("native",) and wl.host is None and not wl.measured_host
    assert len(wl.layers) == 24 * 7 + 1 and all(la.host_call_ms == 0 for la in wl.layers)
    assert main(["explore", "--board", str(ROOT / "boards" / "kv260.yaml"), "--model",
                 "1bitLLM/bitnet_b1_58-large", "--no-report"]) == 0
    out = capsys.readouterr().out
    assert "PS runtimes searched: native;" in out
    assert "; torch: not measured (no profile)" in out
    assert "profile: none; model bitnet_b1_58-large from its config (preset)" in out
    assert not list(tmp_path.iterdir())  # --no-report: nothing written


def test_a_config_json_and_a_folder_are_read_as_the_preset(tmp_path, capsys):
    cfg = dict(PRESETS["Falcon3-1B-Instruct-1.58bit"])
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps(cfg))
    plan = ROOT / "examples" / "plans" / "zcu104-ffn.yaml"
    outs = []
    for model in (str(tmp_path / "ckpt"), str(tmp_path / "ckpt" / "config.json"),
                  "Falcon3-1B-Instruct-1.58bit"):
        assert main(["project", "--board", "zcu104", "--model", model, "--plan",
                     str(plan)]) == 0
        outs.append(capsys.readouterr().out)
    # the same shapes priced the same way: only the "profile:" line says where they came from
    strip = [[x for x in o.splitlines() if not x.startswith(("profile:", "note: operators"))]
             for o in outs]
    assert strip[0] == strip[1] == strip[2]
    assert "torch    not measured (no profile)" in outs[0]
    assert f"model ckpt from its config ({tmp_path / 'ckpt' / 'config.json'})" in outs[0]


def test_a_checkpoint_folder_named_like_a_preset_is_read_not_the_preset(tmp_path,
                                                                        monkeypatch, capsys):
    """``--model 1bitLLM/bitnet_b1_58-large`` with that checkpoint cloned beside the user reads
    the clone's config.json (transformers' rule: a local folder wins); without the folder, or
    with a folder that holds no config.json, the name is the preset."""
    monkeypatch.chdir(tmp_path)
    name = "1bitLLM/bitnet_b1_58-large"
    cfg = dict(PRESETS["bitnet_b1_58-large"], num_hidden_layers=12)  # the user's variant
    (tmp_path / name).mkdir(parents=True)
    argv = ["project", "--board", "kv260", "--model", name, "--plan",
            str(ROOT / "examples" / "plans" / "zcu104-ffn.yaml")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "(preset)" in out  # an empty folder: still the preset
    (tmp_path / name / "config.json").write_text(json.dumps(cfg))
    assert main(argv) == 0
    own = capsys.readouterr().out
    assert f"from its config ({Path(name) / 'config.json'})" in own and "(preset)" not in own
    assert own != out  # 12 layers, not 24: other figures


def test_a_profile_adds_measured_times_to_the_config(capsys):
    profile = ROOT / "dse" / "data" / "bitnet-2b4t.profile.json"
    assert main(["explore", "--board", "kv260", "--profile", str(profile), "--model",
                 "bitnet-b1.58-2B-4T", "--no-report"]) == 0
    out = capsys.readouterr().out
    assert "PS runtimes searched: torch, native;" in out and "not measured" not in out
    assert "model bitnet-b1.58-2B-4T from its config (preset)" in out


# -- the PYNQ path, with torch made unimportable ------------------------------------------------

_BLOCK = """
import sys, importlib.abc
class _Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "transformers"):
            raise ImportError(f"{name} is blocked in this test")
        return None
sys.meta_path.insert(0, _Block())
from dse.cli import main
rc = main(sys.argv[1:])
assert not any(m.split(".")[0] in ("torch", "transformers") for m in sys.modules)
sys.exit(rc)
"""


def test_pynq_z2_runs_bitnet_large_without_torch(tmp_path):
    """The bar: a feasible plan the shipped overlay builds, 0.73B in base-3 in 512 MiB."""
    res = subprocess.run([sys.executable, "-c", _BLOCK, "explore", "--board",
                          str(ROOT / "boards" / "pynq-z2.yaml"), "--model",
                          "bitnet_b1_58-large", "--json", str(tmp_path / "plans.json"),
                          "--no-report"], capture_output=True, text=True, check=False,
                         cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "NO FEASIBLE PLAN" not in res.stdout
    build = next(x for x in res.stdout.splitlines() if x.startswith("build the best plan: "))
    assert "make -C overlays/vivado overlay BOARD=pynq-z2" in build and "PACKING=base3" in build
    data = json.loads((tmp_path / "plans.json").read_text())
    best = data["plans"][0]
    proj = best["projections"][0]
    assert proj["feasible"] and proj["plan"]["design"]["buildable"]
    assert proj["plan"]["design"]["packing"] == "base3"
    assert proj["plan"]["runtime"] == "native"
    assert proj["memory"]["memory_bytes"] <= proj["memory"]["memory_capacity_bytes"] == 2**29
    # base-3 ternary weights of the 0.73B model: 679,477,248 x 1.6 / 8 = ~136 MB
    ternary = sum(la["n"] * la["k"] for la in proj["layers"] if la["role"] != "lm_head")
    assert ternary == preset_config("bitnet_b1_58-large").ternary_weights


# -- bad input: one line, exit 2 ----------------------------------------------------------------

def _run_cli(argv: list[str], capsys) -> tuple[int, str]:
    rc = main(argv)
    err = capsys.readouterr().err
    return rc, err


@pytest.mark.parametrize(("argv", "want"), [
    (["explore", "--board", "kv260", "--model", "bitnet-9B", "--no-report"],
     "--model: expected a preset name (bitnet-b1.58-2B-4T, "),
    (["explore", "--board", "kv260", "--model", "bitnet_b1_58-large", "--runtime", "torch",
      "--no-report"], "--runtime torch: expected native for a model without a profile"),
    (["explore", "--board", "kv260", "--model", "bitnet_b1_58-large", "--view",
      "host-attached", "--no-report"], "--view host-attached: expected --profile"),
    (["matrix", "--models", "nosuch", "--no-report"], "--model: expected a preset name"),
    (["explore", "--board", "kv260", "--model", "all", "--no-report"],
     "--model all: expected one model (a preset, a config.json or a folder); `dse matrix`"),
    # an empty name once matched the test preset (its repo is empty) and priced it
    (["explore", "--board", "kv260", "--model", "", "--no-report"],
     "--model: expected a preset name (bitnet-b1.58-2B-4T, "),
])
def test_bad_model_options_are_one_line(argv, want, capsys):
    rc, err = _run_cli(argv, capsys)
    assert rc == 2 and err.count("\n") == 1 and want in err, err


@pytest.mark.parametrize(("config", "field", "want"), [
    ({"model_type": "llama", "hidden_size": 64}, "quantization_config.quant_method",
     "dse does not price a full-precision Llama"),
    ({"model_type": "mamba", "hidden_size": 64}, "model_type", "one of bitnet, llama"),
    ({"model_type": "bitnet", "hidden_size": 64, "num_attention_heads": 4,
      "intermediate_size": 8, "num_hidden_layers": 1, "vocab_size": 9, "hidden_act": "gelu"},
     "hidden_act", "one of relu2, silu"),
])
def test_a_config_of_an_architecture_dse_does_not_model(tmp_path, capsys, config, field, want):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    rc, err = _run_cli(["project", "--board", "kv260", "--model", str(path), "--plan",
                        str(ROOT / "examples" / "plans" / "zcu104-ffn.yaml")], capsys)
    assert rc == 2 and err.count("\n") == 1, err
    assert err.startswith(f"dse: error: {path}: {field}: expected") and want in err, err


@pytest.mark.parametrize(("edit", "field", "want"), [
    # 2**24 layers once ran explore into the out-of-memory killer (about 1 MB a layer)
    ({"num_hidden_layers": 2**24}, "num_hidden_layers",
     "an integer from 1 to 256 (decoder layers: twice the deepest published model's), got "
     "16777216"),
    # the name is printed on the run's one-line summary and written to JSON
    ({"_name_or_path": "x} -->\n<!--"}, "_name_or_path",
     "a model name or path on one line (a string without control characters)"),
    ({"_name_or_path": [1, 2]}, "_name_or_path", "a model name or path on one line"),
])
def test_a_config_s_absurd_depth_or_name_is_one_line(tmp_path, capsys, edit, field, want):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**PRESETS["tiny"], **edit}))
    rc, err = _run_cli(["explore", "--board", "kv260", "--model", str(path), "--no-report",
                        "--quiet"], capsys)
    assert rc == 2 and err.count("\n") == 1, err
    assert err.startswith(f"dse: error: {path}: {field}: expected {want}"), err


def test_a_gqa_group_wider_than_the_attention_rtl_s_is_a_what_if(tmp_path, capsys):
    """16 query heads a KV head (beyond kv_attn's G of 1-8): the attention unit is a what-if
    priced at G/8 rows of its p block a position, not a ZeroDivisionError."""
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**PRESETS["tiny"], "num_attention_heads": 32,
                                "num_key_value_heads": 2, "hidden_size": 2048}))
    rc, _ = _run_cli(["explore", "--board", "kv260", "--model", str(path), "--no-report",
                      "--quiet", "--top", "1", "--json", str(tmp_path / "e.json")], capsys)
    assert rc == 0
    units = json.loads((tmp_path / "e.json").read_text())["summary"]["unit_counts"]
    attention = [u for u in units if u["kind"] == "attention" and u["count"] >= 1]
    assert attention and all("G16" in u["label"] for u in attention), attention


def test_a_config_contradicting_the_profile_is_one_line(tmp_path, capsys):
    profile = ROOT / "dse" / "data" / "bitnet-2b4t.profile.json"
    cfg = dict(PRESETS["bitnet-b1.58-2B-4T"], intermediate_size=4096)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    rc, err = _run_cli(["explore", "--board", "kv260", "--profile", str(profile), "--model",
                        str(path), "--no-report"], capsys)
    assert rc == 2 and err.count("\n") == 1, err
    assert f"--model {path} (against --profile {profile})" in err
    assert ("expected the shapes of the profile's Linears (model.layers.0.mlp.down_proj is "
            "2560x6912), got 2560x4096 for down_proj from the config") in err, err
    rc, err = _run_cli(["calibrate", "--from", str(ROOT / "examples" / "measurements" /
                                                   "bitnet-kv260.json"), "--profile",
                        str(profile), "--model", "bitnet_b1_58-3B", "--no-report"], capsys)
    assert rc == 2 and "num_hidden_layers: expected 30 (the profile's decoder layers), got 26" \
        in err, err


def test_the_embedded_profile_is_unchanged_without_model():
    """No --model: the embedded 2B-4T profile, torch and native both priced (as before)."""
    from dse.commands.model_input import load_model_input

    mi = load_model_input(None, None)
    assert mi.profile is not None and mi.workload.runtimes == ("torch", "native")
    assert mi.stem == "bitnet-2b4t"
