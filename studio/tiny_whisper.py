"""A random-weight Whisper in the exact file layout of the hub's openai/whisper-* repos (tests, demos).

The files are the ones `configs/models.yaml` lists for the `whisper` entry:
config.json, generation_config.json, model.safetensors, the slow and fast tokenizer
files (vocab.json, merges.txt, tokenizer.json, tokenizer_config.json,
added_tokens.json, special_tokens_map.json, normalizer.json) and
preprocessor_config.json, written by transformers' own save_pretrained so that
`WhisperProcessor/WhisperForConditionalGeneration.from_pretrained` load them
unpatched. The byte-level BPE is trained on a few sentences; the special tokens
follow Whisper's order (<|endoftext|>, <|startoftranscript|>, one per language,
task tokens, <|notimestamps|>) so language and task forcing run the real code.
"""
from __future__ import annotations

import json
from pathlib import Path

DIMS = {"d_model": 32, "encoder_layers": 1, "decoder_layers": 1, "encoder_attention_heads": 2,
        "decoder_attention_heads": 2, "encoder_ffn_dim": 64, "decoder_ffn_dim": 64, "num_mel_bins": 80,
        "max_source_positions": 1500, "max_target_positions": 448}
BPE_VOCAB = 400
CORPUS = ["He turned sharply, and faced Gregson across the table.",
          "And you always want to see it in the superlative degree.",
          "You came back. I never left. Both of you, stop. Fine.",
          "Der schnelle braune Fuchs. Le renard brun rapide. El zorro marrón."]


def build_tiny_whisper(dest: Path, seed: int = 0) -> None:
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import (GenerationConfig, WhisperConfig, WhisperFeatureExtractor,
                              WhisperForConditionalGeneration, WhisperProcessor, WhisperTokenizer,
                              WhisperTokenizerFast)
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(CORPUS, vocab_size=BPE_VOCAB, min_frequency=1, show_progress=False)
    bpe.save_model(str(dest))                                   # vocab.json + merges.txt
    (dest / "normalizer.json").write_text(json.dumps({"colour": "color"}))
    langs = [f"<|{code}|>" for code in LANGUAGES]
    specials = ["<|endoftext|>", "<|startoftranscript|>", *langs, "<|translate|>", "<|transcribe|>",
                "<|startoflm|>", "<|startofprev|>", "<|nospeech|>", "<|notimestamps|>"]
    slow = WhisperTokenizer(str(dest / "vocab.json"), str(dest / "merges.txt"),
                            normalizer_file=str(dest / "normalizer.json"), unk_token="<|endoftext|>",
                            bos_token="<|endoftext|>", eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    slow.add_special_tokens({"additional_special_tokens": specials[1:]})
    slow.save_pretrained(str(dest))
    fast = WhisperTokenizerFast.from_pretrained(str(dest))
    processor = WhisperProcessor(WhisperFeatureExtractor(feature_size=DIMS["num_mel_bins"]), fast)
    processor.save_pretrained(str(dest))

    ids = {t: fast.convert_tokens_to_ids(t) for t in specials}
    eot, sot = ids["<|endoftext|>"], ids["<|startoftranscript|>"]
    config = WhisperConfig(vocab_size=len(fast), decoder_start_token_id=sot, bos_token_id=eot, eos_token_id=eot,
                           pad_token_id=eot, begin_suppress_tokens=[eot], **DIMS)
    torch.manual_seed(seed)
    model = WhisperForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig(
        decoder_start_token_id=sot, bos_token_id=eot, eos_token_id=eot, pad_token_id=eot, max_length=448,
        begin_suppress_tokens=[eot], suppress_tokens=[], is_multilingual=True,
        lang_to_id={t: ids[t] for t in langs}, task_to_id={"transcribe": ids["<|transcribe|>"],
                                                           "translate": ids["<|translate|>"]},
        no_timestamps_token_id=ids["<|notimestamps|>"], prev_sot_token_id=ids["<|startofprev|>"],
        forced_decoder_ids=None)
    model.save_pretrained(str(dest), safe_serialization=True)  # config.json, generation_config.json, model.safetensors
