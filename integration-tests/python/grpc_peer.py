"""The Python side of the gRPC interop tests (tests/interop).

A gRPC peer instrumented with the OpenTelemetry Python SDK and
opentelemetry-instrumentation-grpc:

  grpc_peer.py --proto DIR --spans FILE serve
      serves interop.Echo on 127.0.0.1 (a free port, printed as
      "PORT <n>" on the first line of stdout) until killed; a request with
      `forward_to` set is forwarded there first, inside the handler, by an
      instrumented client.
  grpc_peer.py --proto DIR --spans FILE call TARGET MESSAGE
      calls interop.Echo/Say at TARGET (host:port) with an instrumented
      client, prints "REPLY <message>" and exits.

Every span is written when it ends (SimpleSpanProcessor) to FILE as one JSON
object a line: trace_id, span_id, parent_id (null for a root),
parent_is_remote, name, kind (SERVER, CLIENT, ...), status (UNSET, OK, ERROR).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
from concurrent import futures

import grpc
from opentelemetry import trace
from opentelemetry.instrumentation.grpc import (
    client_interceptor,
    intercept_channel,
    server_interceptor,
)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)


class JsonLinesExporter(SpanExporter):
    """Appends each ended span to a file as a JSON line, flushed at once."""

    def __init__(self, path):
        self._file = open(path, "a", encoding="utf-8")
        self._lock = threading.Lock()

    def export(self, spans):
        with self._lock:
            for span in spans:
                parent = span.parent
                line = {
                    "trace_id": format(span.context.trace_id, "032x"),
                    "span_id": format(span.context.span_id, "016x"),
                    "parent_id": format(parent.span_id, "016x") if parent else None,
                    "parent_is_remote": bool(parent.is_remote) if parent else False,
                    "name": span.name,
                    "kind": span.kind.name,
                    "status": span.status.status_code.name,
                }
                self._file.write(json.dumps(line) + "\n")
            self._file.flush()
        return SpanExportResult.SUCCESS

    def shutdown(self):
        with self._lock:
            self._file.close()


def generate_stubs(proto_dir):
    """interop_pb2 and interop_pb2_grpc from interop.proto, into a temp dir."""
    out = tempfile.mkdtemp(prefix="tracewire-interop-")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{proto_dir}",
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            os.path.join(proto_dir, "interop.proto"),
        ],
        check=True,
    )
    sys.path.insert(0, out)
    import interop_pb2  # noqa: E402
    import interop_pb2_grpc  # noqa: E402

    return interop_pb2, interop_pb2_grpc


def instrumented_stub(pb2_grpc, target):
    # The instrumentation's own intercept_channel: its client interceptor is
    # not a grpc.*ClientInterceptor.
    channel = intercept_channel(grpc.insecure_channel(target), client_interceptor())
    return channel, pb2_grpc.EchoStub(channel)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--proto", required=True)
    parser.add_argument("--spans", required=True)
    sub = parser.add_subparsers(dest="mode", required=True)
    sub.add_parser("serve")
    call = sub.add_parser("call")
    call.add_argument("target")
    call.add_argument("message")
    args = parser.parse_args()

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(JsonLinesExporter(args.spans)))
    trace.set_tracer_provider(provider)

    pb2, pb2_grpc = generate_stubs(args.proto)

    if args.mode == "call":
        channel, stub = instrumented_stub(pb2_grpc, args.target)
        with channel:
            reply = stub.Say(pb2.EchoRequest(message=args.message), timeout=10)
        print(f"REPLY {reply.message}", flush=True)
        provider.shutdown()
        return

    class Echo(pb2_grpc.EchoServicer):
        def Say(self, request, context):
            message = request.message
            if request.forward_to:
                channel, stub = instrumented_stub(pb2_grpc, request.forward_to)
                with channel:
                    message = stub.Say(
                        pb2.EchoRequest(message=message), timeout=10
                    ).message
            return pb2.EchoReply(message=f"python({message})")

    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=4),
        interceptors=[server_interceptor()],
    )
    pb2_grpc.add_EchoServicer_to_server(Echo(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"PORT {port}", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
