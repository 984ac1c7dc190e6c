// What the browser tests share: a real `fedwatt serve` on a free loopback
// port with a fresh data directory, data seeded through its API, and a
// headless Chromium (playwright-core) whose every request is logged.

import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, mkdirSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const ARTIFACTS = process.env.BROWSER_ARTIFACTS ?? join(root, "target/browser-artifacts");
mkdirSync(ARTIFACTS, { recursive: true });

/** The fedwatt binary: FEDWATT_BIN, else the debug build of CARGO_TARGET_DIR or target/. */
export function binary() {
  const bin = process.env.FEDWATT_BIN ?? join(process.env.CARGO_TARGET_DIR ?? join(root, "target"), "debug/fedwatt");
  if (!existsSync(bin)) throw new Error(`no fedwatt binary at ${bin}: build it (cargo build -p fedwatt) or set FEDWATT_BIN`);
  return bin;
}

/** A node: `fedwatt serve` on 127.0.0.1:0 over a fresh directory, with a
 * known configuration (time zone UTC unless told). */
export async function startNode({ timezone = "UTC", config = "" } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "fedwatt-browser-"));
  const file = join(dir, "fedwatt.toml");
  writeFileSync(file, `[store]\ntimezone = "${timezone}"\n${config}`);
  const bin = binary();
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("FEDWATT_") || k === "FEDWATT_LOG"));
  const run = (args, input) => {
    const out = spawnSync(bin, ["--data-dir", dir, ...args, "--config", file], { env, input, encoding: "utf8" });
    return { status: out.status, stdout: out.stdout ?? "", stderr: out.stderr ?? "" };
  };
  const child = spawn(bin, ["--data-dir", dir, "serve", "--config", file, "--listen", "127.0.0.1:0"], { env, stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  const base = await new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`fedwatt serve did not listen in 30 s:\n${log}`)), 30_000);
    child.stderr.on("data", (chunk) => {
      log += chunk;
      const m = /serving (http:\/\/\S+?)\/? /.exec(log);
      if (m) {
        clearTimeout(timer);
        ok(m[1].replace(/\/$/, ""));
      }
    });
    child.on("exit", (code) => fail(new Error(`fedwatt serve stopped (${code}) before listening:\n${log}`)));
  });
  child.stderr.on("data", (chunk) => (log += chunk));
  const node = {
    base,
    dir,
    run,
    log: () => log,
    /** `fedwatt token create`. */
    token(name, scope = "admin", streams = "*") {
      const out = run(["token", "create", "--name", name, "--scope", scope, "--streams", streams]);
      if (out.status !== 0) throw new Error(`fedwatt token create: ${out.stderr}`);
      return out.stdout.trim();
    },
    async fetch(path, { token, method = "GET", body, headers = {} } = {}) {
      const h = { ...headers };
      if (token) h.Authorization = `Bearer ${token}`;
      let payload = body;
      if (body !== undefined && typeof body !== "string") {
        payload = JSON.stringify(body);
        h["Content-Type"] ??= "application/json";
      }
      return fetch(`${base}${path}`, { method, headers: h, body: payload });
    },
    async json(path, options = {}) {
      const r = await node.fetch(path, options);
      const text = await r.text();
      if (!r.ok) throw new Error(`${options.method ?? "GET"} ${path}: ${r.status} ${text}`);
      return text ? JSON.parse(text) : null;
    },
    stop() {
      child.kill("SIGTERM");
    },
  };
  return node;
}

/** Posts SenML records in packs of 10,000. */
export async function seed(node, token, records) {
  for (let i = 0; i < records.length; i += 10_000) {
    const r = await node.fetch("/api/v1/data", { token, method: "POST", body: JSON.stringify(records.slice(i, i + 10_000)), headers: { "Content-Type": "application/senml+json" } });
    if (!r.ok) throw new Error(`seeding: ${r.status} ${await r.text()}`);
  }
}

/** Fails, naming the endpoint, when the node has no such route (a node
 * built from an older tree than the pages). */
export async function requireEndpoint(node, method, path, options = {}) {
  const r = await node.fetch(path, { method, ...options });
  const text = await r.text();
  if (r.status === 404 && /no such route/.test(text)) {
    throw new Error(`endpoint missing on this node: ${method} ${path.split("?")[0]} (404 "no such route"); the page under test needs it`);
  }
  return r;
}

/** Fails, naming the command, when the binary lacks a subcommand. */
export function requireCommand(node, args) {
  const out = node.run([...args, "--help"]);
  if (out.status !== 0) throw new Error(`command missing: fedwatt ${args.join(" ")} (${out.stderr.trim().split("\n")[0]})`);
}

export function chromiumPath() {
  const path = process.env.CHROMIUM ?? "/usr/bin/chromium";
  if (!existsSync(path)) throw new Error(`no Chromium at ${path}: apt-get install chromium (scripts/browser-tests does it)`);
  return path;
}

export async function launch() {
  return chromium.launch({ executablePath: chromiumPath(), headless: true, args: ["--no-sandbox", "--disable-dev-shm-usage"] });
}

/** A page with its requests logged, in a context of the given zone and locale. */
export async function open(browser, node, { timezoneId = "UTC", locale = "en-GB", viewport = { width: 1280, height: 900 } } = {}) {
  const context = await browser.newContext({ timezoneId, locale, viewport, acceptDownloads: true });
  const page = await context.newPage();
  const requests = [];
  const problems = [];
  page.on("request", (r) => requests.push(r.url()));
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  // A refused request is the API speaking (a 401 or a 404 the page shows), not a fault of the page.
  page.on("console", (m) => m.type() === "error" && !m.text().startsWith("Failed to load resource") && problems.push(`console: ${m.text()}`));
  page.on("response", (r) => r.status() >= 500 && problems.push(`${r.status()} from ${r.url()}`));
  const shot = async (name) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
  return { context, page, requests, problems, shot, base: node.base };
}

/** Signs in with an API token on the login page. */
export async function signInWithToken(page, node, token) {
  await page.goto(`${node.base}/#/login`);
  await page.getByText("Sign in with an API token").click();
  await page.getByLabel("API token", { exact: true }).fill(token);
  await page.getByRole("button", { name: "Use this token" }).click();
  await page.waitForURL(/#\/explorer/);
}

/** Signs in with an account and its password. */
export async function signIn(page, node, account, password) {
  await page.goto(`${node.base}/#/login`);
  await page.getByLabel("Account", { exact: true }).fill(account);
  await page.getByLabel("Password", { exact: true }).fill(password);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
}

/** A number as the UI prints it in English ("1,234.5", "12.5%"). */
export function number(text) {
  return Number(String(text).replace(/[,\s%€m²kWh]/g, "").replace("−", "-"));
}

/** Epoch seconds of an ISO date-time in UTC. */
export const at = (iso) => Date.parse(iso) / 1000;
