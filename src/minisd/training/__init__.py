"""What every trainer shares: the fit() outline (loop.py), checkpoints, precision, schedules, RNG.

Import from the submodules (`from minisd.training.precision import make_accelerator`): nothing is
re-exported here, so a stage that needs one piece (the caches need only precision) depends on
that piece alone, and dvc.yaml can say so.
"""
