//! Writes the seed corpora into `fuzz/corpus/<target>/`: the real examples the tests use
//! (the providers' documented response shapes, the notices, the key and certificate
//! fixtures), and signed WeChat Pay answers and `Authorization` headers made with the
//! sandbox's test keys, so that fuzzing starts from inputs that reach the deep code.
//!
//! `cargo run --manifest-path fuzz/Cargo.toml --bin seed` (what `cargo xtask fuzz --seed`
//! runs). Existing files are kept; a seed is named by a hash of its bytes.
#![forbid(unsafe_code)]

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use kicc_fuzz::checks::{self, AuthorizationInput, InboxInput, RevokeInput, SENT_KEY};
use wechatpay_direct::{
    sign_request, sign_response, MchId, Nonce, RsaPrivateKey, SerialNo, Signer, Timestamp,
};

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut written = 0;
    for (target, seeds) in seeds(&root) {
        assert!(checks::TARGETS.contains(&target), "unknown target {target}");
        let dir = root.join("corpus").join(target);
        std::fs::create_dir_all(&dir).expect("create the corpus folder");
        for seed in seeds {
            // Every seed must pass its own target before it is committed.
            checks::run(target, &seed);
            let mut h = DefaultHasher::new();
            seed.hash(&mut h);
            let path = dir.join(format!("seed-{:016x}", h.finish()));
            if !path.exists() {
                std::fs::write(&path, &seed).expect("write a seed");
                written += 1;
            }
        }
    }
    println!(
        "wrote {written} new seed files under {}",
        root.join("corpus").display()
    );
}

fn b(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

fn fixture(root: &Path, name: &str) -> Vec<u8> {
    let path = root
        .join("../crates/wechatpay-direct/tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn seeds(root: &Path) -> Vec<(&'static str, Vec<Vec<u8>>)> {
    let generic_ok = format!(
        r#"{{"resCd":"0000","resMsg":"Cancellation Successful","mallId":"T0000001",
        "shopTransactionId":"{SENT_KEY}","oriPgCno":"P1","cancelPgCno":"C1","shopOrderNo":"O1",
        "cancelAmount":"51004","remainAmount":"0","transactionDate":"20210326090200",
        "statusCode":"TS02","statusMessage":"Approval Cancelled",
        "reviseInfo":{{"payMethodTypeCode":"11","approvalNo":"00017177","approvalDate":"20210326090200",
        "cardInfo":{{"couponAmount":0}},
        "cashReceiptInfo":{{"resCd":"0000","resMsg":"ok","approvalNo":"A1","cancelDate":"20210326090200"}}}}}}"#
    );
    let generic_request = r#"{"mallId":"T0000001","shopTransactionId":"K01JD0000000000000000000001","pgCno":"PG20261121000001","reviseTypeCode":"32","cancelReqDate":"20261122","msgAuthValue":"0000000000000000000000000000000000000000000000000000000000000000","amount":1000,"reviseMessage":"고객 변심"}"#;
    let wallet_ok = format!(
        r#"{{"resCd":"0000","resMsg":"Success","mallId":"T0000001","shopTransactionId":"{SENT_KEY}",
        "pgCno":"P1","cancelPgCno":"C1","transactionDate":"20230312000512",
        "amountInfo":{{"currency":"USD","totAmount":"5022"}},"resDetailMsg":"%EC%A0%91%EC%88%98+OK","somethingNew":[1,2]}}"#
    );
    let wallet_request = r#"{"mallId":"T0000001","shopTransactionId":"K01JD0000000000000000000001","pgCno":"PG20261121000001","reviseTypeCode":"32","cancelReqDate":"20261122","msgAuthValue":"0000000000000000000000000000000000000000000000000000000000000000","amountInfo":{"currency":"USD","totAmount":1203},"memo":"고객 요청","notifyUrl":"https://shop.example/kicc/wechat"}"#;
    let find_ok = format!(
        r#"{{"resCd":"0000","resMsg":"Success","shopTransactionId":"{SENT_KEY}","mallId":"T5102001",
        "pgCno":"P1","cancelPgCno":"C1","transactionDate":"20230312000512","cancelStatus":"TS02",
        "resDetailMsg":"OK%20done","amountInfo":{{"currency":"KRW","totAmount":"1000"}}}}"#
    );
    let wechat_notice = r#"{"resCd":"0000","resMsg":"OK","mallId":"T0000001","shopOrderNo":"O-1",
            "pgCno":"P1","cancelPgCno":"C1","cancelDate":"20261121235959",
            "amountInfo":{"currency":"USD","amount":1203},"newField":true}"#;
    let generic_notice = r#"{"notiType":"20","resCd":"0000","pgCno":"P1","cancelPgCno":"C9",
            "amount":"51004","cancelAmount":"1000","remainAmount":"50004","statusCode":"TS06",
            "transactionDate":"20261121101010","approvalNo":"123"}"#;

    let inbox = |wechat: bool, policy: u8, body: &str| {
        let peer: Option<IpAddr> = Some([203, 233, 72, 66].into());
        InboxInput {
            wechat,
            policy,
            allowed: vec![[127, 0, 0, 1].into()],
            deliveries: vec![
                (peer, b(body)),
                (peer, b(body)),
                (
                    Some([127, 0, 0, 1].into()),
                    b(&body.replace("C9", "C8").replace("C1", "C2")),
                ),
                (None, b(r#"{"notiType":"20"}"#)),
            ],
        }
        .to_bytes()
    };

    // Signed WeChat Pay answers, verifiable at `now` with the sandbox platform keys.
    let now: u64 = 1_795_273_200;
    let ts = Timestamp::from_unix_secs(now).expect("a valid time");
    let nonce = Nonce::new("5K8264ILTKCH16CQ2502SI8ZNMTM67VS").expect("a valid nonce");
    let platform =
        RsaPrivateKey::from_pem(kicc_sandbox::SANDBOX_PLATFORM_PRIVATE_KEY_PEM).expect("key");
    let revoke = |status: u16, serial: &str, body: &[u8], probe: bool| {
        let serial = SerialNo::new(serial).expect("serial");
        let h = sign_response(body, ts, &nonce, &serial, &platform).expect("sign");
        let mut map = http::HeaderMap::new();
        h.write_to(&mut map);
        if probe {
            map.insert(
                wechatpay_direct::HEADER_SIGNATURE,
                http::HeaderValue::from_static("WECHATPAY/SIGNTEST/AAAA"),
            );
        }
        map.insert(
            "request-id",
            http::HeaderValue::from_static("08F78BB5AF0610D302"),
        );
        RevokeInput {
            status,
            now,
            headers: map
                .iter()
                .map(|(k, v)| (k.as_str().as_bytes().to_vec(), v.as_bytes().to_vec()))
                .collect(),
            body: body.to_vec(),
        }
        .to_bytes()
    };
    let cert_serial = kicc_sandbox::SANDBOX_PLATFORM_CERTIFICATE_SERIAL;
    let error_body = br#"{"code":"ORDER_NOT_EXIST","message":"order does not exist","detail":{"field":"out_trade_no","value":"x","issue":"not found","location":"body"}}"#;

    // A signed revoke request, as the sandbox receives it.
    let merchant =
        RsaPrivateKey::from_pem(kicc_sandbox::SANDBOX_MERCHANT_PRIVATE_KEY_PEM).expect("key");
    let mchid = MchId::new(kicc_sandbox::DEFAULT_WECHATPAY_MCHID).expect("mchid");
    let serial = SerialNo::new(kicc_sandbox::SANDBOX_MERCHANT_SERIAL_NO).expect("serial");
    let url: http::uri::PathAndQuery = "/v3/global/transactions/out-trade-no/T1/reverse"
        .parse()
        .expect("a path");
    let body = br#"{"sp_mchid":"1900000109","sub_mchid":"100012321"}"#;
    let signed = sign_request(
        Signer {
            mchid: &mchid,
            serial_no: &serial,
            key: &merchant,
        },
        &http::Method::POST,
        &url,
        ts,
        &nonce,
        body,
    )
    .expect("sign");
    let authorization = AuthorizationInput {
        now,
        header: signed.authorization().to_owned(),
        method: "POST".to_owned(),
        url: url.as_str().to_owned(),
        body: body.to_vec(),
    }
    .to_bytes();

    vec![
        (
            "generic_revise",
            vec![
                b(&generic_ok),
                b(r#"{"resCd":"VTIM","resMsg":"instant refund timed out"}"#),
                b(generic_request),
            ],
        ),
        (
            "alipay_revise",
            vec![
                b(&wallet_ok),
                b(r#"{"resCd":"A212","resMsg":"retry"}"#),
                b(wallet_request),
            ],
        ),
        ("wechat_revise", vec![b(&wallet_ok), b(wallet_request)]),
        (
            "wechat_find",
            vec![b(&find_ok), b(r#"{"resCd":"W002","resMsg":"not found"}"#)],
        ),
        (
            "webhook_generic",
            vec![
                b(generic_notice),
                b(r#"{"notiType":30,"pgCno":"P1","amount":5}"#),
            ],
        ),
        (
            "webhook_wechat",
            vec![
                b(wechat_notice),
                b(r#"{"resCd":"0000","pgCno":"P1","cancelPgCno":""}"#),
            ],
        ),
        (
            "webhook_inbox",
            vec![
                inbox(true, 0, wechat_notice),
                inbox(false, 1, generic_notice),
                inbox(true, 2, wechat_notice),
            ],
        ),
        (
            "wechatpay_revoke",
            vec![
                revoke(204, cert_serial, b"", false),
                revoke(
                    204,
                    kicc_sandbox::SANDBOX_PLATFORM_PUBLIC_KEY_ID,
                    b"",
                    false,
                ),
                revoke(204, cert_serial, b"", true),
                revoke(200, cert_serial, b"{}", false),
                revoke(404, cert_serial, error_body, false),
                revoke(500, cert_serial, br#"{"code":"SYSTEM_ERROR"}"#, false),
            ],
        ),
        ("wechatpay_authorization", vec![authorization]),
        (
            "pem_keys",
            [
                "cert-2048.pem",
                "ec-p256.pem",
                "key-1024.pem",
                "key-2048-pkcs1.pem",
                "key-2048.pem",
                "pub-2048.pem",
            ]
            .iter()
            .map(|f| fixture(root, f))
            .chain([b(kicc_sandbox::SANDBOX_PLATFORM_CERTIFICATE_PEM)])
            .collect(),
        ),
        (
            "money",
            [
                "12.03\nUSD",
                "51004\nKRW",
                "0.5",
                "1,000",
                "99999999999999.99\nUSD",
            ]
            .iter()
            .map(|s| b(s))
            .collect(),
        ),
        (
            "text",
            [
                "PG20261121000001",
                "K01JD0000000000000000000001",
                "20261121",
                "20261121235959",
                "https://shop.example/kicc/wechat",
                "%E8%AE%A2%E5%8D%95+closed%+5",
                "고객 변심",
                "40",
                "TS02",
            ]
            .iter()
            .map(|s| b(s))
            .collect(),
        ),
        ("sandbox_request", kicc_sandbox::fuzz::seed_inputs()),
    ]
}
