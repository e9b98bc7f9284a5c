// The reviewer's queue: J/K move between items, a number key decides the focused item.
"use strict";
const R = {project: null};

function items() { return [...document.querySelectorAll(".queue-item:not(.done)")]; }

function focused() {
  const el = document.activeElement && document.activeElement.closest(".queue-item");
  return el && !el.classList.contains("done") ? el : null;
}

function move(step) {
  const list = items();
  if (!list.length) return;
  const at = list.indexOf(focused());
  const next = list[Math.min(list.length - 1, Math.max(0, at + step))] || list[0];
  next.focus();
  next.scrollIntoView({block: "nearest"});
}

async function decide(card, label) {
  const note = card.querySelector(".note-input").value;
  try {
    const ev = await ll.api("POST", `/projects/${encodeURIComponent(R.project)}/review/adjudications`,
      {batch_id: Number(card.dataset.batch), item_id: Number(card.dataset.item), label, note});
    const done = card.querySelector(".decided");
    done.hidden = false;
    done.textContent = `Decided: ${ev.to_label} (by ${ev.by}; was ${ev.from_label || "unlabeled"}).`;
    card.querySelector(".decide").hidden = true;
    card.classList.add("done");
    ll.say(`Item ${card.dataset.item}: decided ${label}.`);
    const list = items();
    if (list.length) list[0].focus(); else document.getElementById("items-heading").focus();
  } catch (e) {
    ll.say(`Item ${card.dataset.item}: ${e.message}`, true);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("review");
  R.project = root.dataset.project;
  const labels = JSON.parse(root.dataset.labels);
  document.getElementById("items-heading").tabIndex = -1;
  for (const card of document.querySelectorAll(".queue-item")) {
    card.querySelectorAll(".decide-btn").forEach((b) => b.addEventListener("click", () => decide(card, b.dataset.label)));
    const other = card.querySelector(".other-label");
    const useOther = () => {
      if (!labels.includes(other.value)) { ll.say(`"${other.value}" is not a label of this project.`, true); return; }
      decide(card, other.value);
    };
    card.querySelector(".decide-other").addEventListener("click", useOther);
    other.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); useOther(); } });
  }
  for (const b of document.querySelectorAll(".resolve-gate")) {
    b.addEventListener("click", async () => {
      const id = b.dataset.batch;
      try {
        await ll.api("POST", `/projects/${encodeURIComponent(R.project)}/batches/${id}/resolve`,
                     {corrections: {}, note: document.getElementById(`gate-note-${id}`).value});
        document.getElementById(`gated-${id}`).remove();
        ll.say(`Batch ${id}'s gate is resolved: it may feed dataset versions.`);
      } catch (e) { ll.say(`Batch ${id}: ${e.message}`, true); }
    });
  }
  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (document.getElementById("keys-dialog").open) return;
    if (ll.typing(e)) { if (e.key === "Escape") e.target.closest(".queue-item")?.focus(); return; }
    if (e.key === "?") { document.getElementById("keys-dialog").showModal(); e.preventDefault(); return; }
    if (e.key === "j" || e.key === "J" || e.key === "ArrowDown") { move(1); e.preventDefault(); return; }
    if (e.key === "k" || e.key === "K" || e.key === "ArrowUp") { move(-1); e.preventDefault(); return; }
    const card = focused();
    if (!card) return;
    const options = JSON.parse(card.dataset.options);
    if (/^[1-9]$/.test(e.key) && options[Number(e.key) - 1]) {
      e.preventDefault(); decide(card, options[Number(e.key) - 1]);
    } else if (e.key === "/") {
      e.preventDefault(); card.querySelector(".other-label").focus();
    } else if (e.key === "n" || e.key === "N") {
      e.preventDefault(); card.querySelector(".note-input").focus();
    }
  });
  const first = items()[0];
  if (first) first.focus();
});
