//! `GET /api/v1/tenant`: the tenant the presented API key belongs to.

use actix_web::HttpResponse;
use serde_json::json;

use super::auth::ApiAuth;

pub async fn show(auth: ApiAuth) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "tenant": {"id": auth.tenant_id, "name": auth.tenant_name},
        "key": {"id": auth.key_id, "scopes": auth.scopes},
    }))
}
