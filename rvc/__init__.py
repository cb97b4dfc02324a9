"""RVC (Retrieval-based Voice Conversion), our own implementation, compatible with RVC WebUI / Applio files.

    model = rvc.load_model("voice.pth")   # strict; refuses training checkpoints and non-HiFi-GAN vocoders
    out = model.net.infer(features, lengths, sid, pitch, pitchf)
    result = rvc.convert("line.wav", "voice.pth", "contentvec/", "voice.index")  # .audio at .sample_rate
"""
from .model_file import ModelFileError, RVCModel, extract_model, load_model, read_model, save_model
from .synthesizer import Synthesizer, SynthesizerConfig
from .content import load_contentvec
from .index import build_index, load_index
from .pipeline import ConvertOptions, ConvertResult, Pipeline, convert
from .pitch import F0_METHODS, available_f0_methods, extract_f0

__all__ = ["F0_METHODS", "ConvertOptions", "ConvertResult", "ModelFileError", "Pipeline", "RVCModel", "Synthesizer",
           "SynthesizerConfig", "available_f0_methods", "build_index", "convert", "extract_f0", "extract_model",
           "load_contentvec", "load_index", "load_model", "read_model", "save_model"]
