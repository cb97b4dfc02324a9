"""Small building blocks shared by the RVC synthesizer and discriminators.

Weight norm is implemented here rather than with ``torch.nn.utils.parametrizations`` so that every
state_dict we read or write uses the legacy ``weight_g`` / ``weight_v`` names of RVC checkpoints, with
no renaming step, and parameters come in the same order as upstream (bias, weight_g, weight_v), which
the optimizer state inside ``G_*.pth`` / ``D_*.pth`` is indexed by.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

LRELU_SLOPE = 0.1


def _compute_weight(module: nn.Module, _inputs=None) -> None:
    v = module.weight_v
    norm = torch.linalg.vector_norm(v, dim=tuple(range(1, v.dim())), keepdim=True)
    module.weight = v * (module.weight_g / norm)


def weight_norm(module: nn.Module) -> nn.Module:
    """Reparameterise ``module.weight`` as ``weight_g * weight_v / ||weight_v||`` (norm over all dims but 0).

    The weight is recomputed before every forward, as in the original HiFi-GAN/VITS code.
    """
    weight = module.weight
    del module._parameters["weight"]
    dims = tuple(range(1, weight.dim()))
    module.weight_g = nn.Parameter(torch.linalg.vector_norm(weight.detach(), dim=dims, keepdim=True))
    module.weight_v = nn.Parameter(weight.detach().clone())
    module.register_forward_pre_hook(_compute_weight)
    _compute_weight(module)
    return module


def padding_for(kernel_size: int, dilation: int = 1) -> int:
    """'Same' padding for an odd kernel."""
    return (kernel_size * dilation - dilation) // 2


def sequence_mask(lengths: torch.Tensor, max_length: int | None = None) -> torch.Tensor:
    """[B] lengths -> [B, T] bool mask, True inside each sequence."""
    if max_length is None:
        max_length = int(lengths.max())
    return torch.arange(max_length, device=lengths.device) < lengths.unsqueeze(1)


class LayerNorm(nn.Module):
    """LayerNorm over the channel axis of [B, C, T] (parameters named gamma/beta as in checkpoints)."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.layer_norm(x.transpose(1, -1), (x.shape[1],), self.gamma, self.beta, self.eps)
        return x.transpose(1, -1)


class WN(nn.Module):
    """WaveNet-style stack of gated dilated convolutions with optional global conditioning (VITS)."""

    def __init__(self, hidden_channels: int, kernel_size: int, dilation_rate: int, n_layers: int,
                 gin_channels: int = 0):
        super().__init__()
        self.hidden_channels = hidden_channels
        self.in_layers = nn.ModuleList()
        self.res_skip_layers = nn.ModuleList()
        for i in range(n_layers):
            dilation = dilation_rate**i
            self.in_layers.append(weight_norm(nn.Conv1d(
                hidden_channels, 2 * hidden_channels, kernel_size, dilation=dilation,
                padding=padding_for(kernel_size, dilation))))
            # the last layer only feeds the skip output
            out = 2 * hidden_channels if i < n_layers - 1 else hidden_channels
            self.res_skip_layers.append(weight_norm(nn.Conv1d(hidden_channels, out, 1)))
        if gin_channels:
            self.cond_layer = weight_norm(nn.Conv1d(gin_channels, 2 * hidden_channels * n_layers, 1))

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        """x: [B, H, T], x_mask: [B, 1, T], g: [B, gin, 1] -> [B, H, T]."""
        h = self.hidden_channels
        output = torch.zeros_like(x)
        cond = self.cond_layer(g) if g is not None else None
        for i, (in_layer, res_skip) in enumerate(zip(self.in_layers, self.res_skip_layers)):
            x_in = in_layer(x)
            if cond is not None:
                x_in = x_in + cond[:, 2 * h * i:2 * h * (i + 1)]
            acts = torch.tanh(x_in[:, :h]) * torch.sigmoid(x_in[:, h:])
            rs = res_skip(acts)
            if i < len(self.in_layers) - 1:
                x = (x + rs[:, :h]) * x_mask
                output = output + rs[:, h:]
            else:
                output = output + rs
        return output * x_mask


class ResBlock1(nn.Module):
    """HiFi-GAN residual block type "1": per dilation, a dilated conv then a plain conv."""

    def __init__(self, channels: int, kernel_size: int, dilations: list[int]):
        super().__init__()

        def conv(d: int) -> nn.Conv1d:
            c = nn.Conv1d(channels, channels, kernel_size, dilation=d, padding=padding_for(kernel_size, d))
            nn.init.normal_(c.weight, 0.0, 0.01)
            return weight_norm(c)

        self.convs1 = nn.ModuleList(conv(d) for d in dilations)
        self.convs2 = nn.ModuleList(conv(1) for _ in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for c1, c2 in zip(self.convs1, self.convs2):
            xt = c1(F.leaky_relu(x, LRELU_SLOPE))
            xt = c2(F.leaky_relu(xt, LRELU_SLOPE))
            x = x + xt
        return x


class ResidualCouplingLayer(nn.Module):
    """Mean-only affine coupling: the second half of the channels is shifted by a WN of the first half."""

    def __init__(self, channels: int, hidden_channels: int, kernel_size: int, dilation_rate: int,
                 n_layers: int, gin_channels: int = 0):
        super().__init__()
        self.half = channels // 2
        self.pre = nn.Conv1d(self.half, hidden_channels, 1)
        self.enc = WN(hidden_channels, kernel_size, dilation_rate, n_layers, gin_channels)
        self.post = nn.Conv1d(hidden_channels, self.half, 1)
        # zero init makes every coupling start as the identity
        nn.init.zeros_(self.post.weight)
        nn.init.zeros_(self.post.bias)

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor, g: torch.Tensor | None = None,
                reverse: bool = False) -> torch.Tensor:
        x0, x1 = x[:, :self.half], x[:, self.half:]
        h = self.enc(self.pre(x0) * x_mask, x_mask, g)
        m = self.post(h) * x_mask
        x1 = (x1 - m) * x_mask if reverse else m + x1 * x_mask
        return torch.cat([x0, x1], 1)


class Flip(nn.Module):
    """Reverse the channel order so the next coupling transforms the other half."""

    def forward(self, x: torch.Tensor, *_args, **_kwargs) -> torch.Tensor:
        return torch.flip(x, [1])


class ResidualCouplingBlock(nn.Module):
    """The VITS flow: n_flows × (coupling, flip); keys flow.flows.{0,2,4,6}."""

    def __init__(self, channels: int, hidden_channels: int, kernel_size: int = 5, dilation_rate: int = 1,
                 n_layers: int = 3, n_flows: int = 4, gin_channels: int = 0):
        super().__init__()
        self.flows = nn.ModuleList()
        for _ in range(n_flows):
            self.flows.append(ResidualCouplingLayer(channels, hidden_channels, kernel_size, dilation_rate,
                                                    n_layers, gin_channels))
            self.flows.append(Flip())

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor, g: torch.Tensor | None = None,
                reverse: bool = False) -> torch.Tensor:
        for flow in (reversed(self.flows) if reverse else self.flows):
            x = flow(x, x_mask, g=g, reverse=reverse)
        return x
