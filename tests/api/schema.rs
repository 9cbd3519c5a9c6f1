//! The SQLite and PostgreSQL migrations (migrations/sqlite, migrations/postgres) describe the
//! same ledger: both are applied to a fresh database and their catalogues compared, table by
//! table and column by column, with nullability and types.
//!
//! What is allowed to differ, and why:
//! - Type names. A SQLite column's declared type only chooses its affinity (SQLite's rules:
//!   `INT` in the name is an integer, `CHAR`, `CLOB` or `TEXT` is text, `BLOB` or none is a
//!   blob, `REAL`, `FLOA` or `DOUB` is real, anything else numeric), and SQLite's integers are
//!   all 64-bit: so SQLite's `INTEGER` matches PostgreSQL's `bigint`, and its `TEXT` matches
//!   `text` or `character varying`. PostgreSQL's `integer` or `smallint` does not match: the
//!   ledger reads and writes 64-bit integers.
//! - Nullability of a primary key. A primary key is never null on PostgreSQL, nor is SQLite's
//!   `INTEGER PRIMARY KEY` (it is the rowid), though `pragma_table_info` reports it nullable
//!   unless `NOT NULL` is written. SQLite's other primary keys do accept null unless `NOT NULL`
//!   is written, so they are compared as reported.
//! - Tables that belong to neither migration: sqlx's `_sqlx_migrations` (whose column types
//!   sqlx picks per backend) and SQLite's own `sqlite_*` tables (`sqlite_sequence`, kept by
//!   `AUTOINCREMENT`, which PostgreSQL's `BIGSERIAL` keeps in a sequence instead).
//!
//! Defaults, indexes and constraints other than `NOT NULL` are not compared.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use sqlx::Connection;
use tmt_payments::ledger::{Ledger, PoolSettings};

use crate::helpers::*;

/// What a column holds, as far as both backends can say the same.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// A 64-bit integer.
    Integer,
    Text,
    Blob,
    Real,
    Numeric,
    /// A PostgreSQL type SQLite has no counterpart for (`integer`, `boolean`, `timestamp`, …).
    Other(String),
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Integer => "int64",
            Kind::Text => "text",
            Kind::Blob => "blob",
            Kind::Real => "real",
            Kind::Numeric => "numeric",
            Kind::Other(name) => name,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Column {
    kind: Kind,
    nullable: bool,
}

/// Columns by name, of tables by name.
type Catalogue = BTreeMap<String, BTreeMap<String, Column>>;

/// A SQLite column's kind, by its declared type's affinity.
fn sqlite_kind(declared: &str) -> Kind {
    let declared = declared.to_ascii_uppercase();
    let has = |word: &str| declared.contains(word);
    if has("INT") {
        Kind::Integer
    } else if has("CHAR") || has("CLOB") || has("TEXT") {
        Kind::Text
    } else if has("BLOB") || declared.is_empty() {
        Kind::Blob
    } else if has("REAL") || has("FLOA") || has("DOUB") {
        Kind::Real
    } else {
        Kind::Numeric
    }
}

/// A PostgreSQL column's kind, by `information_schema.columns.data_type`.
fn postgres_kind(data_type: &str) -> Kind {
    match data_type {
        "bigint" => Kind::Integer,
        "text" | "character varying" | "character" => Kind::Text,
        "bytea" => Kind::Blob,
        "double precision" | "real" => Kind::Real,
        "numeric" => Kind::Numeric,
        other => Kind::Other(other.to_string()),
    }
}

/// The tables and columns of the SQLite database at `url`.
async fn sqlite_catalogue(url: &str) -> Catalogue {
    let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
    let rows: Vec<(String, String, String, bool, i64)> = sqlx::query_as(
        "SELECT m.name, c.name, c.type, c.\"notnull\", c.pk
           FROM sqlite_master AS m, pragma_table_info(m.name) AS c
          WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name <> '_sqlx_migrations'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let keys = |table: &str| rows.iter().filter(|r| r.0 == table && r.4 > 0).count();
    let mut catalogue = Catalogue::new();
    for (table, column, declared, not_null, pk) in &rows {
        // The rowid: a column declared `INTEGER` that is the table's whole primary key.
        let rowid = *pk > 0 && declared.eq_ignore_ascii_case("INTEGER") && keys(table) == 1;
        catalogue.entry(table.clone()).or_default().insert(
            column.clone(),
            Column {
                kind: sqlite_kind(declared),
                nullable: !(*not_null || rowid),
            },
        );
    }
    catalogue
}

/// The tables and columns of the PostgreSQL database at `url` (its current schema).
async fn postgres_catalogue(url: &str) -> Catalogue {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let rows: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text, data_type::text, is_nullable::text
           FROM information_schema.columns
          WHERE table_schema = current_schema() AND table_name <> '_sqlx_migrations'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let mut catalogue = Catalogue::new();
    for (table, column, data_type, nullable) in rows {
        catalogue.entry(table).or_default().insert(
            column,
            Column {
                kind: postgres_kind(&data_type),
                nullable: nullable == "YES",
            },
        );
    }
    catalogue
}

/// Where the two catalogues differ, one line each; none when they describe the same schema.
fn differences(sqlite: &Catalogue, postgres: &Catalogue) -> Vec<String> {
    let mut found = Vec::new();
    for (table, left, right) in paired(sqlite, postgres) {
        let (Some(left), Some(right)) = (left, right) else {
            found.push(format!("table {table}: {}", only_on(left.is_some())));
            continue;
        };
        for (column, l, r) in paired(left, right) {
            let place = format!("column {table}.{column}");
            let (Some(l), Some(r)) = (l, r) else {
                found.push(format!("{place}: {}", only_on(l.is_some())));
                continue;
            };
            let says = |nullable| if nullable { "nullable" } else { "NOT NULL" };
            for (on_sqlite, on_postgres) in [
                (l.kind.to_string(), r.kind.to_string()),
                (says(l.nullable).into(), says(r.nullable).into()),
            ] {
                if on_sqlite != on_postgres {
                    found.push(format!(
                        "{place}: {on_sqlite} on SQLite, {on_postgres} on PostgreSQL"
                    ));
                }
            }
        }
    }
    found.sort();
    found
}

/// Every name of either map, with what each map holds under it.
fn paired<'a, V>(
    sqlite: &'a BTreeMap<String, V>,
    postgres: &'a BTreeMap<String, V>,
) -> impl Iterator<Item = (&'a String, Option<&'a V>, Option<&'a V>)> {
    let names: BTreeSet<&String> = sqlite.keys().chain(postgres.keys()).collect();
    names
        .into_iter()
        .map(|name| (name, sqlite.get(name), postgres.get(name)))
}

fn only_on(sqlite: bool) -> &'static str {
    if sqlite {
        "only on SQLite"
    } else {
        "only on PostgreSQL"
    }
}

#[tokio::test]
#[ignore = "needs PostgreSQL at TMT_TEST_POSTGRES_URL"]
async fn postgres_and_sqlite_migrations_describe_the_same_schema() {
    let postgres_url = fresh_postgres_database(&postgres_peer().await).await;
    let dir = tempfile::tempdir().unwrap();
    let sqlite_url = sqlite_url(dir.path());
    for url in [&sqlite_url, &postgres_url] {
        let ledger = Ledger::connect(url, PoolSettings::default()).await.unwrap();
        ledger.migrate().await.unwrap();
        ledger.close().await;
    }
    let sqlite = sqlite_catalogue(&sqlite_url).await;
    let postgres = postgres_catalogue(&postgres_url).await;
    // The comparison saw the ledger, not two empty catalogues.
    for table in ["payments", "webhook_events", "refunds", "notifications"] {
        assert!(sqlite.contains_key(table), "{table}: {sqlite:?}");
    }
    let found = differences(&sqlite, &postgres);
    assert!(
        found.is_empty(),
        "the migrations differ:\n{}",
        found.join("\n")
    );
}

/// The comparison itself, on catalogues that differ in every way it looks at, and in the ways
/// it allows.
#[test]
fn differences_are_found_and_allowed_ones_are_not() {
    type Side = Option<(&'static str, bool)>;
    // Table, column, then its type and nullability on SQLite and on PostgreSQL (None: absent).
    #[rustfmt::skip]
    let columns: [(&str, &str, Side, Side); 8] = [
        ("payments", "id",         Some(("TEXT", false)),    Some(("character varying", false))),
        ("payments", "amount",     Some(("INTEGER", false)), Some(("integer", false))),
        ("payments", "late",       Some(("INTEGER", false)), Some(("bigint", true))),
        ("payments", "note",       Some(("TEXT", true)),     Some(("text", true))),
        ("payments", "only_here",  Some(("BLOB", true)),     None),
        ("payments", "only_there", None,                     Some(("bytea", true))),
        ("old",      "id",         Some(("INTEGER", false)), None),
        ("new",      "id",         None,                     Some(("bigint", false))),
    ];
    let (mut sqlite, mut postgres) = (Catalogue::new(), Catalogue::new());
    for (table, column, on_sqlite, on_postgres) in columns {
        for (catalogue, side, kind) in [
            (&mut sqlite, on_sqlite, sqlite_kind as fn(&str) -> Kind),
            (&mut postgres, on_postgres, postgres_kind),
        ] {
            if let Some((declared, nullable)) = side {
                catalogue.entry(table.to_string()).or_default().insert(
                    column.to_string(),
                    Column {
                        kind: kind(declared),
                        nullable,
                    },
                );
            }
        }
    }
    assert_eq!(
        differences(&sqlite, &postgres),
        [
            "column payments.amount: int64 on SQLite, integer on PostgreSQL",
            "column payments.late: NOT NULL on SQLite, nullable on PostgreSQL",
            "column payments.only_here: only on SQLite",
            "column payments.only_there: only on PostgreSQL",
            "table new: only on PostgreSQL",
            "table old: only on SQLite",
        ]
    );
    assert!(differences(&sqlite, &sqlite).is_empty());
}
