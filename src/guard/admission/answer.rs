//! The answer written by hand, byte for byte as serde_json writes [`ReviewResponse`] (a test
//! compares them): serde_json escapes strings a byte at a time, and the denial message is
//! most of the answer. Here the runs between characters that need escaping are copied whole,
//! found eight bytes at a time (issue 18).

use super::ReviewResponse;
use crate::guard::doc::special_byte;

impl ReviewResponse<'_> {
    pub fn write_json(&self, out: &mut Vec<u8>) {
        let response = &self.response;
        out.extend_from_slice(b"{\"apiVersion\":");
        string(out, self.api_version);
        out.extend_from_slice(b",\"kind\":");
        string(out, self.kind);
        out.extend_from_slice(b",\"response\":{\"uid\":");
        string(out, response.uid);
        out.extend_from_slice(if response.allowed {
            b",\"allowed\":true"
        } else {
            b",\"allowed\":false"
        });
        if let Some(status) = &response.status {
            out.extend_from_slice(b",\"status\":{\"code\":");
            out.extend_from_slice(status.code.to_string().as_bytes());
            out.extend_from_slice(b",\"message\":");
            string(out, status.message);
            out.extend_from_slice(b",\"reason\":");
            string(out, status.reason);
            out.push(b'}');
        }
        if let Some([warning]) = response.warnings {
            out.extend_from_slice(b",\"warnings\":[");
            string(out, warning);
            out.push(b']');
        }
        out.extend_from_slice(b",\"auditAnnotations\":{");
        if let Some(application) = response.audit_annotations.application {
            out.extend_from_slice(b"\"coordination-engine.io/argocd-application\":");
            string(out, application);
            out.push(b',');
        }
        out.extend_from_slice(b"\"coordination-engine.io/reason\":");
        string(out, response.audit_annotations.reason);
        out.extend_from_slice(b"}}}");
    }
}

/// A JSON string, escaped as serde_json escapes it.
fn string(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    let mut rest = text.as_bytes();
    while let Some(at) = special_byte(rest) {
        out.extend_from_slice(&rest[..at]);
        match rest[at] {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            control => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(control >> 4)]);
                out.push(HEX[usize::from(control & 0xf)]);
            }
        }
        rest = &rest[at + 1..];
    }
    out.extend_from_slice(rest);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::super::{AuditAnnotations, ResponseBody, ReviewResponse, Status};

    fn answer<'a>(
        message: &'a str,
        denied: bool,
        warn: bool,
        application: Option<&'a str>,
    ) -> ReviewResponse<'a> {
        ReviewResponse {
            api_version: "admission.k8s.io/v1",
            kind: "AdmissionReview",
            response: ResponseBody {
                uid: message,
                allowed: !denied,
                status: denied.then_some(Status {
                    code: 403,
                    message,
                    reason: "Forbidden",
                }),
                warnings: warn.then_some([message]),
                audit_annotations: AuditAnnotations {
                    reason: "manual_change",
                    application,
                },
            },
        }
    }

    #[test]
    fn the_answer_is_what_serde_json_writes() {
        let every_byte: String = (0u8..0x80).map(char::from).collect();
        let messages = [
            "",
            "plain",
            "UPDATE of Deployment prod/cart denied: it is managed by ArgoCD Application \"shop\"",
            "back\\slash, tab\t, newline\n, return\r, \u{8}\u{c}\u{1}\u{1f}\u{7f}",
            "ünïcödé 中文 😀 \"quoted\" at the end\"",
            every_byte.as_str(),
        ];
        for message in messages {
            for (denied, warn, application) in [
                (true, false, Some("shop")),
                (false, true, None),
                (false, false, Some(message)),
            ] {
                let answer = answer(message, denied, warn, application);
                let mut ours = Vec::new();
                answer.write_json(&mut ours);
                let serde = serde_json::to_vec(&answer).expect("serde");
                assert_eq!(
                    String::from_utf8_lossy(&ours),
                    String::from_utf8_lossy(&serde),
                    "{message:?}"
                );
            }
        }
    }
}
