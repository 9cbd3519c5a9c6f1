//! Connect's money: where a payment's money goes once its charge is captured (a destination
//! charge's Transfer, and the payment that makes on the connected account; an Application Fee
//! taken from the connected account), and what refunds and reversals take back, in proportion.
//! The payments' modules and Connect's resources call in here; this module calls none of them.

use serde_json::{json, Map, Value};

use crate::balance;
use crate::ctx::Ctx;
use crate::error::{
    below_one, invalid, invalid_hash, invalid_integer, missing_required, StripeErr,
};
use crate::objects::connect::{self as shapes, NewFee, NewReversal, NewTransfer, APPLICATION};
use crate::objects::{self, new_id, NewRefund};
use crate::params::{check_known_as, integer_param, string_param};
use crate::store::{now, Kind};

/// What creating a PaymentIntent takes for Connect, besides what every PaymentIntent takes.
pub(crate) const INTENT_PARAMS: &[&str] = &[
    "application_fee_amount",
    "transfer_data",
    "on_behalf_of",
    "transfer_group",
];

/// `part` of `whole` applied to `total`, rounded half up: `share(total, whole, whole) == total`.
///
/// Refunds and reversals take back a share of a fee or transfer by what has been refunded
/// (reversed) so far in all, not by each amount alone, so that partial refunds always add up
/// to exactly the fee or transfer once the whole charge is refunded.
pub(crate) fn share(total: i64, part: i64, whole: i64) -> i64 {
    if whole <= 0 {
        return 0;
    }
    let (total, part, whole) = (
        i128::from(total),
        i128::from(part.clamp(0, whole)),
        i128::from(whole),
    );
    i64::try_from((2 * total * part + whole) / (2 * whole)).unwrap_or(0)
}

/// What of `total` goes back when what was refunded (reversed) of `whole` goes from `before` to
/// `after`: the difference of their shares, at most what is `left`.
fn step(total: i64, left: i64, before: i64, after: i64, whole: i64) -> i64 {
    (share(total, after, whole) - share(total, before, whole)).min(left)
}

/// `amount` more of `object` (a transfer, a fee, a payment) was taken back: `taken` (its
/// `amount_reversed` or `amount_refunded`) grows by it, and `all` (`reversed`, `refunded`)
/// says whether that is all of its `amount`.
fn take_back(object: &mut Value, taken: &str, all: &str, amount: i64) {
    let total = object[taken].as_i64().unwrap_or(0) + amount;
    object[taken] = json!(total);
    object[all] = json!(total >= object["amount"].as_i64().unwrap_or(0));
}

/// The `amount` of `params` that a reversal or a fee refund takes back: what is `left` when not
/// given; refused below 1, when nothing is left (`done` says so) and above what is left (of
/// `what`).
pub(crate) fn amount_back(
    params: &Map<String, Value>,
    left: i64,
    done: String,
    what: &str,
) -> Result<i64, StripeErr> {
    let amount = integer_param::<i64>(params, "amount")?;
    if amount.is_some_and(|a| a < 1) {
        return Err(below_one("amount"));
    }
    if left <= 0 {
        return Err(invalid(done, None, None));
    }
    let amount = amount.unwrap_or(left);
    if amount > left {
        return Err(invalid(
            format!("The amount ({amount}) is greater than what is left of {what} ({left})."),
            Some("amount"),
            Some("amount_too_large"),
        ));
    }
    Ok(amount)
}

/// Whether the account's `capability` is active.
pub(crate) fn active(account: &Value, capability: &str) -> bool {
    account["capabilities"][capability] == "active"
}

/// Stripe's refusal of a destination that cannot receive transfers.
fn no_transfers(param: &str) -> StripeErr {
    invalid(
        "Your destination account needs to have at least one of the following capabilities \
         enabled: transfers, crypto_transfers, legacy_payments",
        Some(param),
        Some("insufficient_capabilities_for_transfer"),
    )
}

/// The connected account `id` may receive transfers (named by `param` in errors).
pub(crate) fn check_destination(ctx: &Ctx<'_>, id: &str, param: &str) -> Result<(), StripeErr> {
    let account = ctx.connected_account(id).ok_or_else(|| {
        invalid(
            format!("No such destination: '{id}'"),
            Some(param),
            Some("resource_missing"),
        )
    })?;
    if active(account, "transfers") {
        Ok(())
    } else {
        Err(no_transfers(param))
    }
}

/// Sets the Connect fields of a new PaymentIntent from `params`: `transfer_data` (a destination
/// charge), `application_fee_amount` (with a destination, or on the connected account the
/// request acts for: a direct charge), `on_behalf_of` and `transfer_group`.
pub(crate) fn route_intent(
    ctx: &Ctx<'_>,
    params: &Map<String, Value>,
    pi: &mut Value,
) -> Result<(), StripeErr> {
    let amount = pi["amount"].as_i64().unwrap_or(0);
    let fee = integer_param::<i64>(params, "application_fee_amount")?;
    if fee.is_some_and(|f| f < 0) {
        return Err(invalid(
            "This value must be greater than or equal to 0.",
            Some("application_fee_amount"),
            None,
        ));
    }
    let transfer = match params.get("transfer_data") {
        None => None,
        Some(Value::Object(data)) => {
            check_known_as(data, &["destination", "amount"], |k| {
                format!("transfer_data[{k}]")
            })?;
            let destination = data
                .get("destination")
                .and_then(Value::as_str)
                .ok_or_else(|| missing_required("transfer_data[destination]"))?;
            let part = match data.get("amount") {
                None => None,
                Some(given) => {
                    let text = given.as_str().unwrap_or_default();
                    let n = text
                        .parse::<i64>()
                        .map_err(|_| invalid_integer(text, "transfer_data[amount]"))?;
                    if !(1..=amount).contains(&n) {
                        return Err(invalid(
                            format!(
                                "transfer_data[amount] must be between 1 and the PaymentIntent's \
                                 amount ({amount})."
                            ),
                            Some("transfer_data[amount]"),
                            None,
                        ));
                    }
                    Some(n)
                }
            };
            check_destination(ctx, destination, "transfer_data[destination]")?;
            Some((destination.to_string(), part))
        }
        Some(_) => return Err(invalid_hash("transfer_data")),
    };
    if ctx.account().is_some() && transfer.is_some() {
        return Err(invalid(
            "transfer_data cannot be used on a PaymentIntent made on a connected account \
             (Stripe-Account): make it on the platform.",
            Some("transfer_data"),
            None,
        ));
    }
    if let Some(fee) = fee {
        let refused = match (ctx.account(), &transfer) {
            (None, None) => Some(
                "Can only apply an application_fee_amount when the PaymentIntent is attempting a \
                 direct payment (using an OAuth key or Stripe-Account header) or destination \
                 payment (using `transfer_data[destination]`)."
                    .to_string(),
            ),
            (Some(_), _) if fee >= amount => Some(format!(
                "The application fee ({fee}) must be less than the amount of the charge ({amount})."
            )),
            (None, Some(_)) if fee > amount => Some(format!(
                "The application fee ({fee}) cannot be greater than the amount of the charge \
                 ({amount})."
            )),
            (None, Some((_, Some(_)))) => Some(
                "You cannot use both application_fee_amount and transfer_data[amount].".to_string(),
            ),
            _ => None,
        };
        if let Some(message) = refused {
            return Err(invalid(message, Some("application_fee_amount"), None));
        }
        pi["application_fee_amount"] = json!(fee);
    }
    if let Some(on_behalf_of) = string_param(params, "on_behalf_of")? {
        if ctx.connected_account(on_behalf_of).is_none() {
            return Err(invalid(
                format!("No such account: '{on_behalf_of}'"),
                Some("on_behalf_of"),
                Some("resource_missing"),
            ));
        }
        if let Some((destination, _)) = &transfer {
            if destination != on_behalf_of {
                return Err(invalid(
                    "on_behalf_of must be the same account as transfer_data[destination].",
                    Some("on_behalf_of"),
                    None,
                ));
            }
        }
        pi["on_behalf_of"] = json!(on_behalf_of);
    }
    pi["transfer_group"] = json!(string_param(params, "transfer_group")?);
    if let Some((destination, part)) = transfer {
        let mut data = json!({"destination": destination});
        if let Some(part) = part {
            data["amount"] = json!(part);
        }
        pi["transfer_data"] = data;
        if pi["transfer_group"].is_null() {
            // Stripe groups a destination charge with its transfer.
            pi["transfer_group"] = json!(format!("group_{}", pi["id"].as_str().unwrap_or("")));
        }
    }
    if ctx.account().is_some() {
        pi["application"] = json!(APPLICATION);
    }
    Ok(())
}

/// What a confirmation checks of a Connect PaymentIntent: the account that is the merchant (a
/// direct charge's, or `on_behalf_of`) can take charges, and a destination can still receive
/// its transfer.
pub(crate) fn check_can_charge(ctx: &Ctx<'_>, pi: &Value) -> Result<(), StripeErr> {
    if let Some(destination) = pi["transfer_data"]["destination"].as_str() {
        check_destination(ctx, destination, "transfer_data[destination]")?;
    }
    let merchant = ctx.account().or(pi["on_behalf_of"].as_str());
    let Some(merchant) = merchant else {
        return Ok(());
    };
    let can_charge = ctx
        .connected_account(merchant)
        .is_some_and(|a| a["charges_enabled"] == true && active(a, "card_payments"));
    if can_charge {
        Ok(())
    } else {
        Err(invalid(
            format!(
                "Your account cannot currently make charges. To find out why charge creation is \
                 currently disabled, look at the `requirements.disabled_reason` property on this \
                 account (/v1/accounts/{merchant})."
            ),
            None,
            None,
        ))
    }
}

/// A captured charge of `pi` moves its Connect money: a destination charge transfers its
/// amount (or `transfer_data[amount]`) to the destination, and an `application_fee_amount`
/// is taken from the connected account, for the platform. Sets the charge's `transfer` and
/// `application_fee`.
pub(crate) fn settle(ctx: &mut Ctx<'_>, pi: &Value, charge: &mut Value) {
    let captured = charge["amount_captured"].as_i64().unwrap_or(0);
    let fee = pi["application_fee_amount"]
        .as_i64()
        .map(|f| f.min(captured))
        .filter(|f| *f > 0);
    let charge_id = charge["id"].as_str().unwrap_or_default().to_string();
    let currency = charge["currency"].clone();
    if let Some(destination) = pi["transfer_data"]["destination"].as_str() {
        let amount = pi["transfer_data"]["amount"]
            .as_i64()
            .map_or(captured, |a| a.min(captured));
        let transfer = send(
            ctx,
            NewTransfer {
                amount,
                currency: &currency,
                destination,
                source_transaction: Some(&charge_id),
                transfer_group: pi["transfer_group"].clone(),
                description: None,
                metadata: Map::new(),
            },
        );
        charge["transfer"] = transfer["id"].clone();
        if let Some(fee) = fee {
            let payment = transfer["destination_payment"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let paid_txn = ctx.on(Some(destination), |ctx| {
                ctx.find(Kind::Charge, &payment)
                    .and_then(|paid| paid["balance_transaction"].as_str())
                    .map(str::to_string)
            });
            let fee = take_fee(
                ctx,
                NewFee {
                    amount: fee,
                    currency: &currency,
                    account: destination,
                    charge: &payment,
                    originating_transaction: Some(&charge_id),
                    created: now(),
                },
                paid_txn.as_deref().unwrap_or_default(),
            );
            charge["application_fee"] = fee["id"].clone();
            ctx.on(Some(destination), |ctx| {
                if let Some(mut paid) = ctx.find(Kind::Charge, &payment).cloned() {
                    paid["application_fee"] = fee["id"].clone();
                    paid["application_fee_amount"] = fee["amount"].clone();
                    ctx.put(Kind::Charge, paid);
                }
            });
        }
    } else if let (Some(account), Some(fee)) = (ctx.account().map(str::to_string), fee) {
        let charge_txn = charge["balance_transaction"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let fee = take_fee(
            ctx,
            NewFee {
                amount: fee,
                currency: &currency,
                account: &account,
                charge: &charge_id,
                originating_transaction: None,
                created: now(),
            },
            &charge_txn,
        );
        charge["application_fee"] = fee["id"].clone();
    }
}

/// Transfers from the platform to a connected account: the Transfer (the platform's, event
/// `transfer.created`) and the payment it makes on the account (`py_…`).
pub(crate) fn send(ctx: &mut Ctx<'_>, t: NewTransfer<'_>) -> Value {
    let created = now();
    let payment = new_id("py");
    let (amount, currency, destination) = (t.amount, t.currency.clone(), t.destination.to_string());
    let transfer = shapes::transfer(t, &payment, created);
    let transfer_id = transfer["id"].as_str().unwrap_or_default();
    let paid = shapes::destination_payment(&payment, amount, &currency, transfer_id, created);
    balance::transfer(ctx, &transfer, &paid);
    ctx.on(Some(&destination), |ctx| ctx.put(Kind::Charge, paid));
    ctx.on(None, |ctx| {
        ctx.put(Kind::Transfer, transfer.clone());
        ctx.emit("transfer.created", transfer.clone());
    });
    transfer
}

/// Takes an application fee from a connected account, for the platform (event
/// `application_fee.created`), as a fee of the account's balance transaction `txn`.
fn take_fee(ctx: &mut Ctx<'_>, new: NewFee<'_>, txn: &str) -> Value {
    let fee = shapes::application_fee(new);
    balance::application_fee(ctx, &fee, txn);
    ctx.on(None, |ctx| {
        ctx.put(Kind::ApplicationFee, fee.clone());
        ctx.emit("application_fee.created", fee.clone());
    });
    fee
}

/// What a refund of a Connect charge takes back besides the buyer's money.
pub(crate) struct Giving {
    /// `refund_application_fee`: the platform gives back its fee, in proportion.
    pub application_fee: bool,
    /// `reverse_transfer`: the destination gives back its transfer, in proportion.
    pub transfer: bool,
}

/// After `refund` of `charge`, which had `before` refunded already: reverses the charge's
/// transfer and refunds its application fee in proportion to what is now refunded, as
/// `giving` asks. Sets the refund's `transfer_reversal`.
pub(crate) fn after_refund(
    ctx: &mut Ctx<'_>,
    charge: &Value,
    refund: &mut Value,
    before: i64,
    giving: &Giving,
) {
    let whole = charge["amount_captured"].as_i64().unwrap_or(0);
    let after = before + refund["amount"].as_i64().unwrap_or(0);
    let refund_id = refund["id"].as_str().unwrap_or_default().to_string();
    if let (true, Some(transfer_id)) = (giving.transfer, charge["transfer"].as_str()) {
        if let Some((transfer, left)) = transfer_left(ctx, transfer_id) {
            let total = transfer["amount"].as_i64().unwrap_or(0);
            let amount = step(total, left, before, after, whole);
            if amount > 0 {
                let reversal = reverse(ctx, transfer_id, amount, Some(&refund_id), Map::new());
                refund["transfer_reversal"] = reversal["id"].clone();
            }
        }
    }
    if let (true, Some(fee_id)) = (giving.application_fee, charge["application_fee"].as_str()) {
        refund_fee_share(ctx, fee_id, before, after, whole);
    }
}

/// Refunds the platform's fee `fee_id` by its share of what went back of the `whole` it was
/// taken on (a charge refunded, a transfer reversed) from `before` to `after`.
pub(crate) fn refund_fee_share(
    ctx: &mut Ctx<'_>,
    fee_id: &str,
    before: i64,
    after: i64,
    whole: i64,
) {
    let fee = ctx.on(None, |ctx| ctx.find(Kind::ApplicationFee, fee_id).cloned());
    if let Some(fee) = fee {
        let total = fee["amount"].as_i64().unwrap_or(0);
        let left = total - fee["amount_refunded"].as_i64().unwrap_or(0);
        let amount = step(total, left, before, after, whole);
        if amount > 0 {
            refund_fee(ctx, fee_id, amount, Map::new());
        }
    }
}

/// What of the platform's transfer `transfer_id` is left to reverse, and the transfer.
pub(crate) fn transfer_left(ctx: &mut Ctx<'_>, transfer_id: &str) -> Option<(Value, i64)> {
    let transfer = ctx.on(None, |ctx| ctx.find(Kind::Transfer, transfer_id).cloned())?;
    let left = transfer["amount"].as_i64().unwrap_or(0)
        - transfer["amount_reversed"].as_i64().unwrap_or(0);
    Some((transfer, left))
}

/// Reverses `amount` (at most what is left) of the platform's transfer: a Transfer Reversal,
/// a refund of the transfer's payment on the destination account, and the transfer's
/// `amount_reversed`, `reversed` and `reversals` (event `transfer.reversed`).
pub(crate) fn reverse(
    ctx: &mut Ctx<'_>,
    transfer_id: &str,
    amount: i64,
    source_refund: Option<&str>,
    metadata: Map<String, Value>,
) -> Value {
    let Some((mut transfer, _)) = transfer_left(ctx, transfer_id) else {
        return Value::Null;
    };
    let created = now();
    let destination = transfer["destination"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let payment = transfer["destination_payment"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let payment_refund = ctx.on(Some(&destination), |ctx| {
        let mut paid = ctx.find(Kind::Charge, &payment).cloned()?;
        let mut refund = objects::refund(NewRefund {
            charge: &paid,
            amount,
            reason: None,
            metadata: Map::new(),
            status: "succeeded",
            created,
        });
        refund["id"] = json!(new_id("pyr"));
        refund["destination_details"] = Value::Null;
        ctx.put(Kind::Refund, refund.clone());
        take_back(&mut paid, "amount_refunded", "refunded", amount);
        ctx.put(Kind::Charge, paid);
        Some(refund)
    });
    let reversal = shapes::transfer_reversal(NewReversal {
        transfer: &transfer,
        amount,
        source_refund,
        destination_payment_refund: payment_refund.as_ref().and_then(|r| r["id"].as_str()),
        metadata,
        created,
    });
    balance::reversal(ctx, &reversal, &destination, payment_refund.as_ref());
    ctx.on(None, |ctx| {
        give_back(ctx, &REVERSAL, &mut transfer, &reversal, amount)
    });
    reversal
}

/// Refunds `amount` (at most what is left) of the platform's application fee `fee_id` to its
/// connected account: a Fee Refund, and the fee's `amount_refunded`, `refunded` and `refunds`
/// (event `application_fee.refunded`).
pub(crate) fn refund_fee(
    ctx: &mut Ctx<'_>,
    fee_id: &str,
    amount: i64,
    metadata: Map<String, Value>,
) -> Value {
    ctx.on(None, |ctx| {
        let Some(mut fee) = ctx.find(Kind::ApplicationFee, fee_id).cloned() else {
            return Value::Null;
        };
        let refund = shapes::fee_refund(&fee, amount, metadata, now());
        balance::fee_refund(ctx, &refund, &fee);
        give_back(ctx, &FEE_REFUND, &mut fee, &refund, amount);
        refund
    })
}

/// What taking money back from a transfer or an application fee changes: the object given back
/// (`child`, naming its parent in `link`), the parent's total and flag (see [`take_back`]), the
/// parent's embedded `list` of them (listed at `/v1/{path}/{parent}/{list}`), and the event that
/// announces the parent.
struct GivenBack {
    parent: Kind,
    path: &'static str,
    child: Kind,
    link: &'static str,
    taken: &'static str,
    all: &'static str,
    list: &'static str,
    event: &'static str,
}

const REVERSAL: GivenBack = GivenBack {
    parent: Kind::Transfer,
    path: "transfers",
    child: Kind::TransferReversal,
    link: "transfer",
    taken: "amount_reversed",
    all: "reversed",
    list: "reversals",
    event: "transfer.reversed",
};

const FEE_REFUND: GivenBack = GivenBack {
    parent: Kind::ApplicationFee,
    path: "application_fees",
    child: Kind::FeeRefund,
    link: "fee",
    taken: "amount_refunded",
    all: "refunded",
    list: "refunds",
    event: "application_fee.refunded",
};

/// Records `child`, which gives `amount` of `parent` back, and the parent as it is now.
fn give_back(ctx: &mut Ctx<'_>, how: &GivenBack, parent: &mut Value, child: &Value, amount: i64) {
    ctx.put(how.child, child.clone());
    take_back(parent, how.taken, how.all, amount);
    let id = parent["id"].as_str().unwrap_or_default().to_string();
    // Every child of the parent, newest first.
    let mut items: Vec<Value> = ctx
        .all(how.child)
        .filter(|o| o[how.link] == id)
        .cloned()
        .collect();
    items.reverse();
    let url = format!("/v1/{}/{id}/{}", how.path, how.list);
    parent[how.list] = shapes::embedded_list(url, items);
    ctx.put(how.parent, parent.clone());
    ctx.emit(how.event, parent.clone());
}

#[cfg(test)]
mod tests {
    use super::share;
    use proptest::prelude::*;

    #[test]
    fn shares_round_half_up() {
        assert_eq!(share(100, 1, 2), 50);
        assert_eq!(share(101, 1, 2), 51);
        assert_eq!(share(3, 1, 3), 1);
        assert_eq!(share(5, 1, 3), 2);
        assert_eq!(share(5, 0, 3), 0);
        assert_eq!(share(5, 3, 3), 5);
        assert_eq!(share(5, 1, 0), 0);
    }

    proptest! {
        /// Refunds in any number of parts take back exactly the whole fee once the whole charge
        /// is refunded, never more than it at any step, and never less than nothing.
        #[test]
        fn shares_of_partial_refunds_add_up(
            total in 0i64..1_000_000,
            whole in 1i64..100_000_000,
            cuts in proptest::collection::vec(0i64..100_000_000, 0..6),
        ) {
            let mut points: Vec<i64> = cuts.into_iter().map(|c| c % (whole + 1)).collect();
            points.push(0);
            points.push(whole);
            points.sort_unstable();
            let mut given = 0;
            for pair in points.windows(2) {
                let step = share(total, pair[1], whole) - share(total, pair[0], whole);
                prop_assert!(step >= 0);
                given += step;
                prop_assert!(given <= total);
            }
            prop_assert_eq!(given, total);
        }
    }
}
