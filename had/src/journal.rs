//! Persistence: an append-only journal of [`JournalRecord`]s (being written).

use crate::record::JournalRecord;

#[allow(dead_code)]
fn _f(_: JournalRecord) {}
