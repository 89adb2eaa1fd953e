"""Stage train_judge: the sketch classifier that evaluate uses to score generated samples."""

from minisd import paths
from minisd.config import load_params
from minisd.judge.train import train_judge
from minisd.stage import main


def run() -> None:
    params = load_params()
    train_judge(params.judge, paths.SHARDS, paths.JUDGE, paths.JUDGE_LIVE)


if __name__ == "__main__":
    main(run, __file__)
