//! Where requests go and who signs them: `--env`, `--base-url`, and the credentials, which come
//! only from the environment (`KICC_MALL_ID`, `KICC_SECRET_KEY`).

use kicc_core::is_loopback_authority;
use kicc_core::{BaseUrl, Environment, MallId, Merchant, SecretKey};
use kicc_transport::{ConfigError, HyperTransport};

use crate::cli::{EnvName, Global};
use crate::exit::Failure;

/// The variable holding the merchant ID.
pub const MALL_ID_VAR: &str = "KICC_MALL_ID";
/// The variable holding the secret key.
pub const SECRET_KEY_VAR: &str = "KICC_SECRET_KEY";
/// Where `--env sandbox` sends requests unless `--base-url` says otherwise.
pub const SANDBOX_URL: &str = "http://127.0.0.1:8780";

/// Reads an environment variable; unset and empty are the same ("not given").
pub fn env_var(name: &'static str) -> Result<Option<String>, Failure> {
    match std::env::var(name) {
        Ok(v) if v.is_empty() => Ok(None),
        Ok(v) => Ok(Some(v)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => {
            Err(Failure::invalid(format!("{name}: must be valid UTF-8")))
        }
    }
}

/// The KICC environment chosen by `--env` / `--base-url`.
pub fn environment(global: &Global) -> Result<Environment, Failure> {
    if let Some(url) = &global.base_url {
        return Ok(Environment::Custom(BaseUrl::new(url)?));
    }
    Ok(match global.env {
        EnvName::Sandbox => Environment::Custom(BaseUrl::new(SANDBOX_URL)?),
        EnvName::Test => Environment::Test,
        EnvName::Production => Environment::Production,
    })
}

/// Whether missing credentials may fall back to the sandbox's documented ones: only with
/// `--env sandbox`, and only towards the default sandbox URL or a loopback `--base-url`.
pub fn sandbox_fallback(global: &Global) -> bool {
    if global.env != EnvName::Sandbox {
        return false;
    }
    match &global.base_url {
        None => true,
        Some(url) => {
            let rest = url
                .strip_prefix("http://")
                .or_else(|| url.strip_prefix("https://"))
                .unwrap_or("");
            let authority = rest.split('/').next().unwrap_or("");
            is_loopback_authority(authority)
        }
    }
}

/// The merchant: the environment plus the credentials from `KICC_MALL_ID` / `KICC_SECRET_KEY`.
///
/// Missing credentials are an invalid-input failure naming the variable, except where
/// [`sandbox_fallback`] allows the sandbox's `T0000001` / `sandbox-secret-key`.
pub fn merchant(global: &Global) -> Result<Merchant, Failure> {
    let environment = environment(global)?;
    let fallback = sandbox_fallback(global);
    let required = |name: &'static str| {
        Failure::invalid(format!(
            "{name}: is required for --env {} (credentials come only from the environment)",
            env_label(global)
        ))
    };
    let mall_id = match env_var(MALL_ID_VAR)? {
        Some(v) => MallId::new(v).map_err(|e| Failure::invalid(format!("{MALL_ID_VAR}: {e}")))?,
        None if fallback => MallId::new(kicc_sandbox::DEFAULT_MALL_ID)?,
        None => return Err(required(MALL_ID_VAR)),
    };
    let secret_key = match env_var(SECRET_KEY_VAR)? {
        // The error never contains the value: SecretKey only reports emptiness.
        Some(v) => SecretKey::new(v)
            .map_err(|e| Failure::invalid(format!("{SECRET_KEY_VAR}: {}", e.rule)))?,
        None if fallback => SecretKey::new(kicc_sandbox::DEFAULT_SECRET_KEY)?,
        None => return Err(required(SECRET_KEY_VAR)),
    };
    Ok(Merchant::new(environment, mall_id, secret_key))
}

fn env_label(global: &Global) -> String {
    let name = match global.env {
        EnvName::Sandbox => "sandbox",
        EnvName::Test => "test",
        EnvName::Production => "production",
    };
    match &global.base_url {
        Some(url) => format!("{name} with --base-url {url}"),
        None => name.to_owned(),
    }
}

/// The HTTP transport: the default client (proxies from the environment), also trusting
/// `--root-cert`, with `--proxy` / `--no-proxy` / `--local-address` when given.
pub fn transport(global: &Global) -> Result<HyperTransport, Failure> {
    let mut builder =
        HyperTransport::builder().timeout(std::time::Duration::from_secs(global.timeout));
    if let Some(path) = &global.root_cert {
        let pem = std::fs::read(path).map_err(|e| {
            Failure::invalid(format!("root-cert: cannot read {}: {e}", path.display()))
        })?;
        builder = builder.add_root_certificates(pem);
    }
    if let Some(proxy) = &global.proxy {
        builder = builder.proxy(proxy.0.clone());
    }
    if global.no_proxy {
        builder = builder.no_proxy();
    }
    builder = builder.local_address(global.local_address);
    builder.build().map_err(|e| match e {
        // Names the variable or `proxy`, never the password.
        ConfigError::Proxy { .. } => Failure::invalid(kicc_transport::error_chain(&e)),
        other => Failure::invalid(format!(
            "root-cert: {}",
            kicc_transport::error_chain(&other)
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn global(env: EnvName, base_url: Option<&str>) -> Global {
        Global {
            env,
            base_url: base_url.map(str::to_owned),
            root_cert: None,
            timeout: 30,
            proxy: None,
            no_proxy: false,
            local_address: None,
        }
    }

    #[test]
    fn a_bad_root_cert_message_keeps_the_parser_reason() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("ca.pem");
        std::fs::write(
            &path,
            "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        )
        .expect("write PEM");
        let mut g = global(EnvName::Test, None);
        g.root_cert = Some(path);
        let failure = transport(&g).expect_err("the PEM is broken");
        let prefix = "root-cert: root certificates: PEM data #0 could not be read: ";
        let at = failure.message.find(prefix).expect(&failure.message);
        // The PEM parser's own words follow, not just the summary.
        assert!(
            failure.message.len() > at + prefix.len(),
            "{}",
            failure.message
        );
    }

    #[test]
    fn fallback_only_for_the_sandbox_on_loopback() {
        assert!(sandbox_fallback(&global(EnvName::Sandbox, None)));
        assert!(sandbox_fallback(&global(
            EnvName::Sandbox,
            Some("http://127.0.0.1:1234")
        )));
        assert!(sandbox_fallback(&global(
            EnvName::Sandbox,
            Some("https://localhost:9/x")
        )));
        assert!(!sandbox_fallback(&global(
            EnvName::Sandbox,
            Some("https://sandbox.example")
        )));
        assert!(!sandbox_fallback(&global(EnvName::Test, None)));
        assert!(!sandbox_fallback(&global(
            EnvName::Production,
            Some("http://127.0.0.1:1")
        )));
    }

    #[test]
    fn environments() {
        assert_eq!(
            environment(&global(EnvName::Sandbox, None)).unwrap(),
            Environment::Custom(BaseUrl::new(SANDBOX_URL).unwrap())
        );
        assert_eq!(
            environment(&global(EnvName::Production, None)).unwrap(),
            Environment::Production
        );
        assert_eq!(
            environment(&global(EnvName::Test, None)).unwrap(),
            Environment::Test
        );
        let e = environment(&global(EnvName::Sandbox, Some("http://10.0.0.1"))).unwrap_err();
        assert!(e.message.contains("baseUrl"), "{}", e.message);
    }
}
