//! The `kafka` source: a consumer group member that turns messages into
//! batches and stores each message's offset only once the pipeline is done
//! with it.
//!
//! One task owns the consumer: it reads messages, has them decoded
//! ([`decode`]) on blocking threads, a few at once, takes the results in
//! the order the messages came, gathers their records into batches
//! ([`batcher`]) and tracks which offsets may be committed ([`offsets`]). A second task
//! converts batches to rows, sends them and waits for their
//! acknowledgements ([`deliver`]). librdkafka commits the stored offsets
//! every `commit_interval`; they are also committed before partitions are
//! revoked and when the source stops ([`context`]).

mod batcher;
pub mod config;
mod context;
mod decode;
mod deliver;
mod offsets;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message as _, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use regex::Regex;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::{info, warn};
use weir_core::{ComponentError, Source, SourceContext};

pub use config::{Encoding, InitialOffset, KafkaSourceConfig, TopicConfig, TopicSignal};

use batcher::{Batcher, Outgoing, Request};
use context::{Rebalanced, commit_stored};
use decode::{Attach, Decoded, Message, OwnedMessage};
use deliver::{Deliver, Finished};
use offsets::{Offsets, Token};

/// How long a stopping source waits for the acknowledgements of what it
/// has sent before it commits what is finished and returns.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Messages handed to the decoding threads at once, per core (one thread
/// per core decodes them in order; the others wait their turn). Results
/// are taken in the order the messages came: with two per core, a message
/// slower than the others left cores idle behind it (4 gave 3-5 % more than
/// 2 side by side). When each message had a blocking thread of its own,
/// all of them runnable at once, the consumer loop had nothing being
/// decoded 10-15 % of the time: fetches and hand-offs waited for a core
/// behind the decodes. With one thread per core (first tried as a gate of
/// one running decode per core) the loop had all its messages handed out
/// about 90 % of the time, and the source read 15-25 % more spans/s.
const DECODING_PER_CORE: usize = 4;

/// How often a failing partition or consumer is logged at most.
const LOG_EVERY: Duration = Duration::from_secs(60);

/// A message of this many records or more is a batch of its own (or of
/// half of `max_batch_records`, if that is fewer): it is already as large a
/// batch as an OTLP client sends, and putting such messages together
/// copied all their rows once more for nothing (about a tenth of the
/// source's CPU reading 512-span messages).
const ALONE_RECORDS: usize = 512;

/// Where a topic's messages go: its signal and encoding.
#[derive(Debug, Clone, Copy)]
struct Route {
    signal: TopicSignal,
    encoding: Encoding,
}

/// A `kafka` source: its consumer, made (and its settings checked by
/// librdkafka) when the pipeline is built; it connects once it runs.
pub struct KafkaSource {
    name: Arc<str>,
    config: KafkaSourceConfig,
    exact: HashMap<String, Route>,
    patterns: Vec<(Regex, Route)>,
    consumer: StreamConsumer<context::SourceContext>,
    dead_letters: DeadLetters,
}

impl KafkaSource {
    /// Checks `config` (see [`KafkaSourceConfig`]) and makes the consumer;
    /// a setting librdkafka refuses is an error here, before anything runs.
    pub fn new(name: &str, config: KafkaSourceConfig) -> Result<Self, ComponentError> {
        let mut exact = HashMap::new();
        let mut patterns = Vec::new();
        for t in &config.topics {
            let route = Route {
                signal: t.signal,
                encoding: t.encoding,
            };
            if t.topic.starts_with('^') {
                let re = Regex::new(&t.topic).map_err(|e| {
                    ComponentError::config(name, format!("topic pattern `{}`: {e}", t.topic))
                })?;
                patterns.push((re, route));
            } else {
                exact.insert(t.topic.clone(), route);
            }
        }
        Ok(KafkaSource {
            consumer: consumer(name, &config)?,
            dead_letters: dead_letters(name, &config)?,
            name: Arc::from(name),
            config,
            exact,
            patterns,
        })
    }
}

/// The consumer of `c`, with the settings Weir's guarantees rest on.
fn consumer(
    name: &str,
    c: &KafkaSourceConfig,
) -> Result<StreamConsumer<context::SourceContext>, ComponentError> {
    let mut cfg = crate::client::config(name, &c.brokers, &c.librdkafka)?;
    cfg.set("group.id", &c.group_id)
        .set("enable.auto.commit", "true")
        .set("enable.auto.offset.store", "false")
        .set(
            "auto.commit.interval.ms",
            c.commit_interval.as_millis().max(1).to_string(),
        )
        .set(
            "auto.offset.reset",
            match c.initial_offset {
                InitialOffset::Earliest => "earliest",
                InitialOffset::Latest => "latest",
            },
        )
        .set("enable.partition.eof", "false");
    // What librdkafka prefetches counts towards the memory held: a quarter
    // of max_in_flight, unless set.
    if !c.librdkafka.contains_key("queued.max.messages.kbytes") {
        let kb = (c.max_in_flight / 4 / 1024).clamp(1024, 2_097_151);
        cfg.set("queued.max.messages.kbytes", kb.to_string());
    }
    // Once that prefetch queue is full, librdkafka waits this long before
    // it fetches again (1 s by default): a consumer that drains the queue
    // faster than that then idles for the rest of the second, which capped
    // the source at a fraction of what it decodes. A short wait costs one
    // check of the queue each time.
    if !c.librdkafka.contains_key("fetch.queue.backoff.ms") {
        cfg.set("fetch.queue.backoff.ms", "10");
    }
    if !c.librdkafka.contains_key("statistics.interval.ms") {
        cfg.set("statistics.interval.ms", "5000");
    }
    cfg.create_with_context(context::SourceContext::new(name))
        .map_err(|e| ComponentError::config(name, format!("cannot make a Kafka consumer: {e}")))
}

/// The producer and topic undecodable messages are copied to, if any.
type DeadLetters = Option<(FutureProducer<crate::client::LogContext>, String)>;

fn dead_letters(name: &str, c: &KafkaSourceConfig) -> Result<DeadLetters, ComponentError> {
    let Some(topic) = &c.dead_letter_topic else {
        return Ok(None);
    };
    let producer = crate::client::config(name, &c.brokers, &c.librdkafka)?
        .set("acks", "all")
        .create_with_context(crate::client::LogContext {
            component: name.to_string(),
        })
        .map_err(|e| {
            ComponentError::config(name, format!("cannot make the dead-letter producer: {e}"))
        })?;
    Ok(Some((producer, topic.clone())))
}

#[async_trait]
impl Source for KafkaSource {
    async fn run(self: Box<Self>, cx: SourceContext) -> Result<(), ComponentError> {
        let consumer = &self.consumer;
        let topics: Vec<&str> = self
            .config
            .topics
            .iter()
            .map(|t| t.topic.as_str())
            .collect();
        consumer.subscribe(&topics).map_err(|e| {
            ComponentError::config(&*self.name, format!("cannot subscribe to {topics:?}: {e}"))
        })?;
        info!(component = %self.name, brokers = %self.config.brokers, group = %self.config.group_id,
            topics = ?topics, "kafka consumer started");

        let decoders = rayon::ThreadPoolBuilder::new()
            .num_threads(cores())
            .thread_name(|i| format!("kafka-decode-{i}"))
            .build()
            .map_err(|e| {
                ComponentError::internal(
                    &*self.name,
                    format!("cannot start the decoding threads: {e}"),
                )
            })?;
        let (finished_tx, finished_rx) = mpsc::unbounded_channel();
        let (batches_tx, batches_rx) = mpsc::channel::<Outgoing>(2);
        let sender = tokio::spawn(deliver::run(
            batches_rx,
            Deliver {
                name: self.name.clone(),
                output: cx.output,
                finished: finished_tx.clone(),
                shutdown: cx.shutdown.clone(),
            },
        ));
        let mut state = State {
            source: &self,
            consumer,
            attach: Arc::new(Attach {
                metadata: self.config.metadata,
                headers: self.config.headers.clone(),
            }),
            decoders,
            decoding: VecDeque::new(),
            max_decoding: cores() * DECODING_PER_CORE,
            offsets: Offsets::default(),
            batcher: Batcher::new(self.config.max_batch_records, self.config.batch_timeout),
            ready: VecDeque::new(),
            in_flight: 0,
            paused: false,
            finished_tx,
            topics: HashMap::new(),
            in_flight_gauge: crate::metrics::in_flight(&self.name),
            last_logged: HashMap::new(),
        };
        state.consume(finished_rx, &batches_tx, &cx.shutdown).await;
        drop(batches_tx);
        // The delivery task holds the pipeline's output: stopping it lets
        // the pipeline close behind this source.
        sender.abort();
        let _ = sender.await;
        info!(component = %self.name, "kafka consumer stopped");
        Ok(())
    }
}

/// A topic the source has read from: its name (shared by the tokens of its
/// messages), its route, and its metric handles.
struct SeenTopic {
    name: Arc<str>,
    route: Option<Route>,
    messages: metrics::Counter,
    read_bytes: metrics::Counter,
}

/// A message being decoded on one of the source's decoding threads.
struct Decoding {
    topic: Arc<str>,
    token: Token,
    bytes: usize,
    job: oneshot::Receiver<Result<Done, Panicked>>,
}

/// Decoding a message panicked.
#[derive(Debug)]
struct Panicked;

impl std::fmt::Display for Panicked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the decoder panicked")
    }
}

/// The cores this process may use.
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// A message decoded, and what it became.
type Done = (OwnedMessage, Result<Ready, String>);

/// What a decoded message became.
enum Ready {
    /// Records to gather with other messages' into a batch.
    Decoded(Decoded),
    /// A message large enough to be a batch alone ([`ALONE_RECORDS`], or
    /// half of `max_batch_records`), already converted to rows
    /// ([`Request::Rows`]) on the thread that decoded it: its records never
    /// cross threads.
    Rows(Request),
}

impl Ready {
    /// `decoded` converted at once when it holds at least `alone` records.
    fn of(decoded: Decoded, alone: usize) -> Self {
        if decoded.records() < alone {
            return Ready::Decoded(decoded);
        }
        let request = match decoded {
            Decoded::Spans(rows) => Request::Spans(vec![rows]),
            Decoded::Logs(r) => Request::Logs(r),
            Decoded::Metrics(r) => Request::Metrics(r),
            line @ Decoded::Line(_) => return Ready::Decoded(line),
        };
        Ready::Rows(Request::Rows(request.signal(), request.convert()))
    }
}

/// The fewest records that make a message a batch of its own: half of
/// `max_batch_records`, at most [`ALONE_RECORDS`].
fn alone(max_batch_records: usize) -> usize {
    max_batch_records.div_ceil(2).clamp(1, ALONE_RECORDS)
}

/// The result of the oldest message being decoded (waits forever when
/// none is).
async fn oldest(decoding: &mut VecDeque<Decoding>) -> Result<Done, Panicked> {
    match decoding.front_mut() {
        // A job dropped unsent has panicked too (the pool is gone).
        Some(d) => (&mut d.job).await.unwrap_or(Err(Panicked)),
        None => std::future::pending().await,
    }
}

/// The consumer loop's state.
struct State<'a> {
    source: &'a KafkaSource,
    consumer: &'a StreamConsumer<context::SourceContext>,
    /// The Kafka attributes added to what messages carry.
    attach: Arc<Attach>,
    /// The threads messages are decoded on, one per core, taking messages
    /// in the order they were read ([`DECODING_PER_CORE`] per core wait or
    /// run at once).
    decoders: rayon::ThreadPool,
    /// Messages being decoded, in the order they were read.
    decoding: VecDeque<Decoding>,
    /// The most messages decoded at once.
    max_decoding: usize,
    offsets: Offsets,
    batcher: Batcher,
    ready: VecDeque<Outgoing>,
    /// Message bytes read and not yet finished.
    in_flight: usize,
    paused: bool,
    finished_tx: mpsc::UnboundedSender<Finished>,
    /// The topics seen.
    topics: HashMap<String, SeenTopic>,
    /// `weir_kafka_in_flight_bytes` of this source.
    in_flight_gauge: metrics::Gauge,
    /// When each partition (or the consumer, partition -1) last logged a
    /// problem, and how many it kept quiet since.
    last_logged: HashMap<(String, i32), (Instant, u64)>,
}

impl State<'_> {
    async fn consume(
        &mut self,
        mut finished: mpsc::UnboundedReceiver<Finished>,
        batches: &mpsc::Sender<Outgoing>,
        shutdown: &weir_core::Shutdown,
    ) {
        let consumer = self.consumer;
        loop {
            let linger = self.batcher.deadline();
            tokio::select! {
                biased;
                _ = shutdown.wait() => break,
                Some(f) = finished.recv() => self.finish(f),
                permit = batches.reserve(), if !self.ready.is_empty() => {
                    let Ok(permit) = permit else { break };
                    if let Some(out) = self.ready.pop_front() {
                        permit.send(out);
                    }
                }
                _ = sleep_until(linger), if linger.is_some() => {
                    let due = self.batcher.take_due(Instant::now());
                    self.ready.extend(due);
                }
                // Paused, nothing may arrive to look again: look as often
                // as memory is read.
                _ = tokio::time::sleep(weir_core::memory::CHECK_INTERVAL), if self.paused => {}
                done = oldest(&mut self.decoding), if !self.decoding.is_empty() => {
                    self.decoded(done);
                }
                message = consumer.recv(), if self.decoding.len() < self.max_decoding => {
                    // A rebalance seen in the same poll as this message
                    // comes first: the message belongs to the new
                    // assignment.
                    self.rebalances();
                    match message {
                        Ok(m) => self.read(&m),
                        Err(e) => self.consumer_error(e),
                    }
                }
            }
            self.rebalances();
            self.regulate();
            self.store();
        }
        // Stopping: take what is being decoded, send what is gathered, wait
        // a while for what is out, commit what is finished.
        while !self.decoding.is_empty() {
            let done = oldest(&mut self.decoding).await;
            self.decoded(done);
        }
        let all = self.batcher.take_all();
        self.ready.extend(all);
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        while self.offsets.open() > 0 || !self.ready.is_empty() {
            tokio::select! {
                biased;
                Some(f) = finished.recv() => self.finish(f),
                permit = batches.reserve(), if !self.ready.is_empty() => {
                    let Ok(permit) = permit else { break };
                    if let Some(out) = self.ready.pop_front() {
                        permit.send(out);
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {
                    warn!(component = %self.source.name, messages = self.offsets.open(),
                        "kafka: stopping before every message was acknowledged; \
                         those are read again at the next start");
                    break;
                }
            }
            self.store();
        }
        commit_stored(&self.source.name, self.consumer, CommitMode::Sync);
    }

    /// Decodes one message and adds its records to a batch.
    fn read(&mut self, m: &rdkafka::message::BorrowedMessage<'_>) {
        let seen = self.topic(m.topic());
        let (topic, route) = (seen.name.clone(), seen.route);
        let value = m.payload().unwrap_or_default();
        let bytes = value.len();
        seen.messages.increment(1);
        seen.read_bytes.increment(bytes as u64);
        let token = self.offsets.read(&topic, m.partition(), m.offset());
        self.in_flight += bytes;
        let headers: Vec<(&str, &[u8])> = m
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| (h.key, h.value.unwrap_or_default()))
                    .collect()
            })
            .unwrap_or_default();
        let message = Message {
            topic: &topic,
            partition: m.partition(),
            offset: m.offset(),
            key: m.key(),
            value,
            headers,
            timestamp_ms: m.timestamp().to_millis(),
        };
        let Some(route) = route else {
            // Subscribed by a pattern that matched, yet no route: cannot
            // happen, but never stall on it.
            self.undecodable(&message, token, "no topic entry matches this topic".into());
            return;
        };
        let owned = OwnedMessage::of(&message, topic.clone());
        let attach = self.attach.clone();
        let max_decoded =
            usize::try_from(self.source.config.max_decoded_message_size).unwrap_or(usize::MAX);
        let alone = alone(self.source.config.max_batch_records);
        let (done, job) = oneshot::channel();
        self.decoders.spawn_fifo(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                decode::decode(
                    &owned.view(),
                    route.signal,
                    route.encoding,
                    &attach,
                    max_decoded,
                )
                .map(|decoded| Ready::of(decoded, alone))
            }));
            // The loop is gone only when the source stops.
            let _ = done.send(result.map(|r| (owned, r)).map_err(|_| Panicked));
        });
        self.decoding.push_back(Decoding {
            topic,
            token,
            bytes,
            job,
        });
    }

    /// Takes the oldest decoded message: its records join a batch, or it
    /// is undecodable.
    fn decoded(&mut self, done: Result<Done, Panicked>) {
        let Some(Decoding {
            topic,
            token,
            bytes,
            ..
        }) = self.decoding.pop_front()
        else {
            return;
        };
        match done {
            Ok((_, Ok(Ready::Decoded(decoded)))) => {
                if let Some(full) = self.batcher.add(decoded, token, bytes) {
                    self.ready.push_back(full);
                }
            }
            Ok((_, Ok(Ready::Rows(request)))) => {
                // What was gathered before it goes first.
                self.ready.extend(self.batcher.take(request.signal()));
                self.ready.push_back(Outgoing {
                    request,
                    tokens: vec![token],
                    bytes,
                });
            }
            Ok((owned, Err(why))) => self.undecodable(&owned.view(), token, why),
            Err(e) => {
                // A panic in the decoder: the message cannot be told apart
                // from one that does not decode, but it is no longer at
                // hand to copy to the dead-letter topic.
                warn!(component = %self.source.name, error = %e,
                    "kafka: decoding a message failed; it is skipped");
                crate::metrics::decode_errors(&self.source.name, &topic).increment(1);
                self.finish(Finished {
                    tokens: vec![token],
                    bytes,
                });
            }
        }
    }

    /// What the loop keeps of `topic`: found by name on each message, made
    /// (route matched, metric handles resolved) on its first.
    fn topic(&mut self, topic: &str) -> &SeenTopic {
        let source = self.source;
        if !self.topics.contains_key(topic) {
            let route = source.exact.get(topic).copied().or_else(|| {
                source
                    .patterns
                    .iter()
                    .find(|(re, _)| re.is_match(topic))
                    .map(|(_, r)| *r)
            });
            let seen = SeenTopic {
                name: Arc::from(topic),
                route,
                messages: crate::metrics::messages(&source.name, topic),
                read_bytes: crate::metrics::read_bytes(&source.name, topic),
            };
            self.topics.insert(topic.to_string(), seen);
        }
        &self.topics[topic]
    }

    /// A message that does not decode: counted, logged (once a minute per
    /// partition), copied to the dead-letter topic if there is one, and
    /// finished, so that it never holds its partition up.
    fn undecodable(&mut self, m: &Message<'_>, token: Token, why: String) {
        let name = &self.source.name;
        crate::metrics::decode_errors(name, m.topic).increment(1);
        if let Some(quiet) = self.may_log(m.topic, m.partition) {
            warn!(component = %name, topic = m.topic, partition = m.partition, offset = m.offset,
                error = %why, similar_since_last = quiet,
                "kafka: a message does not decode; it is skipped");
        }
        let bytes = m.value.len();
        let Some((producer, dlq)) = &self.source.dead_letters else {
            self.finish(Finished {
                tokens: vec![token],
                bytes,
            });
            return;
        };
        let mut headers = OwnedHeaders::new();
        for (k, v) in &m.headers {
            headers = headers.insert(rdkafka::message::Header {
                key: k,
                value: Some(*v),
            });
        }
        let (partition, offset) = (m.partition.to_string(), m.offset.to_string());
        for (k, v) in [
            ("weir.error", why.as_str()),
            ("weir.topic", m.topic),
            ("weir.partition", partition.as_str()),
            ("weir.offset", offset.as_str()),
        ] {
            headers = headers.insert(rdkafka::message::Header {
                key: k,
                value: Some(v),
            });
        }
        let mut record: FutureRecord<'_, [u8], [u8]> =
            FutureRecord::to(dlq).payload(m.value).headers(headers);
        if let Some(key) = m.key {
            record = record.key(key);
        }
        let (producer, finished, name) = (producer.clone(), self.finished_tx.clone(), name.clone());
        match producer.send_result(record) {
            Ok(delivery) => {
                tokio::spawn(async move {
                    let outcome = match delivery.await {
                        Ok(Ok(_)) => "written",
                        Ok(Err((e, _))) => {
                            warn!(component = %name, error = %e, "kafka: copying a message to the dead-letter topic failed");
                            "failed"
                        }
                        Err(_) => "failed",
                    };
                    crate::metrics::dead_letters(&name, outcome).increment(1);
                    let _ = finished.send(Finished {
                        tokens: vec![token],
                        bytes,
                    });
                });
            }
            Err((e, _)) => {
                warn!(component = %name, error = %e, "kafka: copying a message to the dead-letter topic failed");
                crate::metrics::dead_letters(&name, "failed").increment(1);
                self.finish(Finished {
                    tokens: vec![token],
                    bytes,
                });
            }
        }
    }

    /// Whether a problem of this partition may be logged now; if so, how
    /// many were kept quiet since the last one.
    fn may_log(&mut self, topic: &str, partition: i32) -> Option<u64> {
        let now = Instant::now();
        let entry = self
            .last_logged
            .entry((topic.to_string(), partition))
            .or_insert((now - LOG_EVERY, 0));
        if now.duration_since(entry.0) >= LOG_EVERY {
            let quiet = entry.1;
            *entry = (now, 0);
            Some(quiet)
        } else {
            entry.1 += 1;
            None
        }
    }

    fn consumer_error(&mut self, e: KafkaError) {
        if let Some(quiet) = self.may_log("", -1) {
            warn!(component = %self.source.name, error = %e, similar_since_last = quiet,
                "kafka: the consumer reports an error; it goes on trying");
        }
    }

    fn finish(&mut self, f: Finished) {
        for token in &f.tokens {
            self.offsets.finish(token);
        }
        self.in_flight = self.in_flight.saturating_sub(f.bytes);
    }

    /// Applies the rebalances librdkafka reported since last asked.
    fn rebalances(&mut self) {
        for event in self.consumer.context().take_events() {
            self.rebalanced(event);
        }
    }

    fn rebalanced(&mut self, event: Rebalanced) {
        match event {
            Rebalanced::Assigned(parts) => {
                for (topic, partition) in &parts {
                    self.offsets.assign(topic, *partition);
                }
                if self.paused {
                    // New partitions start paused too.
                    self.set_paused(&parts, true);
                }
            }
            Rebalanced::Revoked(parts) => {
                for (topic, partition) in parts {
                    self.offsets.revoke(&topic, partition);
                }
            }
        }
    }

    /// Pauses every partition above `max_in_flight`, resumes below half.
    fn regulate(&mut self) {
        let limit = usize::try_from(self.source.config.max_in_flight).unwrap_or(usize::MAX);
        self.in_flight_gauge.set(self.in_flight as f64);
        // Over Weir's memory limit the partitions pause too, until memory
        // is back under it (`weir_core::memory`).
        let memory = weir_core::memory::pressure().is_some();
        let pause = if !self.paused && (self.in_flight >= limit || memory) {
            crate::metrics::pauses(&self.source.name).increment(1);
            true
        } else if self.paused && self.in_flight < limit / 2 && !memory {
            false
        } else {
            return;
        };
        let assigned = match self.consumer.assignment() {
            Ok(tpl) => tpl
                .elements()
                .iter()
                .map(|e| (e.topic().to_string(), e.partition()))
                .collect(),
            Err(_) => Vec::new(),
        };
        self.set_paused(&assigned, pause);
        self.paused = pause;
    }

    fn set_paused(&self, parts: &[(String, i32)], pause: bool) {
        if parts.is_empty() {
            return;
        }
        let mut tpl = TopicPartitionList::new();
        for (topic, partition) in parts {
            tpl.add_partition(topic, *partition);
        }
        let result = if pause {
            self.consumer.pause(&tpl)
        } else {
            self.consumer.resume(&tpl)
        };
        if let Err(e) = result {
            warn!(component = %self.source.name, error = %e, pause, "kafka: pausing or resuming partitions failed");
        }
    }

    /// Stores the offsets that moved, for librdkafka's next commit.
    fn store(&mut self) {
        let moved = self.offsets.take_moved();
        if moved.is_empty() {
            return;
        }
        let mut tpl = TopicPartitionList::new();
        for (topic, partition, next) in &moved {
            let _ = tpl.add_partition_offset(topic, *partition, Offset::Offset(*next));
        }
        if let Err(e) = self.consumer.store_offsets(&tpl) {
            // A partition revoked meanwhile: its next owner reads it again.
            tracing::debug!(component = %self.source.name, error = %e, "kafka: storing offsets failed");
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::logs::v1::LogRecord;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    use super::*;
    use weir_core::Signal;

    fn spans(n: usize) -> Decoded {
        let span = |i: usize| Span {
            trace_id: vec![1; 16],
            span_id: (i as u64 + 1).to_be_bytes().to_vec(),
            name: format!("s{i}"),
            start_time_unix_nano: 1_700_000_000_000_000_000,
            end_time_unix_nano: 1_700_000_000_000_000_001,
            ..Span::default()
        };
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: (0..n).map(span).collect(),
                    ..ScopeSpans::default()
                }],
                ..ResourceSpans::default()
            }],
        };
        Decoded::Spans(weir_core::convert::spans_to_batch(&request).expect("converts"))
    }

    /// Guarantees: a message of at least `alone` records becomes rows at
    /// once, the same rows as the merged path makes of it; smaller ones,
    /// and plain lines, are left to be gathered.
    #[test]
    fn a_large_message_is_converted_alone() {
        let Ready::Rows(request) = Ready::of(spans(4), 4) else {
            panic!("not converted");
        };
        assert_eq!(request.signal(), Signal::Spans);
        let rows = request.convert().expect("converts").batch;
        let Decoded::Spans(converted) = spans(4) else {
            unreachable!()
        };
        let merged = Request::Spans(vec![converted])
            .convert()
            .expect("converts")
            .batch;
        assert_eq!(rows, merged);
        assert_eq!(rows.num_rows(), 4);
        assert!(matches!(Ready::of(spans(3), 4), Ready::Decoded(_)));
        let line = Decoded::Line(LogRecord::default());
        assert!(matches!(Ready::of(line, 1), Ready::Decoded(_)));
    }

    /// Guarantees: with the default `max_batch_records` (8192) a message of
    /// 512 records goes alone and one of 511 is gathered; a smaller
    /// `max_batch_records` lets half of it go alone.
    #[test]
    fn messages_of_512_records_go_alone() {
        let default = alone(8192);
        assert!(matches!(Ready::of(spans(512), default), Ready::Rows(_)));
        assert!(matches!(Ready::of(spans(511), default), Ready::Decoded(_)));
        assert_eq!(alone(100), 50);
        assert_eq!(alone(1), 1);
    }
}
