//! A stateful simulator of KICC EasyPay's cancel endpoints — what stripe-mock
//! is for Stripe, but with state: payments remember their cancels, keys are
//! remembered per day, WeChat cancels finish later and send notices. It also
//! simulates WeChat Pay Global's own revoke endpoint (API v3, RSA-signed; see
//! [WeChat Pay Global revoke](#wechat-pay-global-revoke)).
//!
//! It is written from the published API pages, independently of the SDK's
//! `kicc-core`, so that the two implementations check each other.
//!
//! ```
//! use std::net::SocketAddr;
//! use kicc_sandbox::{Channel, Currency, Sandbox, SandboxConfig};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), kicc_sandbox::SandboxError> {
//! let addr: SocketAddr = "127.0.0.1:0".parse().expect("literal address");
//! let sandbox = Sandbox::start(addr, SandboxConfig::default()).await?;
//! let payment = sandbox.create_payment(Channel::Card, 51_004, Currency::Krw)?;
//! assert_eq!(payment.pg_cno.len(), 20);
//! assert!(sandbox.base_url().starts_with("http://127.0.0.1:"));
//! // ... POST {base_url}/api/trades/revise with a signed request ...
//! let state = sandbox.payment(&payment.pg_cno).expect("just created");
//! assert_eq!(state.status_code, "TS01");
//! sandbox.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! # Endpoints
//!
//! All are `POST` with a JSON body, and answer HTTP 200 with a JSON body
//! carrying `resCd` / `resMsg` for every business outcome, including a body
//! that is not JSON. An unknown path is 404, a wrong method 405, a body over
//! 64 KiB 413. Each request waits the `latency` setting (default 0) before
//! it is processed (the admin API under `/sandbox/` does not).
//!
//! | path | what |
//! |---|---|
//! | `/api/trades/revise` | generic cancel: card (40, 32, capture 20), transfer and mobile (40, 33), cash receipt (51, 52) |
//! | `/api/trades/alipay/revise` | Alipay cancel (40, 32 with `amountInfo`); applied at once |
//! | `/api/trades/wechatpay/revise` | WeChat cancel (40, 32): accepted at once, finished after `webhook_delay` (applied, or as a fault says: failed or voided), then a notice |
//! | `/api/trades/wechatpay/find` | WeChat cancel status: `cancelStatus` `TS01` (not final yet, or failed: then `resCd` is the failure's), `TS06`, `TS02`, `TS12` (voided) |
//! | `/api/trades/retrieveTransaction` | transaction status check: a revise request looked up by its own key (see [below](#looking-a-request-up-retrievetransaction)) |
//!
//! Generic responses carry `cancelAmount` / `remainAmount` as JSON strings
//! (as the page's example) and an extra `shopOrderNo` field (as the real
//! service does); Alipay / WeChat responses carry `amountInfo.totAmount` as a
//! number. WeChat error answers add `resDetailMsg`, URL-encoded (the
//! sandbox's own rule errors percent-encode a space as `%20`; a detail given
//! by a fault, and a failed cancel's, are form-encoded, a space as `+`: a
//! client must decode both as a form value).
//!
//! # Response codes
//!
//! `0000` is KICC's success code. **Every other code below is a SANDBOX
//! code**: KICC does not publish its codes for these rules (its documented
//! codes are only `0000`, the Alipay retry codes `A210`..`A219` and the generic
//! timeout codes `VTIM` / `VT00`, which the sandbox answers only through
//! injected faults). Test *that* a request is rejected and for which rule;
//! never hard-code these values for production.
//!
//! | code | rule |
//! |---|---|
//! | `0000` | success (WeChat revise: accepted; the result comes by webhook / `find`) |
//! | `V001` | body not a JSON object; a required field missing or empty; a field of the wrong JSON type; a flag not `Y`/`N` |
//! | `V002` | a field longer than its limit in UTF-8 **bytes** (a Hangul syllable is 3): `pgCno` 20 on the generic endpoint, 60 on Alipay/WeChat; `shopTransactionId` 60; `mallId` 8; the other limits as on the pages (`amountInfo.currency` allows 3, the page's "2Byte" cannot hold `KRW`) |
//! | `V003` | a forbidden character in any string value, at any depth: `'` `"` `<` `>` `\` `;` `\|` `&`, CR, LF and every other control character, and emoji (U+1F000..U+1FAFF, U+2600..U+27BF, U+2B00..U+2BFF, U+231A..U+231B, U+23E9..U+23FA, variation selectors, ZWJ, U+20E3, tags) |
//! | `V004` | `reviseTypeCode` not allowed on this endpoint (generic: 20 32 33 40 51 52; Alipay/WeChat: 40 32) |
//! | `V005` | amount rule: partial codes (32, 33, 52; Alipay/WeChat 32 via `amountInfo {currency, totAmount}`) need a positive JSON integer in minor units; 40 must carry none; floats (`12.5`, `12.0`), strings, negatives, zero rejected; `amountInfo.currency` must be `KRW`/`USD`; `remainAmount` and `taxInfo` amounts must be non-negative integers |
//! | `V006` | `cancelReqDate` not a real `yyyyMMdd` date; generic: not the sandbox's current Korea date (UTC+9); Alipay/WeChat: not today for a new key, or not the first attempt's date for a same-key retry |
//! | `V007` | unknown `mallId` |
//! | `V008` | `msgAuthValue` is not the lowercase hex HMAC-SHA256, keyed with the secret's UTF-8 bytes, of `pgCno + "\|" + shopTransactionId` (compared in constant time) |
//! | `V009` | `taxInfo` without all three of `taxationAmount`, `taxFreeAmount`, `vatAmount` |
//! | `V010` | `basketUsed` `Y` without `basketInfo`, or `basketInfo` without `basketUsed` `Y` |
//! | `D001` | `shopTransactionId` already used on the same Korea day (keys expire at Korea midnight) |
//! | `P001` | payment not found (`find`: or the cancel not found for that payment) |
//! | `P002` | payment already fully cancelled (nothing left to cancel, counting accepted WeChat cancels) |
//! | `P003` | amount exceeds the cancellable balance |
//! | `P004` | `remainAmount` differs from the cancellable balance **before** this cancel, or with the `remainAmountConvention` setting `balanceAfter` the balance **after** it (the sandbox's reading of the ambiguous field is a setting; checked on partial codes when sent) |
//! | `P005` | code not applicable to this payment: 33 on card, 32 on transfer/mobile, 51/52 on anything but a cash receipt, 40/32/33 on a cash receipt, 20 on a captured payment, 32 on an uncaptured authorization, a partial capture; an Alipay/WeChat payment on the generic endpoint or any payment on the wrong channel's endpoint |
//! | `P006` | `amountInfo.currency` differs from the payment's currency |
//! | `P007` | 40, 32 or 33 on an escrow payment: the message says escrow payments are changed through the escrow status change API (the page points there; the code is the sandbox's) |
//! | `R001` | `retrieveTransaction`: no request with this `shopTransactionId` was processed on this `transactionDate` (never sent, rejected with a `V` code, answered `D001`, or still in flight) |
//! | `R002` | `retrieveTransaction`: `transactionDate` is neither the sandbox's current Korea date nor the day before |
//! | `W001` | the default `resCd` of a WeChat cancel made to fail by a `wechatFail` fault (never produced by the rules) |
//!
//! Checks run in this order, and the first failure answers: JSON object
//! (`V001`); each field in the page's order, presence and type (`V001`) then
//! byte length (`V002`); forbidden characters (`V003`); `reviseTypeCode`
//! (`V004`); amounts (`V005`, with `V009` before the `taxInfo` amounts);
//! basket (`V010`); `cancelReqDate` format (`V006`); `mallId` (`V007`);
//! `msgAuthValue` (`V008`); idempotency (`D001` or a replay); `cancelReqDate`
//! value (`V006`); then the payment rules (`P001`, refund query, `P005`,
//! `P007`, `P002`, `P006`, `P003`, `P004`). `retrieveTransaction`: JSON
//! object (`V001`); `mallId`, `shopTransactionId`, `transactionDate`
//! presence and type (`V001`) then length (`V002`: 8, 60, 8 bytes); forbidden
//! characters (`V003`); `transactionDate` a real `yyyyMMdd` date (`V006`);
//! `mallId` (`V007`); the window (`R002`); the look-up (`R001`). It needs no
//! `msgAuthValue` (its page has none); other fields are ignored.
//!
//! # The simulator's model
//!
//! - **Keys.** A request that passes the `V` checks uses up its
//!   `shopTransactionId` for the Korea day, whatever its business outcome
//!   (`0000` or `P00x`); requests rejected with a `V` code do not. Keys are
//!   shared by the four endpoints that take one (`find` too);
//!   `retrieveTransaction` only looks keys up.
//! - **Alipay / WeChat retries.** A request with a key already used on the
//!   same endpoint for the same `pgCno` is a retry: it must carry the first
//!   attempt's `cancelReqDate` (even after midnight), and gets the first
//!   attempt's response byte for byte; nothing is cancelled again.
//! - **Generic `refundQueryFlag: "Y"`** (sent with a new key after a timeout or
//!   `VTIM`/`VT00`), by the `refundQueryMatch` setting (an inference: the page
//!   does not say how the lost request is found). `pgCnoAmount` (the
//!   default, the worst case for a client): if any earlier successful generic
//!   revision of the same `pgCno` with the same `reviseTypeCode` and `amount`
//!   exists (the latest is taken), whatever `remainAmount` says, the answer is
//!   that revision's result — same `cancelPgCno`, `cancelAmount`,
//!   `remainAmount` and `transactionDate`, echoing the new key — and nothing
//!   is cancelled again. `pgCnoAmountRemain`: the same, but when
//!   `remainAmount` is sent it must also equal that revision's balance by the
//!   `remainAmountConvention` (before it, or after it). `never`: the flag is
//!   ignored. A request not answered this way is processed normally, with
//!   every rule (so a full cancel of a fully cancelled payment is `P002`).
//! - **Escrow.** A card, transfer or mobile payment created with `"escrow":
//!   true` refuses 40, 32 and 33 with `P007` (the page sends escrow
//!   payments to the escrow status change API, which the sandbox does not
//!   simulate). Other codes still apply (a capture, 20, of an authorized
//!   escrow card payment); their answers carry `escrowUsed` `Y`.
//! - **Balances and statuses.** Partial cancels reduce the remaining amount
//!   (`TS06`); reaching 0, or a full cancel, gives `TS02`. An authorized-only
//!   card payment is `TS01` until code 20 captures it (`TS04`).
//! - **WeChat.** Revise answers `0000` with a `cancelPgCno` at once; the amount
//!   is held (counts against later cancels) and the status stays `TS01`. After
//!   `webhook_delay` the cancel is applied and a notice is POSTed to
//!   `notifyUrl` (plain http, loopback hosts only; others are logged as not
//!   sent) with `resCd`, `resMsg`, `mallId`, `shopOrderNo`, `pgCno`,
//!   `cancelPgCno`, `cancelDate` (Korea time `yyyyMMddHHmmss`) and
//!   `amountInfo {currency, amount}`. It is re-sent every
//!   `webhook_retry_interval` until the receiver answers HTTP 200 with JSON
//!   `resCd` `"0000"`, at most `webhook_max_attempts` times. `find` needs no
//!   `msgAuthValue` but checks one if sent. A `wechatFail` fault makes an
//!   accepted cancel finish as a **failure**: the held amount is released
//!   (nothing is cancelled), the notice carries the fault's `resCd`, a
//!   `resMsg` and a form-encoded `resDetailMsg`, and `find` answers that
//!   `resCd` and `resDetailMsg` with `cancelStatus` `TS01`. A `wechatVoid`
//!   fault makes it finish as a **network cancel**: the amount is cancelled,
//!   the notice carries `0000`, `find` answers `cancelStatus` `TS12`.
//! - **Look-ups** (`retrieveTransaction`; KICC documents the request, the
//!   two-day window, and that for a cancel the answer "is the Cancellation
//!   Response"; the rest is the sandbox's inference). Every request to a
//!   revise endpoint (generic, Alipay, WeChat) that passed the `V` checks is
//!   recorded under its `shopTransactionId` and the Korea date on which the
//!   sandbox **processed** it (after any latency and stall), with the exact
//!   body processing produced: a success, a `P00x` decline, a refund query's
//!   answer (recorded under the refund query's own key, describing the
//!   earlier cancel with its earlier `transactionDate`), or an Alipay/WeChat
//!   retry's replayed answer. A fault does not change the record: a request
//!   processed behind `http500`, `drop`, `timeout` or a `resCd` fault is
//!   recorded with what processing produced; one the fault kept from being
//!   processed is not recorded. The first record of a key on a date stays (a
//!   `D001` duplicate records nothing). The look-up answers the recorded body
//!   byte for byte (its `resCd`, `shopTransactionId`, and the generic
//!   `oriPgCno`, `cancelPgCno`, `cancelAmount`, `remainAmount`,
//!   `transactionDate`, `statusCode`... or the wallet `pgCno`, `cancelPgCno`,
//!   `amountInfo`, `transactionDate`), else `R001`. It changes nothing and
//!   uses up no key.
//! - **Processing bound.** Every request the sandbox received is processed,
//!   or definitively dropped (only when the sandbox shuts down), within
//!   `processing_bound` (default 30 s) after it arrived; so a look-up made
//!   after arrival + bound is authoritative, and one made earlier may miss a
//!   request still in flight. `latency` + `timeout_fault_delay` must fit in
//!   the bound (a config error otherwise).
//! - **Identifiers** (`pgCno` `SBP` + 17 digits, `cancelPgCno` `SBC` + 17
//!   digits, `shopOrderNo`, approval numbers) come from the configured seed:
//!   the same seed and the same sequence of calls give the same identifiers.
//!
//! # Admin API
//!
//! | method and path | body / answer |
//! |---|---|
//! | `POST /sandbox/payments` | `{"channel": "card"\|"transfer"\|"mobile"\|"cash_receipt"\|"alipay"\|"wechat"\|"wechatpay", "amount": <minor units>, "currency": "KRW"\|"USD", "authorizedOnly": bool, "escrow": bool}` → [`Payment`] (`pgCno`, `mallId`, `amount`, `currency`, `channel`, ...) plus `escrow`; USD only for alipay/wechat/wechatpay, `authorizedOnly` only for card, `escrow` only for card/transfer/mobile. `wechat` is WeChat Pay **through KICC**; `wechatpay` ([`Channel::WechatpayGlobal`]) is a WeChat Pay Global order for the direct revoke endpoint, which also takes `"outTradeNo"` (1 to 32 characters, unique; assigned if absent) and `"paidAt"` (Unix seconds) or `"paidSecondsAgo"` (default: paid now), and answers `transactionId`, `outTradeNo`, `paidAt` besides the usual fields |
//! | `GET /sandbox/payments/{id}` | [`PaymentState`]: `statusCode`, `remainingAmount`, `escrow`, `cancels` (each [`CancelState`]: `cancelPgCno`, `shopTransactionId`, `reviseTypeCode`, `amount`, `status`, `outcome` `pending`\|`applied`\|`failed`, `resCd` when failed, `cancelReqDate`, `transactionDate`), `webhookDeliveries` (404 if unknown); `id` is the `pgCno`, or for a `wechatpay` order also its `transactionId` or (percent-encoded) `outTradeNo`, which add `tradeState` (`SUCCESS`/`REVOKED`), `revokedAt`, `reverseCalls` |
//! | `GET /sandbox/wechatpay/requests` | `{"requests": [...]}`: every WeChat Pay revoke, order query and certificates request received ([`WechatpayRequestRecord`]: path, decoded order ID, `Authorization` parts, a SHA-256 of the exact bytes, status, code, fault) |
//! | `POST /sandbox/faults` | `{"path", "kind": "timeout"\|"http500"\|"drop"\|"resCd"\|"withholdWebhook"\|"wechatFail"\|"wechatVoid"\|"badSignature"\|"signatureProbe"\|"oldTimestamp"\|"code", "resCd", "resDetailMsg", "code", "httpStatus", "times", "apply"}` → the faults waiting |
//! | `GET /sandbox/faults` | the faults waiting |
//! | `POST /sandbox/clock` | `{"offsetSeconds": N}`: "now" becomes real time + N seconds (not cumulative) |
//! | `GET /sandbox/clock` | `offsetSeconds`, `koreaDate`, `koreaNow` |
//! | `POST /sandbox/settings` | any of `{"remainAmountConvention": "balanceBefore"\|"balanceAfter", "refundQueryMatch": "pgCnoAmount"\|"pgCnoAmountRemain"\|"never", "latencyMs": N}` (unknown fields refused) → the settings |
//! | `GET /sandbox/settings` | `{"remainAmountConvention", "refundQueryMatch", "latencyMs", "processingBoundMs", "timeoutFaultDelayMs"}` (the last two fixed at start) |
//! | `GET /sandbox/webhooks` | `{"deliveries": [...]}`: every delivery attempt ([`WebhookDelivery`]) |
//! | `POST /sandbox/reset` | forgets every payment, key, record, fault and delivery; identifiers restart from the seed; the settings stay |
//!
//! Faults hit the next `times` calls to one exact API path (the look-up path
//! included). `apply` says whether the request is processed (state changes)
//! before the fault, so a client that retries must not cancel twice;
//! defaults: `timeout` and `drop` yes, `http500` no, `resCd` yes for
//! `VTIM`/`VT00` and no otherwise (e.g. `A210`..`A219`). `timeout` stalls
//! `timeout_fault_delay`, then answers normally; with `apply: true` the
//! request is processed on arrival, with `apply: false` at the end of the
//! stall, even if the client has left (so still within `processing_bound`;
//! a shutdown during the stall drops it unprocessed). `http500` answers HTTP
//! 500 (`text/plain`), after processing with `apply: true`. `drop` closes the
//! connection (HTTP/1.1) or resets the stream (h2) without answering, after
//! processing unless `apply: false`. `resCd` answers HTTP 200 with that code,
//! a plausible message and the echoed `shopTransactionId`, plus
//! `resDetailMsg` when the fault has one (form-encoded: `a b/c` is sent as
//! `a+b%2Fc`; at most 1024 bytes encoded). Three kinds apply to the WeChat
//! revise path only, to the next `times` **accepted** WeChat cancels, and
//! always let the cancel through (`apply: false` is refused):
//! `withholdWebhook` (finished without any notice), `wechatFail` (finished as
//! a failure with `resCd`, default `W001`, and the optional `resDetailMsg`)
//! and `wechatVoid` (finished as `TS12`); see the model above. The kinds for
//! the WeChat Pay revoke path are described [below](#faults-on-the-revoke-path).
//!
//! # Settings
//!
//! Behaviour the pages leave open is a setting, each value an **inference**;
//! set at start ([`SandboxConfig`], `kicc sandbox serve` flags) and, except
//! the timings fixed at start, at run time (`POST /sandbox/settings`,
//! [`SandboxHandle::set_settings`]):
//!
//! | setting | values (default first) | `serve` flag |
//! |---|---|---|
//! | `remainAmountConvention` ([`RemainAmountConvention`]) | `balanceBefore`, `balanceAfter`: what `P004` and `pgCnoAmountRemain` compare `remainAmount` with | `--remain-amount-convention` |
//! | `refundQueryMatch` ([`RefundQueryMatch`]) | `pgCnoAmount` (worst case), `pgCnoAmountRemain`, `never` | `--refund-query-match` |
//! | `latency` | 0 ms: waited before each provider request is processed | `--latency-ms` |
//! | `processing_bound` (start only) | 30 s | `--processing-bound-ms` |
//! | `timeout_fault_delay` (start only) | 30 s, at most the bound minus the latency | `--timeout-fault-delay-ms` |
//!
//! # Looking a request up: retrieveTransaction
//!
//! ```text
//! POST /api/trades/retrieveTransaction
//! {"mallId": "T0000001", "shopTransactionId": "KEY", "transactionDate": "yyyyMMdd"}
//! ```
//!
//! `transactionDate` is the Korea date on which the request was processed
//! (normally its `cancelReqDate`; a request that arrives just before
//! midnight and is processed after it is recorded under the next day). The
//! answer is the recorded response (see the model), else `{"resCd": "R001",
//! "resMsg", "shopTransactionId": "KEY", "mallId"}`; a date other than today
//! or yesterday (sandbox clock, Korea time) is `R002`.
//!
//! # WeChat Pay Global revoke
//!
//! The sandbox also plays WeChat Pay Global for merchants that revoke orders
//! directly (the `wechatpay-direct` crate), with its RSA request signatures and
//! signed answers, checked and made by the sandbox's own code (its own message
//! builders and strict `Authorization` parser over `ring`; PEM and X.509 read
//! with `rustls-pki-types` and `rustls-webpki`): the sandbox does not depend on
//! `wechatpay-direct`. Its keys are **publicly known, sandbox-only keys, committed
//! under `keys/`: never use them anywhere else** (they are to WeChat Pay what
//! [`DEFAULT_SECRET_KEY`] is to KICC).
//!
//! | method and path | what |
//! |---|---|
//! | `POST /v3/global/micropay/transactions/id/{transaction_id}/reverse` | revoke by WeChat Pay order number |
//! | `POST /v3/global/micropay/transactions/out-trade-no/{out_trade_no}/reverse` | revoke by merchant order number |
//! | `GET /v3/global/transactions/id/{transaction_id}?mchid=M` (or `?sub_mchid=S&sp_mchid=SP`) | order query by WeChat Pay order number |
//! | `GET /v3/global/transactions/out-trade-no/{out_trade_no}?mchid=M` (or `?sub_mchid=S&sp_mchid=SP`) | order query by merchant order number |
//!
//! The order query runs the same checks as the revoke (`Content-Type` is not
//! required on a `GET`; the signed URL includes the query string as sent; the
//! merchant fields come from the query, `location: "query"` in errors) and
//! answers `200` with the order, signed: `mchid` (or `sp_mchid`, `sub_mchid`),
//! `out_trade_no`, `transaction_id`, `trade_type` `MICROPAY`, `trade_state`
//! (`SUCCESS` or `REVOKED`), `trade_state_desc`, `amount` `{total, currency}`,
//! `success_time` (RFC 3339, +08:00). An unknown order is `404
//! ORDER_NOT_EXIST` (**the sandbox's choice**: the Global query page lists no
//! code for it). Faults apply to [`WECHATPAY_QUERY_BY_ID_PATH`] and
//! [`WECHATPAY_QUERY_BY_OUT_TRADE_NO_PATH`] as to the revoke paths.
//!
//! The path segment is percent-decoded (`%2F` is a `/` inside the ID; a raw
//! `/` is a different path: 404). Success is **HTTP 204 with an empty body**.
//! Every other answer is JSON `{"code", "message", "detail"?}`. Every answer
//! the revoke rules produce — 204 and errors alike — carries `Request-ID` and
//! is signed like WeChat Pay's: `Wechatpay-Timestamp` (the sandbox clock),
//! `Wechatpay-Nonce`, `Wechatpay-Serial` and `Wechatpay-Signature`
//! (SHA256withRSA over `TIMESTAMP\nNONCE\nBODY\n` with the platform key).
//! Only the routing answers (404, 405, 413) and the `http500` and `drop`
//! faults are not signed, as a proxy's would not be.
//!
//! Checks run in this order; the first failure answers:
//!
//! | order | check | status and `code` |
//! |---|---|---|
//! | 1 | `User-Agent` present; `Accept` allows `application/json`; `Content-Type` is `application/json` | 400 `INVALID_REQUEST` (message names the header) |
//! | 2 | `Authorization: WECHATPAY2-SHA256-RSA2048 mchid="..",nonce_str="..",timestamp="..",serial_no="..",signature=".."` present and strictly well formed (one space after the scheme, exactly these five quoted parameters in any order, each once, `,` with no spaces); `mchid` is the configured caller (`mchid`, or `sp_mchid` in institutional mode); `serial_no` is the configured merchant certificate serial; `timestamp` within 5 minutes (either way) of the **sandbox clock**, in seconds; the signature verifies over `POST\nPATH_AND_QUERY_AS_SENT\nTIMESTAMP\nNONCE\nBODY\n` with the configured merchant public key | 401 `SIGN_ERROR`, `detail` = `{field, value?, issue, location: "header", sign_information?}`; `sign_information` = `{method, url, truncated_sign_message, sign_message_length}`: the message the sandbox checked, rebuilt from what was sent |
//! | 3 | path ID: valid UTF-8 once decoded, 1 to 32 characters, no control characters | 400 `PARAM_ERROR`, `detail` = `{field: "transaction_id"\|"out_trade_no", value, issue, location: "path"}` |
//! | 4 | body: a JSON object; common mode `{"mchid"}`, institutional `{"sp_mchid", "sub_mchid"}` (not both); each a string of 1 to 32 characters; unknown fields are ignored | 400 `PARAM_ERROR`, `detail` = `{field: "body"\|"mchid"\|"sp_mchid"\|"sub_mchid", value, issue, location: "body"}` |
//! | 5 | the body names the configured merchant, in the configured mode | 400 `INVALID_REQUEST` (no permission; the message names the field) |
//! | 6 | the order exists: by `transaction_id` | 400 `INVALID_TRANSACTIONID` |
//! | 6 | the order exists: by `out_trade_no` (the page has no code for this; the sandbox's choice) | 400 `PARAM_ERROR`, `detail.field` `out_trade_no`, `location` `path` |
//! | 2b | only with [`WechatpayConfig::reject_replayed_nonce`] (**inferred**, off by default): the `(mchid, nonce_str)` was not accepted in the last 5 minutes | 401 `SIGN_ERROR`, `detail.field` `nonce_str` |
//! | 7 | already revoked (**inferred**, [`WechatpayConfig::second_revoke`]): by default [`SecondRevoke::Succeed`], **answered 204 again** and nothing changes (so an identical retry after a lost answer is a success); [`SecondRevoke::Error`] answers 400 `INVALID_REQUEST` | 204 |
//! | 8 | paid more than 7 days (604 800 s) ago by the sandbox clock | 400 `REVERSE_EXPIRE` |
//! | — | otherwise: revoked (`tradeState` `REVOKED`, `statusCode` `TS02`, `remainingAmount` 0) | 204 |
//!
//! The revoke page gives no HTTP statuses; the sandbox takes WeChat Pay
//! Global's general table (400 parameters and requests, 401 signature, 403
//! permission / risk, 500 system). `TRADE_ERROR` (403) and `SYSTEM_ERROR`
//! (500) are never produced by the rules, only by the `code` fault. The
//! sandbox does not enforce the page's advice to wait 15 s after payment, nor
//! the 150 qps rate limit, and by default keeps no nonce replay list (identical
//! re-sends must be accepted; the pages say nothing of replays). A request timestamp is checked against the sandbox
//! clock: after `POST /sandbox/clock`, clients must sign with the shifted
//! time ([`SandboxHandle::unix_time`]), and answers are dated by it too.
//!
//! ## Platform certificates and rotation
//!
//! | method and path | what |
//! |---|---|
//! | `GET /v3/global/certificates` | `{"data": [{"serial_no", "effective_time", "expire_time", "encrypt_certificate": {"algorithm": "AEAD_AES_256_GCM", "nonce", "associated_data": "certificate", "ciphertext"}}]}`, signed; same header and signature checks as the query |
//! | `POST /sandbox/wechatpay/rotate` `{"switchAfterSeconds"?: 0, "keepOldSeconds"?: 86400}` | admin (unsigned): a new platform certificate (new serial `5A4DB0C5A4DB0C5A4DB0C5A4DB0C5A4DB0C50101`, `...0102`, ..., made by rcgen) is listed at once and signs every answer from `switchAfterSeconds` on; every older one stays listed until `keepOldSeconds` after the switch. Answers `{"serialNo", "previousSerialNo", "switchAt", "previousDelistedAt"}` ([`SandboxHandle::rotate_wechatpay_platform`]) |
//! | `POST /sandbox/wechatpay/trade-state` `{"transactionId"\|"outTradeNo", "tradeState"}` | admin (unsigned): the order query reports this `trade_state` (`SUCCESS`, `REFUND`, `NOTPAY`, `CLOSED`, `REVOKED`, `USERPAYING`, `PAYERROR`, or `X_...` for one no client knows) instead of the rules' own; a test hook for states the sandbox never reaches by itself. The revoke rules do not change; a successful revoke clears it ([`SandboxHandle::set_wechatpay_trade_state`]) |
//!
//! Each certificate's PEM is encrypted with AES-256-GCM under the API v3 key
//! ([`WechatpayConfig::apiv3_key`], default [`SANDBOX_APIV3_KEY`]; `kicc
//! sandbox serve` takes `WECHATPAY_APIV3_KEY`), a fresh 12-character nonce and
//! associated data `certificate`; the tag is the ciphertext's last 16 bytes.
//! The listed times are the sandbox's (RFC 3339, +08:00): the first
//! certificate effective a day before the sandbox first used it, each rotated
//! one from its switch, each for 5 years. Rotations alternate between the
//! committed rotation key ([`SANDBOX_PLATFORM_ROTATION_PRIVATE_KEY_PEM`]) and
//! the configured platform key (ring cannot generate RSA keys); the serial and
//! the certificate are new each time. WeChat Pay lists a new certificate 24 h
//! before switching; the sandbox's default switches at once so a client must
//! handle an answer signed under a serial it does not hold yet.
//!
//! ## Keys and merchants
//!
//! [`WechatpayConfig`] ([`SandboxConfig::wechatpay`]) sets every part; the
//! defaults are the committed sandbox keys:
//!
//! | role | default |
//! |---|---|
//! | merchant (common mode) | `mchid` [`DEFAULT_WECHATPAY_MCHID`] (`1900000109`); institutional: [`WechatpayMerchant::sandbox_institutional`] (`sp_mchid` `1900000109`, `sub_mchid` [`DEFAULT_WECHATPAY_SUB_MCHID`]) |
//! | merchant API key clients sign with | [`SANDBOX_MERCHANT_PRIVATE_KEY_PEM`] (`serial_no` [`SANDBOX_MERCHANT_SERIAL_NO`]; certificate [`SANDBOX_MERCHANT_CERTIFICATE_PEM`]) |
//! | what the sandbox verifies with | [`SANDBOX_MERCHANT_PUBLIC_KEY_PEM`] |
//! | platform key the sandbox signs with | [`SANDBOX_PLATFORM_PRIVATE_KEY_PEM`] |
//! | certificate mode: `Wechatpay-Serial`, certificate | [`SANDBOX_PLATFORM_CERTIFICATE_SERIAL`], [`SANDBOX_PLATFORM_CERTIFICATE_PEM`] |
//! | public-key mode ([`WechatpayConfig::public_key_mode`]): `Wechatpay-Serial`, key | [`SANDBOX_PLATFORM_PUBLIC_KEY_ID`], [`SANDBOX_PLATFORM_PUBLIC_KEY_PEM`] |
//! | API v3 key (certificates listing) | [`SANDBOX_APIV3_KEY`] |
//! | key of the first rotation | [`SANDBOX_PLATFORM_ROTATION_PRIVATE_KEY_PEM`] |
//!
//! ## Faults on the revoke path
//!
//! A fault `path` is a template, [`WECHATPAY_REVERSE_BY_ID_PATH`] or
//! [`WECHATPAY_REVERSE_BY_OUT_TRADE_NO_PATH`] (every revoke of that form), or
//! a concrete path as sent, percent-encoded (that order only; tried first).
//! `resCd` and `withholdWebhook` do not apply here, and these kinds apply
//! only here:
//!
//! | kind | answer | `apply` default |
//! |---|---|---|
//! | `timeout`, `drop` | as on the KICC paths | yes |
//! | `http500` | HTTP 500, `text/plain`, unsigned (a proxy's failure) | no |
//! | `badSignature` | the normal answer, but a `Wechatpay-Signature` that is valid Base64 over the wrong message | yes; with `apply: false` a 204 that revoked nothing (a forgery) |
//! | `signatureProbe` | the normal answer, with `Wechatpay-Signature: WECHATPAY/SIGNTEST/...` | as `badSignature` |
//! | `oldTimestamp` | the normal answer, correctly signed but dated 10 minutes ago | as `badSignature` |
//! | `code` | `{"code": <code>, "message", "detail"?}`, signed, with `httpStatus` or the code's usual status (`SYSTEM_ERROR` 500, `TRADE_ERROR` 403, `SIGN_ERROR` 401, others 400); `code` is 1 to 32 of `A-Z0-9_` | no; with `apply: true` the order is revoked behind the error |
//!
//! ```
//! use std::net::SocketAddr;
//! use kicc_sandbox::{Currency, NewWechatpayOrder, Sandbox, SandboxConfig};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), kicc_sandbox::SandboxError> {
//! let addr: SocketAddr = "127.0.0.1:0".parse().expect("literal address");
//! let sandbox = Sandbox::start(addr, SandboxConfig::default()).await?;
//! let order = sandbox.create_wechatpay_order(
//!     NewWechatpayOrder::new(1_000, Currency::Usd).paid_seconds_ago(8 * 86_400),
//! )?;
//! let transaction_id = order.transaction_id.expect("assigned");
//! // ... sign with SANDBOX_MERCHANT_PRIVATE_KEY_PEM and POST to
//! // {base_url}/v3/global/micropay/transactions/id/{transaction_id}/reverse:
//! // this one answers 400 REVERSE_EXPIRE.
//! let state = sandbox.payment(&transaction_id).expect("found by transaction_id");
//! assert_eq!(state.trade_state.as_deref(), Some("SUCCESS"));
//! sandbox.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! # Transport
//!
//! The server speaks HTTP/1.1 and h2 (prior knowledge on plain TCP; ALPN
//! `h2`, `http/1.1` over TLS). With [`SandboxConfig::tls`] it serves a
//! certificate for `127.0.0.1`, `::1` and `localhost` signed by a root
//! generated at start, available from [`SandboxHandle::root_certificate_pem`].
//!
//! # Layout
//!
//! The source reads in four layers; a module imports only from its own layer
//! or the ones above it in this list (`cargo xtask ci` fails on any import
//! cycle between files):
//!
//! 1. **Types and routes** (pure data): `model`, `codes`, `error`, `config`,
//!    `settings`, `validate`, `wechat_final`; `routes`, the one routing table
//!    for the KICC, WeChat Pay Global and admin paths; `clock`, the one clock
//!    helper (the sandbox's Unix, Korea and China times); `ids`, the one
//!    deterministic generator of identifiers, nonces and request IDs;
//!    `wechatpay`: its configuration, keys, crypto, platform certificates and
//!    order records.
//! 2. **State**: `state`, everything that changes, behind one mutex
//!    (records, fault queues, payment creation and completion).
//! 3. **Rules** (sans-IO): `rules`, one module per endpoint (`generic`,
//!    `overseas`, `retrieve` for KICC; `wechatpay::{revoke, query, endpoint}`
//!    with its `checks`, `answer`, `sign` and `log`). Each takes `&mut State`
//!    plus the time and settings and returns a plain response value.
//! 4. **IO**: `shared` (the server context and response helpers), `fault`
//!    (the one fault path, shared by the KICC and WeChat Pay paths),
//!    `webhook`, `admin` (request bodies as `#[derive(Deserialize)]` types),
//!    `server` (connections, body limits, latency, dispatch) and `handle`
//!    ([`Sandbox`] and [`SandboxHandle`]).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

// Layer 1, types and routes (pure data, no state).
mod clock;
mod codes;
mod config;
mod error;
#[doc(hidden)]
pub mod fuzz;
mod ids;
mod model;
mod routes;
mod settings;
mod validate;
mod wechat_final;
mod wechatpay;
// Layer 2, state.
mod state;
// Layer 3, rules: sans-IO, per endpoint.
mod rules;
// Layer 4, IO.
mod admin;
mod fault;
mod handle;
mod server;
mod shared;
mod tls;
mod webhook;

pub use codes::ResCode;
pub use config::{SandboxConfig, SecretKey, DEFAULT_MALL_ID, DEFAULT_SECRET_KEY, DEFAULT_SEED};
pub use error::SandboxError;
pub use handle::{Sandbox, SandboxHandle};
pub use model::{
    CancelState, Channel, Currency, Fault, FaultKind, Payment, PaymentState, WebhookDelivery,
};
pub use routes::{
    ALIPAY_REVISE_PATH, GENERIC_REVISE_PATH, RETRIEVE_TRANSACTION_PATH,
    WECHATPAY_CERTIFICATES_PATH, WECHATPAY_QUERY_BY_ID_PATH, WECHATPAY_QUERY_BY_OUT_TRADE_NO_PATH,
    WECHATPAY_REVERSE_BY_ID_PATH, WECHATPAY_REVERSE_BY_OUT_TRADE_NO_PATH, WECHATPAY_ROTATE_PATH,
    WECHAT_FIND_PATH, WECHAT_REVISE_PATH,
};
pub use server::MAX_BODY_BYTES;
pub use settings::{RefundQueryMatch, RemainAmountConvention, Settings};
pub use wechatpay::{
    ApiV3KeyText, NewWechatpayOrder, PaidAt, PrivateKeyPem, SecondRevoke, WechatpayConfig,
    WechatpayMerchant, WechatpayRequestRecord, DEFAULT_WECHATPAY_MCHID,
    DEFAULT_WECHATPAY_SUB_MCHID, SANDBOX_APIV3_KEY, SANDBOX_MERCHANT_CERTIFICATE_PEM,
    SANDBOX_MERCHANT_PRIVATE_KEY_PEM, SANDBOX_MERCHANT_PUBLIC_KEY_PEM, SANDBOX_MERCHANT_SERIAL_NO,
    SANDBOX_PLATFORM_CERTIFICATE_PEM, SANDBOX_PLATFORM_CERTIFICATE_SERIAL,
    SANDBOX_PLATFORM_PRIVATE_KEY_PEM, SANDBOX_PLATFORM_PUBLIC_KEY_ID,
    SANDBOX_PLATFORM_PUBLIC_KEY_PEM, SANDBOX_PLATFORM_ROTATION_PRIVATE_KEY_PEM,
};

// The README's example, compiled and run with the doc tests so it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
