"""Write decoded frames as an animation (GIF, MP4, WebP, APNG) or a PNG strip/grid.

:func:`prepare_frames` turns float or ``uint8`` frames into exactly the ``uint8`` frames
that get written (after ping-pong, nearest-neighbour enlargement and captions), so a
preview shows what the file will hold; :func:`export_animation` writes them, choosing
the format from the file extension. Files are written to a temporary file in the
target folder and moved into place, so a reader never sees half a file.

Nothing here imports Qt.
"""

from __future__ import annotations

import math
import os
import uuid
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from vae_core.errors import ConfigError, OutputError
from vae_core.ranges import real, whole
from vae_core.resources import check_memory, output_error, remove_stale_temporaries

__all__ = [
    "SUPPORTED_EXTENSIONS",
    "to_uint8_frames",
    "prepare_frames",
    "compose_grid",
    "export_animation",
]

ProgressFn = Callable[[int, int], None]

#: Documented limits of the export options. ``MAX_FRAMES`` keeps a file within what the
#: writers handle (PIL's GIF writer overflows a 32-bit size past about 2.6 GB);
#: ``MAX_SIDE`` is each format's largest frame side (GIF stores 16-bit sizes, WebP 14-bit).
FPS_MAX = 240.0
UPSCALE_MAX = 256
MAX_FRAMES = 10_000
MAX_SIDE = {".gif": 65_535, ".webp": 16_383, ".mp4": 16_384, ".apng": 65_535, ".png": 65_535}

#: Extensions :func:`export_animation` understands, and what each one writes.
SUPPORTED_EXTENSIONS: dict[str, str] = {
    ".gif": "animated GIF",
    ".mp4": "H.264 video",
    ".webp": "animated WebP (lossless)",
    ".apng": "animated PNG",
    ".png": "one still image: all frames in a strip or grid",
}


# ---------------------------------------------------------------------------------------
# Frame normalisation
# ---------------------------------------------------------------------------------------
def _channels_last(arr: np.ndarray) -> np.ndarray:
    channel_sizes = (1, 3, 4)
    if arr.ndim == 3:
        return arr[..., None]
    if arr.ndim != 4:
        raise ConfigError(f"Frames must be T×H×W, T×H×W×C or T×C×H×W, got shape {arr.shape}.")
    if arr.shape[1] in channel_sizes:
        # T×C×H×W is vae_core's own layout, so it wins when both readings are possible.
        return np.moveaxis(arr, 1, -1)
    if arr.shape[-1] in channel_sizes:
        return arr
    raise ConfigError(f"Cannot tell the channel axis of frames with shape {arr.shape}: use 1, 3 or 4 channels.")


def to_uint8_frames(frames) -> np.ndarray:
    """Frames as ``uint8``: ``T×H×W`` for grayscale, ``T×H×W×3`` for colour.

    Accepts ``T×H×W``, ``T×H×W×C`` or ``T×C×H×W`` (C = 1, 3 or 4) arrays, or a list of
    frames; a single ``H×W`` array is one frame. Floats are read as [0, 1] (clipped),
    ``uint8`` as is. Alpha is composited over black.
    """
    arr = np.asarray(frames)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.shape[0] == 0:
        raise ConfigError("There are no frames to export.")
    arr = _channels_last(arr)
    if arr.dtype == np.uint8:
        data = arr.astype(np.float32) / 255.0 if arr.shape[-1] == 4 else arr
    elif arr.dtype == bool:
        data = arr.astype(np.float32)
    elif np.issubdtype(arr.dtype, np.number):
        data = arr.astype(np.float32)
    else:
        raise ConfigError(f"Frames must be numeric, got {arr.dtype}.")
    if data.shape[-1] == 4:
        data = data[..., :3] * data[..., 3:]
    if data.dtype != np.uint8:
        data = (np.clip(np.nan_to_num(data), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return data[..., 0] if data.shape[-1] == 1 else np.ascontiguousarray(data)


# ---------------------------------------------------------------------------------------
# Frame preparation
# ---------------------------------------------------------------------------------------
def _pingpong(frames: np.ndarray, captions: list[str] | None):
    if len(frames) < 3:
        return frames, captions
    order = np.r_[np.arange(len(frames)), np.arange(len(frames) - 2, 0, -1)]
    return frames[order], (None if captions is None else [captions[i] for i in order])


def _resize_nearest(frames: np.ndarray, width: int, height: int) -> np.ndarray:
    h, w = frames.shape[1:3]
    rows = np.minimum(((np.arange(height) + 0.5) * h / height).astype(np.int64), h - 1)
    cols = np.minimum(((np.arange(width) + 0.5) * w / width).astype(np.int64), w - 1)
    return np.ascontiguousarray(frames[:, rows][:, :, cols])


def _load_font(width: int):
    from PIL import ImageFont

    size = max(10, min(24, width // 9))
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ValueError, OSError, ImportError):  # no FreeType: the small bitmap font
        return ImageFont.load_default()


def _fit_text(draw, text: str, font, width: int) -> str:
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "...", font=font) > width:
        text = text[:-1]
    return text + "..." if text else ""


def _caption_strips(captions: Sequence[str], width: int, mode: str) -> np.ndarray:
    """One white-on-black text strip per caption (``T×h×W`` or ``T×h×W×3``)."""
    from PIL import Image, ImageDraw

    font = _load_font(width)
    probe = ImageDraw.Draw(Image.new(mode, (1, 1)))
    top, bottom = probe.textbbox((0, 0), "Ag|", font=font)[1::2]
    pad = max(2, (bottom - top) // 4)
    height = (bottom - top) + 2 * pad
    cache: dict[str, np.ndarray] = {}
    strips = []
    for text in captions:
        if text not in cache:
            img = Image.new(mode, (width, height), 0)
            draw = ImageDraw.Draw(img)
            shown = _fit_text(draw, str(text), font, width - 2)
            x = (width - draw.textlength(shown, font=font)) / 2
            draw.text((x, pad - top), shown, fill=255 if mode == "L" else (255, 255, 255), font=font)
            cache[text] = np.asarray(img)
        strips.append(cache[text])
    return np.stack(strips)


def prepare_frames(frames, *, pingpong: bool = False, upscale: int | None = None,
                   size: tuple[int, int] | None = None, captions: Sequence[str] | str | None = None) -> np.ndarray:
    """The exact ``uint8`` frames :func:`export_animation` writes.

    Parameters
    ----------
    frames
        See :func:`to_uint8_frames`.
    pingpong
        Play forwards then backwards: ``T`` frames become ``2T - 2`` (the end frames are
        not repeated, so a looping animation does not stutter).
    upscale
        Integer nearest-neighbour enlargement factor.
    size
        ``(width, height)`` to resize to, nearest neighbour (instead of ``upscale``).
    captions
        One caption per input frame (or one string for all), drawn with PIL's default
        font, centred on a black strip below each frame; they follow ``pingpong``.

    Returns
    -------
    np.ndarray
        ``T'×H'×W`` (grayscale) or ``T'×H'×W×3`` ``uint8``.
    """
    out = to_uint8_frames(frames)
    if isinstance(captions, str):
        captions = [captions] * len(out)
    if captions is not None:
        captions = [str(c) for c in captions]
        if len(captions) != len(out):
            raise ConfigError(f"Got {len(captions)} captions for {len(out)} frames.")
    if pingpong:
        out, captions = _pingpong(out, captions)
    if upscale is not None and size is not None:
        raise ConfigError("Give either upscale or size, not both.")
    if upscale is not None:
        factor = whole("upscale", upscale, 1, UPSCALE_MAX)
        check_memory(float(out.nbytes) * factor * factor * 2, f"Enlarging {len(out):,} frames {factor} times",
                     "use a smaller upscale or fewer frames")
        if factor > 1:
            out = np.ascontiguousarray(out.repeat(factor, axis=1).repeat(factor, axis=2))
    elif size is not None:
        if not (isinstance(size, (tuple, list)) and len(size) == 2):
            raise ConfigError(f"size must be (width, height), got {size!r}.")
        width, height = whole("width", size[0], 1, max(MAX_SIDE.values())), whole("height", size[1], 1, max(MAX_SIDE.values()))
        per_pixel = out.nbytes / max(1, out.shape[1] * out.shape[2])
        check_memory(per_pixel * width * height * 2, f"Resizing {len(out):,} frames to {width}×{height}",
                     "use a smaller size or fewer frames")
        out = _resize_nearest(out, width, height)
    if captions is not None:
        strips = _caption_strips(captions, out.shape[2], "L" if out.ndim == 3 else "RGB")
        out = np.concatenate([out, strips], axis=1)
    return out


def compose_grid(frames: np.ndarray, columns: int | None = None, *, gap: int = 0, background: int = 0) -> np.ndarray:
    """Tile ``uint8`` frames into one image, row by row (``columns=None``: one row)."""
    frames = np.asarray(frames)
    n, h, w = frames.shape[:3]
    cols = n if columns is None else max(1, min(int(columns), n))
    rows = math.ceil(n / cols)
    shape = (rows * h + (rows - 1) * gap, cols * w + (cols - 1) * gap) + frames.shape[3:]
    grid = np.full(shape, background, dtype=frames.dtype)
    for i, frame in enumerate(frames):
        r, c = divmod(i, cols)
        grid[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = frame
    return grid


# ---------------------------------------------------------------------------------------
# Writers
# ---------------------------------------------------------------------------------------
def _pil_images(frames: np.ndarray, mode: str | None, progress, total):
    from PIL import Image

    images = []
    for i, frame in enumerate(frames):
        img = Image.fromarray(frame)
        images.append(img.convert(mode) if mode and img.mode != mode else img)
        if progress is not None:
            progress(i + 1, total + 1)  # the last unit is the encoder
    return images


def _check_format_limits(frames: np.ndarray, ext: str, columns: int | None, gap: int) -> None:
    n, h, w = frames.shape[:3]
    if ext == ".png":
        cols = n if columns is None else min(columns, n)
        rows = math.ceil(n / cols)
        h, w = rows * h + (rows - 1) * gap, cols * w + (cols - 1) * gap
        check_memory(float(h) * w * (frames.shape[3] if frames.ndim == 4 else 1) * 2,
                     f"A {w}×{h} pixel image", "use fewer frames, more columns or a smaller upscale")
    elif n > MAX_FRAMES:
        raise ConfigError(f"{n:,} frames are too many for one animation: at most {MAX_FRAMES:,}.")
    side = MAX_SIDE[ext]
    if h > side or w > side:
        raise ConfigError(f"A {w}×{h} pixel {ext[1:].upper()} is too large: this format allows at most "
                          f"{side:,} pixels a side; use a smaller upscale or size.")


def _write_gif(frames, path, fps, loop, progress):
    images = _pil_images(frames, None, progress, len(frames))
    extra = {"loop": 0} if loop else {}  # no NETSCAPE block = play once
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:],
                   duration=round(1000.0 / fps), optimize=False, **extra)


def _write_webp(frames, path, fps, loop, progress):
    images = _pil_images(frames, "RGB", progress, len(frames))
    images[0].save(path, format="WEBP", save_all=True, append_images=images[1:],
                   duration=round(1000.0 / fps), loop=0 if loop else 1, lossless=True, quality=80, method=4)


def _write_apng(frames, path, fps, loop, progress):
    images = _pil_images(frames, None, progress, len(frames))
    images[0].save(path, format="PNG", save_all=True, append_images=images[1:],
                   duration=round(1000.0 / fps), loop=0 if loop else 1)


def _write_mp4(frames, path, fps, loop, progress):
    import imageio_ffmpeg

    # yuv420p (what players accept) needs even sides: pad by repeating the last row/column.
    pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
    if pad_h or pad_w:
        widths = ((0, 0), (0, pad_h), (0, pad_w)) + (((0, 0),) if frames.ndim == 4 else ())
        frames = np.pad(frames, widths, mode="edge")
    height, width = frames.shape[1:3]
    writer = imageio_ffmpeg.write_frames(
        str(path), (width, height), pix_fmt_in="gray" if frames.ndim == 3 else "rgb24",
        pix_fmt_out="yuv420p", fps=float(fps), codec="libx264", quality=None, macro_block_size=1,
        ffmpeg_log_level="error", output_params=["-crf", "18", "-preset", "medium", "-movflags", "+faststart"])
    writer.send(None)
    try:
        for i, frame in enumerate(frames):
            writer.send(np.ascontiguousarray(frame))
            if progress is not None:
                progress(i + 1, len(frames) + 1)
    finally:
        writer.close()


def _write_png(frames, path, columns, gap):
    from PIL import Image

    Image.fromarray(compose_grid(frames, columns, gap=gap)).save(path, format="PNG")


_ANIMATED = {".gif": _write_gif, ".mp4": _write_mp4, ".webp": _write_webp, ".apng": _write_apng}


def export_animation(frames, path, *, fps: float = 12, loop: bool = True, pingpong: bool = False,
                     upscale: int | None = None, size: tuple[int, int] | None = None,
                     captions: Sequence[str] | str | None = None, grid_columns: int | None = None,
                     gap: int = 0, progress: ProgressFn | None = None) -> Path:
    """Write frames to ``path``; the extension picks the format.

    Parameters
    ----------
    frames
        ``T×H×W``, ``T×H×W×C`` or ``T×C×H×W``, float in [0, 1] or ``uint8``.
    path
        ``.gif`` (palette; grayscale is lossless; loops forever when ``loop``),
        ``.mp4`` (H.264, yuv420p; an odd side is padded by one pixel), ``.webp``
        (lossless animated), ``.apng`` (animated PNG) or ``.png`` (all frames in one image:
        a row, or a grid of ``grid_columns`` columns). GIF/WebP/APNG merge identical
        consecutive frames into one longer frame (the playback is the same).
    fps
        Frames per second (GIF stores delays in 1/100 s, so 12 fps plays at 12.5).
    loop
        Repeat forever (GIF, WebP, APNG); otherwise play once.
    pingpong, upscale, size, captions
        See :func:`prepare_frames`.
    grid_columns, gap
        Layout of a ``.png`` strip/grid (``gap`` pixels of black between tiles).
    progress
        ``progress(done, total)`` while frames are encoded.

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    ConfigError
        For an unsupported extension (the message lists the supported ones), bad frames,
        or an option outside its range: ``fps`` in (0, 240], ``upscale`` 1 to 256, at
        most 10,000 frames, frame sides within the format's limit (:data:`MAX_SIDE`).
    ResourceError
        When the enlarged frames would not fit in memory.
    OutputError
        When the file cannot be written (read-only folder, disk full); a previous file
        at ``path`` is left intact.
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in SUPPORTED_EXTENSIONS:
        supported = ", ".join(SUPPORTED_EXTENSIONS)
        raise ConfigError(f"Cannot export to '{ext or path.name}': use one of {supported}.")
    fps = real("fps", fps, 0.0, FPS_MAX, low_open=True)
    if grid_columns is not None:
        grid_columns = whole("grid_columns", grid_columns, 1)
    gap = whole("gap", gap, 0, 1000)
    prepared = prepare_frames(frames, pingpong=pingpong, upscale=upscale, size=size, captions=captions)
    _check_format_limits(prepared, ext, grid_columns, gap)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise output_error(path, exc) from None
    # Killed exports leave their temporary files: the next export to this path removes them.
    remove_stale_temporaries(path.parent, path.stem, (f".tmp{ext}",))
    # A unique sibling name (not mkstemp, whose 0600 mode would stick to the result).
    tmp = path.with_name(f".{path.stem}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp{ext}")
    try:
        if ext == ".png":
            _write_png(prepared, tmp, grid_columns, gap)
        else:
            _ANIMATED[ext](prepared, tmp, fps, loop, progress)
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, OutputError):
            raise output_error(path, exc) from None
        raise
    if progress is not None:
        progress(1, 1) if ext == ".png" else progress(len(prepared) + 1, len(prepared) + 1)
    return path
