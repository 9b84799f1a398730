//! A text format as a grok pattern, for a log store to run (Elasticsearch
//! runtime fields, `--pushdown`): the same anchored regex the line parser
//! uses, with a named group `(?<Name>..)` for each field strictly judges by.
//!
//! The syntax is the part Java, Oniguruma (grok's Joni) and regex-automata
//! share: `\A`, `\z`, `\xHH` literals, classes, lazy quantifiers, named groups.

use std::fmt::Write;

use super::log_format::Kind;
use super::text::{class_pattern, push_literal};
use super::{Field, LogFormat};

/// The fields a store must hand back for strictly to classify a request
/// (its times are the store's: counted per hour).
pub const PUSHDOWN_FIELDS: [Field; 10] = [
    Field::PeerUriSan,
    Field::LocalUriSan,
    Field::Xfcc,
    Field::ForwardedFor,
    Field::AuditHint,
    Field::UpstreamCluster,
    Field::RequestedServerName,
    Field::DownstreamRemoteAddress,
    Field::DownstreamLocalAddress,
    Field::UserAgent,
];

/// The group name of a field (`PeerUriSan`): letters only, valid in every dialect.
pub fn group_name(field: Field) -> String {
    format!("{field:?}")
}

impl LogFormat {
    /// The grok pattern of a text format and the fields it names; None for JSON formats.
    ///
    /// The remote address is captured without its port: one group per caller,
    /// not one per connection.
    ///
    /// ```
    /// use strictly::format::{Field, LogFormat};
    ///
    /// let f = LogFormat::compile("x", r#"[%START_TIME%] %DOWNSTREAM_PEER_URI_SAN% %DOWNSTREAM_REMOTE_ADDRESS%"#).unwrap();
    /// let (pattern, fields) = f.grok_pattern().unwrap();
    /// assert!(pattern.starts_with(r"\A\x5B") && pattern.ends_with(r"\z"));
    /// assert_eq!(fields, [Field::PeerUriSan, Field::DownstreamRemoteAddress]);
    /// ```
    pub fn grok_pattern(&self) -> Option<(String, Vec<Field>)> {
        let Kind::Text(text) = &self.kind else {
            return None;
        };
        let mut pattern = String::from(r"\A");
        let mut fields = Vec::new();
        push_literal(&mut pattern, text.head());
        for step in text.steps() {
            let class = class_pattern(step.class);
            match step.field.filter(|f| PUSHDOWN_FIELDS.contains(f)) {
                Some(Field::DownstreamRemoteAddress) => {
                    fields.push(Field::DownstreamRemoteAddress);
                    let _ = write!(
                        pattern,
                        "(?<{}>{class})(?::[0-9]+)?",
                        group_name(Field::DownstreamRemoteAddress)
                    );
                }
                Some(f) => {
                    fields.push(f);
                    let _ = write!(pattern, "(?<{}>{class})", group_name(f));
                }
                None => {
                    let _ = write!(pattern, "(?:{class})");
                }
            }
            push_literal(&mut pattern, &step.tail);
        }
        // Fluentd keeps the line's `\n`; `.` does not match it.
        pattern.push_str(r"(?:\x0A)?\z");
        Some((pattern, fields))
    }
}
