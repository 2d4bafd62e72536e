"""The shared gRPC names agree with the generated stubs and the proto."""

from __future__ import annotations

from imgbench.v1 import imgbench_pb2
from imgbench.wire import names


def test_method_paths_match_the_proto_service() -> None:
    service = imgbench_pb2.DESCRIPTOR.services_by_name["Receiver"]
    assert service.full_name == names.GRPC_SERVICE
    assert set(service.methods_by_name) == {
        names.SEND_METHOD,
        names.SEND_STREAM_METHOD,
        names.UPLOAD_METHOD,
    }
    assert names.SEND == "/imgbench.v1.Receiver/Send"
    assert names.SEND_STREAM == "/imgbench.v1.Receiver/SendStream"
    assert names.UPLOAD == "/imgbench.v1.Receiver/Upload"


def test_headroom_is_one_mib() -> None:
    assert names.GRPC_HEADROOM == 1024 * 1024


def test_the_services_use_the_shared_names_not_copies() -> None:
    """No module of the services spells a method path or the headroom itself."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    for package in ("receiver", "transmitter", "benchmarks", "imgbench"):
        for path in (root / package).rglob("*.py"):
            if path.parent.name == "v1" or path.name == "names.py":
                continue
            text = path.read_text()
            assert "/imgbench.v1.Receiver/" not in text, path
            assert "HEADROOM = " not in text, path


def test_push_names_match_the_proto_pusher_service() -> None:
    service = imgbench_pb2.DESCRIPTOR.services_by_name["Pusher"]
    assert service.full_name == names.PUSH_SERVICE
    assert set(service.methods_by_name) == {names.SUBSCRIBE_METHOD}
    method = service.methods_by_name[names.SUBSCRIBE_METHOD]
    # Images down, Acks up, on one bidirectional stream.
    assert method.output_type.name == "ImageMessage"
    assert method.input_type.name == "Ack"
    assert method.client_streaming and method.server_streaming
    assert names.SUBSCRIBE == "/imgbench.v1.Pusher/Subscribe"


def test_direction_follows_the_mode() -> None:
    assert names.direction_of(names.PUSH_MODE) == "push"
    for mode in ("binary", "json", "unary", "stream", "chunked"):
        assert names.direction_of(mode) == "upload"
    assert names.DIRECTIONS == ("upload", "push")
