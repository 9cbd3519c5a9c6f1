//! The settings read from the command line and the environment: each refused with one line
//! naming its variable, secrets never echoed, defaults valid.

use clap::FromArgMatches;

use super::*;

/// `T`'s settings from the command line `argv` alone (the environment unread), or the one
/// line that refuses them.
fn parse<T: Args + FromArgMatches>(argv: &[&str]) -> Result<T, ConfigError> {
    let command = || T::augment_args(clap::Command::new("tmt-payments"));
    let matches = command()
        .mut_args(|arg| arg.env(None))
        .args_override_self(true)
        .try_get_matches_from(std::iter::once("tmt-payments").chain(argv.iter().copied()))
        .map_err(|e| ConfigError::from_clap(&e, command()).unwrap_or_else(|| panic!("{e}")))?;
    Ok(T::from_arg_matches(&matches).unwrap())
}

/// `serve`'s settings as its flags give them: a Stripe key, a webhook secret and the flags'
/// defaults, then `flags`.
fn flags(flags: &[&str]) -> Result<ServeArgs, ConfigError> {
    let base = [
        "--stripe-secret-key=sk_test_abc123",
        "--stripe-webhook-secret=whsec_a",
    ];
    parse(&[&base[..], flags].concat())
}

fn common() -> CommonArgs {
    parse(&[]).unwrap()
}

/// `serve`'s configuration from `flags` (see [`flags`]), or the line that refuses it.
fn serve(flags: &[&str]) -> Result<Config, ConfigError> {
    Config::from_args(&common(), &self::flags(flags)?)
}

#[test]
fn urls_are_printed_without_their_password() {
    for (url, printed) in [
        (
            "postgres://postgres:Sup3rSecretPw@db.internal:5432/tmt",
            "postgres://postgres:***@db.internal:5432/tmt",
        ),
        (
            "postgresql://u:p%40ss:w@h/db?sslmode=require",
            "postgresql://u:***@h/db?sslmode=require",
        ),
        ("postgres://u:a@b@h/db", "postgres://u:***@h/db"),
        (
            "postgres://h/db?user=u&password=Sup3r&sslpassword=x",
            "postgres://h/db?user=u&password=***&sslpassword=***",
        ),
        ("postgres://u:pa?ss@h/db", "postgres://u:***@h/db"),
        ("postgres://h?password=x", "postgres://h?password=***"),
        (
            "https://user:tok@proxy.example/v1",
            "https://user:***@proxy.example/v1",
        ),
        ("postgres://u@h/db", "postgres://u@h/db"),
        ("postgres://u:@h/db", "postgres://u:@h/db"),
        ("postgres://h:5432/db", "postgres://h:5432/db"),
        ("sqlite://tmt-payments.db", "sqlite://tmt-payments.db"),
        (
            "sqlite:///var/lib/tmt/ledger.db?mode=rwc",
            "sqlite:///var/lib/tmt/ledger.db?mode=rwc",
        ),
        ("sqlite::memory:", "sqlite::memory:"),
        ("not a url", "not a url"),
        ("ftp://u:Sup3r@h:99999", "ftp://u:***@h:99999"),
    ] {
        assert_eq!(redact_url(url), printed, "{url}");
    }
}

#[test]
fn a_bad_api_base_is_echoed_without_its_password() {
    for base in ["ftp://u:Sup3rSecretPw@h", "https://u:Sup3rSecretPw@h/?q=1"] {
        let e = serve(&[&format!("--stripe-api-base={base}")])
            .err()
            .unwrap();
        assert_eq!(e.variable, "STRIPE_API_BASE");
        assert!(!e.problem.contains("Sup3rSecretPw"), "{e}");
        assert!(e.problem.contains("u:***@h"), "{e}");
    }
}

#[test]
fn defaults_are_valid() {
    let c = serve(&[]).unwrap();
    assert_eq!(c.listen, "0.0.0.0:8080".parse().unwrap());
    assert_eq!(c.cors, CorsOrigins::Any);
    assert_eq!(c.stripe.webhook.secrets.len(), 1);
    assert_eq!(c.stripe.api_base, DEFAULT_API_BASE);
    assert_eq!(c.stripe.api_version, DEFAULT_API_VERSION);
    assert_eq!(c.stripe.timeout, Duration::from_secs(30));
    assert_eq!(c.stripe.max_retries, 2);
    assert_eq!(c.stripe.budget.max_rps, Some(25));
    assert_eq!(c.stripe.budget.queue_timeout, Duration::from_secs(10));
    assert_eq!(c.stripe.webhook.tolerance_secs, 300);
    assert_eq!(c.database_pool.max_connections, 8);
    assert_eq!(c.database_pool.acquire_timeout, Duration::from_secs(5));
    assert_eq!(c.idempotency_stale, Duration::from_secs(60));
    assert!(c.access.tokens.is_empty());
    assert!(c.access.create_rate_limit.is_none());
    assert!(c.access.trusted_proxies.is_empty());
    assert!(c.fulfilment.is_none());
    assert_eq!(c.late_payment_policy, LatePolicy::Notify);
    assert_eq!(c.reconcile_interval, Some(Duration::from_secs(300)));
    assert_eq!(c.connect, Connect::default());
    assert_eq!(c.connect.charge_type, None);
    assert_eq!(common().log_format, LogFormat::Pretty);
}

/// The flags' own defaults, as `serve` parses them, are those docs/contract.md §13 gives.
#[test]
fn connection_defaults() {
    let c = serve(&[]).unwrap();
    assert_eq!(c.connections.header_timeout, Duration::from_secs(10));
    assert_eq!(c.connections.body_timeout, Duration::from_secs(15));
    assert_eq!(c.connections.idle_timeout, Duration::from_secs(60));
    assert_eq!(c.connections.max_connections, 10_000);
    assert_eq!(c.connections.max_inflight_body_bytes, 64 * 1024 * 1024);
    assert_eq!(c.connections.shutdown_timeout, Duration::from_secs(20));
}

#[test]
fn each_bad_value_names_its_variable() {
    fn refused<T>(variable: &str, settings: Result<T, ConfigError>) {
        let err = settings
            .err()
            .unwrap_or_else(|| panic!("{variable}: accepted"));
        assert_eq!(err.variable, variable);
        let line = err.to_string();
        assert!(!line.contains('\n'), "{line}");
        assert!(line.contains(variable), "{line}");
    }
    // The checks across settings.
    for (variable, flag) in [
        ("STRIPE_WEBHOOK_SECRET", "--stripe-webhook-secret= "),
        // A queue timeout that the stale time does not outlast is the latter's fault.
        ("IDEMPOTENCY_STALE_SECS", "--stripe-queue-timeout-secs=40"),
        (
            "FULFILMENT_SECRET",
            "--fulfilment-url=https://tickets.example/hook",
        ),
        (
            "FULFILMENT_URL",
            "--fulfilment-secret=whsec_0123456789abcdef",
        ),
    ] {
        refused(variable, serve(&[flag]));
    }
    for (variable, value) in [
        ("STRIPE_SECRET_KEY", "pk_test_1"),
        ("STRIPE_SECRET_KEY", "sk_nope"),
        ("STRIPE_WEBHOOK_SECRET", "whsec_a,bad"),
        ("STRIPE_API_BASE", "not a url"),
        ("STRIPE_API_BASE", "ftp://x"),
        ("STRIPE_API_BASE", "https://x/?a=b"),
        ("STRIPE_API_VERSION", " "),
        ("STRIPE_TIMEOUT_SECS", "0"),
        ("STRIPE_TIMEOUT_SECS", "601"),
        ("STRIPE_MAX_RETRIES", "-1"),
        ("STRIPE_MAX_RETRIES", "11"),
        ("STRIPE_MAX_RPS", "fast"),
        ("STRIPE_MAX_RPS", "100000"),
        ("STRIPE_QUEUE_TIMEOUT_SECS", "-1"),
        ("STRIPE_QUEUE_TIMEOUT_SECS", "301"),
        ("BIND", "localhost:1"),
        ("PORT", "70000"),
        ("PORT", "http"),
        ("CORS_ORIGINS", "example.com"),
        ("CORS_ORIGINS", "https://a.example/"),
        ("WEBHOOK_TOLERANCE_SECS", "0"),
        ("DATABASE_MAX_CONNECTIONS", "0"),
        ("DATABASE_MAX_CONNECTIONS", "1001"),
        ("DATABASE_ACQUIRE_TIMEOUT_SECS", "0"),
        ("API_TOKENS", "short"),
        ("CREATE_RATE_LIMIT", "lots"),
        ("TRUSTED_PROXIES", "10.0.0.0/99"),
        ("SHUTDOWN_TIMEOUT_SECS", "soon"),
        ("SHUTDOWN_TIMEOUT_SECS", "3601"),
        ("IDEMPOTENCY_STALE_SECS", "86401"),
        ("HEADER_TIMEOUT_SECS", "0"),
        ("HEADER_TIMEOUT_SECS", "10s"),
        ("BODY_TIMEOUT_SECS", "-1"),
        ("BODY_TIMEOUT_SECS", "3601"),
        ("IDLE_TIMEOUT_SECS", "0"),
        ("IDLE_TIMEOUT_SECS", "1.5"),
        ("MAX_CONNECTIONS", "0"),
        ("MAX_CONNECTIONS", "many"),
        ("MAX_INFLIGHT_BODY_BYTES", "64MiB"),
        ("MAX_INFLIGHT_BODY_BYTES", "1000"),
        ("FULFILMENT_URL", "tickets.example"),
        ("FULFILMENT_SECRET", "whsec_short"),
        ("LATE_PAYMENT_POLICY", "later"),
        ("RECONCILE_INTERVAL_SECS", "59"),
        ("RECONCILE_INTERVAL_SECS", "86401"),
        ("CONNECT_CHARGE_TYPE", "both"),
        ("CONNECT_DEFAULT_COUNTRY", "XX"),
        ("CONNECT_DEFAULT_COUNTRY", "MEX"),
        ("CONNECT_ON_BEHALF_OF", "yes"),
        ("PLATFORM_FEE_PERCENT", "51"),
        ("PLATFORM_FEE_PERCENT", "2.125"),
        ("PLATFORM_FEE_PERCENT", "-1"),
        ("PLATFORM_FEE_FIXED", "eur"),
        ("PLATFORM_FEE_FIXED", "eur:0.50,eur:1"),
        ("PLATFORM_FEE_MIN", "zzz:1"),
        ("PLATFORM_FEE_MAX", "usd:-1"),
        ("REFUND_APPLICATION_FEE", "1"),
        ("DISPUTE_REVERSE_TRANSFER", "no"),
        ("OXXO_EXPIRES_AFTER_DAYS", "0"),
        ("OXXO_EXPIRES_AFTER_DAYS", "8"),
        // Three days and the end of the last one are beyond the default 72 hours.
        ("OXXO_EXPIRES_AFTER_DAYS", "3"),
        ("BANK_TRANSFER_EXPIRES_AFTER_HOURS", "0"),
        ("DELAYED_HOLD_MAX_HOURS", "soon"),
        ("EU_BANK_TRANSFER_COUNTRY", "ES"),
    ] {
        // A setting's flag is its variable in lower case, with `-` for `_`.
        let flag = format!("--{}={value}", variable.to_lowercase().replace('_', "-"));
        refused(variable, serve(&[&flag]));
    }
    // A shorter cap on holds is the voucher's fault; a longer one lets it live longer.
    refused(
        "OXXO_EXPIRES_AFTER_DAYS",
        serve(&["--delayed-hold-max-hours=48"]),
    );
    let longer = serve(&[
        "--oxxo-expires-after-days=7",
        "--delayed-hold-max-hours=192",
        "--eu-bank-transfer-country=de",
    ])
    .unwrap();
    assert_eq!(longer.delayed.oxxo_expires_after_days, 7);
    assert_eq!(longer.delayed.eu_country.as_str(), "DE");
    let defaults = serve(&[]).unwrap().delayed;
    assert_eq!(defaults, crate::payments::delayed::Delayed::default());
    // A fee's floor above its ceiling is the floor's fault.
    refused(
        "PLATFORM_FEE_MIN",
        serve(&["--platform-fee-min=usd:2", "--platform-fee-max=usd:1.50"]),
    );
    for (variable, value) in [("DATABASE_URL", "mysql://x"), ("LOG_FORMAT", "xml")] {
        let flag = format!("--{}={value}", variable.to_lowercase().replace('_', "-"));
        refused(variable, parse::<CommonArgs>(&[&flag]));
    }
}

/// A choice's refusal lists the choices, as the hand-written check did.
#[test]
fn a_bad_choice_lists_the_valid_ones() {
    let e = parse::<CommonArgs>(&["--log-format=xml"]).err().unwrap();
    assert_eq!(
        e.to_string(),
        "configuration error: LOG_FORMAT: 'xml' is not pretty or json"
    );
    let e = serve(&["--late-payment-policy= later "]).err().unwrap();
    assert_eq!(e.problem, "'later' is not notify or refund");
    assert_eq!(one_of(&["a".into(), "b".into(), "c".into()]), "a, b or c");
}

/// Errors of the command line that are not a setting's value are clap's to report.
#[test]
fn other_command_line_errors_are_left_to_clap() {
    let command = || ServeArgs::augment_args(clap::Command::new("tmt-payments"));
    for argv in [
        &["tmt-payments", "--no-such-flag"][..],
        &["tmt-payments", "--help"],
        &["tmt-payments", "--port"],
    ] {
        let e = command()
            .mut_args(|arg| arg.env(None))
            .try_get_matches_from(argv)
            .err()
            .unwrap();
        assert_eq!(ConfigError::from_clap(&e, command()), None, "{argv:?}");
    }
}

#[test]
fn secrets_are_not_echoed() {
    for flag in [
        "--stripe-secret-key=sk_test_has-dash-Sup3rSecret",
        "--stripe-secret-key=pk_test_Sup3rSecret",
        "--stripe-webhook-secret=nothex_Sup3rSecret",
        "--api-tokens=Sup3rSecret",
        "--fulfilment-secret=whsec_Sup3rSecret",
    ] {
        let err = serve(&[flag]).err().unwrap();
        assert!(!err.to_string().contains("Sup3rSecret"), "{err}");
    }
}

/// What holds a secret prints without it.
#[test]
fn debug_prints_no_secret() {
    let common: CommonArgs =
        parse(&["--database-url=postgres://tmt:Sup3rSecretPw@db/tmt"]).unwrap();
    let serve = flags(&[
        "--stripe-secret-key=sk_live_Sup3rSecretKey",
        "--stripe-webhook-secret=whsec_Sup3rSecretHook,whsec_Sup3rSecretOld",
        "--stripe-api-base=https://u:Sup3rSecretBase@proxy.example",
        "--api-tokens=Sup3rSecretToken-0123456789",
        "--fulfilment-url=https://u:Sup3rSecretHook@tickets.example/hook",
        "--fulfilment-secret=whsec_Sup3rSecretFulfilment",
    ])
    .unwrap();
    let stripe: StripeArgs = parse(&[
        "--stripe-secret-key=rk_test_Sup3rSecretKey",
        "--stripe-api-base=https://u:Sup3rSecretBase@proxy.example",
    ])
    .unwrap();
    for printed in [
        format!("{common:?}"),
        format!("{serve:?}"),
        format!("{stripe:?}"),
    ] {
        assert!(!printed.contains("Sup3rSecret"), "{printed}");
        // The settings are there, only their secrets are not.
        assert!(printed.contains(":***@"), "{printed}");
    }
    // The values themselves were read.
    assert_eq!(serve.stripe_webhook_secret.len(), 2);
    assert_eq!(serve.api_tokens.len(), 1);
    assert!(serve.fulfilment_secret.is_some() && stripe.stripe_secret_key.is_some());
}

#[test]
fn no_key_means_sandbox() {
    for blank in ["", "  "] {
        let c = serve(&[
            &format!("--stripe-secret-key={blank}"),
            "--stripe-webhook-secret=",
        ])
        .unwrap();
        assert!(c.stripe.secret_key.is_none());
        assert!(c.stripe.webhook.secrets.is_empty());
    }
}

/// A blank optional setting is an unset one.
#[test]
fn blank_means_unset() {
    let c = serve(&[
        "--api-tokens=",
        "--create-rate-limit= ",
        "--trusted-proxies=",
        "--fulfilment-url=",
        "--fulfilment-secret= ",
    ])
    .unwrap();
    assert!(c.access.tokens.is_empty());
    assert!(c.access.create_rate_limit.is_none());
    assert!(c.access.trusted_proxies.is_empty());
    assert!(c.fulfilment.is_none());
    let common: CommonArgs = parse(&["--database-url= ", "--log-format="]).unwrap();
    assert_eq!(common.database_url(false), DEFAULT_DATABASE_URL);
    assert_eq!(common.log_format, LogFormat::Pretty);
}

#[test]
fn values_are_read_into_their_types() {
    let c = serve(&[
        "--bind= ::1 ",
        "--port=0",
        "--stripe-api-base=http://127.0.0.1:12111/sandbox/",
        "--stripe-max-rps=0",
        "--api-tokens=0123456789abcdef, fedcba9876543210",
        "--create-rate-limit=20/min",
        "--trusted-proxies=10.0.0.0/8, 192.168.1.1",
        "--fulfilment-url=https://tickets.example/hook",
        "--fulfilment-secret=whsec_0123456789abcdef",
        "--late-payment-policy=refund ",
        "--reconcile-interval-secs=0",
        "--connect-charge-type= direct",
        "--connect-default-country=es",
        "--connect-on-behalf-of=FALSE",
        "--platform-fee-percent=2.50",
        "--platform-fee-fixed=eur:0.50, mxn:10",
        "--platform-fee-min=eur:1",
        "--platform-fee-max=",
        "--refund-application-fee=false",
        "--dispute-reverse-transfer=false",
    ])
    .unwrap();
    assert_eq!(c.listen, "[::1]:0".parse().unwrap());
    assert_eq!(c.stripe.api_base, "http://127.0.0.1:12111/sandbox");
    assert_eq!(c.stripe.budget.max_rps, None);
    assert_eq!(c.access.tokens.len(), 2);
    assert_eq!(
        c.access.create_rate_limit.map(|l| (l.count.get(), l.per)),
        Some((20, Duration::from_secs(60)))
    );
    assert_eq!(c.access.trusted_proxies.len(), 2);
    let fulfilment = c.fulfilment.unwrap();
    assert_eq!(fulfilment.url.as_str(), "https://tickets.example/hook");
    assert_eq!(c.late_payment_policy, LatePolicy::Refund);
    assert_eq!(c.reconcile_interval, None);
    let connect = &c.connect;
    assert_eq!(connect.charge_type, Some(crate::ledger::ChargeType::Direct));
    assert_eq!(connect.default_country, "ES");
    assert!(!connect.on_behalf_of && !connect.refund_application_fee);
    assert!(!connect.dispute_reverse_transfer);
    assert_eq!(
        connect.fee.to_json().to_string(),
        r#"{"percent":2.5,"fixed":{"eur":0.50,"mxn":10.00},"min":{"eur":1.00}}"#
    );
    let common: CommonArgs = parse(&["--log-format= JSON"]).unwrap();
    assert_eq!(common.log_format, LogFormat::Json);
}

#[test]
fn the_sandbox_has_its_own_ledger_and_no_postgres() {
    let sandbox = ["--stripe-secret-key=", "--stripe-webhook-secret="];
    assert_eq!(serve(&sandbox).unwrap().database_url, SANDBOX_DATABASE_URL);
    assert_eq!(serve(&[]).unwrap().database_url, DEFAULT_DATABASE_URL);
    let common: CommonArgs = parse(&["--database-url=postgres://u:p@localhost/db"]).unwrap();
    let err = Config::from_args(&common, &flags(&sandbox).unwrap())
        .err()
        .unwrap();
    assert_eq!(err.variable, "DATABASE_URL");
}

#[test]
fn cors_lists_and_rotation() {
    let c = serve(&["--cors-origins=https://a.example, http://localhost:3000"]).unwrap();
    assert_eq!(
        c.cors,
        CorsOrigins::List(vec![
            "https://a.example".into(),
            "http://localhost:3000".into()
        ])
    );
    let c = serve(&["--stripe-webhook-secret=whsec_old, whsec_new"]).unwrap();
    assert_eq!(c.stripe.webhook.secrets.len(), 2);
}

/// Without a key, a command calls the sandbox of the service running on `PORT`.
#[test]
fn commands_use_the_running_sandbox_without_a_key() {
    let stripe: StripeArgs = parse(&["--port=9000", "--stripe-max-rps=0"]).unwrap();
    let settings = stripe.client_settings();
    assert_eq!(settings.api_base, "http://127.0.0.1:9000/sandbox");
    assert_eq!(settings.budget.max_rps, None);
    let stripe: StripeArgs = parse(&["--stripe-secret-key=sk_test_abc"]).unwrap();
    assert_eq!(stripe.client_settings().api_base, DEFAULT_API_BASE);
}
