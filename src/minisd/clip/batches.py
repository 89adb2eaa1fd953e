"""Layout-matched CLIP batches: hard negatives that differ only in what they depict.

In a uniform batch most pairs already differ in where the ink lies and how big it is, so the
contrastive loss is nearly solved by layout and barely asks either tower what the sketch shows:
the text tower then encodes size and position words loudly and class words faintly. Here each
batch is `groups` groups whose sketches share one measured layout (size word x position word,
`attributes.layout`, the same measurement evaluation scores by); within a group only the
content tells pairs apart, across groups layout still does. Layout is measured from the pixels,
so any sketch source works, captioned with those words or not.

Measured on the default data (README, performance): from scratch it learns class worse, not better
(zero-shot 0.14 vs 0.28 at 1000 steps); the task is too hard before either tower can see shapes.
Kept as an option (`clip.layout_groups`, off by default) for data whose layouts are less telling.
"""

from __future__ import annotations

from collections import defaultdict

import torch

from minisd.training.rng import seeded_generator


class LayoutBatches:
    """A seeded stream of batches of `groups` same-layout groups (same interface as `DataOrder`);
    `keys` holds each sample's `attributes.layout`.

    Each group starts from a uniformly drawn anchor sketch (so common layouts are drawn as often
    as they occur) and fills with sketches of the anchor's layout, without repeats when its
    layout has enough of them. Batch m of process r is a pure function of (seed, m, r): resuming
    replays nothing.
    """

    def __init__(self, keys: list[str], batch_size: int, groups: int, seed: int, world: int = 1, rank: int = 0):
        if batch_size % groups:
            raise ValueError(f"batch_size {batch_size} is not a multiple of groups {groups}")  # params/clip.py names the keys
        members = defaultdict(list)
        for index, key in enumerate(keys):
            members[key].append(index)
        self.keys = keys
        self.members = {key: torch.tensor(indices) for key, indices in members.items()}
        self.batch_size, self.groups, self.seed, self.world, self.rank = batch_size, groups, seed, world, rank

    def indices(self, micro_step: int) -> torch.Tensor:
        generator = seeded_generator(self.seed, micro_step, self.rank, self.world, 1)
        per_group = self.batch_size // self.groups
        anchors = torch.randint(len(self.keys), (self.groups,), generator=generator)
        batch = []
        for anchor in anchors.tolist():
            pool = self.members[self.keys[anchor]]
            if len(pool) >= per_group:
                picks = torch.randperm(len(pool), generator=generator)[:per_group]
            else:
                picks = torch.randint(len(pool), (per_group,), generator=generator)
            batch.append(pool[picks])
        return torch.cat(batch)

    def epoch_of(self, micro_step: int) -> float:
        return micro_step * self.world * self.batch_size / len(self.keys)
