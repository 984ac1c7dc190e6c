// bench/ui.sh's measurements, with the browser tests' node and browser
// helpers (web/tests/lib.mjs).

import { launch, open, seed, signInWithToken, startNode } from "../web/tests/lib.mjs";

const runs = Number(process.argv[2] ?? 5);
const YEAR = Date.parse("2025-01-01T00:00:00Z") / 1000;
const END = Date.parse("2026-01-01T00:00:00Z") / 1000;
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const node = await startNode();
const token = node.token("bench");
const year = [];
for (let i = 0; i < 52_560; i++) year.push({ n: "bench/ten-minutes", u: "W", t: YEAR + i * 600, v: 500 + 300 * Math.sin(i / 72) + (i % 17) });
await seed(node, token, year);
const many = [];
for (let s = 0; s < 200; s++) for (let d = 0; d < 365; d++) many.push({ n: `bench/daily/${String(s).padStart(3, "0")}`, u: "W", t: YEAR + d * 86_400 + 43_200, v: 100 + s + 50 * Math.sin(d / 30) });
await seed(node, token, many);

const browser = await launch();

/** Opens the explorer at `hash` and reads the chart's draw time. */
async function drawTime(hash, points) {
  const times = [];
  for (let r = 0; r < runs; r++) {
    const { page, context } = await open(browser, node, { viewport: { width: 1400, height: 900 } });
    await signInWithToken(page, node, token);
    await page.goto(`${node.base}/#/explorer?${hash}`);
    await page.reload();
    await page.locator("#explorer-chart[data-draw-ms]").waitFor({ timeout: 120_000 });
    const shown = Number(await page.locator("#explorer-chart").getAttribute("data-points"));
    if (shown !== points) throw new Error(`the chart shows ${shown} points, not ${points}`);
    times.push(Number(await page.locator("#explorer-chart").getAttribute("data-draw-ms")));
    await context.close();
  }
  return times;
}

/** Bytes transferred by a first visit (empty cache), headers included. */
async function firstLoad(path, signIn) {
  const { page, context } = await open(browser, node);
  if (signIn) {
    // The token is set in this tab's storage first; the cache stays empty.
    await page.goto(`${node.base}/healthz`);
    await page.evaluate((t) => sessionStorage.setItem("fedwatt-token", t), token);
  }
  const cdp = await context.newCDPSession(page);
  await cdp.send("Network.enable");
  await cdp.send("Network.setCacheDisabled", { cacheDisabled: true });
  const urls = new Map();
  let bytes = 0, api = 0, files = 0;
  cdp.on("Network.requestWillBeSent", (e) => urls.set(e.requestId, new URL(e.request.url).pathname));
  cdp.on("Network.loadingFinished", (e) => {
    if (urls.get(e.requestId)?.startsWith("/api/")) api += e.encodedDataLength;
    else {
      bytes += e.encodedDataLength;
      files += 1;
    }
  });
  await page.goto(`${node.base}${path}`);
  await page.waitForLoadState("networkidle");
  await context.close();
  return { bytes, api, files };
}

const one = await drawTime(`s=bench%2Ften-minutes&from=${YEAR}&to=${END}&step=raw`, 52_560);
const names = Array.from({ length: 200 }, (_, s) => `s=${encodeURIComponent(`bench/daily/${String(s).padStart(3, "0")}`)}`).join("&");
const twoHundred = await drawTime(`${names}&from=${YEAR}&to=${END}&step=P1D`, 200 * 365);
const login = await firstLoad("/", false);
const explorer = await firstLoad(`/#/explorer?s=bench%2Ften-minutes&from=${YEAR}&to=${YEAR + 7 * 86400}`, true);
await browser.close();
node.stop();

const ms = (xs) => `${median(xs).toFixed(1)} ms (runs: ${xs.map((x) => x.toFixed(0)).join(", ")})`;
console.log(`explorer, 1 stream x 52,560 10-minute points, raw: draw ${ms(one)}`);
console.log(`explorer, 200 streams x 365 daily means: draw ${ms(twoHundred)}`);
const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;
console.log(`first load, sign-in page: ${kib(login.bytes)} transferred in ${login.files} files`);
console.log(`first load, explorer with a week's chart: ${kib(explorer.bytes)} of UI in ${explorer.files} files, plus ${kib(explorer.api)} of API answers`);
