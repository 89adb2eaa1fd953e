"""The judge: a small sketch classifier used to score generated samples (class accuracy, sketch-FID/KID)."""

from minisd.judge.model import Judge, JudgeNet, load_judge, prepare
from minisd.judge.train import train_judge

__all__ = ["Judge", "JudgeNet", "load_judge", "prepare", "train_judge"]
