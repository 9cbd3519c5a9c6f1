//! The error table's tests: every code documented and produced, docs/contract.md's table
//! compared with the service's, and what each failure answers.

use std::time::Duration;

use super::*;
use crate::payments::one_of_each;

/// A refusal of Stripe's with `status` and `message` (what else it said left out).
fn refused(status: u16, message: Option<&str>) -> ApiError {
    let mut e = PaymentsError::StripeRefused(Box::default());
    if let PaymentsError::StripeRefused(said) = &mut e {
        said.status = status;
        said.message = message.map(str::to_string);
    }
    ApiError::Payments(e)
}

/// Every error the service can produce carries a code the OpenAPI document lists, and every
/// listed code is produced by some error: this layer's own, and one of each kind the
/// payment functions sort their failures into.
#[test]
fn every_code_is_documented_and_produced() {
    let all = every_error();
    for e in &all {
        assert!(
            ERROR_CODES.contains(&e.code()),
            "{} is not in ERROR_CODES",
            e.code()
        );
        assert!(!e.message().is_empty());
    }
    for code in ERROR_CODES {
        assert!(
            all.iter().any(|e| e.code() == *code),
            "{code} is never produced"
        );
    }
}

/// One error of each kind the service answers.
fn every_error() -> Vec<ApiError> {
    let mut all = vec![
        ApiError::InvalidBody,
        ApiError::BodyTooLarge,
        ApiError::UnsupportedMediaType,
        ApiError::MethodNotAllowed("POST"),
        ApiError::NotFound,
        ApiError::InvalidRequest,
        ApiError::ForbiddenOrigin,
        ApiError::IdempotencyKeyInvalid,
        ApiError::Unauthorized,
        ApiError::RateLimited {
            retry_after_secs: 1,
        },
        ApiError::NotReady("database unreachable"),
        ApiError::RequestTimeout,
        ApiError::Overloaded {
            retry_after_secs: 5,
        },
    ];
    all.extend(one_of_each().into_iter().map(ApiError::Payments));
    all
}

/// The rows of the markdown `contract`'s error table (under its "Error codes" heading):
/// the cells of each row, header and separator left out.
fn error_rows(contract: &str) -> Vec<Vec<&str>> {
    let section = contract
        .split("\n## ")
        .find(|s| s.lines().next().is_some_and(|h| h.contains("Error codes")))
        .expect("docs/contract.md has an \"Error codes\" section");
    let rows = section.lines().filter(|l| l.trim_start().starts_with('|'));
    rows.skip(2)
        .map(|row| row.split('|').map(str::trim).collect())
        .collect()
}

/// Whether `message` is what `template` says, each `{word}` in it standing for any text.
fn fits(template: &str, message: &str) -> bool {
    let mut literals = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let close = rest[open..].find('}').map(|c| open + c);
        let word = close.map(|c| &rest[open + 1..c]);
        match (close, word) {
            (Some(close), Some(w)) if !w.is_empty() && w.chars().all(char::is_alphanumeric) => {
                literals.push(&rest[..open]);
                rest = &rest[close + 1..];
            }
            _ => break,
        }
    }
    if literals.is_empty() {
        return template == message;
    }
    literals.push(rest);
    let (first, last) = (literals[0], literals[literals.len() - 1]);
    let Some(mut left) = message.strip_prefix(first) else {
        return false;
    };
    for middle in &literals[1..literals.len() - 1] {
        match left.find(middle) {
            Some(at) => left = &left[at + middle.len()..],
            None => return false,
        }
    }
    left.ends_with(last)
}

/// docs/contract.md's table says each code's message in Spanish: every message the service
/// answers is one of the texts in backticks of its code's rows, `{…}` standing for what
/// varies (Stripe's own messages, which `stripe_error` passes on, left aside).
#[test]
fn the_contract_shows_every_message_the_service_answers() {
    let rows = error_rows(include_str!("../../../docs/contract.md"));
    for e in every_error() {
        let (code, message) = (e.code(), e.message());
        let texts: Vec<&str> = rows
            .iter()
            .filter(|cells| cells.get(1).and_then(|c| c.split('`').nth(1)) == Some(code))
            .flat_map(|cells| {
                cells
                    .get(3)
                    .copied()
                    .unwrap_or_default()
                    .split('`')
                    .skip(1)
                    .step_by(2)
            })
            .collect();
        if code == "stripe_error" && !texts.iter().any(|t| fits(t, &message)) {
            continue;
        }
        assert!(
            texts.iter().any(|t| fits(t, &message)),
            "{code}: {message:?} is not among docs/contract.md's {texts:?}"
        );
    }
}

#[test]
fn a_template_fits_its_messages_only() {
    assert!(fits(
        "Moneda no soportada: {currency}",
        "Moneda no soportada: xyz"
    ));
    assert!(fits(
        "El monto mínimo para {CUR} es {min}",
        "El monto mínimo para MXN es 10.00"
    ));
    assert!(!fits(
        "El monto mínimo para {CUR} es {min}",
        "El monto máximo para MXN es 10"
    ));
    assert!(fits("No autorizado", "No autorizado"));
    assert!(!fits("No autorizado", "No autorizado."));
    assert!(fits(
        r#"El cuerpo debe ser JSON con la forma {"data": {...}}"#,
        r#"El cuerpo debe ser JSON con la forma {"data": {...}}"#
    ));
}

/// What differs between `table` (code, status) and the error table of the markdown
/// `contract` (the table under its "Error codes" heading: a row per code, or per message of
/// a code; the code in backticks in the first cell, the status in the second). Each
/// difference is a line; none means they agree.
fn differences(table: &[(&str, u16)], contract: &str) -> Vec<String> {
    use std::collections::{BTreeMap, BTreeSet};
    let mut documented: BTreeMap<String, BTreeSet<u16>> = BTreeMap::new();
    for cells in error_rows(contract) {
        let row = cells.join(" | ");
        let code = cells
            .get(1)
            .and_then(|c| c.split('`').nth(1))
            .unwrap_or_else(|| panic!("no code in the row {row}"));
        let status: u16 = cells
            .get(2)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("no status in the row {row}"));
        documented
            .entry(code.to_string())
            .or_default()
            .insert(status);
    }
    let mut found = Vec::new();
    for (code, status) in table {
        match documented.get(*code) {
            None => found.push(format!("{code} is not in docs/contract.md")),
            Some(statuses) if statuses.iter().ne([status]) => found.push(format!(
                "{code} is {status}, docs/contract.md says {statuses:?}"
            )),
            Some(_) => {}
        }
    }
    for code in documented.keys() {
        if !table.iter().any(|(c, _)| c == code) {
            found.push(format!("{code} is documented but never answered"));
        }
    }
    found
}

/// docs/contract.md's table of error codes is this one: the same codes, each with the same
/// status.
#[test]
fn the_contracts_error_table_is_the_services() {
    let contract = include_str!("../../../docs/contract.md");
    let found = differences(&code_statuses(), contract);
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn the_comparison_finds_each_kind_of_difference() {
    let doc = "# x\n\n## 9. Error codes\n\n| code | status | error |\n|---|---|---|\n\
               | `a` | 400 | `A` |\n| `b` (one) | 409 | `B` |\n| `b` (two) | 409 | `B2` |\n\n\
               ## 10. Next\n\n| `z` | 500 | not in the table |\n";
    assert!(differences(&[("a", 400), ("b", 409)], doc).is_empty());
    let missing_here = differences(&[("a", 400)], doc);
    assert_eq!(missing_here, ["b is documented but never answered"]);
    let missing_there = differences(&[("a", 400), ("b", 409), ("c", 404)], doc);
    assert_eq!(missing_there, ["c is not in docs/contract.md"]);
    let other_status = differences(&[("a", 404), ("b", 409)], doc);
    assert_eq!(other_status, ["a is 404, docs/contract.md says {400}"]);
    let split = doc.replace("| `b` (two) | 409 |", "| `b` (two) | 400 |");
    assert_eq!(
        differences(&[("a", 400), ("b", 409)], &split),
        ["b is 409, docs/contract.md says {400, 409}"]
    );
}

#[test]
fn an_exhausted_stripe_budget_is_a_503_with_retry_after_never_a_500() {
    let busy = ApiError::Payments(PaymentsError::StripeBusy {
        retry_after: Duration::from_secs(7),
        maybe_reached: true,
    });
    assert_eq!(
        (busy.status(), busy.code()),
        (StatusCode::SERVICE_UNAVAILABLE, "stripe_busy")
    );
    assert_eq!(
        busy.message(),
        "Demasiadas solicitudes; intente de nuevo en 7 segundos"
    );
    let response = busy.into_response();
    assert_eq!(response.headers()[header::RETRY_AFTER], "7");
}

#[test]
fn faults_of_the_service_are_not_blamed_on_the_database_or_the_caller() {
    let internal = ApiError::Payments(PaymentsError::Internal("create task failed".into()));
    assert_eq!(
        (internal.status(), internal.code()),
        (StatusCode::INTERNAL_SERVER_ERROR, "internal_error")
    );
    assert!(!internal.message().contains("task"), "no internals shown");
}

#[test]
fn stripe_messages_pass_through_and_missing_ones_are_ours() {
    assert_eq!(
        refused(502, Some("Your card was declined.")).message(),
        "Your card was declined."
    );
    assert_eq!(
        refused(502, None).message(),
        "Stripe respondió con el estado HTTP 502"
    );
}
