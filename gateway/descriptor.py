"""The descriptor set Envoy's transcoder loads: the one `make gen` writes, plus the
`google.rpc` error types. `convert_grpc_status` prints an error's details
(`google.protobuf.Any`) as JSON only for types in the set, so `google.rpc.Status` and the
standard details (BadRequest, ErrorInfo, ...) are added from googleapis-common-protos.
"""

from __future__ import annotations

from pathlib import Path

from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import FileDescriptor
from google.rpc import error_details_pb2, status_pb2

# The google.rpc files error details need, each after its imports.
_EXTRA_FILES: tuple[FileDescriptor, ...] = (
    *error_details_pb2.DESCRIPTOR.dependencies,
    error_details_pb2.DESCRIPTOR,
    *status_pb2.DESCRIPTOR.dependencies,
    status_pb2.DESCRIPTOR,
)


def gateway_descriptor_set(source: Path) -> bytes:
    """The serialized set for Envoy."""
    files = descriptor_pb2.FileDescriptorSet.FromString(source.read_bytes())
    present = {file.name for file in files.file}
    for extra in _EXTRA_FILES:
        if extra.name not in present:
            extra.CopyToProto(files.file.add())
            present.add(extra.name)
    return files.SerializeToString()


def write_gateway_descriptor_set(source: Path, target: Path) -> None:
    """Write the set Envoy loads to `target`."""
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(gateway_descriptor_set(source))
