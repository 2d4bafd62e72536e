"""The bundled sample image, generated deterministically (no I/O but the return value).

``python -m imgbench.images`` regenerates ``imgbench/assets/sample.png``; a
test checks that the committed file is exactly what this code produces.
The picture is a synthetic landscape (sky gradient, hills, a sun) with mild
pseudo-random sensor-like noise, so that PNG's deflate compresses it about as
poorly as a photograph: about 0.5 MB, like the predecessor project's 533 KB
sample.
"""

from __future__ import annotations

import math
import random
import struct
import sys
import zlib
from pathlib import Path

WIDTH, HEIGHT, SEED = 640, 480, 2026


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def encode_png(width: int, height: int, rgb_rows: list[bytes]) -> bytes:
    """A truecolour 8-bit PNG from ``height`` rows of ``3 * width`` bytes."""
    raw = b"".join(b"\x00" + row for row in rgb_rows)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw, 9))
        + _chunk(b"IEND", b"")
    )


def landscape(width: int = WIDTH, height: int = HEIGHT, seed: int = SEED) -> bytes:
    """The sample picture as PNG bytes; same arguments, same bytes."""
    rng = random.Random(seed)
    rows = []
    sun_x, sun_y, sun_r = width * 0.72, height * 0.28, height * 0.09
    for y in range(height):
        row = bytearray(3 * width)
        for x in range(width):
            ridge = height * (0.62 + 0.06 * math.sin(x / 53.0) + 0.03 * math.sin(x / 17.0 + 1.3))
            if y > ridge:  # hills: greens darkening towards the bottom
                depth = (y - ridge) / (height - ridge + 1)
                r, g, b = 40 + 30 * depth, 120 - 50 * depth, 50 - 20 * depth
            elif math.hypot(x - sun_x, y - sun_y) < sun_r:
                r, g, b = 255, 220, 120
            else:  # sky: light blue to deep blue upwards
                t = y / ridge
                r, g, b = 70 + 110 * t, 130 + 90 * t, 220 + 30 * t
            noise = rng.gauss(0, 2.5)
            row[3 * x] = max(0, min(255, int(r + noise)))
            row[3 * x + 1] = max(0, min(255, int(g + noise + rng.gauss(0, 2))))
            row[3 * x + 2] = max(0, min(255, int(b + noise)))
        rows.append(bytes(row))
    return encode_png(width, height, rows)


#: Smallest size :func:`noise_png` can produce (signature, IHDR, IDAT, padding, IEND).
MIN_NOISE_PNG = 128


def noise_png(size: int, seed: int = 0) -> bytes:
    """A valid PNG of exactly ``size`` bytes whose pixels are random noise.

    Used by ``imgbench sweep``: noise is incompressible (the worst case of a
    photograph, so compression cannot flatter either transport), the pixels are
    stored without deflate to make the size predictable, and a private
    ancillary chunk (``ibPd``, ignored by decoders) pads to the exact size.
    """
    if size < MIN_NOISE_PNG:
        raise ValueError(f"a generated PNG needs at least {MIN_NOISE_PNG} bytes, got {size}")
    rng = random.Random(seed)
    # 57 bytes of fixed chunks + 12 for the padding chunk; stored deflate blocks
    # add 5 bytes per 64 KiB plus 6 bytes of zlib framing.
    budget = size - 57 - 12 - 6
    width = max(1, min(256, math.isqrt(budget // 3)))
    rows = max(1, budget * 65530 // 65535 // (3 * width + 1))
    while True:
        raw_len = rows * (3 * width + 1)
        idat_len = raw_len + 6 + 5 * max(1, -(-raw_len // 65535))
        if 57 + 12 + idat_len <= size or rows == 1:
            break
        rows -= 1
    pixels = [rng.randbytes(3 * width) for _ in range(rows)]
    raw = b"".join(b"\x00" + row for row in pixels)
    header = struct.pack(">IIBBBBB", width, rows, 8, 2, 0, 0, 0)
    head = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw, 0))
    padding = size - len(head) - 12 - 12
    if padding < 0:
        raise ValueError(f"cannot fit a PNG into {size} bytes")
    png = head + _chunk(b"ibPd", rng.randbytes(padding)) + _chunk(b"IEND", b"")
    assert len(png) == size
    return png


def main() -> int:
    target = Path(__file__).with_name("assets") / "sample.png"
    target.write_bytes(landscape())
    sys.stdout.write(f"wrote {target} ({target.stat().st_size} bytes)\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
