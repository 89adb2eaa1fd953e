"""benchmarks/unet_step.py's gradient check: a compiled step that computes the eager step's gradients
scores about 0, one whose gradients vanish scores 1 (what CPU bf16 compile did, README performance)."""

import sys
from pathlib import Path

import torch

from _unet import synthetic_split, tiny_params

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from unet_step import TrainStep, batch_inputs, compiled_gradient_error  # noqa: E402


def _step_and_inputs():
    params = tiny_params()
    data = synthetic_split(16)
    step = TrainStep(params, data.embeddings.shape[-1], 4, torch.device("cpu"), "fp32")
    return step, batch_inputs(data, 8, torch.Generator().manual_seed(0), 1000, torch.device("cpu"))


def test_a_faithful_compiled_step_scores_zero():
    step, inputs = _step_and_inputs()
    torch._dynamo.reset()
    step.model = torch.compile(step.unet, backend="aot_eager")  # graph capture + AOT autograd, no C++ build
    assert compiled_gradient_error(step, inputs) < 1e-5
    torch._dynamo.reset()


def test_vanishing_gradients_score_one():
    step, inputs = _step_and_inputs()

    class Detached(torch.nn.Module):  # the output of a graph whose backward never reaches the weights
        def forward(self, *args):
            out = step.unet(*args)
            out.sample = out.sample.detach().requires_grad_()
            return out

    step.model = Detached()
    assert abs(compiled_gradient_error(step, inputs) - 1.0) < 1e-6
