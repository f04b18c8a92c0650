// Opens the console in Debian's headless Chromium (the admin key in X-Admin-Key) and prints one JSON
// line: the remaining the page shows for a limit once it equals what the test read from Redis (or the
// last value shown, after the page's first refreshes), every script error, console error and failed
// request until then, and the status of the state without the key. Saves a screenshot.
//   node console.mjs <silo url> <admin key> <provider/key/limit> <expected remaining> <screenshot path>
// With "-" for the limit, it only waits the given number of seconds of charts, then saves the
// screenshot (the demo's picture of the console): node console.mjs <url> <key> - <seconds> <path>
import puppeteer from "puppeteer-core";

const [url, adminKey, remainingOf, expected, screenshot] = process.argv.slice(2);
const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const errors = [];
let shown = null;
let withoutKey = null;
let seen = [];
try {
  const page = await browser.newPage();
  page.on("pageerror", e => errors.push("pageerror: " + e.message));
  page.on("console", m => { if (m.type() === "error") errors.push("console: " + m.text()); });
  page.on("requestfailed", r => errors.push("requestfailed: " + r.url() + " " + (r.failure()?.errorText ?? "")));
  await page.setViewport({ width: 1400, height: 900 });
  if (adminKey) await page.setExtraHTTPHeaders({ "X-Admin-Key": adminKey });
  await page.goto(new URL("/console", url).toString(), { waitUntil: "load" });

  if (remainingOf === "-") {
    await page.waitForSelector("[data-remaining]", { timeout: 10000 });
    await new Promise(resolve => setTimeout(resolve, Number(expected) * 1000));
  } else {
    // Within one refresh of the sample that holds it: the page polls every second, the silo samples every second.
    const selector = `[data-remaining="${remainingOf}"]`;
    await page.waitForSelector(selector, { timeout: 10000 });
    try {
      await page.waitForFunction((s, v) => document.querySelector(s)?.textContent === v, { timeout: 3000 }, selector, expected);
    } catch {
      // Reported below as the value shown.
    }
    shown = Number(await page.$eval(selector, e => e.textContent));
  }
  await page.screenshot({ path: screenshot, fullPage: true });
  seen = [...errors];
} finally {
  await browser.close();
}

// A caller without the key is refused.
withoutKey = (await fetch(new URL("/console/api/state", url))).status;
console.log(JSON.stringify({ shown, errors: seen, withoutKey }));
