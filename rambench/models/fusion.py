"""Fusion blocks: turn per-modality features (or token sequences) into class logits."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rambench.batch import mask_absent


class ConcatFusion(nn.Module):
    """Late fusion by concatenation and one linear classifier."""

    def __init__(self, modalities: tuple[str, ...], dim: int, num_classes: int):
        super().__init__()
        self.modalities = modalities
        self.classifier = nn.Linear(len(modalities) * dim, num_classes)

    def forward(self, z: dict[str, Tensor], present: dict[str, Tensor]) -> Tensor:
        z = mask_absent(z, present)
        return self.classifier(torch.cat([z[m] for m in self.modalities], dim=1))


class _EncoderLayer(nn.TransformerEncoderLayer):
    """nn.TransformerEncoderLayer (post-norm) that always takes the standard path: torch's
    inference fast path returns NaN for a float key-padding mask (the gate's attention
    bias) on CPU, torch 2.13. Same parameters and the same computation otherwise."""

    def forward(self, src: Tensor, src_mask: Tensor | None = None,
                src_key_padding_mask: Tensor | None = None, is_causal: bool = False) -> Tensor:
        x = self.norm1(src + self._sa_block(src, src_mask, src_key_padding_mask,
                                            is_causal=is_causal))
        return self.norm2(x + self._ff_block(x))


class TokenFusion(nn.Module):
    """Fuse per-modality token sequences with a small transformer.

    `fuse(tokens, missing, gate)` takes, per modality m, raw tokens (B, N_m, token_dim) (N_m
    may differ between modalities, at most `max_tokens`) and a bool mask (B, N_m), True
    where the learned missing token of m replaces the token. Every token is projected to
    `width` and gets its modality's embedding and its position's (a learned table of
    `max_tokens` positions shared by the modalities). The transformer's outputs are
    averaged within each modality, then over modalities (so a modality with many tokens
    does not outweigh one with few), layer-normed to `h`, and classified.

    `gate` (B, M), optional, positive per-sample modality weights: log(gate) is added to the
    attention logits of every key of that modality (attention to modality m is multiplied
    by gate_m before renormalising), and the modality average becomes gate-weighted. None
    means equal weights (exactly the ungated model).
    """

    def __init__(
        self,
        modalities: tuple[str, ...],
        token_dim: int,
        num_classes: int,
        width: int = 64,
        layers: int = 2,
        heads: int = 4,
        max_tokens: int = 64,
    ):
        super().__init__()
        self.modalities, self.max_tokens = modalities, max_tokens
        self.project = nn.Linear(token_dim, width)
        self.modality_embedding = nn.Parameter(torch.randn(len(modalities), 1, width) * 0.02)
        self.position_embedding = nn.Parameter(torch.randn(max_tokens, width) * 0.02)
        self.missing_tokens = nn.Parameter(torch.randn(len(modalities), 1, width) * 0.02)
        layer = _EncoderLayer(
            width, heads, dim_feedforward=2 * width, dropout=0.0, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.classifier = nn.Linear(width, num_classes)

    def embed(self, tokens: dict[str, Tensor], missing: dict[str, Tensor]) -> list[Tensor]:
        """Per modality (B, N_m, width): projected (or missing) tokens plus embeddings."""
        out = []
        for i, m in enumerate(self.modalities):
            n = tokens[m].shape[1]
            if n > self.max_tokens:
                raise ValueError(f"{m}: {n} tokens, more than max_tokens={self.max_tokens}")
            x = self.project(tokens[m])
            x = torch.where(missing[m].unsqueeze(-1), self.missing_tokens[i].expand_as(x), x)
            out.append(x + self.modality_embedding[i] + self.position_embedding[:n])
        return out

    def fuse(self, tokens: dict[str, Tensor], missing: dict[str, Tensor],
             gate: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Returns (logits, h) with h the pooled fused representation."""
        parts = self.embed(tokens, missing)
        lengths = [x.shape[1] for x in parts]
        bias = None
        if gate is not None:
            log_gate = gate.clamp_min(1e-6).log().to(parts[0].dtype)
            bias = torch.cat([log_gate[:, i:i + 1].expand(-1, n)
                              for i, n in enumerate(lengths)], dim=1)
        out = self.encoder(torch.cat(parts, dim=1), src_key_padding_mask=bias)
        means = torch.stack([x.mean(dim=1) for x in out.split(lengths, dim=1)], dim=1)
        if gate is None:
            pooled = means.mean(dim=1)
        else:
            weights = gate / gate.sum(dim=1, keepdim=True)
            pooled = (means * weights.unsqueeze(-1).to(means.dtype)).sum(dim=1)
        h = self.norm(pooled)
        return self.classifier(h), h

    @staticmethod
    def absent_mask(tokens: dict[str, Tensor], present: dict[str, Tensor]) -> dict[str, Tensor]:
        """Per modality (B, N_m): True on every token of an absent modality."""
        return {m: (~present[m]).unsqueeze(1).expand(-1, t.shape[1]) for m, t in tokens.items()}
