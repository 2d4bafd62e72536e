from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Clock(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CLOCK_UNSPECIFIED: _ClassVar[Clock]
    CLOCK_MONOTONIC: _ClassVar[Clock]
    CLOCK_REALTIME: _ClassVar[Clock]
CLOCK_UNSPECIFIED: Clock
CLOCK_MONOTONIC: Clock
CLOCK_REALTIME: Clock

class ImageMessage(_message.Message):
    __slots__ = ("run_id", "protocol", "sequence", "total", "send_time_ns", "clock", "content_type", "sha256", "traceparent", "warmup", "mode", "scheduled_time_ns", "repetition", "data")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    SEND_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    CLOCK_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    TRACEPARENT_FIELD_NUMBER: _ClassVar[int]
    WARMUP_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    SCHEDULED_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    REPETITION_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    protocol: str
    sequence: int
    total: int
    send_time_ns: int
    clock: Clock
    content_type: str
    sha256: bytes
    traceparent: str
    warmup: bool
    mode: str
    scheduled_time_ns: int
    repetition: int
    data: bytes
    def __init__(self, run_id: _Optional[str] = ..., protocol: _Optional[str] = ..., sequence: _Optional[int] = ..., total: _Optional[int] = ..., send_time_ns: _Optional[int] = ..., clock: _Optional[_Union[Clock, str]] = ..., content_type: _Optional[str] = ..., sha256: _Optional[bytes] = ..., traceparent: _Optional[str] = ..., warmup: _Optional[bool] = ..., mode: _Optional[str] = ..., scheduled_time_ns: _Optional[int] = ..., repetition: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class Ack(_message.Message):
    __slots__ = ("sequence", "receive_time_ns", "bytes_received", "checksum_ok", "transmission_ns", "warmup", "error")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    RECEIVE_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    BYTES_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    CHECKSUM_OK_FIELD_NUMBER: _ClassVar[int]
    TRANSMISSION_NS_FIELD_NUMBER: _ClassVar[int]
    WARMUP_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    receive_time_ns: int
    bytes_received: int
    checksum_ok: bool
    transmission_ns: int
    warmup: bool
    error: str
    def __init__(self, sequence: _Optional[int] = ..., receive_time_ns: _Optional[int] = ..., bytes_received: _Optional[int] = ..., checksum_ok: _Optional[bool] = ..., transmission_ns: _Optional[int] = ..., warmup: _Optional[bool] = ..., error: _Optional[str] = ...) -> None: ...

class ImageChunk(_message.Message):
    __slots__ = ("header", "total_bytes", "data")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    header: ImageMessage
    total_bytes: int
    data: bytes
    def __init__(self, header: _Optional[_Union[ImageMessage, _Mapping]] = ..., total_bytes: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...
