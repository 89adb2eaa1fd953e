"""Every rejection reason, each from an input the test makes; and the line-art normalization."""

from __future__ import annotations

import json
import struct
import zlib

import cv2
import numpy as np
import pytest
from _drawings import doodle
from _ingest import ingest, quickdraw_line, reasons, write_png

from minisd.attributes import INK_THRESHOLD
from minisd.params.ingest import GateParams, NormalizeParams
from minisd.ingest.decode import decode, header_size
from minisd.ingest.gates import REASONS, Deduper, Reject, phash
from minisd.ingest.items import Item
from minisd.ingest.normalize import normalize, stroke_width
from minisd.ingest.process import WorkerConfig, process


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims a huge size: must be rejected before anything is decoded."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


@pytest.fixture
def folder(tmp_path):
    """One image per raster reason, plus good ones, all captioned by sidecar .txt files."""
    root = tmp_path / "images"
    good = doodle(1)

    def add(name: str, data: bytes | np.ndarray, caption: bytes | None = b"a sketch"):
        path = root / name
        if isinstance(data, np.ndarray):
            write_png(path, data)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        if caption is not None:
            path.with_suffix(".txt").write_bytes(caption)

    png = cv2.imencode(".png", doodle(2))[1].tobytes()
    add("good.png", good)
    add("good_copy.png", good.copy())  # same pixels, other file
    noisy = np.clip(good.astype(int) + np.random.default_rng(0).normal(0, 4, good.shape), 0, 255).astype(np.uint8)
    add("good_near.jpg", cv2.imencode(".jpg", noisy, [cv2.IMWRITE_JPEG_QUALITY, 70])[1].tobytes())
    add("notes.png", b"this is text, not an image")
    add("empty.png", b"")
    add("cut.png", png[: len(png) // 2])
    jpg = cv2.imencode(".jpg", doodle(6))[1].tobytes()
    add("cut.jpg", jpg[: len(jpg) - 200])
    add("trailer.jpg", jpg + b"SEFT" * 2000)  # phones append data after the end marker: still fine
    corrupt = bytearray(png)
    corrupt[60:100] = bytes(40)
    add("corrupt.png", bytes(corrupt))
    add("tiny.png", np.zeros((8, 8), np.uint8))
    add("bomb.png", png_header_only(30000, 30000))
    add("blank.png", np.full((64, 64), 255, np.uint8))
    ink = np.full((64, 64), 255, np.uint8)
    ink[2:62, 2:62] = 0
    add("solid.png", ink)
    add("no_caption.png", doodle(3), caption=None)
    add("empty_caption.png", doodle(4), caption=b"  \n \n")
    add("latin1_caption.png", doodle(5), caption="caf\xe9 cr\xe8me".encode("latin-1"))
    add("readme.md", b"# not an image", caption=None)
    return root


def test_every_raster_reason_is_named(tmp_path, folder):
    result = ingest(tmp_path, [{"kind": "imagefolder", "path": str(folder)}])
    got = reasons(result)
    assert got == {
        "good_copy.png": "duplicate",
        "good_near.jpg": "near_duplicate",
        "notes.png": "not_an_image",
        "empty.png": "not_an_image",
        "cut.png": "truncated",
        "cut.jpg": "truncated",
        "corrupt.png": "undecodable",
        "tiny.png": "too_small",
        "bomb.png": "too_large",
        "blank.png": "blank",
        "solid.png": "too_much_ink",
        "no_caption.png": "missing_caption",
        "empty_caption.png": "empty_caption",
        "latin1_caption.png": "caption_not_utf8",
        "readme.md": "missing_caption",
    }
    assert sorted(s.origin.rsplit("/", 1)[1] for s in result["samples"].values()) == ["good.png", "trailer.jpg"]
    counts = result["report"]["sources"]["images"]
    assert counts["seen"] == 17 and counts["accepted"] + counts["rejected"] == counts["seen"]
    assert sum(counts["reasons"].values()) == counts["rejected"]


def test_not_an_image_with_a_caption(tmp_path):
    root = tmp_path / "f"
    root.mkdir()
    (root / "data.bin").write_bytes(b"\x00\x01\x02" * 100)
    (root / "data.txt").write_text("a caption")
    write_png(root / "ok.png", doodle(0))
    (root / "ok.txt").write_text("fine")
    assert reasons(ingest(tmp_path, [{"kind": "imagefolder", "path": str(root)}])) == {"data.bin": "not_an_image"}


def test_bomb_is_rejected_before_decoding():
    data = png_header_only(30000, 30000)
    assert header_size(data, "png") == (30000, 30000)
    with pytest.raises(Reject) as caught:
        decode(data, min_side=16, max_pixels=50_000_000, work_size=512)
    assert caught.value.reason == "too_large"


def test_missing_file_named_in_metadata(tmp_path):
    root = tmp_path / "hf"
    write_png(root / "a.png", doodle(0))
    write_png(root / "b.png", doodle(1))
    rows = [{"file_name": "a.png", "text": "a doodle"}, {"file_name": "gone.png", "text": "x"}, {"file_name": "b.png"}]
    (root / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = ingest(tmp_path, [{"kind": "imagefolder", "path": str(root)}])
    assert reasons(result) == {"gone.png": "missing_file", "b.png": "missing_caption"}
    assert result["report"]["sources"]["hf"] == {
        "seen": 3, "accepted": 1, "rejected": 2, "reasons": {"missing_caption": 1, "missing_file": 1}
    }


def test_unreadable_file_is_rejected_not_raised():
    cfg = WorkerConfig(64, NormalizeParams(), GateParams(), {"x": None})
    result = process("x", Item(key="x-a", origin="/nope/a.png", kind="raster", payload="/nope/a.png"), cfg)
    assert result.reason == "unreadable" and result.record is None


@pytest.mark.parametrize(
    "line, reason",
    [
        ("{not json", "bad_json"),
        ("[1, 2]", "bad_json"),
        (quickdraw_line(drawing_=[]), "no_strokes"),
        (quickdraw_line(drawing_=[[[], []]]), "no_strokes"),
        (quickdraw_line(drawing_=[[[1, 2, 3], [1, 2]]]), "malformed_strokes"),
        (quickdraw_line(drawing_=[[[1, 2]]]), "malformed_strokes"),
        (quickdraw_line(drawing_=[[[0, 300], [0, 10]]]), "coords_out_of_range"),
        (quickdraw_line(drawing_=[[[0, -1], [0, 10]]]), "coords_out_of_range"),
        (quickdraw_line(drawing_=[[[0, 1e9], [0, 10], [0, 1]]]), "coords_out_of_range"),
        (quickdraw_line(drawing_=[[[0, "a"], [0, 10]]]), "coords_out_of_range"),
        (quickdraw_line(recognized=False), "not_recognized"),
        (quickdraw_line(word=""), "missing_caption"),
    ],
)
def test_every_quickdraw_reason_is_named(tmp_path, line, reason):
    path = tmp_path / "qd.ndjson"
    path.write_text(quickdraw_line(key_id="ok") + "\n" + line + "\n")
    result = ingest(tmp_path, [{"kind": "quickdraw", "path": str(path)}])
    assert [r["reason"] for r in result["rejects"]] == [reason]
    assert result["rejects"][0]["origin"].endswith("qd.ndjson:2")
    assert len(result["samples"]) == 1


def test_class_cap_counts_every_dropped_drawing(tmp_path):
    path = tmp_path / "cat.ndjson"
    lines = [quickdraw_line(key_id=str(i), drawing_=[[[0, 10 * i + 5, 200], [0, 250 - 9 * i, 40]]]) for i in range(5)]
    path.write_text("\n".join(lines))
    result = ingest(tmp_path, [{"kind": "quickdraw", "path": str(path), "max_per_class": 2}])
    assert len(result["samples"]) == 2
    assert [r["reason"] for r in result["rejects"]] == ["class_cap"] * 3
    assert result["report"]["sources"]["cat"]["seen"] == 5


def test_reasons_are_documented():
    for reason in ("duplicate", "near_duplicate", "too_large", "class_cap"):
        assert reason in REASONS
    with pytest.raises(AssertionError):
        Reject("no_such_reason")


def test_deduper_finds_near_and_ignores_far():
    a, b = doodle(0, 128), doodle(1, 128)
    near = a.copy()
    near[60:62, 60:62] = 0
    d = Deduper(10)
    assert d.screen([b"a"], [phash(a)]) == [None]
    verdicts = d.screen([b"b", b"n", b"a"], [phash(b), phash(near), phash(b)])
    assert verdicts[0] is None  # a different drawing passes
    assert verdicts[1].reason == "near_duplicate" and verdicts[1].detail.startswith("phash distance ")
    assert verdicts[2].reason == "duplicate"  # same digest as "a", whatever its hash
    assert Deduper(-1).screen([b"x", b"y"], [phash(a), phash(a)]) == [None, None]  # -1: no near search
    assert Deduper(10).screen([], []) == []  # a chunk whose items all failed in the workers


def _reference_verdicts(items: list[tuple[bytes, int]], max_distance: int) -> list[str | None]:
    """One item at a time against every accepted one, by brute force: what batching must reproduce."""
    exact, accepted, verdicts = set(), [], []
    for digest, h in items:
        if digest in exact:
            verdicts.append("duplicate")
            continue
        distance = min(((h ^ other).bit_count() for other in accepted), default=None)
        if max_distance >= 0 and distance is not None and distance <= max_distance:
            verdicts.append(f"near_duplicate: phash distance {distance}")
            continue
        exact.add(digest)
        accepted.append(h)
        verdicts.append(None)
    return verdicts


@pytest.mark.parametrize("max_distance", [10, 0, 3, 40, -1])
def test_deduper_batches_give_the_one_at_a_time_verdicts(max_distance):
    """Random hashes with planted copies 0-14 bits away (some inside the same batch, some of a
    rejected item, some exact), screened in uneven batches: the verdicts and distances match a
    brute-force reference. 40 bits is past the banded search (one scan), 0 a single 256-bit band."""
    rng = np.random.default_rng(max_distance + 100)
    items: list[tuple[bytes, int]] = []
    for i in range(700):
        if items and rng.random() < 0.4:
            digest, h = items[int(rng.integers(len(items)))]
            for bit in rng.choice(256, int(rng.integers(0, 15)), replace=False):
                h ^= 1 << int(bit)
            if rng.random() > 0.2:
                digest = b"%d" % i
        else:
            digest, h = b"%d" % i, int.from_bytes(rng.bytes(32), "big")
        items.append((digest, h))
    dedup, verdicts, start = Deduper(max_distance), [], 0
    while start < len(items):
        batch = items[start : start + int(rng.integers(1, 80))]
        start += len(batch)
        found = dedup.screen([d for d, _ in batch], [h for _, h in batch])
        verdicts += [None if r is None else r.reason + (f": {r.detail}" if r.reason == "near_duplicate" else "")
                     for r in found]  # fmt: skip
    expected = _reference_verdicts(items, max_distance)
    assert verdicts == expected
    assert sum(v is not None and v.startswith("near") for v in expected) > (50 if max_distance >= 3 else -1)


# ----------------------------------------------------------------------------- normalization


def test_inverted_photo_with_uneven_light_becomes_clean_line_art():
    """White chalk on a dark board lit from one side: polarity, illumination and crop all fixed."""
    lines = doodle(7, 400)
    board = 255 - lines  # white strokes on black
    light = np.linspace(0.35, 1.0, 400)[None, :]
    photo = (board.astype(np.float32) * light * 0.8 + 25 * light).astype(np.uint8)
    rgb = cv2.cvtColor(photo, cv2.COLOR_GRAY2BGR)
    out = normalize(cv2.cvtColor(rgb, cv2.COLOR_BGR2GRAY), NormalizeParams(), 128)
    assert out.shape == (128, 128) and out.dtype == np.uint8
    ink = out < INK_THRESHOLD
    assert 0.01 < ink.mean() < 0.3  # lines, not a dark board
    assert np.median(out) == 255  # paper is white
    for border in (ink[:4], ink[-4:], ink[:, :4], ink[:, -4:]):  # cropped with a white margin
        assert not border.any()


def test_alpha_16bit_and_palette_decode_to_gray(tmp_path):
    lines = doodle(3, 80)
    rgba = np.zeros((80, 80, 4), np.uint8)
    rgba[..., 3] = 255 - lines  # black ink drawn on a transparent sheet
    gray16 = lines.astype(np.uint16) * 257
    for image in (rgba, gray16):
        data = cv2.imencode(".png", image)[1].tobytes()
        out = decode(data, 16, 10**8, 512)
        assert out.dtype == np.uint8 and out.ndim == 2
        assert np.abs(out.astype(int) - lines).mean() < 2  # alpha composited onto white, depth scaled


def test_exif_orientation_is_applied():
    pil = pytest.importorskip("PIL.Image")
    import io

    image = np.full((40, 80), 255, np.uint8)
    image[5:15, 5:30] = 0
    exif = pil.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when shown
    buf = io.BytesIO()
    pil.fromarray(image).save(buf, "JPEG", exif=exif.tobytes())
    assert decode(buf.getvalue(), 16, 10**8, 512).shape == (80, 40)


def test_binarize_and_stroke_width_params():
    image = np.full((128, 128), 255, np.uint8)
    cv2.rectangle(image, (20, 20), (100, 100), 90, 1)
    cv2.line(image, (20, 60), (100, 60), 90, 1)
    out = normalize(image, NormalizeParams(binarize=True, stroke_width=5.0, denoise=False), 128)
    assert set(np.unique(out)) <= {0, 255}
    assert 3.5 < stroke_width(out) < 7.0


@pytest.mark.parametrize("mode", ["CMYK", "P"])
def test_cmyk_jpeg_and_palette_png(mode):
    pil = pytest.importorskip("PIL.Image")
    import io

    lines = doodle(4, 80)
    image = pil.fromarray(lines).convert("RGB").convert(mode)
    buf = io.BytesIO()
    image.save(buf, "JPEG" if mode == "CMYK" else "PNG")
    out = decode(buf.getvalue(), 16, 10**8, 512)
    assert out.shape == (80, 80)
    assert np.abs(out.astype(int) - lines).mean() < 6
