"""Seed-VC V2 voice conversion: K takes of one line against one reference in one batched pass.

Stages of `SeedVC.convert` (upstream: VoiceConversionWrapper.convert_voice_with_streaming, called once per take):
    0. validate inputs and options
    1. resample sources to 22.05 kHz (mel lengths) and 16 kHz (content); the reference comes from a cache
    2. content tokens of every source (one HuBERT pass for wide and narrow; over 30 s in upstream's windows)
    3a. timbre path: stretch content to each source's mel length, cut into context windows (16-frame overlap)
    3b. style path: AR rewrites each chunk of reduced narrow content into wide tokens for the reference's manner
    4. CFM on every window/chunk of every take in shared batches, each with its take's noise generator
    5. vocode each window and cross-fade windows (cos^2 over 16 frames) as upstream
Each take draws its noise and AR samples from its own generator (`seeds`), and padding never reaches a real row,
so a take converted in a batch equals the same take converted alone.
"""
from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import librosa
import numpy as np
import torch

from .ar import ARDims, ARModel, SamplingOptions
from .audio import CONTENT_SAMPLE_RATE, HOP_LENGTH, SAMPLE_RATE, mel_frames, mel_spectrogram, resample_to_16k
from .bigvgan import BigVGAN, load_bigvgan, vocode_batch
from .campplus import CAMPPlus, CAMPPlusDims, compute_style
from .cfm import CFM, cosine_t_span, draw_noise
from .checkpoints import load_checkpoint
from .content import RELEASE_SSL_LAYERS, AstralDims, AstralQuantizer, ContentEncoder, load_hubert
from .dit import DiT, DiTDims
from .length_regulator import InterpolateRegulator

MIN_REFERENCE_S = 0.5       # shorter references give an unusable style vector and prompt
MIN_SOURCE_S = 0.1          # HuBERT needs a few frames
SILENCE_PEAK = 1e-4         # a reference whose peak is below this is treated as silent
CONTENT_WINDOW_S = 30       # upstream content windows: 30 s, then 5 s history + 25 s new
CONTENT_HISTORY_S = 5
CONTENT_TOKEN_RATE = 50     # HuBERT frames per second


@dataclass(frozen=True)
class ConvertOptions:
    """Per-call settings; defaults are upstream's CLI values except diffusion_steps (30 upstream)."""
    diffusion_steps: int = 12                 # Euler steps; each runs the DiT on 1-3 guidance copies
    intelligibility_cfg_rate: float = 0.7     # guidance towards the content (0 disables)
    similarity_cfg_rate: float = 0.7          # guidance towards the reference voice (0 disables)
    convert_style: bool = False               # also convert accent/emotion through the AR model
    length_adjust: float = 1.0                # style path only: output duration factor (upstream UI 0.5-2)
    top_p: float = 0.9                        # AR nucleus sampling mass
    temperature: float = 1.0                  # AR sampling temperature
    repetition_penalty: float = 1.0           # AR; upstream applies it to the first generated token only
    anonymization_only: bool = False          # ignore the reference: random voice, no prompt or style


@dataclass
class Reference:
    """Everything about one reference voice, computed once (prepare_reference) and reused by every take."""
    mel: torch.Tensor                 # (1, 80, P) CFM prompt
    wide: torch.Tensor                # (T,) 2048-code content tokens (AR prompt target)
    narrow_reduced: torch.Tensor      # (N,) 32-code tokens with consecutive repeats removed
    style: torch.Tensor               # (1, style_dim) CAMPPlus embedding
    prompt_condition: torch.Tensor    # (1, P, C) length-regulated wide tokens

    @property
    def mel_len(self) -> int:
        return self.mel.size(-1)


@dataclass
class Replay:
    """Recorded randomness of one upstream run (tests): CFM noise per window and AR tokens per chunk, in order."""
    noise: list[torch.Tensor]                       # (1, 80, T_window) each
    ar_tokens: list[torch.Tensor] = field(default_factory=list)  # (n,) each, style path only


@dataclass
class _Window:
    """One CFM job: a slice of one take's conditioning."""
    take: int
    cond: torch.Tensor                # (L, C)
    noise: torch.Tensor | None = None  # (1, 80, P + L), when drawn before the CFM stage
    mel: torch.Tensor | None = None   # (80, L) after the CFM


def reduce_repeats(tokens: torch.Tensor) -> torch.Tensor:
    """Drop consecutive repeats (upstream duration_reduction_func with n_gram=1): 5 5 7 7 5 -> 5 7 5."""
    keep = torch.ones_like(tokens, dtype=torch.bool)
    keep[1:] = tokens[1:] != tokens[:-1]
    return tokens[keep]


def crossfade(previous: np.ndarray, chunk: np.ndarray, overlap: int) -> np.ndarray:
    """Blend the tail of the previous window into the head of `chunk` with cos^2 fades (upstream numerics)."""
    fade_out = np.cos(np.linspace(0, np.pi / 2, overlap)) ** 2
    fade_in = np.cos(np.linspace(np.pi / 2, 0, overlap)) ** 2
    chunk = chunk.copy()
    n = min(len(chunk), overlap)
    chunk[:n] = chunk[:n] * fade_in[:n] + (previous[-overlap:] * fade_out)[:n]
    return chunk


def join_windows(waves: list[np.ndarray], overlap: int) -> np.ndarray:
    """Concatenate window waves, each cross-faded into the tail held back from the one before."""
    if len(waves) == 1:
        return waves[0]
    out, previous = [waves[0][:-overlap]], waves[0][-overlap:]
    for wave in waves[1:-1]:
        out.append(crossfade(previous, wave[:-overlap], overlap))
        previous = wave[-overlap:]
    out.append(crossfade(previous, waves[-1], overlap))
    return np.concatenate(out)


def _check_audio(audio: np.ndarray, sr: int, name: str) -> np.ndarray:
    if not isinstance(sr, (int, np.integer)) or sr <= 0:
        raise ValueError(f"{name}: sample rate must be a positive integer, got {sr!r}")
    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise ValueError(f"{name}: expected mono 1-D audio, got shape {audio.shape}")
    if audio.size == 0:
        raise ValueError(f"{name}: audio is empty")
    if not np.issubdtype(audio.dtype, np.floating):
        raise ValueError(f"{name}: expected float samples in [-1, 1], got dtype {audio.dtype}")
    if not np.isfinite(audio).all():
        raise ValueError(f"{name}: audio contains NaN or infinite samples")
    return audio.astype(np.float32)


def _to_model_rate(audio: np.ndarray, sr: int) -> np.ndarray:
    """22.05 kHz float32, resampled as librosa.load(sr=22050) does (soxr_hq)."""
    if sr == SAMPLE_RATE:
        return audio
    return librosa.resample(audio, orig_sr=int(sr), target_sr=SAMPLE_RATE, res_type="soxr_hq").astype(np.float32)


class SeedVC:
    """The loaded models plus the conversion pipeline. Build with `load_model`, or directly from modules."""

    def __init__(self, cfm: CFM, cfm_regulator: InterpolateRegulator, ar: ARModel, ar_regulator: InterpolateRegulator,
                 content: ContentEncoder, style_encoder: CAMPPlus, vocoder: BigVGAN, device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32, max_context_s: int = 30, ar_max_content_len: int = 1500,
                 overlap_frames: int = 16, max_reference_s: float | None = None, reference_cache_size: int = 8,
                 max_rows_per_pass: int = 8, batch_vocoder: bool = False, ar_max_new_tokens: int = 4001) -> None:
        """
        Args:
            dtype: autocast dtype for HuBERT, CAMPPlus, the AR and the style-path CFM on GPU (the timbre-path CFM is
                always fp32, as upstream); CPU runs everything in fp32.
            max_context_s: DiT context window in seconds, reference prompt included (upstream 30).
            ar_max_content_len: narrow tokens (reference + source chunk) per AR call (upstream 1500).
            overlap_frames: mel frames shared by consecutive timbre windows and cross-faded (upstream 16).
            max_reference_s: references are clipped to this (default max_context_s - 5, upstream 25 s).
            reference_cache_size: prepared references kept (least recently used dropped).
            max_rows_per_pass: CFM windows per estimator batch (each becomes 1-3 guidance rows), and windows per
                vocoder batch.
            batch_vocoder: vocode windows in padded batches (faster on GPU). The last ~18 frames of every window
                then differ from vocoding it alone (padding frames enter the receptive field; on the random golden
                weights by as much as the signal), so a take is no longer equal to the same take converted alone.
                Off by default: one vocoder call per window.
            ar_max_new_tokens: cap on AR tokens per chunk (upstream 4001, i.e. 80 s of content at 50 Hz).
        """
        self.device, self.dtype = torch.device(device), dtype
        self.cfm, self.cfm_regulator, self.ar, self.ar_regulator = cfm, cfm_regulator, ar, ar_regulator
        self.content, self.style_encoder, self.vocoder = content, style_encoder, vocoder
        for module in (cfm, cfm_regulator, ar, ar_regulator, content, style_encoder, vocoder):
            module.to(self.device).eval()
        self.max_context_s, self.ar_max_content_len = max_context_s, ar_max_content_len
        self.overlap_frames, self.max_rows_per_pass = overlap_frames, max_rows_per_pass
        self.batch_vocoder, self.ar_max_new_tokens = batch_vocoder, ar_max_new_tokens
        self.max_reference_s = max_context_s - 5 if max_reference_s is None else max_reference_s
        if not MIN_REFERENCE_S <= self.max_reference_s < max_context_s:
            raise ValueError(f"max_reference_s={self.max_reference_s} must be in [{MIN_REFERENCE_S}, max_context_s)")
        self.reference_cache_size = reference_cache_size
        self._references: OrderedDict[str, Reference] = OrderedDict()

    # -- helpers -------------------------------------------------------------------------------------------------
    def _autocast(self, enabled: bool = True):
        """Autocast to self.dtype on GPU only; upstream's CPU runs are plain fp32."""
        if enabled and self.device.type == "cuda" and self.dtype != torch.float32:
            return torch.autocast("cuda", dtype=self.dtype)
        return nullcontext()

    def _content_tokens(self, waves_16k: list[torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(wide, narrow) tokens per wave. Waves over 30 s go in upstream's windows: the first 30 s, then 5 s of
        history + 25 s of new audio, dropping the history's 250 tokens.

        Each piece runs alone: the tokens are signs of projections, and a value near zero can flip when the same
        audio shares a batch (different kernel blocking), which would make a take depend on its batch mates.
        HuBERT is compute-bound, so batching it buys little.
        """
        window, history = CONTENT_WINDOW_S * CONTENT_SAMPLE_RATE, CONTENT_HISTORY_S * CONTENT_SAMPLE_RATE
        out = []
        for wave in waves_16k:
            pieces = [(wave[:window], 0)]
            for start in range(window, wave.numel(), window - history):
                pieces.append((wave[start - history: start + window - history], CONTENT_HISTORY_S * CONTENT_TOKEN_RATE))
            wide, narrow = [], []
            for audio, drop in pieces:
                # transformers' HuBERT draws torch.rand([]) per layer per call even in eval (its LayerDrop check);
                # fork_rng keeps those draws out of the global RNG stream, which then holds noise and AR only.
                with self._autocast(), torch.random.fork_rng(devices=[]):
                    tokens = self.content(audio[None].to(self.device), torch.tensor([audio.numel()]))
                wide.append(tokens.wide[0, drop: int(tokens.lens[0])])
                narrow.append(tokens.narrow[0, drop: int(tokens.lens[0])])
            out.append((torch.cat(wide), torch.cat(narrow)))
        return out

    # -- 1. reference ---------------------------------------------------------------------------------------------
    @torch.inference_mode()
    def prepare_reference(self, audio: np.ndarray, sr: int) -> Reference:
        """Prompt mel, content tokens (one HuBERT pass for wide and narrow), style and prompt condition of a
        reference clip; cached by the audio's hash. Clipped to max_reference_s (upstream 25 s)."""
        audio = _check_audio(audio, sr, "reference")
        key = hashlib.sha1(audio.tobytes() + str(int(sr)).encode()).hexdigest()
        if key in self._references:
            self._references.move_to_end(key)
            return self._references[key]
        if audio.size < MIN_REFERENCE_S * sr:
            raise ValueError(f"reference: {audio.size / sr:.2f} s is too short; at least {MIN_REFERENCE_S} s needed")
        if np.abs(audio).max() < SILENCE_PEAK:
            raise ValueError(f"reference: audio is silent (peak {np.abs(audio).max():.1e})")
        wave = _to_model_rate(audio, sr)[: int(SAMPLE_RATE * self.max_reference_s)]
        wave_16k = resample_to_16k(wave)
        mel = mel_spectrogram(torch.from_numpy(wave).to(self.device))
        ((wide, narrow),) = self._content_tokens([wave_16k])
        with self._autocast():
            style = compute_style(self.style_encoder, wave_16k[None].to(self.device))
            prompt_condition = self.cfm_regulator(wide[None], torch.tensor([mel.size(-1)]))
        reference = Reference(mel=mel, wide=wide, narrow_reduced=reduce_repeats(narrow), style=style.float(),
                              prompt_condition=prompt_condition.float())
        self._references[key] = reference
        while len(self._references) > self.reference_cache_size:
            self._references.popitem(last=False)
        return reference

    # -- conversion -------------------------------------------------------------------------------------------------
    @torch.inference_mode()
    def convert(self, sources: Sequence[np.ndarray], sr: int, reference: Reference, diffusion_steps: int = 12,
                intelligibility_cfg_rate: float = 0.7, similarity_cfg_rate: float = 0.7, convert_style: bool = False,
                length_adjust: float = 1.0, top_p: float = 0.9, temperature: float = 1.0,
                repetition_penalty: float = 1.0, seeds: Sequence[int] | None = None,
                anonymization_only: bool = False, *, replay: Replay | None = None,
                on_stage: Callable[[str, float], None] | None = None) -> list[np.ndarray]:
        """Convert K source takes to the reference voice in one batched pass.

        Args:
            sources: K mono float waves at `sr` (any lengths).
            reference: from prepare_reference.
            seeds: one per take; take i then gives the same audio whatever else is in the batch. None draws from
                the global torch RNG in upstream's order, as K sequential upstream calls after one
                torch.manual_seed (the style path then runs its AR one chunk at a time, unbatched).
            replay: recorded upstream randomness for a single take (tests); overrides seeds.
            on_stage: called as (stage name, fraction of the work done) when each stage starts, for progress bars.
            The rest: see ConvertOptions.
        Returns:
            K float32 waves at 22.05 kHz.
        """
        # 0. validate
        options = ConvertOptions(diffusion_steps, intelligibility_cfg_rate, similarity_cfg_rate, convert_style,
                                 length_adjust, top_p, temperature, repetition_penalty, anonymization_only)
        self._check_options(options)
        if not isinstance(reference, Reference):
            raise ValueError(f"reference must come from prepare_reference, got {type(reference).__name__}")
        if isinstance(sources, np.ndarray) or len(sources) == 0:
            raise ValueError("sources must be a non-empty list of 1-D waves")
        waves = [_check_audio(s, sr, f"source {i}") for i, s in enumerate(sources)]
        for i, w in enumerate(waves):
            if w.size < MIN_SOURCE_S * sr:
                raise ValueError(f"source {i}: {w.size / sr:.3f} s is too short; at least {MIN_SOURCE_S} s needed")
        if seeds is not None and len(seeds) != len(waves):
            raise ValueError(f"got {len(seeds)} seeds for {len(waves)} sources")
        if replay is not None and len(waves) != 1:
            raise ValueError("replay covers a single take")
        generators = None if seeds is None else [torch.Generator().manual_seed(int(s)) for s in seeds]
        report = on_stage or (lambda stage, fraction: None)

        # 1. resample
        waves = [_to_model_rate(w, sr) for w in waves]
        mel_lens = [mel_frames(w.size) for w in waves]
        waves_16k = [resample_to_16k(w) for w in waves]

        # 2. content
        report("content", 0.0)
        tokens = self._content_tokens(waves_16k)

        # 3. windows (timbre) or AR chunks (style)
        if options.convert_style:
            report("style (AR)", 0.1)
            windows = self._style_windows(tokens, mel_lens, reference, options, generators, replay)
        else:
            windows = self._timbre_windows(tokens, mel_lens, reference)

        # 4. CFM
        report("diffusion", 0.4 if options.convert_style else 0.1)
        self._run_cfm(windows, reference, options, generators, replay)

        # 5. vocode and join
        report("vocoder", 0.75)
        window_waves = self._vocode([w.mel for w in windows])
        out = []
        for take in range(len(waves)):
            chunk_waves = [wave for w, wave in zip(windows, window_waves) if w.take == take]
            out.append(join_windows(chunk_waves, self.overlap_frames * HOP_LENGTH).astype(np.float32))
        report("done", 1.0)
        return out

    def _vocode(self, mels: list[torch.Tensor]) -> list[np.ndarray]:
        """Waves of (80, L) mels: one call each (exact), or padded batches of similar length (batch_vocoder)."""
        if not self.batch_vocoder:
            return [self.vocoder(mel[None])[0, 0].float().cpu().numpy() for mel in mels]
        waves: list[np.ndarray | None] = [None] * len(mels)
        order = sorted(range(len(mels)), key=lambda i: mels[i].size(-1))
        for b in range(0, len(order), self.max_rows_per_pass):
            group = order[b: b + self.max_rows_per_pass]
            lens = torch.tensor([mels[i].size(-1) for i in group])
            batch = mels[group[0]].new_zeros(len(group), mels[group[0]].size(0), int(lens.max()))
            for j, i in enumerate(group):
                batch[j, :, : lens[j]] = mels[i]
            for i, wave in zip(group, vocode_batch(self.vocoder, batch, lens)):
                waves[i] = wave.float().cpu().numpy()
        return waves

    @staticmethod
    def _check_options(o: ConvertOptions) -> None:
        checks = [
            (isinstance(o.diffusion_steps, int) and 1 <= o.diffusion_steps <= 200, "diffusion_steps", "1..200"),
            (0 <= o.intelligibility_cfg_rate <= 10, "intelligibility_cfg_rate", "0..10"),
            (0 <= o.similarity_cfg_rate <= 10, "similarity_cfg_rate", "0..10"),
            (0.5 <= o.length_adjust <= 2.0, "length_adjust", "0.5..2.0"),
            (0 < o.top_p <= 1, "top_p", "(0, 1]"),
            (0 < o.temperature <= 10, "temperature", "(0, 10]"),
            (0 < o.repetition_penalty <= 10, "repetition_penalty", "(0, 10]"),
        ]
        for ok, name, allowed in checks:
            if not ok:
                raise ValueError(f"{name}={getattr(o, name)!r} is out of range; allowed {allowed}")

    def _timbre_windows(self, tokens: list[tuple[torch.Tensor, torch.Tensor]], mel_lens: list[int],
                        reference: Reference) -> list[_Window]:
        """Content stretched to each source's mel length (length_adjust has no effect here, as upstream), cut into
        windows of (context - prompt) frames that overlap by overlap_frames."""
        prompt_len = reference.mel_len
        span = SAMPLE_RATE // HOP_LENGTH * self.max_context_s - prompt_len
        if span <= self.overlap_frames:
            raise ValueError(f"reference prompt ({prompt_len} frames) leaves no room in a "
                             f"{self.max_context_s} s window")
        windows = []
        for take, ((wide, _), n_frames) in enumerate(zip(tokens, mel_lens)):
            with self._autocast():
                cond = self.cfm_regulator(wide[None], torch.tensor([n_frames]))[0].float()
            start = 0
            while start < n_frames:
                windows.append(_Window(take, cond[start: start + span]))
                if start + span >= n_frames:
                    break
                start += span - self.overlap_frames
        return windows

    def _style_windows(self, tokens: list[tuple[torch.Tensor, torch.Tensor]], mel_lens: list[int],
                       reference: Reference, options: ConvertOptions, generators: list[torch.Generator] | None,
                       replay: Replay | None) -> list[_Window]:
        """AR over chunks of each take's reduced narrow content, then each chunk's new wide tokens stretched to
        int(mel_len / n_tokens * n_new * length_adjust) frames. With seeds, all chunks of all takes share one
        batched generate; with the global RNG, chunks run one by one, each followed by its CFM noise draw."""
        ref_narrow = reference.narrow_reduced
        chunk_size = self.ar_max_content_len - ref_narrow.numel()
        if chunk_size <= 0:
            raise ValueError(f"reference has {ref_narrow.numel()} content tokens; at most "
                             f"{self.ar_max_content_len - 1} fit the AR context")
        jobs, texts, targets, gens = [], [], [], []
        empty = reference.wide.new_zeros(0)
        for take, (_, narrow) in enumerate(tokens):
            reduced = reduce_repeats(narrow)
            for start in range(0, reduced.numel(), chunk_size):
                chunk = reduced[start: start + chunk_size]
                text = chunk if options.anonymization_only else torch.cat([ref_narrow, chunk])
                jobs.append(take)
                texts.append(self.ar_regulator(text[None])[0])
                targets.append(empty if options.anonymization_only else reference.wide)
                gens.append(None if generators is None else generators[take])
        sampling = SamplingOptions(top_p=options.top_p, temperature=options.temperature,
                                   repetition_penalty=options.repetition_penalty, max_new_tokens=self.ar_max_new_tokens)
        sequential = replay is None and generators is None
        if replay is not None:
            new_tokens = [t.to(self.device).long() for t in replay.ar_tokens]
        elif not sequential:
            with self._autocast():
                new_tokens = self.ar.generate(texts, targets, sampling, gens)
        windows = []
        block = self.cfm.estimator.dims.block_size
        for j, take in enumerate(jobs):
            if sequential:
                # Global RNG: upstream's order, one chunk at a time (its AR samples, then its CFM noise).
                with self._autocast():
                    new = self.ar.generate([texts[j]], [targets[j]], sampling)[0]
            else:
                new = new_tokens[j]
            n_src_tokens = tokens[take][0].numel()
            # The DiT's RoPE table has block_size rows (8192): a runaway chunk is cut to fit next to the prompt.
            new = new[: int((block - reference.mel_len) / (mel_lens[take] / n_src_tokens * options.length_adjust))]
            n_frames = int(mel_lens[take] / n_src_tokens * new.numel() * options.length_adjust)  # upstream's order
            with self._autocast():
                cond = self.cfm_regulator(new[None], torch.tensor([n_frames]))[0].float()
            windows.append(_Window(take, cond))
            if sequential:
                windows[-1].noise = draw_noise([reference.mel_len + n_frames], device=self.device)
        return windows

    def _run_cfm(self, windows: list[_Window], reference: Reference, options: ConvertOptions,
                 generators: list[torch.Generator] | None, replay: Replay | None) -> None:
        """Fill window.mel for every window: batches of up to max_rows_per_pass windows of similar length, each
        window's noise drawn (before batching, in take/window order) from its take's generator."""
        prompt_len = reference.mel_len
        frames = [prompt_len + w.cond.size(0) for w in windows]
        if replay is not None:
            noise = [n.to(self.device) for n in replay.noise]
        else:
            noise = [w.noise if w.noise is not None else
                     draw_noise([n], generators=None if generators is None else [generators[w.take]],
                                device=self.device) for w, n in zip(windows, frames)]
        t_span = cosine_t_span(options.diffusion_steps, self.device)
        rates = (options.intelligibility_cfg_rate, options.similarity_cfg_rate)
        order = sorted(range(len(windows)), key=lambda i: frames[i])
        for b in range(0, len(order), self.max_rows_per_pass):
            group = order[b: b + self.max_rows_per_pass]
            width = max(frames[i] for i in group)
            x = torch.zeros(len(group), reference.mel.size(1), width, device=self.device)
            mu = torch.zeros(len(group), width, reference.prompt_condition.size(-1), device=self.device)
            for j, i in enumerate(group):
                x[j, :, : frames[i]] = noise[i][0]
                mu[j, :prompt_len] = reference.prompt_condition[0]
                mu[j, prompt_len: frames[i]] = windows[i].cond
            # timbre path: the CFM runs in fp32 (upstream forces it); style path: under autocast
            with self._autocast(options.convert_style):
                out = self.cfm.solve_euler(x, torch.tensor([frames[i] for i in group], device=self.device),
                                           reference.mel, mu, reference.style, t_span, rates,
                                           options.anonymization_only)
            for j, i in enumerate(group):
                windows[i].mel = out[j, :, prompt_len: frames[i]].float()


PATH_KEYS = ("cfm", "ar", "bsq32", "bsq2048", "hubert", "campplus", "bigvgan")


def load_model(paths: dict[str, str | Path], device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
               dims: dict | None = None, **options) -> SeedVC:
    """Build every component and load the official files strictly (seed_vc.checkpoints).

    Args:
        paths: "cfm" (cfm_small.pth), "ar" (ar_base.pth), "bsq32", "bsq2048" (ASTRAL *_light.pth), "hubert"
            (transformers dir), "campplus" (campplus_cn_common.bin), "bigvgan" (dir with config.json and
            bigvgan_generator.pt).
        dtype: autocast dtype on GPU (see SeedVC); weights stay fp32.
        dims: size overrides by section, as configs/seed_vc_tiny.yaml: dit (DiTDims), ar (ARDims), astral
            (AstralDims), campplus (CAMPPlusDims), hubert_layers (int). HuBERT and BigVGAN sizes come from their
            config.json files.
        options: SeedVC keyword arguments (max_context_s, reference_cache_size, ...).
    """
    missing = [k for k in PATH_KEYS if k not in paths]
    if missing:
        raise ValueError(f"paths lacks {missing}; expected keys {list(PATH_KEYS)}")
    dims = dims or {}
    dit, ar_dims = DiTDims(**dims.get("dit", {})), ARDims(**dims.get("ar", {}))
    cfm, cfm_regulator = CFM(DiT(dit)), InterpolateRegulator(dit.content_dim, 2048, 4)
    ar, ar_regulator = ARModel(ar_dims), InterpolateRegulator(ar_dims.dim, 32, 0)
    load_checkpoint(paths["cfm"], "cfm", {"cfm": cfm, "length_regulator": cfm_regulator})
    load_checkpoint(paths["ar"], "ar", {"ar": ar, "length_regulator": ar_regulator})
    quantizers = {}
    for key, codebook in (("bsq2048", 2048), ("bsq32", 32)):
        quantizers[key] = AstralQuantizer(AstralDims(**{**dims.get("astral", {}), "codebook_size": codebook}))
        load_checkpoint(paths[key], "bsq", {"": quantizers[key]})
    hubert = load_hubert(paths["hubert"], dims.get("hubert_layers", RELEASE_SSL_LAYERS))
    campplus = CAMPPlus(CAMPPlusDims(**dims.get("campplus", {})))
    load_checkpoint(paths["campplus"], "campplus", {"": campplus})
    content = ContentEncoder(hubert, quantizers["bsq2048"], quantizers["bsq32"])
    return SeedVC(cfm, cfm_regulator, ar, ar_regulator, content, campplus, load_bigvgan(paths["bigvgan"]), device,
                  dtype, **options)
