"""Robust raster decoding: sniff, size-check before decoding, then one grayscale uint8 array.

The header is read before any pixels so a decompression bomb is rejected without allocating it,
and a truncated PNG/JPEG/GIF is caught here instead of silently decoding to grey padding.
"""

from __future__ import annotations

import struct

import cv2
import numpy as np

from minisd.ingest.gates import Reject

SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"BM", "bmp"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"P1", "pnm"), (b"P2", "pnm"), (b"P3", "pnm"), (b"P4", "pnm"), (b"P5", "pnm"), (b"P6", "pnm"),
    (b"\x00\x00\x00\x0cjP  ", "jp2"),
)  # fmt: skip


def sniff(data: bytes) -> str | None:
    """Format from magic bytes, never from the file name (renamed files are common)."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    for magic, fmt in SIGNATURES:
        if data.startswith(magic):
            return fmt
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", data[i + 5 : i + 9])
            return w, h
        i += 2 + length
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        w = int.from_bytes(data[24:27], "little") + 1
        h = int.from_bytes(data[27:30], "little") + 1
        return w, h
    if chunk == b"VP8L" and len(data) >= 25:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 " and len(data) >= 30:
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    return None


def header_size(data: bytes, fmt: str) -> tuple[int, int] | None:
    """(width, height) from the header alone; None when this format's header is not parsed here."""
    try:
        if fmt == "png":
            return struct.unpack(">II", data[16:24])
        if fmt == "gif":
            return struct.unpack("<HH", data[6:10])
        if fmt == "bmp":
            w, h = struct.unpack("<ii", data[18:26])
            return abs(w), abs(h)
        if fmt == "jpeg":
            return _jpeg_size(data)
        if fmt == "webp":
            return _webp_size(data)
    except struct.error:
        raise Reject("truncated", "header cut short") from None
    return None


def is_truncated(data: bytes, fmt: str) -> bool:
    """No end marker after the last image data. Trailers after it are fine (phones append them).

    In JPEG scan data 0xFF is always stuffed, so an FFD9 after the last SOS (FFDA) is the real end.
    """
    if fmt == "png":
        return data.rfind(b"IEND") < data.rfind(b"IDAT")
    if fmt == "jpeg":
        return data.rfind(b"\xff\xd9") < data.rfind(b"\xff\xda")
    if fmt == "gif":
        return not data.rstrip(b"\x00").endswith(b"\x3b")
    return False


def _png_has_alpha(data: bytes) -> bool:
    """Colour types 4/6 carry alpha; a tRNS chunk (before the pixel data) makes a colour transparent."""
    color_type = data[25] if len(data) > 25 else 6
    return color_type in (4, 6) or b"tRNS" in data[: data.find(b"IDAT")]


def to_gray(image: np.ndarray) -> np.ndarray:
    """Any depth / channel layout -> uint8 gray; alpha is composited onto white paper."""
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = image.astype(np.float32)
        lo, hi = float(image.min()), float(image.max())
        image = ((image - lo) * (255.0 / max(hi - lo, 1e-6))).astype(np.uint8)
    if image.ndim == 2:
        return image
    channels = image.shape[2]
    if channels == 1:
        return image[:, :, 0]
    if channels == 2:  # gray + alpha
        gray, alpha = image[:, :, 0], image[:, :, 1]
    elif channels == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    else:
        gray, alpha = cv2.cvtColor(image[:, :, :3], cv2.COLOR_BGR2GRAY), image[:, :, 3]
    a = alpha.astype(np.float32) * (1.0 / 255.0)
    return (gray.astype(np.float32) * a + 255.0 * (1.0 - a) + 0.5).astype(np.uint8)


def decode(data: bytes, min_side: int, max_pixels: int, work_size: int) -> np.ndarray:
    """Bytes -> uint8 gray. Raises Reject(not_an_image | truncated | too_small | too_large | undecodable).

    Large JPEGs decode at 1/2, 1/4 or 1/8 scale straight from the DCT (libjpeg) when the result
    still covers `work_size`; this is both faster and lighter than decoding then shrinking.
    """
    if not data:
        raise Reject("not_an_image", "empty file")
    fmt = sniff(data)
    if fmt is None:
        raise Reject("not_an_image", "unknown file signature")
    size = header_size(data, fmt)
    if size is not None:
        _check_size(*size, min_side, max_pixels)
    if is_truncated(data, fmt):
        raise Reject("truncated", f"{fmt} without its end marker")
    buf = np.frombuffer(data, np.uint8)
    if fmt == "jpeg":
        flags = cv2.IMREAD_GRAYSCALE  # applies EXIF orientation
        if size is not None:
            for factor, reduced in ((8, cv2.IMREAD_REDUCED_GRAYSCALE_8), (4, cv2.IMREAD_REDUCED_GRAYSCALE_4),
                                    (2, cv2.IMREAD_REDUCED_GRAYSCALE_2)):  # fmt: skip
                if min(size) // factor >= work_size:
                    flags = reduced
                    break
        image = cv2.imdecode(buf, flags)
    elif fmt == "png" and not _png_has_alpha(data):
        image = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE | cv2.IMREAD_ANYDEPTH)  # libpng converts: faster
    else:
        image = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)  # keeps alpha and 16-bit
    if image is None or image.size == 0:
        raise Reject("undecodable", f"OpenCV could not decode this {fmt}")
    if size is None:
        _check_size(image.shape[1], image.shape[0], min_side, max_pixels)
    return to_gray(image)


def _check_size(w: int, h: int, min_side: int, max_pixels: int) -> None:
    if w * h > max_pixels:
        raise Reject("too_large", f"{w}x{h} > {max_pixels} pixels")
    if min(w, h) < min_side:
        raise Reject("too_small", f"{w}x{h}, min side {min_side}")
