"""Grounded-knowledge (GK) module: entity knowledge queries, prompted by region tokens, attend to the
global and patch visual features."""

from __future__ import annotations

import torch
from torch import nn


def sincos_2d(h: int, w: int, dim: int, device: torch.device | None = None) -> torch.Tensor:
    """Fixed 2-D sine-cosine position embedding ``[h * w, dim]`` (any grid size, no parameters)."""
    if dim % 4:
        raise ValueError(f"dim must be a multiple of 4 for 2-D sin-cos embeddings, got {dim}")
    q = dim // 4
    omega = 1.0 / (10000 ** (torch.arange(q, device=device, dtype=torch.float32) / q))
    gx, gy = torch.meshgrid(
        torch.arange(h, device=device, dtype=torch.float32),
        torch.arange(w, device=device, dtype=torch.float32),
        indexing="ij",
    )
    ox = gx.reshape(-1, 1) * omega
    oy = gy.reshape(-1, 1) * omega
    return torch.cat((ox.sin(), ox.cos(), oy.sin(), oy.cos()), dim=1)


class GKLayer(nn.Module):
    """One GK layer (pre-norm): entity self-attention, region-prompt cross-attention, visual
    cross-attention over ``[global; patches]``, feed-forward.

    Args:
        dim: width.
        num_heads: attention heads.
        mlp_ratio: feed-forward expansion.
        dropout: dropout in attention and feed-forward.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm_self = nn.LayerNorm(dim)
        self.self_attn = nn.MultiheadAttention(dim, num_heads, dropout=dropout, batch_first=True)
        self.norm_prompt = nn.LayerNorm(dim)
        self.prompt_attn = nn.MultiheadAttention(dim, num_heads, dropout=dropout, batch_first=True)
        self.norm_vis = nn.LayerNorm(dim)
        self.vis_attn = nn.MultiheadAttention(dim, num_heads, dropout=dropout, batch_first=True)
        self.norm_ffn = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.ffn = nn.Sequential(
            nn.Linear(dim, hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, dim),
            nn.Dropout(dropout),
        )

    def forward(
        self,
        q: torch.Tensor,
        prompts: torch.Tensor,
        prompt_block: torch.Tensor,
        visual: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Args:
            q: ``[B, E, D]`` entity queries.
            prompts: ``[B, 1 + R, D]`` default prompt then region tokens.
            prompt_block: ``[B * heads, E, 1 + R]`` bool, True where attention is not allowed.
            visual: ``[B, 1 + h*w, D]`` global token then patch tokens.

        Returns:
            ``(q, prompt attention [B, E, 1 + R], visual attention [B, E, 1 + h*w])``.
        """
        x = self.norm_self(q)
        q = q + self.self_attn(x, x, x, need_weights=False)[0]
        x = self.norm_prompt(q)
        out, p_attn = self.prompt_attn(x, prompts, prompts, attn_mask=prompt_block)
        q = q + out
        x = self.norm_vis(q)
        out, v_attn = self.vis_attn(x, visual, visual)
        q = q + out
        q = q + self.ffn(self.norm_ffn(q))
        return q, p_attn, v_attn


class GKModule(nn.Module):
    """Stack of :class:`GKLayer` fusing entity knowledge, region prompts and visual features.

    Each entity query attends over a learned default prompt plus the valid region tokens. By default every
    entity may attend to every valid region (what is available at inference, where there is no report);
    passing ``prompt_regions`` (the report's ``entity_regions``) restricts an entity that the report grounds
    to its grounded regions (plus the default prompt), and entities with no grounded region keep the full
    set.

    Args:
        dim: width of queries, region tokens and visual tokens.
        visual_channels: channels of the image feature map / global vector.
        num_entities: ``E``.
        num_layers: GK layers.
        num_heads: attention heads.
        dropout: dropout.
    """

    def __init__(
        self,
        dim: int,
        visual_channels: int,
        num_entities: int,
        num_layers: int = 2,
        num_heads: int = 4,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.visual_proj = nn.Linear(visual_channels, dim)
        self.global_proj = nn.Linear(visual_channels, dim)
        self.entity_embed = nn.Parameter(torch.zeros(num_entities, dim))
        self.default_prompt = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.layers = nn.ModuleList(GKLayer(dim, num_heads, dropout=dropout) for _ in range(num_layers))
        self.norm = nn.LayerNorm(dim)

    def visual_tokens(self, fmap: torch.Tensor, global_feat: torch.Tensor) -> torch.Tensor:
        """``[B, 1 + h*w, D]``: projected global vector then patch tokens with 2-D position embeddings."""
        b, c, h, w = fmap.shape
        patches = self.visual_proj(fmap.flatten(2).transpose(1, 2))
        patches = patches + sincos_2d(h, w, patches.shape[-1], fmap.device).to(patches.dtype)
        return torch.cat((self.global_proj(global_feat).unsqueeze(1), patches), dim=1)

    def forward(
        self,
        knowledge: torch.Tensor,
        region_tokens: torch.Tensor,
        region_mask: torch.Tensor,
        fmap: torch.Tensor,
        global_feat: torch.Tensor,
        prompt_regions: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Fuse.

        Args:
            knowledge: ``[E, D]`` entity knowledge embeddings.
            region_tokens: ``[B, R, D]`` region tokens.
            region_mask: ``[B, R]`` bool valid regions.
            fmap: ``[B, C, h, w]`` image feature map.
            global_feat: ``[B, C]`` global image vector.
            prompt_regions: optional ``[B, E, R]`` bool grounding from the report.

        Returns:
            dict with ``features`` ``[B, E, D]``, ``patch_attn`` ``[B, E, h, w]`` (last layer, head-averaged,
            renormalised over patches), ``region_attn`` ``[B, E, R]`` (last layer, mass on region tokens),
            ``visual`` ``[B, 1 + h*w, D]`` visual tokens.
        """
        b, r, _ = region_tokens.shape
        e = knowledge.shape[0]
        h, w = fmap.shape[-2:]
        visual = self.visual_tokens(fmap, global_feat)
        prompts = torch.cat((self.default_prompt.expand(b, 1, -1), region_tokens), dim=1)
        allowed = region_mask.bool().unsqueeze(1).expand(b, e, r)
        if prompt_regions is not None:
            grounded = prompt_regions.bool() & allowed
            has = grounded.any(-1, keepdim=True)
            allowed = torch.where(has, grounded, allowed)
        allowed = torch.cat((torch.ones(b, e, 1, dtype=torch.bool, device=allowed.device), allowed), dim=-1)
        block = (~allowed).repeat_interleave(self.num_heads, dim=0)
        q = (knowledge + self.entity_embed).unsqueeze(0).expand(b, -1, -1)
        p_attn = v_attn = None
        for layer in self.layers:
            q, p_attn, v_attn = layer(q, prompts, block, visual)
        patch = v_attn[..., 1:]
        patch = patch / patch.sum(-1, keepdim=True).clamp_min(1e-12)
        return {
            "features": self.norm(q),
            "patch_attn": patch.reshape(b, e, h, w),
            "region_attn": p_attn[..., 1:],
            "visual": visual,
        }


def init_weights(module: nn.Module) -> None:
    """Truncated-normal linear weights, zero biases (BERT/ViT convention)."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
