//! The batch file formats (pure: bytes in, bytes out).
//!
//! Input ([`read_batch`]): CSV, UTF-8 with an optional BOM, a header row; required columns
//! `intent_id,channel,pg_cno,amount,currency,reason` (amount, currency and reason may be
//! empty; an empty amount is a full cancel), optional `type,remain_amount,notify_url`, in any
//! order. Amounts are in major units exactly as a person writes them (`12.03` USD is 1203
//! cents, KRW whole won). The whole file is checked before anything is returned: every bad
//! row comes back with its line number and why.
//!
//! Output: the report CSV ([`write_report`]) with the header
//! `intent_id,state,channel,pg_cno,amount,currency,shop_transaction_id,cancel_pg_cno,res_cd,detail`,
//! and the JSON summary line ([`crate::Summary::to_json_line`]).

use std::collections::HashMap;
use std::fmt;
use std::io::Write;

use crate::model::{Channel, Intent, IntentParams, IntentSpec};
use crate::money::{display_major, parse_major, Currency};
use crate::store::Summary;

/// Columns every batch file has.
pub const REQUIRED_COLUMNS: [&str; 6] = [
    "intent_id",
    "channel",
    "pg_cno",
    "amount",
    "currency",
    "reason",
];
/// Columns a batch file may have.
pub const OPTIONAL_COLUMNS: [&str; 3] = ["type", "remain_amount", "notify_url"];
/// The report's header.
pub const REPORT_COLUMNS: [&str; 10] = [
    "intent_id",
    "state",
    "channel",
    "pg_cno",
    "amount",
    "currency",
    "shop_transaction_id",
    "cancel_pg_cno",
    "res_cd",
    "detail",
];

/// One valid row: its line number (1 = the header) and the intent.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BatchRow {
    /// Line in the file where the row starts.
    pub line: u64,
    /// The validated intent.
    pub spec: IntentSpec,
}

/// A row that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BadRow {
    /// Line in the file where the row starts.
    pub line: u64,
    /// Why.
    pub why: String,
}

impl fmt::Display for BadRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.why)
    }
}

/// Why a batch file cannot be used. Nothing in it is to be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BatchError {
    /// The file is not CSV with a usable header.
    #[error("bad header: {0}")]
    Header(String),
    /// Some rows are invalid; `Display` gives `N invalid rows` and then one line per row.
    #[error("{} invalid rows{}", .0.len(), .0.iter().map(|r| format!("\n{r}")).collect::<String>())]
    BadRows(Vec<BadRow>),
}

/// Reads and validates a whole batch file.
pub fn read_batch(bytes: &[u8]) -> Result<Vec<BatchRow>, BatchError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(bytes);
    let header = reader
        .byte_headers()
        .map_err(|e| BatchError::Header(e.to_string()))?
        .clone();
    if header.is_empty() || (header.len() == 1 && header[0].is_empty()) {
        return Err(BatchError::Header("the file has no header row".into()));
    }
    let mut col: HashMap<String, usize> = HashMap::new();
    for (i, name) in header.iter().enumerate() {
        let name = std::str::from_utf8(name)
            .map_err(|_| BatchError::Header("the header is not UTF-8".into()))?;
        if !REQUIRED_COLUMNS.contains(&name) && !OPTIONAL_COLUMNS.contains(&name) {
            return Err(BatchError::Header(format!(
                "unknown column {name:?} (columns: {}, optional {})",
                REQUIRED_COLUMNS.join(","),
                OPTIONAL_COLUMNS.join(",")
            )));
        }
        if col.insert(name.to_owned(), i).is_some() {
            return Err(BatchError::Header(format!("column {name:?} appears twice")));
        }
    }
    let missing: Vec<&str> = REQUIRED_COLUMNS
        .iter()
        .copied()
        .filter(|c| !col.contains_key(*c))
        .collect();
    if !missing.is_empty() {
        return Err(BatchError::Header(format!(
            "missing required column(s): {}",
            missing.join(", ")
        )));
    }

    let mut rows = Vec::new();
    let mut bad = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut record = csv::ByteRecord::new();
    let mut lines = Lines::new(bytes);
    loop {
        let line = lines.line_at(reader.position().byte());
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(line, |p| lines.line_at(p.byte()));
                bad.push(BadRow {
                    line,
                    why: format!("not valid CSV: {e}"),
                });
                // The reader cannot resynchronize reliably after a syntax error.
                break;
            }
        }
        let line = record.position().map_or(line, |p| lines.line_at(p.byte()));
        match parse_row(&record, &col, header.len()) {
            Ok(spec) => {
                let id = spec.intent_id().as_str().to_owned();
                if let Some(first) = seen.get(&id) {
                    bad.push(BadRow {
                        line,
                        why: format!("intent_id {id:?} repeats line {first}"),
                    });
                } else {
                    seen.insert(id, line);
                    rows.push(BatchRow { line, spec });
                }
            }
            Err(why) => bad.push(BadRow { line, why }),
        }
    }
    if bad.is_empty() {
        Ok(rows)
    } else {
        Err(BatchError::BadRows(bad))
    }
}

/// Line numbers of byte offsets in a batch file. The csv crate ends a record at `\n`,
/// `\r\n` or a lone `\r`, but its positions count only `\n`: in a file with lone `\r` line
/// ends (old Mac style) every row would be "line 2". Here each of the three is one line break.
struct Lines<'a> {
    bytes: &'a [u8],
    at: usize,
    line: u64,
}

impl<'a> Lines<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Lines {
            bytes,
            at: 0,
            line: 1,
        }
    }

    /// The line of byte `offset` (offsets mostly grow; an earlier one rescans).
    fn line_at(&mut self, offset: u64) -> u64 {
        let end = usize::try_from(offset).map_or(self.bytes.len(), |o| o.min(self.bytes.len()));
        if end < self.at {
            *self = Lines::new(self.bytes);
        }
        while self.at < end {
            // A CR breaks the line, and so does an LF that does not end a CRLF (the csv
            // crate may place a record's start between the CR and the LF of a CRLF).
            let breaks = match self.bytes.get(self.at) {
                Some(b'\r') => true,
                Some(b'\n') => {
                    self.at == 0 || self.bytes.get(self.at.wrapping_sub(1)) != Some(&b'\r')
                }
                _ => false,
            };
            if breaks {
                self.line += 1;
            }
            self.at += 1;
        }
        self.line
    }
}

fn parse_row(
    record: &csv::ByteRecord,
    col: &HashMap<String, usize>,
    width: usize,
) -> Result<IntentSpec, String> {
    if record.len() != width {
        return Err(format!(
            "has {} fields, the header has {width}",
            record.len()
        ));
    }
    let field = |name: &str| -> Result<&str, String> {
        match col.get(name) {
            None => Ok(""),
            Some(&i) => {
                std::str::from_utf8(&record[i]).map_err(|_| format!("{name}: not valid UTF-8"))
            }
        }
    };
    let opt = |name: &str| -> Result<Option<String>, String> {
        let v = field(name)?;
        Ok((!v.is_empty()).then(|| v.to_owned()))
    };
    let channel_text = field("channel")?;
    let channel = Channel::parse(channel_text).ok_or_else(|| {
        format!("channel: must be generic, alipay or wechat, not {channel_text:?}")
    })?;
    let currency = match field("currency")? {
        "" => None,
        c => Some(
            Currency::parse(c).ok_or_else(|| format!("currency: must be KRW or USD, not {c:?}"))?,
        ),
    };
    let money = |name: &str| -> Result<Option<u64>, String> {
        let text = field(name)?;
        if text.is_empty() {
            return Ok(None);
        }
        let cur = match (currency, channel) {
            (Some(c), _) => c,
            (None, Channel::Generic) => Currency::Krw,
            (None, _) => {
                return Err(format!(
                    "{name}: needs a currency on {channel} (KRW or USD)"
                ))
            }
        };
        parse_major(cur, text)
            .map(Some)
            .map_err(|why| format!("{name}: {text:?} {why}"))
    };
    let params = IntentParams {
        intent_id: field("intent_id")?.to_owned(),
        channel,
        pg_cno: field("pg_cno")?.to_owned(),
        amount: money("amount")?,
        currency,
        revise_type_code: opt("type")?,
        remain_amount: money("remain_amount")?,
        reason: opt("reason")?,
        notify_url: opt("notify_url")?,
    };
    params.validate().map_err(|e| e.to_string())
}

/// The amount of `intent` in major units (`12.03`), empty for a full cancel.
pub fn amount_text(intent: &Intent) -> String {
    match intent.spec.amount() {
        None => String::new(),
        Some(minor) => display_major(intent.spec.currency().unwrap_or(Currency::Krw), minor),
    }
}

fn detail_of(intent: &Intent) -> String {
    intent
        .detail
        .clone()
        .or_else(|| {
            intent
                .attempts
                .iter()
                .rev()
                .find_map(|a| a.result.as_ref().map(|r| r.detail.clone()))
        })
        .unwrap_or_default()
}

/// Writes the report CSV (header and one row per intent, properly quoted) and returns the
/// counts for the summary line.
pub fn write_report<'a, W: Write>(
    out: W,
    intents: impl IntoIterator<Item = &'a Intent>,
) -> Result<Summary, std::io::Error> {
    let mut w = csv::Writer::from_writer(out);
    let csv_err = |e: csv::Error| std::io::Error::other(e.to_string());
    w.write_record(REPORT_COLUMNS).map_err(csv_err)?;
    let mut summary = Summary::default();
    for i in intents {
        summary.add(i.state.kind());
        w.write_record([
            i.spec.intent_id().as_str(),
            i.state.kind().as_str(),
            i.spec.channel().as_str(),
            i.spec.pg_cno(),
            &amount_text(i),
            i.spec.currency().map(|c| c.code()).unwrap_or(""),
            i.last_key().unwrap_or(""),
            i.cancel_pg_cno.as_deref().unwrap_or(""),
            i.res_cd.as_deref().unwrap_or(""),
            &detail_of(i),
        ])
        .map_err(csv_err)?;
    }
    w.flush()?;
    Ok(summary)
}

/// One `kicc ledger list` line: a JSON object with `intent_id, state, channel, pg_cno,
/// amount, currency, shop_transaction_id, cancel_pg_cno, res_cd, attempts` (absent values are
/// `null`; `amount` in major units as text; `attempts` is the number of attempts).
pub fn list_json_line(i: &Intent) -> String {
    let amount = amount_text(i);
    serde_json::json!({
        "intent_id": i.spec.intent_id().as_str(),
        "state": i.state.kind().as_str(),
        "channel": i.spec.channel().as_str(),
        "pg_cno": i.spec.pg_cno(),
        "amount": (!amount.is_empty()).then_some(amount),
        "currency": i.spec.currency().map(|c| c.code()),
        "shop_transaction_id": i.last_key(),
        "cancel_pg_cno": i.cancel_pg_cno,
        "res_cd": i.res_cd,
        "attempts": i.attempts.len(),
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{State, StateKind};

    const HEADER: &str = "intent_id,channel,pg_cno,amount,currency,reason\n";

    fn ok(text: &str) -> Vec<BatchRow> {
        read_batch(text.as_bytes()).unwrap()
    }

    fn bad(text: &str) -> Vec<BadRow> {
        match read_batch(text.as_bytes()) {
            Err(BatchError::BadRows(rows)) => rows,
            other => panic!("expected bad rows, got {other:?}"),
        }
    }

    #[test]
    fn reads_amounts_exactly_and_defaults() {
        let rows = ok(&format!(
            "\u{FEFF}{HEADER}r1,alipay,pg1,12.03,USD,customer asked\n\
             r2,generic,pg2,,,\n\
             r3,generic,pg3,1000,,\n\
             \"r,4\",wechat,pg4,7,KRW,\"quoted, reason\"\n"
        ));
        assert_eq!(rows.len(), 4);
        let s = &rows[0].spec;
        assert_eq!(
            (rows[0].line, s.amount(), s.currency()),
            (2, Some(1203), Some(Currency::Usd))
        );
        assert_eq!(s.revise_type_code(), "32");
        assert_eq!(s.reason(), Some("customer asked"));
        let s = &rows[1].spec;
        assert_eq!(
            (s.amount(), s.revise_type_code(), s.reason()),
            (None, "40", None)
        );
        // Generic: KRW assumed.
        assert_eq!(rows[2].spec.currency(), Some(Currency::Krw));
        assert_eq!(rows[2].spec.amount(), Some(1000));
        assert_eq!(rows[3].spec.intent_id().as_str(), "r,4");
        assert_eq!(rows[3].line, 5);
    }

    #[test]
    fn optional_columns_in_any_order() {
        let rows = ok(
            "remain_amount,type,intent_id,channel,pg_cno,amount,currency,reason,notify_url\n\
                       30.00,32,w1,wechat,pg1,10.5,USD,,https://m.example/notify\n",
        );
        let s = &rows[0].spec;
        assert_eq!((s.amount(), s.remain_amount()), (Some(1050), Some(3000)));
        assert_eq!(s.notify_url(), Some("https://m.example/notify"));
    }

    #[test]
    fn every_bad_row_with_its_line_and_why() {
        let rows = bad(&format!(
            "{HEADER}ok1,generic,pg1,,,\n\
             b1,alipay,pg2,12.034,USD,\n\
             b2,generic,pg3,10.5,,\n\
             b3,alipay,pg4,5,,\n\
             b4,paypal,pg5,,,\n\
             ok1,generic,pg1,,,\n\
             b6,generic,,,,\n\
             b7,generic,pg7,,,\n\
             b8,generic,pg8,1e3,,\n\
             b9,alipay,pg9,,,,extra\n\
             b10,alipay,pg10,,EUR,\n\
             b11,generic,pg11,0,,\n\
             b12,generic,pg12,-5,,\n"
        ))
        .into_iter()
        .map(|r| (r.line, r.why))
        .collect::<Vec<_>>();
        let lines: Vec<u64> = rows.iter().map(|r| r.0).collect();
        assert_eq!(lines, [3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14]);
        assert!(rows[0].1.contains("at most 2 decimal places"), "{rows:?}");
        assert!(rows[1].1.contains("whole won"), "{rows:?}");
        assert!(rows[2].1.contains("needs a currency"), "{rows:?}");
        assert!(rows[3].1.contains("channel"), "{rows:?}");
        assert!(rows[4].1.contains("repeats line 2"), "{rows:?}");
        assert!(rows[5].1.contains("pg_cno"), "{rows:?}");
        assert!(rows[7].1.contains("has 7 fields"), "{rows:?}");
        assert!(rows[8].1.contains("KRW or USD"), "{rows:?}");
        assert!(rows[9].1.contains("greater than zero"), "{rows:?}");
        let err = read_batch(format!("{HEADER}x,paypal,p,,,\n").as_bytes()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "1 invalid rows\nline 2: channel: must be generic, alipay or wechat, not \"paypal\""
        );
    }

    #[test]
    fn header_problems() {
        for (text, want) in [
            ("", "no header"),
            (
                "intent_id,channel,pg_cno,amount,currency\n",
                "missing required column(s): reason",
            ),
            (
                "intent_id,channel,pg_cno,amount,currency,reason,remain_ammount\n",
                "unknown column",
            ),
            (
                "intent_id,channel,pg_cno,amount,currency,reason,reason\n",
                "twice",
            ),
        ] {
            match read_batch(text.as_bytes()) {
                Err(BatchError::Header(why)) => assert!(why.contains(want), "{why}"),
                other => panic!("{text:?}: {other:?}"),
            }
        }
        // A header alone is an empty, valid batch.
        assert!(ok(HEADER).is_empty());
    }

    #[test]
    fn lines_count_lf_crlf_and_a_lone_cr_alike() {
        // Found by fuzzing (batch_csv): with lone CR line ends every row was "line 2".
        for end in ["\n", "\r\n", "\r"] {
            let header = format!("intent_id,channel,pg_cno,amount,currency,reason{end}");
            let text =
                format!("{header}a,generic,p1,,,{end}b,generic,p2,,,{end}c,generic,p3,,,{end}");
            let lines: Vec<u64> = ok(&text).iter().map(|r| r.line).collect();
            assert_eq!(lines, [2, 3, 4], "{end:?}");
            // A quoted field over two lines, then a repeated id: both reported where they are.
            let text = format!(
                "{header}a,generic,p1,,,{end}b,generic,p2,,,\"two{end}lines\"{end}a,generic,p3,,,{end}"
            );
            let rows = bad(&text);
            let lines: Vec<u64> = rows.iter().map(|r| r.line).collect();
            assert_eq!(lines, [3, 5], "{end:?}: {rows:?}");
            assert!(rows[1].why.contains("repeats line 2"), "{end:?}: {rows:?}");
        }
    }

    #[test]
    fn invalid_utf8_is_a_bad_row() {
        let mut bytes = HEADER.as_bytes().to_vec();
        bytes.extend_from_slice(b"r1,generic,pg1,,,\xff\xfe\n");
        let rows = match read_batch(&bytes) {
            Err(BatchError::BadRows(r)) => r,
            other => panic!("{other:?}"),
        };
        assert_eq!(rows[0].line, 2);
        assert!(rows[0].why.contains("UTF-8"));
    }

    #[test]
    fn report_is_quoted_csv_and_counts_states() {
        let rows = ok(&format!(
            "{HEADER}\"a,1\",alipay,pg1,12.03,USD,\ng,generic,pg2,,,\n"
        ));
        let mut a = Intent::planned(1, rows[0].spec.clone());
        a.state = State::Declined {
            res_cd: "R102".into(),
        };
        a.res_cd = Some("R102".into());
        a.detail = Some("said \"no\", twice".into());
        let g = Intent::planned(2, rows[1].spec.clone());
        let mut out = Vec::new();
        let summary = write_report(&mut out, [&a, &g]).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "intent_id,state,channel,pg_cno,amount,currency,shop_transaction_id,cancel_pg_cno,res_cd,detail\n\
             \"a,1\",declined,alipay,pg1,12.03,USD,,,R102,\"said \"\"no\"\", twice\"\n\
             g,planned,generic,pg2,,,,,,\n"
        );
        assert_eq!(summary.total, 2);
        assert_eq!(summary.declined, 1);
        assert_eq!(summary.planned, 1);
        assert_eq!(
            summary.to_json_line(),
            r#"{"total":2,"succeeded":0,"declined":1,"not_processed":0,"unknown":0,"pending":0,"in_flight":0,"planned":1}"#
        );
        let line: serde_json::Value = serde_json::from_str(&list_json_line(&a)).unwrap();
        assert_eq!(line["amount"], "12.03");
        assert_eq!(line["state"], StateKind::Declined.as_str());
        assert_eq!(line["attempts"], 0);
        assert!(line["cancel_pg_cno"].is_null());
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_give_rows_or_reasons_never_a_panic(
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
            text in "[a-z0-9,.\"\n\r -]{0,200}",
        ) {
            let mut with_header = HEADER.as_bytes().to_vec();
            with_header.extend_from_slice(&body);
            let _ = read_batch(&with_header);
            let _ = read_batch(&body);
            let _ = read_batch(format!("{HEADER}{text}").as_bytes());
        }
    }
}
