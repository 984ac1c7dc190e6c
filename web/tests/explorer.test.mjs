// The explorer against a real node: the numbers it shows are checked
// against means computed here from the seeded records.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { at, launch, number, open, seed, signInWithToken, startNode } from "./lib.mjs";

const START = at("2026-01-05T00:00:00Z");
const DAYS = 28;
/** The school's power every 10 minutes: a daily wave and a slow rise. */
const school = [];
for (let i = 0; i < DAYS * 144; i++) {
  const t = START + i * 600;
  const minute = (i % 144) * 10;
  const v = Math.round((1000 + 400 * Math.sin((2 * Math.PI * minute) / 1440) + 10 * Math.floor(i / 144) + 7 * ((i * 13) % 11)) * 10) / 10;
  school.push({ n: "school/power", u: "W", t, v });
}
/** Daily means, computed from the records themselves. */
const dailyMeans = Array.from({ length: DAYS }, (_, d) => {
  const day = school.filter((r) => r.t >= START + d * 86400 && r.t < START + (d + 1) * 86400);
  return day.reduce((s, r) => s + r.v, 0) / day.length;
});

let node, browser, token;
before(async () => {
  node = await startNode();
  token = node.token("seeder");
  await seed(node, token, school);
  const plant = [];
  for (let i = 0; i < 40 * 1440; i++) plant.push({ n: "plant/power", u: "W", t: START + i * 60, v: (i % 1440) / 10 });
  await seed(node, token, plant);
  await seed(node, token, [{ n: "house/power", u: "W", t: START, v: 500 }]);
  await node.json("/api/v1/streams/house%2Fpower", { token, method: "PATCH", body: { metadata: { labels: { site: "chaudière Jaurès" } } } });
  browser = await launch();
});
after(async () => {
  await browser?.close();
  node?.stop();
});

describe("explorer", () => {
  test("a search finds streams by metadata", async () => {
    const { page, shot, problems } = await open(browser, node);
    await signInWithToken(page, node, token);
    await page.getByLabel("Search streams").fill("chaudière");
    await page.getByRole("button", { name: "Search" }).click();
    const list = page.getByRole("list", { name: "Matching streams" });
    await assert.doesNotReject(list.getByText("house/power").waitFor());
    assert.equal(await list.getByRole("listitem").count(), 1, "only the stream whose metadata matches");
    await shot("explorer-search");
    assert.deepEqual(problems, []);
  });

  test("daily means in the table and on hover are the means of the records", async () => {
    const { page, shot, problems, requests } = await open(browser, node);
    await signInWithToken(page, node, token);
    await page.goto(`${node.base}/#/explorer?s=school%2Fpower&from=${START}&to=${START + DAYS * 86400}&step=P1D`);
    await page.reload();
    await page.locator("#chart-info[data-step='P1D']").waitFor();
    assert.ok(requests.some((u) => u.includes("/api/v1/aggregate") && u.includes("every=P1D")), "the chart asked for daily means");
    await page.getByLabel("Show the values as a table").check();
    const rows = page.locator("table.values tbody tr");
    assert.equal(await rows.count(), DAYS);
    for (let d = 0; d < DAYS; d++) {
      const cells = await rows.nth(d).locator("th, td").allInnerTexts();
      assert.match(cells[0], new RegExp(`^${new Date((START + d * 86400) * 1000).toISOString().slice(0, 10)}T00:00:00\\+00:00$`));
      assert.ok(Math.abs(number(cells[1]) - dailyMeans[d]) < 0.0006, `day ${d}: table says ${cells[1]}, the records' mean is ${dailyMeans[d]}`);
    }
    // Hover over day 10: the legend shows its mean.
    const over = await page.locator("#explorer-chart .u-over").boundingBox();
    await page.mouse.move(over.x + (over.width * 10) / (DAYS - 1), over.y + over.height / 2);
    const legend = page.locator("#explorer-chart .u-legend .u-series").nth(1).locator(".u-value");
    await page.waitForFunction(() => document.querySelector("#explorer-chart .u-legend .u-series:nth-child(2) .u-value")?.textContent !== "–");
    const shown = number(await legend.innerText());
    assert.ok(Math.abs(shown - dailyMeans[10]) < 0.006, `hover on day 10 shows ${shown}, the records' mean is ${dailyMeans[10]}`);
    await shot("explorer-daily-means");
    // Export what is shown as CSV.
    const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Export CSV" }).click()]);
    const csv = readFileSync(await download.path(), "utf8").trim().split("\n");
    assert.equal(csv.length, DAYS + 1);
    assert.equal(csv[0], '"time","school/power (W)"');
    assert.ok(Math.abs(Number(csv[4].split(",")[1]) - dailyMeans[3]) < 1e-9);
    const [senml] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Export SenML" }).click()]);
    const pack = JSON.parse(readFileSync(await senml.path(), "utf8"));
    assert.equal(pack.length, DAYS);
    assert.deepEqual(Object.keys(pack[0]).sort(), ["n", "t", "u", "v"]);
    assert.equal(pack[0].t, START);
    assert.deepEqual(problems, []);
  });

  test("the resolution follows the span: raw for a week, aggregates when raw would pass 50,000 points", async () => {
    const { page, problems, requests, shot } = await open(browser, node);
    await signInWithToken(page, node, token);
    await page.goto(`${node.base}/#/explorer?s=school%2Fpower&from=${START}&to=${START + 7 * 86400}`);
    await page.reload();
    const info = page.locator("#chart-info[data-points]");
    await info.waitFor();
    assert.equal(await info.getAttribute("data-step"), "raw");
    assert.equal(await info.getAttribute("data-points"), String(7 * 144));
    assert.ok(requests.some((u) => u.includes("/api/v1/records")));
    // 40 days of 1-minute points: 57,600 raw, so means.
    await page.goto(`${node.base}/#/explorer?s=plant%2Fpower&from=${START}&to=${START + 40 * 86400}`);
    await page.reload();
    await page.locator("#chart-info[data-step='PT15M']").waitFor();
    assert.ok(Number(await page.locator("#chart-info").getAttribute("data-points")) <= 50_000);
    assert.ok(requests.some((u) => u.includes("/api/v1/aggregate") && u.includes("every=PT15M")));
    // Dragging over the chart zooms in, and the finer span goes back to raw records.
    const over = await page.locator("#explorer-chart .u-over").boundingBox();
    await page.mouse.move(over.x + over.width * 0.4, over.y + 20);
    await page.mouse.down();
    await page.mouse.move(over.x + over.width * 0.45, over.y + 20, { steps: 5 });
    await page.mouse.up();
    await page.locator("#chart-info[data-step='raw']").waitFor();
    const zoomed = new URLSearchParams(page.url().split("?")[1]);
    const span = Number(zoomed.get("to")) - Number(zoomed.get("from"));
    assert.ok(span > 1.5 * 86400 && span < 2.5 * 86400, `a twentieth of 40 days, not ${span} s`);
    await shot("explorer-zoomed");
    assert.deepEqual(problems, []);
  });

  test("the pages ask nothing of any address but the node's", async () => {
    const { page, requests, problems } = await open(browser, node);
    await signInWithToken(page, node, token);
    for (const p of ["explorer?s=school%2Fpower", "compare?s=school%2Fpower", "status", "selfconsumption", "investment", "sharing", "projects", "accounts"]) {
      await page.goto(`${node.base}/#/${p}`);
      await page.waitForLoadState("networkidle");
    }
    const foreign = requests.filter((u) => !u.startsWith(`${node.base}/`) && !u.startsWith("data:") && !u.startsWith("blob:"));
    assert.deepEqual(foreign, [], "requests to other addresses");
    assert.ok(requests.length > 5);
    // The endpoints the other pages need may be missing here; the page
    // itself must not throw.
    assert.deepEqual(problems.filter((p) => p.startsWith("page error")), []);
  });

  test("on a phone: a menu, no sideways scrolling, a label on every control", async () => {
    const { page, shot, problems } = await open(browser, node, { viewport: { width: 390, height: 844 } });
    await signInWithToken(page, node, token);
    const menu = page.getByRole("button", { name: "Menu" });
    assert.equal(await page.getByRole("link", { name: "Compare" }).isVisible(), false);
    await menu.click();
    assert.equal(await menu.getAttribute("aria-expanded"), "true");
    await page.getByRole("link", { name: "Compare" }).click();
    await page.waitForURL(/#\/compare/);
    for (const p of [`explorer?s=school%2Fpower&from=${START}&to=${START + 7 * 86400}`, "compare?s=school%2Fpower", "status", "selfconsumption", "login"]) {
      await page.goto(`${node.base}/#/${p}`);
      await page.waitForLoadState("networkidle");
      const unlabelled = await page.evaluate(() =>
        [...document.querySelectorAll("input, select, textarea, button")]
          .filter((el) => !(el.labels?.length || el.getAttribute("aria-label") || (el.tagName === "BUTTON" && el.textContent.trim())))
          .map((el) => el.outerHTML.slice(0, 80)),
      );
      assert.deepEqual(unlabelled, [], `controls without a label on ${p}`);
      const [scroll, width] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
      assert.ok(scroll <= width + 1, `${p} scrolls sideways: ${scroll} > ${width}`);
      await shot(`phone-${p.split("?")[0]}`);
    }
    assert.deepEqual(problems.filter((x) => x.startsWith("page error")), []);
  });
});
