"""Training an RVC voice on tiny models: stop, resume at the same step and optimiser state, finish, index,
the exported files in the shared format, conversion with the result, learning, and the CLI's graceful stop."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
import torch
from compare import assert_equal

from rvc.content import load_contentvec
from rvc.dataset import extract_features, slice_and_normalise, write_dataset
from rvc.index import load_index, n_ivf_lists
from rvc.model_file import load_model
from rvc.pipeline import ConvertOptions, convert
from rvc.tiny import build_tiny, tiny_dims
from rvc.train import TrainConfig, build_models, checkpoints, collate, load_items, train, train_step
from rvc.train import main as train_cli

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SEGMENT = 2400  # 6 frames at 40k: short slices keep a CPU step well under a second


def _tiny_bases(root, sr="40k", f0=True):
    dims = tiny_dims()
    dims = {**dims, "voice": {**dims["voice"], "sr": sr, "f0": f0}}
    paths = {"pretrained_G": root / f"G{sr}{int(f0)}.pth", "pretrained_D": root / f"D{sr}{int(f0)}.pth"}
    build_tiny(paths, dims)
    return paths


@pytest.fixture(scope="module")
def setup(tmp_path_factory, espeak):
    root = tmp_path_factory.mktemp("rvc_train")
    build_tiny({"contentvec": root / "cv", "rmvpe": root / "rmvpe.pt"}, tiny_dims())
    wave, sr = sf.read(espeak("Training data for a tiny voice. It says two short sentences, then stops.",
                              voice="en-us+f2"), dtype="float32")
    write_dataset([(c, 40000) for c in slice_and_normalise(wave, sr, "40k")], root / "ds", "40k")
    contentvec = load_contentvec(root / "cv")
    extract_features(root / "ds", contentvec, "rmvpe", root / "rmvpe.pt")
    return {"root": root, "dataset": root / "ds", "contentvec": contentvec, "rmvpe": root / "rmvpe.pt",
            "speech": (wave, sr), **_tiny_bases(root)}


def _config(setup, out_dir, **kw):
    fields = dict(dataset_dir=setup["dataset"], out_dir=out_dir, name="tiny", epochs=2, batch_size=2,
                  save_every=1, pretrained_g=setup["pretrained_G"], pretrained_d=setup["pretrained_D"],
                  segment_size=SEGMENT)
    return TrainConfig(**{**fields, **kw})


def _manifest(shared_dir, variant):
    return json.loads((shared_dir / "manifests" / "rvc" / f"{variant}.json").read_text())


def _tiny_keys(entries: list[dict]) -> dict[str, str]:
    """Manifest key -> dtype for the tiny models: the same names, minus text-encoder layers past their 2."""
    layers = tiny_dims()["synthesizer"]["n_layers"]
    return {e["key"]: e["dtype"] for e in entries
            if not (e["key"].startswith("enc_p.encoder.") and int(e["key"].split(".")[3]) >= layers)}


def _adam_state(path):
    return torch.load(path, weights_only=True)["optimizer"]


def test_config_reads_the_recipe_per_sample_rate(tmp_path):
    cfg = TrainConfig(tmp_path, tmp_path, "x", sample_rate="48k")
    assert (cfg.learning_rate, cfg.betas, cfg.eps, cfg.lr_decay) == (1e-4, (0.8, 0.99), 1e-9, 0.999875)
    assert (cfg.segment_size, cfg.c_mel, cfg.c_kl) == (17280, 45, 1.0)
    assert cfg.data["hop_length"] == 480 and TrainConfig(tmp_path, tmp_path, "x", "32k").segment_size == 12800
    with pytest.raises(ValueError, match="sample_rate"):
        TrainConfig(tmp_path, tmp_path, "x", sample_rate="44k")
    with pytest.raises(ValueError, match="model name"):
        TrainConfig(tmp_path, tmp_path, "../x")


@pytest.mark.parametrize("sr", ["32k", "40k", "48k"])
def test_full_size_models_match_rvc_checkpoints(sr, tmp_path, shared_dir):
    """Without tiny bases, training builds exactly the released G and D (G_/D_ keys, shapes, Adam order)."""
    manifest = _manifest(shared_dir, f"v2_{sr}_f0")
    with torch.device("meta"):
        net_g, net_d = build_models(TrainConfig(tmp_path, tmp_path, "x", sample_rate=sr), torch.device("meta"))
    expected_g = {e["key"]: e["shape"] for e in manifest["G_checkpoint"]["model"]}
    assert {k: list(v.shape) for k, v in net_g.state_dict().items()} == expected_g
    assert [k for k, _ in net_g.named_parameters()] == manifest["G_checkpoint"]["parameters_order_for_optimizer_state"]
    assert {k: list(v.shape) for k, v in net_d.state_dict().items()} == \
        {e["key"]: e["shape"] for e in manifest["D_checkpoint"]["model"]}
    assert net_g.config.segment_size * net_g.config.hop_length == manifest["hparams"]["train"]["segment_size"]


def test_stop_resume_finish_export_and_convert(setup, tmp_path, shared_dir):
    out = tmp_path / "run"
    cfg = _config(setup, out)
    events = []

    # 1. stop after 2 steps: the latest G_/D_ are saved at once
    result = train(cfg, events.append, should_stop=lambda: sum(e["type"] == "step" for e in events) >= 2)
    start = events[0]
    assert start["type"] == "start" and (start["epoch"], start["step"], start["total_epochs"]) == (1, 0, 2)
    steps_per_epoch = start["steps_per_epoch"]
    assert steps_per_epoch > 2
    assert result == {"type": "stopped", "epoch": 1, "step": 2}
    assert [e["step"] for e in events if e["type"] == "step"] == [1, 2]
    assert all(np.isfinite(e[k]) for e in events if e["type"] == "step"
               for k in ("loss_mel", "loss_kl", "loss_gen", "loss_disc", "loss_fm", "lr", "seconds_per_step"))
    json.dumps(events)  # events are plain JSON
    assert [c[0] for c in checkpoints(out)] == [2]
    saved = torch.load(out / "G_2.pth", weights_only=True)
    assert (saved["iteration"], saved["learning_rate"]) == (1, 1e-4)
    assert all(int(s["step"]) == 2 for s in saved["optimizer"]["state"].values())

    # 2. resume and stop before the first step: the optimiser state comes back exactly as saved
    state_before = _adam_state(out / "G_2.pth"), _adam_state(out / "D_2.pth")
    events.clear()
    assert train(cfg, events.append, should_stop=lambda: True)["step"] == 2
    assert events[0]["resumed"] and (events[0]["epoch"], events[0]["step"]) == (1, 2)
    for before, path in zip(state_before, (out / "G_2.pth", out / "D_2.pth")):
        after = _adam_state(path)
        assert after["param_groups"] == before["param_groups"]
        for i, s in before["state"].items():
            for k in ("step", "exp_avg", "exp_avg_sq"):
                assert_equal(after["state"][i][k], s[k], f"optimiser state {i} {k}")  # a bit-exact round trip

    # 3. resume to the end: steps continue from 3, the lr decays once per epoch, saves every epoch
    events.clear()
    result = train(cfg, events.append)
    total = 2 * steps_per_epoch
    assert [e["step"] for e in events if e["type"] == "step"] == list(range(3, total + 1))
    assert [e["lr"] for e in events if e["type"] == "epoch"] == pytest.approx([1e-4 * 0.999875, 1e-4 * 0.999875 ** 2],
                                                                             rel=1e-9)
    second_epoch_lrs = [e["lr"] for e in events if e["type"] == "step" and e["epoch"] == 2]
    assert second_epoch_lrs == pytest.approx([1e-4 * 0.999875] * steps_per_epoch, rel=1e-9)
    saves = [e for e in events if e["type"] == "save"]
    assert [(e["epoch"], e["step"]) for e in saves] == [(1, steps_per_epoch), (2, total)]
    assert all(os.path.basename(e["model_path"]) == f"tiny_e{e['epoch']}_s{e['step']}.pth" for e in saves)
    assert [c[0] for c in checkpoints(out)] == [total]  # keep_checkpoints=1 removed the older pairs
    final = torch.load(out / f"G_{total}.pth", weights_only=True)
    assert final["iteration"] == 2
    assert all(int(s["step"]) == total for s in final["optimizer"]["state"].values())
    assert final["optimizer"]["param_groups"][0]["lr"] == pytest.approx(1e-4 * 0.999875 ** 2, rel=1e-9)
    assert result["type"] == "finished" and (result["epoch"], result["step"]) == (2, total)
    assert events[-1] == result

    # 4. the exported model is RVC's shared format (the key set and dtypes of the manifest; tiny widths)
    manifest = _manifest(shared_dir, "v2_40k_f0")
    raw = torch.load(result["model_path"], weights_only=True)
    assert set(raw) == {"weight", "config", "info", "sr", "f0", "version"}
    assert (raw["sr"], raw["f0"], raw["version"], raw["info"], raw["config"][1]) == ("40k", 1, "v2", "2epoch", 32)
    assert {k: str(v.dtype).removeprefix("torch.") for k, v in raw["weight"].items()} == \
        _tiny_keys(manifest["inference_pth"]["weight"])
    model = load_model(result["model_path"])
    g_state = torch.load(out / f"G_{total}.pth", weights_only=True)["model"]
    for key, value in model.weights.items():  # the shared weights are the trained G's, in fp16
        assert_equal(value, g_state[key].half(), key)
    assert {k: str(v.dtype).removeprefix("torch.") for k, v in g_state.items()} == \
        _tiny_keys(manifest["G_checkpoint"]["model"])
    assert set(torch.load(out / f"D_{total}.pth", weights_only=True)["model"]) == \
        {e["key"] for e in manifest["D_checkpoint"]["model"]}

    # 5. the index follows the recipe's naming and holds the dataset's features
    index = load_index(result["index_path"], dim=768)
    n = sum(np.load(p).shape[0] for p in (setup["dataset"] / "3_feature768").glob("*.npy"))
    assert index.index.ntotal == n
    assert os.path.basename(result["index_path"]) == f"added_IVF{n_ivf_lists(n)}_Flat_nprobe_1_tiny_v2.index"

    # 6. and the voice converts speech
    wave, sr = setup["speech"]
    torch.manual_seed(0)
    converted = convert(wave[:sr * 2], model, setup["contentvec"], result["index_path"], sample_rate=sr,
                        options=ConvertOptions(f0_method="rmvpe"), rmvpe_path=setup["rmvpe"])
    assert converted.sample_rate == 40000 and abs(converted.audio.shape[0] - 80000) <= 400
    assert np.isfinite(converted.audio).all() and np.abs(converted.audio).max() > 1e-3


@pytest.mark.parametrize("sr,f0", [("32k", False), ("48k", True)])
def test_other_rates_and_no_f0_train_and_export(setup, tmp_path, shared_dir, sr, f0):
    rate = {"32k": 32000, "48k": 48000}[sr]
    wave, wave_sr = setup["speech"]
    ds = tmp_path / "ds"
    write_dataset([(c, rate) for c in slice_and_normalise(wave, wave_sr, sr)], ds, sr)
    for name in ("3_feature768", "2a_f0", "2b-f0nsf", "mute"):  # 16 kHz features do not depend on the rate
        shutil.copytree(setup["dataset"] / name, ds / name, dirs_exist_ok=True)
    shutil.rmtree(ds / "mute" / "0_gt_wavs")
    extract_features(ds, setup["contentvec"], "rmvpe", setup["rmvpe"], f0=f0)
    bases = _tiny_bases(setup["root"], sr, f0)
    cfg = _config(setup, tmp_path / "out", dataset_dir=ds, sample_rate=sr, f0=f0, epochs=1,
                  pretrained_g=bases["pretrained_G"], pretrained_d=bases["pretrained_D"], build_index=False,
                  segment_size=6 * {"32k": 320, "48k": 480}[sr])
    result = train(cfg)
    assert result["type"] == "finished" and "index_path" not in result
    model = load_model(result["model_path"])
    assert (model.sr, model.f0, model.version) == (rate, f0, "v2")
    manifest = _manifest(shared_dir, f"v2_{sr}_{'f0' if f0 else 'nof0'}")
    assert set(model.weights) == set(_tiny_keys(manifest["inference_pth"]["weight"]))
    assert model.config.upsample_rates == tuple(manifest["inference_pth"]["top_level"]["config"][12])


def test_a_fixed_batch_lowers_the_mel_loss(setup, tmp_path):
    cfg = _config(setup, tmp_path)
    torch.manual_seed(0)
    seg, hop = SEGMENT // 400, 400
    items = [it._replace(phone=it.phone[:seg], pitch=it.pitch[:seg], pitchf=it.pitchf[:seg], wave=it.wave[:seg * hop])
             for it in load_items(cfg)[:1]]  # one segment: every step sees the same audio
    batch = collate(items, cfg.data, torch.device("cpu"))
    net_g, net_d = build_models(cfg, torch.device("cpu"))
    # 50x the recipe's learning rate, so that 20 steps of a from-scratch tiny model show the trend
    optims = [torch.optim.AdamW(n.parameters(), 5e-3, betas=cfg.betas, eps=cfg.eps) for n in (net_g, net_d)]
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    mel = [train_step(batch, net_g, net_d, *optims, scaler, cfg)["loss_mel"] for _ in range(20)]
    first, last = np.mean(mel[:5]), np.mean(mel[-5:])
    assert last < 0.85 * first, mel


def test_bad_inputs_fail_with_a_clear_message(setup, tmp_path):
    with pytest.raises(ValueError, match="no filelist.txt"):
        train(_config(setup, tmp_path / "o", dataset_dir=tmp_path))
    with pytest.raises(ValueError, match="f0=False"):  # an f0 dataset for a model without pitch
        train(_config(setup, tmp_path / "o", f0=False))
    with pytest.raises(ValueError, match="pretrained base not found"):
        _config(setup, tmp_path / "o", pretrained_d=tmp_path / "missing.pth")
    with pytest.raises(ValueError, match="at 40000 Hz"):
        train(_config(setup, tmp_path / "o", sample_rate="48k"))


def test_cli_stops_gracefully_on_sigterm(setup, tmp_path, capsys):
    cfg = _config(setup, tmp_path / "out", epochs=1000)
    (tmp_path / "cfg.json").write_text(cfg.to_json())
    events_path = tmp_path / "events.jsonl"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": ROOT}
    proc = subprocess.Popen([sys.executable, "-m", "rvc.train", "--config", str(tmp_path / "cfg.json"), "--events",
                             str(events_path)], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240
        while not (events_path.is_file() and '"type": "step"' in events_path.read_text()):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no training step within 240 s"
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        stdout, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    events = [json.loads(line) for line in events_path.read_text().splitlines()]
    assert events[-1]["type"] == "stopped" and events[-2]["type"] == "checkpoint"
    assert os.path.isfile(events[-2]["g_path"]) and os.path.isfile(events[-2]["d_path"])
    assert [json.loads(line) for line in stdout.decode().splitlines()] == events

    # a failure ends with one "failed" line and exit status 1 (in-process: the CLI code without a second start-up)
    (tmp_path / "bad.json").write_text(json.dumps({**json.loads(cfg.to_json()), "dataset_dir": str(tmp_path)}))
    capsys.readouterr()
    assert train_cli(["--config", str(tmp_path / "bad.json"), "--events", str(tmp_path / "bad.jsonl")]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line) for line in lines] == [json.loads(line) for line in
                                                      (tmp_path / "bad.jsonl").read_text().splitlines()]
    last = json.loads(lines[-1])
    assert last["type"] == "failed" and "no filelist.txt" in last["error"]
