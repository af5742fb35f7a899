//! `cargo xtask audit`: `Cargo.lock` against the offline RustSec advisory database.
//!
//! The database is the plain directory `../shared/advisory-db` beside the repository (CI lays
//! a read-only copy there); nothing is fetched. Every vulnerability fails the check. An
//! `unmaintained` or `unsound` notice fails it too, unless `audit-accepted.toml` at the
//! repository root names the advisory with a reason. Other informational notices are printed.
//! Withdrawn advisories are ignored.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use rustsec::advisory::Informational;
use rustsec::database::Query;
use rustsec::{Database, Lockfile};

const USAGE: &str = "usage: cargo xtask audit [--db DIR] [--lockfile FILE] [--accepted FILE]

  Checks Cargo.lock against the RustSec advisory database snapshot (default ../shared/advisory-db,
  relative to the repository root). Fails on any vulnerability, and on unmaintained / unsound
  notices not accepted with a reason in audit-accepted.toml.";

/// The repository root (xtask lives one level below it).
pub(crate) fn repo_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(Path::to_path_buf).unwrap_or(manifest)
}

/// Where the advisory database is expected: `shared/advisory-db` beside the repository.
pub(crate) fn default_db() -> PathBuf {
    repo_root().join("..").join("shared").join("advisory-db")
}

/// What an advisory that applies to a locked package is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A vulnerability: never acceptable.
    Vulnerability,
    /// `informational = "unmaintained"`.
    Unmaintained,
    /// `informational = "unsound"`.
    Unsound,
    /// Any other informational kind (`notice`, or one added later).
    Other(String),
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::Vulnerability => f.write_str("vulnerability"),
            Kind::Unmaintained => f.write_str("unmaintained"),
            Kind::Unsound => f.write_str("unsound"),
            Kind::Other(s) => write!(f, "informational ({s})"),
        }
    }
}

/// One advisory that applies to one locked package.
#[derive(Debug, Clone)]
pub(crate) struct Finding {
    pub id: String,
    pub package: String,
    pub version: String,
    pub kind: Kind,
    pub title: String,
    /// The reason from the accepted list, when the advisory is accepted there.
    pub accepted: Option<String>,
}

impl Finding {
    /// Whether this finding fails the check.
    pub fn fails(&self) -> bool {
        match self.kind {
            Kind::Vulnerability => true,
            Kind::Unmaintained | Kind::Unsound => self.accepted.is_none(),
            Kind::Other(_) => false,
        }
    }
}

/// `audit-accepted.toml`: advisories accepted on purpose, each with a reason.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Accepted {
    #[serde(default)]
    accepted: Vec<AcceptedEntry>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AcceptedEntry {
    id: String,
    reason: String,
}

impl Accepted {
    /// Reads the accepted list; a missing file means nothing is accepted.
    pub fn load(path: &Path) -> Result<Accepted, String> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Accepted::default()),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        Accepted::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses the accepted list; every entry needs an advisory id and a non-empty reason.
    pub fn parse(text: &str) -> Result<Accepted, String> {
        let accepted: Accepted = toml::from_str(text).map_err(|e| e.to_string())?;
        for entry in &accepted.accepted {
            if !entry.id.starts_with("RUSTSEC-") {
                return Err(format!("`{}` is not a RustSec advisory id", entry.id));
            }
            if entry.reason.trim().is_empty() {
                return Err(format!("{} is accepted without a reason", entry.id));
            }
        }
        Ok(accepted)
    }

    fn reason(&self, id: &str) -> Option<&str> {
        self.accepted
            .iter()
            .find(|e| e.id == id)
            .map(|e| e.reason.as_str())
    }

    fn ids(&self) -> impl Iterator<Item = &str> {
        self.accepted.iter().map(|e| e.id.as_str())
    }
}

/// Every non-withdrawn advisory in `db` that applies to a package locked in `lockfile`.
pub(crate) fn check(db: &Database, lockfile: &Lockfile, accepted: &Accepted) -> Vec<Finding> {
    let query = Query::crate_scope();
    let vulns = db.query_vulnerabilities(lockfile, &query);
    let informational = db.query_vulnerabilities(lockfile, &query.informational(true));
    let mut out: BTreeMap<(String, String, String), Finding> = BTreeMap::new();
    for v in vulns.into_iter().chain(informational) {
        let kind = match &v.advisory.informational {
            None => Kind::Vulnerability,
            Some(Informational::Unmaintained) => Kind::Unmaintained,
            Some(Informational::Unsound) => Kind::Unsound,
            Some(other) => Kind::Other(other.as_str().to_owned()),
        };
        let id = v.advisory.id.to_string();
        let accepted = accepted.reason(&id).map(str::to_owned);
        let key = (
            id.clone(),
            v.package.name.to_string(),
            v.package.version.to_string(),
        );
        out.insert(
            key,
            Finding {
                id,
                package: v.package.name.to_string(),
                version: v.package.version.to_string(),
                kind,
                title: v.advisory.title.clone(),
                accepted,
            },
        );
    }
    out.into_values().collect()
}

/// Opens the database and the lockfile, checks, prints, and fails if anything must fail.
pub(crate) fn audit(db_dir: &Path, lock_path: &Path, accepted_path: &Path) -> Result<(), String> {
    if !db_dir.join("crates").is_dir() {
        return Err(format!(
            "no advisory database at {} (expected the RustSec snapshot with a crates/ folder)",
            db_dir.display()
        ));
    }
    let db = Database::open(db_dir).map_err(|e| {
        format!(
            "cannot read the advisory database {}: {e}",
            db_dir.display()
        )
    })?;
    let lockfile = Lockfile::load(lock_path)
        .map_err(|e| format!("cannot read {}: {e}", lock_path.display()))?;
    let accepted = Accepted::load(accepted_path)?;
    let findings = check(&db, &lockfile, &accepted);
    eprintln!(
        "audit: {} advisories in {}, {} packages in {}",
        db.iter().count(),
        db_dir.display(),
        lockfile.packages.len(),
        lock_path.display()
    );
    for f in &findings {
        let verdict = match (&f.accepted, f.fails()) {
            (_, true) => "FAIL".to_owned(),
            (Some(reason), false) => format!("accepted: {reason}"),
            (None, false) => "note".to_owned(),
        };
        eprintln!(
            "  {} {} {}: {} ({}) [{}]",
            f.id, f.package, f.version, f.title, f.kind, verdict
        );
    }
    for id in accepted.ids() {
        if !findings.iter().any(|f| f.id == id) {
            eprintln!("  note: {id} is accepted but no longer applies; it can be removed");
        }
    }
    let failing = findings.iter().filter(|f| f.fails()).count();
    if failing > 0 {
        Err(format!(
            "{failing} advisories fail the audit (vulnerabilities, or unmaintained/unsound notices not in {})",
            accepted_path.display()
        ))
    } else {
        eprintln!(
            "audit: no vulnerability, no unaccepted unmaintained/unsound notice ({} findings)",
            findings.len()
        );
        Ok(())
    }
}

/// `cargo xtask audit [--db DIR] [--lockfile FILE] [--accepted FILE]`.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let root = repo_root();
    let mut db = default_db();
    let mut lock = root.join("Cargo.lock");
    let mut accepted = root.join("audit-accepted.toml");
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .map(PathBuf::from)
                .ok_or_else(|| format!("{a} needs a value\n{USAGE}"))
        };
        match a.as_str() {
            "--db" => db = value()?,
            "--lockfile" => lock = value()?,
            "--accepted" => accepted = value()?,
            _ => return Err(format!("unknown argument {a}\n{USAGE}")),
        }
    }
    audit(&db, &lock, &accepted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Database {
        let dir = default_db();
        Database::open(&dir).unwrap_or_else(|e| {
            panic!(
                "the advisory database snapshot is expected at {}: {e}",
                dir.display()
            )
        })
    }

    /// A lockfile with the workspace's own package plus `extra` registry packages.
    fn fixture(extra: &[(&str, &str)]) -> Lockfile {
        let mut text = String::from(
            "version = 4\n\n[[package]]\nname = \"fixture\"\nversion = \"0.1.0\"\ndependencies = [\n",
        );
        for (name, _) in extra {
            text.push_str(&format!("  \"{name}\",\n"));
        }
        text.push_str("]\n");
        for (name, version) in extra {
            text.push_str(&format!(
                "\n[[package]]\nname = \"{name}\"\nversion = \"{version}\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n"
            ));
        }
        text.parse().expect("fixture lockfile parses")
    }

    #[test]
    fn a_vulnerable_version_fails_and_a_patched_one_passes() {
        let db = db();
        // RUSTSEC-2021-0003: SmallVec::insert_many buffer overflow, patched in 1.6.1.
        let found = check(
            &db,
            &fixture(&[("smallvec", "1.6.0")]),
            &Accepted::default(),
        );
        let hit = found
            .iter()
            .find(|f| f.id == "RUSTSEC-2021-0003")
            .expect("smallvec 1.6.0 is under RUSTSEC-2021-0003");
        assert_eq!(hit.kind, Kind::Vulnerability);
        assert!(hit.fails());
        // Even an accepted vulnerability fails.
        let accepted =
            Accepted::parse("[[accepted]]\nid = \"RUSTSEC-2021-0003\"\nreason = \"test\"\n")
                .unwrap();
        let found = check(&db, &fixture(&[("smallvec", "1.6.0")]), &accepted);
        assert!(found.iter().any(Finding::fails));

        let found = check(
            &db,
            &fixture(&[("smallvec", "1.6.1")]),
            &Accepted::default(),
        );
        assert!(
            found.iter().all(|f| f.id != "RUSTSEC-2021-0003"),
            "{found:?}"
        );
    }

    #[test]
    fn a_fixture_lockfile_on_disk_fails_the_whole_audit() {
        let dir = std::env::temp_dir().join(format!("xtask-audit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let lock = dir.join("Cargo.lock");
        std::fs::write(&lock, fixture(&[("time", "0.1.43")]).to_string()).unwrap();
        let err = audit(&default_db(), &lock, &dir.join("none.toml")).unwrap_err();
        assert!(err.contains("fail the audit"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unmaintained_fails_unless_accepted_with_a_reason() {
        let db = db();
        // RUSTSEC-2021-0139: ansi_term is unmaintained.
        let lock = fixture(&[("ansi_term", "0.12.1")]);
        let found = check(&db, &lock, &Accepted::default());
        let hit = found
            .iter()
            .find(|f| f.id == "RUSTSEC-2021-0139")
            .expect("ansi_term is unmaintained");
        assert_eq!(hit.kind, Kind::Unmaintained);
        assert!(hit.fails());

        let accepted = Accepted::parse(
            "[[accepted]]\nid = \"RUSTSEC-2021-0139\"\nreason = \"only in a dev tool\"\n",
        )
        .unwrap();
        let found = check(&db, &lock, &accepted);
        assert!(!found.iter().any(Finding::fails), "{found:?}");

        assert!(
            Accepted::parse("[[accepted]]\nid = \"RUSTSEC-2021-0139\"\nreason = \" \"\n").is_err()
        );
        assert!(Accepted::parse("[[accepted]]\nid = \"RUSTSEC-2021-0139\"\n").is_err());
        assert!(Accepted::parse("[[accepted]]\nid = \"CVE-1\"\nreason = \"x\"\n").is_err());
    }

    #[test]
    fn the_real_lockfile_passes() {
        let root = repo_root();
        audit(
            &default_db(),
            &root.join("Cargo.lock"),
            &root.join("audit-accepted.toml"),
        )
        .expect("Cargo.lock passes the audit");
    }

    #[test]
    fn a_missing_database_is_an_error_not_a_pass() {
        let root = repo_root();
        let err = audit(
            &root.join("no-such-advisory-db"),
            &root.join("Cargo.lock"),
            &root.join("audit-accepted.toml"),
        )
        .unwrap_err();
        assert!(err.contains("no advisory database"), "{err}");
    }
}
