//! Small HTTP helpers for the account suites.

use serde_json::Value;

/// A response read to the end.
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}

pub async fn send(rb: reqwest::RequestBuilder) -> Resp {
    let r = rb.send().await.expect("request sent");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap_or_default();
    Resp {
        status,
        headers,
        text,
    }
}

/// Asserts a problem response with `status` and `code`.
pub fn problem(r: &Resp, status: u16, code: &str) {
    assert_eq!(r.status, status, "status; body: {}", r.text);
    assert_eq!(r.json()["code"], code, "body: {}", r.text);
}

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// A 422 naming `field`.
pub fn assert_field(r: &Resp, field: &str, ctx: &str) {
    problem(r, 422, "validation_failed");
    assert_eq!(r.json()["field"], field, "{ctx}: {}", r.text);
}
