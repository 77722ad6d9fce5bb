// The console's shell: sign in and out, and the views by the page's #fragment.
import { ApiError, signIn, signOut } from "./api.js";
import { audit, el } from "./common.js";
import { functionsView, auditView, secretsView, caView } from "./views.js";
import { intentionsView } from "./graph.js";

const $ = (id) => document.getElementById(id);

const views = {
  functions: functionsView,
  intentions: intentionsView,
  audit: auditView,
  secrets: secretsView,
  ca: caView,
};

let current = null;

async function route() {
  const name = (location.hash.replace(/^#/, "").split("/")[0]) || "functions";
  const view = views[name] || functionsView;
  for (const a of document.querySelectorAll("nav a")) {
    if (a.dataset.view === name) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (current && current.leave) current.leave();
  const host = $("view");
  host.replaceChildren();
  document.body.dataset.view = name;
  delete document.body.dataset.rendered;
  try {
    current = await view(host, location.hash);
    document.body.dataset.rendered = name;
    performance.mark(`rendered:${name}`);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      showSignIn();
      return;
    }
    host.replaceChildren(el("p", { class: "error", role: "alert", text: `${e.message}` }));
    document.body.dataset.rendered = name;
  }
}

function showSignIn(message) {
  $("nav").hidden = true;
  $("sign-out").hidden = true;
  $("view").replaceChildren();
  $("sign-in").hidden = false;
  $("sign-in-error").textContent = message || "";
  document.body.dataset.rendered = "sign-in";
  $("token").focus();
}

function showConsole() {
  $("sign-in").hidden = true;
  $("nav").hidden = false;
  $("sign-out").hidden = false;
}

async function start() {
  $("sign-in-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const input = $("token");
    const token = input.value.trim();
    input.value = "";
    try {
      await signIn(token);
      showConsole();
      await route();
      $("main").focus();
    } catch (err) {
      showSignIn(err.message);
    }
  });
  $("sign-out").addEventListener("click", async () => {
    audit.following = false;
    await signOut();
    location.hash = "";
    location.reload();
  });
  window.addEventListener("hashchange", () => {
    if (!$("nav").hidden) route();
  });
  window.addEventListener("writ:signed-out", () => showSignIn("The session ended; sign in again."));
  // Signed in already? The cookie is HttpOnly, so the view's first read says: a 401 shows
  // the sign-in form.
  showConsole();
  await route();
}

start();
