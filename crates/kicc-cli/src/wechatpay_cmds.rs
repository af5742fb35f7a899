//! `kicc wechatpay query` and `kicc wechatpay certificates`, and what `reverse` shares with
//! them: the merchant, the client, the API v3 key, and downloading platform certificates when
//! no `--platform-cert` is given.
//!
//! The API v3 key comes only from the environment (`WECHATPAY_APIV3_KEY`), never a flag; with
//! `--env sandbox` towards the sandbox it falls back to the sandbox-only
//! [`kicc_sandbox::SANDBOX_APIV3_KEY`]. `--dry-run` never downloads anything nor needs it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use clap::{ArgGroup, Args};
use serde_json::json;
use wechatpay_direct::kicc_transport::HyperTransport;
use wechatpay_direct::{
    ApiV3Key, BaseUrl, CertError, CertificateManager, MerchantConfig, MerchantMode, OrderRef,
    QueryError, RefreshPolicy, ReverseClient, RsaPrivateKey, SecretPem, SerialNo, VerificationKeys,
};
use zeroize::Zeroizing;

use crate::cli::{EnvName, Global};
use crate::creds::{self, SANDBOX_URL};
use crate::exit::{Exit, Failure, Report};
use crate::kicc_cmds::progress_wanted;
use crate::observe::Observed;

/// Where the API v3 key comes from.
pub const APIV3_KEY_VAR: &str = "WECHATPAY_APIV3_KEY";

/// The client every WeChat Pay command uses.
pub type Client = ReverseClient<Observed<HyperTransport>>;

/// What `kicc wechatpay query --help` adds.
const QUERY_HELP: &str = "\
Prints the order as one JSON object with WeChat Pay's own field names (trade_state, ...), after
verifying WeChat Pay's signature. Without --platform-cert the platform certificates are downloaded
first, decrypted with the API v3 key from WECHATPAY_APIV3_KEY (with --env sandbox: the sandbox-only
key when unset). --dry-run prints the signed request and needs no API v3 key.

Exit codes: 0 the order, verified; 1 the order does not exist (ORDER_NOT_EXIST); 2 invalid input;
3 the answer could not be obtained or verified; 5 local failure.";

/// `kicc wechatpay query`.
#[derive(Debug, Args)]
#[command(after_help = QUERY_HELP)]
#[command(group(ArgGroup::new("order").required(true).args(["out_trade_no", "transaction_id"])))]
pub struct QueryArgs {
    /// The merchant's order number (`out_trade_no`).
    #[arg(long, value_name = "NO")]
    pub out_trade_no: Option<String>,

    /// WeChat Pay's transaction ID (`transaction_id`).
    #[arg(long, value_name = "ID")]
    pub transaction_id: Option<String>,

    /// Your merchant ID (`mchid`; with --sub-mchid, the institution's `sp_mchid`).
    #[arg(long, value_name = "ID")]
    pub mchid: String,

    /// Institutional mode: the sub-merchant's ID (`sub_mchid`).
    #[arg(long, value_name = "ID")]
    pub sub_mchid: Option<String>,

    /// The serial number of your merchant API certificate.
    #[arg(long, value_name = "SERIAL")]
    pub serial_no: String,

    /// Your merchant API private key (PKCS#8 or PKCS#1 PEM file). Never printed.
    #[arg(long, value_name = "PEM_FILE")]
    pub private_key: PathBuf,

    /// A WeChat Pay platform certificate (PEM) to verify the answer with; repeatable. Without
    /// one, the certificates are downloaded.
    #[arg(long, value_name = "PEM_FILE")]
    pub platform_cert: Vec<PathBuf>,

    /// The most attempts (5xx, timeouts and connection failures are retried with the same bytes).
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub max_attempts: u32,

    /// Send nothing: print the signed request as one JSON object, with "signed_message".
    #[arg(long)]
    pub dry_run: bool,
}

/// What `kicc wechatpay certificates --help` adds.
const CERTIFICATES_HELP: &str = "\
Downloads WeChat Pay's platform certificates (GET /v3/global/certificates), verifies the answer
(the first time with the certificate whose serial is its Wechatpay-Serial), decrypts each one with
the API v3 key from WECHATPAY_APIV3_KEY (AEAD_AES_256_GCM; with --env sandbox: the sandbox-only key
when unset), checks its serial, writes DIR/SERIAL.pem for each, and prints one JSON object per line:
{\"serial_no\", \"effective_time\", \"expire_time\", \"file\"}.

Exit codes: 0 written; 2 invalid input; 3 the answer could not be obtained, verified or decrypted
(e.g. a wrong API v3 key); 5 local failure (e.g. cannot write DIR).";

/// `kicc wechatpay certificates`.
#[derive(Debug, Args)]
#[command(after_help = CERTIFICATES_HELP)]
pub struct CertificatesArgs {
    /// Your merchant ID (`mchid`; the institution's `sp_mchid` in institutional mode).
    #[arg(long, value_name = "ID")]
    pub mchid: String,

    /// The serial number of your merchant API certificate.
    #[arg(long, value_name = "SERIAL")]
    pub serial_no: String,

    /// Your merchant API private key (PKCS#8 or PKCS#1 PEM file). Never printed.
    #[arg(long, value_name = "PEM_FILE")]
    pub private_key: PathBuf,

    /// The directory to write one PEM file per certificate into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// Send nothing: print the signed request as one JSON object, with "signed_message".
    #[arg(long)]
    pub dry_run: bool,
}

/// Where requests go: `--base-url`, else the sandbox or WeChat Pay's Hong Kong host.
pub fn base_url(global: &Global) -> Result<BaseUrl, Failure> {
    if let Some(url) = &global.base_url {
        return Ok(BaseUrl::new(url.as_str())?);
    }
    match global.env {
        EnvName::Sandbox => Ok(BaseUrl::new(SANDBOX_URL)?),
        EnvName::Production => Ok(BaseUrl::hong_kong()),
        EnvName::Test => Err(Failure::invalid(
            "env: WeChat Pay Global has no test environment; use --env sandbox, --env production or --base-url",
        )),
    }
}

/// Reads a text file named by `flag`.
pub fn read_text(flag: &str, path: &Path) -> Result<String, Failure> {
    std::fs::read_to_string(path)
        .map_err(|e| Failure::invalid(format!("{flag}: cannot read {}: {e}", path.display())))
}

/// Platform certificates from `--platform-cert` files.
pub fn platform_certs(paths: &[PathBuf], keys: &mut VerificationKeys) -> Result<(), Failure> {
    for path in paths {
        let pem = read_text("platform-cert", path)?;
        keys.add_certificate_pem(&pem)
            .map_err(|e| Failure::invalid(format!("platform-cert: {}: {e}", path.display())))?;
    }
    Ok(())
}

/// Common mode, or institutional with `--sub-mchid`.
pub fn mode(mchid: &str, sub_mchid: Option<&str>) -> Result<MerchantMode, Failure> {
    Ok(match sub_mchid {
        None => MerchantMode::common(mchid)?,
        Some(sub) => MerchantMode::institutional(mchid, sub)?,
    })
}

/// The merchant's private key from its PEM file (the text is zeroed after loading).
pub fn private_key(path: &Path) -> Result<RsaPrivateKey, Failure> {
    let pem = SecretPem::new(read_text("private-key", path)?);
    RsaPrivateKey::from_pem(&pem).map_err(|e| Failure::invalid(format!("private-key: {e}")))
}

/// The client for `mode`, with `keys` and `max_attempts`.
pub fn client(
    global: &Global,
    mode: MerchantMode,
    serial_no: &str,
    key: RsaPrivateKey,
    keys: VerificationKeys,
    max_attempts: u32,
) -> Result<(Client, BaseUrl), Failure> {
    let base = base_url(global)?;
    let serial_no = SerialNo::new(serial_no)?;
    let transport = Observed::new(creds::transport(global)?, progress_wanted());
    let config = MerchantConfig::builder()
        .mode(mode)
        .serial_no(serial_no)
        .private_key(Arc::new(key))
        .verification_keys(keys)
        .build()?;
    let client = ReverseClient::new(transport, config)
        .with_base_urls(base.clone(), None)
        .with_retry_policy(
            wechatpay_direct::RetryPolicy::builder()
                .max_attempts(max_attempts)
                .build()?,
        );
    Ok((client, base))
}

/// The API v3 key: `WECHATPAY_APIV3_KEY`, else (sandbox only) the sandbox-only key.
pub fn apiv3_key(global: &Global) -> Result<ApiV3Key, Failure> {
    let text = match creds::env_var(APIV3_KEY_VAR)? {
        Some(v) => Zeroizing::new(v),
        None if creds::sandbox_fallback(global) => {
            Zeroizing::new(kicc_sandbox::SANDBOX_APIV3_KEY.to_owned())
        }
        None => {
            return Err(Failure::invalid(format!(
                "{APIV3_KEY_VAR}: the API v3 key is required to decrypt the platform certificates \
                 (or give --platform-cert)"
            )))
        }
    };
    ApiV3Key::new(text.as_bytes()).map_err(|e| Failure::invalid(format!("{APIV3_KEY_VAR}: {e}")))
}

/// Makes `client` download and keep the platform certificates itself, downloading them now.
/// A failed download is exit 3 (the answer could not be obtained, verified or decrypted).
pub async fn with_downloaded_certificates(
    global: &Global,
    client: Client,
) -> Result<Client, Failure> {
    let key = apiv3_key(global)?;
    let manager = Arc::new(Mutex::new(
        CertificateManager::new(RefreshPolicy::default()),
    ));
    let client = client.with_certificate_manager(manager, key);
    match client.refresh_certificates().await {
        Ok(_) => Ok(client),
        Err(e) => Err(cert_failure(&e)),
    }
}

/// Exit 3 and a clear line for a certificates download that failed.
fn cert_failure(e: &CertError) -> Failure {
    Failure {
        exit: Exit::Unknown,
        message: format!("cannot obtain WeChat Pay's platform certificates: {e}"),
    }
}

fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

/// `kicc wechatpay query ...`.
pub async fn query(global: &Global, args: &QueryArgs) -> Result<Report, Failure> {
    let order = match (&args.out_trade_no, &args.transaction_id) {
        (Some(no), None) => OrderRef::out_trade_no(no.as_str())?,
        (None, Some(id)) => OrderRef::transaction_id(id.as_str())?,
        _ => {
            return Err(Failure::invalid(
                "out_trade_no: give exactly one of --out-trade-no and --transaction-id",
            ))
        }
    };
    let mode = mode(&args.mchid, args.sub_mchid.as_deref())?;
    let mut keys = VerificationKeys::new();
    platform_certs(&args.platform_cert, &mut keys)?;
    let key = private_key(&args.private_key)?;
    let (client, base) = client(global, mode, &args.serial_no, key, keys, args.max_attempts)?;
    if args.dry_run {
        let signed = client
            .sign_query(&order)
            .map_err(|e| Failure::local(e.to_string()))?;
        return Ok(Report::ok(pretty(&signed.dry_run_json(&base))));
    }
    let client = if args.platform_cert.is_empty() {
        with_downloaded_certificates(global, client).await?
    } else {
        client
    };
    match client.query(&order).await {
        Ok(o) => Ok(Report::ok(pretty(&serde_json::Value::Object(o.raw)))),
        Err(e) if e.is_order_not_found() => Err(Failure {
            exit: Exit::NotDone,
            message: format!("the order does not exist: {e}"),
        }),
        Err(e @ (QueryError::Invalid(_) | QueryError::Sign(_))) => {
            Err(Failure::local(e.to_string()))
        }
        Err(e) => Err(Failure {
            exit: Exit::Unknown,
            message: format!("the order's state could not be obtained or verified: {e}"),
        }),
    }
}

/// `kicc wechatpay certificates ...`.
pub async fn certificates(global: &Global, args: &CertificatesArgs) -> Result<Report, Failure> {
    let mode = MerchantMode::common(args.mchid.as_str())?;
    let key = private_key(&args.private_key)?;
    let (client, base) = client(
        global,
        mode,
        &args.serial_no,
        key,
        VerificationKeys::new(),
        3,
    )?;
    if args.dry_run {
        let signed = client
            .sign_certificates()
            .map_err(|e| Failure::local(e.to_string()))?;
        return Ok(Report::ok(pretty(&signed.dry_run_json(&base))));
    }
    let api_key = apiv3_key(global)?;
    let certs = client
        .download_certificates(&api_key)
        .await
        .map_err(|e| cert_failure(&e))?;
    std::fs::create_dir_all(&args.out)
        .map_err(|e| Failure::local(format!("out: cannot create {}: {e}", args.out.display())))?;
    let mut lines = Vec::with_capacity(certs.len());
    for c in &certs {
        let file = args.out.join(format!("{}.pem", c.serial.as_str()));
        std::fs::write(&file, c.pem.as_bytes())
            .map_err(|e| Failure::local(format!("out: cannot write {}: {e}", file.display())))?;
        lines.push(
            json!({
                "serial_no": c.serial.as_str(),
                "effective_time": c.effective_time_text,
                "expire_time": c.expire_time_text,
                "file": file.display().to_string(),
            })
            .to_string(),
        );
    }
    Ok(Report::ok(lines.join("\n")))
}
