"""Test environment: two shared cores, no network, no GPU.

OpenMP must be passive and torch single-threaded *before* torch is imported,
otherwise small ops spin-wait under contention and run ~100x slower.
"""
import os
import pathlib

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

from reference_data import MARK, SHARED, missing, require  # noqa: E402


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A case list that came out empty (see reference_data.case_params) fails under CI=true, skips elsewhere."""
    marker = item.get_closest_marker(MARK)
    if marker is not None:
        missing(marker.args[0])


@pytest.fixture(scope="session")
def shared_dir() -> pathlib.Path:
    """The read-only reference data (manifests, golden vectors, audio) beside the repo."""
    for part in ("golden", "manifests", "audio"):
        require(SHARED / part)
    return SHARED


@pytest.fixture(scope="session")
def espeak(tmp_path_factory):
    """Make real speech with Debian's espeak-ng: espeak(text, voice="en-us+m3") -> wav path (22.05 kHz mono)."""
    import shutil
    import subprocess

    if shutil.which("espeak-ng") is None:
        missing("espeak-ng is not installed (setup.sh installs it)")
    out_dir = tmp_path_factory.mktemp("espeak")

    def make(text: str, voice: str = "en-us+m3", name: str | None = None) -> pathlib.Path:
        path = out_dir / (name or f"{abs(hash((text, voice)))}.wav")
        subprocess.run(["espeak-ng", "-v", voice, "-s", "160", "-w", str(path), text], check=True)
        return path

    return make


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(home: pathlib.Path, port: int, **env: str):
    """`python app.py` as a real server process (its own process group, so a test can SIGKILL all of it)."""
    import subprocess
    import sys

    from studio.settings import ROOT

    env = {**os.environ, "STUDIO_HOME": str(home), "TTS_DEVICE": "cpu", "STUDIO_PORT": str(port), **env}
    env.pop("STUDIO_AUTH", None)
    return subprocess.Popen([sys.executable, str(ROOT / "app.py")], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def wait_up(url: str, proc, timeout_s: float = 180.0, **client_options):
    """A gradio_client Client (with `client_options`) once the server started by start_app answers."""
    import time

    from gradio_client import Client

    deadline = time.time() + timeout_s
    while time.time() < deadline:
        assert proc.poll() is None, "the studio exited"
        try:
            return Client(url, **{"verbose": False, **client_options})
        except Exception:  # noqa: BLE001 - not listening yet
            time.sleep(0.5)
    raise AssertionError("the studio did not start")


@pytest.fixture(scope="session")
def tiny_home(tmp_path_factory):
    """A STUDIO_HOME with every tiny model installed by `setup_models.py --tiny` (built once per session)."""
    import setup_models

    home = tmp_path_factory.mktemp("studio_home")
    old = os.environ.get("STUDIO_HOME")
    os.environ["STUDIO_HOME"] = str(home)
    try:
        assert setup_models.main(["--tiny"]) == 0
    finally:
        if old is None:
            os.environ.pop("STUDIO_HOME")
        else:
            os.environ["STUDIO_HOME"] = old
    return home


@pytest.fixture(scope="session")
def new_home(tiny_home, tmp_path_factory):
    """new_home() -> a fresh STUDIO_HOME sharing the tiny models: every served studio gets its own library,
    so no test sees another's cast members, voices or takes."""

    def make() -> pathlib.Path:
        home = tmp_path_factory.mktemp("home")
        (home / "models").symlink_to(tiny_home / "models")
        return home

    return make


@pytest.fixture(scope="session")
def launch_studio(tmp_path_factory):
    """launch_studio(home) -> (url, studio, close): the real app served on a free loopback port."""
    from studio.service import Studio
    from studio.settings import load_settings
    from studio.ui.app import build_app, launch

    gradio_tmp = tmp_path_factory.mktemp("gradio")
    os.environ["GRADIO_TEMP_DIR"] = str(gradio_tmp)
    opened = []

    def start(home: pathlib.Path, **env):
        settings = load_settings(env={"STUDIO_HOME": str(home), "TTS_DEVICE": "cpu", **env})
        studio = Studio(settings)
        demo = build_app(studio)
        _, url, _ = launch(demo, studio, "127.0.0.1", free_port(), prevent_thread_lock=True, quiet=True)
        opened.append(demo)
        return url, studio, demo.close

    yield start
    for demo in opened:
        demo.close()
