"""Small PyTorch transformers for the ONNX import tests (issue 27): a vision transformer with
patch embedding, multi-head attention written out (one QKV projection, heads by reshape and
permute), LayerNorm, a GELU MLP, a class token or mean pooling; and one on
``torch.nn.MultiheadAttention``."""

from __future__ import annotations

import math

import torch
from torch import nn


class Block(nn.Module):
    """A pre-norm encoder block: attention and a GELU MLP, each with a residual."""

    def __init__(self, d: int, heads: int, hidden: int):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc1, self.fc2 = nn.Linear(d, hidden), nn.Linear(hidden, d)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        attention = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d // self.heads), dim=-1)
        x = x + self.proj((attention @ v).transpose(1, 2).reshape(b, t, d))
        return x + self.fc2(nn.functional.gelu(self.fc1(self.norm2(x))))


class ViT(nn.Module):
    """Patches of ``patch × patch`` pixels embedded by a strided convolution, ``depth`` blocks, a head."""

    def __init__(self, side: int = 8, patch: int = 4, d: int = 16, heads: int = 2, depth: int = 2,
                 classes: int = 5, cls_token: bool = True):
        super().__init__()
        tokens = (side // patch) ** 2 + int(cls_token)
        self.embed = nn.Conv2d(1, d, patch, patch)
        self.cls = nn.Parameter(torch.randn(1, 1, d) * 0.5) if cls_token else None
        self.pos = nn.Parameter(torch.randn(1, tokens, d) * 0.5)
        self.blocks = nn.ModuleList([Block(d, heads, 2 * d) for _ in range(depth)])
        self.norm, self.head = nn.LayerNorm(d), nn.Linear(d, classes)

    def forward(self, x):
        x = self.embed(x).flatten(2).transpose(1, 2)
        if self.cls is not None:
            x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1)
        x = x + self.pos
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        return self.head(x[:, 0] if self.cls is not None else x.mean(dim=1))


class TorchAttention(nn.Module):
    """Tokens through ``nn.MultiheadAttention`` (batch first), mean-pooled, a head."""

    def __init__(self, features: int = 8, d: int = 16, heads: int = 2, classes: int = 3):
        super().__init__()
        self.embed, self.head = nn.Linear(features, d), nn.Linear(d, classes)
        self.attention = nn.MultiheadAttention(d, heads, batch_first=True)

    def forward(self, x):
        x = self.embed(x)
        return self.head(self.attention(x, x, x, need_weights=False)[0].mean(1))
