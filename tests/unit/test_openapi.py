"""The OpenAPI document of the REST surface, built from the committed descriptor set."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from google.api import annotations_pb2, http_pb2
from google.protobuf.descriptor_pb2 import (
    DescriptorProto,
    FieldDescriptorProto,
    FileDescriptorProto,
    FileDescriptorSet,
)
from openapi_spec_validator import validate

from financelake.services import openapi

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
DESCRIPTOR = REPO / "gen" / "descriptor" / "financelake.binpb"
COMMITTED = REPO / "gen" / "openapi" / "financelake.openapi.json"
VERBS = ("get", "put", "post", "delete", "patch")
F = FieldDescriptorProto


@pytest.fixture(scope="module")
def files() -> FileDescriptorSet:
    return FileDescriptorSet.FromString(DESCRIPTOR.read_bytes())


@pytest.fixture(scope="module")
def document(files: FileDescriptorSet) -> dict[str, Any]:
    return openapi.build_document(files)


def _operations(document: dict[str, Any]) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """operationId -> (verb, path, operation)."""
    return {
        operation["operationId"]: (verb, path, operation)
        for path, item in document["paths"].items()
        for verb, operation in item.items()
    }


def _schema(document: dict[str, Any], name: str) -> dict[str, Any]:
    schema: dict[str, Any] = document["components"]["schemas"][name]
    return schema


def test_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    validate(document)  # raises on any violation of the OpenAPI 3.1 schema
    assert document["openapi"] == "3.1.0"
    assert document["servers"] == [{"url": "http://localhost:8080"}]
    assert document["info"]["title"] == "financelake REST API"
    assert document["info"]["version"] == "v1"


def test_committed_document_is_what_the_descriptor_set_generates(
    document: dict[str, Any],
) -> None:
    assert COMMITTED.read_text() == openapi.render(document), "run `make gen`"
    # Deterministic: building twice renders the same bytes.
    again = openapi.build_document(FileDescriptorSet.FromString(DESCRIPTOR.read_bytes()))
    assert openapi.render(again) == openapi.render(document)


def test_every_rpc_with_an_http_rule_appears_once_with_its_method_and_path(
    files: FileDescriptorSet, document: dict[str, Any]
) -> None:
    expected = {}
    for file in files.file:
        for service in file.service:
            for method in service.method:
                if method.options.HasExtension(annotations_pb2.http):
                    rule = method.options.Extensions[annotations_pb2.http]
                    verb = rule.WhichOneof("pattern")
                    path = re.sub(r"\{([^}=]+)=[^}]*\}", r"{\1}", getattr(rule, verb))
                    expected[f"{service.name}_{method.name}"] = (verb, path)
    operations = _operations(document)
    assert {name: (verb, path) for name, (verb, path, _) in operations.items()} == expected
    count = sum(1 for item in document["paths"].values() for verb in item if verb in VERBS)
    assert count == len(expected) == 16
    assert expected["MarketDataService_GetBars"] == ("get", "/v1/symbols/{symbol}/bars")
    assert expected["PredictionService_Predict"] == ("post", "/v1/symbols/{symbol}:predict")
    for name, (_, _, operation) in operations.items():
        assert operation["tags"] == [name.split("_")[0]]


def test_path_parameters_match_the_template(document: dict[str, Any]) -> None:
    for path, item in document["paths"].items():
        for operation in item.values():
            in_path = [p for p in operation["parameters"] if p["in"] == "path"]
            assert [p["name"] for p in in_path] == re.findall(r"\{([^}]+)\}", path)
            assert all(p["required"] for p in in_path)


def test_get_bars_query_parameters(document: dict[str, Any]) -> None:
    _, _, operation = _operations(document)["MarketDataService_GetBars"]
    query = {p["name"]: p for p in operation["parameters"] if p["in"] == "query"}
    assert list(query) == [
        "interval",
        "start_time",
        "end_time",
        "page_size",
        "page_token",
        "format",
    ]
    assert query["interval"]["schema"] == {
        "$ref": "#/components/schemas/financelake.common.v1.Interval"
    }
    assert query["start_time"]["schema"] == {"type": "string", "format": "date-time"}
    assert query["page_size"]["schema"]["type"] == "integer"
    assert "requestBody" not in operation


def test_repeated_fields_are_exploded_query_parameters(document: dict[str, Any]) -> None:
    _, _, operation = _operations(document)["MarketDataService_WatchBars"]
    (symbols,) = (p for p in operation["parameters"] if p["name"] == "symbols")
    assert symbols["schema"] == {"type": "array", "items": {"type": "string"}}
    assert (symbols["style"], symbols["explode"]) == ("form", True)


def test_body_star_sends_the_whole_request_and_no_query(document: dict[str, Any]) -> None:
    _, _, operation = _operations(document)["PredictionService_Predict"]
    assert [p["in"] for p in operation["parameters"]] == ["path"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/financelake.prediction.v1.PredictRequest"}


def test_streams_are_ndjson_and_client_streams_a_json_array(document: dict[str, Any]) -> None:
    operations = _operations(document)
    for name in ("MarketDataService_WatchBars", "StreamService_WatchAlerts"):
        content = operations[name][2]["responses"]["200"]["content"]
        assert list(content) == ["application/x-ndjson"]
    _, _, ingest = operations["IngestionService_IngestTicks"]
    schema = ingest["requestBody"]["content"]["application/json"]["schema"]
    assert schema["type"] == "array"
    assert schema["items"]["$ref"].endswith("financelake.ingestion.v1.IngestTicksRequest")


def test_enums_list_their_names(files: FileDescriptorSet, document: dict[str, Any]) -> None:
    (bar_file,) = (f for f in files.file if f.name == "financelake/common/v1/bar.proto")
    (interval,) = (e for e in bar_file.enum_type if e.name == "Interval")
    schema = _schema(document, "financelake.common.v1.Interval")
    assert schema["type"] == "string"
    assert schema["enum"] == [value.name for value in interval.value]
    assert "INTERVAL_1D" in schema["enum"]
    assert "- `INTERVAL_1D`: One trading day." in schema["description"]


def test_int64_fields_are_strings(files: FileDescriptorSet, document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    checked = 0
    for file in files.file:
        for message in file.message_type:
            name = f"{file.package}.{message.name}"
            for field in message.field:
                if name in schemas and field.type in (F.TYPE_INT64, F.TYPE_UINT64):
                    schema = schemas[name]["properties"][field.name]
                    leaf = schema["items"] if field.label == F.LABEL_REPEATED else schema
                    assert leaf["type"] == "string", f"{name}.{field.name}"
                    checked += 1
    assert checked >= 5
    model = _schema(document, "financelake.prediction.v1.Model")
    assert model["properties"]["version"]["type"] == "string"


def test_maps_oneofs_and_timestamps_follow_the_json_mapping(document: dict[str, Any]) -> None:
    model = _schema(document, "financelake.prediction.v1.Model")
    assert model["properties"]["metrics"]["type"] == "object"
    assert "additionalProperties" in model["properties"]["metrics"]
    assert not any(".Model." in name for name in document["components"]["schemas"])
    csv = _schema(document, "financelake.ingestion.v1.CsvOptions")
    assert "Oneof `input`: at most one of `path`, `data` is set." in csv["description"]
    assert "Part of oneof `input`." in csv["properties"]["path"]["description"]
    assert csv["properties"]["data"]["contentEncoding"] == "base64"
    request = _schema(document, "financelake.ingestion.v1.ImportHistoryRequest")
    assert request["properties"]["start_time"]["format"] == "date-time"


def test_descriptions_come_from_the_proto_comments(document: dict[str, Any]) -> None:
    _, _, operation = _operations(document)["MarketDataService_GetBars"]
    assert operation["description"].startswith("GetBars returns a symbol's bars of one interval")
    assert operation["summary"] == (
        "GetBars returns a symbol's bars of one interval over a time range, oldest first, paged"
    )
    query = {p["name"]: p for p in operation["parameters"]}
    assert query["start_time"]["description"] == "Start of the range (inclusive, UTC)."
    request = _schema(document, "financelake.marketdata.v1.WatchBarsResponse")
    assert request["description"] == "WatchBarsResponse is one update of the watch stream."
    tags = {tag["name"]: tag["description"] for tag in document["tags"]}
    assert tags["MarketDataService"].startswith("MarketDataService serves history")


def test_errors_are_a_google_rpc_status(document: dict[str, Any]) -> None:
    for _, _, operation in _operations(document).values():
        assert operation["responses"]["default"] == {"$ref": "#/components/responses/Error"}
        assert operation["responses"]["429"] == {"$ref": "#/components/responses/RateLimited"}
    error = document["components"]["responses"]["Error"]
    assert error["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/google.rpc.Status"
    }
    assert "INVALID_ARGUMENT → 400" in error["description"]
    assert "ALREADY_EXISTS → 409" in error["description"]
    status = _schema(document, "google.rpc.Status")
    assert set(status["properties"]) == {"code", "message", "details"}


def _field(
    name: str, number: int, kind: F.Type.ValueType, type_name: str = "", repeated: bool = False
) -> F:
    label = F.LABEL_REPEATED if repeated else F.LABEL_OPTIONAL
    return F(name=name, number=number, type=kind, type_name=type_name, label=label)


def _synthetic_set() -> FileDescriptorSet:
    """A contract with what ours lack: a named body, a nested path field, extra bindings."""
    thing = DescriptorProto(
        name="Thing",
        field=[_field("name", 1, F.TYPE_STRING), _field("size", 2, F.TYPE_UINT64)],
    )
    request = DescriptorProto(
        name="UpdateThingRequest",
        field=[
            _field("thing", 1, F.TYPE_MESSAGE, ".demo.v1.Thing"),
            _field("validate_only", 2, F.TYPE_BOOL),
            _field("labels", 3, F.TYPE_MESSAGE, ".demo.v1.Thing", repeated=True),
        ],
    )
    file = FileDescriptorProto(
        name="demo/v1/demo.proto",
        package="demo.v1",
        syntax="proto3",
        message_type=[thing, request],
    )
    method = file.service.add(name="DemoService").method.add(
        name="UpdateThing", input_type=".demo.v1.UpdateThingRequest", output_type=".demo.v1.Thing"
    )
    rule = http_pb2.HttpRule(patch="/v1/{thing.name=things/*}", body="thing")
    rule.additional_bindings.add(put="/v2/{thing.name=things/*}", body="thing")
    method.options.Extensions[annotations_pb2.http].CopyFrom(rule)
    return FileDescriptorSet(file=[file])


def test_a_named_body_field_nested_path_field_and_additional_binding() -> None:
    document = openapi.build_document(_synthetic_set())
    validate(document)
    operations = _operations(document)
    assert {k: v[:2] for k, v in operations.items()} == {
        "DemoService_UpdateThing": ("patch", "/v1/{thing.name}"),
        "DemoService_UpdateThing_1": ("put", "/v2/{thing.name}"),
    }
    _, _, operation = operations["DemoService_UpdateThing"]
    parameters = [(p["name"], p["in"]) for p in operation["parameters"]]
    # The body field is not repeated in the query; a repeated message cannot be a parameter.
    assert parameters == [("thing.name", "path"), ("validate_only", "query")]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/demo.v1.Thing"}
    size = _schema(document, "demo.v1.Thing")["properties"]["size"]
    assert size == {"type": "string", "format": "uint64", "pattern": "^[0-9]+$"}
    assert json.loads(openapi.render(document)) == document
