"""The evaluate stage: the exported pipeline, scored offline (judge accuracy, attributes, sketch-FID/KID)."""

from minisd.evaluate.run import Locations, evaluate

__all__ = ["Locations", "evaluate"]
