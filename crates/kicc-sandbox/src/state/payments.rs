//! Layer 2, state: creating payments and WeChat Pay Global orders, finishing
//! accepted WeChat cancels, and the WeChat Pay test hooks (reported trade
//! state, platform rotation).

use bytes::Bytes;

use crate::model::{Channel, Currency, Payment};
use crate::state::records::{Notice, PaymentRec, MAX_PAYMENT_AMOUNT, TS01, TS12};
use crate::state::State;
use crate::wechat_final::{notice_body, NoticeFields, WechatFinal};
use crate::wechatpay::{
    NewWechatpayOrder, PaidAt, PlatformSet, Rotated, WechatpaySettings, WxOrderRec, MAX_UNIX_SECS,
};
use crate::SandboxError;

/// The `trade_state` values the order query may be told to report.
const REPORTABLE_STATES: [&str; 7] = [
    "SUCCESS",
    "REFUND",
    "NOTPAY",
    "CLOSED",
    "REVOKED",
    "USERPAYING",
    "PAYERROR",
];

/// Checks an `out_trade_no` given to the admin API (the revoke page's
/// `string(32)`, and usable as a URL path segment).
fn check_out_trade_no(value: &str) -> Result<(), String> {
    let count = value.chars().count();
    if count == 0 || count > 32 {
        return Err(format!("must be 1 to 32 characters, got {count}"));
    }
    if value.chars().any(char::is_control) {
        return Err("must not contain control characters".to_owned());
    }
    if value == "." || value == ".." {
        return Err("must not be \".\" or \"..\" (it is a URL path segment)".to_owned());
    }
    Ok(())
}

impl State {
    pub(crate) fn create_payment(
        &mut self,
        mall_id: &str,
        channel: Channel,
        amount: u64,
        currency: Currency,
        authorized_only: bool,
        escrow: bool,
    ) -> Result<Payment, SandboxError> {
        let invalid =
            |field: &'static str, rule: String| Err(SandboxError::InvalidPayment { field, rule });
        if escrow && !matches!(channel, Channel::Card | Channel::Transfer | Channel::Mobile) {
            return invalid(
                "escrow",
                format!("applies only to card, transfer and mobile payments, not {channel}"),
            );
        }
        if channel == Channel::WechatpayGlobal && !authorized_only {
            return self.create_wechatpay_order(mall_id, &NewWechatpayOrder::new(amount, currency));
        }
        if amount == 0 || amount > MAX_PAYMENT_AMOUNT {
            return invalid(
                "amount",
                format!("must be a positive integer in minor units, at most {MAX_PAYMENT_AMOUNT}"),
            );
        }
        if currency == Currency::Usd
            && !matches!(
                channel,
                Channel::Alipay | Channel::Wechat | Channel::WechatpayGlobal
            )
        {
            return invalid(
                "currency",
                format!("USD is only available for alipay and wechat, not {channel}"),
            );
        }
        if authorized_only && channel != Channel::Card {
            return invalid(
                "authorizedOnly",
                format!("applies only to card payments, not {channel}"),
            );
        }
        let pg_cno = self.fresh_id("SBP");
        let shop_order_no = self.ids.next_id("ORDER", 15);
        if escrow {
            self.escrow.insert(pg_cno.clone());
        }
        let rec = PaymentRec {
            pg_cno: pg_cno.clone(),
            shop_order_no: shop_order_no.clone(),
            channel,
            currency,
            amount,
            remaining: amount,
            reserved: 0,
            authorized_only,
            captured: false,
            cancels: Vec::new(),
            wechatpay: None,
        };
        self.payments.insert(pg_cno.clone(), rec);
        Ok(Payment {
            pg_cno,
            mall_id: mall_id.to_owned(),
            shop_order_no,
            amount,
            currency,
            channel,
            authorized_only,
            transaction_id: None,
            out_trade_no: None,
            paid_at: None,
        })
    }

    /// Creates a WeChat Pay Global order.
    pub(crate) fn create_wechatpay_order(
        &mut self,
        mall_id: &str,
        order: &NewWechatpayOrder,
    ) -> Result<Payment, SandboxError> {
        let invalid =
            |field: &'static str, rule: String| SandboxError::InvalidPayment { field, rule };
        if order.amount == 0 || order.amount > MAX_PAYMENT_AMOUNT {
            return Err(invalid(
                "amount",
                format!("must be a positive integer in minor units, at most {MAX_PAYMENT_AMOUNT}"),
            ));
        }
        if let Some(no) = &order.out_trade_no {
            check_out_trade_no(no).map_err(|rule| invalid("outTradeNo", rule))?;
            if let Some(pg) = self.wx.by_out_trade_no.get(no) {
                return Err(invalid(
                    "outTradeNo",
                    format!("must be unique; {no:?} already belongs to payment {pg}"),
                ));
            }
        }
        let now = self.unix_now();
        let paid_at = match order.paid_at {
            PaidAt::Now => now,
            PaidAt::SecondsAgo(secs) => now.saturating_sub(i64::try_from(secs).unwrap_or(i64::MAX)),
            PaidAt::UnixSeconds(t) => t,
        };
        if !(0..=MAX_UNIX_SECS).contains(&paid_at) {
            return Err(invalid(
                "paidAt",
                format!("must fall within 0..={MAX_UNIX_SECS} Unix seconds, got {paid_at}"),
            ));
        }
        let pg_cno = self.fresh_id("SBP");
        let transaction_id = loop {
            let id = format!(
                "4200{}{}",
                self.ids.next_id("", 12),
                self.ids.next_id("", 12)
            );
            if !self.wx.by_transaction_id.contains_key(&id) {
                break id;
            }
        };
        let out_trade_no = match &order.out_trade_no {
            Some(no) => no.clone(),
            None => loop {
                let no = self.ids.next_id("WXORDER", 17);
                if !self.wx.by_out_trade_no.contains_key(&no) {
                    break no;
                }
            },
        };
        let rec = PaymentRec {
            pg_cno: pg_cno.clone(),
            shop_order_no: out_trade_no.clone(),
            channel: Channel::WechatpayGlobal,
            currency: order.currency,
            amount: order.amount,
            remaining: order.amount,
            reserved: 0,
            authorized_only: false,
            captured: false,
            cancels: Vec::new(),
            wechatpay: Some(WxOrderRec {
                transaction_id: transaction_id.clone(),
                out_trade_no: out_trade_no.clone(),
                paid_at,
                revoked_at: None,
                reverse_calls: 0,
                reported_state: None,
            }),
        };
        self.payments.insert(pg_cno.clone(), rec);
        self.wx
            .by_transaction_id
            .insert(transaction_id.clone(), pg_cno.clone());
        self.wx
            .by_out_trade_no
            .insert(out_trade_no.clone(), pg_cno.clone());
        Ok(Payment {
            pg_cno,
            mall_id: mall_id.to_owned(),
            shop_order_no: out_trade_no.clone(),
            amount: order.amount,
            currency: order.currency,
            channel: Channel::WechatpayGlobal,
            authorized_only: false,
            transaction_id: Some(transaction_id),
            out_trade_no: Some(out_trade_no),
            paid_at: Some(paid_at),
        })
    }
    /// Finishes an accepted WeChat cancel as it was set to (applied, voided
    /// or failed); returns the notice to send, if any.
    pub(crate) fn finalize_wechat(
        &mut self,
        generation: u64,
        pg_cno: &str,
        cancel_pg_cno: &str,
        mall_id: &str,
    ) -> Option<Notice> {
        if generation != self.generation {
            return None;
        }
        let now = self.now();
        let p = self.payments.get_mut(pg_cno)?;
        let idx = p.cancels.iter().position(|c| {
            c.cancel_pg_cno == cancel_pg_cno && c.status == TS01 && c.failure.is_none()
        })?;
        let cancel = p.cancels.get(idx)?;
        let amount = cancel.amount;
        let finish_as = cancel.finish_as.clone();
        p.reserved = p.reserved.saturating_sub(amount);
        // A failure only releases the held amount; nothing is cancelled.
        if matches!(finish_as, WechatFinal::Apply | WechatFinal::Void) {
            p.remaining = p.remaining.saturating_sub(amount);
        }
        let status = p.status();
        let remaining = p.remaining;
        let currency = p.currency;
        let shop_order_no = p.shop_order_no.clone();
        let c = p.cancels.get_mut(idx)?;
        match finish_as {
            WechatFinal::Apply => c.status = status,
            WechatFinal::Void => c.status = TS12,
            WechatFinal::Fail {
                res_cd,
                res_detail_msg,
            } => c.failure = Some((res_cd, res_detail_msg)),
        }
        c.remaining_after = remaining;
        c.transaction_date = now.datetime_string();
        let url = match (&c.notify_url, c.withheld) {
            (Some(url), false) => url.clone(),
            _ => return None,
        };
        let body = notice_body(
            &NoticeFields {
                mall_id,
                shop_order_no: &shop_order_no,
                pg_cno,
                cancel_pg_cno,
                cancel_date: &c.transaction_date,
                currency,
                amount,
            },
            c.failure.as_ref(),
        );
        Some(Notice {
            pg_cno: pg_cno.to_owned(),
            cancel_pg_cno: cancel_pg_cno.to_owned(),
            url,
            body: Bytes::from(body.to_string()),
        })
    }
    /// Makes the order query report `state` for the WeChat Pay order `id`
    /// (`transaction_id` or `out_trade_no`).
    pub(crate) fn set_trade_state(&mut self, id: &str, state: &str) -> Result<(), SandboxError> {
        let valid =
            REPORTABLE_STATES.contains(&state) || (state.starts_with("X_") && state.len() <= 32);
        if !valid {
            return Err(SandboxError::InvalidPayment {
                field: "tradeState",
                rule: format!(
                    "must be one of {} (or X_... for a state no client knows), got {state:?}",
                    REPORTABLE_STATES.join(", ")
                ),
            });
        }
        let not_found = || SandboxError::InvalidPayment {
            field: "id",
            rule: format!("names no WeChat Pay order: {id:?}"),
        };
        let pg = self
            .wechatpay_pg_cno(id)
            .map(str::to_owned)
            .ok_or_else(not_found)?;
        let wx = self
            .payments
            .get_mut(&pg)
            .and_then(|p| p.wechatpay.as_mut())
            .ok_or_else(not_found)?;
        wx.reported_state = Some(state.to_owned());
        Ok(())
    }

    /// Rotates the platform certificate: a new one signs from `switch_after`
    /// seconds on; the old one stays listed `keep_old` seconds longer.
    pub(crate) fn rotate_platform(
        &mut self,
        settings: &WechatpaySettings,
        switch_after: i64,
        keep_old: i64,
    ) -> Result<Rotated, String> {
        let now = self.unix_now();
        self.platform(settings, now)
            .rotate(settings, now, switch_after, keep_old)
    }

    /// The platform certificates (created on first use from the settings).
    pub(crate) fn platform(&mut self, settings: &WechatpaySettings, now: i64) -> &mut PlatformSet {
        self.wx
            .platform
            .get_or_insert_with(|| PlatformSet::new(settings, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_trade_no_rules() {
        assert!(check_out_trade_no("ORDER-1").is_ok());
        assert!(check_out_trade_no(&"订".repeat(32)).is_ok());
        assert!(check_out_trade_no(&"订".repeat(33)).is_err());
        assert!(check_out_trade_no("").is_err());
        assert!(check_out_trade_no("a\nb").is_err());
        assert!(check_out_trade_no("..").is_err());
    }

    #[test]
    fn orders_get_unique_ids_and_paid_times() {
        let mut st = State::new(7, 0);
        let a = st
            .create_wechatpay_order("T0000001", &NewWechatpayOrder::new(100, Currency::Usd))
            .unwrap();
        let b = st
            .create_wechatpay_order(
                "T0000001",
                &NewWechatpayOrder::new(100, Currency::Krw).paid_seconds_ago(8 * 86_400),
            )
            .unwrap();
        let (ta, tb) = (a.transaction_id.unwrap(), b.transaction_id.unwrap());
        assert_ne!(ta, tb);
        assert_eq!(ta.len(), 28);
        assert!(ta.bytes().all(|c| c.is_ascii_digit()));
        assert!(a.out_trade_no.unwrap().len() <= 32);
        let age = a.paid_at.unwrap() - b.paid_at.unwrap();
        assert!((8 * 86_400..8 * 86_400 + 5).contains(&age), "{age}");
        let dup = NewWechatpayOrder::new(1, Currency::Krw).out_trade_no(b.shop_order_no);
        assert!(matches!(
            st.create_wechatpay_order("T0000001", &dup),
            Err(SandboxError::InvalidPayment {
                field: "outTradeNo",
                ..
            })
        ));
        let future = NewWechatpayOrder::new(1, Currency::Krw).paid_at_unix(-1);
        assert!(st.create_wechatpay_order("T0000001", &future).is_err());
    }
}
