//! [`SpanColumns`]: the columns of a `spans` batch the plugin reads, each
//! read once per batch (`docs/schema.md` names them).

use weir_plugin::{AttributeSet, Batch, Error, Text};

use crate::config::Plan;

/// What one batch of spans holds, column by column, row `i` of each being
/// span `i`.
#[derive(Debug, Clone, Default)]
pub struct SpanColumns {
    /// `service_name`: the resource's `service.name` (null when it has
    /// none, or not as a string).
    pub service: Text,
    /// `name`: the span name (null when empty).
    pub name: Text,
    /// `kind`: 0 unspecified, 1 internal, 2 server, 3 client, 4 producer,
    /// 5 consumer.
    pub kind: Vec<Option<i64>>,
    /// `status_code`: 0 unset, 1 ok, 2 error; null without a status.
    pub status: Vec<Option<i64>>,
    /// `duration_ns`: end minus start, null when either is unknown.
    pub duration_ns: Vec<Option<i64>>,
    /// Per extra dimension of the plan: its span attribute in every row.
    pub dimensions: Vec<Vec<Option<String>>>,
    /// Per extra dimension: its resource attribute in every row, read
    /// only when some span lacks the span attribute (`None` otherwise).
    pub dimensions_resource: Vec<Option<Vec<Option<String>>>>,
    /// Per `resource_attributes` key of the plan: its value in every row.
    pub resource: Vec<Vec<Option<String>>>,
}

impl SpanColumns {
    /// The number of spans.
    pub fn len(&self) -> usize {
        self.kind.len()
    }

    /// Whether there is no span.
    pub fn is_empty(&self) -> bool {
        self.kind.is_empty()
    }

    /// Reads what `plan` needs from a `spans` batch: five columns, one
    /// attribute read per extra dimension (two when a span lacks it) and
    /// one per resource attribute.
    pub fn read(batch: &Batch<'_>, plan: &Plan) -> Result<Self, Error> {
        let mut dimensions = Vec::with_capacity(plan.dimensions.len());
        let mut dimensions_resource = Vec::with_capacity(plan.dimensions.len());
        for d in &plan.dimensions {
            let span = batch.attribute(AttributeSet::Record, &d.name)?;
            let resource = match span.iter().any(Option::is_none) {
                true => Some(batch.attribute(AttributeSet::Resource, &d.name)?),
                false => None,
            };
            dimensions.push(span);
            dimensions_resource.push(resource);
        }
        let resource = plan
            .resource_attributes
            .iter()
            .map(|key| batch.attribute(AttributeSet::Resource, key))
            .collect::<Result<_, _>>()?;
        Ok(SpanColumns {
            service: batch.text("service_name")?,
            name: batch.text("name")?,
            kind: batch.ints("kind")?,
            status: batch.ints("status_code")?,
            duration_ns: if plan.histogram.is_some() {
                batch.ints("duration_ns")?
            } else {
                Vec::new()
            },
            dimensions,
            dimensions_resource,
            resource,
        })
    }

    /// Extra dimension `d`'s value for span `row`: the span's attribute,
    /// else the resource's, else `default`.
    #[inline]
    pub fn dimension<'a>(
        &'a self,
        d: usize,
        row: usize,
        default: Option<&'a str>,
    ) -> Option<&'a str> {
        if let Some(v) = &self.dimensions[d][row] {
            return Some(v);
        }
        if let Some(resource) = &self.dimensions_resource[d]
            && let Some(v) = &resource[row]
        {
            return Some(v);
        }
        default
    }
}
