"""AR transformer vs upstream golden data: prefill and teacher-forced logits, sampling distributions, and the
exact tokens of a seeded generate(); plus batched generation equal to per-row generation.

Cases are discovered from $SEEDVC_GOLDEN_DIR (default ../shared/golden/seed_vc): every `golden_ar*.pt`.
"""
import re

import pytest
import torch

from compare import assert_close, assert_equal
from seed_vc.ar import ARDims, ARModel, SamplingOptions, logits_to_probs
from seed_vc.converter import reduce_repeats
from seed_vc.length_regulator import InterpolateRegulator
from seedvc_golden_models import cases, reduced_config

pytestmark = pytest.mark.golden


def build_ar(cfg: dict) -> tuple[ARModel, InterpolateRegulator]:
    c, reg = cfg["ar"]["model"]["config"], cfg["ar_length_regulator"]
    dims = ARDims(dim=c["dim"], n_layer=c["n_layer"], n_head=c["n_head"], n_local_heads=c["n_local_heads"],
                  intermediate_size=c["intermediate_size"], vocab_size=c["vocab_size"], rope_base=c["rope_base"])
    return ARModel(dims).eval(), InterpolateRegulator(reg["channels"], reg["codebook_size"], 0).eval()


@pytest.fixture(scope="module", params=cases("golden_ar*.pt"))
def case(request):
    g = torch.load(request.param, weights_only=True)
    ar, regulator = build_ar(reduced_config())
    ar.load_state_dict(g["state_dicts"]["ar"], strict=True)
    regulator.load_state_dict(g["state_dicts"]["ar_length_regulator"], strict=True)
    return ar, regulator, g["inputs"], g["outputs"]


def ar_cond(regulator, out) -> torch.Tensor:
    return regulator(torch.cat([out["ref_narrow_reduced"], out["src_narrow_reduced"]])[None])


@torch.no_grad()
def test_duration_reduction_and_regulator(case):
    _, regulator, inp, out = case
    assert_equal(reduce_repeats(inp["src_narrow_indices"][0]), out["src_narrow_reduced"], "source reduced")
    assert_equal(reduce_repeats(inp["ref_narrow_indices"][0]), out["ref_narrow_reduced"], "reference reduced")
    assert_close(ar_cond(regulator, out), out["ar_cond"], "ar_cond")


@torch.no_grad()
def test_prefill_and_teacher_forced_logits(case):
    ar, _, inp, out = case
    logits, cache, key_valid, positions = ar.prefill([out["ar_cond"][0]], [inp["ref_wide_indices"][0]])
    assert_close(logits[:, None], out["prefill_logits"], "prefill logits")
    # our prefix layout equals the recorded embedding sequence and positions
    assert cache.length == inp["prefill_emb"].size(1)
    assert int(positions[0]) == int(inp["prefill_input_pos"][-1]) + 1
    steps = []
    for i, token in enumerate(inp["teacher_forced_tokens"]):
        step_logits, key_valid = ar.step(token[None], positions + i, cache, key_valid)
        steps.append(step_logits)
    assert_close(torch.stack(steps, 1), out["teacher_forced_step_logits"], "teacher-forced logits")


def test_logits_to_probs(case):
    _, _, _, out = case
    logits = out["prefill_logits"][0]
    keys = [k for k in out if k.startswith("probs_")]
    assert keys
    for key in keys:
        top_p = float(re.search(r"top_p([\d.]+?)(?:_|$)", key).group(1))
        temperature = float(re.search(r"_T([\d.]+?)(?:_|$)", key).group(1))
        rp = re.search(r"_rp([\d.]+?)(?:_|$)", key)
        prev = re.search(r"prev(\d+)", key)
        # upstream passes a 0-d tensor: `prev5` means the single previous token 5
        probs = logits_to_probs(logits, top_p, temperature, float(rp.group(1)) if rp else 1.0,
                                torch.tensor([[int(prev.group(1))]]) if prev else None,
                                torch.tensor(["suppress_eos" in key]))
        assert_close(probs[0], out[key], key)


def test_generate_under_global_seed_is_exact(case):
    ar, _, inp, out = case
    keys = [k for k in out if k.startswith("generate_seed")]
    assert keys, "the case records no seeded generate()"
    for key in keys:
        torch.manual_seed(int(key.removeprefix("generate_seed")))
        tokens = ar.generate([out["ar_cond"][0]], [inp["ref_wide_indices"][0]],
                             SamplingOptions(top_p=0.9, temperature=1.0, repetition_penalty=1.0))
        assert_equal(tokens[0], out[key][0].long(), key)


def test_generate_batched_rows_equal_rows_alone(case):
    """K rows of different prefix lengths, each with its own generator, give the tokens each gives alone, also when
    the rows stop (EOS) at different steps."""
    ar, _, inp, out = case
    cond, ref = out["ar_cond"][0], inp["ref_wide_indices"][0]
    texts = [cond[: max(1, len(cond) * k // 4)] for k in (4, 3, 2)]  # the case's prefix, cut to 100/75/50 %
    options = SamplingOptions(top_p=0.9, temperature=1.0, repetition_penalty=1.5, max_new_tokens=60)

    def alone(text: torch.Tensor, seed: int) -> torch.Tensor:
        return ar.generate([text], [ref], options, [torch.Generator().manual_seed(seed)])[0]

    # Seeds under which the rows alone stop at different steps, so that the batch must mask finished rows.
    rows = []
    for text in texts:
        for seed in range(4):
            tokens = alone(text, seed)
            if all(tokens.numel() != other.numel() for *_, other in rows):
                break
        rows.append((text, seed, tokens))
    batch = ar.generate(texts, [ref] * len(texts), options, [torch.Generator().manual_seed(s) for _, s, _ in rows])
    for i, ((_, seed, expected), tokens) in enumerate(zip(rows, batch)):
        assert_equal(tokens, expected, f"row {i} (seed {seed})")
    # Only a model that never stops before the cap (every row runs to max_new_tokens) cannot show early stops.
    lengths = {tokens.numel() for *_, tokens in rows}
    assert len(lengths) > 1 or lengths == {options.max_new_tokens}, lengths
