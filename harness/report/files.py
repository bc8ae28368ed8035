"""The files a report reads or embeds (the gallery, its pictures, the logs of the curves): only the run folder's own.

A run folder may come from someone else, and a report is shared: a name in the record or in gallery.json that is
absolute, climbs out with `..`, or is a link leading out of the run folder is skipped, and so is anything that is not
a regular file (a FIFO, a device). A picture must be an image whose header declares at most MAX_PIXELS pixels (checked
before decoding) and that decodes whole. A skipped file is a visible note on the page, never a traceback, and its
bytes never reach the HTML.
"""
from __future__ import annotations

import warnings
from pathlib import Path, PurePath

from harness.console import printable

MAX_PIXELS = 40_000_000       # 40 megapixels: a 7000 × 5700 photo; ADE20K's largest images are far below it


class Skipped(Exception):
    """A file the report leaves out; str() is the note shown on the page."""


def _name(name) -> str:
    """NAME as shown in a note: its last 80 characters (the file's own name is at the end), control characters
    shown as escapes."""
    text = repr(name) if not isinstance(name, str) else name
    return printable(text if len(text) <= 80 else "…" + text[-79:])


def run_file(run_dir: Path, name, what: str) -> Path:
    """RUN_DIR/NAME as a regular file inside RUN_DIR (links followed, and the target inside too); else Skipped."""
    if not isinstance(name, str) or not name.strip():
        raise Skipped(f"{what} {_name(name)} skipped: not a file name")
    if "\x00" in name:
        raise Skipped(f"{what} {_name(name)} skipped: not a file name")
    relative = PurePath(name)
    if relative.is_absolute():
        raise Skipped(f"{what} {_name(name)} skipped: an absolute path, not a file of the run folder")
    if ".." in relative.parts:
        raise Skipped(f"{what} {_name(name)} skipped: it leaves the run folder (..)")
    root = Path(run_dir).resolve()
    try:
        path = (root / relative).resolve()
    except (OSError, RuntimeError) as exc:        # a link loop
        raise Skipped(f"{what} {_name(name)} skipped: {exc.__class__.__name__}") from None
    if not path.is_relative_to(root):
        raise Skipped(f"{what} {_name(name)} skipped: a link out of the run folder")
    if not path.is_file():
        raise Skipped(f"{what} {_name(name)} skipped: not a regular file in the run folder")
    return path


def open_image(path: Path, what: str):
    """The image at PATH, decoded, if its header declares at most MAX_PIXELS pixels; else Skipped."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(path)
        except Image.DecompressionBombError:
            raise Skipped(f"{what} skipped: its header declares more than the {MAX_PIXELS // 1_000_000}-megapixel "
                          f"limit") from None
        except (OSError, ValueError, SyntaxError) as exc:
            raise Skipped(f"{what} skipped: not a decodable image ({printable(exc)})") from None
        if image.width * image.height > MAX_PIXELS:
            image.close()
            raise Skipped(f"{what} skipped: its header declares {image.width} × {image.height} pixels, more than the "
                          f"{MAX_PIXELS // 1_000_000}-megapixel limit")
        try:
            image.load()
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            image.close()
            raise Skipped(f"{what} skipped: not a decodable image ({printable(exc)})") from None
    return image
