//! The command line, as clap (derive) types. Everything a user can type is declared here; the
//! rules that clap cannot express (channel-only flags, `--timestamp` only with `--dry-run`, ...)
//! are checked by the commands and reported as one-line invalid-input errors (exit 2).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};

/// What `--help` shows after the options: the exit codes, which scripts rely on.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success: cancelled (WeChat Pay: accepted, or final with --wait); status: cancelled; revoked
  1  declined, or certainly not processed (the gateway said no, or nothing reached it): safe to retry or give up
  2  invalid input: nothing was sent (one line on stderr names the field and the rule)
  3  outcome unknown (timeouts, lost connections, unverifiable answers): query the payment before acting
  4  still pending (WeChat Pay: accepted but no final result within --wait; status: not cancelled yet)
  5  local failure: the command itself could not work (cannot listen, TLS setup, a demo step misbehaved)

Credentials come only from the environment: KICC_MALL_ID and KICC_SECRET_KEY. With --env sandbox and
no --base-url (or a loopback one), missing ones fall back to the sandbox-only credentials T0000001 /
sandbox-secret-key; with --env test or production they are required. Production is never a default.
WeChat Pay Global's API v3 key (to decrypt platform certificates) comes only from WECHATPAY_APIV3_KEY;
with --env sandbox it falls back to the sandbox-only key.";

/// `kicc`: cancel KICC EasyPay payments, check WeChat Pay cancellations, revoke WeChat Pay Global
/// orders, and run the local KICC sandbox.
#[derive(Debug, Parser)]
#[command(
    name = "kicc",
    version,
    about = "Cancel KICC EasyPay payments (card, Alipay, WeChat Pay), revoke WeChat Pay Global orders, and run the local sandbox.",
    after_help = EXIT_CODES_HELP,
    arg_required_else_help = true
)]
pub struct Cli {
    /// Options shared by every command.
    #[command(flatten)]
    pub global: Global,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Where requests go, and how they are sent.
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// Which installation to talk to: sandbox = http://127.0.0.1:8780 (`kicc sandbox serve`),
    /// test = KICC's test host, production = real money (never a default).
    #[arg(long, global = true, value_enum, default_value_t = EnvName::Sandbox)]
    pub env: EnvName,

    /// Overrides the environment's base URL (https://..., or http:// for a loopback host only).
    #[arg(long, global = true, value_name = "URL")]
    pub base_url: Option<String>,

    /// Also trust the root certificate(s) in this PEM file (e.g. from `kicc sandbox serve --tls
    /// --root-cert-out FILE`).
    #[arg(long, global = true, value_name = "PEM_FILE")]
    pub root_cert: Option<PathBuf>,
}

/// `--env`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EnvName {
    /// The local sandbox, `http://127.0.0.1:8780` unless `--base-url` says otherwise.
    Sandbox,
    /// KICC's test host, `https://testpgapi.easypay.co.kr`.
    Test,
    /// KICC's production host, `https://pgapi.easypay.co.kr`: real money.
    Production,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Cancel a payment, fully or partly, through KICC.
    Cancel(CancelArgs),
    /// Ask KICC about a cancellation.
    #[command(subcommand)]
    Status(StatusCommand),
    /// WeChat Pay Global API v3, directly (not through KICC).
    #[command(subcommand)]
    Wechatpay(WechatpayCommand),
    /// The local KICC simulator.
    #[command(subcommand)]
    Sandbox(SandboxCommand),
    /// A guided tour: starts a sandbox in-process and cancels card, Alipay and WeChat Pay
    /// payments through the SDK, showing each request, result and check.
    Demo,
}

/// Which KICC API a cancel goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CancelChannel {
    /// Card, bank transfer, mobile, cash receipt (`/api/trades/revise`).
    Generic,
    /// Alipay (`/api/trades/alipay/revise`).
    Alipay,
    /// WeChat Pay through KICC (`/api/trades/wechatpay/revise`): accepted now, final later.
    Wechat,
}

impl CancelChannel {
    /// The name as typed.
    pub fn name(self) -> &'static str {
        match self {
            CancelChannel::Generic => "generic",
            CancelChannel::Alipay => "alipay",
            CancelChannel::Wechat => "wechat",
        }
    }
}

/// `kicc cancel`.
#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES_HELP)]
pub struct CancelArgs {
    /// The channel: generic (card, transfer, mobile, cash receipt), alipay or wechat.
    #[arg(value_enum)]
    pub channel: CancelChannel,

    /// The payment's PG transaction ID (`pgCno`).
    #[arg(long, value_name = "ID")]
    pub pg_cno: String,

    /// The `reviseTypeCode`; default 40 (full), or 32 (partial) when --amount is given.
    #[arg(long = "type", value_name = "CODE")]
    pub revise_type: Option<String>,

    /// The amount to cancel, in major units as a person writes it (`12.03` USD is sent as 1203).
    #[arg(long, value_name = "DECIMAL")]
    pub amount: Option<String>,

    /// The amount's currency: KRW or USD (generic: KRW only).
    #[arg(long, value_name = "KRW|USD")]
    pub currency: Option<String>,

    /// Why (generic: `reviseMessage`, alipay / wechat: `memo`).
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,

    /// Your idempotency key for this request; a new one is generated when absent.
    #[arg(long, value_name = "KEY")]
    pub shop_transaction_id: Option<String>,

    /// wechat only: where KICC posts the result (`notifyUrl`).
    #[arg(long, value_name = "URL")]
    pub notify_url: Option<String>,

    /// wechat only: after acceptance, query the status (`find`) until the result is final, for
    /// at most this many seconds (exit 4 if it is not final by then).
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub wait: Option<u64>,

    /// The most attempts for one request (retries follow the API's rules).
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub max_attempts: u32,

    /// Send nothing: print the exact request as one JSON object (method, url, headers, body).
    #[arg(long)]
    pub dry_run: bool,
}

/// `kicc status ...`.
#[derive(Debug, Subcommand)]
pub enum StatusCommand {
    /// The status of a WeChat Pay cancellation (`/api/trades/wechatpay/find`).
    #[command(after_help = EXIT_CODES_HELP)]
    Wechat(StatusArgs),
}

/// `kicc status wechat`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The payment's PG transaction ID (`pgCno`).
    #[arg(long, value_name = "ID")]
    pub pg_cno: String,

    /// The cancellation's transaction ID (`cancelPgCno`), as `kicc cancel wechat` printed it.
    #[arg(long, value_name = "ID")]
    pub cancel_pg_cno: String,

    /// The query's own idempotency key; a new one is generated when absent.
    #[arg(long, value_name = "KEY")]
    pub shop_transaction_id: Option<String>,

    /// The most attempts for the query.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub max_attempts: u32,

    /// Send nothing: print the exact request as one JSON object.
    #[arg(long)]
    pub dry_run: bool,
}

/// `kicc wechatpay ...`.
#[derive(Debug, Subcommand)]
pub enum WechatpayCommand {
    /// Revoke (reverse) an order through WeChat Pay Global API v3, signed with your RSA key.
    #[command(after_help = REVERSE_HELP)]
    Reverse(ReverseArgs),
    /// Query an order (its trade_state) through WeChat Pay Global API v3, verified.
    Query(crate::wechatpay_cmds::QueryArgs),
    /// Download, verify and decrypt WeChat Pay's platform certificates into a directory.
    Certificates(crate::wechatpay_cmds::CertificatesArgs),
}

/// What `kicc wechatpay reverse --help` adds.
const REVERSE_HELP: &str = "\
Where it goes: --base-url if given; otherwise --env sandbox = http://127.0.0.1:8780 (the sandbox),
--env production = https://apihk.mch.weixin.qq.com. WeChat Pay Global has no test host.
WeChat Pay's answer is verified with --platform-cert and/or --wechatpay-public-key (with
--wechatpay-public-key-id); without either, the platform certificates are downloaded first and
decrypted with the API v3 key from WECHATPAY_APIV3_KEY (with --env sandbox: the sandbox-only key
when unset). --timestamp and --nonce fix the signature inputs and are only accepted with --dry-run,
whose JSON adds \"signed_message\", the exact string that was signed; --dry-run downloads nothing.
When the answer leaves the outcome open (SYSTEM_ERROR, 5xx after the retries, an unverifiable 2xx,
a lost answer) the order is queried: REVOKED or CLOSED is done; SUCCESS, USERPAYING or NOTPAY is
revoked once more with a fresh signature; REFUND cannot be revoked (refund instead). --no-query
skips this and reports the outcome as unknown.

Exit codes: 0 revoked (HTTP 204 verified, or the order query says REVOKED or CLOSED); 1 certainly
not revoked (also REFUND: refund instead); 2 invalid input; 3 outcome unknown (PAYERROR or an
unknown trade_state, or the query failed): query the order again before acting; 5 local failure.";

/// `kicc wechatpay reverse`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("order").required(true).args(["out_trade_no", "transaction_id"])))]
pub struct ReverseArgs {
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

    /// A WeChat Pay platform certificate (PEM) to verify the answer with; repeatable.
    #[arg(long, value_name = "PEM_FILE")]
    pub platform_cert: Vec<PathBuf>,

    /// A WeChat Pay public key (SPKI PEM) to verify the answer with (needs its ID).
    #[arg(long, value_name = "PEM_FILE", requires = "wechatpay_public_key_id")]
    pub wechatpay_public_key: Option<PathBuf>,

    /// The ID of --wechatpay-public-key (`PUB_KEY_ID_...`).
    #[arg(long, value_name = "ID", requires = "wechatpay_public_key")]
    pub wechatpay_public_key_id: Option<String>,

    /// When the payment was made (Unix seconds): turns on the timing rules (not within 15 s of
    /// the payment, not after 7 days).
    #[arg(long, value_name = "UNIX")]
    pub paid_at: Option<String>,

    /// Dry-run only: the signature's timestamp (Unix seconds), to reproduce a signature.
    #[arg(long, value_name = "UNIX")]
    pub timestamp: Option<String>,

    /// Dry-run only: the signature's nonce (32 characters of [0-9A-Za-z]).
    #[arg(long, value_name = "STR")]
    pub nonce: Option<String>,

    /// The most attempts (5xx, timeouts and connection failures are retried with the same bytes).
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub max_attempts: u32,

    /// Do not query the order when the outcome is open: report it as unknown (exit 3).
    #[arg(long)]
    pub no_query: bool,

    /// Send nothing: print the signed request as one JSON object, with "signed_message".
    #[arg(long)]
    pub dry_run: bool,
}

/// `kicc sandbox ...`.
#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Run the sandbox until Ctrl-C or SIGTERM. The first line on stdout is exactly
    /// `listening on http://HOST:PORT` (or https://).
    #[command(after_help = SERVE_HELP)]
    Serve(ServeArgs),
}

/// What `kicc sandbox serve --help` adds.
const SERVE_HELP: &str = "\
Credentials the sandbox accepts: mall ID from KICC_MALL_ID or else T0000001; secret key from
KICC_SECRET_KEY or else the sandbox-only key `sandbox-secret-key` (it protects nothing: never use
it anywhere else). The sandbox's codes other than 0000 are sandbox codes; see kicc-sandbox's docs.
WeChat Pay Global: the platform certificates listing is encrypted with the API v3 key from
WECHATPAY_APIV3_KEY (exactly 32 bytes) or else the sandbox-only `kicc-sandbox-apiv3-key-PUBLIC-01`.

With --tls the sandbox serves HTTPS with a certificate signed by a root generated at start. The
root's PEM is written to --root-cert-out FILE, or else to a new file in the temporary directory
(removed on exit); either way the second stdout line is `root certificate: PATH`. Clients trust it
with `kicc --root-cert PATH ...`.

Exit codes: 0 stopped by Ctrl-C / SIGTERM; 2 invalid option; 5 cannot listen or set up TLS.";

/// `kicc sandbox serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Where to listen; port 0 picks a free port.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:8780")]
    pub addr: SocketAddr,

    /// Serve HTTPS (see below for the root certificate).
    #[arg(long)]
    pub tls: bool,

    /// With --tls: write the root certificate's PEM to this file.
    #[arg(long, value_name = "FILE", requires = "tls")]
    pub root_cert_out: Option<PathBuf>,

    /// How long after accepting a WeChat Pay cancel it is applied and its notice sent.
    #[arg(long, value_name = "MILLIS", default_value_t = 500)]
    pub webhook_delay_ms: u64,

    /// Wait between two deliveries of an unacknowledged notice.
    #[arg(long, value_name = "MILLIS", default_value_t = 1000)]
    pub webhook_retry_interval_ms: u64,

    /// How long an injected `timeout` fault stalls before answering.
    #[arg(long, value_name = "MILLIS", default_value_t = 35_000)]
    pub timeout_fault_delay_ms: u64,

    /// Seed of every generated identifier (same seed and calls, same identifiers).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
}
