"""Rounds of several sequences, prompts in groups, their objectives, figures and bad input.

The published KV260 design (examples/plans/bitnet-kv260.yaml: 4 engines holding 4 vectors a
pass and answering 2 a clock) is the running example: its weight pass for a round of 1-4
sequences, its prompt in groups of 4, and the properties every plan's rounds and prompts
must have (hypothesis draws the engines, rounds, contexts and prompts).
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dse.cli import main
from dse.errors import DseError
from dse.model.board import load_board
from dse.model.ops import positions
from dse.model.plan_file import load_plan, plan_from_mapping
from dse.model.project import CostContext, Scenario, project
from dse.model.prompt import PROMPT_FORWARDS, decode_scenarios, prompt_cost, prompt_scenarios
from dse.model.template import shipped_template
from dse.model.workload import workload_from_profile
from dse.profile.default import default_profile

ROOT = Path(__file__).resolve().parents[1]
PLAN = ROOT / "examples" / "plans" / "bitnet-kv260.yaml"
KV260 = ROOT / "boards" / "kv260.yaml"


@pytest.fixture(scope="module")
def wl():
    return workload_from_profile(default_profile())


@pytest.fixture(scope="module")
def ctx():
    return CostContext.for_board(load_board(KV260))


@pytest.fixture(scope="module")
def published(wl):
    return load_plan(PLAN, wl)


def _round(wl, plan, ctx, sequences, context=65, kv="fp32", contexts=()):
    sc = Scenario("on-board", "decode", 1, max(contexts) if contexts else context, kv,
                  sequences, 4, tuple(contexts))
    return project(wl, plan, ctx, sc, with_baselines=False)


# -- a round of sequences --------------------------------------------------------------------

def test_published_plan_holds_four_and_answers_two(published):
    d = published.design
    assert (d.vectors, d.vectors_per_clock, published.prompt_group) == (4, 2, 4)
    assert d.buildable is False or "VPC=2" in d.build_note


def test_round_weight_pass_is_ceil_b_over_v_clocks_a_beat(wl, published, ctx):
    """One weight pass serves the round: at 2 vectors a clock a round of 2 streams as fast
    as one (DDR-bound), 3 and 4 take two clocks a beat (compute-bound), the same time."""
    ws = [_round(wl, published, ctx, b).items["weight_stream"] for b in (1, 2, 3, 4)]
    assert ws[1] == pytest.approx(ws[0], rel=0.03)
    assert ws[2] == pytest.approx(ws[3], rel=0.01) and ws[2] > 1.5 * ws[0]
    one_a_clock = replace(published, design=replace(published.design, vectors_per_clock=1))
    assert _round(wl, one_a_clock, ctx, 4).items["weight_stream"] == pytest.approx(
        2 * ws[3], rel=0.02)


def test_each_sequence_attends_its_own_context(wl, published, ctx):
    """A round's per-sequence operators (attention over its own cache) sum the sequences at
    their own contexts: a round at 65 and 1000 costs what the two rounds at 65 and at 1000
    each cost of attention, halved."""
    mixed = _round(wl, published, ctx, 2, contexts=(65, 1000))
    low = _round(wl, published, ctx, 2, 65)
    high = _round(wl, published, ctx, 2, 1000)
    assert mixed.components["attention"] == pytest.approx(
        (low.components["attention"] + high.components["attention"]) / 2, rel=1e-9)
    assert mixed.scenario.cached_tokens == 1065
    assert mixed.memory_bytes < high.memory_bytes


def test_round_pays_each_sequences_head_and_hand_off(wl, published, ctx):
    """The head's stage 2 (top-K, rescore) and sampling run per sequence; the hand-off reads
    each sequence's results out (and gathers them from the interleaved pass)."""
    one, four = _round(wl, published, ctx, 1), _round(wl, published, ctx, 4)
    assert four.items["head_rescore"] == pytest.approx(4 * one.items["head_rescore"], rel=0.05)
    assert four.components["sampling"] == pytest.approx(4 * one.components["sampling"],
                                                        rel=1e-6)
    # invalidation of 4x the results plus the gather of 4 vectors' results out of the pass
    assert four.items["sums_readout"] > 4 * one.items["sums_readout"]


def test_glue_scale_overlaps_only_at_one_vector(wl, published, ctx):
    """The FFN scale runs beside the glue's passes at one vector a forward (hidden: the glue
    takes longer), before each vector's passes with several."""
    assert _round(wl, published, ctx, 1).items.get("ffn_scale", 0.0) == 0.0
    assert _round(wl, published, ctx, 4).items["ffn_scale"] > 0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(vpc=st.sampled_from([1, 2]), vmax=st.integers(2, 8), context=st.integers(1, 2048),
       kv=st.sampled_from(["fp32", "fp16", "int8"]), data=st.data())
def test_rounds_never_beat_their_bounds_and_latency_never_falls(wl, published, ctx, vpc,
                                                                 vmax, context, kv, data):
    """For any engine and round: the aggregate tok/s never exceeds what the round's weight
    pass allows at the PL's sustained DDR rate, nor at its compute (ceil(S/V) clocks a beat,
    every engine call's cycles); and a sequence's latency never falls as sequences join."""
    design = replace(published.design, vectors=vmax, vectors_per_clock=min(vpc, vmax))
    plan = replace(published, design=design, prompt_group=None)
    s = data.draw(st.integers(1, vmax - 1))
    a, b = (_round(wl, plan, ctx, n, context, kv) for n in (s, s + 1))
    for p in (a, b):
        ddr_s = p.ddr_weight_bytes / p.ddr_bytes_per_s
        compute_s = sum(cc.compute_s for cc in p.calls.values())
        n = p.scenario.sequences
        assert p.tokens_per_s <= n / max(ddr_s, compute_s) * (1 + 1e-9)
    assert b.plan_ms >= a.plan_ms


# -- a prompt in groups ----------------------------------------------------------------------

def test_prompt_scenarios_cover_every_position_once():
    """The prompt's forwards: the groups before the last at their mean context (as two
    scenarios of the same total), the last with logits; together every position once and
    every causal pair once."""
    for p, g in ((30, 4), (17, 4), (4, 4), (3, 8), (64, 1), (33, 32)):
        scen = prompt_scenarios(p, g)
        assert len(scen) == PROMPT_FORWARDS
        assert sum(w * sc.m for sc, w in scen) == pytest.approx(p)
        assert sum(w * positions(sc.m, sc.context_tokens) for sc, w in scen if w) == \
            pytest.approx(p * (p + 1) / 2)
        assert [sc.logits for sc, _ in scen] == [False, False, True]
        assert sum(w for sc, w in scen) == pytest.approx(math.ceil(p / min(g, p)))


def test_prompt_groups_of_four_beat_one_position_a_forward(wl, published, ctx):
    """The published prompt: 4 positions a forward share each weight pass; only the last
    forward runs the head; the rate is the prompt over its time to first token."""
    four = prompt_cost(wl, published, ctx, 30, kv_dtype="fp32", threads=4)
    one = prompt_cost(wl, published, ctx, 30, 1, kv_dtype="fp32", threads=4)
    assert (four.group, four.forwards, one.forwards) == (4, 8, 30)
    assert four.tokens_per_s > 1.4 * one.tokens_per_s
    heads = [p.components["head"] for p, w in four.parts if w]
    assert heads[-1] > 0 and all(h == 0 for h in heads[:-1])
    assert four.tokens_per_s == pytest.approx(30e3 / four.ttft_ms)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prompt=st.integers(1, 600), group=st.sampled_from([1, 2, 4]))
def test_time_to_first_token_grows_with_the_prompt(wl, published, ctx, prompt, group):
    a = prompt_cost(wl, published, ctx, prompt, group, kv_dtype="fp32")
    b = prompt_cost(wl, published, ctx, prompt + 1, group, kv_dtype="fp32")
    assert b.ttft_ms > a.ttft_ms


def test_chat_turn_decodes_at_its_mean_context():
    """A chat turn's tokens after the first: N - 1 rounds at P + 1 .. P + N - 1 positions."""
    scen = decode_scenarios(100, 21)
    assert sum(w for _, w in scen) == pytest.approx(20)
    assert sum(w * sc.context_tokens for sc, w in scen) == pytest.approx(20 * 110.5)
    assert sum(w for _, w in decode_scenarios(100, 1)) == 0


# -- the search ------------------------------------------------------------------------------

def _explore(*args: str) -> int:
    return main(["explore", "--board", str(KV260), "--no-report", *args])


def test_throughput_objective_is_the_round_per_token(capsys, tmp_path):
    out = tmp_path / "p.json"
    assert _explore("--objective", "throughput", "--sequences", "4", "--runtime", "native",
                    "--json", str(out)) == 0
    import json

    data = json.loads(out.read_text())
    best = data["plans"][0]
    design = best["projections"][0]["plan"]["design"]
    assert design["vectors"] == 4 and design["vectors_per_clock"] in (1, 2)
    e2e = best["projections"][0]["end_to_end"]
    assert best["objective_ms"] == pytest.approx(e2e["plan_ms"] / 4)
    assert e2e["tokens_per_s"] == pytest.approx(4e3 / e2e["plan_ms"])
    curves = data["decode_vs_sequences"]
    assert curves and any(c["label"].startswith("CPU only") for c in curves)
    top = curves[0]["points"]
    agg = [p["aggregate_tokens_per_s"] for p in top]
    lat = [p["sequence_latency_ms"] for p in top]
    assert agg == sorted(agg) and lat == sorted(lat)
    ttft = data["ttft_vs_prompt"]
    assert all([p["ttft_ms"] for p in c["points"]] == sorted(p["ttft_ms"] for p in c["points"])
               for c in ttft)


def test_ttft_search_chooses_vmax_vpc_and_group(tmp_path):
    import json

    out = tmp_path / "p.json"
    assert _explore("--objective", "ttft", "--prompt-tokens", "64", "--runtime", "native",
                    "--kv-dtype", "int8", "--json", str(out)) == 0
    best = json.loads(out.read_text())["plans"][0]
    plan = best["projections"][0]["plan"]
    vmax = plan["design"]["vectors"]
    assert vmax > 1 and plan["prompt_group"] == vmax
    assert "VPC=" in plan["build_note"] and f"VMAX={vmax}" in plan["build_note"]
    assert best["objective_ms"] == pytest.approx(sum(
        w * p["end_to_end"]["plan_ms"] for p, w in zip(best["projections"], best["weights"],
                                                       strict=True)))


# -- bad input: one line naming the option, exit 2 -------------------------------------------

@pytest.mark.parametrize(("args", "message"), [
    (["--sequences", "40"], "--sequences: expected at most 32"),
    (["--objective", "ttft", "--prompt-group", "64"], "--prompt-group: expected at most 32"),
    (["--vectors-per-clock", "3"], "--vectors-per-clock: expected one of 1, 2"),
    # decode of one sequence holds one vector a pass: no design answers two a clock (the
    # search once said no engine design fits the board)
    (["--vectors-per-clock", "2"], "--vectors-per-clock 2: expected at most --sequences (1): "
     "with --objective decode a weight pass carries the round's 1 vector(s)"),
    # a chat turn decodes after its prompt: decode at 10 positions after 100 was priced
    (["--objective", "chat", "--prompt-tokens", "100", "--context-tokens", "10"],
     "--context-tokens: expected >= --prompt-tokens (100) with --objective chat: its decode "
     "follows the prompt, got 10"),
    (["--objective", "ttft", "--prompt-tokens", "5000"], "--prompt-tokens: expected at most"),
])
def test_explore_refuses_what_the_engines_cannot_hold(capsys, args, message):
    assert _explore(*args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and "Traceback" not in err, err


@pytest.mark.parametrize(("args", "message"), [
    (["--sequences", "5"], "--sequences: expected at most 4 (the vectors the plan's engine"),
    (["--phase", "prefill", "--prompt-tokens", "40", "--prompt-group", "8"],
     "--prompt-group: expected at most 4"),
    (["--phase", "prefill", "--prompt-tokens", "5000"], "--prompt-tokens: expected at most "
     "4096 (the model's context"),
])
def test_project_refuses_what_the_plan_cannot_hold(capsys, args, message):
    rc = main(["project", "--board", str(KV260), "--plan", str(PLAN), *args])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and message in err, err


def test_plan_file_vpc_and_group_checked(wl):
    base = {"engine": {"pe": 1, "simd": 80, "packing": "base3", "vectors": 4,
                       "stream_bits": 128}, "offload": ["model.layers.*"]}
    t = shipped_template()
    with pytest.raises(DseError, match=r"p\.yaml: engine\.vectors_per_clock: expected one of "
                                       r"1, 2 .* got 3"):
        plan_from_mapping({**base, "engine": {**base["engine"], "vectors_per_clock": 3}}, wl,
                          "p.yaml", t)
    with pytest.raises(DseError, match=r"p\.yaml: prompt_group: expected an integer from 1 "
                                       r"to engine\.vectors \(4"):
        plan_from_mapping({**base, "prompt_group": 8}, wl, "p.yaml", t)
