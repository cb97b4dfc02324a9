"""Seed-VC V2 voice conversion (our implementation of Plachtaa/seed-vc v2 inference), batched over takes.

    model = load_model({"cfm": ..., "ar": ..., "bsq32": ..., "bsq2048": ..., "hubert": ..., "campplus": ...,
                        "bigvgan": ...}, device="cuda", dtype=torch.float16)
    reference = model.prepare_reference(ref_audio, sr)          # cached per audio
    takes = model.convert([line_a, line_b], sr, reference, seeds=[1, 2])   # 22.05 kHz float32 waves
"""
from .audio import SAMPLE_RATE
from .converter import PATH_KEYS, ConvertOptions, Reference, SeedVC, load_model

__all__ = ["PATH_KEYS", "SAMPLE_RATE", "ConvertOptions", "Reference", "SeedVC", "load_model"]
