//! [`ApiJson`]: the API's JSON body extractor. Like `web::Json` (same size limit,
//! content type and syntax errors, from `JsonConfig` in startup.rs), but a body that is
//! JSON of the wrong shape names the member at fault: 400 `invalid_json` with
//! `"fields": {"discount.amount": "invalid type: …"}` — missing, unknown and mistyped
//! members alike — found by `serde_path_to_error`.

use std::future::Future;
use std::pin::Pin;

use actix_web::{web, FromRequest, HttpRequest};
use serde::de::DeserializeOwned;

use super::error::{AppError, ErrorCode};

/// A JSON body of type `T`; derefs to it.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T> ApiJson<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for ApiJson<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for ApiJson<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        // The syntax is read by `web::Json` (its config's limit and errors); the shape is
        // ours. A body this size parses twice in microseconds.
        let value = web::Json::<serde_json::Value>::from_request(req, payload);
        Box::pin(async move {
            let value = value.await?.into_inner();
            from_value(value).map(ApiJson).map_err(Into::into)
        })
    }
}

/// A body read by hand (one that may be empty) as a `T`, with [`ApiJson`]'s errors.
pub fn from_slice<T: DeserializeOwned>(body: &[u8]) -> Result<T, AppError> {
    let value = serde_json::from_slice(body)
        .map_err(|e| AppError::new(ErrorCode::InvalidJson, e.to_string()))?;
    from_value(value)
}

/// `value` as a `T`, or 400 `invalid_json` naming the member at fault.
pub fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, AppError> {
    serde_path_to_error::deserialize(value).map_err(|e| shape_error(&e))
}

fn shape_error(e: &serde_path_to_error::Error<serde_json::Error>) -> AppError {
    let inner = e.inner().to_string();
    let field = field_of(&e.path().to_string(), &inner);
    let message = match &field {
        Some(name) if !inner.contains(&format!("`{name}`")) => format!("{name}: {inner}"),
        _ => inner.clone(),
    };
    let mut error = AppError::new(ErrorCode::InvalidJson, message);
    error.fields = field.map(|name| [(name, inner)].into_iter().collect());
    error
}

/// The member an error is about: the path where it happened, and for a missing member
/// (reported by the object that should hold it) that member's name too.
fn field_of(path: &str, message: &str) -> Option<String> {
    let path = path.trim_start_matches('.');
    let named = ["missing field `", "unknown field `"]
        .iter()
        .find_map(|p| message.strip_prefix(p))
        .and_then(|rest| rest.split('`').next())
        .filter(|name| !name.is_empty());
    // An unknown member's path already ends with it; a missing one's is its object's.
    match (path.is_empty() || path == "?", named) {
        (true, Some(name)) => Some(name.to_owned()),
        (false, Some(name)) if path == name || path.ends_with(&format!(".{name}")) => {
            Some(path.to_owned())
        }
        (false, Some(name)) => Some(format!("{path}.{name}")),
        (false, None) => Some(path.to_owned()),
        (true, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        name: String,
        #[serde(default)]
        inner: Option<Inner>,
        #[serde(default)]
        list: Vec<i64>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        amount: i64,
    }

    fn fields(json: &str) -> Option<Vec<String>> {
        let value = serde_json::from_str(json).unwrap();
        let e = from_value::<Outer>(value).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidJson);
        e.fields.map(|f| f.into_keys().collect())
    }

    #[test]
    fn the_member_at_fault_is_named() {
        let one = |name: &str| Some(vec![name.to_owned()]);
        assert_eq!(fields("{}"), one("name"));
        assert_eq!(fields(r#"{"name":1}"#), one("name"));
        assert_eq!(fields(r#"{"name":"x","nmae":1}"#), one("nmae"));
        assert_eq!(fields(r#"{"name":"x","inner":{}}"#), one("inner.amount"));
        assert_eq!(
            fields(r#"{"name":"x","inner":{"amount":"1"}}"#),
            one("inner.amount")
        );
        assert_eq!(
            fields(r#"{"name":"x","inner":{"amount":1,"x":2}}"#),
            one("inner.x")
        );
        assert_eq!(fields(r#"{"name":"x","list":[1,"2"]}"#), one("list[1]"));
        // Not an object at all: no member to name.
        assert_eq!(fields("[]"), None);
        let value = serde_json::json!({"name": 5});
        let e = from_value::<Outer>(value).unwrap_err();
        assert!(e.message.starts_with("name: invalid type"), "{}", e.message);
    }
}
