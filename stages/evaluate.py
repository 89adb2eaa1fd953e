"""Stage evaluate: export models/pipeline, score it into results/eval, write its model card."""

from minisd.config import load_params
from minisd.evaluate import score_pipeline, write_model_card
from minisd.stage import main


def run() -> None:
    params = load_params()
    write_model_card(params, score_pipeline(params.evaluate))


if __name__ == "__main__":
    main(run, __file__)
