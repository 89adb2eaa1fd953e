"""What every trainer shares: the fit() outline with its log, budget and loss guard (loop.py),
checkpoints (checkpoints.py), the accelerator and precision (precision.py), LR schedule and EMA
(optim.py), seeded randomness and data order (rng.py).

Import from the submodules (`from minisd.training.precision import make_accelerator`): nothing is
re-exported here, so a stage that needs one piece (the caches need only precision) depends on
that piece alone, and dvc.yaml can say so.
"""
