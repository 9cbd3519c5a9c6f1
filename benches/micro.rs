//! Micro-benchmarks of the pure hot paths: webhook signature verification, amount parsing and
//! conversion, and the request/response envelopes. `cargo bench --bench micro`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use secrecy::SecretString;
use serde_json::{json, Value};
use tmt_payments::http::envelope::parse_envelope;
use tmt_payments::money::{parse_amount, Currency};
use tmt_payments::payments::CreateRequest;
use tmt_payments::stripe::signature::{sign, verify};

fn payload(size: usize) -> Vec<u8> {
    let filler = "x".repeat(size.saturating_sub(120));
    json!({"id": "evt_1", "object": "event", "type": "payment_intent.succeeded", "data": {"object": {"filler": filler}}})
        .to_string()
        .into_bytes()
}

fn signatures(c: &mut Criterion) {
    let mut group = c.benchmark_group("signature_verify");
    let secrets = [SecretString::from("whsec_bench_secret".to_string())];
    let rotated = [
        SecretString::from("whsec_old_secret".to_string()),
        SecretString::from("whsec_bench_secret".to_string()),
    ];
    for size in [1024, 16 * 1024] {
        let body = payload(size);
        let header = sign(&body, "whsec_bench_secret", 1_700_000_000);
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(BenchmarkId::new("one_secret", size), &body, |b, body| {
            b.iter(|| {
                verify(
                    Some(black_box(&header)),
                    black_box(body),
                    &secrets,
                    300,
                    1_700_000_000,
                )
            })
        });
        group.bench_with_input(BenchmarkId::new("two_secrets", size), &body, |b, body| {
            b.iter(|| {
                verify(
                    Some(black_box(&header)),
                    black_box(body),
                    &rotated,
                    300,
                    1_700_000_000,
                )
            })
        });
    }
    group.finish();
}

fn amounts(c: &mut Criterion) {
    let mut group = c.benchmark_group("amount");
    let usd = Currency::parse("usd").unwrap();
    let number: Value = serde_json::from_str("19.999").unwrap();
    let text = json!("1.005");
    group.bench_function("parse_number", |b| {
        b.iter(|| parse_amount(black_box(&number)))
    });
    group.bench_function("parse_string", |b| {
        b.iter(|| parse_amount(black_box(&text)))
    });
    let amount = parse_amount(&number).unwrap();
    group.bench_function("to_minor_usd", |b| {
        b.iter(|| usd.to_minor(black_box(amount)))
    });
    group.bench_function("to_major_json_usd", |b| {
        b.iter(|| usd.to_major_json(black_box(2000)))
    });
    group.bench_function("currency_lookup", |b| {
        b.iter(|| Currency::parse(black_box("KWD")))
    });
    group.finish();
}

fn envelopes(c: &mut Criterion) {
    let mut group = c.benchmark_group("envelope");
    let create =
        json!({"data": {"amount": "25.50", "currency": "eur", "description": "Compra de tickets",
                                 "metadata": {"order": "A-1001", "seats": 2, "vip": true}}})
        .to_string()
        .into_bytes();
    group.bench_function("parse_create", |b| {
        b.iter(|| parse_envelope(black_box(&create)))
    });
    let data = parse_envelope(&create).unwrap();
    group.bench_function("validate_create", |b| {
        b.iter(|| CreateRequest::parse(black_box(&data)))
    });
    let request = CreateRequest::parse(&data).unwrap();
    group.bench_function("create_form", |b| {
        b.iter(|| {
            request
                .to_form(black_box("2026-01-01T00:00:00.000Z"), None)
                .encode()
        })
    });
    let success = json!({"message": "Procesado", "status": 200, "data": {"success": true,
        "clientSecret": "pi_3PxyzABCDEF_secret_abcdefghijklmnop", "paymentIntentId": "pi_3PxyzABCDEF",
        "amount": serde_json::Number::from_string_unchecked("25.50".into()), "currency": "eur"}});
    group.bench_function("serialise_success", |b| {
        b.iter(|| serde_json::to_vec(black_box(&success)))
    });
    group.finish();
}

criterion_group!(benches, signatures, amounts, envelopes);
criterion_main!(benches);
