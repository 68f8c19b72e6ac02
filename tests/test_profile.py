"""``dse profile``: recorder stream -> records (pure), a measured ``tiny`` run, report, CLI.

The pure tests run everywhere; the rest need the ``[profile]`` extra (torch, transformers,
psutil) and skip without it. Everything uses the ``tiny`` preset (or tiny checkpoints made on
the spot), so the whole file takes seconds.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from dse.cli import main
from dse.profile.calls import calls_of, module_records
from dse.profile.format import LINEAR_ROLES, Profile, load_profile
from dse.profile.hooks import ATTENTION, LINEAR, RawTrace

ROOT = Path(__file__).resolve().parents[1]
GEN = 5
PROMPT = 7
HIDDEN, INTER, KV, VOCAB = 256, 512, 128, 1000
#: One torch thread: with two on a 2-vCPU machine where another job holds a core, OpenMP's
#: barrier turns a 1 ms tiny decode step into ~100 ms (seen here).
THREADS = 1
#: Linear roles of one tiny decoder layer: (input features, output features).
LAYER_SHAPES = {"self_attn.q_proj": (HIDDEN, HIDDEN), "self_attn.k_proj": (HIDDEN, KV),
                "self_attn.v_proj": (HIDDEN, KV), "self_attn.o_proj": (HIDDEN, HIDDEN),
                "mlp.gate_proj": (HIDDEN, INTER), "mlp.up_proj": (HIDDEN, INTER),
                "mlp.down_proj": (INTER, HIDDEN)}


def _needs_profile_extra() -> None:
    for mod in ("torch", "transformers", "psutil"):
        pytest.importorskip(mod)


def _cli_error(capsys: pytest.CaptureFixture[str], argv: list[str], *names: str) -> str:
    """Run the CLI expecting a user error: exit 2 and one stderr line naming ``names``."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1, err
    for name in names:
        assert name in err, err
    return err


# -- the raw stream -> records (pure, no torch) ---------------------------------------------------

def _trace() -> RawTrace:
    """Two modules: attention (0) calling a Linear (1); one prefill and two decode calls."""
    tr = RawTrace(names=["model.layers.0.self_attn", "model.layers.0.self_attn.q_proj"],
                  kinds=[ATTENTION, LINEAR], params=[0, 64])
    t = 0

    def call(attn_ns: int, lin_ns: int) -> None:
        nonlocal t
        tr.events.extend([0, 1, ~1, ~0])
        tr.times_ns.extend([t, t + 10, t + 10 + lin_ns, t + attn_ns])
        t += attn_ns + 5

    tr.marks.append(("prefill", 0))
    tr.probes.append((0, 0, (1, 4, 8), (1, 4, 8)))
    tr.probes.append((1, 1, (1, 4, 8), (1, 4, 8)))
    call(1000, 300)
    tr.marks.append(("decode", len(tr.events)))
    tr.probes.append((len(tr.events), 0, (1, 1, 8), (1, 1, 8)))
    tr.probes.append((len(tr.events) + 1, 1, (1, 1, 8), (1, 1, 8)))
    call(500, 100)
    call(700, 200)
    return tr


def test_calls_nesting_phases_and_shapes() -> None:
    calls = calls_of(_trace())
    assert [(c.module, c.phase) for c in calls] == [(0, "prefill"), (1, "prefill"),
                                                    (0, "decode"), (1, "decode"),
                                                    (0, "decode"), (1, "decode")]
    attn = [c for c in calls if c.module == 0]
    assert [c.inclusive_ns for c in attn] == [1000, 500, 700]
    assert [c.ns for c in attn] == [700, 400, 500]  # exclusive of the nested Linear
    lin = [c for c in calls if c.module == 1]
    assert [c.ns for c in lin] == [300, 100, 200]
    assert lin[0].input_shape == (1, 4, 8) and lin[2].input_shape == (1, 1, 8)


def test_module_records_split() -> None:
    tr = _trace()
    attn, lin = module_records(tr, calls_of(tr))
    assert (lin.module_type, lin.role, lin.layer_index, lin.params) == (LINEAR, "q_proj", 0, 64)
    assert (lin.calls, lin.prefill_calls, lin.decode_calls) == (3, 1, 2)
    assert lin.prefill_ms == pytest.approx(300e-6) and lin.decode_ms == pytest.approx(300e-6)
    assert lin.total_ms == pytest.approx(600e-6)
    assert lin.input_shape == (1, 1, 8)  # the decode shape, as the cost model sizes calls
    assert attn.total_ms == pytest.approx(1600e-6) and attn.role == "self_attn"


def test_unfinished_call_is_dropped() -> None:
    tr = _trace()
    tr.events.append(0)
    tr.times_ns.append(10**9)
    assert len(calls_of(tr)) == 6


def test_cli_without_torch_imports_no_torch() -> None:
    """``dse explore`` and friends must work without the profile extra: building the CLI
    (which imports every command module, profile included) must not import torch."""
    code = ("import sys, dse.cli; dse.cli.build_parser(); "
            "import dse.profile.calls, dse.report.profile_md, dse.report.profile_plots; "
            "sys.exit(1 if {'torch', 'transformers', 'psutil'} & set(sys.modules) else 0)")
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


def test_missing_extra_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    _cli_error(capsys, ["profile", "--preset", "tiny", "-o", str(tmp_path / "p.json"),
                        "--report", str(tmp_path / "p.md")], "[profile] extra", "torch")
    assert list(tmp_path.iterdir()) == []


# -- a measured run of the tiny preset ---------------------------------------------------------

@pytest.fixture(scope="module")
def run_data():
    _needs_profile_extra()
    from dse.profile.runner import RunOptions, check_options, run

    opts = RunOptions(preset="tiny", gen_tokens=GEN, prompt_tokens=PROMPT, warmup=1,
                      threads=THREADS, memory_interval_s=0.01, progress=False)
    return run(opts, check_options(opts))


@pytest.fixture(scope="module")
def profile(run_data) -> Profile:
    from dse.profile.assemble import build_profile
    from dse.profile.system import measure_roofline, system_info

    return build_profile(run_data, system_info(run_data.threads,
                                               roofline=measure_roofline(run_data.threads)))


def _expected_linears() -> dict[str, tuple[int, int]]:
    names = {f"model.layers.{i}.{role}": shape for i in range(2)
             for role, shape in LAYER_SHAPES.items()}
    return {**names, "lm_head": (HIDDEN, VOCAB)}


def test_every_linear_with_exact_calls_and_shapes(profile: Profile) -> None:
    want = _expected_linears()
    lin = {m.name: m for m in profile.linears}
    assert set(lin) == set(want) and len(lin) == 2 * 7 + 1
    for name, (k, n) in want.items():
        m = lin[name]
        assert (m.prefill_calls, m.decode_calls, m.calls) == (1, GEN, GEN + 1), name
        assert m.input_shape == (1, 1, k) and m.output_shape == (1, 1, n), name
        assert m.params == k * n
        assert m.total_ms > 0 and m.prefill_ms > 0 and m.decode_ms > 0
        assert m.total_ms == pytest.approx(m.prefill_ms + m.decode_ms, abs=1e-3)
        assert m.outlier is None
    assert {m.role for m in profile.linears} == set(LINEAR_ROLES)


def test_prefill_calls_see_the_prompt(run_data) -> None:
    calls = calls_of(run_data.trace)
    names = run_data.trace.names
    q0 = names.index("model.layers.0.self_attn.q_proj")
    pre = [c for c in calls if c.module == q0 and c.phase == "prefill"]
    dec = [c for c in calls if c.module == q0 and c.phase == "decode"]
    assert len(pre) == 1 and len(dec) == GEN
    assert pre[0].input_shape == (1, PROMPT, HIDDEN)
    assert all(c.input_shape == (1, 1, HIDDEN) for c in dec)
    assert {c.phase for c in calls} == {"prefill", "decode"}  # warm-up not recorded


def test_other_modules(profile: Profile) -> None:
    others = {m.name: m for m in profile.modules if not m.is_linear}
    kinds = {}
    for m in others.values():
        kinds[m.module_type] = kinds.get(m.module_type, 0) + 1
        assert (m.prefill_calls, m.decode_calls) == (1, GEN)
        assert m.total_ms > 0
    # per layer: attention core, activation, 4 norms; plus embedding and final norm
    assert kinds == {"Attention": 2, "Activation": 2, "RMSNorm": 9, "Embedding": 1}
    assert others["model.embed_tokens"].input_shape == (1, 1)
    assert others["model.layers.1.mlp.act_fn"].output_shape == (1, 1, INTER)


def test_measured_operators_attach_to_the_workload(profile: Profile) -> None:
    """The profile carries the config; its measured modules price the torch runtime's ops."""
    from dse.model.board import load_board
    from dse.model.engine import EngineDesign
    from dse.model.project import CostContext, Plan, Scenario, project
    from dse.model.workload import workload_from_profile

    assert profile.model_config["hidden_size"] == 256
    assert profile.model_config["num_key_value_heads"] == 2
    wl = workload_from_profile(profile)
    assert wl.config.source == "profile: model_config"
    norm = wl.measured_op("input_layernorm", "decode")
    mods = [m for m in profile.modules if m.role == "input_layernorm"]
    assert norm.call_ms == pytest.approx(sum(m.decode_ms for m in mods) / (len(mods) * GEN))
    board = load_board(Path(__file__).resolve().parents[1] / "boards" / "kv260.yaml")
    plan = Plan("cpu", EngineDesign(1, 1), frozenset(), runtime="torch")
    p = project(wl, plan, CostContext.for_board(board), Scenario(context_tokens=PROMPT + GEN))
    ops = {o.role: o for o in p.ops}
    assert str(ops["input_layernorm"].basis).startswith("measured (`input_layernorm`")
    assert str(ops["attn_score"].basis).startswith("measured (`self_attn`")
    assert str(ops["residual_attn"].basis).startswith("not measured")


def test_recorder_detaches(run_data) -> None:
    _needs_profile_extra()
    import torch

    from dse.profile.hooks import CallRecorder
    from dse.profile.presets import build_preset

    model = build_preset("tiny", torch.float32)
    rec = CallRecorder(model).attach()
    assert "forward" in model.lm_head.__dict__
    rec.detach()
    assert all("forward" not in m.__dict__ for m in model.modules())


def test_tokens_phases_memory_system(profile: Profile, run_data) -> None:
    assert profile.generated_tokens == GEN and profile.prompt_tokens == PROMPT
    assert [t.index for t in profile.tokens] == list(range(1, GEN + 1))
    assert all(t.ms > 0 and t.token_id is not None and 0 <= t.token_id < VOCAB
               for t in profile.tokens)
    assert [p.name for p in profile.phases] == ["model_load", "prefill", "decode"]
    decode = profile.phase("decode")
    assert decode is not None and decode.ms >= sum(t.ms for t in profile.tokens)
    assert len(profile.memory) >= 3 and all(s.rss_mb > 0 for s in profile.memory)
    assert profile.peak_memory_mb >= max(s.rss_mb for s in profile.memory)
    r = profile.system.roofline
    assert r.peak_fp32_gflops > 0 and r.peak_bf16_gflops > 0 and r.memory_bandwidth_gb_s > 0
    assert "torch.matmul" in r.method
    assert profile.system.torch_threads == run_data.threads == THREADS
    assert any("synthesized" in n for n in profile.provenance.notes)
    assert profile.provenance.tool == "dse profile"


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_report_renders_and_imports_back(profile: Profile, lang: str) -> None:
    from dse.profile.seed_import import parse_report
    from dse.report.profile_md import render_profile_report

    plots = {"roles": "x-roles.png", "memory": "x-memory.png"}
    text = render_profile_report(profile, lang, plots=plots)
    assert "3.4 Prefill" in text and "3.5 " in text and "](x-roles.png)" in text
    assert "](x-memory.png)" in text and "self_attn" in text
    back = parse_report(text, f"tiny.{lang}.md")  # runs the count and sum cross-checks
    assert back.report_lang == lang
    assert len(back.linears) == 15
    assert [m.name for m in back.linears] == [m.name for m in sorted(
        profile.linears, key=lambda m: -m.total_ms)]
    assert {m.name: m.calls for m in back.linears} == {m.name: m.calls for m in profile.linears}
    assert [t.token_id for t in back.tokens] == [t.token_id for t in profile.tokens]
    assert [p.name for p in back.phases] == [p.name for p in profile.phases]
    assert len(back.memory) == len(profile.memory)
    assert back.prompt_tokens is None  # the importer does not read it (documented)


def test_report_long_memory_timeline_collapses(profile: Profile) -> None:
    from dse.profile.seed_import import parse_report
    from dse.report.profile_md import MEMORY_ROWS_SHOWN, render_profile_report

    many = tuple(replace(profile.memory[0], t_s=float(i)) for i in range(MEMORY_ROWS_SHOWN + 5))
    text = render_profile_report(replace(profile, memory=many), "en")
    assert f"({MEMORY_ROWS_SHOWN + 5} samples)" in text
    assert len(parse_report(text, "long.md").memory) == MEMORY_ROWS_SHOWN + 5


# -- the command, end to end ---------------------------------------------------------------------

def test_cli_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _needs_profile_extra()
    out, report = tmp_path / "tiny.profile.json", tmp_path / "tiny.en.md"
    assert main(["profile", "--preset", "tiny", "--gen-tokens", "4", "--prompt-tokens", "6",
                 "--threads", str(THREADS), "--lang", "en", "-o", str(out), "--report", str(report),
                 "--no-progress"]) == 0
    stdout = capsys.readouterr().out
    assert len(stdout.splitlines()) == 1 and "15 Linear" in stdout
    p = load_profile(out)
    assert p.generated_tokens == 4 and p.system.roofline.peak_fp32_gflops
    assert all((m.prefill_calls, m.decode_calls) == (1, 4) for m in p.linears)
    text = report.read_text(encoding="utf-8")
    for png in ("tiny.en-roles.png", "tiny.en-memory.png"):
        assert (tmp_path / png).stat().st_size > 1000 and f"]({png})" in text
    assert json.loads(out.read_text(encoding="utf-8"))["format"] == 1
    assert main(["explore", "--profile", str(out), "--board",
                 str(ROOT / "boards" / "zcu104.yaml"), "--no-report"]) == 0
    assert [f.name for f in tmp_path.iterdir() if f.name.startswith(".")] == []


def test_report_goes_beside_the_json(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """-o DIR/x.json without --report: report and plots in DIR, nothing under ./reports."""
    _needs_profile_extra()
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    out = tmp_path / "out" / "x.json"
    out.parent.mkdir()
    assert main(["profile", "--preset", "tiny", "--gen-tokens", "2", "--prompt-tokens", "4",
                 "--threads", str(THREADS), "--lang", "en", "-o", str(out),
                 "--no-progress"]) == 0
    capsys.readouterr()
    assert (out.parent / "tiny.en.md").is_file()
    assert (out.parent / "tiny.en-roles.png").is_file()
    assert list(cwd.iterdir()) == []


def _tiny_checkpoints(root: Path) -> tuple[Path, Path]:
    """A bf16 tiny checkpoint with a word-level tokenizer, and a packed-ternary one."""
    import torch
    from safetensors.torch import save_file
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    from transformers.integrations.bitnet import pack_weights

    from dse.profile.presets import build_preset

    model = build_preset("tiny", torch.bfloat16)
    bf16, packed = root / "bf16", root / "packed"
    model.save_pretrained(bf16)
    vocab = {"[UNK]": 0, "<s>": 1, "</s>": 2, **{f"w{i}": i for i in range(3, VOCAB)}}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", bos_token="<s>",
                            eos_token="</s>").save_pretrained(bf16)
    tensors = {}
    for key, w in model.state_dict().items():
        if key == "lm_head.weight":  # tied to the embedding
            continue
        if key.endswith("_proj.weight"):
            scale = w.float().abs().mean().clamp(min=1e-5)
            tensors[key] = pack_weights((w.float() / scale).round().clamp(-1, 1))
            tensors[key[:-len("weight")] + "weight_scale"] = torch.tensor(
                [1.0 / scale.item()], dtype=torch.bfloat16)  # BitLinear divides by it
        else:
            tensors[key] = w.contiguous()
    packed.mkdir()
    save_file(tensors, str(packed / "model.safetensors"), metadata={"format": "pt"})
    cfg = json.loads((bf16 / "config.json").read_text(encoding="utf-8"))
    cfg["quantization_config"] = {"quant_method": "bitnet", "linear_class": "bitlinear",
                                  "quantization_mode": "offline"}
    (packed / "config.json").write_text(json.dumps(cfg), encoding="utf-8")
    return bf16, packed


def test_checkpoints_prompt_text_and_packed_ternary(tmp_path: Path) -> None:
    _needs_profile_extra()
    pytest.importorskip("accelerate")
    from dse.profile.assemble import build_profile
    from dse.profile.runner import RunOptions, check_options, run
    from dse.profile.system import system_info

    bf16, packed = _tiny_checkpoints(tmp_path)
    opts = RunOptions(model=bf16, dtype="bfloat16", prompt="w5 w6 w7 w8", gen_tokens=3,
                      warmup=0, threads=THREADS, progress=False)
    p = build_profile(d := run(opts, check_options(opts)), system_info(d.threads))
    assert p.prompt_tokens == 4 and p.dtype == "torch.bfloat16"
    assert [ph.name for ph in p.phases] == ["tokenizer_load", "model_load", "encode", "prefill",
                                            "decode", "detokenize"]
    assert all(t.text.startswith("w") or t.text in ("[UNK]", "<s>", "</s>") for t in p.tokens)
    opts = RunOptions(model=packed, prompt_tokens=5, gen_tokens=3, warmup=1, threads=THREADS,
                      progress=False)
    data = run(opts, check_options(opts))
    p = build_profile(data, system_info(data.threads))
    lin = {m.name: m for m in p.linears}
    assert len(lin) == 15 and lin["model.layers.1.mlp.down_proj"].input_shape == (1, 1, INTER)
    assert all((m.prefill_calls, m.decode_calls) == (1, 3) for m in lin.values())
    assert any("BitLinear" in n for n in p.provenance.notes)


# -- bad input: one line, exit 2 -----------------------------------------------------------------

def _not_bitnet(tmp_path: Path) -> Path:
    d = tmp_path / "llama"
    d.mkdir()
    (d / "config.json").write_text('{"model_type": "llama"}', encoding="utf-8")
    return d


@pytest.mark.parametrize("case, argv, names", [
    ("missing", ["--model", "{tmp}/nope"], ["--model", "no such folder"]),
    ("no config", ["--model", "{tmp}"], ["--model", "config.json"]),
    ("not bitnet", ["--model", "{llama}"], ["config.json", "model_type", "'llama'"]),
    ("preset", ["--preset", "gpt2"], ["--preset", "tiny", "'gpt2'"]),
    ("zero gen", ["--preset", "tiny", "--gen-tokens", "0"], ["--gen-tokens", ">= 1"]),
    ("zero prompt", ["--preset", "tiny", "--prompt-tokens", "0"], ["--prompt-tokens"]),
    ("context", ["--preset", "tiny", "--prompt-tokens", "500", "--gen-tokens", "13"],
     ["512", "500 + 13 = 513"]),
    ("dtype", ["--preset", "tiny", "--dtype", "float16"], ["--dtype", "bfloat16", "float16"]),
    ("prompt without tokenizer", ["--preset", "tiny", "--prompt", "hi"], ["--prompt",
                                                                          "tokenizer"]),
    ("neither", [], ["--model/--preset"]),
    ("lang", ["--preset", "tiny", "--lang", "fr"], ["--lang", "'fr'"]),
    ("out folder", ["--preset", "tiny", "-o", "{tmp}/no/p.json"], ["does not exist"]),
])
def test_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str,
                   argv: list[str], names: list[str]) -> None:
    llama = _not_bitnet(tmp_path)
    args = [a.format(tmp=tmp_path, llama=llama) for a in argv]
    _cli_error(capsys, ["profile", *args, "--no-progress"], *names)
