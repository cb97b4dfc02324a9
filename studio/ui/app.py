"""The Gradio app: one Blocks with a tab per feature, each wired to studio functions."""
from __future__ import annotations

import gradio as gr

from ..service import Studio
from . import cast, convert, design, train

TITLE = "Voice Acting Studio"
TINY_BANNER = ("**Tiny test models are loaded**: every voice is random noise. Install the real models with "
               "`python setup_models.py` for real speech.")


def build_app(studio: Studio) -> gr.Blocks:
    with gr.Blocks(title=TITLE) as demo:
        gr.Markdown(f"# {TITLE}")
        if studio.tiny:
            gr.Markdown(TINY_BANNER, elem_id="tiny_banner")
        keep_events = design.build(studio)
        table, picker, refresh = cast.build(studio)
        convert_loaders = convert.build(studio)
        train.build(studio)
        for event in keep_events:
            event.then(refresh, None, [table, picker], api_visibility="private")
        demo.load(refresh, None, [table, picker], api_visibility="private")
        for fn, outputs in convert_loaders:
            demo.load(fn, None, outputs, api_visibility="private")

        def health() -> dict:
            """Models, devices, quantisation and whether tiny models are loaded; answers while a job runs."""
            return studio.health()

        gr.api(health, api_name="health", concurrency_limit=None)
    demo.queue(default_concurrency_limit=1, max_size=32)
    return demo


def launch(demo: gr.Blocks, studio: Studio, host: str, port: int, **kwargs):
    s = studio.settings
    studio.takes_dir.mkdir(parents=True, exist_ok=True)
    return demo.launch(server_name=host, server_port=port, auth=list(s.auth) or None,
                       allowed_paths=[str(studio.takes_dir)],
                       max_file_size=s.max_file_size, ssl_certfile=s.ssl_certfile, ssl_keyfile=s.ssl_keyfile,
                       ssl_verify=False if s.ssl_certfile else True, enable_monitoring=False, show_error=True,
                       **kwargs)
