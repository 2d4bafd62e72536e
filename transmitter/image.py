"""The image to send: loaded once, hashed once, before any timing starts."""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from imgbench.wire import digest

SAMPLE_NAME = "sample.png"


@dataclass(frozen=True)
class Image:
    name: str
    data: bytes
    sha256: bytes
    content_type: str

    @property
    def size(self) -> int:
        return len(self.data)

    def describe(self) -> dict[str, object]:
        return {
            "name": self.name,
            "bytes": self.size,
            "sha256": self.sha256.hex(),
            "content_type": self.content_type,
        }


def load_image(path: Path | None) -> Image:
    """Read ``path``, or the bundled sample when ``None``."""
    if path is None:
        data = resources.files("imgbench").joinpath("assets", SAMPLE_NAME).read_bytes()
        return Image(f"bundled {SAMPLE_NAME}", data, digest(data), "image/png")
    data = path.read_bytes()
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return Image(str(path), data, digest(data), content_type)
