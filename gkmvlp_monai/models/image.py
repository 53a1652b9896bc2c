"""Image encoders: MONAI 2-D ResNet or ViT returning a patch feature map and a global vector."""

from __future__ import annotations

import os

import torch
from monai.networks.nets import ResNet, ViT
from torch import nn

# name -> (block, layers, block_inplanes)
RESNET_SPECS: dict[str, tuple[str, list[int], list[int]]] = {
    "resnet_tiny": ("basic", [1, 1, 1, 1], [8, 16, 32, 64]),
    "resnet18": ("basic", [2, 2, 2, 2], [64, 128, 256, 512]),
    "resnet34": ("basic", [3, 4, 6, 3], [64, 128, 256, 512]),
    "resnet50": ("bottleneck", [3, 4, 6, 3], [64, 128, 256, 512]),
    "resnet101": ("bottleneck", [3, 4, 23, 3], [64, 128, 256, 512]),
}

# name -> (patch_size, hidden_size, mlp_dim, num_layers, num_heads)
VIT_SPECS: dict[str, tuple[int, int, int, int, int]] = {
    "vit_tiny": (16, 32, 64, 1, 2),
    "vit_s16": (16, 384, 1536, 12, 6),
    "vit_b16": (16, 768, 3072, 12, 12),
}


def load_state_dict_file(module: nn.Module, path: str | os.PathLike, strict: bool = True) -> None:
    """Load a local state-dict file into ``module`` (never downloads).

    Accepts a plain state dict or one nested under ``"state_dict"``/``"model"``; a common
    ``"module."`` prefix (DataParallel) is stripped.

    Args:
        module: module to load into.
        path: local ``.pt``/``.pth`` file holding tensors only.
        strict: passed to ``load_state_dict``.
    """
    state = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
    state = {k.removeprefix("module."): v for k, v in state.items()}
    module.load_state_dict(state, strict=strict)


class ImageEncoder(nn.Module):
    """2-D image encoder giving the last feature map and a global feature vector.

    ResNets follow the ImageNet stem (7x7 stride-2 convolution and max pooling), so the feature map is
    ``S / 32`` wide; ViTs give an ``S / 16`` grid of patch tokens. Spatial dims keep MONAI's order: dim -2
    of the map runs along the image's x (tensor dim -2), dim -1 along y.

    Args:
        arch: one of ``RESNET_SPECS`` (``resnet50`` default) or ``VIT_SPECS`` (``vit_b16`` ...).
        in_channels: image channels (1 for radiographs).
        img_size: square input size; only ViTs need it (position embeddings).
        weights_path: optional local state-dict file for the backbone.
        strict_weights: strict key matching when loading ``weights_path``.
    """

    # A TorchScript constant: ``torch.jit.script`` then compiles only the branch of ``forward`` that the
    # backbone takes. As a plain attribute both branches are compiled, and the ViT branch's tuple
    # unpacking of a ResNet's tensor output (or the ResNet branch's ``act`` on a ViT) fails to compile.
    __constants__ = ["is_vit"]

    def __init__(
        self,
        arch: str = "resnet50",
        in_channels: int = 1,
        img_size: int = 224,
        weights_path: str | None = None,
        strict_weights: bool = True,
    ) -> None:
        super().__init__()
        self.arch = arch
        self.is_vit = arch in VIT_SPECS
        if arch in RESNET_SPECS:
            block, layers, inplanes = RESNET_SPECS[arch]
            self.backbone: nn.Module = ResNet(
                block=block,
                layers=layers,
                block_inplanes=inplanes,
                spatial_dims=2,
                n_input_channels=in_channels,
                conv1_t_size=7,
                conv1_t_stride=2,
                feed_forward=False,
            )
            self.out_channels = inplanes[-1] * (4 if block == "bottleneck" else 1)
        elif self.is_vit:
            patch, hidden, mlp, n_layers, heads = VIT_SPECS[arch]
            if img_size % patch:
                raise ValueError(f"img_size {img_size} is not a multiple of the ViT patch size {patch}")
            self.backbone = ViT(
                in_channels=in_channels,
                img_size=img_size,
                patch_size=patch,
                hidden_size=hidden,
                mlp_dim=mlp,
                num_layers=n_layers,
                num_heads=heads,
                spatial_dims=2,
                classification=False,
            )
            self.grid = img_size // patch
            self.out_channels = hidden
        else:
            raise ValueError(
                f"unknown image encoder {arch!r}; known: {sorted(RESNET_SPECS) + sorted(VIT_SPECS)}"
            )
        if weights_path:
            load_state_dict_file(self.backbone, weights_path, strict=strict_weights)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode images.

        Args:
            image: ``[B, C, S, S]`` float images.

        Returns:
            ``(feature_map [B, C_out, h, w], global [B, C_out])``.
        """
        if self.is_vit:
            tokens, _ = self.backbone(image)  # [B, h*w, C], final LayerNorm applied
            b, _, c = tokens.shape
            fmap = tokens.transpose(1, 2).reshape(b, c, self.grid, self.grid)
            return fmap, tokens.mean(dim=1)
        fmap = self.feature_maps(image)[0]
        return fmap, fmap.mean(dim=(-2, -1))

    @torch.jit.export
    def feature_maps(self, image: torch.Tensor) -> list[torch.Tensor]:
        """The encoder's feature maps, deepest first (decoders use the shallower ones as skips).

        Args:
            image: ``[B, C, S, S]`` float images.

        Returns:
            ResNets: ``[layer4 (S/32), layer3 (S/16), layer2 (S/8), layer1 (S/4), stem (S/2)]``; ViTs:
            their single patch grid ``[S/16]``.
        """
        if self.is_vit:
            return [self.forward(image)[0]]
        net = self.backbone
        stem = net.act(net.bn1(net.conv1(image)))
        x = stem if net.no_max_pool else net.maxpool(stem)
        f1 = net.layer1(x)
        f2 = net.layer2(f1)
        f3 = net.layer3(f2)
        f4 = net.layer4(f3)
        return [f4, f3, f2, f1, stem]
