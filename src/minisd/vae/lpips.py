"""LPIPS (Zhang et al. 2018, VGG variant) from a local safetensors file: no torchvision, no download.

Expected keys: the VGG16 `features.{i}.weight/bias` of torchvision's layout (conv indices 0, 2,
5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28) and LPIPS's linear heads `lin{k}.model.1.weight`
(or `lin{k}.weight`), k = 0..4, shape (1, C, 1, 1). Convert once on a machine that has them:
`{**vgg16(weights="IMAGENET1K_V1").features.state_dict() prefixed "features.", **lpips_vgg_v0.1}`
saved with safetensors. Channel widths are read from the file, so any VGG16-shaped net loads.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

CONVS = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)  # torchvision vgg16.features conv indices
TAPS = (2, 7, 14, 21, 28)  # LPIPS reads relu1_2, relu2_2, relu3_3, relu4_3, relu5_3
POOLS_BEFORE = (5, 10, 17, 24)  # a 2x2 max-pool precedes these convs
SHIFT = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
SCALE = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)


class LPIPS(nn.Module):
    """Perceptual distance per image; inputs (N, 3, H, W) in [-1, 1]. Frozen."""

    def __init__(self, tensors: dict[str, torch.Tensor]):
        super().__init__()
        missing = [f"features.{i}.weight" for i in CONVS if f"features.{i}.weight" not in tensors]
        if missing:
            raise KeyError(f"LPIPS weights lack {missing[:3]}...")
        self.convs = nn.ModuleList()
        for i in CONVS:
            weight, bias = tensors[f"features.{i}.weight"], tensors[f"features.{i}.bias"]
            conv = nn.Conv2d(weight.shape[1], weight.shape[0], weight.shape[2], padding=weight.shape[2] // 2)
            conv.weight.data.copy_(weight)
            conv.bias.data.copy_(bias)
            self.convs.append(conv)
        self.lins = nn.ParameterList()
        for k in range(len(TAPS)):
            lin = tensors.get(f"lin{k}.model.1.weight", tensors.get(f"lin{k}.weight"))
            if lin is None:
                raise KeyError(f"LPIPS weights lack lin{k}.model.1.weight")
            self.lins.append(nn.Parameter(lin.clone(), requires_grad=False))
        self.register_buffer("shift", SHIFT.clone())
        self.register_buffer("scale", SCALE.clone())
        self.eval().requires_grad_(False)

    @classmethod
    def from_path(cls, path: str | Path) -> "LPIPS":
        path = Path(path)
        if path.is_dir():
            files = sorted(path.glob("*.safetensors"))
            if len(files) != 1:
                raise FileNotFoundError(f"{path}: expected one *.safetensors LPIPS file, found {len(files)}")
            path = files[0]
        if not path.is_file():
            raise FileNotFoundError(f"{path}: LPIPS weights not found")
        return cls(load_file(str(path)))

    def _features(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = (x - self.shift) / self.scale
        taps = []
        for i, conv in zip(CONVS, self.convs):
            if i in POOLS_BEFORE:
                x = F.max_pool2d(x, 2)
            x = F.relu(conv(x))
            if i in TAPS:
                taps.append(x / (x.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10))
        return taps

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        total = 0.0
        for fa, fb, lin in zip(self._features(a), self._features(b), self.lins):
            total = total + F.conv2d((fa - fb).pow(2), lin).mean(dim=(1, 2, 3))
        return total
