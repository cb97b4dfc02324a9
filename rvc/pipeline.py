"""Voice conversion with an RVC model: RVC WebUI 20240604 `Pipeline.pipeline` / `Pipeline.vc`, stage by stage.

16 kHz source -> peak guard -> 48 Hz high-pass -> cut points in long audio -> reflect pad -> f0 once
(+ key) -> per window: ContentVec -> index blend -> x2 frames -> protect -> synthesizer -> trim the pad ->
join -> RMS mix -> resample -> peak-safe output at the model's rate (or `resample_sr`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf
import torch
import torch.nn.functional as F
from scipy import signal

from .content import HubertWithFinalProj, extract_features, feature_dim, load_contentvec
from .index import FeatureIndex, load_index
from .model_file import ModelFileError, RVCModel, load_model
from .pitch import F0_METHODS, available_f0_methods, coarse_f0, extract_f0, shift_key

SAMPLE_RATE = 16000  # ContentVec and f0 input rate
HOP = 160  # 10 ms f0 / synthesizer frames at 16 kHz
SILENCE_PEAK = 1e-4  # -80 dBFS: below this the source counts as silent
PEAK_LIMIT = 0.99  # output peak after the final guard
_HIGHPASS = signal.butter(N=5, Wn=48, btype="high", fs=SAMPLE_RATE)  # removes rumble and DC before analysis


@dataclass(frozen=True)
class Windows:
    """Long-audio windowing in seconds (RVC `Config` x_pad / x_query / x_center / x_max)."""

    pad: int  # context added on both sides of every window, trimmed after conversion
    query: int  # cut points are searched within +/- this around each nominal cut
    center: int  # nominal cut spacing
    max: int  # audio up to this long is converted in one window

    @classmethod
    def for_dtype(cls, dtype: torch.dtype) -> "Windows":
        """RVC's settings: 1/6/38/41 s in fp32 (CPU), 3/10/60/65 s in half precision (GPU)."""
        return cls(1, 6, 38, 41) if dtype == torch.float32 else cls(3, 10, 60, 65)


@dataclass(frozen=True)
class ConvertOptions:
    """Per-call settings; the defaults are RVC WebUI's UI defaults."""

    key: float = 0.0  # transpose in semitones (+12 = one octave up)
    f0_method: str = "auto"  # "auto" = rmvpe when its weights are given, else fcpe; or one of F0_METHODS
    index_rate: float = 0.75  # share of retrieved training features in the content (0 = index unused)
    filter_radius: int = 3  # > 2: 3-tap median filter on harvest's f0
    resample_sr: int = 0  # output rate; 0 (or < 16000) keeps the model's rate
    rms_mix_rate: float = 0.25  # 1 = output loudness as generated, 0 = follow the source's loudness envelope
    protect: float = 0.33  # content kept un-retrieved in unvoiced frames (0.5 = protection off)
    speaker_id: int = 0

    def __post_init__(self) -> None:
        for name, lo, hi in (("index_rate", 0, 1), ("rms_mix_rate", 0, 1), ("protect", 0, 0.5),
                             ("filter_radius", 0, 7), ("resample_sr", 0, 48000)):
            value = getattr(self, name)
            if not lo <= value <= hi:
                raise ValueError(f"{name}={value!r} is outside [{lo}, {hi}]")


@dataclass(frozen=True)
class ConvertResult:
    audio: np.ndarray  # float32 mono, peak <= 0.99
    sample_rate: int
    f0_method: str | None  # the pitch method actually used; None for models without pitch guidance
    f0: np.ndarray | None  # the f0 track used for the source (Hz after the key shift, 100 frames/s)


class Pipeline:
    """Loaded components for repeated conversions with one voice (the studio caches one per voice).

    The voice network and ContentVec are moved to `device` / `dtype` in place.
    """

    def __init__(self, model: RVCModel, contentvec: HubertWithFinalProj, index: FeatureIndex | None = None,
                 rmvpe_path: str | Path | None = None, device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32, windows: Windows | None = None) -> None:
        if model.net is None:
            raise ValueError("the RVCModel has no synthesizer: load it with rvc.model_file.load_model")
        self.model, self.index, self.rmvpe_path = model, index, rmvpe_path
        self.device, self.dtype = torch.device(device), dtype
        self.net = model.net.to(self.device, dtype).eval()
        self.contentvec = contentvec.to(self.device, dtype).eval()
        self.windows = windows or Windows.for_dtype(dtype)
        need = self.net.enc_p.in_channels
        have = feature_dim(contentvec, model.version)
        if have != need:
            raise ValueError(f"content dimension mismatch: this {model.version} voice model needs {need}-dim "
                             f"features but the ContentVec model gives {have}-dim for {model.version}")
        if index is not None and index.dim != need:
            raise ValueError(f"the index holds {index.dim}-dim features but this {model.version} voice model "
                             f"uses {need}-dim: pick the index trained with this model")

    def __call__(self, audio16k: np.ndarray, options: ConvertOptions = ConvertOptions()) -> ConvertResult:
        """Convert mono 16 kHz float audio; the result lasts as long as the input."""
        o, w = options, self.windows
        f0_method = self._resolve_f0_method(o.f0_method) if self.model.f0 else None
        # 1. Validate, guard the peak, high-pass.
        audio = np.asarray(audio16k, dtype=np.float32)
        check_source(audio)
        if not 0 <= o.speaker_id < self.net.emb_g.num_embeddings:
            raise ValueError(f"speaker_id={o.speaker_id} is outside this model's speakers "
                             f"[0, {self.net.emb_g.num_embeddings - 1}]")
        peak = np.abs(audio).max() / 0.95
        if peak > 1:
            audio = audio / peak
        audio = signal.filtfilt(*_HIGHPASS, audio)
        # 2. Cut points for long audio (at the quietest 10 ms near every `center` seconds), then reflect pad.
        cuts = quiet_cut_points(audio, w)
        t_pad = SAMPLE_RATE * w.pad
        audio_pad = np.pad(audio, (t_pad, t_pad), mode="reflect")
        n_frames = audio_pad.shape[0] // HOP
        # 3. f0 once on the whole padded signal.
        pitch = pitchf = f0 = None
        if f0_method is not None:
            f0 = shift_key(extract_f0(audio_pad, f0_method, rmvpe_path=self.rmvpe_path,
                                      filter_radius=o.filter_radius, device=self.device,
                                      dtype=self.dtype)[:n_frames], o.key)
            pitch = torch.from_numpy(coarse_f0(f0)).long()[None].to(self.device)
            pitchf = torch.from_numpy(f0).float()[None].to(self.device)
        # 4. Convert window by window; each keeps `pad` seconds of context on both sides, trimmed afterwards.
        sid = torch.tensor([o.speaker_id], device=self.device)
        trim = self.model.sr * w.pad
        pieces, start = [], 0
        for cut in [c // HOP * HOP for c in cuts] + [None]:
            end = None if cut is None else cut + 2 * t_pad + HOP
            frames = slice(start // HOP, None if cut is None else (cut + 2 * t_pad) // HOP)
            out = self._convert_window(audio_pad[start:end], sid, o,
                                       None if pitch is None else pitch[:, frames],
                                       None if pitchf is None else pitchf[:, frames])
            pieces.append(out[trim:-trim])
            start = cut
        # 5. Join at the model's rate and apply the loudness envelope (over the joined length, as upstream).
        tgt_sr = self.model.sr
        out = np.concatenate(pieces)
        check_output(out)  # before the envelope, which would dress a stuck decoder's constant up as a signal
        if o.rms_mix_rate != 1:
            out = mix_rms(audio, SAMPLE_RATE, out, tgt_sr, o.rms_mix_rate)
        # 6. Upstream ends 10-20 ms short of the input (ContentVec's last frames): pad so lengths match exactly.
        n_out = round(audio.shape[0] * tgt_sr / SAMPLE_RATE)
        out = np.pad(out[:n_out], (0, max(0, n_out - out.shape[0])))
        # 7. Resampling, peak guard.
        sr_out = tgt_sr
        if o.resample_sr >= 16000 and o.resample_sr != tgt_sr:
            out = librosa.resample(out, orig_sr=tgt_sr, target_sr=o.resample_sr)
            sr_out = o.resample_sr
        out_peak = np.abs(out).max() / PEAK_LIMIT
        if out_peak > 1:
            out = out / out_peak
        if f0 is not None:
            f0 = f0[t_pad // HOP:(t_pad + audio.shape[0]) // HOP]
        return ConvertResult(out.astype(np.float32), sr_out, f0_method, f0)

    def _resolve_f0_method(self, method: str) -> str:
        if method == "auto":
            return "rmvpe" if "rmvpe" in available_f0_methods(self.rmvpe_path) else "fcpe"
        if method not in F0_METHODS:
            raise ValueError(f"unknown f0 method {method!r}; methods available: "
                             f"{', '.join(['auto', *available_f0_methods(self.rmvpe_path)])}")
        return method

    @torch.no_grad()
    def _convert_window(self, chunk: np.ndarray, sid: torch.Tensor, o: ConvertOptions,
                        pitch: torch.Tensor | None, pitchf: torch.Tensor | None) -> np.ndarray:
        """One padded window of 16 kHz audio -> audio at the model's rate (RVC `Pipeline.vc`)."""
        feats = extract_features(self.contentvec, torch.from_numpy(chunk.astype(np.float32)), self.model.version)
        protect = o.protect < 0.5 and pitchf is not None
        feats0 = feats.clone() if protect else None
        if self.index is not None and o.index_rate != 0:
            blended = self.index.blend(feats[0].float().cpu().numpy(), o.index_rate)
            feats = torch.from_numpy(blended)[None].to(self.device, feats.dtype)
        feats = F.interpolate(feats.transpose(1, 2), scale_factor=2).transpose(1, 2)  # 50 -> 100 frames/s
        n = min(feats.shape[1], chunk.shape[0] // HOP, *([pitchf.shape[1]] if pitchf is not None else []))
        feats = feats[:, :n]
        if pitchf is not None:
            pitch, pitchf = pitch[:, :n], pitchf[:, :n]
        if protect:
            # Voiced frames take the (index-blended) features; unvoiced ones keep `protect` of them, so
            # breaths and consonants are not smeared by retrieval.
            feats0 = F.interpolate(feats0.transpose(1, 2), scale_factor=2).transpose(1, 2)[:, :n]
            mask = torch.where(pitchf > 0, 1.0, o.protect).unsqueeze(-1).to(feats.dtype)
            feats = feats * mask + feats0 * (1 - mask)
        lengths = torch.tensor([n], device=self.device)
        audio = self.net.infer(feats, lengths, sid, pitch, pitchf).audio  # pitchf stays fp32, as upstream
        return audio[0, 0].float().cpu().numpy()


def quiet_cut_points(audio: np.ndarray, w: Windows) -> list[int]:
    """Sample positions where audio longer than `w.max` is cut: near every multiple of `w.center`, at the
    10 ms stretch with the least absolute amplitude within +/- `w.query` (RVC's `opt_ts`)."""
    padded = np.pad(audio, (HOP // 2, HOP // 2), mode="reflect")
    if padded.shape[0] <= SAMPLE_RATE * w.max:
        return []
    energy = np.zeros_like(audio)
    for i in range(HOP):  # sum of |x| over the 160 samples starting at each position
        energy += np.abs(padded[i:i - HOP])
    t_query, t_center = SAMPLE_RATE * w.query, SAMPLE_RATE * w.center
    return [t - t_query + int(np.argmin(energy[t - t_query:t + t_query]))
            for t in range(t_center, audio.shape[0], t_center)]


def mix_rms(source: np.ndarray, sr_source: int, out: np.ndarray, sr_out: int, rate: float) -> np.ndarray:
    """Scale `out` by rms_source^(1-rate) * rms_out^(rate-1), envelopes taken every half second."""
    def envelope(x: np.ndarray, sr: int) -> torch.Tensor:
        rms = torch.from_numpy(librosa.feature.rms(y=x, frame_length=sr // 2 * 2, hop_length=sr // 2))
        return F.interpolate(rms[None].float(), size=out.shape[0], mode="linear").squeeze()

    rms_source = envelope(source, sr_source)
    rms_out = envelope(out, sr_out).clamp(min=1e-6)
    gain = torch.pow(rms_source, 1 - rate) * torch.pow(rms_out, rate - 1)
    return out * gain.numpy()


def check_source(audio: np.ndarray) -> None:
    """Refuse input that cannot be converted, with the reason."""
    if audio.ndim != 1:
        raise ValueError(f"expected mono audio [n], got shape {audio.shape}")
    if audio.shape[0] < HOP:
        raise ValueError(f"source audio is too short ({audio.shape[0]} samples at 16 kHz; need at least 10 ms)")
    if not np.isfinite(audio).all():
        raise ValueError("source audio contains NaN or infinite samples")
    if np.abs(audio).max() < SILENCE_PEAK:
        raise ValueError("source audio is silent (peak below -80 dBFS); nothing to convert")


def check_output(out: np.ndarray) -> None:
    """Refuse what a broken voice makes instead of speech (NaN/inf, or a constant level that plays as a full-scale
    DC click): it must never be returned, or saved, as a conversion."""
    if not np.isfinite(out).all():
        raise ModelFileError("the RVC voice produced invalid (NaN or infinite) samples instead of audio: its model "
                             "file is broken; use another save of it")
    level = abs(float(out.mean())) if out.size else 0.0
    if level > 1e-3 and float(out.std()) < 0.05 * level:
        raise ModelFileError("the RVC voice produced a constant (DC) signal instead of speech: its model file is "
                             "broken; use another save of it")


def load_audio(path: str | Path, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Decode an audio file to mono float32 at `sr`, with a clear error for missing or undecodable files."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"audio file not found: {path}")
    try:
        audio, file_sr = sf.read(path, dtype="float32", always_2d=True)
    except sf.LibsndfileError as e:
        raise ValueError(f"could not decode audio file {path}: {e}") from None
    audio = audio.mean(axis=1)
    if file_sr != sr:
        audio = librosa.resample(audio, orig_sr=file_sr, target_sr=sr)
    return audio.astype(np.float32)


def convert(audio: np.ndarray | str | Path, model: RVCModel | str | Path,
            contentvec: HubertWithFinalProj | str | Path, index: FeatureIndex | str | Path | None = None, *,
            options: ConvertOptions = ConvertOptions(), rmvpe_path: str | Path | None = None,
            sample_rate: int = SAMPLE_RATE, device: str | torch.device = "cpu",
            dtype: torch.dtype = torch.float32) -> ConvertResult:
    """Convert one clip. Each component may be given loaded or as a path (file, folder for ContentVec);
    `sample_rate` is the rate of an `audio` array (files are decoded and resampled)."""
    if isinstance(audio, (str, Path)):
        audio = load_audio(audio)
    elif sample_rate != SAMPLE_RATE:
        audio = librosa.resample(np.asarray(audio, dtype=np.float32), orig_sr=sample_rate, target_sr=SAMPLE_RATE)
    if not isinstance(model, RVCModel):
        model = load_model(model)
    if not isinstance(contentvec, HubertWithFinalProj):
        contentvec = load_contentvec(contentvec)
    if index is not None and not isinstance(index, FeatureIndex):
        index = load_index(index, dim=model.net.enc_p.in_channels)
    return Pipeline(model, contentvec, index, rmvpe_path, device, dtype)(audio, options)
