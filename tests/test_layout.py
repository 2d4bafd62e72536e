"""Project invariants: layering, committed stubs, the bundled sample."""

from __future__ import annotations

import ast
import struct
import subprocess
import sys
import zlib
from pathlib import Path

from imgbench import images

ROOT = Path(__file__).resolve().parents[1]


def test_shared_core_never_imports_the_services() -> None:
    """Only imgbench.cli (the composition root) may import receiver or transmitter."""
    offenders = []
    for path in sorted((ROOT / "imgbench").rglob("*.py")):
        if path.name == "cli.py" and path.parent == ROOT / "imgbench":
            continue
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                if name.split(".")[0] in ("receiver", "transmitter"):
                    offenders.append(f"{path.relative_to(ROOT)}: {name}")
    assert offenders == []


def test_committed_stubs_match_a_fresh_generation(tmp_path: Path) -> None:
    """Regenerating the Python stubs from proto/ must not change anything."""
    proc = subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{ROOT / 'proto'}",
         f"--python_out={tmp_path}", f"--pyi_out={tmp_path}", f"--grpc_python_out={tmp_path}",
         str(ROOT / "proto" / "imgbench" / "v1" / "imgbench.proto")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    generated = sorted(p.name for p in (tmp_path / "imgbench" / "v1").iterdir())
    assert generated == ["imgbench_pb2.py", "imgbench_pb2.pyi", "imgbench_pb2_grpc.py"]
    for name in generated:
        committed = (ROOT / "imgbench" / "v1" / name).read_text()
        fresh = (tmp_path / "imgbench" / "v1" / name).read_text()
        assert committed == fresh, (
            f"imgbench/v1/{name} is stale: run python -m grpc_tools.protoc -Iproto"
            " --python_out=. --pyi_out=. --grpc_python_out=. proto/imgbench/v1/imgbench.proto"
        )


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


#: Packages (and modules) that must stay free of network and event-loop I/O.
PURE = ("imgbench/wire", "imgbench/measure", "imgbench/config", "imgbench/report/model.py",
        "imgbench/report/markdown.py", "imgbench/errors.py", "imgbench/images.py")  # fmt: skip
IO_MODULES = {"asyncio", "socket", "ssl", "selectors", "subprocess", "grpc", "websockets",
              "http", "urllib", "aiohttp", "httpx"}  # fmt: skip


def test_pure_packages_import_no_socket_or_event_loop_io() -> None:
    offenders = []
    for entry in PURE:
        target = ROOT / entry
        paths = sorted(target.rglob("*.py")) if target.is_dir() else [target]
        assert paths, entry
        for path in paths:
            tree = ast.parse(path.read_text(), str(path))
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                offenders += [
                    f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] in IO_MODULES
                ]
    assert offenders == []
