//! The three clients that send the same cancels, and the jobs they send.

use std::borrow::Cow;
use std::cell::Cell;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http::header::CONTENT_TYPE;
use http::HeaderValue;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use kicc_alipay::{AlipayClient, CancelRequest};
use kicc_core::{BaseUrl, Environment, MallId, Merchant, PgCno, SecretKey, ShopTransactionId};
use kicc_transport::{HttpRequest, HttpResponse, HyperTransport, Transport, TransportError};
use sha2::Sha256;

/// Who sends the requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contender {
    /// The SDK: `AlipayClient` over `HyperTransport`.
    Sdk,
    /// hyper-util's pooled client sending precomputed bytes.
    RawHyper,
    /// A shared reqwest client with hand-built JSON and HMAC.
    Reqwest,
    /// Diagnostic: the SDK's `HyperTransport` alone sending the precomputed bytes (no
    /// validation, signing, response reading or retry driver), to tell the cost of the
    /// HTTP layer from the cost of the protocol work.
    SdkTransport,
    /// The same pooled hyper client as [`Contender::RawHyper`], but doing per request what
    /// no correct integration can skip: the message built inside the timed call (serde_json
    /// of a plain struct of `&str`, HMAC-SHA256 + hex `msgAuthValue`, the fields the SDK
    /// sends) and the answer read into a small serde struct, checking `resCd` 0000 and the
    /// echoed key. No validation, retry or timeout.
    RawHyperSigned,
}

impl Contender {
    /// Every contender, in the order of the first round.
    pub const ALL: [Contender; 5] = [
        Contender::Sdk,
        Contender::RawHyper,
        Contender::Reqwest,
        Contender::SdkTransport,
        Contender::RawHyperSigned,
    ];

    /// The name used in figure names (`sdk`, `raw_hyper`, `reqwest`, `sdk_transport`,
    /// `raw_hyper_signed`).
    pub fn name(self) -> &'static str {
        match self {
            Contender::Sdk => "sdk",
            Contender::RawHyper => "raw_hyper",
            Contender::Reqwest => "reqwest",
            Contender::SdkTransport => "sdk_transport",
            Contender::RawHyperSigned => "raw_hyper_signed",
        }
    }

    /// Position in [`Contender::ALL`].
    pub fn index(self) -> usize {
        match self {
            Contender::Sdk => 0,
            Contender::RawHyper => 1,
            Contender::Reqwest => 2,
            Contender::SdkTransport => 3,
            Contender::RawHyperSigned => 4,
        }
    }
}

/// One cancel to send: its payment and key, and (for raw hyper only) the exact body,
/// built before the clock starts.
#[derive(Debug, Clone)]
pub struct Job {
    /// The payment to cancel in full.
    pub pg_cno: String,
    /// The request's own `shopTransactionId`.
    pub key: String,
    /// The precomputed body (empty unless the job is for [`Contender::RawHyper`] or
    /// [`Contender::SdkTransport`]).
    pub body: Bytes,
}

/// The API path of the Alipay cancel.
pub const PATH: &str = kicc_alipay::PATH;

/// The three clients, configured alike: HTTP/1.1 on loopback, `TCP_NODELAY`, a pool that
/// keeps at least `pool` idle connections.
pub struct Clients {
    merchant: Merchant,
    sdk: AlipayClient<Timed>,
    transport: HyperTransport,
    raw: Client<HttpConnector, Full<Bytes>>,
    raw_uri: http::Uri,
    reqwest: reqwest::Client,
    url: String,
    base_url: String,
    mall_id: String,
    secret: Vec<u8>,
}

impl std::fmt::Debug for Clients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clients")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Clients {
    /// Clients for the sandbox at `base_url`, merchant `mall_id` with `secret`; each pool
    /// keeps up to `pool` idle connections.
    pub fn new(base_url: &str, mall_id: &str, secret: &str, pool: usize) -> Result<Self, String> {
        let merchant = Merchant::new(
            Environment::Custom(BaseUrl::new(base_url).map_err(|e| e.to_string())?),
            MallId::new(mall_id).map_err(|e| e.to_string())?,
            SecretKey::new(secret).map_err(|e| e.to_string())?,
        );
        // The SDK's default pool keeps 8 idle connections per host; give every contender the
        // same pool so that none of them churns connections at higher concurrency.
        let transport = HyperTransport::builder()
            .pool_max_idle_per_host(pool)
            .build()
            .map_err(|e| e.to_string())?;
        let sdk = AlipayClient::with_transport(merchant.clone(), Timed(transport.clone()));

        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        let raw = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(pool)
            .pool_timer(TokioTimer::new())
            .build(http);
        let url = format!("{base_url}{PATH}");
        let raw_uri = url.parse().map_err(|e| format!("{url}: {e}"))?;

        let reqwest = reqwest::Client::builder()
            .pool_max_idle_per_host(pool)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Clients {
            merchant,
            sdk,
            transport,
            raw,
            raw_uri,
            reqwest,
            url,
            base_url: base_url.to_owned(),
            mall_id: mall_id.to_owned(),
            secret: secret.as_bytes().to_vec(),
        })
    }

    /// The job cancelling `pg_cno` with `key` for `who` (raw hyper's body is built here,
    /// by the SDK, so all three send the same message).
    pub fn job(&self, who: Contender, pg_cno: String, key: String) -> Result<Job, String> {
        let body = if matches!(who, Contender::RawHyper | Contender::SdkTransport) {
            let request =
                CancelRequest::full(PgCno::new(pg_cno.as_str()).map_err(|e| e.to_string())?);
            let key = ShopTransactionId::new(key.as_str()).map_err(|e| e.to_string())?;
            Bytes::from(
                request
                    .message(&self.merchant, key, SystemTime::now())
                    .to_json(),
            )
        } else {
            Bytes::new()
        };
        Ok(Job { pg_cno, key, body })
    }

    /// Sends `job` as `who` and checks that the cancel succeeded. For the SDK, also says how
    /// long the transport took, so the caller can tell the SDK's own time from it.
    pub async fn cancel(&self, who: Contender, job: &Job) -> Result<Option<Duration>, String> {
        match who {
            Contender::Sdk => {
                SEND_TIME
                    .scope(Cell::new(Duration::ZERO), async {
                        self.cancel_sdk(job).await?;
                        Ok(Some(SEND_TIME.with(Cell::get)))
                    })
                    .await
            }
            Contender::RawHyper => self.cancel_raw(job).await.map(|()| None),
            Contender::Reqwest => self.cancel_reqwest(job).await.map(|()| None),
            Contender::SdkTransport => self.cancel_transport(job).await.map(|()| None),
            Contender::RawHyperSigned => self.cancel_raw_signed(job).await.map(|()| None),
        }
    }

    async fn cancel_sdk(&self, job: &Job) -> Result<(), String> {
        let pg_cno = PgCno::new(job.pg_cno.as_str()).map_err(|e| e.to_string())?;
        let key = ShopTransactionId::new(job.key.as_str()).map_err(|e| e.to_string())?;
        let response = self
            .sdk
            .cancel_with_key(&CancelRequest::full(pg_cno), key)
            .await
            .map_err(|e| format!("sdk: {e}"))?;
        if response.cancel_pg_cno.is_empty() {
            return Err("sdk: success without cancelPgCno".into());
        }
        Ok(())
    }

    async fn cancel_raw(&self, job: &Job) -> Result<(), String> {
        let request = http::Request::post(self.raw_uri.clone())
            .header(
                CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            )
            .body(Full::new(job.body.clone()))
            .map_err(|e| e.to_string())?;
        let (status, body) = self.raw_send(request).await?;
        if status != 200 || !contains(&body, br#""resCd":"0000""#) {
            return Err(format!(
                "raw hyper: HTTP {status}: {}",
                String::from_utf8_lossy(&body)
            ));
        }
        Ok(())
    }

    async fn cancel_raw_signed(&self, job: &Job) -> Result<(), String> {
        let mut date = [0u8; 8];
        let mut mac = [0u8; 64];
        hmac_hex(&self.secret, &job.pg_cno, &job.key, &mut mac);
        let message = PlainRequest {
            mall_id: &self.mall_id,
            shop_transaction_id: &job.key,
            pg_cno: &job.pg_cno,
            revise_type_code: "40",
            cancel_req_date: korea_date_into(SystemTime::now(), &mut date),
            msg_auth_value: std::str::from_utf8(&mac).map_err(|e| e.to_string())?,
        };
        let mut body = Vec::with_capacity(384);
        serde_json::to_writer(&mut body, &message).map_err(|e| e.to_string())?;
        let request = http::Request::post(self.raw_uri.clone())
            .header(
                CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            )
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let (status, body) = self.raw_send(request).await?;
        let answer: PlainAnswer<'_> = serde_json::from_slice(&body)
            .map_err(|e| format!("raw hyper signed: HTTP {status}: {e}"))?;
        if status != 200 || answer.res_cd != "0000" || answer.shop_transaction_id != job.key {
            return Err(format!(
                "raw hyper signed: HTTP {status}: {} {} (key {:?})",
                answer.res_cd, answer.res_msg, answer.shop_transaction_id
            ));
        }
        Ok(())
    }

    async fn cancel_transport(&self, job: &Job) -> Result<(), String> {
        let mut request = http::Request::new(job.body.clone());
        *request.method_mut() = http::Method::POST;
        *request.uri_mut() = self.raw_uri.clone();
        request.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        let response = self
            .transport
            .send(request)
            .await
            .map_err(|e| format!("sdk transport: {e}"))?;
        if response.status() != 200 || !contains(response.body(), br#""resCd":"0000""#) {
            return Err(format!("sdk transport: HTTP {}", response.status()));
        }
        Ok(())
    }

    async fn raw_send(&self, request: http::Request<Full<Bytes>>) -> Result<(u16, Bytes), String> {
        let response = self
            .raw
            .request(request)
            .await
            .map_err(|e| format!("raw hyper: {e}"))?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("raw hyper body: {e}"))?
            .to_bytes();
        Ok((status, body))
    }

    async fn cancel_reqwest(&self, job: &Job) -> Result<(), String> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.secret)
            .map_err(|e| format!("hmac: {e}"))?;
        mac.update(format!("{}|{}", job.pg_cno, job.key).as_bytes());
        let msg_auth_value = hex::encode(mac.finalize().into_bytes());
        let body = serde_json::json!({
            "mallId": self.mall_id,
            "shopTransactionId": job.key,
            "pgCno": job.pg_cno,
            "reviseTypeCode": "40",
            "cancelReqDate": korea_date_now(),
            "msgAuthValue": msg_auth_value,
        });
        let response = self
            .reqwest
            .post(&self.url)
            .header(CONTENT_TYPE, "application/json; charset=utf-8")
            .body(serde_json::to_vec(&body).map_err(|e| e.to_string())?)
            .send()
            .await
            .map_err(|e| format!("reqwest: {e}"))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| format!("reqwest body: {e}"))?;
        let parsed: HandResponse =
            serde_json::from_slice(&bytes).map_err(|e| format!("reqwest json: {e}"))?;
        if !status.is_success() || parsed.res_cd != "0000" {
            return Err(format!(
                "reqwest: HTTP {status}: {} {}",
                parsed.res_cd, parsed.res_msg
            ));
        }
        Ok(())
    }

    /// Creates an Alipay KRW payment through the sandbox's admin API (for a sandbox in
    /// another process) and returns its `pgCno`.
    pub async fn admin_create_payment(&self, amount: u64) -> Result<String, String> {
        let body = serde_json::json!({"channel": "alipay", "amount": amount, "currency": "KRW"});
        let (status, answer) = self.admin_post("/sandbox/payments", &body).await?;
        let v: serde_json::Value =
            serde_json::from_slice(&answer).map_err(|e| format!("admin answer: {e}"))?;
        match v.get("pgCno").and_then(|p| p.as_str()) {
            Some(pg) if status == 200 => Ok(pg.to_owned()),
            _ => Err(format!(
                "creating a payment: HTTP {status}: {}",
                String::from_utf8_lossy(&answer)
            )),
        }
    }

    /// Makes the sandbox stall its next `times` Alipay cancels (then answer them normally).
    pub async fn admin_stall_next(&self, times: usize) -> Result<(), String> {
        let body = serde_json::json!({"path": PATH, "kind": "timeout", "times": times});
        let (status, answer) = self.admin_post("/sandbox/faults", &body).await?;
        if status != 200 {
            return Err(format!(
                "injecting a fault: HTTP {status}: {}",
                String::from_utf8_lossy(&answer)
            ));
        }
        Ok(())
    }

    async fn admin_post(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<(u16, Bytes), String> {
        let uri = format!("{}{path}", self.base_url);
        let request = http::Request::post(uri)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| e.to_string())?;
        self.raw_send(request).await
    }
}

tokio::task_local! {
    /// Time the SDK's transport spent on the current cancel's attempts.
    static SEND_TIME: Cell<Duration>;
}

/// The SDK's `HyperTransport`, adding the time each attempt takes to the current cancel's total.
#[derive(Debug, Clone)]
pub struct Timed(HyperTransport);

impl Transport for Timed {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let start = Instant::now();
        let result = self.0.send(request).await;
        let spent = start.elapsed();
        let _ = SEND_TIME.try_with(|t| t.set(t.get() + spent));
        result
    }
}

/// The Alipay full cancel as [`Contender::RawHyperSigned`] sends it: the fields the SDK
/// sends, as a plain struct of `&str` (the floor of the micro-benchmarks).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct PlainRequest<'a> {
    mall_id: &'a str,
    shop_transaction_id: &'a str,
    pg_cno: &'a str,
    revise_type_code: &'a str,
    cancel_req_date: &'a str,
    msg_auth_value: &'a str,
}

/// What [`Contender::RawHyperSigned`] reads of the answer, borrowed from the body where no
/// escape forces a copy.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct PlainAnswer<'a> {
    #[serde(borrow)]
    res_cd: Cow<'a, str>,
    #[serde(borrow, default)]
    res_msg: Cow<'a, str>,
    #[serde(borrow, default)]
    shop_transaction_id: Cow<'a, str>,
}

/// `msgAuthValue` by hand: HMAC-SHA256 over `pgCno|shopTransactionId`, lowercase hex.
fn hmac_hex(secret: &[u8], pg_cno: &str, key: &str, out: &mut [u8; 64]) {
    // HMAC takes keys of any length.
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(secret) else {
        return;
    };
    mac.update(pg_cno.as_bytes());
    mac.update(b"|");
    mac.update(key.as_bytes());
    // 32 bytes always make 64 hex digits.
    let _ = hex::encode_to_slice(mac.finalize().into_bytes(), out);
}

/// The hand-written client's view of the answer.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct HandResponse {
    res_cd: String,
    #[serde(default)]
    res_msg: String,
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Today's date in Korea (UTC+9), `yyyyMMdd`, computed by hand as an integration without
/// the SDK would (civil-from-days, Howard Hinnant's algorithm).
pub fn korea_date_now() -> String {
    let (y, m, d) = korea_civil_date(SystemTime::now());
    format!("{y:04}{m:02}{d:02}")
}

/// [`korea_date_now`] for `now`, written into `out` without allocating.
pub fn korea_date_into(now: SystemTime, out: &mut [u8; 8]) -> &str {
    let (y, m, d) = korea_civil_date(now);
    let digits = [
        y / 1000 % 10,
        y / 100 % 10,
        y / 10 % 10,
        y % 10,
        m / 10,
        m % 10,
        d / 10,
        d % 10,
    ];
    for (o, digit) in out.iter_mut().zip(digits) {
        *o = b'0' + digit as u8;
    }
    std::str::from_utf8(out).unwrap_or("")
}

/// The Korea (UTC+9) calendar date of `now`: year, month, day.
fn korea_civil_date(now: SystemTime) -> (i64, i64, i64) {
    let secs = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs + 9 * 3600) / 86_400;
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_written_date_agrees_with_the_sdk() {
        let before = korea_date_now();
        let sdk = kicc_core::KoreaDate::of(SystemTime::now());
        let after = korea_date_now();
        // Each reads the clock; only a Korea midnight between the reads can tell them apart.
        assert!(
            sdk.as_str() == before || sdk.as_str() == after,
            "{sdk} vs {before}"
        );
        assert_eq!(before.len(), 8);
    }

    #[test]
    fn dates_written_in_place_agree_with_the_sdk() {
        // 2026-11-21T15:00:00Z is already the 22nd in Korea; also the day before, a leap
        // day, and the turn of a year in Korea.
        for (unix, want) in [
            (1_795_273_200u64, "20261122"),
            (1_795_273_199, "20261121"),
            (1_709_218_800, "20240301"),
            (1_709_218_799, "20240229"),
            (1_798_729_200, "20270101"),
        ] {
            let now = UNIX_EPOCH + Duration::from_secs(unix);
            let mut buf = [0u8; 8];
            assert_eq!(korea_date_into(now, &mut buf), want, "{unix}");
            assert_eq!(kicc_core::KoreaDate::of(now).as_str(), want, "{unix}");
        }
    }

    #[test]
    fn contains_finds_the_success_code() {
        assert!(contains(br#"{"resCd":"0000","x":1}"#, br#""resCd":"0000""#));
        assert!(!contains(br#"{"resCd":"P002"}"#, br#""resCd":"0000""#));
    }
}
