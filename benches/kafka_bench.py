#!/usr/bin/env python3
"""The Kafka side of benches/compare-kafka.sh: what is in a topic, and how fast
the broker and a plain client go.

Subcommands (each prints one JSON object on stdout):

  offsets BROKER TOPIC            the high watermark of each partition
  drain BROKER TOPIC              waits until the topic stops growing; its
                                  offsets, and how long it kept growing
  count BROKER TOPIC FROM TO      messages, value bytes and spans (every OTLP
                                  protobuf message decoded) between two
                                  offset snapshots (JSON files from `offsets`)
  watch ...                       polls a Weir process's /metrics until its
                                  sink has taken N spans and nothing is in
                                  flight; elapsed time and CPU of Weir and the
                                  broker (see `watch --help`)
  raw-consume BROKER TOPIC        reads the whole topic with a plain
                                  confluent-kafka consumer, decoding nothing
  raw-produce BROKER SRC DST      writes messages copied from SRC to DST with
                                  a plain confluent-kafka producer, acks=all

Needs confluent-kafka and, for `count`, opentelemetry-proto.
"""

import argparse
import json
import os
import re
import sys
import time
import urllib.request

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

TICKS = os.sysconf("SC_CLK_TCK")


def consumer(broker, **extra):
    conf = {
        "bootstrap.servers": broker,
        "group.id": "weir-bench-probe-%d-%d" % (os.getpid(), time.monotonic_ns()),
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": True,
        # tansu holds a fetch this long even when data is waiting (see
        # benches/pipelines/kafka-blackhole.toml); Kafka does not. The same
        # settings as Weir's reading pipelines.
        "fetch.wait.max.ms": 2,
        "max.partition.fetch.bytes": 4 << 20,
    }
    conf.update(extra)
    return Consumer(conf)


def partitions(c, topic):
    meta = c.list_topics(topic, timeout=10)
    t = meta.topics.get(topic)
    if t is None or t.error is not None or not t.partitions:
        raise SystemExit(f"kafka_bench: topic {topic!r} not found ({t.error if t else 'no metadata'})")
    return sorted(t.partitions)


def high_watermarks(c, topic, parts):
    return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)[1] for p in parts}


def cpu_secs(pid):
    """User + system CPU seconds of process `pid` (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def busy_secs():
    """CPU seconds every process of the machine has used (user, nice, system, irq, softirq, steal)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / TICKS


def hwm_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def emit(obj):
    json.dump(obj, sys.stdout)
    sys.stdout.write("\n")


def cmd_offsets(a):
    c = consumer(a.broker)
    try:
        emit({str(p): o for p, o in high_watermarks(c, a.topic, partitions(c, a.topic)).items()})
    finally:
        c.close()


def cmd_drain(a):
    c = consumer(a.broker)
    try:
        parts = partitions(c, a.topic)
        start = last_change = time.monotonic()
        seen = high_watermarks(c, a.topic, parts)
        while True:
            time.sleep(0.25)
            now = high_watermarks(c, a.topic, parts)
            t = time.monotonic()
            if now != seen:
                seen, last_change = now, t
            elif t - last_change >= a.quiet:
                break
            if t - start > a.timeout:
                print(f"kafka_bench: {a.topic} still grows after {a.timeout:.0f} s", file=sys.stderr)
                break
        emit({"offsets": {str(p): o for p, o in seen.items()}, "drain_secs": last_change - start})
    finally:
        c.close()


def span_count(value):
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    req = ExportTraceServiceRequest.FromString(value)
    return sum(len(ss.spans) for rs in req.resource_spans for ss in rs.scope_spans)


def read_range(broker, topic, start, end, on_message, on_assign=None):
    """Calls on_message(msg) for each message of topic from offsets `start` up to `end` (dicts by partition),
    and on_assign() once the partitions are assigned, before the first fetch."""
    todo = {p: (start.get(p, 0), e) for p, e in end.items() if e > start.get(p, 0)}
    if not todo:
        return
    c = consumer(broker, **{"fetch.max.bytes": 52428800})
    try:
        c.assign([TopicPartition(topic, p, s) for p, (s, _) in todo.items()])
        if on_assign is not None:
            on_assign()
        remaining = set(todo)
        idle_since = time.monotonic()
        while remaining:
            msgs = c.consume(num_messages=500, timeout=1.0)
            if not msgs and time.monotonic() - idle_since > 60:
                raise SystemExit(f"kafka_bench: nothing more to read from {topic} in 60 s; missing partitions {sorted(remaining)}")
            for m in msgs:
                idle_since = time.monotonic()
                err = m.error()
                p = m.partition()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        continue
                    raise KafkaException(err)
                if p not in remaining:
                    continue
                if m.offset() >= todo[p][1]:
                    remaining.discard(p)
                    continue
                on_message(m)
                if m.offset() + 1 >= todo[p][1]:
                    remaining.discard(p)
    finally:
        c.close()


def load_offsets(path):
    if path == "-":
        return {}
    with open(path) as f:
        obj = json.load(f)
    obj = obj.get("offsets", obj)
    return {int(p): o for p, o in obj.items()}


def cmd_count(a):
    start, end = load_offsets(a.start), load_offsets(a.end)
    totals = {"messages": 0, "spans": 0, "value_bytes": 0, "undecodable": 0}

    def on_message(m):
        v = m.value() or b""
        totals["messages"] += 1
        totals["value_bytes"] += len(v)
        try:
            totals["spans"] += span_count(v)
        except Exception:
            totals["undecodable"] += 1

    read_range(a.broker, a.topic, start, end, on_message)
    totals["expected_messages"] = sum(max(e - start.get(p, 0), 0) for p, e in end.items())
    emit(totals)


def scrape(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if not line or line[0] == "#":
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)", line)
        if m:
            out.setdefault(m.group(1), []).append((m.group(2) or "", float(m.group(3))))
    return out


def metric(samples, name, component):
    want = f'component="{component}"'
    return sum(v for labels, v in samples.get(name, []) if want in labels)


def cmd_watch(a):
    """Polls until the sink has received a.spans records and the source holds nothing in flight."""
    url = f"http://{a.api}/metrics"
    t_spawn = time.monotonic()
    first = None
    last_progress, last_seen = time.monotonic(), -1.0
    while True:
        try:
            s = scrape(url)
        except OSError:
            s = {}
        now = time.monotonic()
        if not os.path.exists(f"/proc/{a.pid}"):
            raise SystemExit("kafka_bench: Weir exited before reading everything")
        received = metric(s, "weir_component_received_records_total", a.sink)
        messages = metric(s, "weir_kafka_messages_total", a.source)
        in_flight = metric(s, "weir_kafka_in_flight_bytes", a.source)
        if first is None and messages > 0:
            # The first fetch is in: from here on the clock and the CPU count.
            first = {"t": now, "received": received, "messages": messages, "cpu": cpu_secs(a.pid),
                     "broker_cpu": cpu_secs(a.broker_pid), "busy": busy_secs()}
        if received != last_seen:
            last_seen, last_progress = received, now
        if first is not None and received >= a.spans and in_flight == 0:
            done = {"t": now, "cpu": cpu_secs(a.pid), "broker_cpu": cpu_secs(a.broker_pid), "busy": busy_secs()}
            break
        if now - last_progress > a.stall:
            raise SystemExit(f"kafka_bench: no progress for {a.stall:.0f} s ({received:.0f} of {a.spans} spans in the sink, "
                             f"{messages:.0f} messages read, {in_flight:.0f} bytes in flight)")
        time.sleep(a.interval)
    elapsed = max(done["t"] - first["t"], 1e-9)
    spans = received - first["received"]
    emit({
        "spans_total": received,
        "messages_total": messages,
        "spans": spans,
        "elapsed_secs": elapsed,
        "startup_secs": first["t"] - t_spawn,
        "spans_per_sec": spans / elapsed,
        "spans_per_sec_with_startup": received / max(done["t"] - t_spawn, 1e-9),
        "cpu_secs": done["cpu"] - first["cpu"],
        "broker_cpu_secs": done["broker_cpu"] - first["broker_cpu"],
        "busy_secs": done["busy"] - first["busy"],
        "hwm_kb": hwm_kb(a.pid),
    })


def cmd_raw_consume(a):
    c = consumer(a.broker, **{"fetch.max.bytes": 52428800})
    try:
        parts = partitions(c, a.topic)
        end = high_watermarks(c, a.topic, parts)
        messages = value_bytes = 0
        t0 = cpu0 = b0 = busy0 = 0.0

        def on_assign():
            # The clock starts before the first fetch (no group to join here).
            nonlocal t0, cpu0, b0, busy0
            t0, cpu0, b0, busy0 = time.monotonic(), sum(os.times()[:2]), cpu_secs(a.broker_pid), busy_secs()

        def on_message(m):
            nonlocal messages, value_bytes
            messages += 1
            value_bytes += len(m.value() or b"")

        read_range(a.broker, a.topic, {}, end, on_message, on_assign)
        elapsed = max(time.monotonic() - t0, 1e-9)
        emit({"messages": messages, "value_bytes": value_bytes, "elapsed_secs": elapsed,
              "messages_per_sec": messages / elapsed, "client_cpu_secs": sum(os.times()[:2]) - cpu0,
              "broker_cpu_secs": cpu_secs(a.broker_pid) - b0, "busy_secs": busy_secs() - busy0})
    finally:
        c.close()


def cmd_raw_produce(a):
    samples = []
    c = consumer(a.broker)
    try:
        parts = partitions(c, a.src)
        end = high_watermarks(c, a.src, parts)
        # The first messages of each partition, whole.
        start = {p: 0 for p in parts}
        limit = {p: min(e, max(a.samples // len(parts), 1)) for p, e in end.items()}
        read_range(a.broker, a.src, start, limit, lambda m: samples.append(m.value()))
    finally:
        c.close()
    if not samples:
        raise SystemExit(f"kafka_bench: {a.src} is empty; nothing to copy")
    spans_each = [span_count(v) for v in samples]
    p = Producer({"bootstrap.servers": a.broker, "acks": "all", "linger.ms": 5, "compression.type": "none",
                  "queue.buffering.max.kbytes": 65536})
    delivered = failed = spans = 0

    def on_delivery(err, msg, n):
        nonlocal delivered, failed, spans
        if err is None:
            delivered += 1
            spans += n
        else:
            failed += 1

    t0, cpu0, b0, busy0 = time.monotonic(), sum(os.times()[:2]), cpu_secs(a.broker_pid), busy_secs()
    deadline = t0 + a.duration
    i = 0
    while time.monotonic() < deadline:
        v, n = samples[i % len(samples)], spans_each[i % len(samples)]
        try:
            p.produce(a.dst, v, on_delivery=lambda err, msg, n=n: on_delivery(err, msg, n))
            i += 1
        except BufferError:
            p.poll(0.01)
        p.poll(0)
    p.flush(60)
    elapsed = time.monotonic() - t0
    emit({"messages": delivered, "failed": failed, "spans": spans, "elapsed_secs": elapsed,
          "spans_per_sec": spans / elapsed, "messages_per_sec": delivered / elapsed,
          "client_cpu_secs": sum(os.times()[:2]) - cpu0, "broker_cpu_secs": cpu_secs(a.broker_pid) - b0,
          "busy_secs": busy_secs() - busy0})


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("offsets")
    s.add_argument("broker")
    s.add_argument("topic")
    s.set_defaults(fn=cmd_offsets)
    s = sub.add_parser("drain")
    s.add_argument("broker")
    s.add_argument("topic")
    s.add_argument("--quiet", type=float, default=3.0, help="seconds without growth that end the wait")
    s.add_argument("--timeout", type=float, default=120.0)
    s.set_defaults(fn=cmd_drain)
    s = sub.add_parser("count")
    s.add_argument("broker")
    s.add_argument("topic")
    s.add_argument("start", help="offsets JSON file, or - for the beginning")
    s.add_argument("end", help="offsets JSON file")
    s.set_defaults(fn=cmd_count)
    s = sub.add_parser("watch")
    s.add_argument("--api", required=True, help="HOST:PORT of Weir's API")
    s.add_argument("--pid", type=int, required=True, help="Weir's process id")
    s.add_argument("--broker-pid", type=int, required=True)
    s.add_argument("--spans", type=int, required=True, help="spans the sink must receive")
    s.add_argument("--source", default="kafka", help="the kafka source's name")
    s.add_argument("--sink", required=True, help="the sink's name")
    s.add_argument("--interval", type=float, default=0.1)
    s.add_argument("--stall", type=float, default=60.0, help="fail after this long without progress")
    s.set_defaults(fn=cmd_watch)
    s = sub.add_parser("raw-consume")
    s.add_argument("broker")
    s.add_argument("topic")
    s.add_argument("--broker-pid", type=int, required=True)
    s.set_defaults(fn=cmd_raw_consume)
    s = sub.add_parser("raw-produce")
    s.add_argument("broker")
    s.add_argument("src")
    s.add_argument("dst")
    s.add_argument("--duration", type=float, default=20.0)
    s.add_argument("--samples", type=int, default=64, help="messages copied from SRC and written in turn")
    s.add_argument("--broker-pid", type=int, required=True)
    s.set_defaults(fn=cmd_raw_produce)
    a = ap.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
