"""Chunked uploads (``Receiver.Upload``): one image as ImageChunk messages, and back.

Pure, no I/O: :func:`encode_chunks` cuts an image into chunks, a
:class:`ChunkAssembler` puts one stream of them back together within the limits
and the memory budget it is given.
"""

from __future__ import annotations

import mmap
from collections.abc import Callable
from typing import Final

from google.protobuf.message import DecodeError

from imgbench.errors import InvalidField, MalformedMessage, OversizedMessage
from imgbench.v1.imgbench_pb2 import ImageChunk
from imgbench.wire.meta import ImageMeta, from_message, to_message
from imgbench.wire.validation import validate

__all__ = ["MAPPED_IMAGE_BYTES", "ChunkAssembler", "encode_chunks"]


def encode_chunks(meta: ImageMeta, data: bytes, chunk_bytes: int) -> list[bytes]:
    """ImageChunk messages of one image for ``Receiver.Upload``; each data piece <= chunk_bytes.

    The first chunk carries the header (the ImageMessage without data), the total
    length, and the first piece of data.
    """
    if chunk_bytes < 1:
        raise ValueError("chunk_bytes must be positive")
    view = memoryview(data)
    pieces = [view[i : i + chunk_bytes] for i in range(0, len(view), chunk_bytes)] or [view]
    chunks = [
        ImageChunk(
            header=to_message(meta), total_bytes=len(data), data=bytes(pieces[0])
        ).SerializeToString()
    ]
    chunks.extend(ImageChunk(data=bytes(piece)).SerializeToString() for piece in pieces[1:])
    return chunks


class ChunkAssembler:
    """Reassembles one ``Receiver.Upload`` stream; pure, no I/O.

    Feed each raw ImageChunk to :meth:`feed`; it returns True once all announced
    bytes are in (the caller takes its receive-complete stamp then). Raises
    :class:`OversizedMessage` for a chunk above ``max_message_bytes`` or an image
    above ``max_image_bytes``, :class:`MalformedMessage` for bytes that are not an
    ImageChunk, and :class:`InvalidField` for a missing or repeated header, data
    in the header, or more bytes than announced.

    Memory: the announced size is first passed to ``reserve`` (which raises to
    refuse it: the receiver's upload budget), then allocated once; chunks are
    copied into place, so a complete image costs its size once, not twice.
    """

    def __init__(
        self,
        *,
        max_message_bytes: int,
        max_image_bytes: int,
        protocol: str,
        mode: str,
        reserve: Callable[[int], None] | None = None,
    ) -> None:
        self._limits = (max_message_bytes, max_image_bytes)
        self._labels = (protocol, mode)
        self._reserve = reserve
        self._meta: ImageMeta | None = None
        self._total = 0
        self._buffer: bytearray | mmap.mmap = bytearray()
        self.received = 0
        self.message_bytes = 0
        #: Bytes granted by ``reserve`` (the announced image size), 0 before the header.
        self.reserved = 0

    @property
    def complete(self) -> bool:
        return self._meta is not None and self.received == self._total

    def feed(self, raw: bytes) -> bool:
        max_message, max_image = self._limits
        if len(raw) > max_message:
            raise OversizedMessage(f"chunk of {len(raw)} bytes exceeds the limit of {max_message}")
        try:
            chunk = ImageChunk.FromString(raw)
        except (DecodeError, ValueError) as exc:
            raise MalformedMessage(f"not an ImageChunk: {exc}") from exc
        if self._meta is None:
            if not chunk.HasField("header"):
                raise InvalidField("the first chunk must carry the header")
            if chunk.header.data:
                raise InvalidField("the header must not carry data: chunks do")
            if chunk.total_bytes > max_image:
                raise OversizedMessage(
                    f"image of {chunk.total_bytes} bytes exceeds the limit of {max_image}"
                )
            meta = from_message(chunk.header)
            validate(meta, protocol=self._labels[0], mode=self._labels[1])
            if len(chunk.data) > chunk.total_bytes:
                raise InvalidField(f"more than the announced {chunk.total_bytes} bytes")
            if self._reserve is not None:
                self._reserve(chunk.total_bytes)
            self.reserved = chunk.total_bytes
            self._buffer = _image_buffer(chunk.total_bytes)
            self._meta, self._total = meta, chunk.total_bytes
        elif chunk.HasField("header") or chunk.total_bytes:
            raise InvalidField("only the first chunk may carry the header")
        start = self.received
        if start + len(chunk.data) > self._total:
            raise InvalidField(f"more than the announced {self._total} bytes")
        self._buffer[start : start + len(chunk.data)] = chunk.data
        self.received += len(chunk.data)
        self.message_bytes += len(raw)
        return self.received == self._total

    def result(self) -> tuple[ImageMeta, memoryview]:
        """The image's metadata and a read-only view of its bytes; only once :attr:`complete`."""
        if self._meta is None or not self.complete:
            raise InvalidField(
                f"upload ended after {self.received} of {self._total} announced bytes"
            )
        return self._meta, memoryview(self._buffer).toreadonly()

    def close(self) -> None:
        """Give the image buffer back now, unless :meth:`result` handed out a view still held.

        An upload that fails keeps its assembler reachable from the exception's
        traceback (frame -> assembler -> buffer, a cycle only the cyclic garbage
        collector frees, seconds or minutes later): 2 x 254 MiB of stalled uploads
        stayed resident after both had ended and released their reservations, so
        later uploads could reserve and fill new buffers on top of them. Closing
        the mapping here frees the pages when the reservation is released.
        """
        buffer, self._buffer = self._buffer, bytearray()
        if isinstance(buffer, mmap.mmap):
            try:
                buffer.close()
            except BufferError:  # a view from result() is still in use: freed with it
                self._buffer = buffer


#: Announced images of this size or more are assembled in their own anonymous mapping.
MAPPED_IMAGE_BYTES: Final = 1024 * 1024


def _image_buffer(size: int) -> bytearray | mmap.mmap:
    """A zeroed buffer of ``size`` bytes for one image being reassembled.

    Large ones are an anonymous mapping of their own rather than a heap block:
    pages become resident only as chunks fill them, and the memory goes back to
    the kernel as soon as the image is released, whatever the allocator tuning
    (imgbench.runtime.alloc keeps freed heap blocks mapped for speed; a stalled
    or refused upload's buffer must not stay pinned in the heap).
    """
    if size >= MAPPED_IMAGE_BYTES:
        return mmap.mmap(-1, size)
    return bytearray(size)
