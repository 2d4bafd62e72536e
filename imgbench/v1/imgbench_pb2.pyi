from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
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
    __slots__ = ("run_id", "protocol", "sequence", "total", "send_time_ns", "clock", "content_type", "sha256", "traceparent", "warmup", "mode", "scheduled_time_ns", "repetition", "probe", "data")
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
    PROBE_FIELD_NUMBER: _ClassVar[int]
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
    probe: ClockProbe
    data: bytes
    def __init__(self, run_id: _Optional[str] = ..., protocol: _Optional[str] = ..., sequence: _Optional[int] = ..., total: _Optional[int] = ..., send_time_ns: _Optional[int] = ..., clock: _Optional[_Union[Clock, str]] = ..., content_type: _Optional[str] = ..., sha256: _Optional[bytes] = ..., traceparent: _Optional[str] = ..., warmup: _Optional[bool] = ..., mode: _Optional[str] = ..., scheduled_time_ns: _Optional[int] = ..., repetition: _Optional[int] = ..., probe: _Optional[_Union[ClockProbe, _Mapping]] = ..., data: _Optional[bytes] = ...) -> None: ...

class ClockProbe(_message.Message):
    __slots__ = ("id", "revision", "group", "completed", "boot_id", "realtime_ns")
    ID_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    BOOT_ID_FIELD_NUMBER: _ClassVar[int]
    REALTIME_NS_FIELD_NUMBER: _ClassVar[int]
    id: int
    revision: int
    group: int
    completed: _containers.RepeatedCompositeFieldContainer[ClockExchange]
    boot_id: str
    realtime_ns: int
    def __init__(self, id: _Optional[int] = ..., revision: _Optional[int] = ..., group: _Optional[int] = ..., completed: _Optional[_Iterable[_Union[ClockExchange, _Mapping]]] = ..., boot_id: _Optional[str] = ..., realtime_ns: _Optional[int] = ...) -> None: ...

class ClockExchange(_message.Message):
    __slots__ = ("id", "group", "t1_ns", "t2_ns", "t3_ns", "t4_ns")
    ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    T1_NS_FIELD_NUMBER: _ClassVar[int]
    T2_NS_FIELD_NUMBER: _ClassVar[int]
    T3_NS_FIELD_NUMBER: _ClassVar[int]
    T4_NS_FIELD_NUMBER: _ClassVar[int]
    id: int
    group: int
    t1_ns: int
    t2_ns: int
    t3_ns: int
    t4_ns: int
    def __init__(self, id: _Optional[int] = ..., group: _Optional[int] = ..., t1_ns: _Optional[int] = ..., t2_ns: _Optional[int] = ..., t3_ns: _Optional[int] = ..., t4_ns: _Optional[int] = ...) -> None: ...

class ClockProbeReply(_message.Message):
    __slots__ = ("id", "receive_time_ns", "reply_time_ns", "clock", "boot_id", "revision")
    ID_FIELD_NUMBER: _ClassVar[int]
    RECEIVE_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    REPLY_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    CLOCK_FIELD_NUMBER: _ClassVar[int]
    BOOT_ID_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    id: int
    receive_time_ns: int
    reply_time_ns: int
    clock: Clock
    boot_id: str
    revision: int
    def __init__(self, id: _Optional[int] = ..., receive_time_ns: _Optional[int] = ..., reply_time_ns: _Optional[int] = ..., clock: _Optional[_Union[Clock, str]] = ..., boot_id: _Optional[str] = ..., revision: _Optional[int] = ...) -> None: ...

class Ack(_message.Message):
    __slots__ = ("sequence", "receive_time_ns", "bytes_received", "checksum_ok", "transmission_ns", "warmup", "error", "probe_reply")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    RECEIVE_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    BYTES_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    CHECKSUM_OK_FIELD_NUMBER: _ClassVar[int]
    TRANSMISSION_NS_FIELD_NUMBER: _ClassVar[int]
    WARMUP_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    PROBE_REPLY_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    receive_time_ns: int
    bytes_received: int
    checksum_ok: bool
    transmission_ns: int
    warmup: bool
    error: str
    probe_reply: ClockProbeReply
    def __init__(self, sequence: _Optional[int] = ..., receive_time_ns: _Optional[int] = ..., bytes_received: _Optional[int] = ..., checksum_ok: _Optional[bool] = ..., transmission_ns: _Optional[int] = ..., warmup: _Optional[bool] = ..., error: _Optional[str] = ..., probe_reply: _Optional[_Union[ClockProbeReply, _Mapping]] = ...) -> None: ...

class ImageChunk(_message.Message):
    __slots__ = ("header", "total_bytes", "data")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    header: ImageMessage
    total_bytes: int
    data: bytes
    def __init__(self, header: _Optional[_Union[ImageMessage, _Mapping]] = ..., total_bytes: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...
