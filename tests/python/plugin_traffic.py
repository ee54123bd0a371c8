"""Sends the traffic the first-party plugins' end-to-end tests need to Weir,
with the real OpenTelemetry Python SDK and its OTLP/HTTP protobuf exporters.

usage: plugin_traffic.py ENDPOINT traces|logs COUNT RECORD

traces: COUNT traces of service `shop`, each a SERVER span `GET /checkout`
  (attributes `http.route`, `client.address` = 10.0.<i % 4>.<i % 250>) with
  two children, CLIENT `SELECT orders` and INTERNAL `charge`; in every
  trace with i % 10 == 3 `charge` ends with status ERROR.
logs: COUNT WARNING log records of service `shop` whose bodies carry an
  e-mail address, a Luhn-valid card number and an order id that is not
  one, with attribute `user.email`.

Writes what the SDK exported successfully to RECORD as JSON lines:
  {"signal": "span", "trace_id", "span_id", "name", "kind", "error", "duration_ns"}
  {"signal": "log", "body", "email"}
Exits non-zero if any export fails.
"""

import json
import logging
import sys

from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode


class Checked:
    """Wraps an exporter; counts failed exports and keeps what succeeded."""

    def __init__(self, inner, describe):
        self.inner = inner
        self.describe = describe
        self.failures = 0
        self.exported = []

    def export(self, batch, *args, **kwargs):
        result = self.inner.export(batch, *args, **kwargs)
        if getattr(result, "name", "SUCCESS") != "SUCCESS":
            self.failures += 1
        else:
            self.exported.extend(self.describe(batch))
        return result

    def __getattr__(self, name):
        return getattr(self.inner, name)


def describe_spans(batch):
    for span in batch:
        yield {
            "signal": "span",
            "trace_id": format(span.context.trace_id, "032x"),
            "span_id": format(span.context.span_id, "016x"),
            "name": span.name,
            "kind": span.kind.name,
            "error": span.status.status_code == StatusCode.ERROR,
            "duration_ns": span.end_time - span.start_time,
        }


def describe_logs(batch):
    for item in batch:
        record = getattr(item, "log_record", item)
        yield {"signal": "log", "body": record.body, "email": record.attributes["user.email"]}


def traces(endpoint, count, resource):
    exporter = Checked(OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces"), describe_spans)
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(exporter, max_export_batch_size=256))
    tracer = provider.get_tracer("weir.plugins.e2e")
    for i in range(count):
        attributes = {"http.route": "/checkout", "client.address": f"10.0.{i % 4}.{i % 250}"}
        with tracer.start_as_current_span("GET /checkout", kind=SpanKind.SERVER, attributes=attributes):
            with tracer.start_as_current_span("SELECT orders", kind=SpanKind.CLIENT):
                pass
            with tracer.start_as_current_span("charge") as charge:
                if i % 10 == 3:
                    charge.set_status(Status(StatusCode.ERROR, "card declined"))
    ok = provider.force_flush(60_000)
    provider.shutdown()
    return exporter, ok


def logs(endpoint, count, resource):
    exporter = Checked(OTLPLogExporter(endpoint=f"{endpoint}/v1/logs"), describe_logs)
    provider = LoggerProvider(resource=resource)
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter, max_export_batch_size=256))
    logger = logging.getLogger("weir.plugins.e2e")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(LoggingHandler(level=logging.DEBUG, logger_provider=provider))
    for i in range(count):
        email = f"ana.{i}@example.com"
        logger.warning(
            "user %s paid order 4111111111111112 with card 4111 1111 1111 1111",
            email,
            extra={"user.email": email},
        )
    ok = provider.force_flush(60_000)
    provider.shutdown()
    return exporter, ok


def main():
    endpoint, what, count, record = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    resource = Resource.create({"service.name": "shop", "service.namespace": "retail"})
    exporter, ok = {"traces": traces, "logs": logs}[what](endpoint, count, resource)
    if not ok or exporter.failures:
        print(f"export failed: flush ok={ok}, failed exports={exporter.failures}", file=sys.stderr)
        sys.exit(1)
    with open(record, "w") as out:
        for line in exporter.exported:
            out.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
