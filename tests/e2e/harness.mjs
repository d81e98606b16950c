// What the end-to-end tests share: a static server for dist/ (built by
// scripts/build-app.sh), Debian's headless Chromium (WebGPU through SwiftShader with
// --enable-unsafe-webgpu, or without it for the CPU path), helpers that read the page's
// status, and the output folder: screenshots, and timings.json, which every test file adds
// its figures to.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const root = path.resolve(here, '../..');
const dist = path.join(root, 'dist');
export const out = path.join(here, 'output');
const chromiumPath = process.env.CHROMIUM || '/usr/lib/chromium/chromium';
// Steps on SwiftShader take seconds: generous, but a hung page still fails.
export const LONG = 15 * 60 * 1000;

const MIME = {
  '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm',
  '.css': 'text/css', '.svg': 'image/svg+xml', '.json': 'application/json',
  '.gz': 'application/gzip',
};

let server;
export let base, gpuBrowser;
export const timings = {};

function serve(dir) {
  return new Promise((resolve) => {
    const s = http.createServer((req, res) => {
      const url = decodeURIComponent(new URL(req.url, 'http://x').pathname);
      const file = path.join(dir, url === '/' ? 'index.html' : url);
      if (!file.startsWith(dir) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
        res.writeHead(404).end('not found');
        return;
      }
      res.writeHead(200, { 'content-type': MIME[path.extname(file)] || 'application/octet-stream' });
      fs.createReadStream(file).pipe(res);
    });
    s.listen(0, '127.0.0.1', () => resolve(s));
  });
}

export async function launch(webgpu) {
  const args = ['--no-sandbox', '--disable-dev-shm-usage'];
  if (webgpu) args.push('--enable-unsafe-webgpu');
  return chromium.launch({ executablePath: chromiumPath, headless: true, args });
}

// A browser without WebGPU (the CPU path) for the length of `fn(browser)`.
export async function withCpuBrowser(fn) {
  const browser = await launch(false);
  try {
    return await fn(browser);
  } finally {
    await browser.close();
  }
}

// A new page at `#hash`; `prepare(page)` runs before it loads (to add init scripts).
export async function open(browser, hash, prepare = async () => {}) {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  await prepare(page);
  const logs = [];
  page.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
  page.logs = logs;
  await page.goto(`${base}/#${hash}`);
  // The page mounts once its wasm has loaded.
  await page.waitForSelector('#status', { timeout: 120000 });
  return page;
}

export async function status(page) {
  return page.$eval('#status', (e) => ({ ...e.dataset, text: e.textContent }));
}

export async function waitFor(page, what, fn, timeout = LONG) {
  const start = Date.now();
  for (;;) {
    const s = await status(page);
    if (await fn(s, page)) return s;
    const err = await page.$('#error');
    if (err) throw new Error(`${what}: the page shows an error: ${await err.textContent()}`);
    if (Date.now() - start > timeout) {
      throw new Error(`${what}: timed out; status: ${JSON.stringify(s)}\n${page.logs.slice(-20).join('\n')}`);
    }
    await page.waitForTimeout(250);
  }
}

// A safetensors file's tensors (dtype, shape, raw bytes) and metadata.
export function readSafetensors(buf) {
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  const data = buf.subarray(8 + n);
  const tensors = {};
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    tensors[name] = { dtype: t.dtype, shape: t.shape, bytes: data.subarray(t.data_offsets[0], t.data_offsets[1]) };
  }
  return { meta: header.__metadata__ || {}, tensors };
}

export async function shot(page, name) {
  await page.screenshot({ path: path.join(out, `${name}.png`), fullPage: true });
}

// Each test file calls this once: the server and the WebGPU browser around its tests, and
// its timings merged into timings.json (scripts/test-e2e.sh starts each run without one).
export function setup() {
  before(async () => {
    assert.ok(fs.existsSync(path.join(dist, 'index.html')), 'dist/ is missing: run scripts/build-app.sh');
    fs.mkdirSync(out, { recursive: true });
    server = await serve(dist);
    base = `http://127.0.0.1:${server.address().port}`;
    gpuBrowser = await launch(true);
  });
  after(async () => {
    await gpuBrowser?.close();
    server?.close();
    const file = path.join(out, 'timings.json');
    const all = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : {};
    fs.writeFileSync(file, JSON.stringify({ ...all, ...timings }, null, 2));
    console.log('timings:', JSON.stringify(timings));
  });
}
