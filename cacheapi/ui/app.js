// The shardns status page. It reads GET stats every second, and GET jobs
// when the server has a work queue, and renders them with DOM calls only:
// every string from the server lands as text, never as markup. Numbers
// carry their raw value in a data-value attribute.

const POLL_MS = 1000; // between readings while the page is visible
const HIDDEN_POLL_MS = 5000; // between readings while it is hidden
const FETCH_TIMEOUT_MS = 4000; // one request (/stats bounds itself at 2 s)
const SPARK_WINDOW_MS = 60000; // the sparkline's span
const SPARK_MAX_POINTS = 240; // bound on the samples kept
const JOBS_RETRY_TICKS = 10; // a missing /jobs is asked again every 10 readings
const MAX_ROWS = 500; // rows per table

const byId = (id) => document.getElementById(id);

const el = {
  updated: byId("updated"),
  pause: byId("pause"),
  error: byId("error"),
  errorText: byId("error-text"),
  warnings: byId("warnings"),
  warningsText: byId("warnings-text"),
  fleetQPS: byId("fleet-qps"),
  fleetHitRatio: byId("fleet-hit-ratio"),
  fleetQueries: byId("fleet-queries"),
  fleetStale: byId("fleet-stale"),
  fleetErrors: byId("fleet-errors"),
  fleetP50: byId("fleet-p50"),
  fleetP99: byId("fleet-p99"),
  fleetFrontends: byId("fleet-frontends"),
  fleetRow: byId("fleet-row"),
  spark: byId("qps-spark"),
  sparkCaption: byId("spark-caption"),
  shardRows: byId("shard-rows"),
  shardsEmpty: byId("shards-empty"),
  frontendRows: byId("frontend-rows"),
  frontendsEmpty: byId("frontends-empty"),
  process: byId("process"),
  processAbout: byId("process-about"),
  procQPS: byId("proc-qps"),
  procRecentHit: byId("proc-recent-hit-ratio"),
  procHit: byId("proc-hit-ratio"),
  procQueries: byId("proc-queries"),
  procP50: byId("proc-p50"),
  procP90: byId("proc-p90"),
  procP99: byId("proc-p99"),
  procErrors: byId("proc-errors"),
  procEntries: byId("proc-entries"),
  procBytes: byId("proc-bytes"),
  procEvictions: byId("proc-evictions"),
  fleetSection: byId("fleet"),
  fleetH: byId("fleet-h"),
  shardsSection: byId("shards-section"),
  frontendsSection: byId("frontends-section"),
  queueStatus: byId("queue-status"),
  jobs: byId("jobs"),
  jobRows: byId("job-rows"),
};

const state = {
  paused: false,
  timer: null, // the pending reading, if any
  running: false, // a reading is in flight
  tick: 0,
  jobsAbsent: false, // the server answered that it has no /jobs
  lastOK: null, // Date of the last good /stats reading
  samples: [], // {t, qps} of the fleet (of this process without one), oldest first
  sparkWhat: "Fleet", // whose queries per second the sparkline draws
};

// ---- formatting ----

const intFmt = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const rateFmt = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
const timeFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });

// num returns v as a finite number, or null. Numeric strings count.
function num(v) {
  let n = NaN;
  if (typeof v === "number") n = v;
  else if (typeof v === "string" && v.trim() !== "") n = Number(v);
  return Number.isFinite(n) ? n : null;
}

// count returns v as a non-negative number, 0 for anything else.
function count(v) {
  const n = num(v);
  return n !== null && n > 0 ? n : 0;
}

const DASH = "—";
const fmtInt = (v) => (num(v) === null ? DASH : intFmt.format(num(v)));
const fmtRate = (v) => (num(v) === null ? DASH : rateFmt.format(num(v)));
const fmtPct = (v) => (num(v) === null ? DASH : (num(v) * 100).toFixed(1) + "%");

function fmtMs(v) {
  const n = num(v);
  if (n === null) return DASH;
  return (n < 10 ? n.toFixed(2) : n.toFixed(1)) + " ms";
}

function fmtBytes(v) {
  let n = num(v);
  if (n === null) return DASH;
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return (i === 0 ? String(n) : n.toFixed(n < 10 ? 1 : 0)) + " " + units[i];
}

function fmtAge(ms) {
  const n = num(ms);
  if (n === null) return DASH;
  if (n < 1000) return "just now";
  if (n < 120000) return Math.round(n / 1000) + " s ago";
  return Math.round(n / 60000) + " min ago";
}

// show sets a node's text and its data-value, touching the DOM only on a
// change so that live regions announce changes, not every reading.
function show(node, text, value) {
  if (!node) return;
  if (node.textContent !== text) node.textContent = text;
  const v = value === null || value === undefined ? "" : String(value);
  if (node.dataset.value !== v) node.dataset.value = v;
}

// ---- fetching ----

// getJSON fetches a path relative to the page and returns {ok, status,
// body}: body is the parsed JSON, or null when the reply was not JSON. It
// throws only when no reply arrived (network, timeout).
async function getJSON(path) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), FETCH_TIMEOUT_MS);
  try {
    const res = await fetch(path, {
      headers: { Accept: "application/json" },
      cache: "no-store",
      signal: ctl.signal,
    });
    const text = await res.text();
    let body = null;
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
    return { ok: res.ok, status: res.status, statusText: res.statusText, body };
  } catch (e) {
    if (e && e.name === "AbortError") throw new Error("no reply within " + FETCH_TIMEOUT_MS / 1000 + " s");
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

// why describes a failed reply.
function why(res) {
  let s = "HTTP " + res.status + (res.statusText ? " " + res.statusText : "");
  if (res.body && typeof res.body.error === "string" && res.body.error !== "") s += ": " + res.body.error;
  return s;
}

// ---- rows keyed by name, updated in place ----

const rowCells = new WeakMap(); // tr -> {field: cell}

// syncRows makes tbody's rows match items, in order: a row per key, built
// by build(key) when new, updated by update(cells, item); rows whose key
// is gone are removed. attr is the data attribute holding the key.
function syncRows(tbody, items, key, attr, build, update) {
  const existing = new Map();
  for (const tr of Array.from(tbody.rows)) existing.set(tr.dataset[attr], tr);
  const seen = new Set();
  let i = 0;
  for (const [idx, item] of items.entries()) {
    if (i >= MAX_ROWS) break;
    const k = key(item, idx);
    if (seen.has(k)) continue;
    seen.add(k);
    let tr = existing.get(k);
    if (!tr) {
      tr = document.createElement("tr");
      tr.dataset[attr] = k;
      rowCells.set(tr, build(tr, k));
    }
    update(rowCells.get(tr), item, tr);
    if (tbody.rows[i] !== tr) tbody.insertBefore(tr, tbody.rows[i] || null);
    i++;
  }
  for (const [k, tr] of existing) if (!seen.has(k)) tr.remove();
}

// addCells appends one cell per field spec {field, head, num} to tr and
// returns them by field.
function addCells(tr, specs) {
  const cells = {};
  for (const s of specs) {
    const c = document.createElement(s.head ? "th" : "td");
    if (s.head) c.scope = "row";
    if (s.num) c.className = "num";
    c.dataset.field = s.field;
    tr.appendChild(c);
    cells[s.field] = c;
  }
  return cells;
}

// ---- shards ----

const SHARD_COLUMNS = [
  { field: "addr", head: true },
  { field: "state" },
  { field: "keys", num: true },
  { field: "memory" },
  { field: "policy" },
  { field: "hit_ratio", num: true },
  { field: "evicted", num: true },
  { field: "expired", num: true },
];

function buildShardRow(tr) {
  const c = addCells(tr, SHARD_COLUMNS);
  c.name = c.addr.appendChild(document.createElement("span"));
  c.why = c.addr.appendChild(document.createElement("small"));
  c.why.className = "why";
  c.badge = c.state.appendChild(document.createElement("span"));
  c.memText = c.memory.appendChild(document.createElement("span"));
  c.meter = c.memory.appendChild(document.createElement("meter"));
  c.meter.min = 0;
  return c;
}

function updateShardRow(c, s, tr) {
  const up = s.up === true;
  show(c.name, String(s.addr ?? ""), s.addr);
  show(c.why, typeof s.error === "string" ? s.error : "");
  c.why.hidden = !s.error;
  show(c.badge, up ? "up" : "down", up ? "up" : "down");
  c.badge.className = "badge " + (up ? "up" : "down");
  tr.classList.toggle("down", !up);
  // A down shard's numbers are zeros it could not read: show dashes.
  const v = (x) => (up ? x : null);
  show(c.keys, fmtInt(v(s.keys)), v(s.keys));
  const used = v(s.used_memory);
  const max = count(s.maxmemory);
  show(c.memText, up ? fmtBytes(used) + " / " + (max > 0 ? fmtBytes(max) : "no limit") : DASH, used);
  c.meter.hidden = !(up && max > 0);
  if (up && max > 0) {
    c.meter.max = max;
    c.meter.value = Math.min(count(used), max);
    c.meter.setAttribute("aria-label", "memory used of " + String(s.addr ?? "shard"));
  }
  show(c.policy, up ? String(s.maxmemory_policy || DASH) : DASH);
  show(c.hit_ratio, fmtPct(v(s.hit_ratio)), v(s.hit_ratio));
  show(c.evicted, fmtInt(v(s.evicted_keys)), v(s.evicted_keys));
  show(c.expired, fmtInt(v(s.expired_keys)), v(s.expired_keys));
}

function renderShards(shards) {
  syncRows(el.shardRows, shards, (s, i) => String(s.addr ?? "#" + (i + 1)), "shard", buildShardRow, updateShardRow);
  el.shardsEmpty.hidden = shards.length > 0;
}

// ---- frontends and the fleet ----

const FRONTEND_COLUMNS = [
  { field: "id", head: true },
  { field: "kind" },
  { field: "qps", num: true },
  { field: "queries", num: true },
  { field: "hit_ratio", num: true },
  { field: "stale", num: true },
  { field: "errors", num: true },
  { field: "p50", num: true },
  { field: "p99", num: true },
  { field: "age", num: true },
];

// latency returns a quantile, or null when its interval saw no query (the
// frontend then publishes 0, which is no latency at all).
const latency = (qps, ms) => (count(qps) > 0 ? num(ms) : null);

function updateFrontendRow(c, f) {
  show(c.id, String(f.id ?? ""), f.id);
  show(c.kind, String(f.kind ?? ""));
  fillNumbers(c, f.qps, f.queries, f.hit_ratio, f.stale, f.errors, latency(f.qps, f.p50_ms), latency(f.qps, f.p99_ms));
  show(c.age, fmtAge(f.age_ms), f.age_ms);
}

// fillNumbers sets the cells a frontend row and the fleet row share.
function fillNumbers(c, qps, queries, hitRatio, stale, errors, p50, p99) {
  show(c.qps, fmtRate(qps), num(qps));
  show(c.queries, fmtInt(queries), num(queries));
  show(c.hit_ratio, fmtPct(hitRatio), num(hitRatio));
  show(c.stale, fmtInt(stale), num(stale));
  show(c.errors, fmtInt(errors), num(errors));
  show(c.p50, fmtMs(p50), num(p50));
  show(c.p99, fmtMs(p99), num(p99));
}

const fleetCells = {};
for (const td of el.fleetRow.querySelectorAll("[data-field]")) fleetCells[td.dataset.field] = td;

function renderFleet(fleet, frontends) {
  // Quantiles do not add up: the fleet shows its slowest frontend's.
  let p50 = null;
  let p99 = null;
  for (const f of frontends) {
    const a = latency(f.qps, f.p50_ms);
    const b = latency(f.qps, f.p99_ms);
    if (a !== null) p50 = Math.max(p50 ?? 0, a);
    if (b !== null) p99 = Math.max(p99 ?? 0, b);
  }
  show(el.fleetQPS, fmtRate(fleet.qps), num(fleet.qps));
  show(el.fleetHitRatio, fmtPct(fleet.hit_ratio), num(fleet.hit_ratio));
  show(el.fleetQueries, fmtInt(fleet.queries), num(fleet.queries));
  show(el.fleetStale, fmtInt(fleet.stale), num(fleet.stale));
  show(el.fleetErrors, fmtInt(fleet.errors), num(fleet.errors));
  show(el.fleetP50, fmtMs(p50), p50);
  show(el.fleetP99, fmtMs(p99), num(p99));
  show(el.fleetFrontends, fmtInt(fleet.frontends ?? frontends.length), num(fleet.frontends ?? frontends.length));
  fillNumbers(fleetCells, fleet.qps, fleet.queries, fleet.hit_ratio, fleet.stale, fleet.errors, p50, p99);
}

function renderFrontends(frontends) {
  syncRows(el.frontendRows, frontends, (f, i) => String(f.id ?? "#" + (i + 1)), "frontend",
    (tr) => addCells(tr, FRONTEND_COLUMNS), updateFrontendRow);
  el.frontendsEmpty.hidden = frontends.length > 0;
}

// ---- this process ----

// renderProcess shows the serving process's own numbers: its lookups over
// the recent window and its in-process cache (L1). p null hides the part.
function renderProcess(p) {
  el.process.hidden = !p;
  if (!p) return;
  const l1 = p.l1 && typeof p.l1 === "object" ? p.l1 : null;
  const win = num(p.window_seconds);
  let about = [String(p.kind || "process"), String(p.id ?? "")].filter((s) => s !== "").join(" ");
  if (win !== null) about += "; rates and latencies over the last " + Math.round(win) + " s";
  if (!l1) about += "; no in-process cache";
  show(el.processAbout, about);
  const q = count(p.qps) > 0;
  show(el.procQPS, fmtRate(p.qps), num(p.qps));
  show(el.procRecentHit, fmtPct(p.recent_hit_ratio), num(p.recent_hit_ratio));
  show(el.procHit, fmtPct(p.hit_ratio), num(p.hit_ratio));
  show(el.procQueries, fmtInt(p.queries), num(p.queries));
  show(el.procP50, fmtMs(q ? p.p50_ms : null), q ? num(p.p50_ms) : null);
  show(el.procP90, fmtMs(q ? p.p90_ms : null), q ? num(p.p90_ms) : null);
  show(el.procP99, fmtMs(q ? p.p99_ms : null), q ? num(p.p99_ms) : null);
  show(el.procErrors, fmtInt(p.errors), num(p.errors));
  if (l1) {
    show(el.procEntries, fmtInt(l1.entries) + " / " + fmtInt(l1.max_entries), num(l1.entries));
    show(el.procBytes, fmtBytes(l1.bytes) + " / " + fmtBytes(l1.max_bytes), num(l1.bytes));
    show(el.procEvictions, fmtInt(l1.evictions), num(l1.evictions));
  } else {
    for (const n of [el.procEntries, el.procBytes, el.procEvictions]) show(n, DASH, null);
  }
}

// ---- the sparkline ----

function addSample(qps) {
  const now = Date.now();
  state.samples.push({ t: now, qps: count(qps) });
  while (state.samples.length > SPARK_MAX_POINTS || (state.samples.length > 0 && state.samples[0].t < now - SPARK_WINDOW_MS)) {
    state.samples.shift();
  }
}

function drawSpark() {
  const canvas = el.spark;
  const ctx = canvas.getContext("2d");
  if (!ctx) return;
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || canvas.width;
  const h = canvas.clientHeight || canvas.height;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const style = getComputedStyle(canvas);
  const line = style.color || "#1769aa";
  // The baseline.
  ctx.globalAlpha = 0.35;
  ctx.fillStyle = line;
  ctx.fillRect(0, h - 1, w, 1);
  ctx.globalAlpha = 1;
  const pts = state.samples;
  if (pts.length === 0) return;
  const now = Date.now();
  const peak = Math.max(...pts.map((p) => p.qps));
  const top = Math.max(peak, 1);
  const x = (t) => w - ((now - t) / SPARK_WINDOW_MS) * w;
  const y = (q) => h - 2 - (q / top) * (h - 6);
  ctx.beginPath();
  ctx.moveTo(x(pts[0].t), y(pts[0].qps));
  for (const p of pts.slice(1)) ctx.lineTo(x(p.t), y(p.qps));
  ctx.lineWidth = 2;
  ctx.lineJoin = "round";
  ctx.strokeStyle = line;
  ctx.stroke();
  // The area under the line.
  ctx.lineTo(x(pts[pts.length - 1].t), h);
  ctx.lineTo(x(pts[0].t), h);
  ctx.closePath();
  ctx.globalAlpha = 0.15;
  ctx.fillStyle = line;
  ctx.fill();
  ctx.globalAlpha = 1;
  const last = pts[pts.length - 1].qps;
  const text = state.sparkWhat + " queries per second, last minute: now " + fmtRate(last) + ", peak " + fmtRate(peak);
  show(el.sparkCaption, text, peak);
  if (canvas.getAttribute("aria-label") !== text) canvas.setAttribute("aria-label", text);
}

// ---- /stats ----

function statsFailed(reason) {
  let text = reason;
  if (state.lastOK) text += ". Showing the reading of " + timeFmt.format(state.lastOK) + ".";
  else show(el.updated, "No reading yet; last attempt " + timeFmt.format(new Date()));
  show(el.errorText, text);
  el.error.hidden = false;
  document.body.classList.add("stale");
}

function renderStats(s) {
  const shards = Array.isArray(s.shards) ? s.shards.filter((x) => x && typeof x === "object") : [];
  const frontends = Array.isArray(s.frontends) ? s.frontends.filter((x) => x && typeof x === "object") : [];
  const fleet = s.fleet && typeof s.fleet === "object" ? s.fleet : {};
  const proc = s.process && typeof s.process === "object" ? s.process : null;
  // No shard and no frontend: a server without Redis, this process only.
  const hasFleet = shards.length > 0 || frontends.length > 0 || !proc;
  renderProcess(proc);
  el.shardsSection.hidden = !hasFleet;
  el.frontendsSection.hidden = !hasFleet;
  for (const n of el.fleetSection.querySelectorAll("dl.cards")) n.hidden = !hasFleet;
  renderShards(shards);
  renderFrontends(frontends);
  renderFleet(fleet, frontends);
  const what = hasFleet ? "Fleet" : "This process's";
  if (what !== state.sparkWhat) {
    state.sparkWhat = what;
    state.samples = [];
    show(el.fleetH, hasFleet ? "Fleet" : "Queries per second");
  }
  addSample(hasFleet ? fleet.qps : proc.qps);
  drawSpark();
  const errs = Array.isArray(s.errors) ? s.errors.map(String) : [];
  show(el.warningsText, errs.join("; "));
  el.warnings.hidden = errs.length === 0;
  el.error.hidden = true;
  document.body.classList.remove("stale");
  const at = s.generated_at ? new Date(s.generated_at) : new Date();
  state.lastOK = Number.isNaN(at.getTime()) ? new Date() : at;
  show(el.updated, "Updated " + timeFmt.format(state.lastOK), state.lastOK.toISOString());
}

async function pollStats() {
  let res;
  try {
    res = await getJSON("stats");
  } catch (e) {
    statsFailed("Cannot reach the server (" + (e && e.message ? e.message : String(e)) + ")");
    return;
  }
  if (res.status === 404) {
    statsFailed("This server has no /stats: it runs without Redis shards");
    return;
  }
  if (!res.ok || !res.body || typeof res.body !== "object" || Array.isArray(res.body)) {
    statsFailed(res.ok ? "The /stats reply is not a JSON object" : why(res));
    return;
  }
  renderStats(res.body);
}

// ---- /jobs ----

// jobList finds the jobs in a /jobs reply: a list, or an object holding
// one under "jobs" or "items". null: no list there.
function jobList(body) {
  if (Array.isArray(body)) return body;
  if (body && typeof body === "object") {
    if (Array.isArray(body.jobs)) return body.jobs;
    if (Array.isArray(body.items)) return body.items;
  }
  return null;
}

function showQueue(text, jobsShown) {
  show(el.queueStatus, text);
  el.jobs.hidden = !jobsShown;
}

const JOB_COLUMNS = [
  { field: "id", head: true },
  { field: "state" },
  { field: "progress" },
  { field: "done", num: true },
  { field: "failed", num: true },
  { field: "dead", num: true },
  { field: "total", num: true },
];

function buildJobRow(tr) {
  const c = addCells(tr, JOB_COLUMNS);
  c.bar = c.progress.appendChild(document.createElement("progress"));
  c.pct = c.progress.appendChild(document.createElement("span"));
  c.pct.className = "pct";
  return c;
}

// jobNumbers reads a job's counts, tolerating absent or string fields.
// failed counts failed runs (a task is retried until it is dead), so a job
// has ended when done, dead and canceled tasks make up its total.
function jobNumbers(j) {
  const done = count(j.done ?? j.completed);
  const failed = count(j.failed);
  const dead = count(j.dead);
  const canceled = count(j.canceled);
  const finished = done + dead + canceled;
  const total = Math.max(count(j.total), finished);
  return { done, failed, dead, total, finished };
}

function updateJobRow(c, j, tr) {
  const n = jobNumbers(j);
  const ratio = n.total > 0 ? n.finished / n.total : 0;
  const st = typeof j.state === "string" ? j.state : typeof j.status === "string" ? j.status : n.total > 0 && n.finished >= n.total ? "finished" : "running";
  show(c.id, tr.dataset.job);
  show(c.state, st);
  c.bar.max = Math.max(n.total, 1);
  c.bar.value = n.finished;
  c.bar.setAttribute("aria-label", "progress of job " + tr.dataset.job);
  show(c.pct, (ratio * 100).toFixed(0) + "%", ratio);
  show(c.done, fmtInt(n.done), n.done);
  show(c.failed, fmtInt(n.failed), n.failed);
  show(c.dead, fmtInt(n.dead), n.dead);
  show(c.total, fmtInt(n.total), n.total);
  tr.classList.toggle("has-dead", n.dead > 0);
}

async function pollJobs() {
  let res;
  try {
    res = await getJSON("jobs");
  } catch (e) {
    showQueue("Cannot read /jobs (" + (e && e.message ? e.message : String(e)) + ").", !el.jobs.hidden);
    return;
  }
  if (res.status === 404 || res.status === 405 || res.status === 501) {
    state.jobsAbsent = true;
    showQueue("No work queue is configured on this server.", false);
    return;
  }
  state.jobsAbsent = false;
  if (res.status === 401 || res.status === 403) {
    showQueue("Reading /jobs needs authorization (" + why(res) + ").", false);
    return;
  }
  if (!res.ok) {
    showQueue("Cannot read /jobs: " + why(res) + ".", !el.jobs.hidden);
    return;
  }
  const list = jobList(res.body);
  if (list === null) {
    showQueue("The /jobs reply holds no list of jobs.", false);
    return;
  }
  const jobs = list.filter((j) => j && typeof j === "object");
  syncRows(el.jobRows, jobs, (j, i) => String(j.id ?? j.job_id ?? j.name ?? "#" + (i + 1)), "job", buildJobRow, updateJobRow);
  if (jobs.length === 0) {
    showQueue("The work queue has no jobs.", false);
    return;
  }
  let finished = 0;
  let total = 0;
  for (const j of jobs) {
    const n = jobNumbers(j);
    finished += n.finished;
    total += n.total;
  }
  const plural = jobs.length === 1 ? " job: " : " jobs: ";
  showQueue(fmtInt(jobs.length) + plural + fmtInt(finished) + " of " + fmtInt(total) + " tasks processed.", true);
}

// ---- the reading loop ----

async function tick() {
  state.timer = null;
  if (state.running || state.paused) return;
  state.running = true;
  try {
    state.tick++;
    const jobsDue = !state.jobsAbsent || state.tick % JOBS_RETRY_TICKS === 1;
    await Promise.all([pollStats(), jobsDue ? pollJobs() : null]);
  } finally {
    state.running = false;
  }
  schedule(document.hidden ? HIDDEN_POLL_MS : POLL_MS);
}

function schedule(delay) {
  if (state.paused || state.running) return;
  if (state.timer !== null) clearTimeout(state.timer);
  state.timer = setTimeout(tick, delay);
}

el.pause.addEventListener("click", () => {
  state.paused = !state.paused;
  el.pause.setAttribute("aria-pressed", String(state.paused));
  el.pause.textContent = state.paused ? "Resume updates" : "Pause updates";
  if (state.paused && state.timer !== null) {
    clearTimeout(state.timer);
    state.timer = null;
  }
  if (!state.paused) schedule(0);
});

document.addEventListener("visibilitychange", () => {
  if (!document.hidden) schedule(0);
});

window.addEventListener("resize", drawSpark);

schedule(0);
