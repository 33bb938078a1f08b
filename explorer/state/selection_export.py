"""Export a selection of data points (no Qt): its images (a folder or a ZIP), CSV and ``.npz``.

Every writer goes through :func:`explorer.state.files.write_atomic`, so a failed export
leaves no half-written file behind and raises :class:`vae_core.errors.OutputError`
(an ``OSError``) with one sentence.
"""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import numpy as np

from explorer.state.files import write_atomic


def image_name(index: int, label: int | None, class_names=()) -> str:
    """The file name of data point ``index``'s image: ``00042_label-3.png`` or ``00042_sneaker.png``."""
    if label is None:
        return f"{index:05d}.png"
    name = class_names[label] if 0 <= label < len(class_names) else f"label-{label}"
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in str(name)) or f"label-{label}"
    return f"{index:05d}_{safe}.png"


def png_bytes(image: np.ndarray) -> bytes:
    """A ``C×H×W`` image in [0, 1] (or uint8) as PNG bytes (grey for one channel)."""
    from PIL import Image

    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        # Round half up, NaN black: the same pixels the window shows.
        arr = np.floor(np.clip(np.nan_to_num(arr, nan=0.0), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    hwc = arr[0] if arr.shape[0] == 1 else np.moveaxis(arr, 0, -1)
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(hwc)).save(buffer, format="PNG")
    return buffer.getvalue()


def export_images(path, images: np.ndarray, indices, labels=None, class_names=()) -> list[Path]:
    """Write the images of ``indices`` as PNG files into folder ``path``, or into a ZIP when it ends in ``.zip``.

    Returns the paths written (for a ZIP, the one archive).
    """
    path = Path(path)
    idx = np.asarray(indices, dtype=np.int64)
    names = [image_name(int(i), int(labels[i]) if labels is not None else None, class_names) for i in idx]
    if path.suffix.lower() == ".zip":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for i, name in zip(idx.tolist(), names):
                archive.writestr(name, png_bytes(images[i]))
        write_atomic(path, buffer.getvalue())
        return [path]
    written = []
    for i, name in zip(idx.tolist(), names):
        write_atomic(path / name, png_bytes(images[i]))
        written.append(path / name)
    return written


def export_csv(path, header, rows) -> Path:
    """Write a table (``header`` and ``rows`` as :meth:`MeasuresState.table` gives them) as CSV."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([f"{v:.9g}" if isinstance(v, float) else v for v in row])
    path = Path(path)
    write_atomic(path, buffer.getvalue().encode("utf-8"))
    return path


def export_npz(path, indices, images: np.ndarray, labels=None, codes=None, columns: dict | None = None) -> Path:
    """Write ``indices``, their ``images``, ``labels``, ``codes`` and every column of ``columns`` to one ``.npz``."""
    idx = np.asarray(indices, dtype=np.int64)
    arrays = {"indices": idx, "images": np.asarray(images)[idx]}
    if labels is not None:
        arrays["labels"] = np.asarray(labels)[idx]
    if codes is not None:
        arrays["codes"] = np.asarray(codes)[idx]
    for name, values in (columns or {}).items():
        arrays[name] = np.asarray(values)[idx]
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    path = Path(path)
    write_atomic(path, buffer.getvalue())
    return path
