"""A CI run without the reference data fails loudly, naming what is missing, instead of skipping most tests.

Runs pytest in a subprocess with CI=true, an empty STUDIO_SHARED_DIR and a PATH without espeak-ng, on a probe
that uses exactly what the suite uses (conftest's shared_dir and espeak fixtures, the golden case discovery of
reference_data and rvc_golden) without importing the heavy model packages.
"""
import os
import subprocess
import sys

from reference_data import ROOT

PROBE = '''
import pytest
import rvc_golden
from reference_data import SEEDVC_GOLDEN, glob_cases

@pytest.mark.parametrize("path", glob_cases(SEEDVC_GOLDEN, "golden_cfm*.pt"))
def test_seed_vc_case(path):
    pass

@pytest.mark.parametrize("path", rvc_golden.params("golden_<variant>.pt"))
def test_rvc_case(path):
    pass

def test_reads_shared(shared_dir):
    pass

def test_speaks(espeak):
    pass

def test_needs_nothing():
    pass
'''


def test_ci_run_without_shared_data_or_espeak_fails_and_names_them(tmp_path):
    (tmp_path / "shared").mkdir()
    (tmp_path / "bin").mkdir()  # a PATH without espeak-ng
    (tmp_path / "test_probe.py").write_text(PROBE)
    env = {k: v for k, v in os.environ.items() if k not in ("RVC_GOLDEN_DIR", "SEEDVC_GOLDEN_DIR")}
    env.update(CI="true", STUDIO_SHARED_DIR=str(tmp_path / "shared"), PATH=str(tmp_path / "bin"),
               PYTHONPATH=os.pathsep.join([str(ROOT / "tests"), str(ROOT / "tests" / "rvc"), str(ROOT)]))
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", "pytest.ini",
                          "-p", "conftest", str(tmp_path / "test_probe.py")],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    out = run.stdout
    shared = tmp_path / "shared"
    assert run.returncode == 1, out[-3000:]
    assert f"found no golden_cfm*.pt in {shared / 'golden' / 'seed_vc'}" in out
    assert f"found no golden_<variant>.pt files documented in {shared / 'golden' / 'rvc' / 'GOLDEN.json'}" in out
    assert f"{shared / 'golden'} is missing or empty" in out
    assert "espeak-ng is not installed" in out
    summary = out.strip().splitlines()[-1]
    assert summary.startswith("1 passed, 4 errors"), summary  # nothing skipped; only the test that needs no data passes
