//! What the Kafka source and sink share: the broker list, the settings
//! passed through to librdkafka, the librdkafka client configuration made
//! from them, and how librdkafka's own log lines reach Weir's log.

use std::collections::BTreeMap;

use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use weir_config::{Problem, Sensitive};
use weir_core::ComponentError;

/// librdkafka settings Weir sets itself for the guarantees it gives; a
/// `librdkafka` table may not change them.
const OWNED_SETTINGS: &[&str] = &[
    "bootstrap.servers",
    "group.id",
    "enable.auto.offset.store",
    "enable.auto.commit",
    "auto.offset.reset",
    "enable.partition.eof",
];

/// The problems of a `brokers` value and a `librdkafka` table.
pub(crate) fn problems(brokers: &str, librdkafka: &BTreeMap<String, Sensitive>) -> Vec<Problem> {
    let mut problems = Vec::new();
    if let Some(bad) = brokers
        .split(',')
        .map(str::trim)
        .find(|b| b.is_empty() || !b.contains(':'))
    {
        problems.push(Problem {
            key: "brokers".into(),
            message: format!("`{bad}` is not a broker address"),
            help: "list brokers as HOST:PORT separated by commas, such as \
                   brokers = \"kafka-1:9092,kafka-2:9092\""
                .into(),
        });
    }
    for key in librdkafka.keys() {
        if OWNED_SETTINGS.contains(&key.as_str()) {
            problems.push(Problem {
                key: format!("librdkafka.{key}"),
                message: format!("`{key}` is set by Weir and cannot be changed here"),
                help: match key.as_str() {
                    "bootstrap.servers" => "use `brokers`".into(),
                    "group.id" => "use `group_id`".into(),
                    "auto.offset.reset" => "use `initial_offset`".into(),
                    _ => "remove it: Weir stores and commits offsets itself, \
                          only once the data is safe"
                        .into(),
                },
            });
        }
    }
    problems
}

/// A librdkafka configuration for `brokers`, with the pass-through
/// settings applied last (after [`problems`] refused those Weir owns).
/// Settings given as secrets (`"sasl.password" = { env = "..." }`) are read
/// now; one that cannot be read is a configuration error naming it.
pub(crate) fn config(
    component: &str,
    brokers: &str,
    librdkafka: &BTreeMap<String, Sensitive>,
) -> Result<ClientConfig, ComponentError> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("client.id", format!("weir-{component}"))
        .set_log_level(RDKafkaLogLevel::Warning);
    for (k, v) in librdkafka {
        config.set(k, v.resolve(component, &format!("librdkafka.{k}"))?);
    }
    Ok(config)
}

/// Routes librdkafka's log lines into Weir's log, naming the component.
pub(crate) fn log(component: &str, level: RDKafkaLogLevel, fac: &str, text: &str) {
    use RDKafkaLogLevel as L;
    match level {
        L::Emerg | L::Alert | L::Critical | L::Error => {
            tracing::error!(component, facility = fac, "kafka: {text}")
        }
        L::Warning => tracing::warn!(component, facility = fac, "kafka: {text}"),
        L::Notice | L::Info => tracing::info!(component, facility = fac, "kafka: {text}"),
        L::Debug => tracing::debug!(component, facility = fac, "kafka: {text}"),
    }
}

/// A client context that only logs, for the producers.
pub(crate) struct LogContext {
    pub(crate) component: String,
}

impl ClientContext for LogContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        log(&self.component, level, fac, log_message);
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        tracing::warn!(component = %self.component, %error, "kafka: {reason}");
    }
}

#[cfg(test)]
mod tests {
    use weir_config::Secret;

    use super::*;

    /// Guarantees: a malformed broker list and a pass-through setting that
    /// would undo Weir's offset handling are refused, naming the key.
    #[test]
    fn refuses_bad_brokers_and_owned_settings() {
        assert!(problems("a:9092,b:9092", &BTreeMap::new()).is_empty());
        assert_eq!(problems("kafka", &BTreeMap::new())[0].key, "brokers");
        let owned = BTreeMap::from([("enable.auto.commit".to_string(), "false".into())]);
        assert_eq!(
            problems("a:1", &owned)[0].key,
            "librdkafka.enable.auto.commit"
        );
    }

    /// Guarantees: a pass-through setting may be read from a file or the
    /// environment (a SASL password, say) and reaches librdkafka's
    /// configuration; one that cannot be read is a configuration error
    /// naming the component, the setting and the variable.
    #[test]
    fn secret_settings_are_read_or_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let password = dir.path().join("password");
        std::fs::write(&password, "s3cret\n").expect("write");
        let settings = BTreeMap::from([
            ("sasl.username".to_string(), Sensitive::from("weir")),
            (
                "sasl.password".to_string(),
                Sensitive::Secret(Secret::File(password)),
            ),
        ]);
        let cfg = config("events", "a:9092", &settings).expect("read");
        assert_eq!(cfg.get("sasl.username"), Some("weir"));
        assert_eq!(cfg.get("sasl.password"), Some("s3cret"));

        let unset = BTreeMap::from([(
            "sasl.password".to_string(),
            Sensitive::Secret(Secret::Env("WEIR_TEST_KAFKA_PASSWORD_NEVER_SET".into())),
        )]);
        let err = config("events", "a:9092", &unset)
            .expect_err("refused")
            .to_string();
        assert_eq!(
            err,
            "configuration of `events`: `librdkafka.sasl.password`: the environment variable \
             `WEIR_TEST_KAFKA_PASSWORD_NEVER_SET` is not set (or not UTF-8); set it before \
             starting Weir"
        );
    }
}
