"""Chunked uploads: pieces, reassembly, limits at the boundary, protocol violations."""

from __future__ import annotations

import pytest

from imgbench import wire
from imgbench.errors import InvalidField, MalformedMessage, OversizedMessage

from helpers.messages import image_meta as meta


def _assembler(max_image: int = 10**6) -> wire.ChunkAssembler:
    return wire.ChunkAssembler(
        max_message_bytes=4096, max_image_bytes=max_image, protocol="grpc", mode="chunked"
    )


@pytest.mark.parametrize("size", [0, 1, 999, 1000, 1001, 5000])
def test_chunks_reassemble_to_the_original_bytes(size: int) -> None:
    data = bytes(i % 251 for i in range(size))
    m = meta(protocol="grpc", mode="chunked", sha256=wire.digest(data))
    chunks = wire.encode_chunks(m, data, 1000)
    assert len(chunks) == max(1, -(-size // 1000))
    assembler = _assembler()
    done = [assembler.feed(c) for c in chunks]
    assert done == [False] * (len(chunks) - 1) + [True]
    got, payload = assembler.result()
    assert (got, payload) == (m, data)
    assert assembler.message_bytes == sum(len(c) for c in chunks)


def test_chunk_protocol_violations() -> None:
    m = meta(protocol="grpc", mode="chunked")
    first, second = wire.encode_chunks(m, b"x" * 2000, 1000)
    with pytest.raises(InvalidField, match="first chunk"):
        _assembler().feed(second)
    a = _assembler()
    a.feed(first)
    with pytest.raises(InvalidField, match="only the first"):
        a.feed(first)
    a = _assembler()
    a.feed(first)
    with pytest.raises(InvalidField, match="ended after 1000 of 2000"):
        a.result()
    with pytest.raises(OversizedMessage, match="image of 2000 bytes"):
        _assembler(max_image=1999).feed(first)
    with pytest.raises(MalformedMessage, match=r"^not an ImageChunk: "):
        _assembler().feed(b"\xff\xff\xff")
    with pytest.raises(OversizedMessage, match="chunk of"):
        _assembler().feed(wire.encode_chunks(m, b"x" * 5000, 5000)[0])
    # A chunk that claims a different transport is refused like a message would be.
    other = wire.encode_chunks(meta(protocol="grpc", mode="unary"), b"x", 10)[0]
    with pytest.raises(InvalidField, match="arrived on"):
        _assembler().feed(other)


def test_chunk_pieces_are_at_most_chunk_bytes_and_the_first_carries_the_header() -> None:
    from imgbench.v1.imgbench_pb2 import ImageChunk

    m = meta(protocol="grpc", mode="chunked")
    data = bytes(range(250)) * 10  # 2500 bytes
    chunks = [ImageChunk.FromString(c) for c in wire.encode_chunks(m, data, 1000)]
    assert [len(c.data) for c in chunks] == [1000, 1000, 500]
    assert chunks[0].HasField("header") and chunks[0].total_bytes == 2500
    assert chunks[0].header.run_id == "run-1" and chunks[0].header.data == b""
    assert not any(c.HasField("header") or c.total_bytes for c in chunks[1:])
    assert b"".join(c.data for c in chunks) == data
    one = [ImageChunk.FromString(c) for c in wire.encode_chunks(m, b"abc", 1)]
    assert [c.data for c in one] == [b"a", b"b", b"c"]
    for bad in (0, -1):
        with pytest.raises(ValueError, match=r"^chunk_bytes must be positive$"):
            wire.encode_chunks(m, data, bad)


def test_chunk_of_exactly_max_message_bytes_is_accepted_one_more_is_refused() -> None:
    m = meta(protocol="grpc", mode="chunked")
    (raw,) = wire.encode_chunks(m, b"x" * 300, 1000)
    exact = wire.ChunkAssembler(max_message_bytes=len(raw), max_image_bytes=300,
                                protocol="grpc", mode="chunked")  # fmt: skip
    assert exact.feed(raw) is True and exact.complete
    assert exact.result() == (m, b"x" * 300)
    assert (exact.received, exact.message_bytes) == (300, len(raw))
    short = wire.ChunkAssembler(max_message_bytes=len(raw) - 1, max_image_bytes=300,
                                protocol="grpc", mode="chunked")  # fmt: skip
    with pytest.raises(
        OversizedMessage, match=rf"^chunk of {len(raw)} bytes exceeds the limit of {len(raw) - 1}$"
    ):
        short.feed(raw)


def test_image_of_exactly_max_image_bytes_is_accepted_one_more_is_refused() -> None:
    m = meta(protocol="grpc", mode="chunked")
    chunks = wire.encode_chunks(m, b"y" * 2000, 1000)
    ok = _assembler(max_image=2000)
    assert [ok.feed(c) for c in chunks] == [False, True]
    with pytest.raises(OversizedMessage, match=r"^image of 2000 bytes exceeds the limit of 1999$"):
        _assembler(max_image=1999).feed(chunks[0])


def test_assembler_refuses_more_bytes_than_announced_and_data_in_the_header() -> None:
    from imgbench.v1.imgbench_pb2 import ImageChunk

    m = meta(protocol="grpc", mode="chunked")
    first, second = wire.encode_chunks(m, b"z" * 2000, 1000)
    a = _assembler()
    assert a.feed(first) is False and not a.complete
    assert len(ImageChunk.FromString(second).data) == 1000
    with pytest.raises(InvalidField, match=r"^more than the announced 2000 bytes$"):
        a.feed(ImageChunk(data=b"z" * 1001).SerializeToString())
    header = ImageChunk.FromString(first)
    header.header.data = b"sneaky"
    with pytest.raises(InvalidField, match=r"^the header must not carry data: chunks do$"):
        _assembler().feed(header.SerializeToString())
    with pytest.raises(MalformedMessage, match=r"^not an ImageChunk: "):
        _assembler().feed(b"\xff\xff\xff")


def test_an_assembler_with_nothing_fed_has_no_result() -> None:
    a = _assembler()
    assert not a.complete and (a.received, a.message_bytes) == (0, 0)
    with pytest.raises(InvalidField, match=r"^upload ended after 0 of 0 announced bytes$"):
        a.result()


def test_an_empty_image_is_one_chunk_and_complete() -> None:
    m = meta(protocol="grpc", mode="chunked", sha256=wire.digest(b""))
    (only,) = wire.encode_chunks(m, b"", 1000)
    a = _assembler()
    assert a.feed(only) is True and a.complete
    assert a.result() == (m, b"")


def test_only_the_first_chunk_may_announce_a_total() -> None:
    from imgbench.v1.imgbench_pb2 import ImageChunk

    m = meta(protocol="grpc", mode="chunked")
    first, _ = wire.encode_chunks(m, b"q" * 2000, 1000)
    a = _assembler()
    a.feed(first)
    later = ImageChunk(total_bytes=2000, data=b"q" * 1000).SerializeToString()  # no header
    with pytest.raises(InvalidField, match=r"^only the first chunk may carry the header$"):
        a.feed(later)
    with pytest.raises(InvalidField, match=r"^only the first chunk may carry the header$"):
        a.feed(first)


def test_image_buffers_from_one_mib_are_mappings_of_their_own() -> None:
    import mmap

    from imgbench.wire.chunks import MAPPED_IMAGE_BYTES, _image_buffer

    assert MAPPED_IMAGE_BYTES == 1024 * 1024
    small = _image_buffer(MAPPED_IMAGE_BYTES - 1)
    assert type(small) is bytearray and len(small) == MAPPED_IMAGE_BYTES - 1
    assert small[0] == small[-1] == 0
    for size in (MAPPED_IMAGE_BYTES, MAPPED_IMAGE_BYTES + 1):
        big = _image_buffer(size)
        assert isinstance(big, mmap.mmap) and len(big) == size
        assert big[0] == big[size - 1] == 0
        big.close()
    assert _image_buffer(0) == bytearray()
