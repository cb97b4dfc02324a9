"""setup_models.py: --from a local mirror (real), the hub path (faked: no hub is reachable), --check."""
import json

import pytest

import setup_models
from studio import registry

ENTRIES = registry.load_entries()
UNPINNED = [n for n, e in ENTRIES.items() if not e.sha256]


def make_mirror(root, names):
    """A mirror laid out like $STUDIO_HOME/models with small stand-in files."""
    for name in names:
        for f in ENTRIES[name].files:
            path = root / name / (f + "part0.bin" if f.endswith("/") else f)
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
    assert setup_models.main(["--from", str(mirror), "--only", "campplus"]) == 1
    assert "campplus/campplus_cn_common.bin does not match its pinned sha256" in capsys.readouterr().err


def test_incomplete_mirror_names_the_missing_file(home, tmp_path, capsys):
    assert setup_models.main(["--from", str(tmp_path / "empty"), "--only", "rmvpe"]) == 1
    assert "rmvpe.pt is not in the mirror" in capsys.readouterr().err


def test_hub_download_uses_pinned_revisions(home, tmp_path, monkeypatch):
    # The hub cannot be reached here (or on CI): this fake of the two huggingface_hub download
    # functions serves files from a local folder and records what was asked for.
    import huggingface_hub

    remote = make_mirror(tmp_path / "remote", ["qwen3-tts-voicedesign", "contentvec"])
    asked = []

    def fake_file(repo, filename, revision, local_dir):
        asked.append((repo, filename, revision))
        src = remote / ("qwen3-tts-voicedesign" if "Qwen" in repo else "contentvec") / filename
        dst = local_dir / filename
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(src.read_bytes())
        return str(dst)

    def fake_snapshot(repo, revision, local_dir, allow_patterns):
        asked.append((repo, tuple(allow_patterns), revision))
        for src in (remote / "qwen3-tts-voicedesign").rglob("*"):
            rel = src.relative_to(remote / "qwen3-tts-voicedesign")
            if src.is_file() and any(str(rel).startswith(p.rstrip("*")) for p in allow_patterns):
                (local_dir / rel).parent.mkdir(parents=True, exist_ok=True)
                (local_dir / rel).write_bytes(src.read_bytes())
        return str(local_dir)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_file)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot)
    assert setup_models.main(["--only", "qwen3-tts-voicedesign", "contentvec"]) == 0
    tts = ENTRIES["qwen3-tts-voicedesign"]
    assert ("Qwen/Qwen3-TTS-12Hz-1.7B-VoiceDesign", "config.json", tts.revision) in asked
    assert ("Qwen/Qwen3-TTS-12Hz-1.7B-VoiceDesign", ("speech_tokenizer/*",), tts.revision) in asked
    assert (home / "models" / "qwen3-tts-voicedesign" / "speech_tokenizer" / "part0.bin").is_file()
    assert setup_models.main(["--check", "--only", "qwen3-tts-voicedesign", "contentvec"]) == 0


def test_studio_refuses_to_start_without_models_and_says_the_fix(home):
    import os
    import subprocess
    import sys

    env = dict(os.environ, STUDIO_HOME=str(home), TTS_DEVICE="cpu")
    run = subprocess.run([sys.executable, str(registry.ROOT / "app.py")], env=env, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "python setup_models.py" in run.stderr and "no models installed" in run.stderr
