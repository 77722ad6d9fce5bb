// The intentions as a graph: functions are nodes, intentions edges (allow solid, deny
// dashed, their L7 permissions in the edge's title), each edge counting the allowed and
// denied calls the audit log holds for it, live. Selecting an edge opens it in the editor,
// which checks a proposed call against the intention being edited before it is saved.
import { ApiError, call } from "./api.js";
import { audit, el, loadAudit, status } from "./common.js";
import { tag, when } from "./views.js";

const SVG = "http://www.w3.org/2000/svg";

function svg(tagName, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tagName);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null) continue;
    if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children.flat()) if (c) node.append(c);
  return node;
}

/** The function an audit event's actor (`spiffe://TD/fn/NAME`) or resource (`writ:fn/NAME`)
 * names, if it names one. */
function fnOf(text) {
  const m = /(?:^spiffe:\/\/[^/]+\/fn\/|^writ:fn\/)([^/?#]+)/.exec(text || "");
  return m ? m[1] : null;
}

/** An intention's L7 permissions, in words. */
function describePermissions(i) {
  if (i.action === "deny") return "deny every call";
  if (!i.permissions || i.permissions.length === 0) return "allow every call";
  return i.permissions.map((p) => {
    const parts = [];
    if (p.methods && p.methods.length) parts.push(p.methods.join("|"));
    if (p.pathExact) parts.push(`path = ${p.pathExact}`);
    if (p.pathPrefix) parts.push(`path ${p.pathPrefix}*`);
    for (const h of p.headers || []) parts.push(`header ${h.name}`);
    return `allow ${parts.join(" ") || "any call"}`;
  }).join("; ");
}

/** The intentions view. */
export async function intentionsView(host) {
  // Both at once; a token that may not list functions still sees the intentions' ends.
  const [listed, fns] = await Promise.allSettled([call("GET", "/v1/intentions"), call("GET", "/v1/functions")]);
  if (listed.status === "rejected") throw listed.reason;
  const { intentions } = listed.value;
  let functions = [];
  if (fns.status === "fulfilled") functions = fns.value.functions;
  else if (!(fns.reason instanceof ApiError && fns.reason.status === 403)) throw fns.reason;
  const names = new Set(functions.map((f) => f.name));
  for (const i of intentions) { names.add(i.source); names.add(i.destination); }
  const revoked = new Set(functions.filter((f) => f.revokedAt).map((f) => f.name));

  const edges = new Map();
  const edgeOf = (source, destination) => {
    const key = `${source}\u2192${destination}`;
    if (!edges.has(key)) edges.set(key, { source, destination, intention: null, allowed: 0, denied: 0, events: [] });
    return edges.get(key);
  };
  for (const i of intentions) edgeOf(i.source, i.destination).intention = i;

  const graph = svg("svg", { class: "graph", role: "group", "aria-label": "Intentions between functions" });
  const editor = el("div", { class: "panel side", id: "intention-editor" });
  host.append(el("h1", { text: "Intentions" }),
    el("div", { class: "legend" }, el("span", { class: "allow", text: "── allow" }),
      el("span", { class: "deny", text: "- - deny" }), el("span", { text: "··· calls without an intention" }),
      el("span", { text: "✔ allowed / ✘ denied calls, from the audit log" })),
    el("div", { class: "row" }, el("div", { class: "grow" }, graph), editor));

  let selectedKey = null;
  const openEditor = (edge) => {
    selectedKey = `${edge.source}\u2192${edge.destination}`;
    for (const g of graph.querySelectorAll(".edge")) g.classList.toggle("selected", g.dataset.key === selectedKey);
    renderEditor(editor, edge, functions, () => { location.hash = "intentions"; location.reload(); });
  };

  const draw = () => {
    const list = [...names].sort();
    const n = list.length;
    const size = Math.max(560, Math.min(4000, 80 * n));
    const r = size / 2 - 60;
    const pos = new Map(list.map((name, k) => {
      const a = (2 * Math.PI * k) / n - Math.PI / 2;
      return [name, { x: size / 2 + r * Math.cos(a), y: size / 2 + r * Math.sin(a) }];
    }));
    graph.setAttribute("viewBox", `0 0 ${size} ${size}`);
    const defs = svg("defs", {}, svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: "10", refY: "5",
      markerUnits: "userSpaceOnUse", markerWidth: "12", markerHeight: "12", orient: "auto-start-reverse" }, svg("path", { d: "M0,0 L10,5 L0,10 z" })));
    const edgeLayer = svg("g");
    for (const [key, e] of edges) {
      const a = pos.get(e.source);
      const b = pos.get(e.destination);
      if (!a || !b) continue;
      // Two calls between the same pair bend apart; a self-call loops.
      const dx = b.x - a.x, dy = b.y - a.y;
      const len = Math.hypot(dx, dy) || 1;
      const ux = dx / len, uy = dy / len;
      const sx = a.x + ux * 24, sy = a.y + uy * 24, tx = b.x - ux * 26, ty = b.y - uy * 26;
      const bend = 70;
      const mx = (sx + tx) / 2 - uy * bend, my = (sy + ty) / 2 + ux * bend;
      const d = e.source === e.destination
        ? `M${a.x - 10},${a.y - 22} C${a.x - 60},${a.y - 90} ${a.x + 60},${a.y - 90} ${a.x + 10},${a.y - 22}`
        : `M${sx},${sy} Q${mx},${my} ${tx},${ty}`;
      const kind = e.intention ? e.intention.action : "traffic";
      const words = e.intention ? describePermissions(e.intention) : "no intention: denied by default";
      const label = `${e.source} to ${e.destination}: ${words}; ${e.allowed} allowed, ${e.denied} denied calls`;
      const lx = e.source === e.destination ? a.x : (sx + 2 * mx + tx) / 4;
      const ly = e.source === e.destination ? a.y - 80 : (sy + 2 * my + ty) / 4;
      const g = svg("g", { class: `edge ${kind}`, tabindex: "0", role: "button", "aria-label": label,
        "data-key": key, "data-source": e.source, "data-destination": e.destination,
        "data-allowed": e.allowed, "data-denied": e.denied },
      svg("title", { text: label }),
      svg("path", { d, "marker-end": "url(#arrow)" }),
      svg("text", { x: lx, y: ly - 4, class: "counts" },
        svg("tspan", { class: "ok", text: `✔${e.allowed}` }), svg("tspan", { text: " " }),
        svg("tspan", { class: "no", text: `✘${e.denied}` })));
      if (key === selectedKey) g.classList.add("selected");
      g.addEventListener("click", () => openEditor(e));
      g.addEventListener("keydown", (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); openEditor(e); } });
      edgeLayer.append(g);
    }
    const nodeLayer = svg("g");
    for (const name of list) {
      const p = pos.get(name);
      nodeLayer.append(svg("g", { class: `node${revoked.has(name) ? " revoked" : ""}`, "data-function": name },
        svg("title", { text: name === "*" ? "any function" : `${name}${revoked.has(name) ? " (revoked)" : ""}` }),
        svg("circle", { cx: p.x, cy: p.y, r: 20 }),
        svg("text", { x: p.x, y: p.y + 38, text: name })));
    }
    graph.replaceChildren(defs, edgeLayer, nodeLayer);
  };

  const count = (records) => {
    let changed = false;
    for (const { seq, event } of records) {
      if (event.action !== "writ:Invoke") continue;
      const source = fnOf(event.actor), destination = fnOf(event.resource);
      if (!source || !destination) continue;
      // A call counts on the intention that decided it: the pair's own, else a wildcard's.
      let e = edges.get(`${source}\u2192${destination}`);
      if (!e || !e.intention) {
        const wild = edges.get(`${source}\u2192*`) || edges.get(`*\u2192${destination}`) || edges.get("*\u2192*");
        e = wild && wild.intention ? wild : edgeOf(source, destination);
      }
      names.add(e.source); names.add(e.destination);
      if (event.outcome === "allowed") e.allowed++;
      else e.denied++;
      e.events.push({ seq, event });
      changed = true;
    }
    return changed;
  };

  draw();
  editor.append(el("p", { class: "muted", text: "Select an edge (click, or Tab to it and press Enter) to see and edit its intention, or write a new one." }),
    el("button", { type: "button", id: "new-intention" }, "New intention"));
  editor.querySelector("#new-intention").addEventListener("click", () => openEditor({ source: "", destination: "", intention: null, allowed: 0, denied: 0, events: [] }));

  const listener = (added) => {
    if (count(added)) {
      draw();
      if (selectedKey && edges.has(selectedKey)) {
        const e = edges.get(selectedKey);
        const events = editor.querySelector("#edge-events");
        if (events) events.replaceChildren(...eventLinks(e));
      }
    }
  };
  loadAudit().then(() => {
    if (audit.error) {
      status(`Call counts unavailable: ${audit.error.message}`);
      return;
    }
    count(audit.records);
    draw();
    audit.listeners.add(listener);
    graph.dataset.counted = "true";
    performance.mark("complete:intentions");
  });
  return { leave: () => audit.listeners.delete(listener) };
}

function eventLinks(edge) {
  const last = edge.events.slice(-8).reverse();
  if (last.length === 0) return [el("li", { class: "muted", text: "no calls yet" })];
  return last.map(({ seq, event }) => el("li", {},
    el("a", { href: `#audit/${seq}`, "data-seq": seq }, `#${seq}`), " ", tag(event.outcome, event.outcome),
    ` ${when(event.time)}${event.reason ? ` — ${event.reason}` : ""}`));
}

/** The editor of one intention: its fields, a check of a proposed call against it as
 * edited (before saving), save and delete. */
function renderEditor(editor, edge, functions, saved) {
  const i = edge.intention || { source: edge.source, destination: edge.destination, action: "allow", permissions: [] };
  const options = (id, value) => {
    const list = el("datalist", { id }, ["*", ...functions.map((f) => f.name)].map((n) => el("option", { value: n })));
    return list;
  };
  const source = el("input", { id: "i-source", value: i.source, list: "fn-names", required: true });
  const destination = el("input", { id: "i-destination", value: i.destination, list: "fn-names", required: true });
  const action = el("select", { id: "i-action" }, ["allow", "deny"].map((a) => el("option", { value: a, text: a, selected: a === i.action })));
  const permissions = el("textarea", { id: "i-permissions", spellcheck: "false", class: "mono" });
  permissions.value = JSON.stringify(i.permissions || [], null, 2);
  const description = el("input", { id: "i-description", value: i.description || "" });
  const method = el("select", { id: "c-method" }, ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"].map((m) => el("option", { value: m, text: m })));
  const path = el("input", { id: "c-path", value: "/", spellcheck: "false" });
  const caller = el("input", { id: "c-caller", value: i.source === "*" ? "" : i.source, list: "fn-names" });
  const callee = el("input", { id: "c-callee", value: i.destination === "*" ? "" : i.destination, list: "fn-names" });
  const verdict = el("div", { id: "check-verdict", role: "status", "aria-live": "polite" });
  const message = el("p", { id: "intention-message", role: "alert" });

  const proposed = () => {
    let perms;
    try {
      perms = JSON.parse(permissions.value || "[]");
    } catch (e) {
      throw new Error(`Permissions: not JSON: ${e.message}`);
    }
    const p = { source: source.value.trim(), destination: destination.value.trim(), action: action.value, permissions: perms };
    if (description.value.trim()) p.description = description.value.trim();
    return p;
  };
  const check = async () => {
    verdict.replaceChildren();
    try {
      const p = proposed();
      const v = await call("POST", "/v1/intentions/check", {
        source: caller.value.trim(), destination: callee.value.trim(),
        method: method.value, path: path.value, proposed: p,
      });
      verdict.replaceChildren(tag(v.decision, v.decision), ` ${v.reason}`,
        v.matched.length ? el("div", { class: "muted", text: `statements: ${v.matched.join(", ")}` }) : "");
      verdict.dataset.decision = v.decision;
    } catch (e) {
      verdict.replaceChildren(el("span", { class: "error", text: e.message }));
    }
  };
  const save = async () => {
    try {
      await call("PUT", "/v1/intentions", proposed());
      message.className = "";
      message.textContent = "Saved.";
      saved();
    } catch (e) {
      message.className = "error";
      message.textContent = e.message;
    }
  };
  const remove = async () => {
    try {
      await call("DELETE", `/v1/intentions?source=${encodeURIComponent(i.source)}&destination=${encodeURIComponent(i.destination)}`);
      saved();
    } catch (e) {
      message.className = "error";
      message.textContent = e.message;
    }
  };
  const field = (id, label, input) => el("div", {}, el("label", { for: id, text: label }), input);
  const form = el("form", { "aria-label": "Edit intention" },
    options("fn-names"),
    field("i-source", "Source", source), field("i-destination", "Destination", destination),
    field("i-action", "Action", action),
    field("i-permissions", "L7 permissions (JSON: methods, pathExact, pathPrefix, headers)", permissions),
    field("i-description", "Description", description),
    el("h2", { text: "Check a call against this intention as edited" }),
    el("div", { class: "filters" }, field("c-caller", "Caller", caller), field("c-callee", "Called", callee),
      field("c-method", "Method", method), field("c-path", "Path", path),
      el("button", { type: "button", id: "check-call", onclick: check }, "Check")),
    verdict,
    el("p", {}, el("button", { type: "submit", class: "primary" }, "Save"), " ",
      edge.intention ? el("button", { type: "button", class: "danger", onclick: remove }, "Delete") : ""),
    message);
  form.addEventListener("submit", (e) => { e.preventDefault(); save(); });
  editor.replaceChildren(
    el("h2", { text: edge.intention ? `${edge.source} → ${edge.destination}` : (edge.source ? `${edge.source} → ${edge.destination} (no intention)` : "New intention") }),
    edge.intention ? el("p", { class: "muted", text: `${describePermissions(edge.intention)}. Written ${when(edge.intention.updatedAt)}.` }) : "",
    el("p", {}, tag(`✔ ${edge.allowed} allowed`, "allowed"), tag(`✘ ${edge.denied} denied`, "denied")),
    el("h2", { text: "Recent calls" }), el("ul", { id: "edge-events" }, eventLinks(edge)),
    form);
  source.focus();
}
