//! Layer 3, rules: sans-IO modules per endpoint. Each takes `&mut State`
//! (plus the time and the settings) and returns a plain response value; the
//! server layer does the IO around them.

pub(crate) mod common;
pub(crate) mod generic;
pub(crate) mod kicc;
pub(crate) mod overseas;
pub(crate) mod retrieve;
pub(crate) mod wechatpay;
