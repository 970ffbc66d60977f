"""Fusion blocks: turn per-modality features into class logits."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def masked_features(z: dict[str, Tensor], present: dict[str, Tensor]) -> dict[str, Tensor]:
    """Zero the features of absent modalities, so 'missing' never leaks encoder(zeros)."""
    return {m: f * present[m].to(f.dtype).unsqueeze(1) for m, f in z.items()}


class ConcatFusion(nn.Module):
    """Late fusion by concatenation and one linear classifier."""

    def __init__(self, modalities: tuple[str, ...], dim: int, num_classes: int):
        super().__init__()
        self.modalities = modalities
        self.classifier = nn.Linear(len(modalities) * dim, num_classes)

    def forward(self, z: dict[str, Tensor], present: dict[str, Tensor]) -> Tensor:
        z = masked_features(z, present)
        return self.classifier(torch.cat([z[m] for m in self.modalities], dim=1))


class TokenFusion(nn.Module):
    """Split each feature into K tokens, embed, fuse all M*K tokens with a transformer.

    `tokens()` and `fuse()` are separate so that a method can perturb the tokens between
    the two (RAML's corrupted view) and read the pooled representation `h`.
    """

    def __init__(
        self,
        modalities: tuple[str, ...],
        dim: int,
        num_classes: int,
        num_tokens: int = 8,
        width: int = 64,
        layers: int = 2,
        heads: int = 4,
    ):
        super().__init__()
        if dim % num_tokens:
            raise ValueError(f"feature dim {dim} is not divisible by {num_tokens} tokens")
        self.modalities, self.num_tokens = modalities, num_tokens
        self.project = nn.Linear(dim // num_tokens, width)
        self.modality_embedding = nn.Parameter(torch.randn(len(modalities), 1, width) * 0.02)
        self.position_embedding = nn.Parameter(torch.randn(1, num_tokens, width) * 0.02)
        self.missing_tokens = nn.Parameter(torch.randn(len(modalities), num_tokens, width) * 0.02)
        layer = nn.TransformerEncoderLayer(
            width, heads, dim_feedforward=2 * width, dropout=0.0, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.classifier = nn.Linear(width, num_classes)

    def split(self, z: dict[str, Tensor]) -> Tensor:
        """(B, M, K, dim/K): each modality's feature cut into K equal tokens."""
        return torch.stack([z[m].unflatten(1, (self.num_tokens, -1)) for m in self.modalities], 1)

    def fuse(self, tokens: Tensor, missing: Tensor) -> tuple[Tensor, Tensor]:
        """tokens (B, M, K, dim/K); missing bool (B, M, K): use the learned missing token.

        Returns (logits, h) with h the pooled fused representation.
        """
        x = self.project(tokens)
        x = torch.where(missing.unsqueeze(-1), self.missing_tokens.expand_as(x), x)
        x = x + self.modality_embedding + self.position_embedding
        h = self.norm(self.encoder(x.flatten(1, 2)).mean(dim=1))
        return self.classifier(h), h

    def absent_mask(self, present: dict[str, Tensor]) -> Tensor:
        """(B, M, K) True where a modality is absent."""
        absent = torch.stack([~present[m] for m in self.modalities], 1)
        return absent.unsqueeze(-1).expand(-1, -1, self.num_tokens)
