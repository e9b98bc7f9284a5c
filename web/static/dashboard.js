// The dashboard: request the next batch (a job) and follow the jobs' progress.
"use strict";
const D = {project: null, timer: null};

function cell(text) { const td = document.createElement("td"); td.textContent = text; return td; }

function renderJobs(jobs) {
  const body = document.getElementById("jobs-body");
  body.replaceChildren(...jobs.map((j) => {
    const tr = document.createElement("tr");
    const th = document.createElement("th"); th.scope = "row"; th.textContent = j.id;
    const prog = document.createElement("td");
    const bar = document.createElement("progress");
    bar.max = 1; bar.value = j.fraction || 0; bar.setAttribute("aria-label", `job ${j.id} progress`);
    prog.append(bar, ` ${j.done}${j.total ? " / " + j.total : ""}`);
    const result = j.last_error || (j.result && j.result.batch_id ? `batch ${j.result.batch_id}, ${j.result.n_tasks} tasks` : "");
    tr.append(th, cell(j.kind), cell(j.status), prog, cell(j.created_by), cell(result));
    tr.dataset.status = j.status;
    return tr;
  }));
}

async function poll() {
  try {
    const jobs = await ll.api("GET", `/projects/${encodeURIComponent(D.project)}/jobs?limit=10`);
    renderJobs(jobs);
    const busy = jobs.some((j) => j.status === "queued" || j.status === "running");
    D.timer = busy ? setTimeout(poll, 1000) : null;
  } catch (e) { ll.say(`Could not read the jobs: ${e.message}`, true); }
}

document.addEventListener("DOMContentLoaded", () => {
  D.project = document.getElementById("dashboard").dataset.project;
  const form = document.getElementById("next-batch");
  if (form) form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const job = await ll.api("POST", `/projects/${encodeURIComponent(D.project)}/batches/jobs`,
        {size: Number(form.elements.size.value), strategy: form.elements.strategy.value});
      ll.say(`Job ${job.id} requests the next batch.`);
      if (!D.timer) poll();
    } catch (err) { ll.say(`The next batch was not requested: ${err.message}`, true); }
  });
  if ([...document.querySelectorAll("#jobs-body tr")].some((tr) => /queued|running/.test(tr.textContent))) poll();
});
