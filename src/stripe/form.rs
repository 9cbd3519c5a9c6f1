//! `application/x-www-form-urlencoded` with Stripe's bracket nesting (`metadata[k]=v`,
//! `expand[0]=x`). Brackets stay literal, as Stripe's own libraries send them; everything else
//! in keys and values is percent-encoded.

use url::form_urlencoded::byte_serialize;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Form {
    pairs: Vec<(String, String)>,
}

impl Form {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `key=value`; `key` may already contain bracket nesting (`metadata[order]`).
    pub fn push(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.pairs.push((key.into(), value.into()));
        self
    }

    /// Adds a nested field: `nested("metadata", "order", "1")` is `metadata[order]=1`.
    pub fn nested(&mut self, parent: &str, child: &str, value: impl Into<String>) -> &mut Self {
        self.push(format!("{parent}[{child}]"), value)
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        for (i, (key, value)) in self.pairs.iter().enumerate() {
            if i > 0 {
                out.push('&');
            }
            encode_key(key, &mut out);
            out.push('=');
            out.extend(byte_serialize(value.as_bytes()));
        }
        out
    }
}

fn encode_key(key: &str, out: &mut String) {
    let mut rest = key;
    while let Some(i) = rest.find(['[', ']']) {
        out.extend(byte_serialize(&rest.as_bytes()[..i]));
        out.push_str(&rest[i..i + 1]);
        rest = &rest[i + 1..];
    }
    out.extend(byte_serialize(rest.as_bytes()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_and_escaping() {
        let mut f = Form::new();
        f.push("amount", "5000")
            .nested("metadata", "order id", "a&b=c")
            .nested("automatic_payment_methods", "enabled", "true")
            .push("description", "Compra de tickets ñ");
        assert_eq!(
            f.encode(),
            "amount=5000&metadata[order+id]=a%26b%3Dc&automatic_payment_methods[enabled]=true\
             &description=Compra+de+tickets+%C3%B1"
        );
    }
}
