"""setup_models.py: --from a local mirror (real), the hub path (faked: no hub is reachable), --check."""
import dataclasses
import json

import pytest

import setup_models
from studio import registry

ENTRIES = registry.load_entries()
UNPINNED = [n for n, e in ENTRIES.items() if not e.sha256 and not e.sizes]


def make_mirror(root, names):
    """A mirror laid out like $STUDIO_HOME/models with small stand-in files."""
    for name in names:
        for f in ENTRIES[name].files:
            path = root / name / f
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(f"{name}/{f}".encode())
    return root


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_install_from_mirror_then_check_names_missing_and_altered(home, tmp_path, capsys):
    mirror = make_mirror(tmp_path / "mirror", UNPINNED)
    assert setup_models.main(["--from", str(mirror), "--only", *UNPINNED]) == 0
    models = home / "models"
    lock = json.loads((models / registry.LOCK_NAME).read_text())
    assert lock["tiny"] is False and set(lock["entries"]) == set(UNPINNED)
    assert setup_models.main(["--check", "--only", *UNPINNED]) == 0

    (models / "seed-vc-v2" / "v2" / "cfm_small.pth").write_bytes(b"tampered")
    (models / "rmvpe" / "rmvpe.pt").unlink()
    capsys.readouterr()
    assert setup_models.main(["--check", "--only", *UNPINNED]) == 1
    out = capsys.readouterr().out
    assert "altered: seed-vc-v2/v2/cfm_small.pth" in out and "missing: rmvpe/rmvpe.pt" in out


def test_mirror_file_with_wrong_pinned_hash_is_refused(home, tmp_path, capsys):
    mirror = make_mirror(tmp_path / "mirror", ["campplus"])
    with open(mirror / "campplus" / "campplus_cn_common.bin", "r+b") as f:  # the release size, other bytes
        f.truncate(ENTRIES["campplus"].sizes["campplus_cn_common.bin"])
    assert setup_models.main(["--from", str(mirror), "--only", "campplus"]) == 1
    assert "campplus/campplus_cn_common.bin does not match its pinned sha256" in capsys.readouterr().err


def test_a_file_of_the_wrong_size_is_refused_naming_both_sizes(home, tmp_path, capsys):
    mirror = make_mirror(tmp_path / "mirror", ["qwen3-tts-voicedesign"])
    assert setup_models.main(["--from", str(mirror), "--only", "qwen3-tts-voicedesign"]) == 1
    err = capsys.readouterr().err
    size = (mirror / "qwen3-tts-voicedesign" / "model.safetensors").stat().st_size
    assert f"wrong size: qwen3-tts-voicedesign/model.safetensors is {size} bytes, the release has 3833402552" in err


def test_every_release_file_has_a_published_size_where_one_is_known():
    tts = ENTRIES["qwen3-tts-voicedesign"]
    assert set(tts.sizes) == set(tts.files)


def test_start_up_check_names_a_wrong_size_on_real_installs_only(home, tmp_path):
    mirror = make_mirror(tmp_path / "mirror", ["contentvec"])
    assert setup_models.main(["--from", str(mirror), "--only", "contentvec"]) == 0
    models = home / "models"
    sized = dict(ENTRIES, contentvec=dataclasses.replace(ENTRIES["contentvec"], sizes={"config.json": 4096}))
    size = (models / "contentvec" / "config.json").stat().st_size
    assert registry.check(models, sized, hashes=False, names=["contentvec"]) == [
        f"wrong size: contentvec/config.json is {size} bytes, the release has 4096"]
    registry.write_lock(models, {"contentvec": ENTRIES["contentvec"]}, tiny=True, source="tiny")
    assert registry.check(models, sized, hashes=False, names=["contentvec"]) == []


def test_incomplete_mirror_names_the_missing_file(home, tmp_path, capsys):
    assert setup_models.main(["--from", str(tmp_path / "empty"), "--only", "rmvpe"]) == 1
    assert "rmvpe.pt is not in the mirror" in capsys.readouterr().err


def test_hub_download_uses_pinned_revisions(home, tmp_path, monkeypatch):
    # The hub cannot be reached here (or on CI): this fake of huggingface_hub's download function serves files
    # from a local folder and records what was asked for.
    import huggingface_hub

    names = ["hubert-large-ll60k", "contentvec"]
    remote = make_mirror(tmp_path / "remote", names)
    by_repo = {ENTRIES[n].repo: n for n in names}
    asked = []

    def fake_file(repo, filename, revision, local_dir):
        asked.append((repo, filename, revision))
        dst = local_dir / filename
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes((remote / by_repo[repo] / filename).read_bytes())
        return str(dst)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_file)
    monkeypatch.setattr(setup_models, "hub_problem", lambda: None)  # the fake hub answers
    assert setup_models.main(["--only", *names]) == 0
    assert sorted(asked) == sorted((ENTRIES[n].repo, f, ENTRIES[n].revision) for n in names for f in ENTRIES[n].files)
    assert setup_models.main(["--check", "--only", *names]) == 0


@pytest.mark.parametrize("offline", ["HF_HUB_OFFLINE=1", "HF_ENDPOINT=closed port"])
def test_without_internet_one_line_names_both_offline_ways(home, monkeypatch, capsys, offline):
    import socket
    import time

    if offline.startswith("HF_HUB_OFFLINE"):
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    else:
        with socket.socket() as s:  # a port nothing listens on: the connection is refused at once
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    start = time.monotonic()
    assert setup_models.main([]) == 1  # the README's first command
    assert time.monotonic() - start < 10
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert "cannot download from the Hugging Face hub" in err
    assert "python setup_models.py --from DIR" in err and "python setup_models.py --tiny" in err
    assert not (home / "models" / registry.LOCK_NAME).exists()


def test_studio_refuses_to_start_without_models_and_says_the_fix(home):
    import os
    import subprocess
    import sys

    env = dict(os.environ, STUDIO_HOME=str(home), TTS_DEVICE="cpu")
    run = subprocess.run([sys.executable, str(registry.ROOT / "app.py")], env=env, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "python setup_models.py" in run.stderr and "no models installed" in run.stderr
