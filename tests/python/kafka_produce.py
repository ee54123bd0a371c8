"""Produces to a Kafka topic with confluent-kafka (librdkafka), as a
collector or an application would: OTLP trace messages built with the
official opentelemetry-proto classes, or garbage.

usage: kafka_produce.py BROKERS TOPIC spans COUNT SPANS TAG [options]
       kafka_produce.py BROKERS TOPIC garbage COUNT [options]
       kafka_produce.py BROKERS TOPIC lines COUNT 0 TAG [options]

spans: COUNT messages, each an ExportTraceServiceRequest (protobuf) of
SPANS spans, every span with attributes `test.tag = TAG` and `seq` (its
number, from FIRST * SPANS on), name `op-{seq % 7}`, resource
`service.name = kafka-producer`. Ids are deterministic: span id
`crc32(TAG) << 32 | seq + 1`, trace id `crc32(TAG)`, 4 zero bytes, then the
message's number (8 bytes), so runs with other tags or FIRSTs never collide.
garbage: COUNT messages that no OTLP decoder takes (`not protobuf #N` and
0xff bytes; the first byte has protobuf wire type 6, which does not exist).
lines: COUNT plain text messages `TAG line N`, as an application logging
straight to Kafka writes them.

options:
  --first N         number of the first message (default 0)
  --pace MS         wait MS milliseconds between messages (default 0)
  --compression C   none | gzip | snappy | lz4 | zstd (default none)
  --header K=V      a header on every message (repeatable)
  --future          spans start and end after the year 2262 (2**63 ns and
                    more), which no nanosecond timestamp column holds

Message keys are the message numbers, so messages spread over partitions.
Prints a JSON summary on stdout: {"messages", "spans", "first",
"id_prefix" (crc32(TAG) in hex, the first 4 bytes of every id), "failed"}.
Exits non-zero if the broker did not acknowledge every message.
"""

import argparse
import json
import sys
import time
import zlib

from confluent_kafka import Producer
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span


def tag_id(tag):
    return zlib.crc32(tag.encode())


def request(tag, number, spans, now):
    """The ExportTraceServiceRequest of message `number`."""
    prefix = tag_id(tag)
    trace_id = prefix.to_bytes(4, "big") + bytes(4) + number.to_bytes(8, "big")
    out = ExportTraceServiceRequest()
    rs = out.resource_spans.add()
    rs.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value="kafka-producer")))
    ss = rs.scope_spans.add()
    ss.scope.name = "weir.kafka-test"
    for j in range(spans):
        seq = number * spans + j
        span = ss.spans.add()
        span.trace_id = trace_id
        span.span_id = ((prefix << 32) | (seq + 1)).to_bytes(8, "big")
        span.name = f"op-{seq % 7}"
        span.kind = Span.SPAN_KIND_SERVER
        span.start_time_unix_nano = now + seq * 1000
        span.end_time_unix_nano = now + seq * 1000 + 500
        span.attributes.append(KeyValue(key="test.tag", value=AnyValue(string_value=tag)))
        span.attributes.append(KeyValue(key="seq", value=AnyValue(int_value=seq)))
    return out.SerializeToString()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("brokers")
    parser.add_argument("topic")
    parser.add_argument("kind", choices=["spans", "garbage", "lines"])
    parser.add_argument("count", type=int)
    parser.add_argument("spans", type=int, nargs="?", default=0)
    parser.add_argument("tag", nargs="?", default="")
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--pace", type=float, default=0)
    parser.add_argument("--compression", default="none")
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("--future", action="store_true")
    args = parser.parse_args()

    producer = Producer(
        {
            "bootstrap.servers": args.brokers,
            "compression.type": args.compression,
            "acks": "all",
            "enable.idempotence": False,
            "message.timeout.ms": 60000,
        }
    )
    failed = []

    def delivered(err, _msg):
        if err is not None:
            failed.append(str(err))

    now = 2**63 if args.future else time.time_ns()
    for number in range(args.first, args.first + args.count):
        if args.kind == "spans":
            value = request(args.tag, number, args.spans, now)
        elif args.kind == "lines":
            value = f"{args.tag} line {number}".encode()
        else:
            value = f"not protobuf #{number} ".encode() + b"\xff" * 12
        headers = [(k, v.encode()) for k, v in (h.split("=", 1) for h in args.header)]
        producer.produce(
            args.topic, value=value, key=str(number).encode(), headers=headers, on_delivery=delivered
        )
        producer.poll(0)
        if args.pace:
            producer.flush(30)
            time.sleep(args.pace / 1000)
    left = producer.flush(60)
    summary = {
        "messages": args.count,
        "spans": args.count * args.spans if args.kind == "spans" else 0,
        "first": args.first,
        "id_prefix": format(tag_id(args.tag), "08x"),
        "failed": len(failed) + left,
    }
    print(json.dumps(summary))
    if failed or left:
        print(f"not delivered: {left} still queued, errors {failed[:5]}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
