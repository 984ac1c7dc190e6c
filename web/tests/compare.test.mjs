// Compare: typical days from /profile, per m², checked against means
// computed here from the seeded records; the manual reading form.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { at, launch, number, open, seed, signInWithToken, startNode } from "./lib.mjs";

const START = at("2026-03-02T00:00:00Z");
const DAYS = 14;
/** Two buildings, every 15 minutes: a school busy by day, a house in the evening. */
const records = [];
for (let i = 0; i < DAYS * 96; i++) {
  const t = START + i * 900;
  const hour = Math.floor((i % 96) / 4);
  const day = Math.floor(i / 96);
  records.push({ n: "school/power", u: "W", t, v: (hour >= 8 && hour < 17 ? 3000 : 400) + 17 * ((i * 7) % 13) + day });
  records.push({ n: "house/power", u: "W", t, v: (hour >= 18 && hour < 22 ? 1800 : 300) + 5 * (i % 9) });
}
/** The mean of one stream's records in UTC hour `h`, over the whole period. */
const hourMean = (name, h) => {
  const at8 = records.filter((r) => r.n === name && new Date(r.t * 1000).getUTCHours() === h);
  return at8.reduce((s, r) => s + r.v, 0) / at8.length;
};

let node, browser, token;
before(async () => {
  node = await startNode();
  token = node.token("seeder");
  await seed(node, token, records);
  browser = await launch();
});
after(async () => {
  await browser?.close();
  node?.stop();
});

describe("compare", () => {
  test("a typical day's value at 08:00 is the mean of the records of that hour, also per m²", async () => {
    const { page, shot, problems, requests } = await open(browser, node);
    await signInWithToken(page, node, token);
    const day = (s) => new Date(s * 1000).toISOString().slice(0, 10);
    await page.goto(`${node.base}/#/compare?s=school%2Fpower&s=house%2Fpower&view=hour-of-day&from=${day(START)}&to=${day(START + (DAYS - 1) * 86400)}`);
    await page.reload();
    const row = page.locator("table.values tbody tr").filter({ has: page.locator("th", { hasText: /^08:00$/ }) });
    await row.waitFor();
    assert.ok(requests.some((u) => u.includes("/api/v1/profile") && u.includes("by=hour-of-day")));
    const header = await page.locator("table.values thead th").allInnerTexts();
    const cells = await row.locator("td").allInnerTexts();
    const col = (name) => header.findIndex((h) => h.startsWith(name)) - 1;
    for (const name of ["school/power", "house/power"]) {
      const shown = number(cells[col(name)]);
      assert.ok(Math.abs(shown - hourMean(name, 8)) < 0.0006, `${name} at 08:00: page ${shown}, records ${hourMean(name, 8)}`);
    }
    await shot("compare-typical-day");
    // Per m²: the school's 1,250 m², the house's 110 m².
    await page.getByLabel("Normalise").selectOption("area");
    await page.getByRole("group", { name: "school/power" }).getByLabel("Floor area (m²)").fill("1250");
    await page.getByRole("group", { name: "school/power" }).getByLabel("Floor area (m²)").dispatchEvent("change");
    await page.getByRole("group", { name: "house/power" }).getByLabel("Floor area (m²)").fill("110");
    await page.getByRole("group", { name: "house/power" }).getByLabel("Floor area (m²)").dispatchEvent("change");
    await page.locator("table.values thead th", { hasText: "W/m²" }).first().waitFor();
    const perM2 = await page.locator("table.values tbody tr").filter({ has: page.locator("th", { hasText: /^08:00$/ }) }).locator("td").allInnerTexts();
    assert.ok(Math.abs(number(perM2[col("school/power")]) - hourMean("school/power", 8) / 1250) < 0.0006);
    assert.ok(Math.abs(number(perM2[col("house/power")]) - hourMean("house/power", 8) / 110) < 0.0006);
    // Workshop mode: full screen, the chart alone.
    await page.getByRole("button", { name: "Workshop mode (full screen)" }).click();
    assert.equal(await page.getByRole("button", { name: "Workshop mode (full screen)" }).getAttribute("aria-pressed"), "true");
    assert.equal(await page.locator("#top").isVisible(), false);
    await shot("compare-workshop");
    assert.deepEqual(problems, []);
  });

  test("the French page says the same", async () => {
    const { page, problems } = await open(browser, node, { locale: "fr-FR" });
    // The browser's language picks French at first.
    await page.goto(`${node.base}/#/login`);
    await page.evaluate(() => localStorage.clear());
    await page.reload();
    assert.equal(await page.locator("h1").innerText(), "Connexion à fedwatt");
    await page.getByLabel("Langue").selectOption("en");
    assert.equal(await page.locator("h1").innerText(), "Sign in to fedwatt");
    await page.reload();
    assert.equal(await page.locator("h1").innerText(), "Sign in to fedwatt", "the choice is kept");
    assert.deepEqual(problems, []);
  });

  test("a manual reading is stored in the stream", async () => {
    const { page, shot, problems } = await open(browser, node);
    await signInWithToken(page, node, token);
    await page.goto(`${node.base}/#/status`);
    const form = page.locator("#reading");
    await form.getByLabel("Stream").selectOption("house/power");
    assert.equal(await form.getByLabel("Unit", { exact: true }).inputValue(), "W");
    await form.getByLabel("Value").fill("1234.5");
    await form.getByLabel("Time of the reading").fill("2026-03-20T09:30");
    await form.getByRole("button", { name: "Save the reading" }).click();
    await form.getByText("Reading saved").waitFor();
    const t = at("2026-03-20T09:30:00Z");
    const back = await node.json(`/api/v1/records?stream=house%2Fpower&from=${t}&to=${t + 1}`, { token });
    assert.deepEqual(back.map((r) => [r.n, r.t, r.v]), [["house/power", t, 1234.5]]);
    // The API's refusal shows next to the field it names.
    await form.getByLabel("Unit", { exact: true }).fill("m3");
    await form.getByRole("button", { name: "Save the reading" }).click();
    const error = form.locator(".field-error:not(:empty), .form-error:not(:empty)").first();
    await error.waitFor();
    assert.ok((await error.innerText()).length > 5);
    await shot("status-reading");
    assert.deepEqual(problems, []);
  });
});
