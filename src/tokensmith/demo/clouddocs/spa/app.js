// CloudDocs SPA: the page. Data is put into the DOM with textContent only (no innerHTML).
import * as auth from "/auth.js";
import * as api from "/api.js";

const $ = (id) => document.getElementById(id);
let editing = null;

function show(section) {
  for (const id of ["loading", "signed-out", "signed-in"]) $(id).hidden = id !== section;
  $("who").hidden = section !== "signed-in";
}

function say(text) {
  $("status").textContent = text;
}

function problem(text) {
  $("problem").textContent = text || "";
  $("problem").hidden = !text;
}

function describeToken() {
  const current = auth.session();
  if (current === null) return;
  const until = new Date(current.expiresAt).toLocaleTimeString();
  const renewed =
    current.renewals === 0
      ? "not renewed yet"
      : current.renewals === 1
        ? "renewed once"
        : `renewed ${current.renewals} times`;
  $("token-info").textContent = `Access token valid until ${until} (${renewed}). Tokens are kept in memory only.`;
}

async function loadDocuments() {
  const documents = await api.listDocuments();
  const list = $("docs");
  list.replaceChildren();
  for (const doc of documents) {
    const item = document.createElement("li");
    const open = document.createElement("button");
    open.type = "button";
    open.className = "doc-link";
    open.textContent = doc.title;
    open.addEventListener("click", () => openDocument(doc.id).catch(report));
    const when = document.createElement("span");
    when.className = "fine";
    when.textContent = `updated ${new Date(doc.updated_at).toLocaleString()}`;
    item.append(open, when);
    list.append(item);
  }
  $("empty").hidden = documents.length > 0;
  list.hidden = documents.length === 0;
  describeToken();
}

async function openDocument(id) {
  const doc = await api.readDocument(id);
  editing = doc.id;
  $("edit-title").value = doc.title;
  $("edit-body").value = doc.body;
  $("editor").hidden = false;
  $("edit-title").focus();
}

function closeEditor() {
  editing = null;
  $("editor").hidden = true;
}

function report(error) {
  if (error instanceof auth.AuthError && auth.session() === null) {
    show("signed-out");
  }
  problem(error.message);
}

function formDocument(form) {
  const data = new FormData(form);
  return { title: String(data.get("title")).trim(), body: String(data.get("body")) };
}

function wire() {
  $("login").addEventListener("click", () => auth.login().catch(report));
  $("logout").addEventListener("click", () => auth.logout().catch(report));
  $("reload").addEventListener("click", () => {
    problem("");
    loadDocuments().then(() => say("Documents reloaded."), report);
  });
  $("close").addEventListener("click", closeEditor);
  $("new-form").addEventListener("submit", (event) => {
    event.preventDefault();
    problem("");
    const form = event.currentTarget;
    api
      .createDocument(formDocument(form))
      .then((doc) => {
        form.reset();
        say(`Created “${doc.title}”.`);
        return loadDocuments();
      })
      .catch(report);
  });
  $("edit-form").addEventListener("submit", (event) => {
    event.preventDefault();
    problem("");
    api
      .updateDocument(editing, formDocument(event.currentTarget))
      .then((doc) => {
        say(`Saved “${doc.title}”.`);
        return loadDocuments();
      })
      .catch(report);
  });
  $("delete").addEventListener("click", () => {
    problem("");
    api
      .deleteDocument(editing)
      .then(() => {
        closeEditor();
        say("Document deleted.");
        return loadDocuments();
      })
      .catch(report);
  });
  auth.onChange((reason) => {
    if (reason === "refreshed") describeToken();
    if (reason === "expired") {
      show("signed-out");
      problem("Your session has ended. Please sign in again.");
    }
  });
}

async function start() {
  wire();
  const config = await (await fetch("/config.json")).json();
  auth.configure(config);
  api.configureApi(config.api_url);
  let outcome;
  try {
    outcome = await auth.handleRedirect();
  } catch (error) {
    show("signed-out");
    problem(error.message);
    return;
  }
  if (outcome !== "signed-in") {
    show("signed-out");
    if (outcome === "signed-out") say("You are signed out.");
    return;
  }
  const claims = auth.session().claims;
  const profile = await auth.userinfo().catch(() => ({}));
  $("user-name").textContent = profile.name || profile.preferred_username || claims.sub;
  show("signed-in");
  await loadDocuments().catch(report);
}

start().catch((error) => {
  show("signed-out");
  problem(`CloudDocs could not start: ${error.message}`);
});
