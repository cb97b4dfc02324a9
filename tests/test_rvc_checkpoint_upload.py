"""A G_*.pth training checkpoint uploaded as an RVC voice through gradio_client: refused with words that say how
to extract it, and, when the uploader asks (from_checkpoint), turned into exactly the voice file rvc.extract_model
writes (sample rate, f0 and version read from the weights), kept with its .index, and converting audio.
A D_*.pth stays refused."""
from __future__ import annotations

import pytest
import soundfile as sf
import torch
from gradio_client import Client, handle_file

from compare import assert_close

pytestmark = pytest.mark.slow
RVC = (0, "fcpe", 0.75, 0.33, "wav")  # key, f0 method, index rate, protect, format


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict:
    """G_2333.pth / D_2333.pth as training writes them: the trainer's models built from tiny bases, saved with
    its checkpoint writer (fp32, enc_q, optimiser state), and a tiny .index of the voice's feature size."""
    import rvc.tiny
    from rvc.model_file import load_checkpoint, save_checkpoint
    from rvc.train import TrainConfig, build_models

    folder = tmp_path_factory.mktemp("checkpoints")
    files = {"pretrained_G": folder / "f0G40k.pth", "pretrained_D": folder / "f0D40k.pth",
             "index": folder / "added_IVF20_Flat_nprobe_1_ck_v2.index"}
    rvc.tiny.build_tiny(files, rvc.tiny.tiny_dims())
    cfg = TrainConfig(dataset_dir=folder, out_dir=folder, name="ck", pretrained_g=files["pretrained_G"],
                      pretrained_d=files["pretrained_D"])
    for prefix, net in zip("GD", build_models(cfg, torch.device("cpu"))):
        load_checkpoint(files[f"pretrained_{prefix}"], net)
        optim = torch.optim.AdamW(net.parameters(), cfg.learning_rate, betas=cfg.betas, eps=cfg.eps)
        files[prefix] = folder / f"{prefix}_2333.pth"
        save_checkpoint(files[prefix], net, optim, cfg.learning_rate, 7)
    return files


@pytest.fixture(scope="module")
def served(new_home, launch_studio):
    url, studio, close = launch_studio(new_home())
    yield Client(url, verbose=False), studio
    close()


def voice_folders(studio) -> list[str]:
    return sorted(p.name for p in (studio.settings.home / "rvc").iterdir())


def test_a_checkpoint_is_refused_until_asked_then_becomes_rvcs_extracted_voice(served, checkpoints, espeak,
                                                                                tmp_path):
    from rvc.model_file import extract_model

    client, studio = served
    upload = [handle_file(str(checkpoints["G"])), handle_file(str(checkpoints["index"]))]
    # existing two-argument callers: refused, with the way to do it
    with pytest.raises(Exception, match=r"G_2333.pth is a training checkpoint \(G_\*\.pth\), not a voice model: "
                                        r"tick 'Extract the voice from this training checkpoint' and add it again "
                                        r"\(through the API: from_checkpoint=True\)"):
        client.predict(upload, "Trained", api_name="/rvc_upload")
    assert client.predict(api_name="/rvc_list") == [] and voice_folders(studio) == []

    added = client.predict(upload, "Trained", True, api_name="/rvc_upload")
    assert added == "Added RVC voice **Trained** (v2, 40000 Hz, with index)."
    [row] = client.predict(api_name="/rvc_list")
    assert (row["name"], row["version"], row["sample_rate"], row["pitch_guided"], row["has_index"]) == \
        ("Trained", "v2", 40000, True, True)

    voice = studio.rvc_voices.get("Trained")
    assert voice.index_path.read_bytes() == checkpoints["index"].read_bytes()  # the .index is kept as uploaded
    stored = torch.load(voice.model_path, weights_only=True)
    extract_model(checkpoints["G"], tmp_path / "expected.pth")
    expected = torch.load(tmp_path / "expected.pth", weights_only=True)
    assert {k: v for k, v in stored.items() if k != "weight"} == {k: v for k, v in expected.items() if k != "weight"}
    assert (stored["sr"], stored["f0"], stored["version"]) == ("40k", 1, "v2")
    assert list(stored["weight"]) == list(expected["weight"])
    assert not any(k.startswith("enc_q.") for k in stored["weight"])
    for key, value in expected["weight"].items():
        assert stored["weight"][key].dtype == torch.float16
        assert_close(stored["weight"][key], value, key)

    speech = espeak("The tide comes in twice a day, whatever the keeper thinks of it.", name="tide.wav")
    result, _ = client.predict(handle_file(str(speech)), "Trained", *RVC, api_name="/convert_rvc")
    converted, sr = sf.read(result, dtype="float32")
    assert sr == 40000
    assert abs(len(converted) / sr - sf.info(speech).duration) < 0.1
    assert abs(converted).max() > 1e-3


def test_a_discriminator_checkpoint_stays_refused(served, checkpoints):
    client, studio = served
    before = client.predict(api_name="/rvc_list"), voice_folders(studio)
    for extract in (False, True):
        with pytest.raises(Exception, match=r"D_2333.pth is a discriminator training checkpoint \(D_\*\.pth\): it "
                                            r"holds no voice; upload the G_\*\.pth saved with it"):
            client.predict([handle_file(str(checkpoints["D"]))], "Critic", extract, api_name="/rvc_upload")
    assert (client.predict(api_name="/rvc_list"), voice_folders(studio)) == before
