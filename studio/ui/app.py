"""The Gradio app: one Blocks with a tab per feature, each wired to studio functions."""
from __future__ import annotations

import gradio as gr
from starlette.middleware import Middleware

from ..service import Studio
from ..settings import check_exposure
from ..users import authenticator
from ..webguard import WebGuard
from . import cast, convert, design, direct, scene, train
from .common import QUIET, StudioBlocks

TITLE = "Voice Acting Studio"
TINY_BANNER = ("**Tiny test models are loaded**: every voice is random noise. Install the real models with "
               "`python setup_models.py` for real speech.")


def build_app(studio: Studio) -> gr.Blocks:
    s = studio.settings
    age = s.cache_hours * 3600  # uploads and results leave Gradio's cache after this
    with StudioBlocks(title=TITLE, delete_cache=(min(age, 3600), age), gpu_queue=s.gpu_queue) as demo:
        gr.Markdown(f"# {TITLE}")
        if studio.tiny:
            gr.Markdown(TINY_BANNER, elem_id="tiny_banner")
        keep_events = design.build(studio)
        table, picker, refresh = cast.build(studio)
        convert_loaders = convert.build(studio)
        direct_keeps, direct_loaders = direct.build(studio)
        scene_loaders = scene.build(studio)
        train_loaders = train.build(studio)
        for event in keep_events + direct_keeps:
            event.then(refresh, None, [table, picker], **QUIET)
        demo.load(refresh, None, [table, picker], **QUIET)
        for fn, outputs in convert_loaders + direct_loaders + scene_loaders + train_loaders:
            demo.load(fn, None, outputs, **QUIET)

        def health() -> dict:
            """Models, devices, quantisation and whether tiny models are loaded; answers while a job runs."""
            return studio.health()

        gr.api(health, api_name="health", concurrency_limit=None)

        def trash_list() -> list[dict]:
            """Deleted cast members, RVC voices and trainings that can still be restored (kind, name, dates)."""
            return studio.trash_list()

        gr.api(trash_list, api_name="trash_list")
    # GPU jobs past s.gpu_queue waiting are refused with "busy, retry in N s" (studio/ui/lane.py); Gradio's own
    # bound on all waiting events stays above it as a backstop (its refusal says only "Queue is full").
    demo.queue(default_concurrency_limit=1, max_size=max(32, 2 * s.gpu_queue))
    return demo


def launch(demo: gr.Blocks, studio: Studio, host: str, port: int, **kwargs):
    """Serve the app; a non-loopback host without logins raises SettingsError before anything listens.

    Files under $STUDIO_HOME may be *returned* by events (Gradio copies them to its cache), but the
    file routes serve only that cache (see webguard), and the private parts are also blocked outright.
    """
    s = studio.settings
    check_exposure(host, s.auth)
    from gradio.utils import get_upload_folder

    home = s.home
    databases = [home / f"{db}{end}" for db in ("library.db", "takes.db", "scenes.db") for end in ("", "-wal", "-shm")]
    private = databases + [s.models_dir, home / "rvc", home / "trash", home / "training", s.users_file]
    guard = Middleware(WebGuard, served_folders=[get_upload_folder()], trusted_proxies=s.trusted_proxies)
    return demo.launch(server_name=host, server_port=port, auth=authenticator(s.auth) if s.auth else None,
                       allowed_paths=[str(home)], blocked_paths=[str(p) for p in private],
                       max_file_size=s.max_file_size, ssl_certfile=s.ssl_certfile, ssl_keyfile=s.ssl_keyfile,
                       ssl_verify=False if s.ssl_certfile else True, enable_monitoring=False, show_error=True,
                       app_kwargs={"middleware": [guard]}, **kwargs)
