"""The evaluate stage: the exported pipeline, scored offline (judge accuracy, attributes, sketch-FID/KID),
and its model card."""

from minisd.evaluate.model_card import write_model_card
from minisd.evaluate.run import Locations, score_pipeline

__all__ = ["Locations", "score_pipeline", "write_model_card"]
