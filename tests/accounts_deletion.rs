//! Account deletion from the outside: scheduling (password, every session
//! and API key stops at once, one date however often it is asked, a mail),
//! the status, cancelling, the last-owner rule, and the purge the
//! maintenance job runs once the grace period is over on the gateway's
//! injectable clock (account, keys, memberships and sole-member orgs gone,
//! the address free again, the audit trail kept), also across a restart.
//! Every test runs on each database backend.

mod common;

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use common::accounts::{
    accounts, api, assert_revoked, login, login_as, refresh, register, Tokens, PASSWORD, UA,
};
use common::http::{bearer, problem, send, Resp};
use common::keys::{key_routes, new_key, superuser, with_key};
use common::mail::{mails_to, MAIL_FILE};
use common::orgs::{add, create_org, get, member_roles, set_role, user};
use common::recovery::nth_with;
use common::*;
use serde_json::{json, Value};

const DELETION_SUBJECT: &str = "Your account will be deleted";

/// A gateway with a one-hour grace, a purge every 200 ms, mail to files,
/// `/api/**` (JWT) and `/k/**` (any credential, e.g. an API key).
async fn start(backend: &Backend, echo: &Echo) -> TestGateway {
    let extra = format!("deletion_grace = \"1h\"\npurge_interval = \"200ms\"\n{MAIL_FILE}");
    TestGateway::start(&format!(
        "{}{}{}",
        backend.config(),
        accounts(&extra),
        key_routes(echo)
    ))
    .await
}

async fn schedule(gw: &TestGateway, token: &str, password: &str) -> Resp {
    send(
        client()
            .post(gw.url("/auth/account/delete"))
            .header("Authorization", bearer(token))
            .json(&json!({ "password": password })),
    )
    .await
}

/// Schedules the deletion, asserting 202; returns `scheduled_for`.
async fn schedule_ok(gw: &TestGateway, token: &str) -> String {
    let r = schedule(gw, token, PASSWORD).await;
    assert_eq!(r.status, 202, "schedule: {}", r.text);
    r.json()["scheduled_for"]
        .as_str()
        .unwrap_or_else(|| panic!("scheduled_for: {}", r.text))
        .to_string()
}

async fn cancel(gw: &TestGateway, token: &str) -> Resp {
    send(
        client()
            .post(gw.url("/auth/account/delete/cancel"))
            .header("Authorization", bearer(token)),
    )
    .await
}

/// `GET /auth/account/delete` answered 200: the `scheduled_for` value.
async fn status(gw: &TestGateway, token: &str) -> Value {
    let r = get(gw, "/auth/account/delete", token).await;
    assert_eq!(r.status, 200, "status: {}", r.text);
    let body = r.json();
    assert!(
        body.as_object()
            .is_some_and(|o| o.contains_key("scheduled_for")),
        "{body}"
    );
    body["scheduled_for"].clone()
}

fn parse_time(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("not RFC 3339: {s}: {e}"))
        .with_timezone(&Utc)
}

fn advance(gw: &TestGateway, minutes: i64) {
    gw.state.accounts.clock.advance(Duration::minutes(minutes));
}

/// Moves the clock `minutes` on (past the grace of `email`, scheduled for
/// deletion) and waits (up to 10 s) until the purge has removed it, then
/// asserts its login answers 401 invalid_credentials. Polls `GET /auth/me`
/// with a session opened before the clock moved (200 until the purge ends
/// it) rather than logging in again and again, which would race the purge.
async fn purge_after(gw: &TestGateway, email: &str, minutes: i64) {
    let probe = login(gw, email).await;
    advance(gw, minutes);
    let mut gone = false;
    for _ in 0..100 {
        let r = get(gw, "/auth/me", &probe.access).await;
        if r.status == 401 {
            gone = true;
            break;
        }
        assert_eq!(r.status, 200, "me before the purge: {}", r.text);
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    assert!(gone, "{email} was not purged within 10 s");
    let r = login_as(gw, email, PASSWORD, UA).await;
    problem(&r, 401, "invalid_credentials");
    assert_eq!(refresh(gw, &probe.refresh).await.status, 401);
}

/// `SELECT COUNT(*) … WHERE … = $1` with `id`, straight in the database.
async fn count(gw: &TestGateway, backend: &Backend, sql: &'static str, id: &str) -> i64 {
    let id = uuid::Uuid::parse_str(id).unwrap();
    if backend.name == "sqlite" {
        let path = gw.dir.path().join("data/portcullis.db");
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        let n: i64 = sqlx::query_scalar(sql)
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        n
    } else {
        let pool = sqlx::PgPool::connect(&backend.url).await.unwrap();
        let n: i64 = sqlx::query_scalar(sql)
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        n
    }
}

/// Every audit event, following `next_cursor`.
async fn audit_events(gw: &TestGateway, admin: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let path = match &cursor {
            Some(c) => format!("/auth/admin/audit?limit=100&cursor={c}"),
            None => "/auth/admin/audit?limit=100".to_string(),
        };
        let r = get(gw, &path, admin).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        let body = r.json();
        out.extend(body["items"].as_array().unwrap().iter().cloned());
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
    }
    panic!("audit paging never ended");
}

#[tokio::test(flavor = "multi_thread")]
async fn scheduling_needs_the_password_and_stops_every_session_and_key_at_once() {
    for backend in backends().await {
        let b = backend.name;
        let echo = Echo::start("app").await;
        let gw = start(&backend, &echo).await;
        let email = "leaving@example.com";
        let a = register_and_login(&gw, email).await;
        let other = login(&gw, email).await;
        let key = new_key(&gw, &a.access, "ci", &[]).await;
        assert_eq!(with_key(&gw, "/k/x", &key.key).await.status, 200, "{b}");
        let bystander = register_and_login(&gw, "stays@example.com").await;
        let bystander_key = new_key(&gw, &bystander.access, "ci", &[]).await;
        assert_eq!(status(&gw, &a.access).await, Value::Null, "{b}");

        let r = schedule(&gw, &a.access, "wrong password!").await;
        problem(&r, 422, "validation_failed");
        assert_eq!(r.json()["field"], "password", "{b}: {}", r.text);
        assert_eq!(
            api(&gw, &a.access).await.status,
            200,
            "{b}: nothing revoked"
        );
        assert_eq!(status(&gw, &a.access).await, Value::Null, "{b}");

        let expected = gw.state.accounts.clock.now() + Duration::hours(1);
        let when = schedule_ok(&gw, &a.access).await;
        let off = (parse_time(&when) - expected).num_seconds().abs();
        assert!(off <= 60, "{b}: {when} is not clock now + 1h ({expected})");

        // Every session and the key stop at once; other users go on.
        assert_revoked(&gw, &a.access).await;
        assert_revoked(&gw, &other.access).await;
        assert_eq!(refresh(&gw, &a.refresh).await.status, 401, "{b}");
        assert_eq!(refresh(&gw, &other.refresh).await.status, 401, "{b}");
        let r = with_key(&gw, "/k/x", &key.key).await;
        assert_eq!(r.status, 401, "{b}: the key of a leaving user: {}", r.text);
        assert_eq!(api(&gw, &bystander.access).await.status, 200, "{b}");
        let r = with_key(&gw, "/k/x", &bystander_key.key).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);

        let mail = nth_with(&gw, email, DELETION_SUBJECT, 1).await;
        assert!(mail.body.contains(&when), "{b}: the date: {}", mail.body);
        assert!(mails_to(&gw, "stays@example.com")
            .iter()
            .all(|m| m.subject != DELETION_SUBJECT));

        // Logging in during the grace period works and shows the date.
        let during = login(&gw, email).await;
        assert_eq!(status(&gw, &during.access).await, json!(when), "{b}");
        assert_eq!(api(&gw, &during.access).await.status, 200, "{b}");

        // Asking again keeps the first date.
        advance(&gw, 10);
        let again = schedule_ok(&gw, &during.access).await;
        assert_eq!(again, when, "{b}: the first date stands");
        let later = login(&gw, email).await;
        assert_eq!(status(&gw, &later.access).await, json!(when), "{b}");
        // Still in the grace period: nothing purged.
        tokio::time::sleep(StdDuration::from_millis(600)).await;
        Tokens::from(&login_as(&gw, email, PASSWORD, UA).await);
    }
}

async fn register_and_login(gw: &TestGateway, email: &str) -> Tokens {
    register(gw, email).await;
    login(gw, email).await
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_keeps_the_account_and_brings_its_keys_back() {
    for backend in backends().await {
        let b = backend.name;
        let echo = Echo::start("app").await;
        let gw = start(&backend, &echo).await;
        let email = "changed-mind@example.com";
        let t = register_and_login(&gw, email).await;
        let key = new_key(&gw, &t.access, "ci", &[]).await;
        schedule_ok(&gw, &t.access).await;
        assert_eq!(with_key(&gw, "/k/x", &key.key).await.status, 401, "{b}");

        let t = login(&gw, email).await;
        let r = cancel(&gw, &t.access).await;
        assert_eq!(r.status, 204, "{b}: {}", r.text);
        assert_eq!(status(&gw, &t.access).await, Value::Null, "{b}");
        let r = cancel(&gw, &t.access).await;
        assert_eq!(r.status, 204, "{b}: cancel is idempotent: {}", r.text);
        let r = with_key(&gw, "/k/x", &key.key).await;
        assert_eq!(r.status, 200, "{b}: the key works again: {}", r.text);
        assert_eq!(api(&gw, &t.access).await.status, 200, "{b}");

        // Another user who did not cancel shows the purge runs.
        let control = "goes@example.com";
        let c = register_and_login(&gw, control).await;
        schedule_ok(&gw, &c.access).await;
        purge_after(&gw, control, 2 * 60).await;

        let t = Tokens::from(&login_as(&gw, email, PASSWORD, UA).await);
        assert_eq!(status(&gw, &t.access).await, Value::Null, "{b}");
        assert_eq!(with_key(&gw, "/k/x", &key.key).await.status, 200, "{b}");
        assert_eq!(api(&gw, &t.access).await.status, 200, "{b}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn purge_removes_account_keys_memberships_and_sole_orgs_but_keeps_the_audit_trail() {
    for backend in backends().await {
        let b = backend.name;
        let echo = Echo::start("app").await;
        let gw = start(&backend, &echo).await;
        let admin = superuser(&gw, &backend).await;
        let u = user(&gw, "purged@example.com").await;
        let solo = create_org(&gw, u.access(), "solo").await;
        let shared = create_org(&gw, &admin, "shared").await;
        add(&gw, &admin, &shared, &u.email, "member").await;
        let key = new_key(&gw, u.access(), "ci", &[]).await;

        let when = parse_time(&schedule_ok(&gw, u.access()).await);
        // Not due yet: a few purge passes change nothing.
        tokio::time::sleep(StdDuration::from_millis(600)).await;
        Tokens::from(&login_as(&gw, &u.email, PASSWORD, UA).await);
        assert!(gw.state.accounts.clock.now() + Duration::minutes(61) > when);
        purge_after(&gw, &u.email, 61).await;

        let r = with_key(&gw, "/k/x", &key.key).await;
        problem(&r, 401, "invalid_api_key");
        let members = member_roles(&gw, &admin, &shared).await;
        assert!(
            members.iter().all(|(id, _)| id != &u.id),
            "{b}: still a member: {members:?}"
        );
        assert_eq!(members.len(), 1, "{b}: the admin stays: {members:?}");
        for (sql, id, what) in [
            ("SELECT COUNT(*) FROM users WHERE id = $1", &u.id, "user"),
            (
                "SELECT COUNT(*) FROM sessions WHERE user_id = $1",
                &u.id,
                "sessions",
            ),
            (
                "SELECT COUNT(*) FROM api_keys WHERE user_id = $1",
                &u.id,
                "keys",
            ),
            (
                "SELECT COUNT(*) FROM org_members WHERE user_id = $1",
                &u.id,
                "memberships",
            ),
            (
                "SELECT COUNT(*) FROM orgs WHERE id = $1",
                &solo,
                "the sole-member org",
            ),
        ] {
            assert_eq!(count(&gw, &backend, sql, id).await, 0, "{b}: {what} left");
        }
        assert_eq!(
            count(
                &gw,
                &backend,
                "SELECT COUNT(*) FROM orgs WHERE id = $1",
                &shared
            )
            .await,
            1,
            "{b}: the shared org stays"
        );

        // The address is free again, for a new account with nothing of the old.
        let again = register(&gw, &u.email).await;
        let new_id = again["id"].as_str().unwrap();
        assert_ne!(new_id, u.id, "{b}");
        let t = login(&gw, &u.email).await;
        let r = get(&gw, "/auth/orgs", &t.access).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert_eq!(r.json()["items"], json!([]), "{b}: {}", r.text);
        assert_eq!(status(&gw, &t.access).await, Value::Null, "{b}");

        // The audit log keeps the old id's history, ending in the deletion.
        let events = audit_events(&gw, &admin).await;
        let kinds: Vec<&str> = events
            .iter()
            .filter(|e| e["user_id"] == u.id.as_str())
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        for kind in [
            "account_deleted",
            "account_deletion_scheduled",
            "user_registered",
        ] {
            assert!(
                kinds.contains(&kind),
                "{b}: no {kind} for {}: {kinds:?}",
                u.id
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_last_owner_of_an_org_with_members_cannot_schedule() {
    for backend in backends().await {
        let b = backend.name;
        let echo = Echo::start("app").await;
        let gw = start(&backend, &echo).await;
        let owner = user(&gw, "owner@example.com").await;
        let member = user(&gw, "member@example.com").await;
        let org = create_org(&gw, owner.access(), "team").await;
        add(&gw, owner.access(), &org, &member.email, "member").await;

        let r = schedule(&gw, owner.access(), PASSWORD).await;
        problem(&r, 409, "last_owner");
        assert_eq!(
            api(&gw, owner.access()).await.status,
            200,
            "{b}: nothing revoked"
        );
        assert_eq!(status(&gw, owner.access()).await, Value::Null, "{b}");
        tokio::time::sleep(StdDuration::from_millis(500)).await;
        assert!(mails_to(&gw, &owner.email)
            .iter()
            .all(|m| m.subject != DELETION_SUBJECT));

        // A plain member may leave; then, with another owner, so may the owner.
        schedule_ok(&gw, member.access()).await;
        let member_again = login(&gw, &member.email).await;
        assert_eq!(cancel(&gw, &member_again.access).await.status, 204, "{b}");
        let r = set_role(&gw, owner.access(), &org, &member.id, "owner").await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        schedule_ok(&gw, owner.access()).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_schedule_survives_a_restart() {
    for backend in backends().await {
        let b = backend.name;
        let echo = Echo::start("app").await;
        let gw = start(&backend, &echo).await;
        let email = "restart@example.com";
        let t = register_and_login(&gw, email).await;
        let when = schedule_ok(&gw, &t.access).await;

        let gw = gw.restart().await;
        let t = login(&gw, email).await;
        assert_eq!(status(&gw, &t.access).await, json!(when), "{b}: kept");
        purge_after(&gw, email, 2 * 60).await;
        problem(&api(&gw, &t.access).await, 401, "token_revoked");

        // The purged account's tokens stay dead after another restart,
        // though its session rows went with it.
        let gw = gw.restart().await;
        problem(&api(&gw, &t.access).await, 401, "token_revoked");
        register(&gw, email).await;
        let fresh = login(&gw, email).await;
        assert_eq!(api(&gw, &fresh.access).await.status, 200, "{b}");
    }
}

/// Logins racing the purge (the account's password is right until the row
/// goes) must get either a session the purge ends or 401 — never a 500,
/// and never an access token that outlives the account.
#[tokio::test(flavor = "multi_thread")]
async fn logins_racing_the_purge_get_no_token_that_outlives_the_account() {
    for backend in backends().await {
        let b = backend.name;
        let echo = Echo::start("app").await;
        let extra = format!(
            "deletion_grace = \"1h\"\npurge_interval = \"200ms\"\n\
             lockout = {{ max_failures = 100000, window = \"10m\", duration = \"15m\" }}\n{MAIL_FILE}"
        );
        let gw = TestGateway::start(&format!(
            "{}{}{}",
            backend.config(),
            accounts(&extra),
            key_routes(&echo)
        ))
        .await;
        let (mut errors, mut tokens) = (Vec::new(), Vec::new());
        for i in 0..4 {
            let email = format!("racer{i}@example.com");
            let t = register_and_login(&gw, &email).await;
            schedule_ok(&gw, &t.access).await;
            advance(&gw, 2 * 60);
            'purge: for _ in 0..200 {
                let logins: Vec<_> = (0..8)
                    .map(|_| {
                        let (url, email) = (gw.url("/auth/login"), email.clone());
                        tokio::spawn(async move {
                            let body = json!({"email": email, "password": PASSWORD});
                            send(client().post(url).json(&body)).await
                        })
                    })
                    .collect();
                let mut purged = false;
                for h in logins {
                    let r = h.await.unwrap();
                    match r.status {
                        200 => tokens.push(r.json()["access_token"].as_str().unwrap().to_string()),
                        401 => purged = true,
                        _ => errors.push(format!("{}: {}", r.status, r.text)),
                    }
                }
                if purged {
                    break 'purge;
                }
            }
        }
        // The purge of the last one has finished: every token must be dead.
        tokio::time::sleep(StdDuration::from_millis(500)).await;
        let mut alive = 0;
        for t in &tokens {
            if api(&gw, t).await.status == 200 {
                alive += 1;
            }
        }
        assert!(
            errors.is_empty() && alive == 0,
            "{b}: {} racing login(s) failed (first: {:?}); {alive} of {} access tokens \
             from racing logins still accepted after the purge",
            errors.len(),
            errors.first(),
            tokens.len()
        );
    }
}
