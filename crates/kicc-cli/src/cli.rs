//! The command line, as clap (derive) types. Everything a user can type is declared here; the
//! rules that clap cannot express (channel-only flags, `--timestamp` only with `--dry-run`, ...)
//! are checked by the commands and reported as one-line invalid-input errors (exit 2).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};

/// What `--help` shows after the options: the exit codes, which scripts rely on.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success: cancelled (WeChat Pay: accepted, or final with --wait); status: cancelled; revoked
  1  declined, or certainly not processed (the gateway said no, or nothing reached it): safe to retry or give up
  1  also: already cancelled as <cancelPgCno>, not by this command (an earlier cancel, proven not this one)
  2  invalid input: nothing was sent (one line on stderr names the field and the rule)
  3  outcome unknown (timeouts, lost connections, unverifiable answers): the error line ends with the exact
     command that resumes the cancel safely (it looks the keys up first); status: status unknown
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

    /// How long one attempt may take, in seconds (KICC documents 30 s for every call).
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub timeout: u64,

    /// Send requests through this HTTP proxy (`http://[user:password@]host:port`) instead of the
    /// one named by HTTPS_PROXY / HTTP_PROXY / ALL_PROXY (which are honoured by default); NO_PROXY
    /// still applies. Prefer the environment for a password: the command line is visible to
    /// other users of the machine.
    #[arg(long, global = true, value_name = "URL", conflicts_with = "no_proxy")]
    pub proxy: Option<ProxyUrl>,

    /// Connect directly, ignoring HTTPS_PROXY / HTTP_PROXY / ALL_PROXY.
    #[arg(long, global = true)]
    pub no_proxy: bool,

    /// Bind outgoing connections to this local IP address (an egress address registered with
    /// the gateway).
    #[arg(long, global = true, value_name = "IP")]
    pub local_address: Option<IpAddr>,
}

/// `--proxy`: a proxy URL that may hold a password, so `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl(pub String);

impl std::str::FromStr for ProxyUrl {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(ProxyUrl(s.to_owned()))
    }
}

impl std::fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProxyUrl(..)")
    }
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
    Cancel(Box<CancelArgs>),
    /// Ask KICC about a cancellation.
    #[command(subcommand)]
    Status(StatusCommand),
    /// WeChat Pay Global API v3, directly (not through KICC).
    #[command(subcommand)]
    Wechatpay(WechatpayCommand),
    /// The local KICC simulator.
    #[command(subcommand)]
    Sandbox(SandboxCommand),
    /// Cancel every row of a CSV file through the ledger, exactly once per `intent_id`.
    #[command(subcommand)]
    Batch(crate::ledger_cmds::BatchCommand),
    /// The ledger of journaled cancels: list and recover.
    #[command(subcommand)]
    Ledger(crate::ledger_cmds::LedgerCommand),
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

    /// generic: the cancellable balance BEFORE this cancel, in major units (sent as
    /// `remainAmount` for KICC to check; partial codes only).
    #[arg(long, value_name = "DECIMAL")]
    pub remain_amount: Option<String>,

    /// generic: what `remainAmount` carries for the --remain-amount balance: that balance
    /// (`balanceBefore`, the default) or the balance left after this cancel (`balanceAfter`).
    /// KICC's pages leave it open; the default is an inference (see kicc-generic).
    #[arg(long, value_name = "RULE", value_parser = ["balanceBefore", "balanceAfter"])]
    pub remain_amount_convention: Option<String>,

    /// generic: how the payment was made; chooses the partial code (card 32, transfer and
    /// mobile 33) when --type is not given.
    #[arg(long, value_enum, value_name = "METHOD")]
    pub method: Option<MethodName>,

    /// generic: the cancelled taxable amount (`taxInfo`; all three tax options or none).
    #[arg(long, value_name = "WON")]
    pub tax_amount: Option<u64>,

    /// generic: the cancelled VAT (`taxInfo`; all three tax options or none).
    #[arg(long, value_name = "WON")]
    pub vat_amount: Option<u64>,

    /// generic: the cancelled tax-free amount (`taxInfo`; all three tax options or none).
    #[arg(long, value_name = "WON")]
    pub tax_free_amount: Option<u64>,

    /// generic: split settlement: a JSON file `{"productPgCno": "...", "sellerId": "..."}`.
    #[arg(long, value_name = "FILE.json")]
    pub basket: Option<PathBuf>,

    /// generic: the requestor's IP (`clientIp`).
    #[arg(long, value_name = "IP")]
    pub client_ip: Option<String>,

    /// generic: the requestor's admin login ID (`clientId`).
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,

    /// alipay / wechat: the requestor's ID (`regId`).
    #[arg(long, value_name = "ID")]
    pub reg_id: Option<String>,

    /// alipay / wechat: resume an earlier request: resend the identical message with this
    /// `cancelReqDate` (its first date, even after midnight); needs --shop-transaction-id.
    #[arg(long, value_name = "YYYYMMDD")]
    pub cancel_req_date: Option<String>,

    /// generic: resume an earlier request: look up this key, sent on this Korea date, before
    /// anything else; a new cancel is sent only if no key given was processed (repeatable).
    #[arg(long, value_name = "KEY@YYYYMMDD")]
    pub resume_key: Vec<String>,

    /// generic: like --resume-key, for a key that was sent as a refund query
    /// (`refundQueryFlag = "Y"`), whose answer never proves by itself that it is this
    /// request's (repeatable).
    #[arg(long, value_name = "KEY@YYYYMMDD")]
    pub resume_refund_query_key: Vec<String>,

    /// generic, with --resume-key: no look-up before this Korea time (`yyyyMMddHHmmss`): the
    /// last send plus the gateway's processing bound. Default: a full bound from now.
    #[arg(long, value_name = "YYYYMMDDHHMMSS")]
    pub lookup_after: Option<String>,

    /// generic, with --resume-key only: send the new attempt (if any) with
    /// `refundQueryFlag = "Y"` (a refund query can itself cancel, so never blindly).
    #[arg(long)]
    pub refund_query: bool,

    /// How long the gateway may still process a request after it was sent, in seconds (a
    /// decimal such as 1.5): the earliest look-up of a key (KICC documents 30 s; a sandbox may
    /// be set shorter, never below its own).
    #[arg(long, value_name = "SECONDS", default_value = "30", value_parser = parse_seconds)]
    pub processing_bound: std::time::Duration,

    /// How far the gateway's clock may be behind this machine's, in seconds: an answer dated
    /// earlier than a key's send less this is an earlier cancel, not this request's.
    #[arg(long, value_name = "SECONDS", default_value = "120", value_parser = parse_seconds)]
    pub clock_skew: std::time::Duration,

    /// The `resCd` with which retrieveTransaction says "not found" (repeatable). KICC does not
    /// document it: without one, an unknown outcome cannot be proven "not processed" and stays
    /// unknown (exit 3). Default with --env sandbox: the sandbox's R001.
    #[arg(long, value_name = "CODE")]
    pub lookup_not_found_code: Vec<String>,

    /// Send nothing: print the exact request as one JSON object (method, url, headers, body).
    #[arg(long)]
    pub dry_run: bool,

    /// Journal this cancel under your own id (e.g. your refund id): exactly once per id,
    /// across crashes and reruns; the same id again prints the first outcome.
    #[arg(long, value_name = "ID")]
    pub intent_id: Option<String>,

    /// With --intent-id: the ledger, sqlite:PATH or postgres://USER@HOST:PORT/DB (default
    /// sqlite:kicc-ledger.db).
    #[arg(long, value_name = "URL", requires = "intent_id")]
    pub ledger: Option<String>,
}

/// Reads a number of seconds written as a person writes it (`30`, `1.5`), 0 to 3600.
fn parse_seconds(s: &str) -> Result<std::time::Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(0.0..=3600.0).contains(&secs) {
        return Err(format!("{s} is not between 0 and 3600 seconds"));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

/// `--method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MethodName {
    /// Credit card (incl. easy pay): partial code 32.
    Card,
    /// Bank transfer: partial code 33.
    Transfer,
    /// Mobile phone payment: partial code 33.
    Mobile,
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

--remain-amount-convention and --refund-query-match choose between readings of what KICC's pages
leave open (inferences; the defaults are the sandbox's choice, pgCnoAmount the worst case for
clients); GET / POST /sandbox/settings shows and changes them at run time. Every request is
processed within --processing-bound-ms of its arrival, so a retrieveTransaction look-up made later
is authoritative.

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

    /// How long an injected `timeout` fault stalls before answering (at most the processing
    /// bound minus the latency) [default: the processing bound minus the latency].
    #[arg(long, value_name = "MILLIS")]
    pub timeout_fault_delay_ms: Option<u64>,

    /// The sandbox processes (or drops) every request within this bound after it arrived, so a
    /// retrieveTransaction look-up made later is authoritative.
    #[arg(long, value_name = "MILLIS", default_value_t = 30_000)]
    pub processing_bound_ms: u64,

    /// Added before every provider endpoint request is processed (not the /sandbox/ admin API).
    #[arg(long, value_name = "MILLIS", default_value_t = 0)]
    pub latency_ms: u64,

    /// What P004 checks remainAmount against (an inference; see kicc-sandbox's docs).
    #[arg(long, value_name = "RULE", default_value = "balanceBefore",
          value_parser = ["balanceBefore", "balanceAfter"])]
    pub remain_amount_convention: String,

    /// Which earlier cancel a refundQueryFlag=Y request is answered with (an inference;
    /// pgCnoAmount is the worst case for clients).
    #[arg(long, value_name = "RULE", default_value = "pgCnoAmount",
          value_parser = ["pgCnoAmount", "pgCnoAmountRemain", "never"])]
    pub refund_query_match: String,

    /// Seed of every generated identifier (same seed and calls, same identifiers).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
}
