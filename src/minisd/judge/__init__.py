"""The judge: a small sketch classifier used to score generated samples (class accuracy, sketch-FID/KID).

Import from the submodules: `judge.model` (what evaluate loads) stays apart from `judge.train`
(what train_judge runs, on `training/`), so an edit to the trainers never reruns evaluate.
"""
