"""The one exception tree of imgbench.

Everything imgbench raises on purpose derives from :class:`ImgbenchError`, so
callers (the CLI, the services) can catch one type and print ``str(exc)`` as a
one-line reason. Each :class:`WireError` subclass carries the ``reason``
label it is counted under; :data:`WIRE_ERRORS` lists them::

    ImgbenchError
    ├── ConfigError            a setting has a bad value (names the setting)
    ├── WireError              an incoming message is unacceptable
    │   ├── MalformedMessage   bytes are not a valid ImageMessage
    │   ├── OversizedMessage   above the configured message limit
    │   ├── WrongFrameType     e.g. a text frame where binary is expected
    │   ├── InvalidText        a text frame that is not valid UTF-8 (WebSocket close 1007)
    │   ├── FrameError         a WebSocket frame breaking RFC 6455 (close 1002)
    │   ├── InvalidField       a field is missing or out of range
    │   ├── DuplicateImage     a sequence number already received in the run
    │   ├── ClockError         an impossible clock probe or corrected time
    │   ├── RunsFull           every run slot holds a live run: a new run is refused
    │   ├── RecordsFull        a run id has its maximum number of records
    │   ├── RunEvicted         a message for a run the receiver evicted
    │   ├── UploadsBusy        chunked uploads at their count or byte budget
    │   ├── UploadStalled      a chunked upload sent nothing for too long
    │   └── ConnectionsFull    the receiver serves RECEIVER_MAX_CONNECTIONS already
    ├── ResultsError           a saved result is missing, corrupt or not imgbench's
    └── RunError               a comparison run could not complete
        ├── ReceiverUnreachable  no connection before the deadline
        ├── ImageLost            no acknowledgement (timeout, disconnect)
        ├── ReceiverRefused      the receiver refused a message and said why
        └── IntegrityError       the receiver reported a checksum mismatch
"""

from __future__ import annotations

from typing import Final


class ImgbenchError(Exception):
    """Base class of every error imgbench raises deliberately."""


class ConfigError(ImgbenchError):
    """A setting has an unusable value.

    ``setting`` is the user-facing name (environment variable or flag).
    """

    def __init__(self, setting: str, reason: str) -> None:
        super().__init__(f"invalid setting {setting}: {reason}")
        self.setting = setting
        self.reason = reason


class WireError(ImgbenchError):
    """An incoming message was rejected. ``reason`` is the metric label."""

    reason = "invalid"


class MalformedMessage(WireError):
    """Bytes are not an ImageMessage (or not JSON in json mode)."""

    reason = "malformed"


class OversizedMessage(WireError):
    """Above the message limit (WebSocket close 1009 / gRPC RESOURCE_EXHAUSTED)."""

    reason = "oversized"


class WrongFrameType(WireError):
    """A text frame on the binary endpoint, or the reverse."""

    reason = "wrong_frame_type"


class InvalidText(WireError):
    """A WebSocket text frame that is not valid UTF-8 (websockets closes with 1007)."""

    reason = "invalid_utf8"


class FrameError(WireError):
    """A WebSocket frame that breaks the protocol, e.g. unmasked or a bad opcode (close 1002)."""

    reason = "frame_error"


class InvalidField(WireError):
    """A field out of range, or a protocol/mode mismatch."""

    reason = "invalid_field"


class DuplicateImage(WireError):
    """A sequence number already received in this run."""

    reason = "duplicate"


class ClockError(WireError):
    """A clock probe or a clock-corrected time is impossible (imgbench.measure.clock)."""

    reason = "clock"


class RunsFull(WireError):
    """Every run slot holds a live run, so a new run id is refused."""

    reason = "runs_full"


class RecordsFull(WireError):
    """A run id already holds RECEIVER_MAX_RECORDS_PER_RUN records."""

    reason = "records_full"


class RunEvicted(WireError):
    """A message for a run the receiver evicted; it is refused, not re-created."""

    reason = "run_evicted"


class UploadsBusy(WireError):
    """Chunked uploads are at RECEIVER_MAX_UPLOADS or the upload byte budget."""

    reason = "uploads_busy"


class ConnectionsFull(WireError):
    """RECEIVER_MAX_CONNECTIONS WebSocket connections are open, or gRPC calls in progress."""

    reason = "connections_full"


class UploadStalled(WireError):
    """A chunked upload sent nothing for RECEIVER_UPLOAD_IDLE_TIMEOUT."""

    reason = "upload_stalled"


#: Every concrete refusal; its ``reason`` values are the ``reason`` label of
#: ``imgbench_rejected_messages_total`` (:data:`imgbench.observe.metrics.REJECT_REASONS`).
WIRE_ERRORS: Final = (
    MalformedMessage,
    OversizedMessage,
    WrongFrameType,
    InvalidText,
    FrameError,
    InvalidField,
    DuplicateImage,
    ClockError,
    RunsFull,
    RecordsFull,
    RunEvicted,
    UploadsBusy,
    UploadStalled,
    ConnectionsFull,
)


class ResultsError(ImgbenchError):
    """A saved result cannot be used: missing, not JSON, or not an imgbench result."""


class RunError(ImgbenchError):
    """A comparison run failed; the message is the one-line reason."""


class ReceiverUnreachable(RunError):
    pass


class ImageLost(RunError):
    pass


class ReceiverRefused(RunError):
    pass


class IntegrityError(RunError):
    pass
