"""Sends spans, logs and metric points to Weir with the real OpenTelemetry
Python SDK and its OTLP exporters, over one transport.

usage: send.py grpc|http ENDPOINT COUNT TAG [RECORD]

Sends COUNT spans (each with attributes of every OTLP type), COUNT log
records and COUNT metric data points (one counter point per attribute set),
all tagged with `test.tag = TAG`, then flushes and shuts the providers down.
Exits non-zero if any export fails.

With RECORD, writes what the SDK exported successfully to that file as JSON
lines, as the SDK saw it (ids in hex, times in ns since the epoch):
  {"signal": "span", "trace_id", "span_id", "start", "end", "name", "i"}
  {"signal": "log", "time", "body", "i", "severity"}
  {"signal": "point", "time", "start", "value", "i"}
"""

import json
import logging
import sys

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader


def exporters(transport, endpoint):
    if transport == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

        return (
            OTLPSpanExporter(endpoint=endpoint, insecure=True),
            OTLPLogExporter(endpoint=endpoint, insecure=True),
            OTLPMetricExporter(endpoint=endpoint, insecure=True),
        )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    return (
        OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces"),
        OTLPLogExporter(endpoint=f"{endpoint}/v1/logs"),
        OTLPMetricExporter(endpoint=f"{endpoint}/v1/metrics"),
    )


def describe_spans(batch):
    for span in batch:
        yield {
            "signal": "span",
            "trace_id": format(span.context.trace_id, "032x"),
            "span_id": format(span.context.span_id, "016x"),
            "start": span.start_time,
            "end": span.end_time,
            "name": span.name,
            "i": span.attributes["i"],
        }


def describe_logs(batch):
    for item in batch:
        record = getattr(item, "log_record", item)
        yield {
            "signal": "log",
            "time": record.timestamp,
            "body": record.body,
            "i": record.attributes["i"],
            "severity": record.severity_number.value,
        }


def describe_metrics(data):
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for point in metric.data.data_points:
                    yield {
                        "signal": "point",
                        "time": point.time_unix_nano,
                        "start": point.start_time_unix_nano,
                        "value": point.value,
                        "i": point.attributes["i"],
                    }


class Checked:
    """Wraps an exporter, remembers whether any export failed and what was
    exported successfully."""

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


def main():
    transport, endpoint, count, tag = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    record = sys.argv[5] if len(sys.argv) > 5 else None
    resource = Resource.create({"service.name": f"py-{transport}", "deployment.environment": "test"})
    span_exp, log_exp, metric_exp = (
        Checked(e, d)
        for e, d in zip(exporters(transport, endpoint), (describe_spans, describe_logs, describe_metrics))
    )

    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(span_exp, max_export_batch_size=100))
    tracer = tracer_provider.get_tracer("weir.e2e", "1.2.3")
    for i in range(count):
        with tracer.start_as_current_span(f"op-{i % 7}") as span:
            span.set_attribute("test.tag", tag)
            span.set_attribute("i", i)
            span.set_attribute("ratio", i / 4)
            span.set_attribute("even", i % 2 == 0)
            span.set_attribute("list", ["a", "b"])
            span.add_event("checkpoint", {"n": i})

    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(log_exp, max_export_batch_size=100))
    logger = logging.getLogger(f"weir.e2e.{transport}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(LoggingHandler(level=logging.DEBUG, logger_provider=logger_provider))
    for i in range(count):
        logger.warning("log line %d", i, extra={"test.tag": tag, "i": i})

    reader = PeriodicExportingMetricReader(metric_exp, export_interval_millis=3_600_000)
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    counter = meter_provider.get_meter("weir.e2e").create_counter("e2e.requests", unit="1")
    for i in range(count):
        counter.add(i + 1, {"test.tag": tag, "i": i})

    ok = tracer_provider.force_flush(30_000) and logger_provider.force_flush(30_000)
    tracer_provider.shutdown()
    logger_provider.shutdown()
    # Shutting the meter provider down collects and exports exactly once.
    meter_provider.shutdown()
    failures = span_exp.failures + log_exp.failures + metric_exp.failures
    if not ok or failures:
        print(f"export failed: flush ok={ok}, failed exports={failures}", file=sys.stderr)
        sys.exit(1)
    if record:
        with open(record, "w") as out:
            for exp in (span_exp, log_exp, metric_exp):
                for line in exp.exported:
                    out.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
