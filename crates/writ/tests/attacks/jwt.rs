//! JWT-SVIDs: audiences, replay. A token names the audiences it was minted for, and every
//! one of them receives it: a verifier that accepts a token naming others besides itself
//! accepts what any of those others can replay.

use serde_json::json;

use crate::common::TRUST_DOMAIN;
use crate::gateway_http::GatewayEnv;

#[test]
fn a_token_for_several_audiences_cannot_be_replayed_to_another_of_them() {
    let env = GatewayEnv::start("attack-jwt-aud", "");
    let orders = env.login("orders");
    env.wait_ready(&orders);
    let payments = format!("spiffe://{TRUST_DOMAIN}/fn/payments");
    let server = format!("spiffe://{TRUST_DOMAIN}/writ/server");

    // For payments alone: accepted on payments' route, as before.
    let single = env.jwt(&orders, &[&payments]);
    env.curl("POST", "/pay/charge")
        .bearer(&single)
        .json(&json!({"amount": 5}))
        .send()
        .expect(200);

    // For payments and the server at once. payments (which receives it on every call)
    // must not be able to read the caller's secrets with it ...
    let both = env.jwt(&orders, &[&payments, &server]);
    let read = env
        .server
        .curl("POST", "/v1/secrets/get")
        .bearer(&both)
        .json(&json!({"name": "prod/db"}))
        .send();
    assert_eq!(read.status, 401, "replayed to the server: {}", read.body);
    assert!(!read.body.contains(GatewayEnv::SECRET));
    // ... while a token for the server alone reads it.
    let own = env.jwt(&orders, &[&server]);
    let read = env
        .server
        .curl("POST", "/v1/secrets/get")
        .bearer(&own)
        .json(&json!({"name": "prod/db"}))
        .send()
        .expect(200);
    assert_eq!(read.json()["secretString"], GatewayEnv::SECRET);

    // The server (or anyone else named) cannot replay it to payments' route either.
    let r = env
        .curl("POST", "/pay/charge")
        .bearer(&both)
        .json(&json!({"amount": 5}))
        .send();
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains("authentication failed"), "{}", r.body);

    // A route that opted in takes it ...
    env.curl("POST", "/shared/charge")
        .bearer(&both)
        .json(&json!({"amount": 5}))
        .send()
        .expect(200);
    // ... and having verified (and cached) it there does not make it good on the route
    // for the same function that did not.
    let r = env
        .curl("POST", "/pay/charge")
        .bearer(&both)
        .json(&json!({"amount": 5}))
        .send();
    assert_eq!(r.status, 401, "{}", r.body);
    // The refusal is on record, saying why, without the token.
    let event = env.server.wait_for_audit("the refused replay", |e| {
        e["action"] == "writ:Invoke"
            && e["outcome"] == "denied"
            && e["reason"]
                .as_str()
                .is_some_and(|r| r.contains("more than one audience"))
    });
    assert!(!event.to_string().contains(&both), "{event}");
}

/// Revoking an X.509-SVID's serial used to leave the JWT-SVIDs minted with it working
/// until they expired. They carry the serial now, and fall with it.
#[test]
fn revoking_an_x509_svid_revokes_the_jwt_svids_minted_with_it() {
    let env = GatewayEnv::start("attack-jwt-serial", "");
    let orders = env.login("orders");
    let other = env.login("orders");
    let server = format!("spiffe://{TRUST_DOMAIN}/writ/server");
    let read = |token: &str| {
        env.server
            .curl("POST", "/v1/secrets/get")
            .bearer(token)
            .json(&json!({"name": "prod/db"}))
            .send()
    };
    let minted = env.jwt(&orders, &[&server]);
    let sibling = env.jwt(&other, &[&server]);
    read(&minted).expect(200);

    env.server.cli_ok(&["revoke", "--serial", &orders.serial]);
    let r = read(&minted);
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(!r.body.contains(GatewayEnv::SECRET));
    env.server.wait_for_audit("the refused token", |e| {
        e["reason"]
            .as_str()
            .is_some_and(|r| r.contains("was minted with is revoked"))
    });
    // A token minted with another SVID of the same function is not affected.
    read(&sibling).expect(200);
}

/// The gateway, following the revocation feed, refuses a JWT-SVID whose X.509-SVID was
/// revoked, as the server does.
#[test]
fn the_gateway_refuses_a_jwt_svid_minted_with_a_revoked_x509_svid() {
    let env = GatewayEnv::start("attack-jwt-serial-gw", "");
    let orders = env.login("orders");
    env.wait_ready(&orders);
    let payments = format!("spiffe://{TRUST_DOMAIN}/fn/payments");
    let minted = env.jwt(&orders, &[&payments]);
    let call = || {
        env.curl("POST", "/pay/charge")
            .bearer(&minted)
            .json(&json!({"amount": 5}))
            .send()
    };
    call().expect(200);
    env.server.cli_ok(&["revoke", "--serial", &orders.serial]);
    crate::common::wait_for(
        "the gateway to refuse the token",
        crate::common::PATIENCE,
        || (call().status == 401).then_some(()),
    );
}
