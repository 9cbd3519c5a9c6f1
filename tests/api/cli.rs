//! The binary: start-up refusals, `migrate`, and ledger inspection from the command line.

use std::io::Read;
use std::process::{Output, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::*;

fn stderr_line(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).trim().to_string()
}

/// What a `--json` listing printed.
fn listed(output: &Output) -> Vec<Value> {
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Runs the binary with `args`, which must succeed; what it printed.
fn succeeds(db: &str, args: &[&str]) -> Output {
    let output = run(db, args);
    assert!(
        output.status.success(),
        "{args:?}: {}",
        stderr_line(&output)
    );
    output
}

/// Runs the binary with `envs` and waits for it to refuse to start; what it printed.
async fn refusal(db: &str, envs: &[(&str, &str)], variable: &str) -> Output {
    // PORT=0 first: a case that wrongly starts must not take a real port, nor hang the test.
    let mut child = KillOnDrop(
        command(db)
            .env("PORT", "0")
            .envs(envs.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let what = format!("{variable}: the service refuses to start (it started instead)");
    let status = eventually(&what, Duration::from_secs(20), || {
        let exited = child.0.try_wait().unwrap();
        async move { exited }
    })
    .await;
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    child
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut stdout)
        .unwrap();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_end(&mut stderr)
        .unwrap();
    Output {
        status,
        stdout,
        stderr,
    }
}

#[tokio::test]
async fn bad_configuration_stops_start_up_with_one_line_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_url(dir.path());
    let key = ("STRIPE_SECRET_KEY", SECRET_KEY);
    let hook = ("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET);
    let cases: [(&[(&str, &str)], &str); 13] = [
        (
            &[("STRIPE_SECRET_KEY", "pk_test_abc"), hook],
            "STRIPE_SECRET_KEY",
        ),
        (&[key], "STRIPE_WEBHOOK_SECRET"),
        (
            &[key, ("STRIPE_WEBHOOK_SECRET", "not-a-secret")],
            "STRIPE_WEBHOOK_SECRET",
        ),
        (&[key, hook, ("PORT", "70000")], "PORT"),
        (
            &[key, hook, ("STRIPE_API_BASE", "::nope")],
            "STRIPE_API_BASE",
        ),
        (&[key, hook, ("LOG_FORMAT", "xml")], "LOG_FORMAT"),
        (&[key, hook, ("DATABASE_URL", "mysql://x")], "DATABASE_URL"),
        (
            &[
                key,
                hook,
                ("DATABASE_URL", "sqlite:///nonexistent-dir/sub/x.db"),
            ],
            "DATABASE_URL",
        ),
        (&[("PORT", "nope")], "PORT"),
        // A secret's refusal, a range, a choice, and a check across two settings.
        (
            &[("STRIPE_SECRET_KEY", "sk_test_not-a-secret"), hook],
            "STRIPE_SECRET_KEY",
        ),
        (
            &[key, hook, ("HEADER_TIMEOUT_SECS", "0")],
            "HEADER_TIMEOUT_SECS",
        ),
        (
            &[key, hook, ("LATE_PAYMENT_POLICY", "later")],
            "LATE_PAYMENT_POLICY",
        ),
        (
            &[
                key,
                hook,
                ("FULFILMENT_URL", "https://tickets.example/hook"),
            ],
            "FULFILMENT_SECRET",
        ),
    ];
    for (envs, variable) in cases {
        let output = refusal(&db, envs, variable).await;
        assert_eq!(output.status.code(), Some(2), "{variable}");
        let line = stderr_line(&output);
        assert_eq!(line.lines().count(), 1, "{line}");
        assert!(line.contains(variable), "{line}");
        assert!(
            !line.contains("not-a-secret"),
            "secrets are never echoed: {line}"
        );
    }
    assert!(
        !dir.path().join("ledger.db").exists(),
        "nothing was started half-configured"
    );
}

#[test]
fn migrate_creates_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_url(dir.path());
    succeeds(&db, &["migrate"]);
    assert!(dir.path().join("ledger.db").exists());
    // Twice is fine.
    succeeds(&db, &["migrate"]);
}

#[tokio::test]
async fn payments_and_events_can_be_inspected() {
    let app = spawn_app().await;
    let pis = [
        ("pi_cli0000001", 5000, "usd", "succeeded", 1_700_000_100),
        (
            "pi_cli0000002",
            500,
            "jpy",
            "requires_payment_method",
            1_700_000_200,
        ),
        ("pi_cli0000003", 1230, "kwd", "processing", 1_700_000_300),
    ];
    for (i, (id, amount, currency, status, created)) in pis.iter().enumerate() {
        let mut pi = payment_intent(id, *amount, currency, status);
        pi["created"] = json!(created);
        pi["description"] = json!(format!("orden {i}"));
        let e = event(&format!("evt_cli_{i}"), "payment_intent.created", pi, now());
        assert_eq!(app.deliver(&e).await.0, 200);
    }
    let e = event(
        "evt_cli_unhandled",
        "customer.created",
        json!({"id": "cus_1", "object": "customer"}),
        now(),
    );
    assert_eq!(app.deliver(&e).await.0, 200);
    let db = app.db_url.clone();

    let out = succeeds(&db, &["payments", "list", "--json"]);
    let list = listed(&out);
    let ids: Vec<_> = list.iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        ["pi_cli0000003", "pi_cli0000002", "pi_cli0000001"],
        "newest first"
    );
    let first = &list[0];
    let mut keys: Vec<_> = first.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "amount",
            "created",
            "currency",
            "description",
            "id",
            "metadata",
            "status",
            "updated_at"
        ]
    );
    assert_eq!(first["amount"], 1230);
    assert_eq!(first["currency"], "kwd");
    assert_eq!(first["created"], 1_700_000_300);
    assert_eq!(first["metadata"]["platform"], "TMT");

    let out = run(
        &db,
        &["payments", "list", "--status", "succeeded", "--json"],
    );
    let list = listed(&out);
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["id"], "pi_cli0000001");
    let out = run(&db, &["payments", "list", "--limit", "2", "--json"]);
    assert_eq!(listed(&out).len(), 2);

    let out = succeeds(&db, &["payments", "show", "pi_cli0000002", "--json"]);
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["status"], "requires_payment_method");
    assert_eq!(shown["description"], "orden 1");
    let events = shown["events"].as_array().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["id"], "evt_cli_1");
    assert_eq!(events[0]["type"], "payment_intent.created");
    assert_eq!(events[0]["payment_intent_id"], "pi_cli0000002");
    assert_eq!(events[0]["outcome"], "applied");
    assert!(events[0]["received_at"].as_str().unwrap().ends_with('Z'));

    let out = run(&db, &["events", "list", "--json"]);
    let events = listed(&out);
    assert_eq!(events.len(), 4);
    assert_eq!(events[0]["id"], "evt_cli_unhandled", "newest first");
    assert_eq!(events[0]["outcome"], "unhandled");
    let out = run(&db, &["events", "list", "--limit", "1", "--json"]);
    assert_eq!(listed(&out).len(), 1);

    // Tables for people.
    let out = run(&db, &["payments", "list"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("pi_cli0000003") && text.contains("1.230"),
        "{text}"
    );
    let out = run(&db, &["payments", "show", "pi_cli0000001"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("50.00 usd"), "{text}");

    let out = run(&db, &["payments", "show", "pi_unknown"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_line(&out).contains("pi_unknown"));
}

#[test]
fn webhook_sign_matches_the_library() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = command(&sqlite_url(dir.path()))
        .args(["webhook", "sign", "--timestamp", "1700000000"])
        .env("STRIPE_WEBHOOK_SECRET", "whsec_cli,whsec_other")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"{\"id\":\"evt_1\"}")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        tmt_payments::stripe::signature::sign(b"{\"id\":\"evt_1\"}", "whsec_cli", 1_700_000_000)
    );
}

/// A database URL whose password must never be printed.
const LEAKY_URL: &str = "postgres://postgres:Sup3rSecretPw@127.0.0.1:1/x";

/// Every secret setting, each holding a value that contains "Sup3rSecret".
fn with_secrets(c: &mut std::process::Command) -> &mut std::process::Command {
    c.env("STRIPE_SECRET_KEY", "sk_test_Sup3rSecretKey")
        .env("STRIPE_WEBHOOK_SECRET", "whsec_Sup3rSecretHook")
        .env("API_TOKENS", "Sup3rSecretToken-0123456789")
        .env(
            "STRIPE_API_BASE",
            "https://user:Sup3rSecretBase@proxy.example",
        )
}

fn all_output(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The subcommands listed under "Commands:" in a help text, `help` aside.
fn listed_commands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with(' '))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

/// Every command of the binary, as the words that name it (the binary itself is the empty
/// one), each with whether it has subcommands: walked from the binary's own help, so that a
/// test going through them all meets a new command too.
fn command_tree() -> Vec<(Vec<String>, bool)> {
    let mut pending: Vec<Vec<String>> = vec![vec![]];
    let mut tree = Vec::new();
    while let Some(path) = pending.pop() {
        let output = command(LEAKY_URL)
            .args(&path)
            .arg("--help")
            .output()
            .unwrap();
        let children = listed_commands(&String::from_utf8_lossy(&output.stdout));
        tree.push((path.clone(), !children.is_empty()));
        for name in children {
            pending.push([path.clone(), vec![name]].concat());
        }
    }
    tree
}

#[test]
fn no_help_text_shows_a_secret() {
    let tree = command_tree();
    for (path, _) in &tree {
        for form in [
            [path.clone(), vec!["--help".to_string()]].concat(),
            [path.clone(), vec!["-h".to_string()]].concat(),
            [vec!["help".to_string()], path.clone()].concat(),
        ] {
            let output = with_secrets(&mut command(LEAKY_URL))
                .args(&form)
                .output()
                .unwrap();
            let text = all_output(&output);
            assert!(output.status.success(), "{form:?}: {text}");
            assert!(
                !text.contains("Sup3rSecret"),
                "{form:?} shows a secret:\n{text}"
            );
        }
    }
    // The walk reached the commands (every one there is, whatever is added later).
    let seen: Vec<String> = tree.iter().map(|(path, _)| path.join(" ")).collect();
    for expected in [
        "",
        "events list",
        "migrate",
        "payments list",
        "payments show",
        "sandbox",
        "serve",
        "webhook sign",
    ] {
        assert!(seen.iter().any(|s| s == expected), "{expected}: {seen:?}");
    }
}

/// `tmt-payments … | head -1`: every command that prints and exits, its output closed before
/// it writes a byte, ends at once and quietly (status 0, or killed by SIGPIPE: 141 in a shell),
/// never with a panic. The commands are those of the binary's own help, so that a new one must
/// be added here; only the servers (`serve`, `sandbox` without a subcommand) are left out.
#[tokio::test]
async fn commands_whose_output_is_closed_early_end_quietly() {
    use std::os::unix::process::ExitStatusExt;

    let app = spawn_app().await;
    let mut pi = payment_intent("pi_pipe0000001", 5000, "usd", "succeeded");
    pi["metadata"]["event_id"] = json!("pipe");
    app.delivered("evt_pipe_1", SUCCEEDED.0, pi, now()).await;
    let mut refund = fixture("refund");
    refund["payment_intent"] = json!("pi_pipe0000001");
    refund["amount"] = json!(1000);
    app.delivered("evt_pipe_2", "refund.created", refund, now())
        .await;
    // What reconcile and a bulk refund ask of Stripe: nothing to report, nothing to refund.
    let empty = json!({"object": "list", "data": [], "has_more": false});
    stub_reads(&app.stripe, empty).await;
    let stripe = app.stripe.uri();
    let sandbox = unreachable_base();
    let ledger = app.ledger().await;
    ledger
        .claim_organizer("org_pipe", "MX", None, None)
        .await
        .unwrap();
    let show = ["payments", "show", "pi_pipe0000001"];
    // A dry run lists the payment it would refund; a run refunds nothing and reports so.
    let preview = [
        "refunds",
        "bulk",
        "--metadata",
        "event_id=pipe",
        "--dry-run",
    ];
    let bulk = ["refunds", "bulk", "--metadata", "event_id=none"];
    let statement = ["statement", "--from", "2000-01-01", "--to", "2100-01-01"];
    let runs: Vec<Vec<&str>> = vec![
        vec!["migrate"],
        vec!["payments", "list"],
        vec!["payments", "list", "--json"],
        show.to_vec(),
        [&show[..], &["--json"]].concat(),
        vec!["events", "list"],
        vec!["events", "list", "--json"],
        vec!["refunds", "list"],
        vec!["refunds", "list", "--json"],
        preview.to_vec(),
        [&preview[..], &["--json"]].concat(),
        bulk.to_vec(),
        [&bulk[..], &["--json"]].concat(),
        vec!["disputes", "list"],
        vec!["disputes", "list", "--json"],
        vec!["notifications", "list"],
        vec!["notifications", "list", "--json"],
        vec!["notifications", "retry", "--failed"],
        vec!["organizers", "list"],
        vec!["organizers", "list", "--json"],
        vec!["organizers", "show", "org_pipe"],
        vec!["organizers", "show", "org_pipe", "--json"],
        vec!["reconcile", "--since", "1h"],
        vec!["reconcile", "--since", "1h", "--json"],
        vec!["customers", "return-funds", "nobody@example.com"],
        vec!["customers", "return-funds", "nobody@example.com", "--json"],
        vec!["settlement", "sync"],
        vec!["settlement", "sync", "--json"],
        [&statement[..], &["--format", "table"]].concat(),
        [&statement[..], &["--format", "csv"]].concat(),
        [&statement[..], &["--format", "json"]].concat(),
        vec!["payouts", "list"],
        vec!["payouts", "list", "--json"],
        vec!["webhook", "sign"],
        vec![
            "sandbox",
            "trigger",
            "payment_intent.created",
            "--api-base",
            &sandbox,
        ],
    ];
    for (path, has_subcommands) in command_tree() {
        let servers = path.is_empty() || path == ["serve"] || path == ["sandbox"];
        if has_subcommands || servers {
            continue;
        }
        assert!(
            runs.iter()
                .any(|args| args.starts_with(&path.iter().map(String::as_str).collect::<Vec<_>>())),
            "`{}` is not run here with its output closed",
            path.join(" ")
        );
    }
    for args in runs {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let output = command(&app.db_url)
            .args(&args)
            .envs(keyed_env(&stripe))
            .stdin(Stdio::null())
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        let quiet =
            output.status.code() == Some(0) || output.status.signal() == Some(libc::SIGPIPE);
        assert!(quiet, "{args:?} ended {:?}: {stderr}", output.status);
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn failures_with_an_unreachable_database_do_not_show_its_password() {
    let runs: Vec<(&str, std::process::Child)> = [
        ("migrate", vec!["migrate"]),
        ("payments list", vec!["payments", "list"]),
        ("payments show", vec!["payments", "show", "pi_x"]),
        ("events list", vec!["events", "list"]),
        ("serve", vec!["serve"]),
    ]
    .into_iter()
    .map(|(name, args)| {
        let child = with_secrets(&mut command(LEAKY_URL))
            .env("PORT", "0")
            .env("BIND", "127.0.0.1")
            .env("RUST_LOG", "debug")
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        (name, child)
    })
    .collect();
    for (name, child) in runs {
        let output = child.wait_with_output().unwrap();
        let text = all_output(&output);
        assert!(!output.status.success(), "{name} cannot succeed: {text}");
        assert!(!text.trim().is_empty(), "{name} says why");
        assert!(
            !text.contains("Sup3rSecret"),
            "{name} shows a secret:\n{text}"
        );
    }
}

#[test]
fn migrate_prints_the_sqlite_url() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_url(dir.path());
    let output = succeeds(&db, &["migrate"]);
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("ledger at {db} is up to date")
    );
}

#[tokio::test]
async fn log_lines_print_urls_without_their_password() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("service.log");
    let server = Server::keyed_logging(
        &sqlite_url(dir.path()),
        "http://user:Sup3rSecretBase@127.0.0.1:9",
        &[("RUST_LOG", "debug")],
        Some(&log),
    )
    .await;
    let text = eventually("a start-up line", PATIENCE, || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        async move {
            if text.contains("tmt-payments listening") {
                Ok(text)
            } else {
                Err(text)
            }
        }
    })
    .await;
    drop(server);
    assert!(text.contains("http://user:***@127.0.0.1:9"), "{text}");
    assert!(!text.contains("Sup3rSecret"), "{text}");
}

#[tokio::test]
#[ignore = "needs PostgreSQL at TMT_TEST_POSTGRES_URL"]
async fn postgres_urls_are_printed_without_their_password() {
    let db = fresh_postgres_database(&postgres_peer().await).await;
    let parsed = url::Url::parse(&db).unwrap();
    let output = succeeds(&db, &["migrate"]);
    let line = String::from_utf8_lossy(&output.stdout).trim().to_string();
    match parsed.password() {
        Some(password) => {
            let mut shown = parsed.clone();
            shown.set_password(Some("***")).unwrap();
            assert_eq!(line, format!("ledger at {shown} is up to date"));
            assert!(
                line.contains(&format!("{}:***@", parsed.username())),
                "{line}"
            );
            assert!(!line.contains(&format!(":{password}@")), "{line}");
        }
        None => assert_eq!(line, format!("ledger at {db} is up to date")),
    }
}

#[tokio::test]
async fn read_only_commands_refuse_a_missing_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mistyped.db");
    let db = format!("sqlite://{}", path.display());
    for args in [
        &["payments", "list"][..],
        &["payments", "show", "pi_3Missing"],
        &["events", "list", "--json"],
    ] {
        let output = run(&db, args);
        let line = stderr_line(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {line}");
        assert_eq!(line.lines().count(), 1, "{line}");
        assert!(line.contains("DATABASE_URL"), "{line}");
        assert!(line.contains(&path.display().to_string()), "{line}");
        assert!(line.contains("does not exist"), "{line}");
        assert!(output.stdout.is_empty());
        let created: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(created.is_empty(), "{args:?} created {created:?}");
    }
    // The commands that write still create the file.
    succeeds(&db, &["migrate"]);
    assert!(path.exists());
    let output = succeeds(&db, &["payments", "list", "--json"]);
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "[]");
    let served = dir.path().join("served.db");
    let server = Server::start(&format!("sqlite://{}", served.display()), &[]).await;
    assert!(served.exists(), "serve creates its ledger");
    drop(server);
}

#[tokio::test]
async fn read_only_commands_never_migrate() {
    use sqlx::{Connection, Row};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let db = sqlite_url(dir.path());
    // A ledger left by an older version: every migration but the last applied, as that version
    // would have applied them.
    let migrations = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    let mut names: Vec<_> = std::fs::read_dir(&migrations)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    let older = dir.path().join("older-migrations");
    std::fs::create_dir(&older).unwrap();
    for name in &names[..names.len() - 1] {
        std::fs::copy(migrations.join(name), older.join(name)).unwrap();
    }
    let options: sqlx::sqlite::SqliteConnectOptions = db.parse().unwrap();
    let mut conn = sqlx::SqliteConnection::connect_with(
        &options
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal),
    )
    .await
    .unwrap();
    sqlx::migrate::Migrator::new(older.as_path())
        .await
        .unwrap()
        .run(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let versions = || async {
        let mut conn = sqlx::SqliteConnection::connect(&db).await.unwrap();
        let rows = sqlx::query("SELECT version FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        rows.iter()
            .map(|r| r.get::<i64, _>(0))
            .collect::<Vec<i64>>()
    };
    let before = versions().await;
    assert_eq!(before.len(), names.len() - 1);
    let last: i64 = names.last().unwrap().to_string_lossy()[..4]
        .parse()
        .unwrap();

    for args in [&["payments", "list"][..], &["events", "list"]] {
        let output = run(&db, args);
        let line = stderr_line(&output);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {line}");
        assert_eq!(line.lines().count(), 1, "{line}");
        assert!(line.contains("tmt-payments migrate"), "{line}");
        assert!(
            line.contains(&format!("migrations {last} not applied")),
            "{line}"
        );
        assert!(line.contains(&path.display().to_string()), "{line}");
    }
    assert_eq!(versions().await, before, "nothing was migrated");
    succeeds(&db, &["migrate"]);
    assert_eq!(versions().await.last(), Some(&last));
    succeeds(&db, &["payments", "list", "--json"]);

    // A file that is not a ledger at all stays as it was.
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let output = run(
        &format!("sqlite://{}", empty.display()),
        &["events", "list"],
    );
    let line = stderr_line(&output);
    assert_eq!(output.status.code(), Some(1), "{line}");
    assert!(line.contains("no tmt-payments ledger"), "{line}");
    assert_eq!(std::fs::metadata(&empty).unwrap().len(), 0);
}

#[tokio::test]
#[ignore = "needs PostgreSQL at TMT_TEST_POSTGRES_URL"]
async fn read_only_commands_never_migrate_postgres() {
    use sqlx::{Connection, Row};
    let db = fresh_postgres_database(&postgres_peer().await).await;
    let tables = || async {
        let mut conn = sqlx::PgConnection::connect(&db).await.unwrap();
        let n: i64 = sqlx::query(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap()
        .get(0);
        conn.close().await.unwrap();
        n
    };
    let output = run(&db, &["payments", "list"]);
    let line = stderr_line(&output);
    assert_eq!(output.status.code(), Some(1), "{line}");
    assert!(line.contains("no tmt-payments ledger"), "{line}");
    assert_eq!(tables().await, 0, "nothing was created");
    succeeds(&db, &["migrate"]);
    assert!(tables().await > 0);
    succeeds(&db, &["payments", "list", "--json"]);
}
