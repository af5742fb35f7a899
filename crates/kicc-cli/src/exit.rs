//! Exit codes, what a command reports, and how every error becomes one line on stderr.

use std::process::ExitCode;

use kicc_core::{Error, FieldError};

/// The process exit codes (see [`crate::cli::EXIT_CODES_HELP`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: done.
    Ok = 0,
    /// 1: declined, or certainly not processed.
    NotDone = 1,
    /// 2: invalid input; nothing was sent.
    Invalid = 2,
    /// 3: outcome unknown; query before acting.
    Unknown = 3,
    /// 4: still pending.
    Pending = 4,
    /// 5: a local failure.
    Local = 5,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}

/// What a finished command prints, and how it exits.
#[derive(Debug)]
pub struct Report {
    /// The exit code.
    pub exit: Exit,
    /// The result, for stdout.
    pub stdout: Option<String>,
    /// A note for stderr (one line).
    pub stderr: Option<String>,
}

impl Report {
    /// Exit 0 with `stdout`.
    pub fn ok(stdout: String) -> Self {
        Report {
            exit: Exit::Ok,
            stdout: Some(stdout),
            stderr: None,
        }
    }

    /// `exit` with `stdout` and a one-line note on stderr.
    pub fn with_note(exit: Exit, stdout: String, note: String) -> Self {
        Report {
            exit,
            stdout: Some(stdout),
            stderr: Some(note),
        }
    }
}

/// A command that stopped: the exit code and one line for stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The exit code.
    pub exit: Exit,
    /// The message (made one line when printed).
    pub message: String,
}

impl Failure {
    /// Exit 2: invalid input, with a message naming the field and the rule.
    pub fn invalid(message: impl Into<String>) -> Self {
        Failure {
            exit: Exit::Invalid,
            message: format!("invalid input, nothing was sent: {}", message.into()),
        }
    }

    /// Exit 5: a local failure.
    pub fn local(message: impl Into<String>) -> Self {
        Failure {
            exit: Exit::Local,
            message: message.into(),
        }
    }
}

impl From<FieldError> for Failure {
    fn from(e: FieldError) -> Self {
        Failure::invalid(e.to_string())
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure {
            exit: exit_for(&e),
            message: e.to_string(),
        }
    }
}

impl From<wechatpay_direct::InvalidInput> for Failure {
    fn from(e: wechatpay_direct::InvalidInput) -> Self {
        Failure::invalid(e.to_string())
    }
}

/// The exit code for an SDK error.
pub fn exit_for(e: &Error) -> Exit {
    match e {
        Error::Invalid(_) => Exit::Invalid,
        Error::Declined(_) | Error::Transport { .. } | Error::AlreadyCancelled { .. } => {
            Exit::NotDone
        }
        Error::Pending { .. } => Exit::Pending,
        // Ambiguous, and any kind this CLI does not know yet: never claim it did not happen.
        _ => Exit::Unknown,
    }
}

/// Writes `text` as one line: runs of spaces collapse, and every control character (a line
/// break or tab inside a gateway's detail message, an escape sequence, ...) is written as an
/// escape (`\n`, `\u{1b}`), so one error is always exactly one line and cannot drive the
/// terminal.
pub fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        for c in word.chars() {
            if c.is_control() {
                out.extend(c.escape_default());
            } else {
                out.push(c);
            }
        }
    }
    out
}

/// Turns a clap error into the process's answer: help and version go to stdout (exit 0);
/// help shown because nothing was typed goes to stderr (exit 2); every other error is one line
/// on stderr (exit 2), naming the argument and the problem.
pub fn clap_failure(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            Exit::Invalid.into()
        }
        _ => {
            let text = e.render().to_string();
            let cut = ["\nUsage:", "\nFor more information"]
                .iter()
                .filter_map(|m| text.find(m))
                .min()
                .unwrap_or(text.len());
            let head = text.get(..cut).unwrap_or(&text);
            let line = head.split_whitespace().collect::<Vec<_>>().join(" ");
            let line = one_line(&line);
            let line = line.strip_prefix("error: ").unwrap_or(&line);
            eprintln!("error: invalid input: {line}");
            Exit::Invalid.into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kicc_core::{GatewayError, Rule};

    #[test]
    fn every_sdk_outcome_has_its_exit_code() {
        let invalid = Error::Invalid(FieldError::new("pgCno", Rule::Empty));
        assert_eq!(exit_for(&invalid), Exit::Invalid);
        let declined = Error::Declined(GatewayError::new("P003", "over", "K"));
        assert_eq!(exit_for(&declined), Exit::NotDone);
        let transport = Error::Transport {
            reason: "refused".into(),
            shop_transaction_id: "K".into(),
        };
        assert_eq!(exit_for(&transport), Exit::NotDone);
        let ambiguous = Error::Ambiguous {
            reason: "timeout".into(),
            shop_transaction_id: "K".into(),
            attempts: 4,
            last_res_cd: None,
            sent: vec![],
            lookup_after: None,
        };
        assert_eq!(exit_for(&ambiguous), Exit::Unknown);
        let earlier = Error::AlreadyCancelled {
            cancel_pg_cno: "C".into(),
            shop_transaction_id: "K".into(),
        };
        assert_eq!(exit_for(&earlier), Exit::NotDone);
        let status = Error::StatusUnknown {
            reason: "dropped".into(),
            shop_transaction_id: "K".into(),
        };
        assert_eq!(exit_for(&status), Exit::Unknown);
        let pending = Error::Pending {
            cancel_pg_cno: "C".into(),
            shop_transaction_id: "K".into(),
        };
        assert_eq!(exit_for(&pending), Exit::Pending);
        assert_eq!(ExitCode::from(Exit::Local), ExitCode::from(5));
    }

    #[test]
    fn messages_become_one_line() {
        assert_eq!(one_line("a  b c "), "a b c");
        // Control characters (from a gateway's detail message) are escaped, never printed.
        assert_eq!(one_line("x\ny\u{1b}[31m\u{7}"), "x\\ny\\u{1b}[31m\\u{7}");
        let f: Failure = FieldError::new("amount", Rule::NotPositive).into();
        assert_eq!(f.exit, Exit::Invalid);
        assert_eq!(
            f.message,
            "invalid input, nothing was sent: amount: must be greater than zero"
        );
    }
}
