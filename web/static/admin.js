// Admin: users, memberships and tokens, through the API's admin routes.
"use strict";
function values(form) { return Object.fromEntries(new FormData(form).entries()); }

async function act(promise, done) {
  try { await promise; if (done) done(); } catch (e) { ll.say(e.message, true); }
}

async function showTokens(user) {
  const tokens = await ll.api("GET", `/users/${encodeURIComponent(user)}/tokens`);
  const body = document.getElementById("tokens-body");
  document.getElementById("tokens-caption").textContent = `Tokens of ${user}`;
  body.replaceChildren(...tokens.map((t) => {
    const tr = document.createElement("tr");
    const cells = [t.id, t.name, t.created_at.slice(0, 19), t.revoked_at ? t.revoked_at.slice(0, 19) : "no"];
    cells.forEach((c, i) => {
      const el = document.createElement(i === 0 ? "th" : "td");
      if (i === 0) el.scope = "row";
      el.textContent = c; tr.append(el);
    });
    const td = document.createElement("td");
    if (!t.revoked_at) {
      const b = document.createElement("button");
      b.type = "button"; b.textContent = `Revoke token ${t.id}`;
      b.addEventListener("click", () => act(ll.api("DELETE", `/tokens/${t.id}`), () => showTokens(user)));
      td.append(b);
    }
    tr.append(td);
    return tr;
  }));
  document.getElementById("tokens").hidden = false;
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("new-user").addEventListener("submit", (e) => {
    e.preventDefault();
    const v = values(e.target);
    act(ll.api("POST", "/users", {name: v.name, role: v.role, password: v.password || null}),
        () => window.location.reload());
  });
  document.getElementById("set-member").addEventListener("submit", (e) => {
    e.preventDefault();
    const v = values(e.target);
    act(ll.api("PUT", `/projects/${encodeURIComponent(v.project)}/members`, {user: v.user, role: v.role}),
        () => window.location.reload());
  });
  for (const b of document.querySelectorAll(".remove-member")) {
    b.addEventListener("click", () => act(ll.api("DELETE",
      `/projects/${encodeURIComponent(b.dataset.project)}/members/${encodeURIComponent(b.dataset.user)}`),
      () => window.location.reload()));
  }
  const form = document.getElementById("tokens-of");
  form.addEventListener("submit", (e) => { e.preventDefault(); act(showTokens(values(form).user)); });
  document.getElementById("new-token").addEventListener("click", () => {
    const v = values(form);
    act(ll.api("POST", `/users/${encodeURIComponent(v.user)}/tokens`, {name: v.token_name || "api"})
      .then((t) => {
        const once = document.getElementById("token-once");
        once.hidden = false;
        once.textContent = `New token for ${v.user} (shown once): ${t.token}`;
        return showTokens(v.user);
      }));
  });
});
