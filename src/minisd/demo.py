"""`python -m minisd demo`: a local web page over the exported pipeline: type a prompt, see sketches.

Gradio, the diffusers ecosystem's convention, as the optional extra `pip install -e ".[demo]"`.
It runs offline: analytics off, no share link, no web fonts, nothing fetched. One request draws at
a time (the pipeline is not thread-safe); a bad request gets a message naming the field and stays
a message, so the page keeps serving.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from minisd import paths
from minisd.eval_prompts import load_prompts
from minisd.params.evaluate import GUIDANCE, GUIDANCE_RESCALE, GUIDANCE_RESCALE_RANGE
from minisd.stage import StageError

LIMITS = {"images": (1, 16), "steps": (1, 100), "guidance": (0.0, 20.0), "guidance_rescale": GUIDANCE_RESCALE_RANGE,
          "seed": (0, 2**31 - 1)}
FALLBACK_EXAMPLES = ("a small star in the top left", "a large circle in the center", "a medium house at the bottom")
EXAMPLES_SHOWN = 8


def example_prompts(prompts_file: Path = paths.TEXT_CACHE / "prompts.json") -> list[str]:
    """The eval prompts (what the model was scored on), one per class first; a fixed few without them."""
    if not prompts_file.is_file():
        return list(FALLBACK_EXAMPLES)
    prompts = load_prompts(prompts_file)
    first_of_class = {p["class"]: p["text"] for p in reversed(prompts) if p["class"]}
    texts = [first_of_class[c] for c in sorted(first_of_class)] + [p["text"] for p in prompts]
    return list(dict.fromkeys(texts))[:EXAMPLES_SHOWN]


def check_request(
    prompt: str, images, steps, guidance, guidance_rescale, seed
) -> tuple[str, int, int, float, float, int]:
    """The request's values, checked; a ValueError names the bad field and its allowed range."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError("type a prompt, e.g. 'a small star in the top left'")
    values = {"images": images, "steps": steps, "guidance": guidance, "guidance_rescale": guidance_rescale,
              "seed": seed}
    for name, value in values.items():
        low, high = LIMITS[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise ValueError(f"{name} must be a number from {low} to {high} (got {value!r})")
        if isinstance(low, int) and value != int(value):
            raise ValueError(f"{name} must be a whole number (got {value!r})")
    return prompt.strip(), int(images), int(steps), float(guidance), float(guidance_rescale), int(seed)


def draw(pipe, prompt: str, images, steps, guidance, guidance_rescale, seed):
    """(images as a list of uint8 arrays, one line saying what was drawn and how long it took)."""
    from minisd.pipeline import sample

    prompt, images, steps, guidance, rescale, seed = check_request(prompt, images, steps, guidance,
                                                                   guidance_rescale, seed)
    start = time.perf_counter()
    drawn = sample(pipe, [prompt] * images, [seed + i for i in range(images)], steps, guidance, batch_size=images,
                   desc=None, guidance_rescale=rescale)  # fmt: skip
    took = time.perf_counter() - start
    return list(drawn), (f"{images} image(s) of {prompt!r} in {took:.1f} s ({steps} steps, guidance {guidance:g} "
                         f"rescaled {rescale:g}, seeds {seed}..{seed + images - 1})")


def build_app(pipe, examples: list[str], title: str):
    import gradio as gr

    def on_draw(prompt, images, steps, guidance, guidance_rescale, seed):
        try:
            return draw(pipe, prompt, images, steps, guidance, guidance_rescale, seed)
        except ValueError as error:
            raise gr.Error(str(error)) from None

    with gr.Blocks(title=title, analytics_enabled=False) as app:
        gr.Markdown(f"# {title}\nText in, 128x128 sketches out. Image i uses seed + i.")
        with gr.Row():
            with gr.Column(scale=2):
                prompt = gr.Textbox(label="prompt", placeholder=FALLBACK_EXAMPLES[0], lines=1, elem_id="prompt")
                button = gr.Button("Draw", variant="primary", elem_id="draw")
                gr.Examples(examples, inputs=prompt, label="prompts the model was scored on")
            with gr.Column(scale=1):
                images = gr.Slider(*LIMITS["images"], value=4, step=1, label="images")
                steps = gr.Slider(*LIMITS["steps"], value=20, step=1, label="steps")
                guidance = gr.Slider(*LIMITS["guidance"], value=GUIDANCE, step=0.5, label="guidance")
                rescale = gr.Slider(*LIMITS["guidance_rescale"], value=GUIDANCE_RESCALE, step=0.1,
                                    label="guidance rescale")
                seed = gr.Number(value=0, precision=0, minimum=LIMITS["seed"][0], maximum=LIMITS["seed"][1], label="seed")
        gallery = gr.Gallery(label="sketches", columns=4, height="auto", elem_id="gallery")
        info = gr.Markdown(elem_id="info")
        gr.on([button.click, prompt.submit], on_draw, [prompt, images, steps, guidance, rescale, seed], [gallery, info],
              api_name="draw", concurrency_limit=1)  # fmt: skip
    return app


def launch(app, host: str, port: int | None, block: bool = True):
    """Serve `app`; block=False returns at once (tests, scripts) and `app.close()` stops it."""
    import gradio as gr

    local_fonts = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                                    font_mono=["ui-monospace", "monospace"])  # fmt: skip
    return app.launch(server_name=host, server_port=port, share=False, inbrowser=False, ssr_mode=False,
                      prevent_thread_lock=not block, quiet=not block, theme=local_fonts, enable_monitoring=False,
                      mcp_server=False, pwa=False)  # fmt: skip


def load_demo(pipeline_dir: Path, prompts_file: Path = paths.TEXT_CACHE / "prompts.json"):
    """The app over the exported folder; a missing or half-written folder is a StageError naming the fix."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise StageError('the demo needs Gradio: pip install -e ".[demo]"') from None
    from minisd.pipeline import load_pipeline

    pipe = load_pipeline(pipeline_dir)
    return build_app(pipe, example_prompts(prompts_file), f"Mini-SD: {pipeline_dir}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.ArgumentDefaultsHelpFormatter
    parser.description = __doc__.splitlines()[0]
    parser.add_argument("--pipeline", type=Path, default=paths.PIPELINE, help="exported pipeline folder")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: the whole network)")
    parser.add_argument("--port", type=int, default=7860, help="port to listen on")
    parser.set_defaults(run=run)


def run(args) -> int:
    try:
        app = load_demo(args.pipeline)
    except StageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"Mini-SD demo on http://{args.host}:{args.port} (Ctrl+C stops it)")
    launch(app, args.host, args.port)
    return 0
