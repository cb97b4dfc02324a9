"""RMVPE pitch estimator: log-mel front end, the E2E network and the salience decoder.

Follows RVC WebUI 20240604 `infer/lib/rmvpe.py`. Attribute names reproduce the keys of the released
`rmvpe.pt` (a bare state_dict of 741 tensors, see shared/manifests/rvc/rmvpe_E2E.json), so it loads strictly.
"""
from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

SAMPLE_RATE = 16000
N_MELS = 128
N_FFT = 1024  # window length too
HOP = 160  # 10 ms: 100 f0 frames per second
FMIN, FMAX = 30.0, 8000.0
N_CLASSES = 360  # 20-cent pitch bins
CENTS_FIRST_BIN = 1997.3794084376191  # bin 0 in cents re 10 Hz (about 31.7 Hz)
FRAME_MULTIPLE = 32  # 5 pooling levels of 2 along time
VOICING_THRESHOLD = 0.03


class MelFrontEnd(nn.Module):
    """16 kHz audio -> natural-log mel magnitude [B, 128, T] with T = n // 160 + 1 (center=True)."""

    def __init__(self) -> None:
        super().__init__()
        basis = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=FMIN, fmax=FMAX, htk=True)
        # Not part of rmvpe.pt, so kept out of the state_dict.
        self.register_buffer("mel_basis", torch.from_numpy(basis).float(), persistent=False)
        self.register_buffer("window", torch.hann_window(N_FFT), persistent=False)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(audio, N_FFT, HOP, N_FFT, window=self.window, center=True, return_complex=True)
        magnitude = torch.sqrt(spec.real.pow(2) + spec.imag.pow(2))
        return torch.log(torch.clamp(self.mel_basis @ magnitude, min=1e-5))


class ConvBlockRes(nn.Module):
    """Two 3x3 conv-BN-ReLU with a residual (1x1 conv when the width changes)."""

    def __init__(self, in_channels: int, out_channels: int, momentum: float = 0.01) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels, momentum=momentum),
            nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels, momentum=momentum),
            nn.ReLU(),
        )
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) + (x if self.shortcut is None else self.shortcut(x))


class ResBlockStack(nn.Module):
    """n_blocks ConvBlockRes (key prefix `conv.{i}`); the encoder's stacks are followed by average pooling."""

    def __init__(self, in_channels: int, out_channels: int, n_blocks: int) -> None:
        super().__init__()
        widths = [in_channels] + [out_channels] * n_blocks
        self.conv = nn.ModuleList(ConvBlockRes(a, b) for a, b in zip(widths[:-1], widths[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.conv:
            x = block(x)
        return x


class Encoder(nn.Module):
    def __init__(self, in_channels: int, n_layers: int, pool: tuple[int, int], n_blocks: int, out_channels: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(in_channels, momentum=0.01)
        self.layers = nn.ModuleList()
        for _ in range(n_layers):
            self.layers.append(ResBlockStack(in_channels, out_channels, n_blocks))
            in_channels, out_channels = out_channels, out_channels * 2
        self.pool = nn.AvgPool2d(pool)
        self.out_channels = in_channels  # width of the last stack

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        skips = []
        x = self.bn(x)
        for layer in self.layers:
            skip = layer(x)
            skips.append(skip)
            x = self.pool(skip)
        return x, skips


class Intermediate(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, n_layers: int, n_blocks: int) -> None:
        super().__init__()
        widths = [in_channels] + [out_channels] * n_layers
        self.layers = nn.ModuleList(ResBlockStack(a, b, n_blocks) for a, b in zip(widths[:-1], widths[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class DecoderBlock(nn.Module):
    """Transposed-conv upsampling to the skip's size, concatenation with the skip, then a residual stack."""

    def __init__(self, in_channels: int, out_channels: int, stride: tuple[int, int], n_blocks: int) -> None:
        super().__init__()
        output_padding = (0, 1) if tuple(stride) == (1, 2) else (1, 1)
        self.conv1 = nn.Sequential(
            nn.ConvTranspose2d(in_channels, out_channels, 3, stride, padding=1, output_padding=output_padding,
                               bias=False),
            nn.BatchNorm2d(out_channels, momentum=0.01),
            nn.ReLU(),
        )
        widths = [out_channels * 2] + [out_channels] * n_blocks
        self.conv2 = nn.ModuleList(ConvBlockRes(a, b) for a, b in zip(widths[:-1], widths[1:]))

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = torch.cat((self.conv1(x), skip), dim=1)
        for block in self.conv2:
            x = block(x)
        return x


class Decoder(nn.Module):
    def __init__(self, in_channels: int, n_layers: int, stride: tuple[int, int], n_blocks: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList()
        for _ in range(n_layers):
            self.layers.append(DecoderBlock(in_channels, in_channels // 2, stride, n_blocks))
            in_channels //= 2

    def forward(self, x: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
        for layer, skip in zip(self.layers, reversed(skips)):
            x = layer(x, skip)
        return x


class DeepUnet(nn.Module):
    def __init__(self, kernel_size: tuple[int, int], n_blocks: int, en_de_layers: int, inter_layers: int,
                 in_channels: int, en_out_channels: int) -> None:
        super().__init__()
        self.encoder = Encoder(in_channels, en_de_layers, kernel_size, n_blocks, en_out_channels)
        bottom = self.encoder.out_channels * 2
        self.intermediate = Intermediate(self.encoder.out_channels, bottom, inter_layers, n_blocks)
        self.decoder = Decoder(bottom, en_de_layers, kernel_size, n_blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, skips = self.encoder(x)
        return self.decoder(self.intermediate(x), skips)


class BiGRU(nn.Module):
    def __init__(self, input_size: int, hidden_size: int, num_layers: int) -> None:
        super().__init__()
        self.gru = nn.GRU(input_size, hidden_size, num_layers=num_layers, batch_first=True, bidirectional=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gru(x)[0]


class E2E(nn.Module):
    """Log-mel [B, 128, T] (T a multiple of 32) -> pitch-bin salience [B, T, 360] in (0, 1).

    The released rmvpe.pt is E2E(n_blocks=4, n_gru=1, kernel_size=(2, 2)) with the defaults below.
    """

    def __init__(self, n_blocks: int = 4, n_gru: int = 1, kernel_size: tuple[int, int] = (2, 2),
                 en_de_layers: int = 5, inter_layers: int = 4, in_channels: int = 1,
                 en_out_channels: int = 16) -> None:
        super().__init__()
        if n_gru < 1:
            raise ValueError("n_gru must be >= 1 (the released RMVPE uses one BiGRU layer)")
        self.unet = DeepUnet(tuple(kernel_size), n_blocks, en_de_layers, inter_layers, in_channels, en_out_channels)
        self.cnn = nn.Conv2d(en_out_channels, 3, 3, padding=1)
        # Upstream's Sequential also holds Dropout and Sigmoid (no parameters); sigmoid is applied in forward.
        self.fc = nn.Sequential(BiGRU(3 * N_MELS, 256, n_gru), nn.Linear(512, N_CLASSES))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.cnn(self.unet(mel.transpose(-1, -2).unsqueeze(1)))  # [B, 3, T, 128]
        return torch.sigmoid(self.fc(x.transpose(1, 2).flatten(-2)))


def pad_frames(mel: torch.Tensor) -> torch.Tensor:
    """Right-pad the time axis with zeros to a multiple of 32 frames, as the U-Net needs."""
    n = mel.shape[-1]
    return F.pad(mel, (0, -n % FRAME_MULTIPLE))


def decode(salience: np.ndarray, thred: float = VOICING_THRESHOLD) -> np.ndarray:
    """Salience [T, 360] -> f0 in Hz [T]: salience-weighted mean cents over argmax +/- 4 bins; 0 = unvoiced."""
    salience = np.asarray(salience)
    n = salience.shape[0]
    cents = np.pad(CENTS_FIRST_BIN + 20.0 * np.arange(N_CLASSES), (4, 4))
    padded = np.pad(salience, ((0, 0), (4, 4)))
    idx = np.argmax(salience, axis=1)[:, None] + np.arange(9)[None, :]  # argmax-4 .. argmax+4 in padded coords
    window = padded[np.arange(n)[:, None], idx]
    mean_cents = (window * cents[idx]).sum(1) / window.sum(1)
    mean_cents[salience.max(axis=1) <= thred] = 0
    f0 = 10 * 2 ** (mean_cents / 1200)
    f0[f0 == 10] = 0
    return f0


class RMVPE:
    """Audio-to-f0 wrapper around a released rmvpe.pt: 16 kHz mono in, Hz at 100 frames/s out."""

    def __init__(self, weights: str | Path, device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32) -> None:
        self.device, self.dtype = torch.device(device), dtype
        self.mel = MelFrontEnd().to(self.device)
        self.model = load_e2e(weights).eval().to(self.device, dtype)

    @torch.no_grad()
    def salience(self, audio: np.ndarray) -> np.ndarray:
        """16 kHz audio [n] -> salience [n // 160 + 1, 360]."""
        x = torch.as_tensor(np.asarray(audio), dtype=torch.float32, device=self.device)[None]
        mel = self.mel(x)  # fp32 front end, like upstream, then cast for the network
        n_frames = mel.shape[-1]
        hidden = self.model(pad_frames(mel).to(self.dtype))[:, :n_frames]
        return hidden[0].float().cpu().numpy()

    def infer(self, audio: np.ndarray, thred: float = VOICING_THRESHOLD) -> np.ndarray:
        return decode(self.salience(audio), thred)


def e2e_dims(state: dict[str, torch.Tensor]) -> dict:
    """E2E constructor arguments read off a state_dict (released: n_blocks 4, 5 levels, 4 inter, 16 ch).

    The pooling kernel has no weights and is always (2, 2). This lets reduced test weights load too.
    """
    def count(prefix: str) -> int:
        return len({k[len(prefix):].split(".")[0] for k in state if k.startswith(prefix)})

    first_conv = state.get("unet.encoder.layers.0.conv.0.conv.0.weight")
    if first_conv is None:
        raise ValueError("not an RMVPE state_dict: no 'unet.encoder.layers.0.conv.0.conv.0.weight'")
    return dict(n_blocks=count("unet.encoder.layers.0.conv."), n_gru=count("fc.0.gru.weight_ih_l") // 2,
                en_de_layers=count("unet.encoder.layers."), inter_layers=count("unet.intermediate.layers."),
                in_channels=first_conv.shape[1], en_out_channels=first_conv.shape[0])


def load_e2e(path: str | Path) -> E2E:
    """Strictly load a bare rmvpe.pt state_dict, explaining what is wrong if it does not match."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"RMVPE weights not found: {path} (expected rmvpe.pt from lj1995/VoiceConversionWebUI)")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise ValueError(f"{path} is not a bare RMVPE state_dict (found {type(state).__name__} with keys "
                         f"{list(state)[:5] if isinstance(state, dict) else '-'})")
    model = E2E(**e2e_dims(state))
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong_shape = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or wrong_shape:
        raise ValueError(f"{path} does not match the RMVPE E2E network ({len(expected)} tensors): "
                         f"{len(missing)} missing {missing[:3]}, {len(unexpected)} unexpected {unexpected[:3]}, "
                         f"{len(wrong_shape)} with a different shape {wrong_shape[:3]}")
    model.load_state_dict(state, strict=True)
    return model
