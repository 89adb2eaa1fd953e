"""train_clip: a small CLIP trained on the pipeline's own (sketch, caption) pairs.

Its text tower is the frozen text encoder of the rest of the pipeline (as SD freezes OpenAI's
CLIP); the whole model scores generated samples (CLIP score, prompt retrieval) offline.
"""
