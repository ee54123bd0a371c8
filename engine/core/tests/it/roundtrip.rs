//! Property tests: any representable OTLP request survives OTLP -> Arrow ->
//! OTLP, up to the documented normalisation (containers without records
//! dropped, consecutive equal containers merged), and survives our OTLP/JSON
//! encoder and decoder exactly.

use crate::common::generate::{logs_request, metrics_request, trace_request};
use crate::common::{assert_same, normalise_logs, normalise_metrics, normalise_spans};
use proptest::prelude::*;
use weir_core::Signal;
use weir_core::convert::{self, json};
use weir_core::schema::schema_for;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// Guarantees: every field of every log record (and of its resource and
    /// scope) comes back from a `logs` batch; one row per record.
    #[test]
    fn logs_survive_arrow(req in logs_request()) {
        let records: usize = req.resource_logs.iter()
            .flat_map(|r| &r.scope_logs).map(|s| s.log_records.len()).sum();
        let converted = convert::logs_to_batch(&req).expect("converts");
        prop_assert_eq!(converted.rejected, 0, "{:?}", converted.rejection);
        prop_assert_eq!(converted.batch.num_rows(), records);
        prop_assert_eq!(converted.batch.schema(), schema_for(Signal::Logs));
        let back = convert::batch_to_logs(&converted.batch).expect("converts back");
        assert_same(&normalise_logs(&req), &back);
    }

    /// Guarantees: every field of every span (events, links, status, ids,
    /// trace state, flags, dropped counts) comes back from a `spans` batch.
    #[test]
    fn spans_survive_arrow(req in trace_request()) {
        let spans: usize = req.resource_spans.iter()
            .flat_map(|r| &r.scope_spans).map(|s| s.spans.len()).sum();
        let converted = convert::spans_to_batch(&req).expect("converts");
        prop_assert_eq!(converted.rejected, 0, "{:?}", converted.rejection);
        prop_assert_eq!(converted.batch.num_rows(), spans);
        prop_assert_eq!(converted.batch.schema(), schema_for(Signal::Spans));
        let back = convert::batch_to_spans(&converted.batch).expect("converts back");
        assert_same(&normalise_spans(&req), &back);
    }

    /// Guarantees: every metric type (gauge, sum, histogram, exponential
    /// histogram, summary) with exemplars, buckets, quantiles and metadata
    /// comes back from a `metrics` batch, one row per data point.
    #[test]
    fn metrics_survive_arrow(req in metrics_request()) {
        let converted = convert::metrics_to_batch(&req).expect("converts");
        prop_assert_eq!(converted.rejected, 0, "{:?}", converted.rejection);
        prop_assert_eq!(converted.batch.schema(), schema_for(Signal::Metrics));
        let back = convert::batch_to_metrics(&converted.batch).expect("converts back");
        assert_same(&normalise_metrics(&req), &back);
    }

    /// Guarantees: OTLP/JSON encode then decode gives back the same logs
    /// request, every field included.
    #[test]
    fn logs_survive_json(req in logs_request()) {
        let text = json::encode_logs(&req).expect("encodes");
        let back = json::decode_logs(&text).expect("decodes our own output");
        assert_same(&req, &back);
    }

    /// Guarantees: OTLP/JSON encode then decode gives back the same trace
    /// request.
    #[test]
    fn spans_survive_json(req in trace_request()) {
        let text = json::encode_spans(&req).expect("encodes");
        let back = json::decode_spans(&text).expect("decodes our own output");
        assert_same(&req, &back);
    }

    /// Guarantees: OTLP/JSON encode then decode gives back the same metrics
    /// request (non-finite doubles included).
    #[test]
    fn metrics_survive_json(req in metrics_request()) {
        let text = json::encode_metrics(&req).expect("encodes");
        let back = json::decode_metrics(&text).expect("decodes our own output");
        assert_same(&req, &back);
    }
}
