"""A small vision transformer in PyTorch, to train and import through ONNX (issue 27).

:func:`vision_transformer` builds the ViT the tests, ``bench/bench_transformer.py`` and
``examples/vit_fashion_mnist.py`` use: patches of ``patch × patch`` pixels embedded by a strided
convolution, a class token (or mean pooling over the tokens), learned position embeddings,
``depth`` pre-norm encoder blocks (multi-head attention written out — one QKV projection, heads
by reshape and permute, so that every exporter writes plain ``MatMul``/``Softmax`` — and a GELU
MLP, each with a residual), a final LayerNorm and a linear head. PyTorch is optional: nothing here
imports it until the function runs.

Public API
----------
vision_transformer
"""

from __future__ import annotations

import math
from typing import Any

from ..errors import ConfigError


def vision_transformer(side: int = 8, patch: int = 4, d: int = 16, heads: int = 2, depth: int = 2,
                       classes: int = 5, cls_token: bool = True, channels: int = 1) -> Any:
    """A ``torch.nn.Module`` ViT for ``(N, channels, side, side)`` images.

    Parameters
    ----------
    side, patch : int
        Image and patch sides, pixels (``patch`` divides ``side``).
    d, heads, depth : int
        Token width, attention heads (dividing ``d``) and encoder blocks; the MLP is ``2 d`` wide.
    classes : int
        Outputs of the head (logits).
    cls_token : bool
        A class token read by the head; False: the mean over the tokens.
    channels : int
        Input channels.
    """
    try:
        import torch
        from torch import nn
    except ImportError:
        raise ConfigError("vision_transformer needs PyTorch: pip install torch") from None
    if side % patch or d % heads:
        raise ConfigError(f"patch ({patch}) must divide side ({side}) and heads ({heads}) must divide d ({d})")

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
            self.fc1, self.fc2 = nn.Linear(d, 2 * d), nn.Linear(2 * d, d)

        def forward(self, x: Any) -> Any:
            b, t, _ = x.shape
            q, k, v = self.qkv(self.norm1(x)).reshape(b, t, 3, heads, d // heads).permute(2, 0, 3, 1, 4)
            attention = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d // heads), dim=-1)
            x = x + self.proj((attention @ v).transpose(1, 2).reshape(b, t, d))
            return x + self.fc2(nn.functional.gelu(self.fc1(self.norm2(x))))

    class ViT(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            tokens = (side // patch) ** 2 + int(cls_token)
            self.embed = nn.Conv2d(channels, d, patch, patch)
            self.cls = nn.Parameter(torch.randn(1, 1, d) * 0.5) if cls_token else None
            self.pos = nn.Parameter(torch.randn(1, tokens, d) * 0.5)
            self.blocks = nn.ModuleList([Block() for _ in range(depth)])
            self.norm, self.head = nn.LayerNorm(d), nn.Linear(d, classes)

        def forward(self, x: Any) -> Any:
            x = self.embed(x).flatten(2).transpose(1, 2)
            if self.cls is not None:
                x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1)
            x = x + self.pos
            for block in self.blocks:
                x = block(x)
            x = self.norm(x)
            return self.head(x[:, 0] if self.cls is not None else x.mean(dim=1))

    return ViT()
