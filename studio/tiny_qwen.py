"""Random-weight Qwen3-TTS-12Hz VoiceDesign models for tests and benchmarks.

`build_tiny_voicedesign(dest)` writes a ~2 MB model directory in exactly the
official layout, so `qwen_tts.Qwen3TTSModel.from_pretrained(dest)` loads it
unpatched and the real generate/decode code runs in tests. `build_fullsize_random_voicedesign`
builds the release 1.7B architecture in memory (never written to disk: 7.7 GB in fp32)
for the batching benchmark. Sizes live in configs/*.yaml; what each obstacle below
means is in notes/qwen3_tts.md §8.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
TINY_CONFIG = ROOT / "configs" / "tiny_qwen3_tts.yaml"
FULL_CONFIG = ROOT / "configs" / "qwen3_tts_1p7b_voicedesign.yaml"

# Release codec control ids, for a 2048-code codebook (Qwen3-TTS-12Hz config.json).
RELEASE_CODEBOOK_SIZE = 2048
RELEASE_CODEC_IDS = {
    "codec_pad_id": 2148,
    "codec_bos_id": 2149,
    "codec_eos_token_id": 2150,
    "codec_think_id": 2154,
    "codec_nothink_id": 2155,
    "codec_think_bos_id": 2156,
    "codec_think_eos_id": 2157,
}
# The 1.7B VoiceDesign release languages (no dialects, no speakers).
RELEASE_LANGUAGES = {
    "chinese": 2055, "english": 2050, "german": 2053, "italian": 2070, "portuguese": 2071,
    "spanish": 2054, "japanese": 2058, "korean": 2064, "french": 2061, "russian": 2069,
}
# The release generation_config.json values (the package's own fallbacks match them).
RELEASE_GENERATION_CONFIG = {
    "do_sample": True, "top_k": 50, "top_p": 1.0, "temperature": 0.9, "repetition_penalty": 1.05,
    "subtalker_dosample": True, "subtalker_top_k": 50, "subtalker_top_p": 1.0,
    "subtalker_temperature": 0.9, "max_new_tokens": 8192,
}
SAMPLE_RATE = 24000
# Stand-ins for the two small release files no loader reads: the top-level preprocessor_config.json names the
# processor class (AutoProcessor looks for it there), speech_tokenizer/configuration.json is ModelScope metadata.
PROCESSOR_CONFIG = {"processor_class": "Qwen3TTSProcessor"}
MODELSCOPE_CONFIGURATION = {"framework": "pytorch", "task": "text-to-speech"}

# Qwen2's pre-tokenizer split pattern (public; the same regex GPT-4-style tokenizers use).
QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
# Special tokens, appended after the BPE vocab. The last three stand in for Qwen's
# <|tts_pad|>, <|tts_text_bos|> and <|tts_text_eod|>.
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|tts_pad|>", "<|tts_text_bos|>",
            "<|tts_text_eod|>"]
# Training text: the prompt scaffolding must merge so "assistant" is one token (§8.2).
CORPUS = [
    "<|im_start|>assistant\nHello there, how are you today?<|im_end|>\n",
    "<|im_start|>user\nA gravelly old sea captain, low and slow.<|im_end|>\n",
    "assistant user assistant user system assistant",
    "The quick brown fox jumps over the lazy dog. Speak the line with warmth and a smile.",
    "A bright young narrator, fast and cheerful; a tired detective whispering in the rain.",
]


def load_dims(path: Path) -> dict[str, Any]:
    """Read one of the configs/*qwen3_tts*.yaml files."""
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def _remap(release_id: int, codebook_size: int) -> int:
    """Move a release control id onto a smaller codebook, keeping its offset (§8.3)."""
    return release_id - RELEASE_CODEBOOK_SIZE + codebook_size


# ---------------------------------------------------------------------------------------------
# Text tokenizer
# ---------------------------------------------------------------------------------------------

def build_text_tokenizer(bpe_vocab_size: int):
    """A small byte-level BPE wrapped as Qwen2TokenizerFast; deterministic for a corpus."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Qwen2TokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=bpe_vocab_size, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([s.replace("<|im_start|>", "").replace("<|im_end|>", "") for s in CORPUS],
                            trainer)
    tok.add_special_tokens(SPECIALS)
    fast = Qwen2TokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>",
                              pad_token="<|endoftext|>", unk_token=None, bos_token=None,
                              errors="replace", clean_up_tokenization_spaces=False)
    role = fast("<|im_start|>assistant\n")["input_ids"]
    if len(role) != 3:  # qwen_tts slices the role prefix as input_id[:, :3] (§8.2)
        raise RuntimeError(f"role prefix must be 3 tokens, got {len(role)}: {role}")
    return fast


def _text_ids(tokenizer) -> dict[str, int]:
    ids = tokenizer.convert_tokens_to_ids
    return {
        "im_start_token_id": ids("<|im_start|>"), "im_end_token_id": ids("<|im_end|>"),
        "tts_pad_token_id": ids("<|tts_pad|>"), "tts_bos_token_id": ids("<|tts_text_bos|>"),
        "tts_eos_token_id": ids("<|tts_text_eod|>"),
    }


# ---------------------------------------------------------------------------------------------
# Configs
# ---------------------------------------------------------------------------------------------

def model_config_dict(dims: dict[str, Any], text_ids: dict[str, int], text_vocab_size: int) -> dict:
    """The top-level config.json of a VoiceDesign model (no speaker_encoder_config, §8.1)."""
    cb, t, cp = dims["codebook_size"], dims["talker"], dims["code_predictor"]
    head_dim = t["head_dim"]
    if sum(t["mrope_section"]) != head_dim // 2:
        raise ValueError(f"mrope_section {t['mrope_section']} must sum to head_dim/2 = {head_dim // 2}")
    talker = {
        "vocab_size": cb + 1024,  # suppression is hard-wired to the top 1024 ids (§8.3)
        "text_vocab_size": text_vocab_size,
        "num_code_groups": dims["num_code_groups"],
        "hidden_act": "silu", "rms_norm_eps": 1e-6, "attention_bias": False,
        "rope_scaling": {"rope_type": "default", "mrope_section": t["mrope_section"], "interleaved": True},
        **{k: v for k, v in t.items() if k != "mrope_section"},
        **{k: _remap(v, cb) for k, v in RELEASE_CODEC_IDS.items()},
        "codec_language_id": {k: _remap(v, cb) for k, v in RELEASE_LANGUAGES.items()},
        "spk_id": {}, "spk_is_dialect": {},  # must be dicts, even empty (§8.6)
        "code_predictor_config": {
            "vocab_size": cb, "num_code_groups": dims["num_code_groups"], "hidden_act": "silu",
            "rms_norm_eps": 1e-6, "attention_bias": False, **cp,
        },
    }
    return {
        "model_type": "qwen3_tts", "tts_model_type": "voice_design",
        "tts_model_size": str(dims["tts_model_size"]), "tokenizer_type": "qwen3_tts_tokenizer_12hz",
        **text_ids, "talker_config": talker,
    }


def speech_tokenizer_config_dict(dims: dict[str, Any]) -> dict:
    """speech_tokenizer/config.json: Mimi encoder + split-RVQ decoder at 12.5 frames/s."""
    st, n_q, cb = dims["speech_tokenizer"], dims["num_code_groups"], dims["codebook_size"]
    dec = {"codebook_size": cb, "num_quantizers": n_q, "sliding_window": 72, **st["decoder"]}
    dec["upsample_rates"], dec["upsampling_ratios"] = list(dec["upsample_rates"]), list(dec["upsampling_ratios"])
    upsample = math.prod(dec["upsample_rates"] + dec["upsampling_ratios"])
    enc = {"codebook_size": cb, "num_semantic_quantizers": 1, "sliding_window": 250, **st["encoder"]}
    if enc["num_quantizers"] < n_q:
        raise ValueError("Mimi num_quantizers must be >= num_code_groups (§8.8)")
    return {
        "model_type": "qwen3_tts_tokenizer_12hz", "encoder_valid_num_quantizers": n_q,
        "input_sample_rate": SAMPLE_RATE, "output_sample_rate": SAMPLE_RATE,
        "decode_upsample_rate": upsample, "encode_downsample_rate": upsample,
        "encoder_config": enc, "decoder_config": dec,
    }


# ---------------------------------------------------------------------------------------------
# Weights
# ---------------------------------------------------------------------------------------------

def _make_codec_audible(codec: nn.Module, dims: dict[str, Any], seed: int) -> None:
    """Re-initialise a random 12 Hz codec so decoded audio is loud and depends on the codes.

    HF's N(0, 0.02) init and the zero codebooks decode every code sequence to the same
    ~1e-10 RMS signal (§8.9). PyTorch's default init, random codebooks and a gain on the
    last conv give RMS ~0.1 audio that changes with the codes.
    """
    g = torch.Generator().manual_seed(seed + 1)
    for m in codec.modules():
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.ConvTranspose1d)):
            bound = 1.0 / math.sqrt(m.weight.shape[1] * math.prod(m.weight.shape[2:]))
            with torch.no_grad():
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) * 2 * bound - bound)
                if m.bias is not None:
                    m.bias.zero_()
    with torch.no_grad():
        for name, p in list(codec.named_parameters()) + list(codec.named_buffers()):
            if name.endswith("embedding_sum") or name.endswith("embed_sum"):  # decoder / Mimi codebooks
                p.copy_(torch.randn(p.shape, generator=g))
            elif name.endswith("cluster_usage"):
                p.fill_(1.0)
            elif name.endswith("initialized"):
                p.fill_(1.0)
        last = codec.decoder.decoder[-1].conv  # final CausalConvNet -> 1 channel
        codes = torch.randint(0, dims["codebook_size"], (2, dims["num_code_groups"], 10), generator=g)
        rms = codec.decoder(codes).float().pow(2).mean().sqrt().item()
        last.weight.mul_(dims["speech_tokenizer"]["output_rms"] / max(rms, 1e-8))


def _new_speech_tokenizer(dims: dict[str, Any], seed: int):
    from qwen_tts.core import Qwen3TTSTokenizerV2Config, Qwen3TTSTokenizerV2Model

    cfg = Qwen3TTSTokenizerV2Config(**speech_tokenizer_config_dict(dims))
    torch.manual_seed(seed)
    codec = Qwen3TTSTokenizerV2Model(cfg).eval()
    _make_codec_audible(codec, dims, seed)
    return codec


def _new_talker_model(dims: dict[str, Any], tokenizer, text_vocab_size: int, seed: int):
    from qwen_tts.core.models import Qwen3TTSConfig, Qwen3TTSForConditionalGeneration

    cfg = Qwen3TTSConfig(**model_config_dict(dims, _text_ids(tokenizer), text_vocab_size))
    torch.manual_seed(seed)
    model = Qwen3TTSForConditionalGeneration(cfg).eval()
    if dims.get("never_ends", False):
        # A zero EOS row gives EOS logit 0, below the top-50 of the 256 random code logits
        # (centred on 0): the take runs until max_new_tokens, so test lengths are exact.
        with torch.no_grad():
            model.talker.codec_head.weight[cfg.talker_config.codec_eos_token_id].zero_()
    return model


# ---------------------------------------------------------------------------------------------
# Public builders
# ---------------------------------------------------------------------------------------------

def build_tiny_voicedesign(dest: Path, seed: int = 0, config: Path = TINY_CONFIG) -> None:
    """Write a tiny random-weight Qwen3-TTS-12Hz VoiceDesign model directory to `dest`.

    Exactly the released file list (configs/models.yaml, qwen3-tts-voicedesign): README.md, config.json,
    generation_config.json, model.safetensors, preprocessor_config.json, vocab.json, merges.txt,
    tokenizer_config.json, speech_tokenizer/{config.json, configuration.json, model.safetensors,
    preprocessor_config.json}. The same seed gives the same weights.
    """
    from transformers import EncodecFeatureExtractor

    dest = Path(dest)
    dims = load_dims(config)
    tokenizer = build_text_tokenizer(dims["text_tokenizer"]["bpe_vocab_size"])
    text_vocab = dims["text_tokenizer"].get("text_vocab_size", len(tokenizer))
    with torch.random.fork_rng(devices=[]):  # seed our weights without touching the caller's RNG
        model = _new_talker_model(dims, tokenizer, text_vocab, seed)
        codec = _new_speech_tokenizer(dims, seed)
    dest.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(dest, safe_serialization=True)
    # Qwen3TTSSpeakerEncoderConfig cannot round-trip (it writes "model_type": ""), and
    # VoiceDesign has no speaker encoder: write config.json ourselves (§8.1).
    cfg = json.loads((dest / "config.json").read_text())
    cfg.pop("speaker_encoder_config", None)
    (dest / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True))
    (dest / "generation_config.json").write_text(json.dumps(RELEASE_GENERATION_CONFIG, indent=2))
    _save_text_tokenizer_as_released(tokenizer, dest)
    (dest / "preprocessor_config.json").write_text(json.dumps(PROCESSOR_CONFIG, indent=2))
    (dest / "README.md").write_text("# Tiny Qwen3-TTS-12Hz VoiceDesign\n\nRandom weights in the release layout, "
                                    "written by `setup_models.py --tiny` for tests. It speaks noise.\n")

    st_dir = dest / "speech_tokenizer"
    codec.save_pretrained(st_dir, safe_serialization=True)
    EncodecFeatureExtractor(feature_size=1, sampling_rate=SAMPLE_RATE, padding_value=0.0).save_pretrained(st_dir)
    (st_dir / "configuration.json").write_text(json.dumps(MODELSCOPE_CONFIGURATION))


def _save_text_tokenizer_as_released(tokenizer, dest: Path) -> None:
    """vocab.json + merges.txt + tokenizer_config.json only, as the release has them (no tokenizer.json,
    added_tokens.json or special_tokens_map.json), so loading takes the slow-to-fast conversion real installs take;
    the special tokens live in tokenizer_config.json's added_tokens_decoder."""
    tokenizer.save_pretrained(dest)
    tokenizer.backend_tokenizer.model.save(str(dest))  # vocab.json + merges.txt, as on the hub
    for name in ("tokenizer.json", "added_tokens.json", "special_tokens_map.json"):
        (dest / name).unlink(missing_ok=True)


def build_fullsize_random_voicedesign(dtype: torch.dtype = torch.float32, seed: int = 0,
                                      config: Path = FULL_CONFIG, device: str = "cpu"):
    """The release 1.7B VoiceDesign architecture with random weights, in memory.

    Returns a ready `qwen_tts.Qwen3TTSModel` on `device` in `dtype`. Nothing is saved:
    the point is timing and memory of the real generate path, not the weights.
    """
    from qwen_tts import Qwen3TTSModel, Qwen3TTSTokenizer
    from qwen_tts.core.models import Qwen3TTSProcessor
    from transformers import EncodecFeatureExtractor

    dims = load_dims(config)
    tokenizer = build_text_tokenizer(dims["text_tokenizer"]["bpe_vocab_size"])
    text_vocab = dims["text_tokenizer"].get("text_vocab_size", len(tokenizer))
    previous = torch.get_default_dtype()
    with torch.random.fork_rng(devices=[]):
        torch.set_default_dtype(dtype)  # build straight in dtype: halves peak memory for bf16
        try:
            model = _new_talker_model(dims, tokenizer, text_vocab, seed)
        finally:
            torch.set_default_dtype(previous)
        speech_model = _new_speech_tokenizer(dims, seed).to(dtype)
    model = model.to(device)
    model.load_generate_config(dict(RELEASE_GENERATION_CONFIG))

    codec = Qwen3TTSTokenizer()
    codec.model = speech_model.to(device)
    codec.config = codec.model.config
    codec.feature_extractor = EncodecFeatureExtractor(feature_size=1, sampling_rate=SAMPLE_RATE)
    codec.device = torch.device(device)
    model.load_speech_tokenizer(codec)
    processor = Qwen3TTSProcessor(tokenizer=tokenizer)
    return Qwen3TTSModel(model=model, processor=processor, generate_defaults=model.generate_config)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Write a tiny random-weight Qwen3-TTS VoiceDesign directory.")
    parser.add_argument("dest", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    build_tiny_voicedesign(args.dest, seed=args.seed)
    print(f"wrote {args.dest}")
