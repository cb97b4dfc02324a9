import pytest
import torch

from studio.settings import SettingsError, load_settings


def test_defaults_follow_the_machine(tmp_path):
    s = load_settings(env={"STUDIO_HOME": str(tmp_path)})
    expected = "cuda:0" if torch.cuda.is_available() else "cpu"
    assert (s.tts_device, s.vc_device, s.se_device) == (expected, expected, expected)
    assert s.tts_quantize == "none" and s.default_diff_steps == 12 and s.emb_cache_size == 32
    assert s.models_dir == tmp_path / "models"


def test_env_overrides_yaml(tmp_path):
    s = load_settings(env={"STUDIO_HOME": str(tmp_path), "TTS_DEVICE": "cpu", "VC_DEVICE": "cpu",
                           "DEFAULT_DIFF_STEPS": "20", "EMB_CACHE_SIZE": "4", "STUDIO_PORT": "8123",
                           "STUDIO_AUTH": "ann:first-password,bob:second-password"})
    assert s.default_diff_steps == 20 and s.emb_cache_size == 4 and s.port == 8123
    assert [user for user, _ in s.auth] == ["ann", "bob"]


@pytest.mark.parametrize("env, words", [
    ({"TTS_QUANTIZE": "int4"}, "TTS_QUANTIZE='int4': expected one of none, int8"),
    ({"TTS_DEVICE": "cpu", "TTS_QUANTIZE": "int8"}, "int8 needs a CUDA TTS_DEVICE"),
    ({"TTS_DEVICE": "cuda:7"}, "TTS_DEVICE=cuda:7: this machine has"),
    ({"VC_DEVICE": "gpu0"}, "VC_DEVICE='gpu0': expected cpu, cuda, cuda:N or auto"),
    ({"DEFAULT_DIFF_STEPS": "many"}, "DEFAULT_DIFF_STEPS='many': expected a whole number"),
    ({"DEFAULT_DIFF_STEPS": "0"}, "DEFAULT_DIFF_STEPS=0: expected a whole number from 1 to 200"),
    ({"STUDIO_AUTH": "nopassword"}, "STUDIO_AUTH: expected user:password"),
    ({"STUDIO_AUTH": "ann:short"}, "password of 'ann' is 5 characters; use at least 10"),
    ({"STUDIO_AUTH": "ann:long-enough-1,Ann:long-enough-2"}, "user 'Ann' is listed twice"),
    ({"STUDIO_AUTH": "a b:long-enough-1"}, "no spaces, commas, colons or control characters"),
    ({"STUDIO_USERS_FILE": "/nonexistent/users"}, "STUDIO_USERS_FILE=/nonexistent/users: no such file"),
    ({"STUDIO_SSL_CERTFILE": "/nonexistent/cert.pem", "STUDIO_SSL_KEYFILE": "/nonexistent/key.pem"},
     "STUDIO_SSL_CERTFILE=/nonexistent/cert.pem: no such file"),
    ({"STUDIO_TRASH_DAYS": "-1"}, "STUDIO_TRASH_DAYS=-1: expected a whole number from 0 to 3650"),
    ({"STUDIO_GPU_QUEUE": "0"}, "STUDIO_GPU_QUEUE=0: expected a whole number from 1 to 1000"),
])
def test_invalid_values_fail_with_one_clear_line(env, words):
    if "cuda:7" in str(env) and torch.cuda.device_count() > 7:
        pytest.skip("this machine really has 8 GPUs")
    with pytest.raises(SettingsError) as err:
        load_settings(env=env)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_bad_env_stops_app_start_with_one_line(tmp_path):
    import os
    import subprocess
    import sys

    from studio.settings import ROOT

    env = dict(os.environ, STUDIO_HOME=str(tmp_path), TTS_QUANTIZE="int4")
    run = subprocess.run([sys.executable, str(ROOT / "app.py")], env=env, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 2
    assert run.stderr.strip() == "error: TTS_QUANTIZE='int4': expected one of none, int8"
