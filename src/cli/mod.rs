//! Command line: `serve` (the default), `sandbox`, `migrate`, the ledger's inspection
//! (`inspect`: payments, events, refunds, disputes, notifications) and operations that call
//! Stripe (`operate`: a bulk refund, a reconciliation round), and a webhook signer.

mod accounting;
mod inspect;
mod operate;
mod organizers;

use std::io::Read;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand};
use secrecy::{ExposeSecret, SecretString};

use crate::app::{shutdown_signal, Application};
use crate::config::{redact_url, webhook_secrets, CommonArgs, Config, ConfigError, ServeArgs};
use crate::ledger::{Backend, Ledger, PoolSettings};
use crate::stripe::signature;
use crate::telemetry;

#[derive(Debug, Parser)]
#[command(
    name = "tmt-payments",
    version,
    about = "Card payments for TMT through Stripe"
)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the payment functions, the webhook and the pages (the default when no command is
    /// given).
    Serve(Box<ServeArgs>),
    /// Run only the Stripe sandbox (the emulator the service embeds when it has no key), or
    /// `sandbox trigger <event>` to make a running one produce an event.
    Sandbox(Box<stripe_sandbox::cli::SandboxArgs>),
    /// Create or upgrade the ledger's tables, then exit.
    Migrate,
    /// Inspect recorded payments.
    Payments {
        #[command(subcommand)]
        command: PaymentsCommand,
    },
    /// Inspect received webhook events.
    Events {
        #[command(subcommand)]
        command: EventsCommand,
    },
    /// Inspect refunds, or refund a whole event (`refunds bulk`).
    Refunds {
        #[command(subcommand)]
        command: RefundsCommand,
    },
    /// Inspect disputes.
    Disputes {
        #[command(subcommand)]
        command: DisputesCommand,
    },
    /// Inspect fulfilment notifications, or send failed ones again.
    Notifications {
        #[command(subcommand)]
        command: NotificationsCommand,
    },
    /// Inspect organisers paid through Stripe Connect.
    Organizers {
        #[command(subcommand)]
        command: OrganizersCommand,
    },
    /// Run one reconciliation round by hand: Stripe's event log applied to the ledger.
    Reconcile(operate::ReconcileArgs),
    /// Buyers' Customers: return money left in their cash balances (bank transfers).
    Customers {
        #[command(subcommand)]
        command: CustomersCommand,
    },
    /// Stripe's balance transactions and payouts: `settlement sync` runs one round by hand.
    Settlement {
        #[command(subcommand)]
        command: SettlementCommand,
    },
    /// A period's payments after refunds, disputes and fees, per settlement currency, as a
    /// table, CSV (one line per payment) or JSON.
    Statement(Box<accounting::StatementArgs>),
    /// Inspect payouts, and whether each one's items add up.
    Payouts {
        #[command(subcommand)]
        command: PayoutsCommand,
    },
    /// Webhook helpers for testing an endpoint by hand.
    Webhook {
        #[command(subcommand)]
        command: WebhookCommand,
    },
}

#[derive(Debug, Subcommand)]
enum PaymentsCommand {
    /// Payments, newest first.
    List(ListArgs),
    /// One payment with every event received for it.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum EventsCommand {
    /// Webhook events, newest first.
    List(Newest),
}

#[derive(Debug, Subcommand)]
enum RefundsCommand {
    /// Refunds, newest first.
    List(ListArgs),
    /// Refund what is left of every succeeded payment whose metadata has KEY=VALUE (a canceled
    /// event): a job kept in the ledger, resumed by running the same command again.
    Bulk(operate::BulkArgs),
}

#[derive(Debug, Subcommand)]
enum DisputesCommand {
    /// Disputes, newest first.
    List(ListArgs),
}

#[derive(Debug, Subcommand)]
enum CustomersCommand {
    /// Return what the cash balances of EMAIL's Customers hold to the buyer (a refund from the
    /// balance, `origin=customer_balance`), once per amount.
    ReturnFunds(operate::ReturnFundsArgs),
}

#[derive(Debug, Subcommand)]
enum OrganizersCommand {
    /// Organisers, newest first.
    List(Newest),
    /// One organiser: its account's status and its own fee policy.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum SettlementCommand {
    /// List Stripe's balance transactions into the ledger from each account's cursor, and
    /// itemise the payouts Stripe has reconciled.
    Sync(accounting::SyncArgs),
}

#[derive(Debug, Subcommand)]
enum PayoutsCommand {
    /// Payouts, newest first.
    List(Newest),
}

#[derive(Debug, Subcommand)]
enum NotificationsCommand {
    /// Notifications, newest first.
    #[command(mut_arg("status", |status| status.help("pending, delivered or failed")))]
    List(ListArgs),
    /// Send a failed notification again (or every failed one with --failed).
    Retry {
        #[arg(required_unless_present = "failed")]
        id: Option<String>,
        #[arg(long, conflicts_with = "id")]
        failed: bool,
    },
}

/// What the `list` commands of the ledger's records take.
#[derive(Debug, Args)]
struct ListArgs {
    #[arg(long)]
    status: Option<String>,
    #[arg(long, default_value_t = 100)]
    limit: i64,
    #[arg(long)]
    json: bool,
}

impl ListArgs {
    fn status(&self) -> Option<&str> {
        self.status.as_deref()
    }

    /// How many rows at most; a negative limit lists none.
    fn limit(&self) -> i64 {
        self.limit.max(0)
    }
}

/// A listing of the newest rows of one kind.
#[derive(Debug, clap::Args)]
struct Newest {
    #[arg(long, default_value_t = 100)]
    limit: i64,
    #[arg(long)]
    json: bool,
}

impl Newest {
    /// How many rows at most; a negative limit lists none.
    fn limit(&self) -> i64 {
        self.limit.max(0)
    }
}

#[derive(Debug, Subcommand)]
enum WebhookCommand {
    /// Print the Stripe-Signature header for the payload read from standard input.
    Sign {
        /// Defaults to the first secret of STRIPE_WEBHOOK_SECRET.
        #[arg(long, env = "STRIPE_WEBHOOK_SECRET", hide_env_values = true,
              value_parser = webhook_secrets)]
        secret: std::vec::Vec<SecretString>,
        /// Unix seconds; defaults to now.
        #[arg(long)]
        timestamp: Option<i64>,
    },
}

const COMMANDS: &[&str] = &[
    "serve",
    "sandbox",
    "migrate",
    "payments",
    "events",
    "refunds",
    "disputes",
    "notifications",
    "organizers",
    "reconcile",
    "customers",
    "settlement",
    "statement",
    "payouts",
    "webhook",
    "help",
];

/// `tmt-payments` with no command (flags alone, or nothing) means `tmt-payments serve …`.
/// Global flags may come before a command: `--database-url x payments list` keeps its command.
fn with_default_command(mut args: Vec<String>) -> Vec<String> {
    let rest = args.get(1..).unwrap_or_default();
    let names_a_command = rest.iter().any(|a| COMMANDS.contains(&a.as_str()));
    let asks_for_help = rest
        .iter()
        .any(|a| matches!(a.as_str(), "-h" | "--help" | "-V" | "--version"));
    if !names_a_command && !asks_for_help {
        args.insert(1.min(args.len()), "serve".into());
    }
    args
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse_from(with_default_command(std::env::args().collect())) {
        Ok(cli) => cli,
        Err(e) => match ConfigError::from_clap(&e, Cli::command()) {
            Some(refusal) => {
                eprintln!("{refusal}");
                return ExitCode::from(2);
            }
            None => e.exit(),
        },
    };
    let serves = match &cli.command {
        Command::Serve(_) => true,
        Command::Sandbox(args) => args.command.is_none(),
        _ => false,
    };
    if !serves {
        end_quietly_when_output_closes();
    }
    let format = cli.common.log_format;
    // Without a key anywhere, the commands look at the sandbox's ledger, as `serve` would.
    let sandbox = match &cli.command {
        Command::Serve(args) => args.stripe_secret_key.is_none(),
        _ => std::env::var("STRIPE_SECRET_KEY").map_or(true, |k| k.trim().is_empty()),
    };
    let database_url = cli.common.database_url(sandbox);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Command::Serve(args) => {
            let config = match Config::from_args(&cli.common, &args) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            telemetry::init(format);
            if let Err(e) = runtime.block_on(serve(config)) {
                return match start_up_error(&e, &database_url) {
                    Some(line) => {
                        eprintln!("{line}");
                        ExitCode::from(2)
                    }
                    None => {
                        eprintln!("error: {}", scrub(&format!("{e:#}"), &database_url));
                        ExitCode::FAILURE
                    }
                };
            }
            Ok(())
        }
        Command::Sandbox(args) => {
            telemetry::init(format);
            runtime.block_on(stripe_sandbox::cli::run(
                *args,
                "http://localhost:8080/sandbox",
                shutdown_signal(),
            ))
        }
        Command::Migrate => runtime.block_on(async {
            let ledger = open(&database_url).await?;
            ledger.close().await;
            println!("ledger at {} is up to date", redact_url(&database_url));
            Ok(())
        }),
        Command::Payments { command } => {
            runtime.block_on(reading(&database_url, async |ledger| match command {
                PaymentsCommand::List(list) => inspect::payments(ledger, &list).await,
                PaymentsCommand::Show { id, json } => inspect::payment(ledger, &id, json).await,
            }))
        }
        Command::Events {
            command: EventsCommand::List(newest),
        } => runtime.block_on(reading(&database_url, async |ledger| {
            inspect::events(ledger, newest.limit(), newest.json).await
        })),
        Command::Refunds {
            command: RefundsCommand::List(list),
        } => runtime.block_on(reading(&database_url, async |ledger| {
            inspect::refunds(ledger, &list).await
        })),
        Command::Disputes {
            command: DisputesCommand::List(list),
        } => runtime.block_on(reading(&database_url, async |ledger| {
            inspect::disputes(ledger, &list).await
        })),
        Command::Notifications {
            command: NotificationsCommand::List(list),
        } => runtime.block_on(reading(&database_url, async |ledger| {
            inspect::notifications(ledger, &list).await
        })),
        Command::Organizers { command } => {
            runtime.block_on(reading(&database_url, async |ledger| match command {
                OrganizersCommand::List(newest) => {
                    organizers::list(ledger, newest.limit(), newest.json).await
                }
                OrganizersCommand::Show { id, json } => organizers::show(ledger, &id, json).await,
            }))
        }
        Command::Notifications {
            command: NotificationsCommand::Retry { id, failed: _ },
        } => runtime.block_on(async {
            let ledger = open_existing(&database_url).await?;
            closing(ledger, async |ledger| {
                inspect::retry_notifications(ledger, id.as_deref()).await
            })
            .await
        }),
        Command::Refunds {
            command: RefundsCommand::Bulk(args),
        } => {
            telemetry::init_quiet(format);
            return runtime.block_on(operate::bulk(&database_url, args));
        }
        Command::Reconcile(args) => {
            telemetry::init_quiet(format);
            return runtime.block_on(operate::reconcile(&database_url, args));
        }
        Command::Customers {
            command: CustomersCommand::ReturnFunds(args),
        } => {
            telemetry::init_quiet(format);
            return runtime.block_on(operate::return_funds(&database_url, args));
        }
        Command::Settlement {
            command: SettlementCommand::Sync(args),
        } => {
            telemetry::init_quiet(format);
            return runtime.block_on(accounting::sync(&database_url, args));
        }
        Command::Statement(args) => runtime.block_on(reading(&database_url, async |ledger| {
            accounting::statement(ledger, *args).await
        })),
        Command::Payouts {
            command: PayoutsCommand::List(newest),
        } => runtime.block_on(reading(&database_url, async |ledger| {
            accounting::payouts(ledger, newest.limit(), newest.json).await
        })),
        Command::Webhook {
            command: WebhookCommand::Sign { secret, timestamp },
        } => {
            let Some(first) = secret.first() else {
                eprintln!("configuration error: STRIPE_WEBHOOK_SECRET: empty");
                return ExitCode::from(2);
            };
            let mut body = Vec::new();
            if let Err(e) = std::io::stdin().read_to_end(&mut body) {
                eprintln!("cannot read the payload from standard input: {e}");
                return ExitCode::FAILURE;
            }
            let t = timestamp.unwrap_or_else(|| chrono::Utc::now().timestamp());
            println!("{}", signature::sign(&body, first.expose_secret(), t));
            Ok(())
        }
    }
    .map_or_else(
        |e: anyhow::Error| match e.downcast_ref::<ConfigError>() {
            Some(config) => {
                eprintln!("{config}");
                ExitCode::from(2)
            }
            None => {
                eprintln!("error: {}", scrub(&format!("{e:#}"), &database_url));
                ExitCode::FAILURE
            }
        },
        |()| ExitCode::SUCCESS,
    )
}

/// A command that prints and exits (every one but the servers) ends as Unix tools do when
/// whoever reads its output stops reading (`payments list | head -1`): at once and without a
/// word, by SIGPIPE (status 141 in a shell), instead of panicking on the failed write. Rust
/// ignores SIGPIPE in every program; this puts back its default action for the whole process,
/// so that every print of every command is covered, whatever is added later. The servers keep
/// ignoring it: a client or a log reader going away must not stop them.
fn end_quietly_when_output_closes() {
    // SAFETY: `signal` only sets the disposition of SIGPIPE to its default; no handler runs
    // code of ours. It is called before the runtime starts any thread.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let app = Application::build(config).await?;
    app.run_until(shutdown_signal()).await?;
    Ok(())
}

/// Start-up failures that come from a setting name it, like the checks in `config` do.
fn start_up_error(e: &anyhow::Error, database_url: &str) -> Option<String> {
    if e.downcast_ref::<crate::ledger::LedgerError>().is_some() {
        return Some(format!(
            "configuration error: DATABASE_URL: cannot open the ledger: {}",
            scrub(&e.to_string(), database_url)
        ));
    }
    let io = e.downcast_ref::<std::io::Error>()?;
    (io.kind() == std::io::ErrorKind::AddrInUse
        || io.kind() == std::io::ErrorKind::AddrNotAvailable
        || io.kind() == std::io::ErrorKind::PermissionDenied)
        .then(|| format!("configuration error: BIND/PORT: cannot listen: {io}"))
}

/// `text` with every copy of the database URL printed as [`redact_url`] prints it. The driver's
/// messages do not quote the URL today; an error chain is not ours to vouch for.
fn scrub(text: &str, database_url: &str) -> String {
    text.replace(database_url, &redact_url(database_url))
}

/// Opens the ledger, creating a missing SQLite file and migrating it (`serve`, `migrate`).
async fn open(url: &str) -> anyhow::Result<Ledger> {
    let ledger = Ledger::connect(
        url,
        PoolSettings {
            max_connections: 1,
            ..PoolSettings::default()
        },
    )
    .await?;
    ledger.migrate().await?;
    Ok(ledger)
}

/// Opens the ledger for a command that only reads it. A SQLite file must exist already: a
/// mistyped path must not become a new, empty ledger that then answers "no such payment". The
/// schema must be current: reading never migrates, because an inspection may be run with
/// read-only credentials, against a production ledger, by a newer binary than the instances
/// serving it, and none of those should see their tables change under them. SQLite is opened
/// read-only, so that nothing here can write to it.
async fn open_for_reading(database_url: &str) -> anyhow::Result<Ledger> {
    open_checked(database_url, true).await
}

/// Opens an existing, current ledger for a command that writes to it (a bulk refund, a
/// reconciliation round, sending notifications again): like [`open_for_reading`] it never
/// creates or migrates one.
async fn open_existing(database_url: &str) -> anyhow::Result<Ledger> {
    // Changes made here announce themselves as the service's do.
    Ok(open_checked(database_url, false)
        .await?
        .with_saved_outbox()
        .await?)
}

/// Runs `command` on the ledger opened for reading.
async fn reading(
    database_url: &str,
    command: impl AsyncFnOnce(&Ledger) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    closing(open_for_reading(database_url).await?, command).await
}

/// Runs `command` on `ledger`, then closes it, whatever `command` answered.
async fn closing(
    ledger: Ledger,
    command: impl AsyncFnOnce(&Ledger) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let done = command(&ledger).await;
    ledger.close().await;
    done
}

async fn open_checked(database_url: &str, read_only: bool) -> anyhow::Result<Ledger> {
    let url = match Backend::of(database_url) {
        Some(Backend::Sqlite) => {
            let options: sqlx::sqlite::SqliteConnectOptions = database_url.parse()?;
            let path = options.get_filename();
            let in_memory =
                database_url.contains(":memory:") || database_url.contains("mode=memory");
            if !in_memory && !path.exists() {
                return Err(ConfigError {
                    variable: "DATABASE_URL".into(),
                    problem: format!(
                        "no ledger at {}: the file does not exist (`tmt-payments migrate` \
                         creates one)",
                        path.display()
                    ),
                }
                .into());
            }
            // The last `mode` wins, so this also overrides a `mode=rwc` in the URL.
            let separator = if database_url.contains('?') { '&' } else { '?' };
            let mode = if read_only { "ro" } else { "rw" };
            format!("{database_url}{separator}mode={mode}")
        }
        _ => database_url.to_string(),
    };
    let shown = redact_url(database_url);
    match Ledger::missing_migrations(&url).await? {
        None => anyhow::bail!(
            "{shown} holds no tmt-payments ledger (no migrations were ever applied); \
             `tmt-payments migrate` creates one"
        ),
        Some(missing) if !missing.is_empty() => {
            let missing: Vec<String> = missing.iter().map(i64::to_string).collect();
            anyhow::bail!(
                "the ledger at {shown} predates this program (migrations {} not applied); run \
                 `tmt-payments migrate` first",
                missing.join(", ")
            )
        }
        Some(_) => {}
    }
    Ok(Ledger::connect(
        &url,
        PoolSettings {
            max_connections: if read_only { 1 } else { 4 },
            ..PoolSettings::default()
        },
    )
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        with_default_command(list.iter().map(|s| s.to_string()).collect())
    }

    /// The webhook signer's secret prints as the settings' do: without its value.
    #[test]
    fn debug_prints_no_secret() {
        let cli = Cli::try_parse_from([
            "tmt",
            "--database-url=postgres://u:Sup3rSecretPw@h/db",
            "webhook",
            "sign",
            "--secret=whsec_Sup3rSecretHook",
        ])
        .unwrap();
        let printed = format!("{cli:?}");
        assert!(printed.contains("webhook") || printed.contains("Webhook"));
        assert!(!printed.contains("Sup3rSecret"), "{printed}");
    }

    #[test]
    fn serve_is_the_default() {
        assert_eq!(args(&["tmt"]), ["tmt", "serve"]);
        assert_eq!(
            args(&["tmt", "--port", "1"]),
            ["tmt", "serve", "--port", "1"]
        );
        assert_eq!(args(&["tmt", "migrate"]), ["tmt", "migrate"]);
        assert_eq!(args(&["tmt", "--help"]), ["tmt", "--help"]);
        assert_eq!(
            args(&["tmt", "--database-url", "sqlite://x.db", "payments", "list"]),
            ["tmt", "--database-url", "sqlite://x.db", "payments", "list"]
        );
        let parsed = Cli::try_parse_from(args(&[
            "tmt",
            "--database-url",
            "sqlite://x.db",
            "events",
            "list",
        ]));
        assert!(parsed.is_ok_and(|c| c.common.database_url(true) == "sqlite://x.db"));
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
