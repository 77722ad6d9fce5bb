// The console's views other than the intention graph: functions, the audit browser,
// secrets, and revocations with the CA. Each reads the /v1 API and renders; none keeps
// anything the API did not give it.
import { ApiError, call } from "./api.js";
import { audit, el, loadAudit, status } from "./common.js";

/** A time, RFC 3339 or Unix seconds, as the browser's locale writes it. */
export function when(t) {
  if (t === null || t === undefined || t === "") return "—";
  const d = typeof t === "number" ? new Date(t * 1000) : new Date(t);
  return Number.isNaN(d.getTime()) ? String(t) : d.toLocaleString();
}

/** A tag: a short label with a class for its colour. */
export function tag(text, kind = "") {
  return el("span", { class: `tag ${kind}`, text });
}

/** What a view shows when the token may not read something. */
function notAllowed(e, what) {
  if (e instanceof ApiError && e.status === 403) {
    return el("p", { class: "muted", text: `This token may not read ${what}: ${e.message}` });
  }
  return el("p", { class: "error", role: "alert", text: `${what}: ${e.message}` });
}

/** Reads the whole revocation feed. */
async function revocations() {
  const entries = [];
  let after = 0;
  for (;;) {
    const page = await call("GET", `/v1/revocations?after=${after}`);
    entries.push(...page.entries);
    if (page.entries.length === 0 || page.next <= after) return entries;
    after = page.next;
  }
}

/** A duration as the API writes it (`1h`, `90s`, `7d`), in milliseconds. */
function durationMs(text) {
  const m = /^(\d+)([smhd])$/.exec(text || "");
  if (!m) return null;
  return Number(m[1]) * { s: 1e3, m: 6e4, h: 3.6e6, d: 8.64e7 }[m[2]];
}

// ---------------------------------------------------------------------------- Functions

/** The functions: identity, rules, policies, SVIDs, revocation, last login; revoke and
 * make a join token. */
export async function functionsView(host) {
  const { functions } = await call("GET", "/v1/functions");
  const heading = el("h1", { text: "Functions" });
  const once = el("div", { id: "join-token-slot" });
  const body = el("tbody");
  const table = el("table", { "aria-describedby": "functions-note" },
    el("thead", {}, el("tr", {},
      ["Name", "SPIFFE ID", "Attestation", "Policies", "SVIDs (serial, expiry)", "Status",
        "Last login", "Actions"].map((h) => el("th", { scope: "col", text: h })))),
    body);
  const note = el("p", { id: "functions-note", class: "muted" },
    `${functions.length} function(s) this token may read. SVIDs and last logins come from `
    + "the audit log (issued serial, expiry = issue time + the function's X.509 TTL), "
    + "revoked serials from the revocation feed.");
  host.append(heading, note, once, table);

  const rows = new Map();
  for (const f of functions) {
    const svids = el("td", { class: "mono", text: "…" });
    const last = el("td", { text: "…" });
    const state = el("td", {}, f.revokedAt ? tag(`revoked ${when(f.revokedAt)}`, "revoked") : tag("live", "allowed"));
    const revoke = el("button", { type: "button", class: "danger", "aria-label": `Revoke ${f.name}` }, "Revoke…");
    const join = el("button", { type: "button", "aria-label": `Make a join token for ${f.name}` }, "Join token");
    if (f.revokedAt) revoke.disabled = true;
    revoke.addEventListener("click", () => revokeFunction(f, revoke, state));
    join.addEventListener("click", () => joinToken(f, once));
    const policies = f.policies.length === 0 ? el("span", { class: "muted", text: "none" })
      : el("details", {}, el("summary", { text: `${f.policies.length} polic${f.policies.length === 1 ? "y" : "ies"}` }),
        el("pre", { class: "mono", text: JSON.stringify(f.policies, null, 2) }));
    const row = el("tr", { "data-function": f.name, "data-revoked": f.revokedAt ? "true" : "false" },
      el("th", { scope: "row", text: f.name }),
      el("td", { class: "mono", text: f.spiffeId }),
      el("td", {}, f.attestation.map((r) => tag(r.type === "oidc" ? `oidc ${r.issuer}` : r.type))),
      el("td", {}, policies),
      svids, state, last,
      el("td", {}, revoke, " ", join));
    rows.set(f.spiffeId, { f, row, svids, last });
    body.append(row);
  }

  // The SVIDs and last logins, once the audit log and the revocation feed are read; the
  // table is shown before.
  fillSvids(rows);
  return {};
}

async function fillSvids(rows) {
  const [feed] = await Promise.allSettled([revocations(), loadAudit()]);
  const revokedSerials = new Set(feed.status === "fulfilled"
    ? feed.value.filter((r) => r.kind === "serial").map((r) => r.value.toLowerCase()) : []);
  if (audit.error) {
    for (const { svids, last } of rows.values()) {
      svids.replaceChildren(notAllowed(audit.error, "the audit log"));
      last.textContent = "—";
    }
    return;
  }
  const issued = new Map();
  for (const { event } of audit.records) {
    if ((event.action === "writ:Login" || event.action === "writ:RenewSvid")
      && event.outcome === "allowed" && event.serial) {
      const list = issued.get(event.actor) || [];
      list.push(event);
      issued.set(event.actor, list);
    }
  }
  const now = Date.now();
  for (const [id, { f, svids, last }] of rows) {
    const events = issued.get(id) || [];
    const logins = events.filter((e) => e.action === "writ:Login");
    last.textContent = logins.length ? when(logins[logins.length - 1].time) : "never";
    const ttl = durationMs(f.x509Ttl);
    const live = events.slice(-3).reverse().map((e) => {
      const expires = ttl === null ? null : new Date(new Date(e.time).getTime() + ttl);
      const revoked = revokedSerials.has(String(e.serial).toLowerCase())
        || (f.revokedAt && new Date(e.time) <= new Date(f.revokedAt));
      const expired = expires && expires.getTime() <= now;
      return el("div", {},
        `${e.serial} `,
        el("span", { class: "muted", text: expires ? `exp. ${expires.toLocaleString()}` : "" }),
        revoked ? tag("revoked", "revoked") : expired ? tag("expired", "failed") : "");
    });
    svids.replaceChildren(...(live.length ? live : [el("span", { class: "muted", text: "none issued" })]));
  }
  performance.mark("complete:functions");
}

async function revokeFunction(f, button, state) {
  if (button.dataset.confirm !== "yes") {
    button.dataset.confirm = "yes";
    button.textContent = `Confirm: revoke ${f.name}`;
    button.focus();
    return;
  }
  button.disabled = true;
  try {
    const { revocation } = await call("POST", "/v1/revocations", { function: f.name });
    state.replaceChildren(tag(`revoked ${when(revocation.revokedAt)}`, "revoked"));
    button.closest("tr").dataset.revoked = "true";
    button.textContent = "Revoked";
    status(`${f.name} revoked: its SVIDs are refused from now on.`);
  } catch (e) {
    button.disabled = false;
    button.textContent = "Revoke…";
    delete button.dataset.confirm;
    status(`Revoking ${f.name} failed: ${e.message}`);
  }
}

async function joinToken(f, slot) {
  try {
    const issued = await call("POST", `/v1/functions/${encodeURIComponent(f.name)}/join-tokens`, {});
    const value = el("input", { type: "text", readonly: true, class: "mono", value: issued.token,
      "aria-label": `Join token for ${f.name}`, size: 70 });
    const dismiss = el("button", { type: "button" }, "Done (forget it)");
    const box = el("div", { class: "once", role: "alert" },
      el("strong", { text: `Join token for ${f.name}` }), " — shown once; copy it now. Expires ",
      when(issued.expiresAt), ".", el("br"), value, " ", dismiss);
    dismiss.addEventListener("click", () => box.remove());
    slot.replaceChildren(box);
    value.select();
  } catch (e) {
    status(`Making a join token for ${f.name} failed: ${e.message}`);
  }
}

// ---------------------------------------------------------------------------- Audit

/** The fields an audit event is filtered by, and the form's labels. */
const FILTERS = [
  ["actor", "Actor"], ["action", "Action"], ["resource", "Resource"],
];

/** The audit browser: filters, the newest matching events, an event's detail, the live
 * tail, and the chain's verification with the last signed checkpoint. */
export async function auditView(host, hash) {
  await loadAudit();
  if (audit.error) {
    host.append(el("h1", { text: "Audit" }), notAllowed(audit.error, "the audit log"));
    return {};
  }
  const inputs = {};
  const form = el("form", { class: "filters", role: "search", "aria-label": "Filter audit events" });
  for (const [name, label] of FILTERS) {
    inputs[name] = el("input", { id: `f-${name}`, name, type: "search", spellcheck: "false" });
    form.append(el("div", {}, el("label", { for: `f-${name}`, text: label }), inputs[name]));
  }
  inputs.decision = el("select", { id: "f-decision", name: "decision" },
    ["", "allowed", "denied", "failed"].map((v) => el("option", { value: v, text: v || "any" })));
  inputs.since = el("input", { id: "f-since", name: "since", type: "datetime-local" });
  inputs.until = el("input", { id: "f-until", name: "until", type: "datetime-local" });
  form.append(
    el("div", {}, el("label", { for: "f-decision", text: "Outcome" }), inputs.decision),
    el("div", {}, el("label", { for: "f-since", text: "From" }), inputs.since),
    el("div", {}, el("label", { for: "f-until", text: "Until" }), inputs.until));
  const live = el("input", { id: "f-live", type: "checkbox", checked: true });
  form.append(el("div", {}, el("label", { for: "f-live", text: "Live tail" }), live));
  form.addEventListener("submit", (e) => e.preventDefault());

  const chain = el("div", { class: "panel", id: "chain", "aria-live": "polite" }, "Verifying the chain…");
  const count = el("p", { class: "muted", id: "audit-count" });
  const body = el("tbody");
  const table = el("table", {},
    el("thead", {}, el("tr", {}, ["#", "Time", "Actor", "Action", "Resource", "Outcome", "Reason"]
      .map((h) => el("th", { scope: "col", text: h })))), body);
  const detail = el("div", { class: "panel side", id: "event-detail", "aria-live": "polite" },
    el("p", { class: "muted", text: "Select an event (click, or Enter on a row) to see its detail." }));
  host.append(el("h1", { text: "Audit" }), chain, form, count,
    el("div", { class: "row" }, el("div", { class: "grow" }, table), detail));

  const SHOWN = 500;
  let selected = null;
  const matches = (e) => {
    for (const [name] of FILTERS) {
      const want = inputs[name].value.trim().toLowerCase();
      if (want && !String(e[name] || "").toLowerCase().includes(want)) return false;
    }
    if (inputs.decision.value && e.outcome !== inputs.decision.value) return false;
    const t = new Date(e.time).getTime();
    if (inputs.since.value && t < new Date(inputs.since.value).getTime()) return false;
    if (inputs.until.value && t > new Date(inputs.until.value).getTime()) return false;
    return true;
  };
  const row = (r) => {
    const e = r.event;
    const tr = el("tr", { class: "clickable", tabindex: "0", "data-seq": r.seq,
      "aria-label": `Event ${r.seq}: ${e.action} on ${e.resource}, ${e.outcome}` },
      el("td", { text: r.seq }), el("td", { text: when(e.time) }),
      el("td", { class: "mono", text: e.actor }), el("td", { text: e.action }),
      el("td", { class: "mono", text: e.resource }),
      el("td", {}, tag(e.outcome, e.outcome)), el("td", { text: e.reason || "" }));
    const open = () => {
      if (selected) selected.classList.remove("selected");
      selected = tr;
      tr.classList.add("selected");
      showEvent(detail, r);
    };
    tr.addEventListener("click", open);
    tr.addEventListener("keydown", (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); open(); } });
    return tr;
  };
  const filtering = () => Object.values(inputs).some((input) => input.value.trim() !== "");
  const render = () => {
    const shown = [];
    let total = 0;
    if (!filtering()) {
      // No filter: the newest events, without reading the others.
      shown.push(...audit.records.slice(-SHOWN).reverse());
      total = audit.records.length;
    }
    for (let i = filtering() ? audit.records.length - 1 : -1; i >= 0; i--) {
      if (!matches(audit.records[i].event)) continue;
      total++;
      if (shown.length < SHOWN) shown.push(audit.records[i]);
    }
    body.replaceChildren(...shown.map(row));
    count.textContent = `${total} of ${audit.records.length} events match`
      + (total > SHOWN ? `; the newest ${SHOWN} are shown.` : ".");
  };
  for (const input of Object.values(inputs)) input.addEventListener("input", render);
  render();
  const wanted = /^#audit\/(\d+)$/.exec(hash || "");
  if (wanted) {
    const tr = body.querySelector(`tr[data-seq="${wanted[1]}"]`);
    const r = audit.records.find((x) => String(x.seq) === wanted[1]);
    if (r) {
      showEvent(detail, r);
      if (tr) { tr.classList.add("selected"); selected = tr; }
    }
  }
  const listener = () => { if (live.checked) render(); };
  audit.listeners.add(listener);
  verifyChain(chain);
  return { leave: () => audit.listeners.delete(listener) };
}

function showEvent(detail, r) {
  const e = r.event;
  const rows = [["Sequence", r.seq], ["Time", e.time], ["Node", e.node], ["Request", e.requestId],
    ["Actor", e.actor], ["Authenticated by", e.authenticatedBy], ["Action", e.action],
    ["Resource", e.resource], ["Decision", e.decision], ["Outcome", e.outcome],
    ["Deciding statements", (e.matched || []).join(", ") || "—"], ["Reason", e.reason || "—"],
    ["Serial", e.serial], ["Source", e.source], ["Reported by", e.reportedBy],
    ["Latency", e.latencyUs !== undefined ? `${e.latencyUs} µs` : undefined], ["Hash", r.record.hash]];
  detail.replaceChildren(el("h2", { text: `Event ${r.seq}` }),
    el("dl", {}, rows.filter(([, v]) => v !== undefined && v !== null && v !== "")
      .flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { class: k === "Hash" ? "mono" : "", "data-field": k, text: String(v) })])));
}

const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
const unhex = (text) => new Uint8Array((text.match(/../g) || []).map((h) => parseInt(h, 16)));

/** Verifies the hash chain of the records read (as `writ audit verify` does: each record's
 * link to the one before and its hash of its content), and the newest checkpoint's
 * signature with the server's audit public key. */
async function verifyChain(panel) {
  const enc = new TextEncoder();
  const domain = enc.encode("writ-audit-v1");
  let prev = new Uint8Array(32);
  let seq = 0;
  let broken = null;
  for (const r of audit.records.slice()) {
    if (r.seq !== seq + 1) { broken = `event ${seq + 1}: missing or out of order`; break; }
    if (r.record.prevHash !== hex(prev)) { broken = `event ${r.seq}: its link to the previous event does not match`; break; }
    const body = enc.encode(r.record.event);
    const message = new Uint8Array(domain.length + 32 + 8 + body.length);
    message.set(domain, 0);
    message.set(prev, domain.length);
    new DataView(message.buffer).setBigInt64(domain.length + 32, BigInt(r.seq));
    message.set(body, domain.length + 40);
    const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", message));
    if (hex(hash) !== r.record.hash) { broken = `event ${r.seq}: its hash does not match its content`; break; }
    prev = hash;
    seq = r.seq;
  }
  let checkpoint = "no signed checkpoint yet";
  try {
    const { checkpoints, publicKeys } = await call("GET", "/v1/audit/checkpoints?after=0");
    const last = checkpoints[checkpoints.length - 1];
    if (last) {
      const key = publicKeys.find((k) => k.id === last.keyId);
      let ok = false;
      if (key) {
        const imported = await crypto.subtle.importKey("raw", unhex(key.publicKey),
          { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]);
        ok = await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, imported,
          unhex(last.signature), enc.encode(`writ-audit-checkpoint-v1\n${last.seq}\n${last.hash}\n${last.time}`));
      }
      const inChain = audit.records.find((r) => r.seq === last.seq);
      const matches = inChain ? inChain.record.hash === last.hash : null;
      checkpoint = `last signed checkpoint: event ${last.seq} at ${when(last.time)}, key ${last.keyId}, `
        + `signature ${ok ? "valid" : "INVALID"}`
        + (matches === false ? ", but its hash is NOT the chain's" : matches ? ", matching the chain" : "");
      if (!ok || matches === false) broken = broken || "the checkpoint does not verify";
    }
  } catch (e) {
    checkpoint = `checkpoints: ${e.message}`;
  }
  panel.replaceChildren(
    broken ? tag("chain broken", "denied") : tag("chain verified", "allowed"), " ",
    broken ? `${broken}. ` : `${seq} events verified in this browser. `,
    el("span", { class: "muted", text: checkpoint }));
  panel.dataset.verified = broken ? "false" : "true";
  performance.mark("verified:audit");
}

// ---------------------------------------------------------------------------- Secrets

/** The secrets: names, versions, staging labels, rotation schedule and last outcome. Never a
 * value: the console calls only list and describe. */
export async function secretsView(host) {
  host.append(el("h1", { text: "Secrets" }),
    el("p", { class: "muted", text: "Names, versions and rotation only: the console never reads a secret's value." }));
  let list;
  try {
    list = await call("POST", "/v1/secrets/list", {});
  } catch (e) {
    host.append(notAllowed(e, "the secrets"));
    return {};
  }
  const body = el("tbody");
  host.append(el("table", {},
    el("thead", {}, el("tr", {}, ["Name", "Description", "Versions (staging labels)", "Rotation", "Last rotation", "Changed"]
      .map((h) => el("th", { scope: "col", text: h })))), body));
  const described = await Promise.allSettled(list.secrets.map((s) => call("POST", "/v1/secrets/describe", { name: s.name })));
  list.secrets.forEach((s, i) => {
    const d = described[i];
    if (d.status !== "fulfilled") {
      body.append(el("tr", {}, el("th", { scope: "row", text: s.name }), el("td", { colspan: 5 }, notAllowed(d.reason, `${s.name}'s description`))));
      return;
    }
    const x = d.value;
    const r = x.rotation;
    const lastRotation = !r || !r.lastRotation ? "—"
      : r.lastRotation.status === "succeeded" ? el("span", {}, tag("succeeded", "allowed"), ` ${when(r.lastRotation.date)}`)
        : el("span", {}, tag("failed", "denied"), ` ${when(r.lastRotation.date)}: ${r.lastRotation.step ? `${r.lastRotation.step}: ` : ""}${r.lastRotation.reason}`);
    body.append(el("tr", { "data-secret": x.name },
      el("th", { scope: "row", class: "mono", text: x.name }),
      el("td", { text: x.description || "" }),
      el("td", {}, x.versions.map((v) => el("div", { class: "mono" }, `${v.versionId.slice(0, 8)} `, v.versionStages.map((st) => tag(st))))),
      el("td", { text: r ? `${r.every ? `every ${r.every}` : "on demand"} by ${r.hook.type} ${r.hook.url || r.hook.name || ""}${r.nextRotationDate ? `; next ${when(r.nextRotationDate)}` : ""}` : "none" }),
      el("td", {}, lastRotation),
      el("td", { text: when(x.lastChangedDate) })));
  });
  return {};
}

// ---------------------------------------------------------------------------- CA

/** The revocation feed, and the trust bundle's CAs and JWT keys with their activation. */
export async function caView(host) {
  host.append(el("h1", { text: "Revocations and CA" }));
  const [ca, feed] = await Promise.allSettled([call("GET", "/v1/ca"), revocations()]);
  host.append(el("h2", { text: "Signing keys" }));
  if (ca.status === "fulfilled") {
    host.append(el("p", { class: "muted", text: `Trust domain ${ca.value.trustDomain}` }),
      el("table", {}, el("thead", {}, el("tr", {}, ["Key", "Kind", "Status", "Active from", "Published until"]
        .map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, ca.value.keys.map((k) => el("tr", {},
        el("td", { class: "mono", text: k.id }), el("td", { text: k.kind }),
        el("td", {}, tag(k.status, k.status === "signing" ? "allowed" : "")),
        el("td", { text: when(k.activeFrom) }), el("td", { text: when(k.publishedUntil) }))))));
  } else {
    host.append(notAllowed(ca.reason, "the CA"));
  }
  host.append(el("h2", { text: "Revocation feed" }));
  if (feed.status === "fulfilled") {
    host.append(el("table", {}, el("thead", {}, el("tr", {}, ["#", "Kind", "What", "Revoked at"]
      .map((h) => el("th", { scope: "col", text: h })))),
    el("tbody", {}, feed.value.slice().reverse().map((r) => el("tr", { "data-revocation": r.value },
      el("td", { text: r.seq }), el("td", { text: r.kind }), el("td", { class: "mono", text: r.value }),
      el("td", { text: when(r.revokedAt) }))))));
    if (feed.value.length === 0) host.append(el("p", { class: "muted", text: "Nothing revoked." }));
  } else {
    host.append(notAllowed(feed.reason, "the revocation feed"));
  }
  return {};
}
