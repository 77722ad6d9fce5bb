// The console's only way to the server: the /v1 API, authenticated by the session cookie
// (sent by the browser, never readable here), with the header that marks the console's own
// requests. Every answer is decided by the server's route table and the token's policies.

/** An API error: its HTTP status, its stable code and its message. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Calls the API: `method` on `path` with an optional JSON `body`; resolves to the JSON. */
export async function call(method, path, body) {
  const headers = { "X-Writ-Console": "1" };
  const init = { method, headers, credentials: "same-origin", cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (response.status === 204) return null;
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    throw new ApiError(response.status, "notJson", `${method} ${path}: answered ${response.status}, not JSON`);
  }
  if (!response.ok) {
    const e = (json && json.error) || {};
    throw new ApiError(response.status, e.code || "unknown", e.message || `${method} ${path}: ${response.status}`);
  }
  return json;
}

/** Starts a session for `token`: the token goes once, in a header, and is not kept. */
export async function signIn(token) {
  const response = await fetch("/ui/session", {
    method: "POST",
    headers: { "Authorization": `Bearer ${token}`, "X-Writ-Console": "1" },
    credentials: "same-origin",
    cache: "no-store",
  });
  if (response.status === 204) return;
  let message = `sign-in answered ${response.status}`;
  try {
    const e = (await response.json()).error;
    if (e && e.message) message = e.message;
  } catch { /* the status says enough */ }
  throw new ApiError(response.status, "signIn", message);
}

/** Ends the session. */
export async function signOut() {
  await fetch("/ui/session", {
    method: "DELETE", headers: { "X-Writ-Console": "1" }, credentials: "same-origin",
  });
}

/** `GET /v1/audit/events` with the given query parameters (undefined ones left out). */
export function auditEvents(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  }
  return call("GET", `/v1/audit/events?${q}`);
}

/** Reads every audit event after `after`, page by page, up to `most` events. */
export async function allAuditEvents(after = 0, most = 20000) {
  const records = [];
  let next = after;
  for (;;) {
    const page = await auditEvents({ after: next, limit: 1000 });
    records.push(...page.records);
    if (page.records.length === 0 || page.next <= next || records.length >= most) {
      return { records, next: page.next };
    }
    next = page.next;
  }
}
