// The API calls the web UI's pages make, timed against a running demo node
// (`fedwatt demo`): each call 2 times to warm up, then 20 times, and the
// median of performance.now() around fetch and the reading of the body.
// Alice (a member: her house, and the open PV plant) for her own pages;
// the operator (who reads every stream) where a page shows the school.
//
//   node bench/ui_api.mjs [BASE_URL]     (default http://127.0.0.1:8080)
//
// FEDWATT_DEMO_PASSWORD: the demo accounts' password (default the demo's).
// Prints a Markdown table for bench/RESULTS.md's "web UI" section.

const base = (process.argv[2] ?? "http://127.0.0.1:8080").replace(/\/$/, "");
const password = process.env.FEDWATT_DEMO_PASSWORD ?? "fedwatt-demo";
const WARM = 2;
const RUNS = 20;
const TZ = "Europe/Paris";
const HOUSE = "urn:dev:prm:30001610071843_consumption/power/active/raw";
const SCHOOL = "urn:dev:prm:30002520083954_consumption/power/active/raw";
const PLANT = "urn:dev:prm:30003630094065_production/power/active/raw";
const DAY = 86_400;

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Signs in; returns the headers a page's calls carry (the cookie). */
async function signIn(account) {
  const r = await fetch(`${base}/api/v1/session`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ account, password }),
  });
  if (r.status !== 200) throw new Error(`signing in as ${account}: ${r.status} ${await r.text()}`);
  const cookie = r.headers.getSetCookie().map((c) => c.split(";")[0]).find((c) => c.startsWith("fedwatt_session="));
  return { Cookie: cookie };
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) for (const x of [v].flat()) q.append(k, String(x));
  return `?${q}`;
}

const alice = await signIn("alice");
const operator = await signIn("operator");

// The demo's year ends yesterday: take the plant's last point.
const plant = (await (await fetch(`${base}/api/v1/streams${query({ q: "30003630094065_production" })}`, { headers: alice })).json()).streams.find((s) => s.name === PLANT);
const to = Math.floor(Date.parse(plant.last) / 1000 / DAY) * DAY + DAY;
const year = { from: to - 365 * DAY, to };
const week = { from: to - 7 * DAY, to };
const day = { from: to - DAY, to };
const month = { from: to - 30 * DAY, to };
const three = [SCHOOL, HOUSE, PLANT];
const lastYear = new Date((to - DAY) * 1000).getUTCFullYear();

const calls = [
  ["alice", "GET /api/v1/session", "/api/v1/session"],
  ["alice", "GET /api/v1/streams", "/api/v1/streams"],
  ["operator", "GET /api/v1/streams (every stream)", "/api/v1/streams"],
  ["operator", "GET /api/v1/streams?q=school", "/api/v1/streams?q=school"],
  ["operator", "aggregate: a year of daily means, 3 streams", `/api/v1/aggregate${query({ stream: three, ...year, every: "P1D", fn: "mean", tz: TZ })}`],
  ["operator", "aggregate: a week of hourly means, 3 streams", `/api/v1/aggregate${query({ stream: three, ...week, every: "PT1H", fn: "mean", tz: TZ })}`],
  ["operator", "records: a day, 3 streams", `/api/v1/records${query({ stream: three, ...day })}`],
  ["operator", "profile: hour-of-day over a year, 3 streams", `/api/v1/profile${query({ stream: three, ...year, by: "hour-of-day", fn: "mean", tz: TZ })}`],
  ["alice", "GET /api/v1/projects", "/api/v1/projects"],
  ["alice", `project summary (year ${lastYear})`, `/api/v1/projects/ecole-jaures/summary${query({ year: lastYear, tz: TZ })}`],
  ["operator", "selfconsumption: 30 days by day, school + plant", `/api/v1/selfconsumption${query({ production: PLANT, consumption: SCHOOL, ...month, step: "day", tz: TZ })}`],
  ["operator", "selfconsumption: a year by month, school + plant", `/api/v1/selfconsumption${query({ production: PLANT, consumption: SCHOOL, ...year, step: "month", tz: TZ })}`],
  ["operator", "selfconsumption: a day by 30 min, school + plant", `/api/v1/selfconsumption${query({ production: PLANT, consumption: SCHOOL, ...day, step: "30m", tz: TZ })}`],
  ["alice", "GET /api/v1/me/grants", "/api/v1/me/grants"],
  ["alice", "GET /api/v1/me/transfers?limit=200", "/api/v1/me/transfers?limit=200"],
  ["operator", "GET /api/v1/status", "/api/v1/status"],
];

const rows = [];
for (const [who, what, path] of calls) {
  const headers = who === "alice" ? alice : operator;
  const times = [];
  let bytes = 0;
  for (let i = 0; i < WARM + RUNS; i++) {
    const t0 = performance.now();
    const r = await fetch(`${base}${path}`, { headers });
    const body = await r.arrayBuffer();
    const ms = performance.now() - t0;
    if (r.status !== 200) throw new Error(`${what}: ${r.status} ${new TextDecoder().decode(body)}`);
    bytes = body.byteLength;
    if (i >= WARM) times.push(ms);
  }
  rows.push({ who, what, median: median(times), min: Math.min(...times), max: Math.max(...times), bytes });
}

console.log(`${base}, ${RUNS} calls each after ${WARM} warm-up calls; the demo's year up to ${new Date(to * 1000).toISOString().slice(0, 16)} UTC\n`);
console.log("| call | as | median | min | max | body |");
console.log("|---|---|---:|---:|---:|---:|");
for (const r of rows) {
  const kib = r.bytes >= 1024 ? `${(r.bytes / 1024).toFixed(1)} KiB` : `${r.bytes} B`;
  console.log(`| ${r.what} | ${r.who} | ${r.median.toFixed(1)} ms | ${r.min.toFixed(1)} | ${r.max.toFixed(1)} | ${kib} |`);
}
const slow = rows.filter((r) => r.median > 30).map((r) => r.what);
console.log(`\nabove 30 ms (median): ${slow.length ? slow.join("; ") : "none"}`);
