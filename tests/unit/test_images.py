"""imgbench.images: the bundled sample and the sweep's noise PNGs."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from imgbench import images

ROOT = Path(__file__).resolve().parents[2]


def _png_pixels(png: bytes) -> tuple[tuple[int, ...], bytes]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, header, idat = 8, (), b""
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, body = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", png[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body)
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    return header, zlib.decompress(idat)


def test_bundled_sample_is_what_the_generator_makes() -> None:
    """Compares decoded pixels, since deflate output may differ between zlib builds."""
    committed = (ROOT / "imgbench" / "assets" / "sample.png").read_bytes()
    assert 400_000 < len(committed) < 700_000  # about the predecessor's 533 KB
    assert _png_pixels(committed) == _png_pixels(images.landscape())


def test_sample_is_a_valid_png_image() -> None:
    from PIL import Image

    with Image.open(ROOT / "imgbench" / "assets" / "sample.png") as img:
        img.load()
        assert img.size == (images.WIDTH, images.HEIGHT)
        assert img.mode == "RGB"


def test_sweep_images_are_valid_pngs_of_exactly_the_requested_size() -> None:
    import io

    from PIL import Image

    for size in (images.MIN_NOISE_PNG, 1000, 16 * 1024, 1024 * 1024 + 7):
        png = images.noise_png(size)
        assert len(png) == size
        with Image.open(io.BytesIO(png)) as img:
            img.load()
            assert img.mode == "RGB"
        # Noise does not compress: compression cannot flatter a transport.
        assert len(zlib.compress(png, 6)) > 0.95 * size or size < 200
