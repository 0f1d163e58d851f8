// The preview's set-up page in a real browser (Debian's Chromium, driven by Playwright): click the
// pool's four corners on the live image, set the lanes and length, draw a zone, save; then wait for the
// daemon's own frame to be reloaded with the lanes. Run by tests/browser.rs:
//
//   node tests/browser/setup.mjs BASE_URL SCREENSHOT.png
//
// Prints one JSON line: what the page said after saving, the corners and zone it clicked (image
// pixels), and the page's errors (none expected).
import { chromium } from 'playwright-core';

const [base, shot] = process.argv.slice(2);
const corners = [[60, 420], [580, 420], [500, 130], [140, 130]];
const zone = [[80, 330], [300, 330], [300, 410], [80, 410]];

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
});
const errors = [];
try {
  const page = await browser.newPage({ viewport: { width: 900, height: 1000 } });
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  await page.goto(`${base}/setup`);
  // The live image is loaded and the canvas sized to it.
  await page.waitForFunction(() => document.getElementById('img').naturalWidth > 0 && document.getElementById('cv').width === document.getElementById('img').naturalWidth, null, { timeout: 60000 });
  const cv = await page.$('#cv');
  const box = await cv.boundingBox();
  const size = await page.evaluate(() => [document.getElementById('cv').width, document.getElementById('cv').height]);
  const click = (p) => page.mouse.click(box.x + (p[0] * box.width) / size[0], box.y + (p[1] * box.height) / size[1]);
  await page.click('#clear');
  for (const p of corners) await click(p);
  await page.fill('#count', '5');
  await page.fill('#length', '33');
  await page.check('#mode-zone');
  for (const p of zone) await click(p);
  await page.fill('#zname', 'steps');
  await page.click('#addzone');
  await page.click('#save');
  await page.waitForFunction(() => /^(saved to|could not save)/.test(document.getElementById('status').textContent), null, { timeout: 20000 });
  const status = await page.textContent('#status');
  // The page fetches the frame again once the daemon has reloaded: its lanes are the new ones.
  await page.waitForTimeout(4000);
  await page.waitForFunction(() => document.getElementById('img').complete, null, { timeout: 20000 });
  await page.screenshot({ path: shot, fullPage: true });
  console.log(JSON.stringify({ status, corners, zone, errors }));
} finally {
  await browser.close();
}
