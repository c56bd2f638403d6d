"""The OpenAPI 3.1 document of the REST surface, built from the contracts' descriptor set.

The REST surface is what Envoy's gRPC-JSON transcoder makes of each RPC's `google.api.http`
rule, printed the way `gateway/config.py` configures it: proto field names, enums as names,
64-bit integers as strings, Timestamps and Durations as strings, server streams as
newline-delimited JSON, errors as a `google.rpc.Status`. Everything here is a pure function
of a `FileDescriptorSet` (with source info, for the descriptions); `codegen` does the I/O and
writes the result as `gen/openapi/financelake.openapi.json`.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from google.api import annotations_pb2, http_pb2
from google.protobuf.descriptor_pb2 import (
    DescriptorProto,
    EnumDescriptorProto,
    FieldDescriptorProto,
    FileDescriptorProto,
    FileDescriptorSet,
    MethodDescriptorProto,
)

Json = dict[str, Any]

# The address of the gateway `financelake up` starts. A constant, not settings: the committed
# document must not depend on the environment it was generated in.
SERVER_URL = "http://localhost:8080"
OPENAPI_VERSION = "3.1.0"

_SCHEMAS = "#/components/schemas/"
_STATUS = "google.rpc.Status"
_ANY = "google.protobuf.Any"

# FileDescriptorProto / DescriptorProto field numbers that source_code_info paths are built of.
_FILE_MESSAGE, _FILE_ENUM, _FILE_SERVICE = 4, 5, 6
_MESSAGE_FIELD, _MESSAGE_NESTED, _MESSAGE_ENUM, _MESSAGE_ONEOF = 2, 3, 4, 8
_ENUM_VALUE, _SERVICE_METHOD = 2, 2

_T = FieldDescriptorProto
# The protobuf JSON mapping: 64-bit integers are strings (JSON numbers lose precision past
# 2^53), bytes are base64.
_SCALARS: dict[int, Json] = {
    _T.TYPE_DOUBLE: {"type": "number", "format": "double"},
    _T.TYPE_FLOAT: {"type": "number", "format": "float"},
    _T.TYPE_INT32: {"type": "integer", "format": "int32"},
    _T.TYPE_SINT32: {"type": "integer", "format": "int32"},
    _T.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    _T.TYPE_UINT32: {"type": "integer", "format": "uint32", "minimum": 0},
    _T.TYPE_FIXED32: {"type": "integer", "format": "uint32", "minimum": 0},
    _T.TYPE_INT64: {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"},
    _T.TYPE_SINT64: {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"},
    _T.TYPE_SFIXED64: {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"},
    _T.TYPE_UINT64: {"type": "string", "format": "uint64", "pattern": "^[0-9]+$"},
    _T.TYPE_FIXED64: {"type": "string", "format": "uint64", "pattern": "^[0-9]+$"},
    _T.TYPE_BOOL: {"type": "boolean"},
    _T.TYPE_STRING: {"type": "string"},
    _T.TYPE_BYTES: {"type": "string", "contentEncoding": "base64"},
}


def _nullable(schema: Json) -> Json:
    return {**schema, "type": [schema["type"], "null"]}


# Well-known types have their own JSON forms; they are inlined rather than referenced.
_WELL_KNOWN: dict[str, Json] = {
    ".google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    ".google.protobuf.Duration": {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]{1,9})?s$"},
    ".google.protobuf.FieldMask": {"type": "string"},
    ".google.protobuf.Struct": {"type": "object", "additionalProperties": True},
    ".google.protobuf.Value": {},
    ".google.protobuf.ListValue": {"type": "array", "items": {}},
    ".google.protobuf.Empty": {"type": "object"},
    ".google.protobuf.Any": {"$ref": _SCHEMAS + _ANY},
    ".google.protobuf.DoubleValue": _nullable(_SCALARS[_T.TYPE_DOUBLE]),
    ".google.protobuf.FloatValue": _nullable(_SCALARS[_T.TYPE_FLOAT]),
    ".google.protobuf.Int32Value": _nullable(_SCALARS[_T.TYPE_INT32]),
    ".google.protobuf.UInt32Value": _nullable(_SCALARS[_T.TYPE_UINT32]),
    ".google.protobuf.Int64Value": _nullable(_SCALARS[_T.TYPE_INT64]),
    ".google.protobuf.UInt64Value": _nullable(_SCALARS[_T.TYPE_UINT64]),
    ".google.protobuf.BoolValue": _nullable(_SCALARS[_T.TYPE_BOOL]),
    ".google.protobuf.StringValue": _nullable(_SCALARS[_T.TYPE_STRING]),
    ".google.protobuf.BytesValue": _nullable(_SCALARS[_T.TYPE_BYTES]),
}
# Well-known messages whose JSON is a single string or number, so the transcoder takes them
# as one query parameter (`start_time=2026-01-01T00:00:00Z`).
_QUERY_WELL_KNOWN = {
    name for name, schema in _WELL_KNOWN.items() if schema.get("type") not in ("object", "array")
} - {".google.protobuf.Value", ".google.protobuf.Any"}

# The standard gRPC code -> HTTP status mapping Envoy's transcoder applies.
GRPC_TO_HTTP: tuple[tuple[str, int], ...] = (
    ("CANCELLED", 499),
    ("UNKNOWN", 500),
    ("INVALID_ARGUMENT", 400),
    ("DEADLINE_EXCEEDED", 504),
    ("NOT_FOUND", 404),
    ("ALREADY_EXISTS", 409),
    ("PERMISSION_DENIED", 403),
    ("RESOURCE_EXHAUSTED", 429),
    ("FAILED_PRECONDITION", 400),
    ("ABORTED", 409),
    ("OUT_OF_RANGE", 400),
    ("UNIMPLEMENTED", 501),
    ("INTERNAL", 500),
    ("UNAVAILABLE", 503),
    ("DATA_LOSS", 500),
    ("UNAUTHENTICATED", 401),
)

_HTTP_VERBS = ("get", "put", "post", "delete", "patch")
# `{symbol}` or `{name=models/*}`: the field path before any `=` is the parameter.
_TEMPLATE_VARIABLE = re.compile(r"\{([^}=]+)(?:=[^}]*)?\}")


@dataclass(frozen=True)
class _Message:
    descriptor: DescriptorProto
    comment: str
    # Field name -> its leading comment; oneof index -> its leading comment.
    field_comments: dict[str, str]
    oneof_comments: dict[int, str]


@dataclass(frozen=True)
class _Enum:
    descriptor: EnumDescriptorProto
    comment: str
    value_comments: dict[str, str]


@dataclass
class _Index:
    """Every message and enum of the set by full name (`.pkg.Msg`), with its comments."""

    messages: dict[str, _Message] = field(default_factory=dict)
    enums: dict[str, _Enum] = field(default_factory=dict)


@dataclass(frozen=True)
class _Binding:
    """One HTTP binding of one RPC."""

    service: str
    service_full_name: str
    method: MethodDescriptorProto
    comment: str
    verb: str
    path: str
    body: str
    operation_id: str


def _clean_comment(text: str) -> str:
    return textwrap.dedent(text).strip()


def _comments(file: FileDescriptorProto) -> dict[tuple[int, ...], str]:
    return {
        tuple(location.path): _clean_comment(location.leading_comments)
        for location in file.source_code_info.location
        if location.leading_comments.strip()
    }


def _index_enum(
    index: _Index,
    full_name: str,
    enum: EnumDescriptorProto,
    path: tuple[int, ...],
    comments: dict[tuple[int, ...], str],
) -> None:
    values = {
        value.name: comments.get((*path, _ENUM_VALUE, number), "")
        for number, value in enumerate(enum.value)
    }
    index.enums[full_name] = _Enum(enum, comments.get(path, ""), values)


def _index_message(
    index: _Index,
    full_name: str,
    message: DescriptorProto,
    path: tuple[int, ...],
    comments: dict[tuple[int, ...], str],
) -> None:
    index.messages[full_name] = _Message(
        descriptor=message,
        comment=comments.get(path, ""),
        field_comments={
            f.name: comments.get((*path, _MESSAGE_FIELD, number), "")
            for number, f in enumerate(message.field)
        },
        oneof_comments={
            number: comments.get((*path, _MESSAGE_ONEOF, number), "")
            for number in range(len(message.oneof_decl))
        },
    )
    for number, nested in enumerate(message.nested_type):
        nested_path = (*path, _MESSAGE_NESTED, number)
        _index_message(index, f"{full_name}.{nested.name}", nested, nested_path, comments)
    for number, enum in enumerate(message.enum_type):
        enum_path = (*path, _MESSAGE_ENUM, number)
        _index_enum(index, f"{full_name}.{enum.name}", enum, enum_path, comments)


def build_index(files: FileDescriptorSet) -> _Index:
    index = _Index()
    for file in files.file:
        comments = _comments(file)
        prefix = f".{file.package}" if file.package else ""
        for number, message in enumerate(file.message_type):
            path = (_FILE_MESSAGE, number)
            _index_message(index, f"{prefix}.{message.name}", message, path, comments)
        for number, enum in enumerate(file.enum_type):
            _index_enum(index, f"{prefix}.{enum.name}", enum, (_FILE_ENUM, number), comments)
    return index


def _rule_bindings(rule: http_pb2.HttpRule) -> Iterator[tuple[str, str, str]]:
    """(verb, path template, body) of a rule and its additional bindings."""
    pattern = rule.WhichOneof("pattern")
    if pattern in _HTTP_VERBS:
        yield pattern, getattr(rule, pattern), rule.body
    elif pattern == "custom":
        yield rule.custom.kind.lower(), rule.custom.path, rule.body
    for extra in rule.additional_bindings:
        yield from _rule_bindings(extra)


def http_bindings(files: FileDescriptorSet) -> list[_Binding]:
    """Every HTTP binding of every RPC that has a `google.api.http` rule, in file order."""
    bindings = []
    for file in sorted(files.file, key=lambda f: f.name):
        comments = _comments(file)
        for s_number, service in enumerate(file.service):
            for m_number, method in enumerate(service.method):
                if not method.options.HasExtension(annotations_pb2.http):
                    continue
                rule = method.options.Extensions[annotations_pb2.http]
                comment = comments.get((_FILE_SERVICE, s_number, _SERVICE_METHOD, m_number), "")
                for n, (verb, path, body) in enumerate(_rule_bindings(rule)):
                    # Additional bindings need their own ids: `_1`, `_2`, ...
                    suffix = f"_{n}" if n else ""
                    bindings.append(
                        _Binding(
                            service=service.name,
                            service_full_name=f"{file.package}.{service.name}",
                            method=method,
                            comment=comment,
                            verb=verb,
                            path=path,
                            body=body,
                            operation_id=f"{service.name}_{method.name}{suffix}",
                        )
                    )
    return bindings


def path_parameters(template: str) -> list[str]:
    """The field paths a path template binds, in order: `/v1/{a.b}/x` -> ["a.b"]."""
    return _TEMPLATE_VARIABLE.findall(template)


def openapi_path(template: str) -> str:
    """The OpenAPI form of a path template: `{name=models/*}` becomes `{name}`."""
    return _TEMPLATE_VARIABLE.sub(lambda m: "{" + m[1] + "}", template)


def _schema_name(full_name: str) -> str:
    return full_name.lstrip(".")


def _ref(full_name: str) -> Json:
    return {"$ref": _SCHEMAS + _schema_name(full_name)}


def _with_description(schema: Json, description: str) -> Json:
    return {**schema, "description": description} if description else schema


def _value_schema(f: FieldDescriptorProto) -> Json:
    """The schema of one value of a field (one element if repeated)."""
    if f.type == _T.TYPE_ENUM:
        return _ref(f.type_name)
    if f.type in (_T.TYPE_MESSAGE, _T.TYPE_GROUP):
        return _WELL_KNOWN.get(f.type_name) or _ref(f.type_name)
    return dict(_SCALARS[f.type])


def _is_map(f: FieldDescriptorProto, index: _Index) -> bool:
    message = index.messages.get(f.type_name)
    return message is not None and message.descriptor.options.map_entry


def field_schema(f: FieldDescriptorProto, index: _Index) -> Json:
    """A field's schema by the protobuf JSON mapping, without its description."""
    if f.label == _T.LABEL_REPEATED and _is_map(f, index):
        # Map keys are always JSON strings; the value is the entry's field 2.
        value = index.messages[f.type_name].descriptor.field[1]
        return {"type": "object", "additionalProperties": _value_schema(value)}
    if f.label == _T.LABEL_REPEATED:
        return {"type": "array", "items": _value_schema(f)}
    return _value_schema(f)


def _real_oneof(f: FieldDescriptorProto) -> bool:
    # proto3 `optional` is a synthetic one-field oneof, not a choice worth documenting.
    return f.HasField("oneof_index") and not f.proto3_optional


def _message_schema(message: _Message, index: _Index) -> Json:
    descriptor = message.descriptor
    properties: Json = {}
    for f in descriptor.field:
        description = message.field_comments.get(f.name, "")
        if _real_oneof(f):
            oneof_name = descriptor.oneof_decl[f.oneof_index].name
            description = f"{description}\n\nPart of oneof `{oneof_name}`.".strip()
        properties[f.name] = _with_description(field_schema(f, index), description)
    description = message.comment
    for number, oneof in enumerate(descriptor.oneof_decl):
        # oneof_index reads 0 on fields outside any oneof: membership needs HasField too.
        fields = [f for f in descriptor.field if _real_oneof(f) and f.oneof_index == number]
        if not fields:
            continue  # the synthetic oneof of a proto3 `optional` field
        members = [f"`{f.name}`" for f in fields]
        line = f"Oneof `{oneof.name}`: at most one of {', '.join(members)} is set."
        comment = message.oneof_comments.get(number, "")
        description = "\n\n".join(part for part in (description, line, comment) if part)
    schema: Json = {"type": "object", "properties": properties}
    return _with_description(schema, description)


def _enum_schema(enum: _Enum) -> Json:
    names = [value.name for value in enum.descriptor.value]
    lines = [f"- `{name}`: {text}" for name, text in enum.value_comments.items() if text]
    description = "\n".join([enum.comment, "", *lines]).strip() if lines else enum.comment
    return _with_description({"type": "string", "enum": names}, description)


def _referenced(f: FieldDescriptorProto, index: _Index) -> list[str]:
    """Full names of the messages and enums a field's schema refers to."""
    if f.type == _T.TYPE_ENUM:
        return [f.type_name]
    if f.type != _T.TYPE_MESSAGE or f.type_name in _WELL_KNOWN:
        return []
    if _is_map(f, index):
        return _referenced(index.messages[f.type_name].descriptor.field[1], index)
    return [f.type_name]


def component_schemas(roots: list[str], index: _Index) -> Json:
    """Schemas of every message and enum reachable from `roots`, keyed by full name."""
    schemas: Json = {}
    pending = list(roots)
    while pending:
        full_name = pending.pop()
        name = _schema_name(full_name)
        if name in schemas:
            continue
        if full_name in index.enums:
            schemas[name] = _enum_schema(index.enums[full_name])
            continue
        message = index.messages[full_name]
        schemas[name] = _message_schema(message, index)
        for f in message.descriptor.field:
            pending.extend(_referenced(f, index))
    return dict(sorted(schemas.items()))


def _status_schemas() -> Json:
    # google/rpc/status.proto is not in our descriptor set (nothing of ours imports it), and
    # its JSON form is fixed, so it is written out here.
    return {
        _STATUS: {
            "type": "object",
            "description": "The error model of gRPC and of the REST surface.",
            "properties": {
                "code": {
                    "type": "integer",
                    "format": "int32",
                    "description": "The gRPC status code (`google.rpc.Code`), e.g. 3 for "
                    "INVALID_ARGUMENT.",
                },
                "message": {"type": "string", "description": "A developer-facing message."},
                "details": {
                    "type": "array",
                    "items": {"$ref": _SCHEMAS + _ANY},
                    "description": "Error details, e.g. `google.rpc.BadRequest` with the "
                    "field violations of bad input, or `google.rpc.ErrorInfo`.",
                },
            },
        },
        _ANY: {
            "type": "object",
            "description": "A message of any type, named by `@type`, with its fields beside.",
            "properties": {"@type": {"type": "string"}},
            "required": ["@type"],
            "additionalProperties": True,
        },
    }


def _query_parameter(f: FieldDescriptorProto, description: str, index: _Index) -> Json | None:
    """A request field as a query parameter, or None where the query string cannot carry it."""
    repeated = f.label == _T.LABEL_REPEATED
    if f.type == _T.TYPE_MESSAGE and (f.type_name not in _QUERY_WELL_KNOWN or repeated):
        return None  # nested messages and maps: see the document's description
    parameter: Json = {"name": f.name, "in": "query", "schema": field_schema(f, index)}
    if repeated:
        parameter.update(style="form", explode=True)  # `symbols=A&symbols=B`
    return _with_description(parameter, description)


def _lookup_field(message: _Message, field_path: str, index: _Index) -> tuple[_Message, str]:
    """The message holding the last field of a dotted path, and that field's name."""
    *parents, leaf = field_path.split(".")
    for parent in parents:
        (f,) = (f for f in message.descriptor.field if f.name == parent)
        message = index.messages[f.type_name]
    return message, leaf


def _field(message: _Message, name: str) -> FieldDescriptorProto:
    (f,) = (f for f in message.descriptor.field if f.name == name)
    return f


def _parameters(binding: _Binding, request: _Message, index: _Index) -> list[Json]:
    parameters: list[Json] = []
    bound = path_parameters(binding.path)
    for field_path in bound:
        holder, leaf = _lookup_field(request, field_path, index)
        schema = field_schema(_field(holder, leaf), index)
        path_parameter: Json = {
            "name": field_path,
            "in": "path",
            "required": True,
            "schema": schema,
        }
        parameters.append(_with_description(path_parameter, holder.field_comments.get(leaf, "")))
    if binding.body == "*":
        return parameters  # every other field travels in the body
    for f in request.descriptor.field:
        if f.name in bound or f.name == binding.body:
            continue
        description = request.field_comments.get(f.name, "")
        parameter = _query_parameter(f, description, index)
        if parameter is not None:
            parameters.append(parameter)
    return parameters


def _request_body(binding: _Binding, request: _Message, index: _Index) -> Json | None:
    if not binding.body:
        return None
    if binding.body == "*":
        schema = _ref(binding.method.input_type)
    else:
        f = _field(request, binding.body)
        schema = _with_description(field_schema(f, index), request.field_comments[f.name])
    if binding.method.client_streaming:
        # The transcoder reads a client stream's messages from one JSON array.
        schema = {"type": "array", "items": schema}
        description = "The client stream: a JSON array of request messages, sent in order."
    else:
        description = "The request message; path parameters take precedence over its fields."
    return {
        "required": True,
        "description": description,
        "content": {"application/json": {"schema": schema}},
    }


def _ok_response(binding: _Binding) -> Json:
    schema = _ref(binding.method.output_type)
    if binding.method.server_streaming:
        # Envoy labels the stream application/json; its body is one message per line.
        return {
            "description": "A server stream: newline-delimited JSON, one response message "
            "per line, until the RPC ends. Envoy sends it as `application/json`.",
            "content": {"application/x-ndjson": {"schema": schema}},
        }
    return {"description": "OK", "content": {"application/json": {"schema": schema}}}


def _first_sentence(comment: str) -> str:
    flowed = " ".join(comment.split("\n\n")[0].split())
    return re.split(r"\.(?:\s|$)", flowed, maxsplit=1)[0]


def _operation(binding: _Binding, index: _Index) -> Json:
    request = index.messages[binding.method.input_type]
    operation: Json = {
        "operationId": binding.operation_id,
        "tags": [binding.service],
        "parameters": _parameters(binding, request, index),
        "responses": {
            "200": _ok_response(binding),
            "429": {"$ref": "#/components/responses/RateLimited"},
            "default": {"$ref": "#/components/responses/Error"},
        },
    }
    if binding.comment:
        operation["summary"] = _first_sentence(binding.comment)
        operation["description"] = binding.comment
    body = _request_body(binding, request, index)
    if body is not None:
        operation["requestBody"] = body
    return operation


def _error_responses() -> Json:
    mapping = "\n".join(f"- {code} → {status}" for code, status in GRPC_TO_HTTP)
    return {
        "Error": {
            "description": "The RPC failed: the gRPC status as JSON. The HTTP status follows "
            f"from the gRPC code:\n\n{mapping}",
            "content": {"application/json": {"schema": {"$ref": _SCHEMAS + _STATUS}}},
        },
        "RateLimited": {
            "description": "Refused by the gateway's local rate limit before reaching a "
            "server (a plain-text body from Envoy, not a `google.rpc.Status`).",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
    }


_DESCRIPTION = """\
The REST surface of FinanceLake's gRPC services, as Envoy's gRPC-JSON transcoder serves it \
from each RPC's `google.api.http` rule. Generated from the protos by `make gen`.

- JSON uses the proto field names (`start_time`), and prints fields at their zero value; \
requests also accept lowerCamel names. Unknown query parameters are refused.
- Enums are their value names; 64-bit integers are strings; `bytes` are base64; \
Timestamps are RFC 3339 strings; Durations are strings such as `"1.5s"`; doubles may be \
`"NaN"` or `"Infinity"`.
- Query parameters are the request's top-level scalar, enum, repeated scalar and \
Timestamp/Duration fields not bound in the path; nested message fields are not listed.
- Server-streaming RPCs answer newline-delimited JSON, one message per line. A \
client-streaming RPC takes its messages as one JSON array.
- Errors are a `google.rpc.Status` with the HTTP status mapped from the gRPC code."""


def _info(bindings: list[_Binding]) -> Json:
    # `financelake.marketdata.v1.MarketDataService` -> title root `financelake`, version `v1`.
    packages = sorted({b.service_full_name.rsplit(".", 1)[0] for b in bindings})
    roots = sorted({p.split(".")[0] for p in packages})
    versions = sorted({p.rsplit(".", 1)[-1] for p in packages})
    return {
        "title": f"{' '.join(roots)} REST API",
        "version": "+".join(versions),
        "description": _DESCRIPTION,
    }


def _tags(files: FileDescriptorSet, bindings: list[_Binding]) -> list[Json]:
    wanted = {b.service_full_name for b in bindings}
    tags = []
    for file in files.file:
        comments = _comments(file)
        for number, service in enumerate(file.service):
            if f"{file.package}.{service.name}" in wanted:
                tag = {"name": service.name}
                tags.append(_with_description(tag, comments.get((_FILE_SERVICE, number), "")))
    return sorted(tags, key=lambda t: t["name"])


def build_document(files: FileDescriptorSet) -> Json:
    """The OpenAPI 3.1 document of every RPC with a `google.api.http` rule in `files`."""
    index = build_index(files)
    bindings = http_bindings(files)
    paths: Json = {}
    for binding in bindings:
        operations = paths.setdefault(openapi_path(binding.path), {})
        if binding.verb in operations:
            raise ValueError(f"{binding.verb.upper()} {binding.path} is bound twice")
        operations[binding.verb] = _operation(binding, index)
    roots = sorted({t for b in bindings for t in (b.method.input_type, b.method.output_type)})
    return {
        "openapi": OPENAPI_VERSION,
        "info": _info(bindings),
        "servers": [{"url": SERVER_URL}],
        "tags": _tags(files, bindings),
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": {**component_schemas(roots, index), **_status_schemas()},
            "responses": _error_responses(),
        },
    }


def render(document: Json) -> str:
    """The document as committed: sorted keys, two-space indent, a trailing newline."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
