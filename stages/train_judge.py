"""Stage train_judge: the sketch classifier that evaluate uses to score generated samples."""

from minisd import paths
from minisd.judge.train import train_judge
from minisd.params.base import load_section
from minisd.params.judge import JudgeParams
from minisd.stage import main


def run() -> None:
    train_judge(load_section("judge", JudgeParams), paths.SHARDS, paths.JUDGE, paths.JUDGE_LIVE)


if __name__ == "__main__":
    main(run, __file__)
