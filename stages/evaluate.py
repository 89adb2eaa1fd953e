"""Stage evaluate: export models/pipeline and score it into results/eval."""

from minisd.config import load_params
from minisd.evaluate import evaluate
from minisd.stage import main


def run() -> None:
    evaluate(load_params().evaluate)


if __name__ == "__main__":
    main(run, __file__)
