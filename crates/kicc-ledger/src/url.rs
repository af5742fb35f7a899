//! Ledger URLs (`sqlite:PATH`, `postgres://USER@HOST:PORT/DB`) and PostgreSQL passwords,
//! which never come from the URL: `PGPASSWORD`, else a `.pgpass` file (`PGPASSFILE` or
//! `~/.pgpass`), read here because tokio-postgres does not read it.

use std::fmt;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::error::UrlError;

/// Where the ledger lives.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LedgerUrl {
    /// `sqlite:PATH`: a file on this host.
    Sqlite(PathBuf),
    /// `postgres://USER@HOST:PORT/DB`.
    Postgres(PgTarget),
}

/// A PostgreSQL server and database, without a password.
///
/// Exhaustive on purpose: it is exactly what a `postgres://USER@HOST:PORT/DB` URL names;
/// connection settings (pool size, password) go on [`PostgresBuilder`](crate::PostgresBuilder).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgTarget {
    /// Role name.
    pub user: String,
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port (5432 when the URL gives none).
    pub port: u16,
    /// Database name.
    pub dbname: String,
}

impl fmt::Display for PgTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        write!(
            f,
            "postgres://{}@{host}:{}/{}",
            self.user, self.port, self.dbname
        )
    }
}

impl LedgerUrl {
    /// The default ledger: `sqlite:kicc-ledger.db`.
    pub const DEFAULT: &'static str = "sqlite:kicc-ledger.db";

    /// Parses a ledger URL. A password in a PostgreSQL URL is refused
    /// ([`UrlError::PasswordInUrl`]); the error never repeats it.
    pub fn parse(text: &str) -> Result<LedgerUrl, UrlError> {
        if let Some(path) = text.strip_prefix("sqlite:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err(UrlError::Malformed("sqlite: needs a file path".into()));
            }
            return Ok(LedgerUrl::Sqlite(PathBuf::from(path)));
        }
        let rest = text
            .strip_prefix("postgres://")
            .or_else(|| text.strip_prefix("postgresql://"))
            .ok_or_else(|| UrlError::Malformed("unknown scheme".into()))?;
        let (authority, db) = rest
            .split_once('/')
            .ok_or_else(|| UrlError::Malformed("postgres URL needs /DB".into()))?;
        let (userinfo, hostport) = authority
            .rsplit_once('@')
            .ok_or_else(|| UrlError::Malformed("postgres URL needs USER@".into()))?;
        if userinfo.contains(':') {
            return Err(UrlError::PasswordInUrl);
        }
        let ok_name = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| !c.is_control() && !" /@:?#%[]".contains(c))
        };
        if !ok_name(userinfo) {
            return Err(UrlError::Malformed("bad or missing user name".into()));
        }
        if !ok_name(db) {
            return Err(UrlError::Malformed(
                "bad or missing database name (no query parameters)".into(),
            ));
        }
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| UrlError::Malformed("unclosed [ in host".into()))?;
            (h, after.strip_prefix(':'))
        } else {
            match hostport.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if host.is_empty()
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-_:".contains(c))
        {
            return Err(UrlError::Malformed("bad or missing host".into()));
        }
        let port = match port {
            None => 5432,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| UrlError::Malformed("bad port".into()))?,
        };
        Ok(LedgerUrl::Postgres(PgTarget {
            user: userinfo.to_owned(),
            host: host.to_owned(),
            port,
            dbname: db.to_owned(),
        }))
    }
}

/// A database password: zeroed on drop, never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(Zeroizing<String>);

impl Password {
    /// Wraps a password.
    pub fn new(p: impl Into<String>) -> Password {
        Password(Zeroizing::new(p.into()))
    }

    /// The password, to hand to the driver.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// Finds the password for `target` in `.pgpass` text (libpq's format:
/// `hostname:port:database:username:password` per line, `*` matches anything, `\:` and `\\`
/// escape, `#` starts a comment line; the first matching line wins).
pub fn pgpass_lookup(content: &str, target: &PgTarget) -> Option<Password> {
    let port = target.port.to_string();
    for line in content.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim_start().starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields = split_pgpass(line);
        if fields.len() != 5 {
            continue;
        }
        let want = [
            target.host.as_str(),
            port.as_str(),
            target.dbname.as_str(),
            target.user.as_str(),
        ];
        if fields[..4]
            .iter()
            .zip(want)
            .all(|(f, w)| f.as_str() == "*" || f.as_str() == w)
        {
            let mut fields = fields;
            return Some(Password(Zeroizing::new(std::mem::take(&mut fields[4]))));
        }
    }
    None
}

fn split_pgpass(line: &str) -> Vec<Zeroizing<String>> {
    let mut fields = vec![Zeroizing::new(String::new())];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        let last = fields.len() - 1;
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    fields[last].push(n);
                }
            }
            // The password (fifth field) may contain unescaped colons in practice; libpq
            // stops splitting after the fourth.
            ':' if fields.len() < 5 => fields.push(Zeroizing::new(String::new())),
            c => fields[last].push(c),
        }
    }
    fields
}

/// The password for `target` the way libpq finds it: `PGPASSWORD` if set, else the first
/// matching line of the `.pgpass` file (`PGPASSFILE`, else `$HOME/.pgpass`). Like libpq, a
/// `.pgpass` readable by group or others is ignored on Unix. `None` when neither has one
/// (the server may not need one).
pub fn password_from_env(target: &PgTarget) -> Option<Password> {
    password_from(
        std::env::var("PGPASSWORD").ok(),
        std::env::var_os("PGPASSFILE").map(PathBuf::from),
        std::env::var_os("HOME").map(PathBuf::from),
        target,
    )
}

/// [`password_from_env`] with the environment's values given: `pgpassword` (`PGPASSWORD`),
/// `pgpassfile` (`PGPASSFILE`) and `home` (`HOME`).
pub fn password_from(
    pgpassword: Option<String>,
    pgpassfile: Option<PathBuf>,
    home: Option<PathBuf>,
    target: &PgTarget,
) -> Option<Password> {
    if let Some(p) = pgpassword {
        return Some(Password::new(p));
    }
    let file = pgpassfile.or_else(|| home.map(|h| h.join(".pgpass")))?;
    if !private_file(&file) {
        return None;
    }
    let content = Zeroizing::new(std::fs::read_to_string(&file).ok()?);
    pgpass_lookup(&content, target)
}

#[cfg(unix)]
fn private_file(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o077 == 0)
        .unwrap_or(false)
}

#[cfg(not(unix))]
fn private_file(p: &Path) -> bool {
    p.is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pg(user: &str, host: &str, port: u16, db: &str) -> PgTarget {
        PgTarget {
            user: user.into(),
            host: host.into(),
            port,
            dbname: db.into(),
        }
    }

    #[test]
    fn parses_both_kinds() {
        assert_eq!(
            LedgerUrl::parse("sqlite:kicc-ledger.db"),
            Ok(LedgerUrl::Sqlite("kicc-ledger.db".into()))
        );
        assert_eq!(
            LedgerUrl::parse("sqlite:///tmp/x.db"),
            Ok(LedgerUrl::Sqlite("/tmp/x.db".into()))
        );
        assert_eq!(
            LedgerUrl::parse("postgres://kicc@db.internal:6543/ledger"),
            Ok(LedgerUrl::Postgres(pg(
                "kicc",
                "db.internal",
                6543,
                "ledger"
            )))
        );
        assert_eq!(
            LedgerUrl::parse("postgresql://kicc@[::1]/ledger"),
            Ok(LedgerUrl::Postgres(pg("kicc", "::1", 5432, "ledger")))
        );
        assert_eq!(
            pg("kicc", "::1", 5432, "l").to_string(),
            "postgres://kicc@[::1]:5432/l"
        );
    }

    #[test]
    fn refuses_passwords_without_repeating_them() {
        let err = LedgerUrl::parse("postgres://kicc:hunter2@h:5432/db").unwrap_err();
        assert_eq!(err, UrlError::PasswordInUrl);
        assert!(!format!("{err} {err:?}").contains("hunter2"));
        let p = Password::new("hunter2");
        assert!(!format!("{p:?}").contains("hunter2"));
    }

    #[test]
    fn refuses_malformed() {
        for bad in [
            "",
            "sqlite:",
            "mysql://u@h/db",
            "postgres://h:5432/db",
            "postgres://u@h:5432",
            "postgres://u@h:99999/db",
            "postgres://u@h:0/db",
            "postgres://u@/db",
            "postgres://u@h/db?sslmode=disable",
        ] {
            assert!(
                matches!(LedgerUrl::parse(bad), Err(UrlError::Malformed(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn pgpass_first_match_wildcards_and_escapes() {
        let t = pg("kicc", "127.0.0.1", 5433, "ledger");
        let content = "# comment\n\
                       other:5433:ledger:kicc:wrong\n\
                       127.0.0.1:5433:ledger:bob:wrong\n\
                       127.0.0.1:*:ledger:kicc:pa\\:ss\\\\word:x\n\
                       *:*:*:*:fallback\n";
        assert_eq!(
            pgpass_lookup(content, &t).map(|p| p.expose().to_owned()),
            Some("pa:ss\\word:x".to_owned())
        );
        let t2 = pg("alice", "h", 1, "d");
        assert_eq!(
            pgpass_lookup(content, &t2).map(|p| p.expose().to_owned()),
            Some("fallback".to_owned())
        );
        assert!(pgpass_lookup("h:1:d:alice\n", &t2).is_none());
        assert!(pgpass_lookup("", &t2).is_none());
        // Windows line endings.
        assert_eq!(
            pgpass_lookup("h:1:d:alice:pw\r\n", &t2).map(|p| p.expose().to_owned()),
            Some("pw".to_owned())
        );
    }

    #[test]
    fn password_sources_in_libpq_order() {
        let t = pg("kicc", "127.0.0.1", 5433, "ledger");
        let dir = std::env::temp_dir().join(format!("kicc-pgpass-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join(".pgpass");
        std::fs::write(&file, "127.0.0.1:5433:ledger:kicc:from-file\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
            // World-readable: ignored, like libpq.
            assert!(password_from(None, Some(file.clone()), None, &t).is_none());
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let got = |p: Option<Password>| p.map(|p| p.expose().to_owned());
        assert_eq!(
            got(password_from(None, Some(file.clone()), None, &t)),
            Some("from-file".into())
        );
        // $HOME/.pgpass when PGPASSFILE is unset.
        assert_eq!(
            got(password_from(None, None, Some(dir.clone()), &t)),
            Some("from-file".into())
        );
        // PGPASSWORD wins.
        assert_eq!(
            got(password_from(Some("env".into()), Some(file), None, &t)),
            Some("env".into())
        );
        assert!(password_from(None, Some(dir.join("missing")), None, &t).is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
