"""Every key of every shared/manifests/seed_vc/*.json equals what our release-size modules produce.

Modules are built on the meta device (no memory, no init cost). Names, shapes and dtypes must match one to one,
so the official files load strictly. A manifest this test does not know fails, so new manifests get a builder.
"""
import json

import torch
from transformers import HubertConfig, HubertModel

from seed_vc.ar import ARDims, ARModel
from seed_vc.bigvgan import RELEASE_BIGVGAN_CONFIG, BigVGAN
from seed_vc.campplus import CAMPPlus
from seed_vc.cfm import CFM
from seed_vc.content import RELEASE_HUBERT_CONFIG, RELEASE_SSL_LAYERS, AstralDims, AstralQuantizer, truncate_hubert
from seed_vc.dit import DiT, DiTDims
from seed_vc.length_regulator import InterpolateRegulator


def on_meta(build):
    with torch.device("meta"):
        return build()


def build_for(name: str, manifest: dict) -> dict[str, torch.nn.Module]:
    """Modules by manifest section ("" for flat files)."""
    if name.startswith("astral_bsq"):
        return {"": on_meta(lambda: AstralQuantizer(AstralDims(codebook_size=manifest["codebook_size"])))}
    if name == "campplus_cn_common":
        return {"": on_meta(CAMPPlus)}
    if name.startswith("bigvgan_v2_22khz_80band_256x"):
        return {"": on_meta(lambda: BigVGAN(manifest["config_json_used"]))}
    if name == "hubert_large_ll60k":
        return {"": on_meta(lambda: HubertModel(HubertConfig(**manifest["hubert_config_assumed"])))}
    if name == "seedvc_v2_cfm_small":
        return {"net.cfm": on_meta(lambda: CFM(DiT(DiTDims()))),
                "net.length_regulator": on_meta(lambda: InterpolateRegulator(512, 2048, 4))}
    if name == "seedvc_v2_ar_base":
        return {"net.ar": on_meta(lambda: ARModel(ARDims())),
                "net.length_regulator": on_meta(lambda: InterpolateRegulator(768, 32, 0))}
    raise AssertionError(f"no module builder for manifest {name}.json; add one to this test")


def key_manifests(shared_dir):
    return sorted(p for p in (shared_dir / "manifests" / "seed_vc").glob("*.json") if p.stem != "param_counts")


def describe(state_dict: dict[str, torch.Tensor]) -> dict[str, tuple]:
    return {k: (tuple(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in state_dict.items()}


def test_every_manifest_matches_our_state_dicts(shared_dir):
    manifests = key_manifests(shared_dir)
    assert len(manifests) >= 7
    for path in manifests:
        manifest = json.loads(path.read_text())
        modules = build_for(path.stem, manifest)
        sections = manifest.get("sections") or {"": {"keys": manifest["keys"]}}
        assert set(sections) == set(modules), path.name
        for section, module in modules.items():
            expected = {e["key"]: (tuple(e["shape"]), e["dtype"]) for e in sections[section]["keys"]}
            ours = describe(module.state_dict())
            assert sorted(set(expected) - set(ours)) == [], f"{path.name} {section}: keys we lack"
            assert sorted(set(ours) - set(expected)) == [], f"{path.name} {section}: keys the file lacks"
            wrong = {k: (ours[k], v) for k, v in expected.items() if ours[k] != v}
            assert wrong == {}, f"{path.name} {section}: (ours, manifest) shape/dtype"


def test_truncated_hubert_keeps_exactly_the_used_weights(shared_dir):
    manifest = json.loads((shared_dir / "manifests/seed_vc/hubert_large_ll60k.json").read_text())
    used = {e["key"] for e in manifest["keys"] if e["used_after_truncation"]}
    model = on_meta(lambda: truncate_hubert(HubertModel(HubertConfig(**RELEASE_HUBERT_CONFIG)), RELEASE_SSL_LAYERS))
    assert set(model.state_dict()) == used


def test_parameter_counts(shared_dir):
    counts = json.loads((shared_dir / "manifests/seed_vc/param_counts.json").read_text())

    def n_params(module):
        return sum(p.numel() for p in module.parameters())

    ours = {
        "cfm.estimator (DiT)": n_params(on_meta(lambda: DiT(DiTDims()))),
        "cfm_length_regulator": n_params(on_meta(lambda: InterpolateRegulator(512, 2048, 4))),
        "ar (NaiveWrapper)": n_params(on_meta(lambda: ARModel(ARDims()))),
        "ar_length_regulator": n_params(on_meta(lambda: InterpolateRegulator(768, 32, 0))),
        "content_extractor_narrow (ConvNeXt+BSQ32)": n_params(on_meta(lambda: AstralQuantizer(
            AstralDims(codebook_size=32)))),
        "content_extractor_wide minus HuBERT (ConvNeXt+BSQ2048)": n_params(on_meta(lambda: AstralQuantizer(
            AstralDims()))),
        "HuBERT-large truncated to 18 layers": n_params(on_meta(lambda: truncate_hubert(
            HubertModel(HubertConfig(**RELEASE_HUBERT_CONFIG)), RELEASE_SSL_LAYERS))),
        "HuBERT-large full 24 layers": n_params(on_meta(lambda: HubertModel(HubertConfig(**RELEASE_HUBERT_CONFIG)))),
        "style_encoder (CAMPPlus)": n_params(on_meta(CAMPPlus)),
        "vocoder (BigVGAN v2 22k 80band 256x)": n_params(on_meta(lambda: BigVGAN(RELEASE_BIGVGAN_CONFIG))),
    }
    for name, n in ours.items():
        assert n == counts[name], name
