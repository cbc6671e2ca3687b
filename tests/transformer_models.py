"""Small PyTorch transformers for the ONNX import tests (issue 27): the package's vision
transformer (patch embedding, multi-head attention written out, LayerNorm, a GELU MLP, a class
token or mean pooling) and one on ``torch.nn.MultiheadAttention``."""

from __future__ import annotations

from torch import nn

from circuitsim.network.torch_models import vision_transformer


ViT = vision_transformer
"""The package's vision transformer (:func:`circuitsim.network.torch_models.vision_transformer`)."""


class TorchAttention(nn.Module):
    """Tokens through ``nn.MultiheadAttention`` (batch first), mean-pooled, a head."""

    def __init__(self, features: int = 8, d: int = 16, heads: int = 2, classes: int = 3):
        super().__init__()
        self.embed, self.head = nn.Linear(features, d), nn.Linear(d, classes)
        self.attention = nn.MultiheadAttention(d, heads, batch_first=True)

    def forward(self, x):
        x = self.embed(x)
        return self.head(self.attention(x, x, x, need_weights=False)[0].mean(1))
