//! Layer 1, requests: every path the sandbox serves and the one routing table
//! ([`route`]) that maps a method and path to a KICC endpoint, a WeChat Pay
//! Global endpoint or an admin call. Pure data: no state, no IO.

use http::{HeaderMap, Method, Request};

use crate::model::Channel;

/// Path of the generic cancel endpoint (card, transfer, mobile, cash receipt, capture).
pub const GENERIC_REVISE_PATH: &str = "/api/trades/revise";
/// Path of the Alipay cancel endpoint.
pub const ALIPAY_REVISE_PATH: &str = "/api/trades/alipay/revise";
/// Path of the WeChat Pay cancel endpoint (asynchronous).
pub const WECHAT_REVISE_PATH: &str = "/api/trades/wechatpay/revise";
/// Path of the WeChat Pay cancellation-status endpoint.
pub const WECHAT_FIND_PATH: &str = "/api/trades/wechatpay/find";
/// Path of the transaction status check (look-up of a request by its key).
pub const RETRIEVE_TRANSACTION_PATH: &str = "/api/trades/retrieveTransaction";

/// Path template of revoke by WeChat Pay order number. As a fault `path` it
/// hits every revoke by `transaction_id`.
pub const WECHATPAY_REVERSE_BY_ID_PATH: &str =
    "/v3/global/micropay/transactions/id/{transaction_id}/reverse";
/// Path template of revoke by merchant order number. As a fault `path` it hits
/// every revoke by `out_trade_no`.
pub const WECHATPAY_REVERSE_BY_OUT_TRADE_NO_PATH: &str =
    "/v3/global/micropay/transactions/out-trade-no/{out_trade_no}/reverse";

/// Path template of the order query by WeChat Pay order number (`GET`, with
/// `?mchid=` or `?sub_mchid=&sp_mchid=`). As a fault `path` it hits every
/// query by `transaction_id`.
pub const WECHATPAY_QUERY_BY_ID_PATH: &str = "/v3/global/transactions/id/{transaction_id}";
/// Path template of the order query by merchant order number. As a fault
/// `path` it hits every query by `out_trade_no`.
pub const WECHATPAY_QUERY_BY_OUT_TRADE_NO_PATH: &str =
    "/v3/global/transactions/out-trade-no/{out_trade_no}";

/// The platform certificates download (`GET`, no parameters).
pub const WECHATPAY_CERTIFICATES_PATH: &str = "/v3/global/certificates";
/// The admin call that rotates the sandbox's platform certificate (`POST`).
pub const WECHATPAY_ROTATE_PATH: &str = "/sandbox/wechatpay/rotate";
/// The admin call that sets the `trade_state` the order query reports (`POST`).
pub(crate) const WECHATPAY_TRADE_STATE_PATH: &str = "/sandbox/wechatpay/trade-state";

const QUERY_PREFIX_BY_ID: &str = "/v3/global/transactions/id/";
const QUERY_PREFIX_BY_OUT_TRADE_NO: &str = "/v3/global/transactions/out-trade-no/";
pub(crate) const PREFIX_BY_ID: &str = "/v3/global/micropay/transactions/id/";
pub(crate) const PREFIX_BY_OUT_TRADE_NO: &str = "/v3/global/micropay/transactions/out-trade-no/";
pub(crate) const SUFFIX: &str = "/reverse";

/// The KICC endpoints the sandbox serves (its routing table; a new endpoint
/// is a new variant plus a row in [`ApiEndpoint::ALL`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum ApiEndpoint {
    GenericRevise,
    AlipayRevise,
    WechatRevise,
    WechatFind,
    RetrieveTransaction,
}

impl ApiEndpoint {
    pub(crate) const ALL: [ApiEndpoint; 5] = [
        Self::GenericRevise,
        Self::AlipayRevise,
        Self::WechatRevise,
        Self::WechatFind,
        Self::RetrieveTransaction,
    ];

    pub(crate) const fn path(self) -> &'static str {
        match self {
            Self::GenericRevise => GENERIC_REVISE_PATH,
            Self::AlipayRevise => ALIPAY_REVISE_PATH,
            Self::WechatRevise => WECHAT_REVISE_PATH,
            Self::WechatFind => WECHAT_FIND_PATH,
            Self::RetrieveTransaction => RETRIEVE_TRANSACTION_PATH,
        }
    }

    pub(crate) fn from_path(path: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.path() == path)
    }

    /// The channel the Alipay / WeChat endpoints serve.
    pub(crate) fn channel(self) -> Option<Channel> {
        match self {
            Self::AlipayRevise => Some(Channel::Alipay),
            Self::WechatRevise | Self::WechatFind => Some(Channel::Wechat),
            Self::GenericRevise | Self::RetrieveTransaction => None,
        }
    }

    pub(crate) fn is_wechat(self) -> bool {
        matches!(self, Self::WechatRevise | Self::WechatFind)
    }
}

/// Which of the two path forms a WeChat Pay order request used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OrderKey {
    TransactionId,
    OutTradeNo,
}

impl OrderKey {
    /// The path parameter's name, as the page and errors name it.
    pub(crate) fn field(self) -> &'static str {
        match self {
            Self::TransactionId => "transaction_id",
            Self::OutTradeNo => "out_trade_no",
        }
    }
}

/// What a WeChat Pay request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    /// `POST .../micropay/transactions/.../reverse`.
    Revoke,
    /// `GET /v3/global/transactions/...`.
    Query,
    /// `GET /v3/global/certificates`.
    Certificates,
}

/// A request path of the WeChat Pay endpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct WxRoute {
    pub(crate) op: Op,
    pub(crate) key: OrderKey,
    /// The id segment as sent (still percent-encoded).
    pub(crate) raw_id: String,
    /// The path as sent, without the query (the concrete fault key).
    pub(crate) path: String,
}

impl WxRoute {
    /// The method the endpoint takes, and the `Allow` header for others.
    pub(crate) fn allowed(&self) -> (Method, &'static str) {
        match self.op {
            Op::Revoke => (Method::POST, "POST"),
            Op::Query | Op::Certificates => (Method::GET, "GET"),
        }
    }

    /// The path template (also the fault key for every order of this form).
    pub(crate) fn template(&self) -> &'static str {
        match (self.op, self.key) {
            (Op::Revoke, OrderKey::TransactionId) => WECHATPAY_REVERSE_BY_ID_PATH,
            (Op::Revoke, OrderKey::OutTradeNo) => WECHATPAY_REVERSE_BY_OUT_TRADE_NO_PATH,
            (Op::Query, OrderKey::TransactionId) => WECHATPAY_QUERY_BY_ID_PATH,
            (Op::Query, OrderKey::OutTradeNo) => WECHATPAY_QUERY_BY_OUT_TRADE_NO_PATH,
            (Op::Certificates, _) => WECHATPAY_CERTIFICATES_PATH,
        }
    }
}

/// Matches `/v3/global/micropay/transactions/{id|out-trade-no}/{segment}/reverse`
/// (revoke), `/v3/global/transactions/{id|out-trade-no}/{segment}` (query)
/// where the segment holds no `/` (an encoded `%2F` is fine), and the
/// certificates download. `path` has no query.
pub(crate) fn wechatpay_route(path: &str) -> Option<WxRoute> {
    let order = |op, key, raw_id: &str| {
        (!raw_id.contains('/')).then(|| WxRoute {
            op,
            key,
            raw_id: raw_id.to_owned(),
            path: path.to_owned(),
        })
    };
    if path == WECHATPAY_CERTIFICATES_PATH {
        return Some(WxRoute {
            op: Op::Certificates,
            key: OrderKey::OutTradeNo,
            raw_id: String::new(),
            path: path.to_owned(),
        });
    }
    if let Some(rest) = path.strip_prefix(QUERY_PREFIX_BY_ID) {
        return order(Op::Query, OrderKey::TransactionId, rest);
    }
    if let Some(rest) = path.strip_prefix(QUERY_PREFIX_BY_OUT_TRADE_NO) {
        return order(Op::Query, OrderKey::OutTradeNo, rest);
    }
    let (key, rest) = if let Some(rest) = path.strip_prefix(PREFIX_BY_ID) {
        (OrderKey::TransactionId, rest)
    } else {
        (
            OrderKey::OutTradeNo,
            path.strip_prefix(PREFIX_BY_OUT_TRADE_NO)?,
        )
    };
    order(Op::Revoke, key, rest.strip_suffix(SUFFIX)?)
}

/// Whether `path` names a WeChat Pay endpoint (a template or a concrete path).
pub(crate) fn is_wechatpay_fault_path(path: &str) -> bool {
    wechatpay_route(path).is_some()
}

/// What the WeChat Pay endpoints need of the request besides its body.
#[derive(Clone, Debug)]
pub(crate) struct Head {
    pub(crate) method: Method,
    /// Path and query as received: the signed canonical URL.
    pub(crate) target: String,
    pub(crate) headers: HeaderMap,
}

impl Head {
    pub(crate) fn from_request<B>(req: &Request<B>) -> Self {
        Self {
            method: req.method().clone(),
            target: req
                .uri()
                .path_and_query()
                .map_or_else(|| req.uri().path().to_owned(), |p| p.as_str().to_owned()),
            headers: req.headers().clone(),
        }
    }
}

/// An admin endpoint (under `/sandbox/`; unsigned, no latency, no faults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AdminRoute {
    CreatePayment,
    GetPayment(String),
    InjectFault,
    ListFaults,
    SetClock,
    GetClock,
    SetSettings,
    GetSettings,
    Webhooks,
    WechatpayRequests,
    WechatpayRotate,
    WechatpayTradeState,
    Reset,
}

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    Api(ApiEndpoint),
    Admin(AdminRoute),
    Wechatpay(WxRoute),
}

/// Why a request has no route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RouteError {
    NotFound,
    /// The path exists; the `Allow` header value.
    MethodNotAllowed(&'static str),
}

/// The sandbox's routing table.
pub(crate) fn route(method: &Method, path: &str) -> Result<Route, RouteError> {
    use RouteError::{MethodNotAllowed, NotFound};
    let only = |allowed: &Method, allow: &'static str, r: Route| {
        if method == allowed {
            Ok(r)
        } else {
            Err(MethodNotAllowed(allow))
        }
    };
    let get_or_post = |get: AdminRoute, post: AdminRoute| match *method {
        Method::POST => Ok(Route::Admin(post)),
        Method::GET => Ok(Route::Admin(get)),
        _ => Err(MethodNotAllowed("GET, POST")),
    };
    if let Some(ep) = ApiEndpoint::from_path(path) {
        return only(&Method::POST, "POST", Route::Api(ep));
    }
    if let Some(r) = wechatpay_route(path) {
        let (allowed, allow) = r.allowed();
        return only(&allowed, allow, Route::Wechatpay(r));
    }
    let post = |r: AdminRoute| only(&Method::POST, "POST", Route::Admin(r));
    let get = |r: AdminRoute| only(&Method::GET, "GET", Route::Admin(r));
    match path {
        WECHATPAY_ROTATE_PATH => post(AdminRoute::WechatpayRotate),
        WECHATPAY_TRADE_STATE_PATH => post(AdminRoute::WechatpayTradeState),
        "/sandbox/payments" => post(AdminRoute::CreatePayment),
        "/sandbox/faults" => get_or_post(AdminRoute::ListFaults, AdminRoute::InjectFault),
        "/sandbox/clock" => get_or_post(AdminRoute::GetClock, AdminRoute::SetClock),
        "/sandbox/settings" => get_or_post(AdminRoute::GetSettings, AdminRoute::SetSettings),
        "/sandbox/webhooks" => get(AdminRoute::Webhooks),
        "/sandbox/wechatpay/requests" => get(AdminRoute::WechatpayRequests),
        "/sandbox/reset" => post(AdminRoute::Reset),
        _ => match path.strip_prefix("/sandbox/payments/") {
            Some(id) if !id.is_empty() && !id.contains('/') => {
                get(AdminRoute::GetPayment(id.to_owned()))
            }
            _ => Err(NotFound),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_both_forms_and_nothing_else() {
        let route = wechatpay_route;
        let r = route("/v3/global/micropay/transactions/id/4200000001/reverse").unwrap();
        assert_eq!(r.key, OrderKey::TransactionId);
        assert_eq!(r.raw_id, "4200000001");
        let r = route("/v3/global/micropay/transactions/out-trade-no/A%2F1/reverse").unwrap();
        assert_eq!(r.key, OrderKey::OutTradeNo);
        assert_eq!(r.raw_id, "A%2F1");
        assert!(route("/v3/global/micropay/transactions/out-trade-no/A/1/reverse").is_none());
        assert!(route("/v3/global/micropay/transactions/id/1/reverse/").is_none());
        assert!(route("/v3/global/micropay/transactions/id/1").is_none());
        assert!(route("/api/trades/revise").is_none());
        assert_eq!(
            route("/v3/global/micropay/transactions/id//reverse")
                .unwrap()
                .raw_id,
            ""
        );
        assert!(is_wechatpay_fault_path(WECHATPAY_REVERSE_BY_ID_PATH));
        assert!(is_wechatpay_fault_path(
            WECHATPAY_REVERSE_BY_OUT_TRADE_NO_PATH
        ));
        assert!(!is_wechatpay_fault_path(WECHATPAY_ROTATE_PATH));
    }

    #[test]
    fn one_table_for_every_path() {
        let post = Method::POST;
        let get = Method::GET;
        assert_eq!(
            route(&post, GENERIC_REVISE_PATH),
            Ok(Route::Api(ApiEndpoint::GenericRevise))
        );
        assert_eq!(
            route(&get, GENERIC_REVISE_PATH),
            Err(RouteError::MethodNotAllowed("POST"))
        );
        assert_eq!(
            route(&post, WECHATPAY_ROTATE_PATH),
            Ok(Route::Admin(AdminRoute::WechatpayRotate))
        );
        assert_eq!(
            route(&Method::PUT, "/sandbox/faults"),
            Err(RouteError::MethodNotAllowed("GET, POST"))
        );
        assert_eq!(
            route(&get, "/sandbox/payments/P1"),
            Ok(Route::Admin(AdminRoute::GetPayment("P1".into())))
        );
        assert_eq!(route(&get, "/sandbox/payments/"), Err(RouteError::NotFound));
        assert!(matches!(
            route(&get, WECHATPAY_CERTIFICATES_PATH),
            Ok(Route::Wechatpay(_))
        ));
    }
}
