"""Content tokens: truncated HuBERT + ASTRAL wide (2048) and narrow (32) quantizers from one HuBERT pass.

Golden cases are discovered from $SEEDVC_GOLDEN_DIR (default ../shared/golden/seed_vc): every `golden_content*.pt`.
Discrete tokens must match exactly, except that a bit whose upstream pre-sign value lies within float32 rounding
(compare.tolerance) of zero may flip: the golden files record their smallest margin, and a reimplementation
reproduces pre-sign values only to that tolerance.
"""
import pytest
import torch

from compare import assert_close, assert_equal, tolerance
from seed_vc.audio import pad_waves
from seed_vc.content import AstralDims, AstralQuantizer, ContentEncoder, build_hubert
from seedvc_golden_models import cases, reduced_config, row_items


def astral_dims(extractor_cfg: dict) -> AstralDims:
    enc, quant = extractor_cfg["encoder"], extractor_cfg["quantizer"]
    return AstralDims(ssl_dim=enc["input_dim"], dim=enc["dim"], intermediate_dim=enc["intermediate_dim"],
                      num_blocks=enc["num_blocks"], codebook_size=quant["codebook_size"])


def assert_tokens_match(ours: torch.Tensor, ref: torch.Tensor, ref_prequant: torch.Tensor, quantizer) -> None:
    """Equal tokens, except bits whose reference pre-sign value lies within rounding of zero."""
    differing = quantizer.indices_to_bits(ours) != quantizer.indices_to_bits(ref)
    unstable = ref_prequant.abs() <= tolerance(ref_prequant)
    assert not (differing & ~unstable).any(), f"{int((ours != ref).sum())} tokens differ beyond the margin"


@pytest.fixture(scope="module", params=cases("golden_content*.pt"))
def case(request):
    g = torch.load(request.param, weights_only=True)
    cfg = reduced_config()
    wide_cfg, narrow_cfg = cfg["content_extractor_wide"], cfg["content_extractor_narrow"]
    sd_wide, sd_narrow = g["state_dicts"]["content_extractor_wide"], g["state_dicts"]["content_extractor_narrow"]
    hubert = build_hubert(g["hubert_config"], wide_cfg["ssl_output_layer"])
    hubert.load_state_dict({k.removeprefix("ssl_model."): v for k, v in sd_wide.items() if k.startswith("ssl_model.")},
                           strict=True)
    wide, narrow = AstralQuantizer(astral_dims(wide_cfg)), AstralQuantizer(astral_dims(narrow_cfg))
    wide.load_state_dict({k: v for k, v in sd_wide.items() if not k.startswith("ssl_model.")}, strict=True)
    narrow.load_state_dict(sd_narrow, strict=True)
    return ContentEncoder(hubert, wide.eval(), narrow.eval()), g


@pytest.mark.golden
def test_single_items_match_upstream(case):
    encoder, g = case
    for name, out in g["outputs"].items():
        if "wide_indices" not in out or f"{name}_16k" not in g["inputs"]:
            continue
        wave = g["inputs"][f"{name}_16k"]
        lens = torch.tensor([wave.numel()])
        with torch.inference_mode():
            hidden, feature_lens = encoder.features(wave[None], lens)
            assert_close(hidden, out["ssl_last_hidden_state"], f"{name}: HuBERT hidden states")
            assert_equal(feature_lens, out["feature_lens"], f"{name}: feature lengths")
            for kind, quantizer in (("wide", encoder.wide), ("narrow", encoder.narrow)):
                encoded = quantizer.encoder(hidden.transpose(1, 2), feature_lens).transpose(1, 2)
                assert_close(encoded, out[f"{kind}_encoder_out"], f"{name}: {kind} encoder")
                prequant = quantizer.quantizer.prequant(encoded)
                assert_close(prequant, out[f"{kind}_bsq_prequant_l2"], f"{name}: {kind} pre-sign values")
                quantized, indices = quantizer(hidden, feature_lens)
                assert_tokens_match(indices, out[f"{kind}_indices"], out[f"{kind}_bsq_prequant_l2"],
                                    quantizer.quantizer)
                if torch.equal(indices, out[f"{kind}_indices"]):
                    assert_close(quantized, out[f"{kind}_quantized"], f"{name}: {kind} quantized")
        tokens = encoder(wave[None], lens)
        assert_tokens_match(tokens.wide, out["wide_indices"], out["wide_bsq_prequant_l2"], encoder.wide.quantizer)
        assert_tokens_match(tokens.narrow, out["narrow_indices"], out["narrow_bsq_prequant_l2"],
                            encoder.narrow.quantizer)


@pytest.mark.golden
def test_padded_batch_gives_each_items_own_tokens(case):
    """Upstream's padded batch changes tokens (GRN and depthwise convs read the padding); ours must not."""
    encoder, g = case
    for batch in (v for v in g["outputs"].values() if "waves_16k_padded" in v):
        tokens = encoder(batch["waves_16k_padded"], batch["lens"])
        for row, name in enumerate(row_items(g["inputs"], batch["waves_16k_padded"], batch["lens"])):
            out = g["outputs"][name]
            n = int(out["feature_lens"][0])
            assert tokens.lens[row] == n
            assert_tokens_match(tokens.wide[row:row + 1, :n], out["wide_indices"], out["wide_bsq_prequant_l2"],
                                encoder.wide.quantizer)
            assert_tokens_match(tokens.narrow[row:row + 1, :n], out["narrow_indices"],
                                out["narrow_bsq_prequant_l2"], encoder.narrow.quantizer)


def test_convnext_stage_is_exact_under_padding():
    torch.manual_seed(0)
    quantizer = AstralQuantizer(AstralDims(ssl_dim=16, dim=24, intermediate_dim=32, num_blocks=2)).eval()
    for block in quantizer.encoder.blocks:  # a zero GRN gamma would hide the padding effect
        torch.nn.init.normal_(block.grn.gamma, std=0.5)
    items = [torch.randn(1, 30, 16), torch.randn(1, 17, 16)]
    padded = torch.zeros(2, 30, 16)
    padded[0], padded[1, :17] = items[0][0], items[1][0]
    padded[1, 17:] = 5.0  # garbage in the padding must not leak into the row
    lens = torch.tensor([30, 17])
    with torch.inference_mode():
        batch_q, batch_i = quantizer(padded, lens)
        for row, item in enumerate(items):
            q, i = quantizer(item, lens[row: row + 1])
            n = int(lens[row])
            assert_close(batch_q[row, :n], q[0], f"row {row} quantized")
            assert torch.equal(batch_i[row, :n], i[0])


def test_bsq_indices_are_msb_first():
    quantizer = AstralQuantizer(AstralDims(ssl_dim=8, dim=8, intermediate_dim=8, num_blocks=1, codebook_size=32))
    bits = quantizer.quantizer.indices_to_bits(torch.tensor([[16, 1, 31]]))
    assert bits[0, 0].tolist() == [True, False, False, False, False]
    assert bits[0, 1].tolist() == [False, False, False, False, True]
    assert bits[0, 2].all()


def test_one_hubert_pass_feeds_both_quantizers():
    torch.manual_seed(0)
    hubert = build_hubert(dict(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                               conv_dim=[8] * 7, num_conv_pos_embeddings=4, num_conv_pos_embedding_groups=2,
                               feat_extract_norm="layer", do_stable_layer_norm=True), 1)
    calls = []
    hubert.register_forward_hook(lambda *_: calls.append(1))
    dims = dict(ssl_dim=16, dim=8, intermediate_dim=8, num_blocks=1)
    encoder = ContentEncoder(hubert, AstralQuantizer(AstralDims(**dims)),
                             AstralQuantizer(AstralDims(**dims, codebook_size=32))).eval()
    waves, lens = pad_waves([torch.randn(8000) * 0.1, torch.randn(5000) * 0.1])
    tokens = encoder(waves, lens)
    assert len(calls) == 1
    assert tokens.wide.shape == tokens.narrow.shape == (2, 24)
    assert tokens.lens.tolist() == [24, 15]  # 50 Hz: own HuBERT frames, never a padded frame
    assert int(tokens.wide.max()) < 2048 and int(tokens.narrow.max()) < 32
