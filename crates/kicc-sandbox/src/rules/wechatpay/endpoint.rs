//! Layer 3, rules (WeChat Pay Global): one request to any of the endpoints,
//! processed atomically (every check in order, then the rules) on
//! `&mut State`; the answer is signed by [`super::sign`].

use bytes::Bytes;
use http::StatusCode;

use super::answer::Answer;
use super::checks::{check_headers, check_replay, check_signature};
use super::query::process_query;
use super::revoke::process_revoke;
use super::sign::ALNUM;
use crate::routes::{Head, Op, WxRoute};
use crate::state::State;
use crate::wechatpay::{PlatformSet, WechatpaySettings as Settings};

/// Processes one request at the sandbox time `now` (Unix seconds).
pub(crate) fn process(
    st: &mut State,
    settings: &Settings,
    now: i64,
    route: &WxRoute,
    head: &Head,
    body: &[u8],
) -> Answer {
    match route.op {
        Op::Revoke => process_revoke(st, settings, now, route, head, body),
        Op::Query => process_query(st, settings, now, route, head, body),
        Op::Certificates => process_certificates(st, settings, now, head, body),
    }
}

/// The certificates download: the query's header and signature checks, then
/// the listing, each certificate encrypted with the API v3 key.
fn process_certificates(
    st: &mut State,
    settings: &Settings,
    now: i64,
    head: &Head,
    body: &[u8],
) -> Answer {
    let checked = check_headers(&head.headers, false)
        .and_then(|()| check_signature(settings, head, body, now))
        .and_then(|parts| check_replay(settings, st, &parts, now));
    if let Err(answer) = checked {
        return answer;
    }
    let wx = &mut st.wx;
    let set = wx
        .platform
        .get_or_insert_with(|| PlatformSet::new(settings, now));
    let rng = &mut wx.rng;
    match set.listing(settings.apiv3_key.bytes(), now, || rng.text(ALNUM, 12)) {
        Ok(listing) => Answer {
            status: StatusCode::OK,
            body: Bytes::from(listing.to_string()),
            code: None,
        },
        Err(e) => Answer::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "SYSTEM_ERROR",
            &format!("the sandbox could not encrypt its certificates: {e}"),
            None,
        ),
    }
}
