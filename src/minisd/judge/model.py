"""The judge: a small sketch classifier whose penultimate layer doubles as the sketch-FID feature space.

Generated samples are scored by asking "which class is this?", so the judge must not care about the
style gap between real line art and a diffusion model's slightly blurry strokes (see augment.py),
and must see every image through one `prepare` so real and generated pixels are treated alike.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
BATCH = 32  # images per scoring pass: 1.8-2.3x the images/s of 256 on 2 CPU cores (benchmarks/bench_eval.py)


class JudgeNet(nn.Module):
    """conv-GroupNorm-ReLU-maxpool per entry of `channels`, global average pool, linear head.

    GroupNorm rather than BatchNorm: it keeps no running statistics of the real training images, so a
    generated sketch with fainter ink is normalized on its own terms, and train and eval behave alike
    (BatchNorm collapsed to one class on small data in our runs).
    """

    def __init__(self, channels: list[int], num_classes: int):
        super().__init__()
        layers, c_in = [], 1
        for c in channels:
            layers += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.GroupNorm(max(1, c // 8), c), nn.ReLU(inplace=True)]
            layers += [nn.MaxPool2d(2)]
            c_in = c
        self.body = nn.Sequential(*layers)
        self.dropout = nn.Dropout(0.2)
        self.head = nn.Linear(c_in, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate activations (N, channels[-1]): the space sketch-FID/KID are measured in."""
        return self.body(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x)))


def prepare(images: np.ndarray, size: int) -> torch.Tensor:
    """uint8 (N, H, W) black-on-white -> float (N, 1, size, size) ink map in [0, 1] (background 0)."""
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"judge expects uint8 (N, H, W) grayscale images, got {images.dtype} {images.shape}")
    if images.shape[1:] != (size, size):
        images = np.stack([cv2.resize(im, (size, size), interpolation=cv2.INTER_AREA) for im in images])
    ink = 1.0 - images.astype(np.float32) / 255.0
    return torch.from_numpy(ink).unsqueeze(1)


class Judge:
    """A trained JudgeNet with its class names and input size: classify and embed sketches."""

    def __init__(self, net: JudgeNet, classes: list[str], image_size: int, info: dict | None = None):
        self.net, self.classes, self.image_size = net.eval(), list(classes), image_size
        self.info = dict(info or {})

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    @torch.no_grad()
    def _run(self, images: np.ndarray, batch_size: int, head: bool) -> np.ndarray:
        out = []
        for i in range(0, len(images), batch_size):
            x = prepare(images[i : i + batch_size], self.image_size).to(self.device)
            out.append((self.net(x) if head else self.net.features(x)).float().cpu())
        return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)

    def logits(self, images: np.ndarray, batch_size: int = BATCH) -> np.ndarray:
        return self._run(images, batch_size, head=True)

    def predict(self, images: np.ndarray, batch_size: int = BATCH) -> list[str]:
        if len(images) == 0:
            return []
        return [self.classes[i] for i in self.logits(images, batch_size).argmax(axis=1)]

    def features(self, images: np.ndarray, batch_size: int = BATCH) -> np.ndarray:
        return self._run(images, batch_size, head=False).astype(np.float64)

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()}
        save_file(state, folder / WEIGHTS)
        config = {
            "classes": self.classes,
            "channels": [m.out_channels for m in self.net.body if isinstance(m, nn.Conv2d)],
            "image_size": self.image_size,
            **self.info,
        }
        (folder / CONFIG).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, folder: str | Path, device: str | torch.device = "cpu") -> "Judge":
        folder = Path(folder)
        if not (folder / CONFIG).is_file() or not (folder / WEIGHTS).is_file():
            raise FileNotFoundError(f"no judge in {folder} (run `dvc repro train_judge`)")
        config = json.loads((folder / CONFIG).read_text())
        net = JudgeNet(config["channels"], len(config["classes"]))
        net.load_state_dict(load_file(folder / WEIGHTS))
        info = {k: v for k, v in config.items() if k not in ("classes", "channels", "image_size")}
        return cls(net.to(device), config["classes"], config["image_size"], info)


def load_judge(folder: str | Path, device: str | torch.device = "cpu") -> tuple[Judge | None, str | None]:
    """(judge, None), or (None, reason) when train_judge recorded that no judge could be trained."""
    config = Path(folder) / CONFIG
    if config.is_file():
        skipped = json.loads(config.read_text()).get("skipped")
        if skipped:
            return None, f"no judge: {skipped}"
    return Judge.load(folder, device), None
