"""ContentVec features: v1 = final_proj(layer 9), v2 = last layer, 50 frames/s, strict folder loading."""
import json

import numpy as np
import pytest
import torch
from transformers import HubertConfig

from compare import assert_close
from rvc.content import HubertWithFinalProj, extract_features, load_contentvec


@pytest.fixture(scope="module")
def narrow():
    torch.manual_seed(0)
    config = HubertConfig(hidden_size=32, num_hidden_layers=12, num_attention_heads=2, intermediate_size=32,
                          conv_dim=(32,) * 7, num_conv_pos_embeddings=16, classifier_proj_size=8)
    return HubertWithFinalProj(config).eval()


def test_v1_reads_layer_9_through_final_proj_and_v2_the_last_layer(narrow):
    audio = 0.1 * np.random.default_rng(0).normal(size=16000).astype(np.float32)
    v1, v2 = extract_features(narrow, audio, "v1"), extract_features(narrow, audio, "v2")
    assert v1.shape == (1, (16000 - 400) // 320 + 1, 8) and v2.shape == (1, 49, 32)
    # hidden_states[9] is the output of the 9th layer: a model cut after 9 layers ends there
    cut = HubertWithFinalProj(narrow.config).eval()
    cut.load_state_dict(narrow.state_dict())
    cut.encoder.layers = cut.encoder.layers[:9]
    assert_close(v1, cut.final_proj(extract_features(cut, audio, "v2")), "v1 features")
    with pytest.raises(AssertionError):  # layer 9 is not the last layer
        assert_close(extract_features(cut, audio, "v2"), v2, "layer 9 vs last layer")


def test_folder_loads_strictly(narrow, tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_contentvec(tmp_path / "missing")
    narrow.save_pretrained(tmp_path / "ok", safe_serialization=False)
    assert load_contentvec(tmp_path / "ok").final_proj.out_features == 8
    state = torch.load(tmp_path / "ok" / "pytorch_model.bin", weights_only=True)
    del state["final_proj.weight"]  # e.g. a facebook/hubert-base-ls960 export: no final_proj
    (tmp_path / "bad").mkdir()
    torch.save(state, tmp_path / "bad" / "pytorch_model.bin")
    (tmp_path / "bad" / "config.json").write_text(json.dumps(narrow.config.to_dict()))
    with pytest.raises(ValueError, match="missing.*final_proj.weight"):
        load_contentvec(tmp_path / "bad")
