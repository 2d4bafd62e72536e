"""``samples.csv``: one row per measured image; written and read back."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from imgbench.measure.results import Comparison, Sample

CSV_COLUMNS: Final = (
    "run_index",
    "label",
    "protocol",
    "mode",
    "compression",
    "repetition",
    "position",
    "warmup",
    "sequence",
    "scheduled_ns",
    "send_ns",
    "receive_ns",
    "ack_ns",
    "transmission_s",
    "queue_s",
    "round_trip_s",
    "image_bytes",
    "message_bytes",
    "checksum_ok",
    # Clock correction: the corrected transmission time (empty when not corrected: shared
    # or unknown offset; transmission_s then is the raw one) and its bound, in ns.
    "corrected_transmission_ns",
    "bound_ns",
)
#: The columns before clock correction existed (still read).
_COLUMNS_V1: Final = CSV_COLUMNS[:-2]


@dataclass(frozen=True, slots=True)
class CsvSample:
    """One row of ``samples.csv``: which run, and the raw sample."""

    run_index: int
    label: str
    protocol: str
    mode: str
    compression: bool
    repetition: int
    position: int
    warmup: bool
    sample: Sample


def _bool(text: str) -> bool:
    if text not in ("true", "false"):
        raise ValueError(f"not a boolean: {text!r}")
    return text == "true"


def write_samples_csv(comparison: Comparison, path: Path) -> None:
    """Every warm-up and measured sample, one per row (:data:`CSV_COLUMNS`).

    Times derived from the ns timestamps are written with ``repr`` so they
    read back as the same floats.
    """
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for index, run in enumerate(comparison.runs):
            tagged = [(True, s) for s in run.warmup_samples] + [(False, s) for s in run.samples]
            for warmup, s in tagged:
                writer.writerow(
                    [
                        index,
                        run.label,
                        run.protocol,
                        run.mode,
                        "true" if run.compression else "false",
                        run.repetition,
                        run.position,
                        "true" if warmup else "false",
                        s.sequence,
                        s.scheduled_ns,
                        s.send_ns,
                        s.receive_ns,
                        s.ack_ns,
                        repr(s.transmission_s),
                        repr(s.queue_s),
                        repr(s.round_trip_s),
                        s.image_bytes,
                        s.message_bytes,
                        "true" if s.checksum_ok else "false",
                        "" if s.transmission_ns is None else s.transmission_ns,
                        s.bound_ns,
                    ]
                )


def load_samples_csv(path: Path) -> list[CsvSample]:
    """Read ``samples.csv`` back, in file order (derived time columns ignored)."""
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if tuple(reader.fieldnames or ()) not in (CSV_COLUMNS, _COLUMNS_V1):
            raise ValueError(f"{path}: unexpected columns {reader.fieldnames}")
        return [
            CsvSample(
                run_index=int(row["run_index"]),
                label=row["label"],
                protocol=row["protocol"],
                mode=row["mode"],
                compression=_bool(row["compression"]),
                repetition=int(row["repetition"]),
                position=int(row["position"]),
                warmup=_bool(row["warmup"]),
                sample=Sample(
                    sequence=int(row["sequence"]),
                    scheduled_ns=int(row["scheduled_ns"]),
                    send_ns=int(row["send_ns"]),
                    receive_ns=int(row["receive_ns"]),
                    ack_ns=int(row["ack_ns"]),
                    image_bytes=int(row["image_bytes"]),
                    message_bytes=int(row["message_bytes"]),
                    checksum_ok=_bool(row["checksum_ok"]),
                    transmission_ns=(
                        int(row["corrected_transmission_ns"])
                        if row.get("corrected_transmission_ns")
                        else None
                    ),
                    bound_ns=int(row.get("bound_ns") or 0),
                ),
            )
            for row in reader
        ]
