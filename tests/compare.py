"""The one way tests compare our outputs with reference outputs: floats within float32 rounding of the tensor's
scale, discrete outputs (tokens, indices, lengths, masks) exactly.

Why the float tolerance is relative to the tensor's *scale*
----------------------------------------------------------
Golden outputs were computed by upstream code on one CPU; CI runs on whichever machine it gets (Intel Xeon, AMD
EPYC). Same torch, same inputs, yet FFTs, convolutions and matrix products round differently: the kernels differ in
vector width, FMA use and summation order. float32 keeps 24 bits, so one rounding moves a value by up to
u = 2**-24 ~ 6e-8 of its size, and a sum of K terms accumulates about sqrt(K)..K such roundings *of the largest
terms*, not of the result. A spectrogram bin or activation that ends near zero therefore carries an error set by
the magnitude of what was summed (the tensor's scale), not by its own value: an elementwise rtol fails on exactly
those elements, and a fixed atol fails as soon as the tensor is large. Measured on a 2-core AMD EPYC against golden
data made on another CPU: log-mels and latents of magnitude 5-10 differ by 2e-5..3e-5 absolute, i.e. 2e-6..5e-6
of the scale (30-80 float32 roundings after a few FFT/conv/log stages).

So a float tensor passes when  max |actual - expected| <= REL * scale,  scale = max |expected| (the largest value
the computation produced). The worst case measured on that AMD machine over every golden comparison is 1.5e-5 of
the scale (the training forward's y_hat, the kaldi fbank of a tone: low-energy bins after a log), about 250
float32 roundings. REL = 1e-4 leaves ~7x headroom for the next CPU and stays 10x below the realistic bugs we guard
against, which move values by 1e-3 of the scale or more: a 1e-3 relative error, a frame shifted by one, a wrong eps
(log(mel + eps) for log(max(mel, eps)), a clamp floor 100x too high); tests/test_compare.py shows each of them fail
on real golden cases.
A test may pass a larger `rel` only with a comment that says which computation amplifies the rounding.

Discrete outputs compare exactly (`assert_equal`): a token that differs is a different result, whatever its value.
"""
from __future__ import annotations

import numpy as np
import torch

REL = 1e-4


def _array(x, what: str) -> np.ndarray:
    if torch.is_tensor(x):
        x = x.detach().cpu()
        x = x.float() if x.dtype in (torch.bfloat16, torch.float16) else x
        return x.numpy()
    if isinstance(x, (float, int, np.floating, np.integer, np.ndarray, list, tuple)):
        return np.asarray(x)
    raise TypeError(f"{what}: cannot compare a {type(x).__name__}")


def scale_of(expected) -> float:
    """The size rounding is relative to: the largest magnitude in the expected tensor (0 for an empty one)."""
    e = _array(expected, "expected")
    return float(np.abs(e).max()) if e.size else 0.0


def tolerance(expected, rel: float = REL) -> float:
    """The largest difference from `expected` that float32 rounding on another CPU explains."""
    return rel * scale_of(expected)


def assert_close(actual, expected, what: str, *, rel: float = REL, scale: float | None = None) -> None:
    """Floats: same shape, all finite, and max |actual - expected| <= rel * scale.

    `scale` defaults to max |expected|; pass the scale of the tensor a value was derived from when a step cancels
    most of it (a mean subtracted from a log-spectrum keeps the spectrum's rounding, not its own smaller size).
    """
    a, e = _array(actual, what).astype(np.float64), _array(expected, what).astype(np.float64)
    assert a.shape == e.shape, f"{what}: shape {a.shape}, expected {e.shape}"
    assert np.isfinite(e).all(), f"{what}: the expected values are not all finite"
    bad = ~np.isfinite(a)
    assert not bad.any(), f"{what}: {int(bad.sum())} non-finite values, first at {np.argwhere(bad)[0].tolist()}"
    if not e.size:
        return
    scale = scale_of(e) if scale is None else scale
    diff = np.abs(a - e)
    tol = rel * scale
    worst = tuple(int(i) for i in np.unravel_index(int(diff.argmax()), diff.shape))
    assert diff[worst] <= tol, (
        f"{what}: max |diff| {diff[worst]:.3g} at {list(worst)} (actual {a[worst]:.7g}, expected {e[worst]:.7g}) "
        f"exceeds {tol:.3g} = {rel:g} x scale {scale:.4g}; {int((diff > tol).sum())} of {diff.size} "
        "elements beyond it")


def assert_equal(actual, expected, what: str) -> None:
    """Discrete outputs (tokens, indices, lengths, masks): same shape, same values, no tolerance."""
    a, e = _array(actual, what), _array(expected, what)
    assert a.shape == e.shape, f"{what}: shape {a.shape}, expected {e.shape}"
    differ = a != e
    assert not differ.any(), (f"{what}: {int(differ.sum())} of {differ.size} differ, first at "
                              f"{np.argwhere(differ)[0].tolist()} ({a[differ][0]!r} vs {e[differ][0]!r})")
