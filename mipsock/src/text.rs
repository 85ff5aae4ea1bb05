//! Human-readable lines for `mipsock tap` and `mipsock state`, generated from the serde
//! form of the messages: every field a type has is printed, under its serde name, so the
//! text cannot drift from the types.
//!
//! `2026-11-22T21:30:00.123456Z md_info seq=0 from=babymdd[812] command=rereg hint=addr
//! hoa=2001:db8:1::100 coa=2001:db8:a::5 ifindex=3`

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::Value;

use crate::frame::FrameError;
use crate::message::{Message, StateItem};

/// `key=value` pairs of a serialisable value, nested keys joined with `.`; `null` fields
/// are left out, lists are `[a,b]`.
pub fn fields<T: Serialize>(value: &T) -> String {
    let v = serde_json::to_value(value).unwrap_or(Value::Null);
    let mut out = String::new();
    push_fields(&mut out, "", &v);
    out
}

fn push_fields(out: &mut String, prefix: &str, v: &Value) {
    match v {
        Value::Null => {}
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                push_fields(out, &key, v);
            }
        }
        _ => {
            if !out.is_empty() {
                out.push(' ');
            }
            if prefix.is_empty() {
                push_scalar(out, v);
            } else {
                let _ = write!(out, "{prefix}=");
                push_scalar(out, v);
            }
        }
    }
}

fn push_scalar(out: &mut String, v: &Value) {
    match v {
        Value::String(s) if s.is_empty() || s.contains(char::is_whitespace) => {
            let _ = write!(out, "{s:?}");
        }
        Value::String(s) => out.push_str(s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                match item {
                    Value::Object(_) => {
                        out.push('{');
                        let mut inner = String::new();
                        push_fields(&mut inner, "", item);
                        out.push_str(&inner);
                        out.push('}');
                    }
                    _ => push_scalar(out, item),
                }
            }
            out.push(']');
        }
        other => {
            let _ = write!(out, "{other}");
        }
    }
}

/// One line for a message: type, correlation, sender, then the body's fields.
pub fn message_line(msg: &Message) -> String {
    let h = &msg.header;
    let mut line = format!(
        "{} seq={} from={}[{}]",
        msg.message_type(),
        h.seq,
        h.sender,
        h.pid
    );
    if h.errno != 0 {
        let _ = write!(line, " errno={}", h.errno);
    }
    // The body serialises as {"md_info": {...}} (or a bare name for header-only types).
    let body = serde_json::to_value(&msg.body).unwrap_or(Value::Null);
    if let Value::Object(map) = body {
        for v in map.values() {
            let f = {
                let mut s = String::new();
                push_fields(&mut s, "", v);
                s
            };
            if !f.is_empty() {
                line.push(' ');
                line.push_str(&f);
            }
        }
    }
    line
}

/// One line for a state item: its kind, then its fields.
pub fn state_item_line(item: &StateItem) -> String {
    let v = serde_json::to_value(item).unwrap_or(Value::Null);
    match v {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| {
                let mut s = String::new();
                push_fields(&mut s, "", v);
                format!("{k} {s}")
            })
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    }
}

/// One line for a skipped frame.
pub fn skipped_line(err: &FrameError) -> String {
    let kind = if err.is_unknown() {
        "unknown"
    } else {
        "garbage"
    };
    format!("skipped {kind}: {err}")
}

/// RFC 3339 UTC timestamp with microseconds.
pub fn timestamp(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_micros()
    )
}

/// Days since 1970-01-01 to (year, month, day), Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps() {
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
        let t = UNIX_EPOCH + Duration::from_micros(1_795_383_000_123_456);
        assert_eq!(timestamp(t), "2026-11-22T21:30:00.123456Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(timestamp(leap), "2000-02-29T00:00:00.000000Z");
    }
}
