"""Voice Design tab: describe a voice, hear N samples, keep one as a cast member."""
from __future__ import annotations

import gradio as gr

from ..service import MAX_SAMPLES, Studio
from .common import GPU, QUIET, language_dropdown, user_errors


def build(studio: Studio) -> list[gr.events.Dependency]:
    """Build the tab; returns the Keep events so the app can refresh the cast list after them."""
    with gr.Tab("Voice Design"):
        gr.Markdown("Describe a voice in plain words and hear several samples of it from one batched call. "
                    "Keep the one you like as a cast member.")
        with gr.Row():
            with gr.Column(scale=3):
                description = gr.Textbox(label="Voice description", elem_id="design_description", lines=2,
                                         placeholder="a gravelly old sea captain, low and slow")
                text = gr.Textbox(label="Line to speak", elem_id="design_text", lines=3,
                                  placeholder="Hoist the sails, lads, the storm won't wait for us.")
            with gr.Column(scale=1):
                language = language_dropdown()
                n = gr.Slider(1, MAX_SAMPLES, value=3, step=1, label="Samples")
                seed = gr.Number(value=0, precision=0, label="Seed (same seed, same samples; -1 = random)")
                go = gr.Button("Design samples", variant="primary", elem_id="design_go")
        keep_name = gr.Textbox(label="Cast member name (for Keep)", elem_id="keep_name",
                               placeholder="Captain Hale")
        status = gr.Markdown(elem_id="design_status")
        rows, slots, keeps = [], [], []
        for i in range(MAX_SAMPLES):
            with gr.Row(visible=i < 3) as row:
                slots.append(gr.Audio(label=f"Sample {i + 1}", type="filepath", interactive=False,
                                      buttons=["download"], elem_id=f"design_sample_{i + 1}"))
                keeps.append(gr.Button(f"Keep sample {i + 1}", elem_id=f"keep_{i + 1}", scale=0))
            rows.append(row)

        @user_errors
        def design(text, description, language, n, seed, progress=gr.Progress()):
            n = int(n)
            desc = f"Designing {n} sample(s) in one batched call"
            progress(0, desc=desc)
            sr, waves = studio.design(text, description, language, n, None if seed is None or seed < 0 else seed,
                                      on_step=lambda done, total: progress((done, total), desc=desc, unit="frames"))
            return [(sr, w) for w in waves] + [None] * (MAX_SAMPLES - len(waves))

        @user_errors
        def keep(sample, name, description, language):
            if not sample:
                raise gr.Error("design samples first, then keep one")
            member = studio.cast_save(sample, name, description, language)
            return f"Kept **{member.name}** in the cast."

        go.click(design, [text, description, language, n, seed], slots, api_name="design",
                 **GPU)
        n.change(lambda k: [gr.update(visible=i < k) for i in range(MAX_SAMPLES)], n,
                 rows, queue=False, **QUIET)
        # Keep sample 1 is also the /cast_save API: (audio, name, description, language) -> message.
        return [button.click(keep, [slots[i], keep_name, description, language], status,
                             api_name="cast_save" if i == 0 else None,
                             api_visibility="public" if i == 0 else "private")
                for i, button in enumerate(keeps)]
