"""Consumes a Kafka topic with confluent-kafka (librdkafka), as a
downstream collector or alert router would, and summarises what it read.

usage: kafka_consume.py BROKERS TOPIC spans|alerts|raw [options]

spans: every message must be an OTLP ExportTraceServiceRequest (protobuf),
decoded with the official opentelemetry-proto classes; counts spans.
alerts: every message must be a JSON object (Weir's alert_event, or
Alertmanager's webhook JSON); keeps each one's kind, status, rule, labels,
version, receiver and key.
raw: counts messages.

options:
  --count N       stop once N spans (spans) or N messages (alerts, raw) are read
  --until STATUS  alerts: stop once a message with this status is read
  --deadline S    give up after S seconds (default 60)
  --group G       consumer group id (default: a fresh one); reads from the
                  earliest offset

Prints a JSON summary on stdout: {"messages", "largest" (the largest
message value, in bytes), "keys" (distinct message
keys, in order of arrival, as text, or `0x` and hex when not UTF-8),
"spans", "mixed_traces" (messages holding spans of more than one trace), "span_ids" (sorted,
hex, with repeats), "names" ({name: count}), "tags" ({test.tag: count}),
"undecodable", "alerts" ([{"kind", "status", "rule", "labels", "version",
"receiver", "key"}], null where a message has no such field)}.
Exits non-zero if the deadline passed before --count / --until was met,
or if a message did not decode.
"""

import argparse
import json
import sys
import time
import uuid

from confluent_kafka import Consumer
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("brokers")
    parser.add_argument("topic")
    parser.add_argument("kind", choices=["spans", "alerts", "raw"])
    parser.add_argument("--count", type=int)
    parser.add_argument("--until")
    parser.add_argument("--deadline", type=float, default=60)
    parser.add_argument("--group", default=f"kafka-consume-{uuid.uuid4()}")
    args = parser.parse_args()

    consumer = Consumer(
        {
            "bootstrap.servers": args.brokers,
            "group.id": args.group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": True,
        }
    )
    consumer.subscribe([args.topic])
    summary = {"messages": 0, "largest": 0, "keys": [], "spans": 0, "mixed_traces": 0, "span_ids": [], "names": {}, "tags": {}, "undecodable": 0, "alerts": []}

    def done():
        if args.until is not None:
            return any(a["status"] == args.until for a in summary["alerts"])
        if args.count is not None:
            return (summary["spans"] if args.kind == "spans" else summary["messages"]) >= args.count
        return False

    deadline = time.monotonic() + args.deadline
    while not done() and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            # Partition EOF and transient errors: librdkafka retries.
            print(f"consumer: {msg.error()}", file=sys.stderr)
            continue
        summary["messages"] += 1
        summary["largest"] = max(summary["largest"], len(msg.value() or b""))
        key = text_or_hex(msg.key() or b"")
        if key not in summary["keys"]:
            summary["keys"].append(key)
        try:
            if args.kind == "spans":
                read_spans(msg.value(), summary)
            elif args.kind == "alerts":
                event = json.loads(msg.value())
                summary["alerts"].append(
                    {
                        "kind": event.get("kind"),
                        "status": event.get("status"),
                        "rule": event.get("rule"),
                        "labels": event.get("labels"),
                        "version": event.get("version"),
                        "receiver": event.get("receiver"),
                        "key": key,
                    }
                )
        except Exception as e:  # noqa: BLE001 - any decoding failure is counted
            print(f"undecodable message at {msg.partition()}/{msg.offset()}: {e}", file=sys.stderr)
            summary["undecodable"] += 1
    consumer.close()
    summary["span_ids"].sort()
    print(json.dumps(summary))
    met = done() if (args.count is not None or args.until is not None) else True
    if not met or summary["undecodable"]:
        print(f"deadline passed: met={met}, undecodable={summary['undecodable']}", file=sys.stderr)
        sys.exit(1)


def text_or_hex(key):
    """A message key as text, or as `0x` and hex when it is not UTF-8."""
    try:
        return key.decode()
    except UnicodeDecodeError:
        return "0x" + key.hex()


def read_spans(value, summary):
    request = ExportTraceServiceRequest()
    request.ParseFromString(value)
    traces = {s.trace_id for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans}
    if len(traces) > 1:
        summary["mixed_traces"] += 1
    for rs in request.resource_spans:
        for ss in rs.scope_spans:
            for span in ss.spans:
                summary["spans"] += 1
                summary["span_ids"].append(span.span_id.hex())
                summary["names"][span.name] = summary["names"].get(span.name, 0) + 1
                for kv in span.attributes:
                    if kv.key == "test.tag":
                        tag = kv.value.string_value
                        summary["tags"][tag] = summary["tags"].get(tag, 0) + 1


if __name__ == "__main__":
    main()
