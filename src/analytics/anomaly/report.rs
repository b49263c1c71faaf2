//! The answer: the anomalies found, summed up by severity, with one recommendation per pod
//! and action, an alert per critical or high anomaly, and the metrics that had no data.

use super::{Alert, Analysis, Anomaly, EnrichedSignals, Findings, Run, Summary};
use crate::analytics::metrics_catalog::Metric;
use std::collections::BTreeMap;

impl Run<'_> {
    pub(super) fn answer(&self, found: Findings<'_>, enriched: EnrichedSignals) -> Analysis {
        let Findings {
            anomalies,
            analysed,
            models_used,
            without_data,
        } = found;
        let by_severity = count_by_severity(&anomalies);
        let recommendations = recommendations(&anomalies);
        let alerts = alerts(&anomalies);
        let message = self.no_data_message(&without_data);
        Analysis {
            status: "success",
            time_range: self.range_text.into(),
            analyzed_at: self.now.clone(),
            anomalies_detected: anomalies.len() as i64,
            threshold: self.threshold,
            summary: Summary {
                total_metrics_analyzed: analysed,
                anomalies_found: anomalies.len() as i64,
                models_used: models_used.into_iter().collect(),
                by_severity,
            },
            anomalies,
            recommendations,
            alerts,
            enriched_signals: enriched,
            metrics_without_data: without_data.iter().map(|m| m.name().to_string()).collect(),
            message,
        }
    }

    /// Names each metric without data and the series it needs; `None` when all had data.
    fn no_data_message(&self, without_data: &[&Metric]) -> Option<String> {
        (!without_data.is_empty()).then(|| {
            let each: Vec<String> = without_data
                .iter()
                .map(|m| format!("{} (needs {})", m.name(), m.needs()))
                .collect();
            format!(
                "no data over {} in {} for: {}",
                self.range_text,
                self.scope.describe(),
                each.join("; ")
            )
        })
    }
}

fn count_by_severity(anomalies: &[Anomaly]) -> BTreeMap<String, i64> {
    let mut by_severity: BTreeMap<String, i64> = BTreeMap::new();
    for a in anomalies {
        *by_severity.entry(a.severity.clone()).or_default() += 1;
    }
    by_severity
}

/// `who: what to do`, once per distinct line (`who` is the explanation's `namespace/pod`).
fn recommendations(anomalies: &[Anomaly]) -> Vec<String> {
    let mut recommendations: Vec<String> = Vec::new();
    for a in anomalies {
        let line = format!(
            "{}: {}",
            a.explanation.split(':').next().unwrap_or_default(),
            a.recommended_action
        );
        if !recommendations.contains(&line) {
            recommendations.push(line);
        }
    }
    recommendations
}

fn alerts(anomalies: &[Anomaly]) -> Vec<Alert> {
    anomalies
        .iter()
        .filter(|a| matches!(a.severity.as_str(), "critical" | "high"))
        .map(|a| Alert {
            kind: a.kind.clone(),
            message: a.explanation.clone(),
            severity: a.severity.clone(),
            action_required: true,
        })
        .collect()
}
