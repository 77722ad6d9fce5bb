//! API-key quotas counted across gateways: one `writ server`, two real `writ gateway`
//! processes with the same shared usage plan, requests alternating between them. Together
//! they admit the plan's quota exactly, then both answer 429; a gateway whose token may not
//! lease from the server's count fails closed (503) and its log says why.

mod common;

use std::time::Duration;

use common::gateway::Gateway;
use common::{Server, TRUST_DOMAIN, TempDir, localhost_certificate, wait_for, writ_command};
use serde_json::json;

/// The plan's quota, and how many admissions a gateway leases at a time: 10 = 3 + 3 + 3 + 1,
/// so a short grant and background refills happen on the way.
const QUOTA: usize = 10;
const LEASE: usize = 3;

/// Makes an API key for `id` on plan `shared` and route `partner`: the key, and its
/// `[[api_key]]` entry for the config.
fn api_key(id: &str) -> (String, String) {
    let out = common::run(writ_command().args([
        "gateway", "apikey", id, "--plan", "shared", "--route", "partner",
    ]));
    let key = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let entry = String::from_utf8_lossy(&out.stderr);
    let entry = entry[entry.find("[[api_key]]").expect("the config entry")..].to_string();
    (key, entry)
}

/// A gateway config of its own state directory and token file, with the shared plan, the
/// `partner` route to `upstream` and the keys' `entries`.
fn config(head: &str, n: usize, upstream: u16, entries: &str) -> String {
    let head = head
        .replace(
            "state_dir = \"gateway-state\"",
            &format!("state_dir = \"gateway-state-{n}\""),
        )
        .replace(
            "token_file = \"gateway-token\"",
            &format!("token_file = \"gateway-token-{n}\""),
        );
    format!(
        r#"{head}
[[route]]
name = "partner"
function = "partner-api"
path_prefix = "/partner"
upstream = "http://127.0.0.1:{upstream}"
auth = ["api-key"]

[usage_plan.shared]
quota = {QUOTA}
quota_period = "1d"
shared = true
lease = {LEASE}

{entries}
"#
    )
}

fn start(dir: &TempDir, n: usize, config: &str, ca: &std::path::Path) -> Gateway {
    let file = dir.join(format!("gateway-{n}.toml"));
    std::fs::write(&file, config).unwrap();
    let mut cmd = writ_command();
    cmd.args(["gateway", "--config"]).arg(&file);
    let gateway = Gateway::start(cmd, dir, ca.to_path_buf());
    // Synced with the server once a wrong key is refused for itself (401), not for the
    // gateway's staleness (503): no admission spent.
    wait_for("the gateway to sync", Duration::from_secs(15), || {
        let r = gateway
            .curl("GET", "/partner/report")
            .header("x-api-key: writ.apikey.nobody.wrong")
            .send();
        (r.status == 401).then_some(())
    });
    gateway
}

#[test]
fn two_gateways_admit_a_shared_quota_once_between_them() {
    let dir = TempDir::new("gw-shared-quota");
    let server = Server::start(&dir.join("data"), &["--trust-domain", TRUST_DOMAIN]);
    let (_upstream, upstream_port) = common::echo_upstream(&dir);
    // Gateways 1 and 2 may lease from the count; gateway 3's token may not.
    common::gateway::token(
        &server,
        &dir,
        &[json!({"Effect": "Allow", "Action": "writ:LeaseQuota", "Resource": "writ:quotas"})],
    );
    for n in [1, 2] {
        std::fs::copy(
            dir.join("gateway-token"),
            dir.join(format!("gateway-token-{n}")),
        )
        .unwrap();
    }
    common::gateway::token(&server, &dir, &[]);
    std::fs::copy(dir.join("gateway-token"), dir.join("gateway-token-3")).unwrap();

    let (ca, cert, key) = localhost_certificate(&dir, "gateway");
    let head = common::gateway::config_head(&server, &cert, &key);
    let (partner_key, partner_entry) = api_key("partner-a");
    let (other_key, other_entry) = api_key("partner-b");
    let shared_config = config(&head, 1, upstream_port, &partner_entry);
    let one = start(&dir, 1, &shared_config, &ca);
    let two = start(
        &dir,
        2,
        &config(&head, 2, upstream_port, &partner_entry),
        &ca,
    );

    // Alternate between the gateways, each asked until it refuses: 200s until the quota
    // is spent, then 429 from both.
    let mut admitted = 0;
    let mut refused = [false, false];
    let mut sent = 0;
    while refused != [true, true] {
        assert!(sent < 100, "still admitting after {sent} requests");
        let which = sent % 2;
        sent += 1;
        if refused[which] {
            continue;
        }
        let gateway = [&one, &two][which];
        let r = gateway
            .curl("GET", "/partner/report")
            .header(&format!("x-api-key: {partner_key}"))
            .send();
        match r.status {
            200 => admitted += 1,
            429 => {
                assert_eq!(r.error_code(), "quotaExceeded", "{}", r.body);
                refused[which] = true;
            }
            other => panic!("gateway {}: {other} {}", which + 1, r.body),
        }
    }
    assert_eq!(
        admitted, QUOTA,
        "the two gateways admitted the plan's quota between them"
    );
    // Both stay refused: the count is the server's, not theirs.
    for gateway in [&one, &two] {
        let r = gateway
            .curl("GET", "/partner/report")
            .header(&format!("x-api-key: {partner_key}"))
            .send();
        assert_eq!(r.status, 429, "{}", r.body);
        assert!(r.headers.get("retry-after").is_some(), "{}", r.headers);
    }
    // The server audited the leases, with the count.
    let lease = server.wait_for_audit("a quota lease", |e| {
        e["action"] == "writ:LeaseQuota" && e["outcome"] == "allowed"
    });
    assert_eq!(lease["resource"], "writ:quotas", "{lease}");
    assert!(
        lease["reason"]
            .as_str()
            .is_some_and(|r| r.contains("API key partner-a") && r.contains("of 10 counted")),
        "{lease}"
    );

    // A gateway whose token may not lease fails closed for the shared plan's keys, and
    // says why in its log; the API key never appears there.
    let three = start(&dir, 3, &config(&head, 3, upstream_port, &other_entry), &ca);
    let r = three
        .curl("GET", "/partner/report")
        .header(&format!("x-api-key: {other_key}"))
        .send();
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(
        r.error_message().contains("counted by the server"),
        "{}",
        r.body
    );
    let log = three.proc.log();
    assert!(
        log.contains("did not lease admissions of the API key's shared quota"),
        "{log}"
    );
    assert!(!log.contains(&other_key), "the key in the log: {log}");
}
