"""Regenerates gen/ from proto/: the one code generator behind `make gen` and the drift test.

Usage: `python -m financelake.services.codegen generate [--out DIR]` writes
  DIR/python      protobuf messages, grpcio stubs and .pyi   -> import `financelake.gen.*`
  DIR/client      betterproto2 dataclass client               -> import `financelake.client.*`
  DIR/ts          protoc-gen-es TypeScript for the UI
  DIR/descriptor  the FileDescriptorSet Envoy's JSON transcoder loads
  DIR/openapi     the OpenAPI 3.1 document of the REST surface, built from that set
`python -m financelake.services.codegen protodeps` only lays out the third-party protos.

Third-party protos are never committed (buf cannot fetch modules offline): google/api and
google/rpc come from the installed googleapis-common-protos, buf/validate/validate.proto from
the source distribution of the pinned protovalidate release (its wheel has no .proto files),
cached under the settings' cache dir. protoc writes Python imports from proto paths
(`from financelake.common.v1 import ...`); they are rewritten to our single import root.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

import grpc_tools
from google.protobuf.descriptor_pb2 import FileDescriptorSet
from google.protobuf.message import Message

from financelake.services import openapi
from financelake.services.settings import Settings

REPO = Path(__file__).resolve().parent.parent
PROTO = REPO / "proto"
PROTODEPS = REPO / ".build" / "protodeps"
BIN = Path(sys.executable).parent
NODE_BIN = REPO / "node_modules" / ".bin"

# Top-level proto packages whose Python modules live under financelake.gen.
_GEN_ROOTS = ("financelake", "buf", "inference")
_IMPORT = re.compile(rf"^(from|import) ({'|'.join(_GEN_ROOTS)})([.\s])", re.MULTILINE)
_MODULE_NAME = re.compile(
    rf"(BuildTopDescriptorsAndMessages\(DESCRIPTOR, )'({'|'.join(_GEN_ROOTS)})\."
)
_VALIDATE_PROTO = "buf/validate/validate.proto"


def _run(args: list[str], cwd: Path = REPO) -> None:
    # ruff is on PATH for betterproto2's formatter; node for protoc-gen-es.
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{NODE_BIN}{os.pathsep}{os.environ['PATH']}"}
    completed = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if completed.returncode != 0:
        raise SystemExit(f"{' '.join(args[:3])}... failed:\n{completed.stdout}{completed.stderr}")


def our_protos() -> list[str]:
    """Our proto files, relative to proto/, sorted for reproducible output."""
    return sorted(path.relative_to(PROTO).as_posix() for path in PROTO.rglob("*.proto"))


def _download_sdist(name: str, version: str, folder: Path) -> Path:
    """Fetch a source distribution from the package index (PEP 691), checking its sha256.

    pip cannot merely download an sdist: it builds the package's metadata, and for
    protovalidate that means a Rust toolchain.
    """
    index = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/")
    request = urllib.request.Request(
        f"{index}/{name}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        files = json.load(response)["files"]
    filename = f"{name}-{version}.tar.gz"
    (entry,) = (f for f in files if f["filename"] == filename)
    with urllib.request.urlopen(urllib.parse.urljoin(f"{index}/{name}/", entry["url"])) as response:
        content = response.read()
    if hashlib.sha256(content).hexdigest() != entry["hashes"]["sha256"]:
        raise SystemExit(f"{filename}: sha256 does not match the index")
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / filename
    partial = target.with_suffix(".partial")
    partial.write_bytes(content)
    partial.replace(target)
    return target


def _validate_proto_source(cache_dir: Path) -> bytes:
    version = importlib.metadata.version("protovalidate")
    sdist = cache_dir / "protodeps" / f"protovalidate-{version}.tar.gz"
    if not sdist.exists():
        sdist = _download_sdist("protovalidate", version, sdist.parent)
    member = f"protovalidate-{version}/proto/{_VALIDATE_PROTO}"
    with tarfile.open(sdist) as archive:
        extracted = archive.extractfile(member)
        if extracted is None:
            raise SystemExit(f"{sdist} has no {member}")
        return extracted.read()


def lay_out_protodeps(settings: Settings) -> Path:
    """Copy the third-party protos our contracts import into .build/protodeps."""
    import google.api  # the googleapis-common-protos package

    googleapis = Path(next(iter(google.api.__path__))).parent
    if PROTODEPS.exists():
        shutil.rmtree(PROTODEPS)
    for package in ("api", "rpc"):
        for source in (googleapis / package).rglob("*.proto"):
            target = PROTODEPS / "google" / source.relative_to(googleapis)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
    validate = PROTODEPS / _VALIDATE_PROTO
    validate.parent.mkdir(parents=True, exist_ok=True)
    validate.write_bytes(_validate_proto_source(settings.cache_dir))
    return PROTODEPS


def _protoc(out_flags: list[str], files: list[str]) -> None:
    well_known = Path(next(iter(grpc_tools.__path__))) / "_proto"
    includes = [f"-I{PROTO}", f"-I{PROTODEPS}", f"-I{well_known}"]
    _run([sys.executable, "-m", "grpc_tools.protoc", *includes, *out_flags, *files])


def _gen_module(root: str) -> str:
    # financelake/<domain>/v1 moves up to financelake.gen.<domain>.v1; other roots nest whole.
    return "financelake.gen" if root == "financelake" else f"financelake.gen.{root}"


def _rewrite_python_imports(tree: Path) -> None:
    for path in sorted(tree.rglob("*.py*")):
        text = path.read_text()
        text = _IMPORT.sub(lambda m: f"{m[1]} {_gen_module(m[2])}{m[3]}", text)
        text = _MODULE_NAME.sub(lambda m: f"{m[1]}'{_gen_module(m[2])}.", text)
        path.write_text(text)


def _generate_python(out: Path) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        raw = Path(scratch)
        _protoc(
            [f"--python_out={raw}", f"--pyi_out={raw}", f"--grpc_python_out={raw}"],
            [*our_protos(), _VALIDATE_PROTO],
        )
        for stub in raw.rglob("*_pb2_grpc.py"):
            if "class " not in stub.read_text():  # files without services get an empty stub
                stub.unlink()
        _rewrite_python_imports(raw)
        # financelake/<domain>/... becomes <domain>/... under financelake.gen.
        target = out / "python"
        for child in sorted((raw / "financelake").iterdir()):
            shutil.move(str(child), target / child.name)
        for root in _GEN_ROOTS[1:]:
            shutil.move(str(raw / root), target / root)
    for folder in [target, *(p for p in target.rglob("*") if p.is_dir())]:
        (folder / "__init__.py").touch()
    (target / "py.typed").touch()


def _generate_client(out: Path) -> None:
    plugin = BIN / "protoc-gen-python_betterproto2"
    target = out / "client"
    target.mkdir(parents=True)
    _protoc(
        [
            f"--plugin=protoc-gen-python_betterproto2={plugin}",
            f"--python_betterproto2_out={target}",
        ],
        our_protos(),
    )


# Imports that only carry options (validation rules, REST mappings): the browser needs none.
_OPTION_ONLY_IMPORTS = ("buf/validate/", "google/api/")


def _strip_options(message: Message) -> None:
    """Remove every extension option (`buf.validate`, `google.api.http`) below `message`."""
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.name == "options":
            for option, _ in value.ListFields():
                if option.is_extension:
                    value.ClearExtension(option)
            value.DiscardUnknownFields()  # extensions this process has no descriptor for
            if not value.ListFields():
                message.ClearField("options")
        elif field.is_repeated:
            for item in value:
                _strip_options(item)
        else:
            _strip_options(value)


def browser_descriptors(files: FileDescriptorSet) -> FileDescriptorSet:
    """Our contracts without the option-only imports: the UI's generated code embeds each
    file's descriptor, and buf/validate's alone would be ~50 KB of its gzipped bundle."""
    kept = FileDescriptorSet()
    for file in files.file:
        if file.name.startswith(_OPTION_ONLY_IMPORTS):
            continue
        copy = kept.file.add()
        copy.CopyFrom(file)
        del copy.dependency[:]
        copy.dependency.extend(d for d in file.dependency if not d.startswith(_OPTION_ONLY_IMPORTS))
        _strip_options(copy)
    return kept


def _generate_typescript(out: Path) -> None:
    with tempfile.TemporaryDirectory() as folder:
        image = Path(folder) / "financelake.binpb"
        _run([str(NODE_BIN / "buf"), "build", "proto", "-o", str(image)])
        image.write_bytes(
            browser_descriptors(
                FileDescriptorSet.FromString(image.read_bytes())
            ).SerializeToString()
        )
        _run(
            [
                str(NODE_BIN / "buf"),
                "generate",
                "--template",
                "buf.gen.yaml",
                "-o",
                str(out),
                str(image),
            ]
        )


def _generate_descriptor(out: Path) -> None:
    target = out / "descriptor"
    target.mkdir(parents=True)
    _run([str(NODE_BIN / "buf"), "build", "proto", "-o", str(target / "financelake.binpb")])


def _generate_openapi(out: Path) -> None:
    # Built from the descriptor set just written, so it describes exactly what Envoy serves.
    files = FileDescriptorSet.FromString((out / "descriptor" / "financelake.binpb").read_bytes())
    target = out / "openapi"
    target.mkdir(parents=True)
    (target / "financelake.openapi.json").write_text(openapi.render(openapi.build_document(files)))


def generate(out: Path, settings: Settings) -> None:
    """Regenerate everything into `out`, replacing what was there."""
    lay_out_protodeps(settings)
    for part in ("python", "client", "ts", "descriptor", "openapi"):
        if (out / part).exists():
            shutil.rmtree(out / part)
    (out / "python").mkdir(parents=True)
    _generate_python(out)
    _generate_client(out)
    _generate_typescript(out)
    _generate_descriptor(out)
    _generate_openapi(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m financelake.services.codegen")
    commands = parser.add_subparsers(dest="command", required=True)
    generate_command = commands.add_parser("generate", help="regenerate gen/ from proto/")
    generate_command.add_argument("--out", type=Path, default=REPO / "gen")
    commands.add_parser("protodeps", help="lay out third-party protos in .build/protodeps")
    args = parser.parse_args(argv)
    settings = Settings()
    if args.command == "generate":
        generate(args.out.resolve(), settings)
    else:
        lay_out_protodeps(settings)


if __name__ == "__main__":
    main()
