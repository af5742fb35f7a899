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
    let answer = |status: u16, serial: &str, body: &[u8], probe: bool| {
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

    // Order-query answers in the sandbox's shape (the fields of WeChat Pay's order object).
    let order = |state: &str| {
        format!(
            r#"{{"mchid":"1900000109","out_trade_no":"T1","transaction_id":"4200000001","trade_type":"MICROPAY","trade_state":"{state}","trade_state_desc":"Payment successful","amount":{{"total":100,"currency":"USD"}},"success_time":"2026-12-02T09:00:00+08:00"}}"#
        )
        .into_bytes()
    };
    let public_key_id = kicc_sandbox::SANDBOX_PLATFORM_PUBLIC_KEY_ID;

    // Certificates answers: the sandbox's platform certificate (and a second one, as during
    // a rotation) encrypted with the sandbox's API v3 key, as the sandbox lists them.
    let api_key = checks::sandbox_api_v3_key();
    let entry = |pem: &str, serial: &str, nonce: &[u8; 12]| {
        serde_json::json!({
            "serial_no": serial,
            "effective_time": "2024-01-01T08:00:00+08:00",
            "expire_time": "2124-01-01T08:00:00+08:00",
            "encrypt_certificate": {
                "algorithm": "AEAD_AES_256_GCM",
                "nonce": std::str::from_utf8(nonce).expect("an ASCII nonce"),
                "associated_data": "certificate",
                "ciphertext": api_key.seal_base64(nonce, b"certificate", pem.as_bytes()),
            },
        })
    };
    let platform_entry = entry(
        kicc_sandbox::SANDBOX_PLATFORM_CERTIFICATE_PEM,
        cert_serial,
        b"a1b2c3d4e5f6",
    );
    let other_pem = String::from_utf8(fixture(root, "cert-2048.pem")).expect("a PEM");
    let (other_serial, _) =
        wechatpay_direct::RsaPublicKey::from_certificate_pem(&other_pem).expect("a certificate");
    let listing = serde_json::json!({ "data": [platform_entry.clone()] }).to_string();
    let rotation = serde_json::json!({
        "data": [platform_entry, entry(&other_pem, other_serial.as_str(), b"0123456789ab")]
    })
    .to_string();

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
                answer(204, cert_serial, b"", false),
                answer(
                    204,
                    kicc_sandbox::SANDBOX_PLATFORM_PUBLIC_KEY_ID,
                    b"",
                    false,
                ),
                answer(204, cert_serial, b"", true),
                answer(200, cert_serial, b"{}", false),
                answer(404, cert_serial, error_body, false),
                answer(500, cert_serial, br#"{"code":"SYSTEM_ERROR"}"#, false),
            ],
        ),
        (
            "wechatpay_query",
            vec![
                answer(200, cert_serial, &order("SUCCESS"), false),
                answer(200, public_key_id, &order("REVOKED"), false),
                answer(200, cert_serial, &order("ACCEPT"), false),
                answer(200, cert_serial, br#"{"trade_state":7}"#, false),
                answer(200, cert_serial, &order("SUCCESS"), true),
                answer(404, cert_serial, error_body, false),
                answer(500, cert_serial, br#"{"code":"SYSTEM_ERROR","message":"retry"}"#, false),
            ],
        ),
        (
            "wechatpay_certificates",
            vec![
                answer(200, cert_serial, listing.as_bytes(), false),
                answer(200, cert_serial, rotation.as_bytes(), false),
                answer(200, public_key_id, listing.as_bytes(), false),
                answer(200, cert_serial, br#"{"data":[]}"#, false),
                answer(
                    401,
                    cert_serial,
                    br#"{"code":"SIGN_ERROR","message":"signature error"}"#,
                    false,
                ),
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
        (
            "batch_csv",
            [
                // kicc-ledger's and kicc-cli's batch tests.
                "\u{FEFF}intent_id,channel,pg_cno,amount,currency,reason\n\
                 r1,alipay,pg1,12.03,USD,customer asked\nr2,generic,pg2,,,\n\
                 r3,generic,pg3,1000,,\n\"r,4\",wechat,pg4,7,KRW,\"quoted, reason\"\n",
                "remain_amount,type,intent_id,channel,pg_cno,amount,currency,reason,notify_url\n\
                 30.00,32,w1,wechat,pg1,10.5,USD,,https://m.example/notify\n",
                "intent_id,channel,pg_cno,amount,currency,reason\nok1,generic,pg1,,,\n\
                 b1,alipay,pg2,12.034,USD,\nb2,generic,pg3,10.5,,\nb3,alipay,pg4,5,,\n\
                 b4,paypal,pg5,,,\nok1,generic,pg1,,,\nb6,generic,,,,\nb8,generic,pg8,1e3,,\n\
                 b9,alipay,pg9,,,,extra\nb10,alipay,pg10,,EUR,\nb11,generic,pg11,0,,\n\
                 b12,generic,pg12,-5,,\n",
                "intent_id,channel,pg_cno,amount,currency,reason\n\
                 ok-1,generic,PG20261121000001,1000,,\nbad-1,bitcoin,PG1,,,\n\
                 bad-2,alipay,PG1,12.345,USD,\n",
                "intent_id,channel,pg_cno,amount,currency,reason\ng-1,generic,PG1,2000,,batch test\n\
                 a-1,alipay,PG2,50.22,USD,batch test\nw-1,wechat,PG3,1203,KRW,고객 변심\n",
                "intent_id,channel,pg_cno,amount,currency,reason,remain_ammount\n",
                "intent_id,channel,pg_cno,amount,currency,reason,reason\n",
            ]
            .iter()
            .map(|s| b(s))
            .chain([b"intent_id,channel,pg_cno,amount,currency,reason\nr1,generic,pg1,,,\xff\xfe\n".to_vec()])
            .collect(),
        ),
    ]
}
