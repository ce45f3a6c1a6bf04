// Passkeys (WebAuthn) for the login, second-step and account pages: a form marked
// data-passkey="create" or "get" asks its data-options URL for the options (a POST with the
// form's CSRF fields), calls navigator.credentials, and posts the credential as JSON in the
// form's credential field. Served from /static (CSP script-src 'self'; no inline script).
"use strict";
(function () {
  function toBytes(b64url) {
    const b64 = b64url.replace(/-/g, "+").replace(/_/g, "/");
    const bin = atob(b64 + "===".slice((b64.length + 3) % 4));
    return Uint8Array.from(bin, function (c) { return c.charCodeAt(0); }).buffer;
  }
  function toB64url(buffer) {
    let bin = "";
    new Uint8Array(buffer).forEach(function (b) { bin += String.fromCharCode(b); });
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function creationOptions(o) {
    o.challenge = toBytes(o.challenge);
    o.user.id = toBytes(o.user.id);
    (o.excludeCredentials || []).forEach(function (c) { c.id = toBytes(c.id); });
    return o;
  }
  function requestOptions(o) {
    o.challenge = toBytes(o.challenge);
    (o.allowCredentials || []).forEach(function (c) { c.id = toBytes(c.id); });
    return o;
  }
  function serialise(cred) {
    const r = cred.response;
    const out = { id: cred.id, rawId: toB64url(cred.rawId), type: cred.type,
                  clientExtensionResults: cred.getClientExtensionResults(), response: {} };
    out.response.clientDataJSON = toB64url(r.clientDataJSON);
    if (r.attestationObject) {
      out.response.attestationObject = toB64url(r.attestationObject);
      out.response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      out.response.authenticatorData = toB64url(r.authenticatorData);
      out.response.signature = toB64url(r.signature);
      if (r.userHandle) { out.response.userHandle = toB64url(r.userHandle); }
    }
    if (cred.authenticatorAttachment) { out.authenticatorAttachment = cred.authenticatorAttachment; }
    return JSON.stringify(out);
  }
  function field(form) {
    return form.querySelector("[data-credential]") || form.elements.namedItem("credential");
  }
  function showError(form, text) {
    const p = form.querySelector("[data-passkey-error]");
    if (p) { p.textContent = text; p.hidden = false; }
  }
  async function run(form) {
    const body = new URLSearchParams();
    ["txn", "csrf_token"].forEach(function (name) {
      const input = form.elements.namedItem(name);
      if (input) { body.append(name, input.value); }
    });
    const answer = await fetch(form.dataset.options, {
      method: "POST", body: body, credentials: "same-origin",
      headers: { "Accept": "application/json" },
    });
    if (!answer.ok) { throw new Error("options " + answer.status); }
    const options = await answer.json();
    const cred = form.dataset.passkey === "create"
      ? await navigator.credentials.create({ publicKey: creationOptions(options) })
      : await navigator.credentials.get({ publicKey: requestOptions(options) });
    field(form).value = serialise(cred);
    form.submit();
  }
  document.querySelectorAll("form[data-passkey]").forEach(function (form) {
    if (!window.PublicKeyCredential) { form.hidden = true; return; }
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      run(form).catch(function () {
        showError(form, "The passkey was not used. Try again, or use another way.");
      });
    });
  });
})();
