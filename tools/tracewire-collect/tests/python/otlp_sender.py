"""Sends one trace and its log records to `tracewire collect` with the
OpenTelemetry Python SDK, once through each OTLP exporter
(opentelemetry-exporter-otlp-proto-http and -grpc), and prints what it
sent as one JSON object a line (tests/receivers.rs compares the store
with it).

Usage: otlp_sender.py HTTP_BASE_URL GRPC_URL
  e.g. otlp_sender.py http://127.0.0.1:4318 http://127.0.0.1:4317
"""

import json
import sys
import time

from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import (
    OTLPLogExporter as GrpcLogExporter,
)
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http._log_exporter import (
    OTLPLogExporter as HttpLogExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpSpanExporter,
)
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import (
    Link,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)


def hex_id(n, digits):
    return format(n, "0%dx" % digits)


def send(protocol, span_exporter, log_exporter):
    service = "py-" + protocol
    resource = Resource.create({"service.name": service, "deployment.environment": "test"})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(log_exporter))
    tracer = tracer_provider.get_tracer("interop.tracer", "1.0.0")
    logger = logger_provider.get_logger("interop.logger", "2.0.0")

    linked = SpanContext(
        trace_id=0x11112222333344445555666677778888,
        span_id=0x0102030405060708,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    logs = []
    with tracer.start_as_current_span(
        "GET /checkout",
        kind=SpanKind.SERVER,
        attributes={
            "http.request.method": "GET",
            "http.response.status_code": 200,
            "ratio": 0.5,
            "cached": True,
            "tags": ["a", "b"],
        },
    ) as root:
        with tracer.start_as_current_span(
            "charge card",
            kind=SpanKind.CLIENT,
            links=[Link(linked, {"link.reason": "retry of"})],
        ) as child:
            child.set_attribute("payment.amount", 42)
            child.add_event("retry", {"attempt": 2})
            stamp = time.time_ns()
            logger.emit(
                timestamp=stamp,
                severity_number=SeverityNumber.ERROR,
                severity_text="ERROR",
                body={"message": "card declined", "code": 51},
                attributes={"order.id": "o-7"},
            )
            logs.append(
                {
                    "time_unix_nano": stamp,
                    "severity_number": 17,
                    "severity_text": "ERROR",
                    "body": {"message": "card declined", "code": 51},
                    "attributes": {"order.id": "o-7"},
                    "span_id": hex_id(child.get_span_context().span_id, 16),
                }
            )
            child.set_status(Status(StatusCode.ERROR, "card declined"))
        stamp = time.time_ns()
        logger.emit(
            timestamp=stamp,
            severity_number=SeverityNumber.INFO,
            severity_text="INFO",
            body="checkout done",
        )
        logs.append(
            {
                "time_unix_nano": stamp,
                "severity_number": 9,
                "severity_text": "INFO",
                "body": "checkout done",
                "attributes": {},
                "span_id": hex_id(root.get_span_context().span_id, 16),
            }
        )
        root.set_status(Status(StatusCode.OK))

    def span_json(span, parent):
        return {
            "span_id": hex_id(span.get_span_context().span_id, 16),
            "parent_span_id": parent,
            "name": span.name,
            "start_unix_nano": span.start_time,
            "end_unix_nano": span.end_time,
            "events": [
                {"name": e.name, "time_unix_nano": e.timestamp, "attributes": dict(e.attributes)}
                for e in span.events
            ],
        }

    trace_id = hex_id(root.get_span_context().trace_id, 32)
    sent = {
        "protocol": protocol,
        "service": service,
        "trace_id": trace_id,
        "spans": [
            span_json(root, None),
            span_json(child, hex_id(root.get_span_context().span_id, 16)),
        ],
        "logs": logs,
    }
    tracer_provider.force_flush()
    logger_provider.force_flush()
    tracer_provider.shutdown()
    logger_provider.shutdown()
    print(json.dumps(sent), flush=True)


def main():
    http, grpc = sys.argv[1], sys.argv[2]
    send(
        "http",
        HttpSpanExporter(endpoint=http + "/v1/traces", timeout=10),
        HttpLogExporter(endpoint=http + "/v1/logs", timeout=10),
    )
    send(
        "grpc",
        GrpcSpanExporter(endpoint=grpc, insecure=True, timeout=10),
        GrpcLogExporter(endpoint=grpc, insecure=True, timeout=10),
    )


if __name__ == "__main__":
    main()
