//! The admin listener: `/metrics` (Prometheus text), `/healthz` (process
//! alive), `/readyz` (able to serve proxied traffic; `?strict=1` → 503 when a
//! component is down).

use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;

use crate::state::AppState;
use crate::store::Db;

pub struct AdminApp {
    state: AppState,
}

impl AdminApp {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }

    fn metrics(&self) -> Vec<u8> {
        let m = &self.state.metrics;
        for (upstream, backend, healthy) in self.state.upstreams.health() {
            m.upstream_healthy
                .with_label_values(&[upstream.as_str(), backend.as_str()])
                .set(i64::from(healthy));
        }
        for (kind, count) in self.state.revocations.counts() {
            m.revocations.with_label_values(&[kind]).set(count as i64);
        }
        let syncs = self.state.accounts.opened_db().map_or(0, Db::syncs);
        m.database_syncs
            .inc_by(syncs.saturating_sub(m.database_syncs.get()));
        m.render()
    }

    async fn readiness(&self, strict: bool) -> (u16, Vec<u8>) {
        let database_up = self.state.accounts.database_ready().await;
        let database = if database_up { "up" } else { "down" };
        // `check` refuses [redis] until several-instance support lands.
        let redis = "not_configured";
        let mut upstreams = serde_json::Map::new();
        for (upstream, _, healthy) in self.state.upstreams.health() {
            let entry = upstreams
                .entry(upstream)
                .or_insert_with(|| serde_json::json!({"healthy": 0, "total": 0}));
            entry["total"] = (entry["total"].as_u64().unwrap_or(0) + 1).into();
            if healthy {
                entry["healthy"] = (entry["healthy"].as_u64().unwrap_or(0) + 1).into();
            }
        }
        // Proxied traffic does not need the database, so readiness stays
        // 200 while it is down; `?strict=1` reports it as 503.
        let degraded = !database_up;
        let body = serde_json::json!({
            "status": if degraded { "degraded" } else { "ok" },
            "database": database,
            "redis": redis,
            "upstreams": upstreams,
        });
        let status = if strict && degraded { 503 } else { 200 };
        (status, serde_json::to_vec(&body).unwrap_or_default())
    }
}

fn response(status: u16, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    Response::builder()
        .status(status)
        .header("Content-Type", content_type)
        .header("Content-Length", body.len())
        .header("Cache-Control", "no-store")
        .body(body)
        .unwrap_or_default()
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let uri = &session.req_header().uri;
        let strict = uri
            .query()
            .is_some_and(|q| q.split('&').any(|p| p == "strict=1" || p == "strict=true"));
        match uri.path() {
            "/metrics" => response(200, "text/plain; version=0.0.4", self.metrics()),
            "/healthz" => response(200, "application/json", br#"{"status":"ok"}"#.to_vec()),
            "/readyz" => {
                let (status, body) = self.readiness(strict).await;
                response(status, "application/json", body)
            }
            _ => response(
                404,
                "application/problem+json",
                br#"{"type":"about:blank","title":"Not Found","status":404,"detail":"Admin endpoints: /metrics, /healthz, /readyz","code":"not_found"}"#.to_vec(),
            ),
        }
    }
}
