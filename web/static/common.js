// The pages talk to the JSON API with the session cookie; every unsafe request echoes the
// session's CSRF token. Errors come back in the API's one shape: {detail: {message, where}}.
"use strict";
window.ll = {
  csrf() { return document.querySelector('meta[name="csrf-token"]').content; },
  async api(method, url, body, headers = {}) {
    const res = await fetch(url, {
      method, credentials: "same-origin",
      headers: {"Content-Type": "application/json", "Accept": "application/json",
                "X-CSRF-Token": ll.csrf(), ...headers},
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (res.status === 204) return null;
    const data = await res.json().catch(() => null);
    if (!res.ok) {
      const d = data && data.detail;
      const msg = d && d.message ? d.message + (d.where ? ` (${d.where})` : "") : `HTTP ${res.status}`;
      const err = new Error(msg);
      err.status = res.status;
      throw err;
    }
    return data;
  },
  say(message, isError = false) {
    const box = document.getElementById("status");
    box.textContent = message;
    box.classList.toggle("error", isError);
    box.setAttribute("role", isError ? "alert" : "status");
  },
  typing(event) {
    const t = event.target;
    return t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" ||
                 t.isContentEditable);
  },
  pct(x) { return x === null || x === undefined ? "n/a" : `${(100 * x).toFixed(1)}%`; },
};
document.addEventListener("DOMContentLoaded", () => {
  const out = document.getElementById("sign-out");
  if (out) out.addEventListener("click", async () => {
    try { await ll.api("POST", "/auth/logout"); } catch (e) { /* signed out already */ }
    window.location.assign("/login");
  });
});
