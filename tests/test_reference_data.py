"""A CI run without the reference data fails loudly, naming what is missing, instead of skipping most tests."""
import os
import subprocess
import sys

from reference_data import ROOT

# One test file whose cases are discovered from a golden directory, one that reads ../shared through the
# shared_dir fixture, one that needs espeak-ng.
TARGETS = ["tests/seed_vc/test_cfm.py", "tests/rvc/test_pitch.py::test_key_shift_and_coarse_ids",
           "tests/rvc/test_pitch.py::test_median_f0_of_real_speech_is_plausible",
           "tests/test_audio.py::test_reference_bounds_and_speech_check"]


def test_ci_run_without_shared_data_or_espeak_fails_and_names_them(tmp_path):
    (tmp_path / "shared").mkdir()
    (tmp_path / "bin").mkdir()  # a PATH without espeak-ng
    env = {k: v for k, v in os.environ.items() if k not in ("RVC_GOLDEN_DIR", "SEEDVC_GOLDEN_DIR")}
    env.update(CI="true", STUDIO_SHARED_DIR=str(tmp_path / "shared"), PATH=str(tmp_path / "bin"))
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *TARGETS], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=300)
    out = run.stdout
    assert run.returncode == 1, out[-3000:]
    assert f"found no golden_cfm*.pt in {tmp_path / 'shared' / 'golden' / 'seed_vc'}" in out
    assert f"{tmp_path / 'shared' / 'golden'} is missing or empty" in out
    assert "espeak-ng is not installed" in out
    summary = out.strip().splitlines()[-1]
    assert "skipped" not in summary and "1 passed" in summary, summary  # only the tests that need no data pass
