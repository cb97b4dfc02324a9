"""CFM decoder vs upstream golden data: length regulator, DiT estimator, every guidance variant, seeded inference.

Cases are discovered from $SEEDVC_GOLDEN_DIR (default ../shared/golden/seed_vc): every `golden_cfm*.pt`.
"""
import json
import os
import pathlib

import pytest
import torch

from seed_vc.cfm import CFM, cosine_t_span, draw_noise
from seed_vc.dit import DiT, DiTDims
from seed_vc.length_regulator import InterpolateRegulator

GOLDEN = pathlib.Path(os.environ.get("SEEDVC_GOLDEN_DIR",
                                     pathlib.Path(__file__).resolve().parents[2].parent / "shared/golden/seed_vc"))
ATOL = 1e-5


def golden_files(pattern: str) -> list[pathlib.Path]:
    return sorted(GOLDEN.glob(pattern)) if GOLDEN.is_dir() else []


def build_cfm(cfg: dict) -> tuple[CFM, InterpolateRegulator]:
    est, reg = cfg["cfm"]["estimator"], cfg["cfm_length_regulator"]
    dims = DiTDims(depth=est["depth"], hidden_dim=est["hidden_dim"], num_heads=est["num_heads"],
                   in_channels=est["in_channels"], content_dim=est["content_dim"],
                   style_dim=est["style_encoder_dim"], block_size=est["block_size"])
    regulator = InterpolateRegulator(reg["channels"], reg["codebook_size"], len(reg["sampling_ratios"]))
    return CFM(DiT(dims)).eval(), regulator.eval()


@pytest.fixture(scope="module", params=golden_files("golden_cfm*.pt"), ids=lambda p: p.name)
def case(request):
    g = torch.load(request.param, weights_only=True)
    cfm, regulator = build_cfm(json.loads((GOLDEN / "reduced_config.json").read_text())["vc_wrapper_yaml_equivalent"])
    cfm.load_state_dict(g["state_dicts"]["cfm"], strict=True)
    regulator.load_state_dict(g["state_dicts"]["cfm_length_regulator"], strict=True)
    return cfm, regulator, g["inputs"], g["outputs"]


pytestmark = pytest.mark.golden


def close(a: torch.Tensor, b: torch.Tensor) -> None:
    assert a.shape == b.shape
    assert (a - b).abs().max().item() <= ATOL


@torch.no_grad()
def test_length_regulator(case):
    _, regulator, inp, out = case
    prompt = regulator(inp["ref_wide_indices"], torch.tensor([inp["ref_mel_len"]]))
    cond = regulator(inp["src_wide_indices"], torch.tensor([inp["src_mel_len"]]))
    close(prompt, out["prompt_condition"])
    close(cond, out["cond"])
    close(torch.cat([prompt, cond], 1), out["cat_condition"])


@torch.no_grad()
def test_length_regulator_rows_are_independent(case):
    """Each row is stretched to its own length: a padded batch equals the rows alone (upstream does not)."""
    _, regulator, inp, _ = case
    ref, src = inp["ref_wide_indices"][0], inp["src_wide_indices"][0]
    codes = torch.zeros(2, src.numel(), dtype=torch.long)
    codes[0], codes[1, : ref.numel()] = src, ref
    batch = regulator(codes, torch.tensor([inp["src_mel_len"], inp["ref_mel_len"]]),
                      torch.tensor([src.numel(), ref.numel()]))
    close(batch[0:1], regulator(src[None], torch.tensor([inp["src_mel_len"]])))
    close(batch[1:2, : inp["ref_mel_len"]], regulator(ref[None], torch.tensor([inp["ref_mel_len"]])))
    assert batch[1, inp["ref_mel_len"]:].abs().max() == 0


@torch.no_grad()
def test_estimator_single_and_batched(case):
    cfm, _, inp, out = case
    e = inp["estimator_single"]
    close(cfm.estimator(e["x"], e["prompt_x"], e["x_lens"], e["t"], e["style"], e["cond"]), out["estimator_single_out"])
    e = inp["estimator_batched"]
    batched = cfm.estimator(e["x"], e["prompt_x"], e["x_lens"], e["t"], e["style"], e["cond"])
    close(batched, out["estimator_batched_out"])


def test_t_span(case):
    _, _, inp, _ = case
    close(cosine_t_span(inp["n_steps"]), inp["t_span"])


@pytest.mark.parametrize("tag", ["cfg_0.7_0.7", "cfg_0.0_0.7", "cfg_0.7_0.0", "cfg_0.0_0.0", "random_voice_0.7"])
def test_solve_euler(case, tag):
    cfm, _, inp, out = case
    if tag not in out["solve_euler"]:
        pytest.skip(f"{tag} not recorded")
    random_voice = tag.startswith("random_voice")
    rates = (float(tag.rsplit("_", 1)[1]),) * 2 if random_voice else tuple(float(r) for r in tag.split("_")[1:])
    x = cfm.solve_euler(inp["noise_z"], torch.tensor([inp["noise_z"].size(-1)]), inp["prompt_mel"],
                        out["cat_condition"], inp["style"], inp["t_span"], rates, random_voice)
    close(x, out["solve_euler"][tag])


def test_inference_under_seed(case):
    cfm, _, inp, out = case
    key = next(k for k in out if k.startswith("inference_seed"))
    seed = int(key.removeprefix("inference_seed").split("_")[0])
    rates = tuple(float(r) for r in key.split("_cfg_")[1].split("_"))
    mu = out["cat_condition"]
    torch.manual_seed(seed)
    x = cfm.inference(mu, torch.tensor([mu.size(1)]), inp["prompt_mel"], inp["style"], inp["n_steps"], rates)
    close(x, out[key])


def test_batched_rows_equal_rows_alone(case):
    """Two takes of different lengths with their own noise give, in one batch, what each gives alone."""
    cfm, _, inp, out = case
    mu, plen = out["cat_condition"], inp["prompt_mel"].size(-1)
    lens = [mu.size(1), mu.size(1) - 37]
    gens = [torch.Generator().manual_seed(s) for s in (1, 2)]
    noise = draw_noise(lens, generators=gens)
    mus = torch.stack([mu[0], torch.cat([mu[0, : lens[1]], torch.zeros(37, mu.size(2))])])
    t_span = cosine_t_span(3)
    batch = cfm.solve_euler(noise, torch.tensor(lens), inp["prompt_mel"], mus, inp["style"], t_span)
    for i, n in enumerate(lens):
        alone = cfm.solve_euler(noise[i:i + 1, :, :n], torch.tensor([n]), inp["prompt_mel"], mus[i:i + 1, :n],
                                inp["style"], t_span)
        # Same ops on the same values; only the attention sums run over a different number of masked keys.
        close(batch[i:i + 1, :, :n], alone)
    assert batch[:, :, :plen].abs().max() == 0
