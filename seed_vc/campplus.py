"""CAM++ speaker encoder (3D-Speaker), used as Seed-VC's 192-d style vector.

Public:
    CAMPPlusDims(feat_dim=80, embedding_size=192, growth_rate=32, bn_size=4, init_channels=128)
    CAMPPlus(dims)             # state_dict == campplus_cn_common.bin after remap_campplus_keys
    CAMPPlus.forward(feats (B, T, 80), lens (B,) | None) -> (B, embedding_size)
    remap_campplus_keys(state_dict) -> state_dict     # xvector.{stats,dense}.* -> {stats,dense}.*
    compute_style(model, waves_16k (B, L), lens (B,) | None) -> (B, embedding_size)
Attribute names follow the released checkpoint. compute_style runs each item alone, so a padded batch gives
exactly what each item gives alone (upstream's padded batch does not: its convs and CAM context means read the
padding).
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .audio import kaldi_fbank

CAM_SEGMENT = 100  # frames per segment of the CAM context pooling


@dataclass
class CAMPPlusDims:
    """Defaults are the released `campplus_cn_common.bin` (CAMPPlus(feat_dim=80, embedding_size=192))."""

    feat_dim: int = 80
    embedding_size: int = 192
    growth_rate: int = 32
    bn_size: int = 4
    init_channels: int = 128
    head_channels: int = 32  # FCM width (fixed in the original)


def _bn_relu(channels: int) -> nn.Sequential:
    return nn.Sequential(OrderedDict(batchnorm=nn.BatchNorm1d(channels), relu=nn.ReLU()))


class BasicResBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=(stride, 1), padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride=(stride, 1), bias=False),
                                          nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class FCM(nn.Module):
    """2-D conv front: (B, F, T) -> (B, C * F/8, T); frequency is downsampled 8x, time kept."""

    def __init__(self, channels: int, feat_dim: int):
        super().__init__()
        self.conv1 = nn.Conv2d(1, channels, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.layer1 = nn.Sequential(BasicResBlock(channels, channels, 2), BasicResBlock(channels, channels, 1))
        self.layer2 = nn.Sequential(BasicResBlock(channels, channels, 2), BasicResBlock(channels, channels, 1))
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=(2, 1), padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.out_channels = channels * (feat_dim // 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x[:, None])))
        out = self.layer2(self.layer1(out))
        out = F.relu(self.bn2(self.conv2(out)))
        return out.flatten(1, 2)


class TDNNLayer(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int):
        super().__init__()
        self.linear = nn.Conv1d(in_channels, out_channels, kernel_size, stride=stride,
                                padding=(kernel_size - 1) // 2, bias=False)
        self.nonlinear = _bn_relu(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.nonlinear(self.linear(x))


class CAMLayer(nn.Module):
    """Context-aware masking: a local conv gated by the utterance mean plus 100-frame segment means."""

    def __init__(self, bn_channels: int, out_channels: int, kernel_size: int, dilation: int):
        super().__init__()
        self.linear_local = nn.Conv1d(bn_channels, out_channels, kernel_size, padding=(kernel_size - 1) // 2 * dilation,
                                      dilation=dilation, bias=False)
        self.linear1 = nn.Conv1d(bn_channels, bn_channels // 2, 1)
        self.linear2 = nn.Conv1d(bn_channels // 2, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.linear_local(x)
        seg = F.avg_pool1d(x, kernel_size=CAM_SEGMENT, stride=CAM_SEGMENT, ceil_mode=True)
        seg = seg.repeat_interleave(CAM_SEGMENT, dim=-1)[..., : x.shape[-1]]
        context = F.relu(self.linear1(x.mean(-1, keepdim=True) + seg))
        return y * torch.sigmoid(self.linear2(context))


class CAMDenseTDNNLayer(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, bn_channels: int, kernel_size: int, dilation: int):
        super().__init__()
        self.nonlinear1 = _bn_relu(in_channels)
        self.linear1 = nn.Conv1d(in_channels, bn_channels, 1, bias=False)
        self.nonlinear2 = _bn_relu(bn_channels)
        self.cam_layer = CAMLayer(bn_channels, out_channels, kernel_size, dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cam_layer(self.nonlinear2(self.linear1(self.nonlinear1(x))))


class CAMDenseTDNNBlock(nn.ModuleDict):
    """Densely connected CAM layers named tdnnd1..tdnndN; each appends `growth_rate` channels."""

    def __init__(self, num_layers: int, in_channels: int, growth_rate: int, bn_channels: int, dilation: int):
        super().__init__({f"tdnnd{i + 1}": CAMDenseTDNNLayer(in_channels + i * growth_rate, growth_rate, bn_channels,
                                                              3, dilation) for i in range(num_layers)})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.values():
            x = torch.cat([x, layer(x)], dim=1)
        return x


class TransitLayer(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.nonlinear = _bn_relu(in_channels)
        self.linear = nn.Conv1d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.nonlinear(x))


class DenseLayer(nn.Module):
    """1x1 conv on the pooled stats followed by a non-affine BatchNorm."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.linear = nn.Conv1d(in_channels, out_channels, 1, bias=False)
        self.nonlinear = nn.Sequential(OrderedDict(batchnorm=nn.BatchNorm1d(out_channels, affine=False)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.nonlinear(self.linear(x[..., None])[..., 0])


class CAMPPlus(nn.Module):
    def __init__(self, dims: CAMPPlusDims = CAMPPlusDims()):
        super().__init__()
        self.head = FCM(dims.head_channels, dims.feat_dim)
        channels = dims.init_channels
        layers: OrderedDict[str, nn.Module] = OrderedDict(
            tdnn=TDNNLayer(self.head.out_channels, channels, 5, stride=2))
        for i, (num_layers, dilation) in enumerate(zip((12, 24, 16), (1, 2, 2))):
            layers[f"block{i + 1}"] = CAMDenseTDNNBlock(num_layers, channels, dims.growth_rate,
                                                        dims.bn_size * dims.growth_rate, dilation)
            channels += num_layers * dims.growth_rate
            layers[f"transit{i + 1}"] = TransitLayer(channels, channels // 2)
            channels //= 2
        layers["out_nonlinear"] = _bn_relu(channels)
        self.xvector = nn.Sequential(layers)
        self.dense = DenseLayer(channels * 2, dims.embedding_size)
        for m in self.modules():  # the original's init; PyTorch's default leaves random-weight styles near zero
            if isinstance(m, (nn.Conv1d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)

    def forward(self, feats: torch.Tensor, lens: torch.Tensor | None = None) -> torch.Tensor:
        """feats: (B, T, feat_dim) fbank; lens: (B,) frames to pool after the stride-2 TDNN (None = all).

        Returns (B, embedding_size). Pooling is mean and unbiased std over each row's first lens[i] frames.
        """
        x = self.xvector(self.head(feats.transpose(1, 2)))
        if lens is None:
            stats = torch.cat([x.mean(-1), x.std(-1)], dim=-1)
        else:
            stats = torch.stack([torch.cat([x[i, :, :n].mean(-1), x[i, :, :n].std(-1)])
                                 for i, n in enumerate(lens.tolist())])
        return self.dense(stats)


def remap_campplus_keys(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The released 3D-Speaker file keeps pooling and the embedding layer under `xvector.`; ours are top level."""
    out = {}
    for key, value in state_dict.items():
        for old in ("xvector.stats", "xvector.dense"):
            if key.startswith(old + "."):
                key = key[len("xvector."):]
        out[key] = value
    return out


@torch.inference_mode()
def compute_style(model: CAMPPlus, waves_16k: torch.Tensor, lens: torch.Tensor | None = None) -> torch.Tensor:
    """Style vectors of 16 kHz waves, as upstream `compute_style` on each item alone.

    waves_16k: (B, L) zero-padded (or (L,)), lens: (B,) samples (None = full rows). Returns (B, embedding_size).
    Per item: kaldi fbank minus its time mean, pooled over frames // 2 (the stride-2 TDNN drops an odd last frame).
    """
    if waves_16k.dim() == 1:
        waves_16k = waves_16k[None]
    if lens is None:
        lens = torch.full((waves_16k.shape[0],), waves_16k.shape[-1])
    styles = []
    for wave, n in zip(waves_16k, lens.tolist()):
        feat = kaldi_fbank(wave[:n])
        feat = feat - feat.mean(dim=0, keepdim=True)
        param = next(model.parameters())
        styles.append(model(feat[None].to(param), torch.tensor([feat.shape[0] // 2]))[0])
    return torch.stack(styles)
