"""CFM decoder vs upstream golden data: length regulator, DiT estimator, every guidance variant, seeded inference.

Cases are discovered from $SEEDVC_GOLDEN_DIR (default ../shared/golden/seed_vc): every `golden_cfm*.pt`.
"""
import re

import pytest
import torch

from compare import assert_close, assert_equal
from seed_vc.cfm import CFM, cosine_t_span, draw_noise
from seed_vc.dit import DiT, DiTDims
from seed_vc.length_regulator import InterpolateRegulator
from seedvc_golden_models import cases, reduced_config


def build_cfm(cfg: dict) -> tuple[CFM, InterpolateRegulator]:
    est, reg = cfg["cfm"]["estimator"], cfg["cfm_length_regulator"]
    dims = DiTDims(depth=est["depth"], hidden_dim=est["hidden_dim"], num_heads=est["num_heads"],
                   in_channels=est["in_channels"], content_dim=est["content_dim"],
                   style_dim=est["style_encoder_dim"], block_size=est["block_size"])
    regulator = InterpolateRegulator(reg["channels"], reg["codebook_size"], len(reg["sampling_ratios"]))
    return CFM(DiT(dims)).eval(), regulator.eval()


@pytest.fixture(scope="module", params=cases("golden_cfm*.pt"))
def case(request):
    g = torch.load(request.param, weights_only=True)
    cfm, regulator = build_cfm(reduced_config())
    cfm.load_state_dict(g["state_dicts"]["cfm"], strict=True)
    regulator.load_state_dict(g["state_dicts"]["cfm_length_regulator"], strict=True)
    return cfm, regulator, g["inputs"], g["outputs"]


pytestmark = pytest.mark.golden


@torch.no_grad()
def test_length_regulator(case):
    _, regulator, inp, out = case
    prompt = regulator(inp["ref_wide_indices"], torch.tensor([inp["ref_mel_len"]]))
    cond = regulator(inp["src_wide_indices"], torch.tensor([inp["src_mel_len"]]))
    assert_close(prompt, out["prompt_condition"], "prompt condition")
    assert_close(cond, out["cond"], "source condition")
    assert_close(torch.cat([prompt, cond], 1), out["cat_condition"], "concatenated condition")


@torch.no_grad()
def test_length_regulator_rows_are_independent(case):
    """Each row is stretched to its own length: a padded batch equals the rows alone (upstream does not)."""
    _, regulator, inp, _ = case
    rows = [(inp["src_wide_indices"][0], inp["src_mel_len"]), (inp["ref_wide_indices"][0], inp["ref_mel_len"])]
    codes = torch.zeros(len(rows), max(c.numel() for c, _ in rows), dtype=torch.long)
    for i, (c, _) in enumerate(rows):
        codes[i, : c.numel()] = c
    batch = regulator(codes, torch.tensor([n for _, n in rows]), torch.tensor([c.numel() for c, _ in rows]))
    for i, (c, n) in enumerate(rows):
        assert_close(batch[i: i + 1, :n], regulator(c[None], torch.tensor([n])), f"row {i}")
        assert_equal(batch[i, n:], torch.zeros_like(batch[i, n:]), f"row {i} padding")


@torch.no_grad()
def test_estimator_single_and_batched(case):
    cfm, _, inp, out = case
    e = inp["estimator_single"]
    assert_close(cfm.estimator(e["x"], e["prompt_x"], e["x_lens"], e["t"], e["style"], e["cond"]),
                 out["estimator_single_out"], "estimator (single)")
    e = inp["estimator_batched"]
    batched = cfm.estimator(e["x"], e["prompt_x"], e["x_lens"], e["t"], e["style"], e["cond"])
    assert_close(batched, out["estimator_batched_out"], "estimator (batched)")


def test_t_span(case):
    _, _, inp, _ = case
    assert_close(cosine_t_span(inp["n_steps"]), inp["t_span"], "t_span")


def test_solve_euler_every_recorded_guidance(case):
    """Each recorded tag ("cfg_<intelligibility>_<similarity>" or "random_voice_<rate>") replays its guidance."""
    cfm, _, inp, out = case
    assert out["solve_euler"], "the case records no solve_euler run"
    for tag, expected in out["solve_euler"].items():
        match = re.fullmatch(r"(cfg|random_voice)_([\d.]+)(?:_([\d.]+))?", tag)
        assert match, f"unknown solve_euler tag {tag!r}"
        random_voice = match[1] == "random_voice"
        rates = (float(match[2]),) * 2 if random_voice else (float(match[2]), float(match[3]))
        x = cfm.solve_euler(inp["noise_z"], torch.tensor([inp["noise_z"].size(-1)]), inp["prompt_mel"],
                            out["cat_condition"], inp["style"], inp["t_span"], rates, random_voice)
        assert_close(x, expected, f"solve_euler[{tag}]")


def test_inference_under_seed(case):
    cfm, _, inp, out = case
    keys = [k for k in out if k.startswith("inference_seed")]
    assert keys, "the case records no seeded inference"
    mu = out["cat_condition"]
    for key in keys:  # inference_seed<seed>_cfg_<intelligibility>_<similarity>
        seed = int(key.removeprefix("inference_seed").split("_")[0])
        rates = tuple(float(r) for r in key.split("_cfg_")[1].split("_"))
        torch.manual_seed(seed)
        x = cfm.inference(mu, torch.tensor([mu.size(1)]), inp["prompt_mel"], inp["style"], inp["n_steps"], rates)
        assert_close(x, out[key], key)


def test_batched_rows_equal_rows_alone(case):
    """Two takes of different lengths with their own noise give, in one batch, what each gives alone."""
    cfm, _, inp, out = case
    mu, plen = out["cat_condition"], inp["prompt_mel"].size(-1)
    assert mu.size(1) > plen + 1, "the case needs source frames after the prompt"
    lens = [mu.size(1), plen + (mu.size(1) - plen) // 2]  # the second take keeps half of the source
    gens = [torch.Generator().manual_seed(s) for s in (1, 2)]
    noise = draw_noise(lens, generators=gens)
    mus = torch.stack([mu[0], torch.cat([mu[0, : lens[1]], torch.zeros(lens[0] - lens[1], mu.size(2))])])
    t_span = cosine_t_span(3)
    batch = cfm.solve_euler(noise, torch.tensor(lens), inp["prompt_mel"], mus, inp["style"], t_span)
    for i, n in enumerate(lens):
        alone = cfm.solve_euler(noise[i:i + 1, :, :n], torch.tensor([n]), inp["prompt_mel"], mus[i:i + 1, :n],
                                inp["style"], t_span)
        # Same ops on the same values; only the attention sums run over a different number of masked keys.
        assert_close(batch[i:i + 1, :, :n], alone, f"take {i}")
    assert_equal(batch[:, :, :plen], torch.zeros_like(batch[:, :, :plen]), "prompt region")
