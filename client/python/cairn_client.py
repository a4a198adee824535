"""A minimal Cairn client in Python, written from proto/cairn/v1/cairn.proto alone.

It shows that any gRPC language can use Cairn: the stubs are generated from the .proto
with protoc and the gRPC Python plugin (Debian: protobuf-compiler, protobuf-compiler-grpc),
and run on grpcio (Debian: python3-grpcio, python3-protobuf). Typed errors come from the
ErrorDetail message in the `cairn-error-bin` trailing metadata, as the proto describes.

    python3 cairn_client.py --proto PROTO_DIR --server HOST:PORT [--stream NAME] [--count N]

generates the stubs into a temporary directory, creates the stream (if needed), appends
records (by partition and by key), reads them back, provokes two typed errors, and prints
what it did as one JSON object on stdout.
"""

import argparse
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

import grpc

ERROR_DETAIL_KEY = "cairn-error-bin"
# NOT_LEADER redirects followed per call before giving up.
MAX_REDIRECTS = 5


def generate_stubs(proto_dir, out_dir):
    """Runs protoc with the gRPC Python plugin; returns the importable package path."""
    plugin = shutil.which("grpc_python_plugin")
    if shutil.which("protoc") is None or plugin is None:
        raise RuntimeError(
            "protoc and grpc_python_plugin are needed: "
            "apt-get install -y protobuf-compiler protobuf-compiler-grpc"
        )
    subprocess.run(
        [
            "protoc",
            "-I",
            proto_dir,
            "--python_out=" + out_dir,
            "--grpc_python_out=" + out_dir,
            "--plugin=protoc-gen-grpc_python=" + plugin,
            "cairn/v1/cairn.proto",
        ],
        check=True,
    )
    # protoc writes cairn/v1/cairn_pb2.py without package markers.
    for d in ("cairn", os.path.join("cairn", "v1")):
        open(os.path.join(out_dir, d, "__init__.py"), "a").close()
    sys.path.insert(0, out_dir)
    return (
        importlib.import_module("cairn.v1.cairn_pb2"),
        importlib.import_module("cairn.v1.cairn_pb2_grpc"),
    )


class CairnError(Exception):
    """A failed call: the ErrorDetail's code name and facts, and the gRPC status."""

    def __init__(self, status, code, message, detail):
        super().__init__("%s: %s" % (code, message))
        self.status = status
        self.code = code
        self.detail = detail


class Client:
    def __init__(self, pb, pb_grpc, server):
        self.pb = pb
        self.pb_grpc = pb_grpc
        self.channels = {}
        self.server = server
        # (stream, partition) -> the address that last accepted an append there: only the
        # leader does, so reads sent there see our own appends (a follower may lag).
        self.leaders = {}

    def _stubs(self, address):
        if address not in self.channels:
            ch = grpc.insecure_channel(address)
            self.channels[address] = (
                ch,
                self.pb_grpc.StreamServiceStub(ch),
                self.pb_grpc.AdminServiceStub(ch),
            )
        return self.channels[address]

    def _error(self, err):
        """The CairnError of a grpc.RpcError, from its trailer when present."""
        for key, value in err.trailing_metadata() or ():
            if key == ERROR_DETAIL_KEY:
                d = self.pb.ErrorDetail.FromString(value)
                return CairnError(err.code(), self.pb.ErrorCode.Name(d.code), d.message, d)
        return CairnError(err.code(), err.code().name, err.details(), None)

    def call(self, service, method, request, address=None):
        """Calls `method`, following NOT_LEADER redirects; returns (response, address)."""
        address = address or self.server
        for _ in range(MAX_REDIRECTS):
            stub = self._stubs(address)[1 if service == "stream" else 2]
            try:
                return getattr(stub, method)(request, timeout=15), address
            except grpc.RpcError as rpc_err:
                e = self._error(rpc_err)
                if e.code == "NOT_LEADER" and e.detail.leader_address:
                    address = e.detail.leader_address
                    continue
                raise e
        raise RuntimeError("too many NOT_LEADER redirects")

    def create_stream(self, name, partitions):
        req = self.pb.CreateStreamRequest(name=name, config=self.pb.StreamConfig(partitions=partitions))
        try:
            return self.call("admin", "CreateStream", req)[0]
        except CairnError as e:
            if e.code != "STREAM_EXISTS":
                raise
            return self.call("admin", "DescribeStream", self.pb.DescribeStreamRequest(name=name))[0]

    def append(self, stream, records, partition=None, key=None):
        req = self.pb.AppendRequest(stream=stream, records=self.pb.RecordList(records=records))
        if key is not None:
            req.partition_key = key
        else:
            req.partition = partition
        res, address = self.call("stream", "Append", req, self.leaders.get((stream, partition)))
        self.leaders[(stream, res.partition)] = address
        return res

    def read(self, stream, partition, offset, linearizable=False):
        """Decoded records from `offset`; linearizable reads are served by the leader (redirected)."""
        req = self.pb.ReadRequest(
            stream=stream, partition=partition, offset=offset, decode=True, linearizable=linearizable
        )
        return self.call("stream", "Read", req, self.leaders.get((stream, partition)))[0]

    def close(self):
        for ch, _, _ in self.channels.values():
            ch.close()


def record_json(r):
    return {
        "offset": r.offset,
        "key": r.key.decode() if r.HasField("key") else None,
        "value": r.value.decode() if r.HasField("value") else None,
        "headers": {h.key: (h.value.decode() if h.HasField("value") else None) for h in r.headers},
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--proto", required=True, help="the directory holding cairn/v1/cairn.proto")
    ap.add_argument("--server", required=True)
    ap.add_argument("--stream", default="py")
    ap.add_argument("--count", type=int, default=10)
    ap.add_argument("--read-only", action="store_true", help="only read partition 0 of the stream")
    args = ap.parse_args()

    out_dir = tempfile.mkdtemp(prefix="cairn-py-stubs-")
    try:
        pb, pb_grpc = generate_stubs(args.proto, out_dir)
        c = Client(pb, pb_grpc, args.server)
        result = {}
        if args.read_only:
            # Nothing appended by us: a linearizable read sees everything committed.
            got = c.read(args.stream, 0, 0, linearizable=True)
            result["read"] = [record_json(r) for r in got.records]
            print(json.dumps(result))
            return
        info = c.create_stream(args.stream, 2)
        result["partitions"] = len(info.partitions)
        records = [
            pb.Record(value=("py-%d" % i).encode(), headers=[pb.Header(key="lang", value=b"python")])
            for i in range(args.count)
        ]
        # A tombstone too: an absent value is not an empty one.
        records.append(pb.Record(key=b"gone"))
        res = c.append(args.stream, records, partition=0)
        result["append"] = {"partition": res.partition, "base": res.base_offset, "last": res.last_offset}
        got = c.read(args.stream, 0, res.base_offset)
        result["read"] = [record_json(r) for r in got.records]
        result["high_watermark"] = got.high_watermark
        result["keyed"] = {}
        for k in ("apple", "banana", "cherry", "date"):
            r = c.append(args.stream, [pb.Record(key=k.encode(), value=("fruit " + k).encode())], key=k.encode())
            result["keyed"][k] = {"partition": r.partition, "offset": r.base_offset}
        # Typed errors, read from the trailer.
        errors = {}
        try:
            c.read(args.stream, 0, got.high_watermark + 100)
        except CairnError as e:
            errors["out_of_range"] = {
                "status": e.status.name,
                "code": e.code,
                "log_start_offset": e.detail.log_start_offset,
                "high_watermark": e.detail.high_watermark,
            }
        try:
            c.append("no-such-stream", records[:1], partition=0)
        except CairnError as e:
            errors["not_found"] = {"status": e.status.name, "code": e.code}
        result["errors"] = errors
        print(json.dumps(result))
        c.close()
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
