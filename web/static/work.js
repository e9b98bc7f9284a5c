// The annotator's workbench: keyboard first, the next task shown at once. Tasks are
// fetched ahead (POST /tasks/next) and each answer is sent while the next task is shown;
// a refused answer puts its task back in front and says why.
"use strict";
const REASONS = {
  "safety-critical": "a safety-critical label is plausible",
  "low-confidence": "the model is unsure",
  "audit": "a spot check of the model's confident labels",
  "calibration": "a check of the model's confidence scale",
  "re-review": "a finding asked for this item to be answered again",
};
const PREFETCH = 20;  // tasks held ahead: the next one is on hand while answers go out
const REFILL_BELOW = 8;
const W = {
  project: null, queue: [], current: null, shownAt: 0, history: [], answered: new Set(),
  fetching: null, unsure: false, changing: false, sent: Promise.resolve(), choices: [],
  timings: [], keyAt: null, batchId: null,
};
window.labelloopTimings = W.timings;  // ms from an answer's key to the next task painted

function base() { return `/projects/${encodeURIComponent(W.project)}/tasks`; }

function refill() {
  if (W.fetching) return W.fetching;
  W.fetching = ll.api("POST", `${base()}/next?limit=${PREFETCH}`).then((tasks) => {
    for (const t of tasks) {
      const known = W.answered.has(t.task_id) || W.queue.some((q) => q.task_id === t.task_id)
        || (W.current && W.current.task_id === t.task_id);
      if (!known) W.queue.push(t);
    }
  }).catch((e) => ll.say(`Could not fetch tasks: ${e.message}`, true))
    .finally(() => { W.fetching = null; });
  return W.fetching;
}

async function showNext() {
  if (!W.queue.length) await refill();
  if (!W.queue.length) { showEmpty(); return; }
  show(W.queue.shift(), false);
  if (W.queue.length < REFILL_BELOW) refill();
}

function showEmpty() {
  W.current = null;
  document.getElementById("task").hidden = true;
  document.getElementById("empty").hidden = false;
  document.getElementById("guideline-excerpt").textContent = "";
  updateProgress();
}

function choicesFor(t) {
  const labels = [];
  const add = (lb) => { if (lb && !labels.includes(lb) && labels.length < 9) labels.push(lb); };
  add(t.prelabel);
  const probs = (t.suggestion && t.suggestion.probs) || {};
  Object.keys(probs).sort((a, b) => probs[b] - probs[a]).forEach(add);
  t.labels.forEach(add);
  return labels;
}

function show(t, changing) {
  W.current = t; W.changing = changing; W.unsure = Boolean(changing && t.answer && t.answer.unsure);
  document.getElementById("empty").hidden = true;
  document.getElementById("task").hidden = false;
  document.getElementById("task-id").textContent = t.task_id;
  document.getElementById("reason").textContent = t.reason;
  document.getElementById("reason-help").textContent = REASONS[t.reason] ? `(${REASONS[t.reason]})` : "";
  document.getElementById("item").textContent = t.text;
  document.getElementById("prelabel").textContent = t.prelabel || "none";
  document.getElementById("confidence").textContent = t.prelabel_confidence === null
    ? "" : `confidence ${(100 * t.prelabel_confidence).toFixed(0)}%`;
  document.getElementById("model").textContent = t.suggestion ? `by ${t.suggestion.model_version}` : "";
  document.getElementById("accept").disabled = !t.prelabel;
  const note = document.getElementById("changing");
  note.hidden = !changing;
  if (changing && t.answer) {
    document.getElementById("your-answer").textContent = t.answer.status === "skipped"
      ? `skipped: ${t.answer.skip_reason}` : `${t.answer.label}${t.answer.unsure ? ", unsure" : ""}`;
  }
  W.choices = choicesFor(t);
  const box = document.getElementById("choice-buttons");
  box.replaceChildren(...W.choices.map((lb, i) => {
    const b = document.createElement("button");
    b.type = "button"; b.className = "choice"; b.dataset.label = lb;
    b.innerHTML = `<kbd>${i + 1}</kbd> `;
    b.append(lb);
    if (lb === t.prelabel) b.classList.add("pre");
    if (changing && t.answer && t.answer.label === lb) b.setAttribute("aria-current", "true");
    b.addEventListener("click", () => answerWith(lb));
    return b;
  }));
  setUnsure(W.unsure);
  const ex = document.getElementById("guideline-excerpt");
  ex.replaceChildren(...(t.guideline_excerpt || []).map((p) => {
    const el = document.createElement("p"); el.textContent = p; return el;
  }));
  document.getElementById("guideline-version").textContent = t.guideline_version;
  W.shownAt = performance.now();
  if (W.keyAt !== null) {
    const started = W.keyAt; W.keyAt = null;
    requestAnimationFrame(() => W.timings.push(performance.now() - started));
  }
  if (W.batchId !== t.batch_id) { W.batchId = t.batch_id; updateProgress(); }
}

function setUnsure(on) {
  W.unsure = on;
  const b = document.getElementById("unsure");
  b.setAttribute("aria-pressed", on ? "true" : "false");
  b.classList.toggle("on", on);
}

function send(task, body) {
  const key = `${task.task_id}-${Date.now()}-${Math.random().toString(36).slice(2)}`;
  W.answered.add(task.task_id);
  W.history.push(task.task_id);
  const request = ll.api("POST", `${base()}/${task.task_id}/annotations`, body,
                         {"Idempotency-Key": key})
    .then((res) => {
      if (res.qa_job_id) ll.say(`Batch ${task.batch_id} is complete: its QA is running.`);
      updateProgress();
    })
    .catch((e) => {
      ll.say(`Task ${task.task_id}: your answer was not saved: ${e.message}`, true);
      W.history = W.history.filter((id) => id !== task.task_id);
      if (e.status === 409) return;  // closed or full: nothing to answer again
      W.answered.delete(task.task_id);
      if (W.current) W.queue.unshift(W.current);
      show(task, Boolean(task.answer));
    });
  W.sent = W.sent.then(() => request);
}

function answer(body) {
  const t = W.current;
  if (!t) return;
  body.seconds_spent = Math.round(performance.now() - W.shownAt) / 1000;
  body.unsure = W.unsure;
  send(t, body);
  showNext();
}

function answerWith(label) {
  if (!label) return;
  answer({label, status: "submitted"});
}

async function undo() {
  await W.sent;
  const id = W.history.pop();
  if (id === undefined) { ll.say("Nothing to undo yet."); return; }
  try {
    const t = await ll.api("GET", `${base()}/${id}`);
    if (t.answer && !t.answer.batch_open) {
      ll.say(`Task ${id}'s batch is closed: its answer can no longer change.`, true);
      return;
    }
    if (W.current) W.queue.unshift(W.current);
    show(t, true);
    ll.say(`Changing your answer to task ${id}.`);
  } catch (e) {
    ll.say(`Could not reopen task ${id}: ${e.message}`, true);
  }
}

async function updateProgress() {
  if (!W.batchId) return;
  try {
    const p = await ll.api("GET", `${base()}/progress?batch_id=${W.batchId}`);
    const bar = document.getElementById("batch-progress");
    bar.max = Math.max(1, p.n_tasks); bar.value = p.n_done;
    const median = p.median_seconds === null ? "" : `, median ${p.median_seconds.toFixed(1)} s per item`;
    document.getElementById("progress-label").textContent = `Batch ${p.batch_id} progress`;
    document.getElementById("progress-text").textContent =
      `${p.n_done} of ${p.n_tasks} tasks done (${p.status}); you answered ${p.mine_answered}, ` +
      `skipped ${p.mine_skipped}, hold ${p.mine_held}${median}`;
  } catch (e) { /* progress is a nicety; the next answer tries again */ }
}

function openSkip() {
  if (!W.current) return;
  const dialog = document.getElementById("skip-dialog");
  document.getElementById("skip-form").reset();
  dialog.returnValue = "";
  dialog.showModal();
  dialog.querySelector('input[name="reason"]').focus();
}

function skipClosed() {
  const dialog = document.getElementById("skip-dialog");
  if (dialog.returnValue !== "skip") return;
  const form = document.getElementById("skip-form");
  const picked = form.querySelector('input[name="reason"]:checked');
  const reason = (form.elements.other.value || "").trim() || (picked ? picked.value : "");
  if (!reason) { ll.say("A skip needs a reason.", true); return; }
  answer({status: "skipped", skip_reason: reason});
}

function onKey(e) {
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  const dialog = document.getElementById("skip-dialog");
  if (dialog.open) {
    if (/^[1-3]$/.test(e.key) && e.target.id !== "skip-other") {
      const radios = dialog.querySelectorAll('input[name="reason"]');
      radios[Number(e.key) - 1].checked = true;
      radios[Number(e.key) - 1].focus();
      e.preventDefault();
    } else if (e.key === "Enter" && e.target.tagName !== "BUTTON") {
      e.preventDefault();
      dialog.close("skip");
    }
    return;
  }
  if (document.getElementById("keys-dialog").open) return;
  if (ll.typing(e)) {
    if (e.key === "Escape") e.target.blur();
    return;
  }
  if (e.key === "?") { document.getElementById("keys-dialog").showModal(); e.preventDefault(); return; }
  if (e.key === "u" || e.key === "U") { undo(); e.preventDefault(); return; }
  if (!W.current) return;
  if (e.target.tagName === "BUTTON" && e.key === "Enter") return;  // the button's own click
  if (e.key === "Enter" && W.current.prelabel) {
    W.keyAt = performance.now(); e.preventDefault(); answerWith(W.current.prelabel);
  } else if (/^[1-9]$/.test(e.key) && W.choices[Number(e.key) - 1]) {
    W.keyAt = performance.now(); e.preventDefault(); answerWith(W.choices[Number(e.key) - 1]);
  } else if (e.key === "s" || e.key === "S") {
    e.preventDefault(); openSkip();
  } else if (e.key === "f" || e.key === "F") {
    e.preventDefault(); setUnsure(!W.unsure);
    ll.say(W.unsure ? "This answer will be flagged as unsure." : "Unsure flag removed.");
  } else if (e.key === "/") {
    e.preventDefault(); document.getElementById("other-label").focus();
  }
}

document.addEventListener("DOMContentLoaded", async () => {
  const root = document.getElementById("workbench");
  W.project = root.dataset.project;
  document.addEventListener("keydown", onKey);
  document.getElementById("accept").addEventListener("click", () => W.current && answerWith(W.current.prelabel));
  document.getElementById("unsure").addEventListener("click", () => setUnsure(!W.unsure));
  document.getElementById("skip").addEventListener("click", openSkip);
  document.getElementById("undo").addEventListener("click", undo);
  document.getElementById("keys").addEventListener("click", () => document.getElementById("keys-dialog").showModal());
  document.getElementById("reload").addEventListener("click", showNext);
  document.getElementById("skip-dialog").addEventListener("close", skipClosed);
  const other = document.getElementById("other-label");
  const labels = JSON.parse(root.dataset.labels);
  const otherAnswer = () => {
    if (!labels.includes(other.value)) { ll.say(`"${other.value}" is not a label of this project.`, true); return; }
    const lb = other.value; other.value = ""; other.blur(); answerWith(lb);
  };
  document.getElementById("other-submit").addEventListener("click", otherAnswer);
  other.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); otherAnswer(); } });
  if (root.dataset.openTask) {
    try {
      show(await ll.api("GET", `${base()}/${root.dataset.openTask}`), true);
      refill();
      return;
    } catch (e) { ll.say(`Could not open task ${root.dataset.openTask}: ${e.message}`, true); }
  }
  showNext();
});
