// The pages of signed-in accounts (sessions, accounts, projects and
// summaries, self-consumption, sharing, node status). Each test first
// checks that the node offers what the page needs, and fails naming the
// missing endpoint or command otherwise.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { at, launch, number, open, requireCommand, requireEndpoint, seed, signIn, signInWithToken, startNode } from "./lib.mjs";

const PASSWORD = "correct horse battery";
const JAN = at("2026-01-01T00:00:00Z");
const HALF_HOUR = 1800;
/** The plant's power and Alice's consumption, every 30 minutes in January and February. */
const plant = [];
const home = [];
for (let i = 0; i < 59 * 48; i++) {
  const t = JAN + i * HALF_HOUR;
  const hour = (i % 48) / 2;
  plant.push({ n: "plant/ecole/power", u: "W", t, v: hour >= 8 && hour < 17 ? 20_000 + 1000 * (i % 5) : 0 });
  home.push({ n: "alice/consumption", u: "W", t, v: 300 + 40 * (i % 7) });
}
const kwh = (r) => (r.v * HALF_HOUR) / 3600 / 1000;

let node, browser, admin, users;
before(async () => {
  node = await startNode();
  admin = node.token("seeder");
  await seed(node, admin, plant);
  // Alice's own streams are written with a token named after her.
  await seed(node, node.token("alice", "write", "alice/*"), home);
  browser = await launch();
});
after(async () => {
  await browser?.close();
  node?.stop();
});

/** The accounts, made once with `fedwatt user add`. */
function accounts() {
  if (users) return users;
  requireCommand(node, ["user", "add"]);
  const file = join(node.dir, "password");
  writeFileSync(file, `${PASSWORD}\n`);
  for (const [name, role, display, extra] of [
    ["root", "admin", "Root Admin", []],
    ["ops", "operator", "Olga Operator", []],
    ["alice", "member", "Alice Martin", ["--stream", "alice/*", "--consumption", "alice/consumption"]],
  ]) {
    const out = node.run(["user", "add", name, "--role", role, "--display-name", display, "--password-file", file, ...extra]);
    if (out.status !== 0) throw new Error(`fedwatt user add ${name}: ${out.stderr}`);
  }
  users = true;
  return users;
}

describe("pages of signed-in accounts", () => {
  test("sign in and out with a session (POST, GET, DELETE /api/v1/session, X-CSRF-Token)", async () => {
    await requireEndpoint(node, "GET", "/api/v1/session");
    accounts();
    const { page, shot, problems } = await open(browser, node);
    const sent = [];
    page.on("request", (r) => sent.push({ method: r.method(), url: r.url(), csrf: r.headers()["x-csrf-token"] }));
    await signIn(page, node, "alice", "not her password");
    await page.locator(".form-error", { hasText: "wrong account or password" }).waitFor();
    await shot("login-refused");
    await signIn(page, node, "alice", PASSWORD);
    await page.waitForURL(/#\/explorer/);
    await page.locator("#top .account", { hasText: "Alice Martin" }).waitFor();
    // A member sees neither accounts nor projects admin.
    assert.equal(await page.getByRole("link", { name: "Accounts" }).count(), 0);
    await page.reload();
    await page.locator("#top .account", { hasText: "Alice Martin" }).waitFor();
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.waitForURL(/#\/login/);
    const out = sent.find((r) => r.method === "DELETE" && r.url.endsWith("/api/v1/session"));
    assert.ok(out?.csrf, "sign-out sends X-CSRF-Token");
    await page.reload();
    await page.getByRole("button", { name: "Sign in", exact: true }).waitFor();
    assert.deepEqual(problems, []);
  });

  test("a member sees only their own meter, and a change without the CSRF header is refused", async () => {
    await requireEndpoint(node, "GET", "/api/v1/session");
    accounts();
    const { page, problems } = await open(browser, node);
    await signIn(page, node, "alice", PASSWORD);
    await page.waitForURL(/#\/explorer/);
    // The explorer lists her stream, not the plant's, which is not hers nor open.
    await page.getByLabel("Search streams").fill("/");
    await page.getByRole("button", { name: "Search" }).click();
    const list = page.getByRole("list", { name: "Matching streams" });
    await list.getByText("alice/consumption").waitFor();
    assert.equal(await list.getByText("plant/ecole/power").count(), 0, "another's meter is not listed");
    // The same session, asked directly from the page.
    const answers = await page.evaluate(async () => {
      const plant = await fetch("/api/v1/records?stream=plant/ecole/power");
      const own = await fetch("/api/v1/records?stream=alice/consumption&limit=1");
      const noCsrf = await fetch("/api/v1/session", { method: "DELETE" });
      const still = await fetch("/api/v1/session");
      return { plant: plant.status, own: own.status, noCsrf: noCsrf.status, noCsrfBody: await noCsrf.text(), still: still.status };
    });
    assert.equal(answers.plant, 403, "another's meter is refused");
    assert.equal(answers.own, 200, "her own meter is read");
    assert.equal(answers.noCsrf, 403, "a sign-out without X-CSRF-Token is refused");
    assert.match(answers.noCsrfBody, /X-CSRF-Token/);
    assert.equal(answers.still, 200, "and the session is still open");
    assert.deepEqual(problems, []);
  });

  test("accounts admin: a refused name is shown next to its field; an account is made (GET, POST /api/v1/accounts)", async () => {
    await requireEndpoint(node, "GET", "/api/v1/accounts", { token: admin });
    accounts();
    const { page, shot, problems } = await open(browser, node);
    await signIn(page, node, "root", PASSWORD);
    await page.waitForURL(/#\/explorer/);
    await page.getByRole("link", { name: "Accounts" }).click();
    await page.locator("#accounts table").getByText("Alice Martin").waitFor();
    const form = page.locator("section", { has: page.getByRole("heading", { name: "New account" }) });
    await form.getByLabel("Account", { exact: true }).fill("Bad Name");
    await form.getByLabel("Display name").fill("Bad");
    await form.getByLabel("Password").fill(PASSWORD);
    await form.locator("form").evaluate((f) => f.setAttribute("novalidate", ""));
    await form.getByRole("button", { name: "Create the account" }).click();
    const error = form.locator(`#${await form.getByLabel("Account", { exact: true }).getAttribute("id")}-error`);
    await error.filter({ hasText: /./ }).waitFor();
    await shot("accounts-field-error");
    await form.getByLabel("Account", { exact: true }).fill("bob");
    await form.getByLabel("Display name").fill("Bob Durand");
    await form.getByRole("button", { name: "Create the account" }).click();
    await page.locator("#accounts table").getByText("Bob Durand").waitFor();
    const list = await node.json("/api/v1/accounts", { token: admin });
    assert.ok(list.some((a) => a.account === "bob" && a.display_name === "Bob Durand" && a.role === "member"));
    assert.deepEqual(problems, []);
  });

  test("my investment: shares, amount, area, share of production and covered part as computed from the records (/api/v1/projects/{id}/summary)", async () => {
    await requireEndpoint(node, "GET", "/api/v1/projects", { token: admin });
    accounts();
    await node.json("/api/v1/projects", {
      token: admin,
      method: "POST",
      body: { id: "ecole-jaures", title: "Centrale solaire de l'école Jaurès", total_shares: 400, share_price: 150.0, currency: "EUR", panel_area_m2: 96.0, production_stream: "plant/ecole/power", maintenance_budget: 1200.0, commissioned: "2025-01-01", description: "Toiture de l'école" },
    });
    await node.json("/api/v1/projects/ecole-jaures/investors/alice", { token: admin, method: "PUT", body: { shares: 4 } });
    await requireEndpoint(node, "GET", "/api/v1/projects/ecole-jaures/summary?account=alice&year=2026&tz=UTC", { token: admin });
    const fraction = 4 / 400;
    const production = plant.reduce((s, r) => s + kwh(r) * fraction, 0);
    const consumption = home.reduce((s, r) => s + kwh(r), 0);
    const covered = plant.reduce((s, r, i) => s + Math.min(kwh(r) * fraction, kwh(home[i])), 0) / consumption;
    const { page, shot, problems } = await open(browser, node);
    await signIn(page, node, "alice", PASSWORD);
    await page.waitForURL(/#\/explorer/);
    await page.goto(`${node.base}/#/investment?project=ecole-jaures&year=2026&by=months`);
    const fact = (k) => page.locator(`#facts dd[data-k="${k}"]`).innerText();
    await page.locator("#facts").waitFor();
    assert.equal(await fact("shares"), "4 / 400");
    assert.equal(await fact("fraction"), "1%");
    assert.equal(await fact("invested"), "€600.00");
    assert.equal(await fact("area"), "0.96 m²");
    assert.ok(Math.abs(number(await fact("production")) - production) < 0.051, `production ${await fact("production")}, records say ${production}`);
    assert.ok(Math.abs(number(await fact("consumption")) - consumption) < 0.051, `consumption ${await fact("consumption")}, records say ${consumption}`);
    assert.ok(Math.abs(number(await fact("covered")) / 100 - covered) < 0.0006, `covered ${await fact("covered")}, records say ${covered}`);
    // The yearly table: January's share of production.
    const january = plant.filter((r) => r.t < at("2026-02-01T00:00:00Z")).reduce((s, r) => s + kwh(r) * fraction, 0);
    const row = await page.locator("table.values tbody tr").first().locator("th, td").allInnerTexts();
    assert.equal(row[0], "January");
    assert.ok(Math.abs(number(row[1]) - january) < 0.051);
    await shot("investment");
    assert.deepEqual(problems, []);
  });

  test("self-consumption of a group: totals, rates and the proportional split as computed from the records (/api/v1/selfconsumption)", async () => {
    const day = at("2026-06-10T00:00:00Z");
    const pv = [], flat1 = [], flat2 = [];
    for (let i = 0; i < 48; i++) {
      const t = day + i * HALF_HOUR;
      const hour = i / 2;
      pv.push({ n: "group/pv", u: "W", t, v: hour >= 7 && hour < 19 ? 3000 + 150 * (i % 4) : 0 });
      flat1.push({ n: "group/flat1", u: "W", t, v: 400 + 90 * (i % 6) });
      flat2.push({ n: "group/flat2", u: "W", t, v: hour >= 18 ? 2500 : 900 + 30 * (i % 3) });
    }
    await seed(node, admin, [...pv, ...flat1, ...flat2]);
    await requireEndpoint(node, "GET", `/api/v1/selfconsumption?production=group%2Fpv&consumption=group%2Fflat1&from=${day}&to=${day + 86400}&tz=UTC&step=30m`, { token: admin });
    let production = 0, consumption = 0, direct = 0;
    const allocated = [0, 0], used = [0, 0];
    pv.forEach((p, i) => {
      const solar = kwh(p);
      const c = [kwh(flat1[i]), kwh(flat2[i])];
      const use = c[0] + c[1];
      production += solar;
      consumption += use;
      direct += Math.min(solar, use);
      c.forEach((ck, k) => {
        used[k] += ck;
        allocated[k] += use > 0 ? Math.min(ck, (solar * ck) / use) : 0;
      });
    });
    const { page, shot, problems } = await open(browser, node);
    await signInWithToken(page, node, admin);
    await page.goto(`${node.base}/#/selfconsumption?production=group%2Fpv&consumption=group%2Fflat1&consumption=group%2Fflat2&period=day&date=2026-06-10&key=proportional`);
    const total = (k) => page.locator(`#totals dd[data-k="${k}"]`).innerText();
    await page.locator("#totals").waitFor();
    const near = async (k, expected, tolerance) => {
      const shown = number(await total(k));
      assert.ok(Math.abs(shown - expected) < tolerance, `${k}: page ${shown}, records ${expected}`);
    };
    await near("production", production, 0.006);
    await near("consumption", consumption, 0.006);
    await near("direct", direct, 0.006);
    await near("export", production - direct, 0.006);
    await near("import", consumption - direct, 0.006);
    await near("self_consumption", (100 * direct) / production, 0.06);
    await near("self_sufficiency", (100 * direct) / consumption, 0.06);
    const rows = page.locator("table.values tbody tr");
    for (const [k, name] of [[0, "group/flat1"], [1, "group/flat2"]]) {
      const cells = await rows.filter({ has: page.locator("th", { hasText: name }) }).locator("td").allInnerTexts();
      assert.ok(Math.abs(number(cells[0]) - used[k]) < 0.006, `${name} consumption`);
      assert.ok(Math.abs(number(cells[1]) - allocated[k]) < 0.006, `${name} allocated: page ${cells[1]}, records ${allocated[k]}`);
    }
    await page.getByText("Self-consumed energy over production.").waitFor();
    await shot("selfconsumption");
    assert.deepEqual(problems, []);
  });

  test("sharing: my grants, revoked in one click; my transfers; my data downloaded (/api/v1/me/…)", async () => {
    await requireEndpoint(node, "GET", "/api/v1/session");
    accounts();
    const grant = await node.json("/api/v1/grants", { token: admin, method: "POST", body: { to: "fedwatt@partner.example", streams: "alice/*", purpose: "étude de quartier" } });
    const { page, shot, problems } = await open(browser, node);
    await signIn(page, node, "alice", PASSWORD);
    await page.waitForURL(/#\/explorer/);
    await requireEndpointInPage(page, "/api/v1/me/grants");
    await page.goto(`${node.base}/#/sharing`);
    const row = page.locator("#grants tbody tr", { hasText: "fedwatt@partner.example" });
    await row.waitFor();
    await row.getByRole("button", { name: /Revoke/ }).click();
    await row.getByText("Revoked").waitFor();
    const stored = (await node.json("/api/v1/grants", { token: admin })).grants.find((g) => g.id === grant.id);
    assert.ok(stored.revoked, "the grant is revoked on the node");
    await page.locator("#transfers table").waitFor();
    const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Download my data" }).click()]);
    const pack = JSON.parse(readFileSync(await download.path(), "utf8"));
    const values = pack.filter((r) => r.v !== undefined);
    assert.equal(values.length, home.length, "every record of Alice's one stream");
    assert.match(download.suggestedFilename(), /^fedwatt-alice-.*\.json$/);
    await shot("sharing");
    assert.deepEqual(problems, []);
  });

  test("node status for an operator (/api/v1/status)", async () => {
    await requireEndpoint(node, "GET", "/api/v1/status", { token: admin });
    accounts();
    const { page, shot, problems } = await open(browser, node);
    await signIn(page, node, "ops", PASSWORD);
    await page.waitForURL(/#\/explorer/);
    await page.goto(`${node.base}/#/status`);
    await page.locator("#backlog").waitFor();
    const status = await node.json("/api/v1/status", { token: admin });
    assert.equal(await page.locator("#backlog").innerText(), String(status.outbox.backlog));
    await page.locator("#status").getByText(status.node.name, { exact: true }).waitFor();
    await page.getByText("This node drives no equipment.").waitFor();
    await shot("status");
    assert.deepEqual(problems, []);
  });
});

/** Like requireEndpoint, with the page's session cookie. */
async function requireEndpointInPage(page, path) {
  const status = await page.evaluate(async (p) => {
    const r = await fetch(p);
    return [r.status, await r.text()];
  }, path);
  if (status[0] === 404 && /no such route/.test(status[1])) throw new Error(`endpoint missing on this node: GET ${path} (404 "no such route")`);
}
