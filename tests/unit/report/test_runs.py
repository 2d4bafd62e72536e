"""Two saved runs compared: the ``imgbench.runs/1`` document, against the schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from imgbench.report import compare_results
from imgbench.report.runs import RUNS_SCHEMA

from helpers.synthetic import comparison

ROOT = Path(__file__).resolve().parents[3]
SCHEMA = json.loads((ROOT / "schemas" / "compare.schema.json").read_text())
WS, GRPC, STREAM = "websocket/binary", "grpc/unary", "grpc/stream"


def _errors(doc: dict[str, Any]) -> list[str]:
    validator = Draft202012Validator(SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)
    return [e.message for e in validator.iter_errors(doc)]


def test_the_runs_document_says_what_the_files_say_and_is_valid(tmp_path: Path) -> None:
    a = comparison({WS: [1.0], GRPC: [1.0]}, images=20, run_id="a", seed=1)
    b = comparison({WS: [1.5], GRPC: [1.0], STREAM: [1.0]}, images=20, run_id="b", seed=2,
                   versions={"imgbench": "0.2.0"})  # fmt: skip
    a.save(tmp_path / "a.json")
    b.save(tmp_path / "b.json")
    written = compare_results(tmp_path / "a.json", tmp_path / "b.json", tmp_path / "ab")
    doc = written.document
    assert doc is not None
    Draft202012Validator.check_schema(SCHEMA)
    assert _errors(doc) == []
    assert doc["schema"] == RUNS_SCHEMA
    assert (doc["a"]["run_id"], doc["b"]["run_id"]) == ("a", "b")
    assert doc["compared"] == [WS, GRPC] and doc["not_compared"] == [f"{STREAM} (only in B)"]
    assert doc["verdicts"] == [v.as_dict() for v in written.verdicts]
    assert doc["regressions"] == [WS]
    assert {"key": "versions.imgbench", "a": "0.1.0", "b": "0.2.0"} in doc["differences"]
    assert doc["files"] == [str(p) for p in written]
    assert all(Path(f).is_file() for f in doc["files"])
    # The same figures as the runs' own compare documents (B's median is 1.5x A's).
    a_ws, b_ws = doc["a"]["figures"][WS], doc["b"]["figures"][WS]
    assert 1.3 < b_ws["transmission_s"]["p50"] / a_ws["transmission_s"]["p50"] < 1.7
    assert set(doc["b"]["figures"]) == {WS, GRPC, STREAM}
    # Something the schema must refuse, so the validation above can fail.
    assert _errors({**doc, "regressions": "websocket/binary"})
    assert _errors({k: v for k, v in doc.items() if k != "differences"})
