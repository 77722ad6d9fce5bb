// What the views share: the audit log (read once, then followed with long polls), element
// building, and the status line.
import { ApiError, auditEvents } from "./api.js";

/** The audit log as far as read: its records, parsed, and who wants to hear of new ones. */
export const audit = {
  records: [],
  next: 0,
  error: null,
  loaded: null,
  listeners: new Set(),
  following: false,
};

/** Reads the whole log once (pages of 10,000), then follows it; resolves when read. */
export function loadAudit() {
  if (!audit.loaded) {
    audit.loaded = (async () => {
      try {
        for (;;) {
          const page = await auditEvents({ after: audit.next, limit: PAGE });
          addRecords(page.records);
          if (page.records.length < PAGE) break;
        }
        follow();
      } catch (e) {
        audit.error = e;
      }
    })();
  }
  return audit.loaded;
}

/** The most records one read asks for (the API's most). */
const PAGE = 10000;

/** A record of the log; its event is parsed from the record's text when first read. */
class Entry {
  constructor(record) {
    this.seq = record.seq;
    this.record = record;
    this.parsed = null;
  }

  get event() {
    if (this.parsed === null) {
      try {
        this.parsed = JSON.parse(this.record.event);
      } catch {
        this.parsed = { action: "(unreadable)", reason: "the stored event is not JSON" };
      }
    }
    return this.parsed;
  }
}

function addRecords(records) {
  for (const r of records) {
    audit.records.push(new Entry(r));
    if (r.seq > audit.next) audit.next = r.seq;
  }
}

/** Follows the log: a long poll for records after the last one read, for as long as the
 * session lasts; each new batch goes to every listener. */
async function follow() {
  if (audit.following) return;
  audit.following = true;
  while (audit.following) {
    try {
      const page = await auditEvents({ after: audit.next, limit: PAGE, wait: 20 });
      if (page.records.length > 0) {
        const from = audit.records.length;
        addRecords(page.records);
        const added = audit.records.slice(from);
        for (const listener of audit.listeners) listener(added);
      }
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) {
        audit.following = false;
        window.dispatchEvent(new Event("writ:signed-out"));
        return;
      }
      status(`Following the audit log failed: ${e.message}; retrying.`);
      await new Promise((resolve) => setTimeout(resolve, 3000));
    }
  }
}

/** Shows a short message in the corner. */
export function status(text) {
  document.getElementById("status").textContent = text;
}

/** Makes an element: `tag`, attributes (`class`, `text`, event handlers `on…`), children. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

