// End-to-end tests of the playground page in Debian's headless Chromium (tests/e2e/
// harness.mjs): loading, training on WebGPU and on the CPU, links, data files, checkpoints,
// the paper's presets. Run by scripts/test-e2e.sh (part of scripts/test.sh).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { execFileSync } from 'node:child_process';
import {
  LONG, gpuBrowser, launch, open, readSafetensors, root, setup, shot, status, timings, waitFor,
} from './harness.mjs';

setup();

// A small, fast run that still shows mask updates within a few steps.
// 44 training images seen again every 2 steps (60 in all), without augmentation: the loss
// falls clearly within 42 steps (2.27 to 1.51 on SwiftShader), a signal a short test can trust.
const RUN = 'method=rigl&model=resnet8&width=0.5&sparsity=0.8&synthetic_size=64&batch=16&epochs=30&lr=0.05&update_every=5&x.data.augment=false&x.data.val_fraction=0.25';
// SwiftShader is a software adapter, which `auto` skips for the (faster) CPU path: the
// WebGPU tests ask for the GPU explicitly.
const GPU = 'backend=gpu';

test('the page loads, gets WebGPU and shows the initial masks', { timeout: LONG }, async () => {
  const t0 = Date.now();
  const page = await open(gpuBrowser, `${RUN}&${GPU}`);
  const s = await waitFor(page, 'first masks', async (_, p) => (await p.$$('.heatmap canvas')).length > 0);
  assert.equal(s.backend, 'webgpu', `expected WebGPU, status: ${s.text}`);
  // A first visit says what to do.
  assert.match(await page.textContent('#play-hint'), /Press ▶ Play/);
  // The slider stops where this small model runs out of weights, and names a model that
  // holds 99.99%.
  const max = +(await page.$eval('#sparsity', (e) => e.max));
  assert.ok(max > 0 && max < 1000, `slider max ${max}`);
  assert.match(await page.textContent('#sparsity-capacity'),
    /^This model holds at most 99\.\d+% \(one weight left in every layer\); for 99\.99%, choose resnet\d+ ×[\d.]+\.$/);
  timings.webgpu_page_ready_ms = Date.now() - t0;
  const bars = await page.$$eval('.density-bar', (rows) => rows.map((r) => [+r.dataset.nnz, +r.dataset.numel]));
  const canvases = await page.$$('.heatmap canvas');
  assert.ok(bars.length > 3 && bars.length === canvases.length, `${bars.length} bars, ${canvases.length} heatmaps`);
  const nnz = bars.reduce((a, [n]) => a + n, 0);
  const numel = bars.reduce((a, [, n]) => a + n, 0);
  // 80% sparsity, counted from the real masks (ERK rounds per layer).
  assert.ok(Math.abs(nnz / numel - 0.2) < 0.01, `density ${nnz}/${numel}`);
  assert.equal(await page.$('#fallback'), null);
  await shot(page, '1-loaded');
  await page.close();
});

test('a run from the URL hash trains: the loss falls and the masks move', { timeout: LONG }, async () => {
  const t0 = Date.now();
  const page = await open(gpuBrowser, `${RUN}&${GPU}&autoplay=1`);
  const first = await waitFor(page, 'first step', (s) => +s.steps >= 1);
  timings.webgpu_first_step_ms_wall = Date.now() - t0;
  timings.webgpu_first_step_ms_page = +first.firstStepMs;
  // Step 5 is RigL's first mask update: the heatmaps mark regrown weights.
  await waitFor(page, 'a mask update', async (_, p) =>
    p.$$eval('.heatmap', (h) => h.some((f) => +f.dataset.grown > 0)));
  await shot(page, '2-mask-update');
  const s = await waitFor(page, '42 steps', (s) => +s.steps >= 42);
  assert.ok(+s.lossRecent < +s.lossStart - 0.1, `loss ${s.lossStart} -> ${s.lossRecent}`);
  timings.webgpu_images_per_second = +s.imagesPerSecond;
  timings.webgpu_loss = [+s.lossStart, +s.lossRecent];
  const step = +(await page.$eval('.heatmaps', (e) => e.dataset.step));
  assert.ok(step >= 5, `heatmaps from step ${step}`);
  await shot(page, '3-training');

  // Pause holds, Step takes exactly one batch, Reset goes back to step 0.
  await page.click('#pause');
  const paused = await waitFor(page, 'pause', (s) => s.running === 'false');
  await page.waitForTimeout(3000);
  const still = await status(page);
  assert.ok(+still.steps <= +paused.steps + 1, `kept training after pause: ${paused.steps} -> ${still.steps}`);
  await page.click('#step');
  await waitFor(page, 'one step', (s) => +s.steps === +still.steps + 1);
  await page.waitForTimeout(1500);
  assert.equal(+(await status(page)).steps, +still.steps + 1);
  // Pausing evaluated the validation split: confusion matrix and samples are shown.
  assert.ok(await page.$('[data-testid=confusion]'));
  // The matrix names its classes and axes, and a legend reads its colours.
  const classNames = (await status(page)).classes.split(',');
  const matrix = await page.textContent('[data-testid=confusion]');
  assert.ok(matrix.includes('predicted') && matrix.includes('true class') && matrix.includes(classNames[0].slice(0, 12)), matrix);
  assert.match(await page.textContent('#confusion-legend'), /correct: 0% → 100%.*another class/s);
  assert.equal((await page.$$('.sample canvas')).length, 8);
  await shot(page, '4-paused');
  await page.click('#reset');
  await waitFor(page, 'reset', (s) => +s.steps === 0);
  // The reset run was kept for comparison.
  assert.equal((await page.$$('#kept li')).length, 1);
  await page.close();
});

test('a bad dataset file gives a visible error', { timeout: LONG }, async () => {
  const page = await open(gpuBrowser, 'data=cifar10&model=resnet8');
  await page.waitForSelector('#error');
  assert.match(await page.textContent('#error'), /pick or drop the dataset file/);
  await page.setInputFiles('#data-file', {
    name: 'cifar-10-binary.tar.gz', mimeType: 'application/gzip',
    buffer: Buffer.from('this is not a tarball at all'),
  });
  await page.waitForFunction(() => /not a readable \.tar\.gz/.test(document.querySelector('#error')?.textContent || ''),
    null, { timeout: 60000 });
  assert.equal(await page.$eval('#error', (e) => e.dataset.context), 'data');
  await shot(page, '5-bad-dataset');
  await page.close();

  // An archive bomb: 40 MiB of zeros as one "image" gzips to a few KB. The page shares the
  // engine's bounded reader, so it refuses the entry instead of inflating it.
  const bomb = await open(gpuBrowser, 'data=folder&model=resnet8');
  await bomb.setInputFiles('#data-file', {
    name: 'bomb.tar.gz', mimeType: 'application/gzip',
    buffer: zlib.gzipSync(tarOf('train/cat/0.png', Buffer.alloc(40 << 20))),
  });
  await bomb.waitForFunction(() => /limit of 32 MiB for one image/.test(document.querySelector('#error')?.textContent || ''),
    null, { timeout: 60000 });
  assert.match(await bomb.textContent('#error'), /train\/cat\/0\.png/);
  await bomb.close();
});

// A one-file ustar archive (header, data, padding, end marker).
function tarOf(name, data) {
  const header = Buffer.alloc(512);
  header.write(name, 0);
  header.write('0000644\0', 100);
  header.write('0000000\0', 108);
  header.write('0000000\0', 116);
  header.write(data.length.toString(8).padStart(11, '0') + '\0', 124);
  header.write('00000000000\0', 136);
  header.write('0', 156);
  header.write('ustar\0', 257);
  header.write('00', 263);
  header.fill(' ', 148, 156);
  const sum = header.reduce((a, b) => a + b, 0);
  header.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  const pad = Buffer.alloc((512 - (data.length % 512)) % 512);
  return Buffer.concat([header, data, pad, Buffer.alloc(1024)]);
}

test('real CIFAR-10 images from a dropped archive train in the page', { timeout: LONG }, async (t) => {
  const archive = path.resolve(root, '../shared/data/cifar10-train-jpg.tar.gz');
  if (!fs.existsSync(archive)) {
    t.skip(`${archive} is absent (the shared development data)`);
    return;
  }
  const t0 = Date.now();
  const page = await open(gpuBrowser, 'data=folder&model=resnet8&limit=1000&batch=16');
  await page.setInputFiles('#data-file', archive);
  const s = await waitFor(page, 'the archive loaded', (s) => s.trainImages !== '' && s.dataset !== '' && s.classes.includes('airplane'));
  timings.cifar10_jpg_archive_load_ms = Date.now() - t0;
  assert.equal(s.classes.split(',').length, 10);
  assert.equal(+s.trainImages, 900);
  await page.click('#step');
  await waitFor(page, 'one step on CIFAR-10', (s) => +s.steps === 1);
  await shot(page, '6-cifar10-images');
  await page.close();
});

test('a link can hide controls and sets the sliders', { timeout: LONG }, async () => {
  const page = await open(gpuBrowser, 'hide=method,seed,explain&sparsity=0.999&model=resnet20&width=1');
  await page.waitForSelector('#sparsity');
  assert.equal(await page.$('#method'), null);
  assert.equal(await page.$('#seed'), null);
  assert.equal(await page.$('.explain'), null);
  assert.ok(await page.$('#epochs'));
  // What the link fixed is shown, read-only: the student sees which method runs.
  const chips = await page.$$eval('#fixed-settings .chip', (l) => l.map((e) => e.textContent));
  assert.deepEqual(chips, ['method: east', 'seed: 0']);
  // 99.9% sits three quarters along the log-scaled slider.
  assert.equal(await page.$eval('#sparsity', (e) => e.value), '750');
  assert.match(await page.textContent('#sparsity-value'), /99\.9% sparse/);
  // A full-width ResNet-20 holds 99.99%: the slider reaches its top, no capacity note.
  assert.equal(await page.$eval('#sparsity', (e) => e.max), '1000');
  assert.equal(await page.textContent('#sparsity-capacity'), '');
  await page.close();
});

test('a bad link names the setting', { timeout: LONG }, async () => {
  const page = await open(gpuBrowser, 'methd=rigl');
  await page.waitForSelector('#error');
  assert.match(await page.textContent('#error'), /methd/);
  await page.close();
});

test('a checkpoint from the native CLI opens in the page and exports for PyTorch as the CLI does', { timeout: LONG }, async () => {
  const cli = path.join(root, 'scripts/sparselab');
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sparselab-cli-run-'));
  execFileSync(cli, ['train', '--out', runDir, '--set', 'model.arch=resnet8', '--set', 'model.width=0.25',
    '--set', 'data.synthetic_size=200', '--set', 'batch_size=16', '--set', 'epochs=1',
    '--set', 'method.name=set', '--set', 'sparsity.sparsity=0.95', '--set', 'run.device=cpu',
    '--set', 'run.eval_test=false'], { stdio: 'inherit' });
  const summary = JSON.parse(fs.readFileSync(path.join(runDir, 'summary.json'), 'utf8'));
  const page = await open(gpuBrowser, `model=resnet8&${GPU}`);
  await waitFor(page, 'ready', async (_, p) => (await p.$$('.heatmap canvas')).length > 0);
  await page.setInputFiles('#import-ckpt', path.join(runDir, 'checkpoint.bin'));
  await waitFor(page, 'the imported run', async (s, p) => s.imported === String(summary.steps)
    && (await p.$(`[data-testid=confusion][data-step="${summary.steps}"]`)) !== null);
  const text = await page.textContent('#confusion-caption');
  const acc = +text.match(/([0-9.]+)% of/)[1];
  // The page evaluates the checkpoint on the same validation split as the CLI did.
  assert.equal(typeof summary.final_val_accuracy, 'number', 'the CLI run reported no validation accuracy');
  assert.ok(Math.abs(acc - summary.final_val_accuracy * 100) < 0.11,
    `page ${acc}% vs CLI ${summary.final_val_accuracy * 100}%`);
  // The masks shown are the checkpoint's: the same non-zero count, layer by layer summed.
  const bars = await page.$$eval('.density-bar', (rows) => rows.map((r) => +r.dataset.nnz));
  assert.equal(bars.reduce((a, b) => a + b, 0), summary.nnz);
  assert.equal((await status(page)).backend, 'webgpu');
  await shot(page, '7-imported-checkpoint');
  // "for PyTorch" saves what `sparselab export` writes for the same checkpoint: the same
  // tensors under the same names, weights and masks bit for bit. BatchNorm's running
  // statistics are re-estimated before the page's evaluation (on this adapter's arithmetic),
  // so they agree to float precision.
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export-pytorch')]);
  assert.match(download.suggestedFilename(), /^sparselab-set-step\d+\.safetensors$/);
  const fromPage = readSafetensors(fs.readFileSync(await download.path()));
  const cliFile = path.join(runDir, 'cli.safetensors');
  execFileSync(cli, ['export', path.join(runDir, 'checkpoint.bin'), '--out', cliFile]);
  const fromCli = readSafetensors(fs.readFileSync(cliFile));
  assert.deepEqual(Object.keys(fromPage.tensors).sort(), Object.keys(fromCli.tensors).sort());
  for (const [name, want] of Object.entries(fromCli.tensors)) {
    const got = fromPage.tensors[name];
    assert.equal(got.dtype, want.dtype, name);
    assert.deepEqual(got.shape, want.shape, name);
    if (/running_(mean|var)$/.test(name)) {
      const a = new Float32Array(got.bytes.buffer.slice(got.bytes.byteOffset, got.bytes.byteOffset + got.bytes.length));
      const b = new Float32Array(want.bytes.buffer.slice(want.bytes.byteOffset, want.bytes.byteOffset + want.bytes.length));
      a.forEach((v, i) => assert.ok(Math.abs(v - b[i]) <= 1e-3 * Math.max(1, Math.abs(b[i])), `${name}[${i}]: ${v} vs ${b[i]}`));
    } else {
      assert.ok(got.bytes.equals(want.bytes), `${name} differs between the page's and the CLI's export`);
    }
  }
  assert.equal(fromPage.meta.nnz, String(summary.nnz));
  assert.equal(fromPage.meta.arch, 'resnet8');
  // One flipped bit in the tensor data: the checksum names the damage, nothing loads.
  const bytes = fs.readFileSync(path.join(runDir, 'checkpoint.bin'));
  bytes[bytes.length - 100] ^= 0x10;
  await page.setInputFiles('#import-ckpt', { name: 'flipped.bin', mimeType: 'application/octet-stream', buffer: bytes });
  await page.waitForFunction(() => /checksum does not match/.test(document.querySelector('#error')?.textContent || ''),
    null, { timeout: 60000 });
  await page.close();
  fs.rmSync(runDir, { recursive: true, force: true });
});

test('auto leaves a software WebGPU adapter for the CPU path, and says so', { timeout: LONG }, async () => {
  const page = await open(gpuBrowser, 'model=resnet8');
  await page.waitForSelector('#fallback', { timeout: 120000 });
  assert.equal(await page.$eval('#fallback', (e) => e.dataset.software), 'true');
  assert.match(await page.textContent('#fallback'), /software imitation, so training runs on your CPU.*Device: gpu/s);
  const s = await waitFor(page, 'ready', async (_, p) => (await p.$$('.heatmap canvas')).length > 0);
  assert.equal(s.backend, 'cpu');
  await page.close();
});

test('without WebGPU the page says so and trains on the CPU', { timeout: LONG }, async () => {
  const browser = await launch(false);
  try {
    const t0 = Date.now();
    const page = await open(browser, `${RUN}&autoplay=1`);
    await page.waitForSelector('#fallback', { timeout: 120000 });
    assert.match(await page.textContent('#fallback'), /^This browser offers no GPU, so training runs on your CPU\./);
    const first = await waitFor(page, 'first CPU step', (s) => +s.steps >= 1);
    assert.equal(first.backend, 'cpu');
    timings.cpu_first_step_ms_wall = Date.now() - t0;
    const s = await waitFor(page, '42 CPU steps', (s) => +s.steps >= 42);
    assert.equal(await page.$('#play-hint'), null, 'the Play hint stays once training runs');
    // Explanations beside the plots follow the method (RigL here); the rest wait under "more".
    const beside = await page.$$eval('.views .card:not(#more-explanations) > details.explain > summary', (l) => l.map((e) => e.textContent));
    assert.ok(beside.includes('Prune and regrow (SET, RigL)'), beside.join(', '));
    assert.ok(!beside.some((t) => /DyReLU|SCULPT|Cyclic|Weight sharing|Recipes/.test(t)), beside.join(', '));
    assert.ok(await page.$('#more-explanations [data-topic=dyrelu]'), 'DyReLU under more');
    assert.ok(!(await page.$('#more-explanations [data-topic=dynamic]')), 'RigL\'s own text under more');
    // Charts that tell the truth: at least four distinct ticks, accuracy in percent, chance
    // (ln C) drawn on the loss axis, titles on the axes.
    for (const id of ['loss-chart', 'acc-chart', 'density-chart']) {
      const ticks = (await page.$eval(`[data-testid=${id}]`, (e) => e.dataset.yTicks)).split('|');
      assert.ok(ticks.length >= (id === 'density-chart' ? 2 : 4), `${id}: ${ticks}`);
      assert.equal(new Set(ticks).size, ticks.length, `${id} repeats a tick: ${ticks}`);
    }
    const acc = (await page.$eval('[data-testid=acc-chart]', (e) => e.dataset.yTicks)).split('|');
    assert.equal(acc[acc.length - 1], '100%');
    assert.match(await page.textContent('[data-testid=loss-chart]'), /training step.*loss \(cross-entropy\).*chance: ln \d+ = \d\.\d\d/s);
    assert.ok(+s.lossRecent < +s.lossStart - 0.1, `loss ${s.lossStart} -> ${s.lossRecent}`);
    timings.cpu_images_per_second = +s.imagesPerSecond;
    await shot(page, '8-cpu-fallback');
  } finally {
    await browser.close();
  }
});

// The paper's regime in the page: one click sets ResNet-34 at 99.9% (21,000 of 21 million
// weights alive), its link reproduces it, and every layer trains on the sparse kernels in
// the CPU path. The images/s land in timings.json.
async function trainPreset(browser, id, model, key) {
  const page = await open(browser, '');
  await waitFor(page, 'ready', async (_, p) => (await p.$$('.heatmap canvas')).length > 0);
  await page.click(`#preset-${id}`);
  await waitFor(page, `${model} built`, async (_, p) =>
    +(await p.$eval('#sparsity-summary', (e) => e.dataset.numel)) > 10e6);
  const hash = await page.evaluate(() => location.hash);
  assert.match(hash, new RegExp(`model=${model}`));
  assert.match(await page.textContent('#preset-summary'), /.+/);
  await page.close();

  // The link alone reproduces the run.
  const t0 = Date.now();
  const run = await open(browser, `${hash.slice(1)}&autoplay=1`);
  const first = await waitFor(run, `first ${model} step`, (s) => +s.steps >= 1);
  timings[`${key}_first_step_ms_wall`] = Date.now() - t0;
  const summary = await run.$eval('#sparsity-summary', (e) => ({ ...e.dataset, text: e.textContent }));
  const density = +summary.nnz / +summary.numel;
  assert.ok(Math.abs(density - 0.001) < 0.0002, `density ${summary.nnz}/${summary.numel}`);
  assert.ok(+summary.layers > 10 && summary.sparseLayers === summary.layers,
    `sparse kernels on ${summary.sparseLayers} of ${summary.layers} layers: ${summary.text}`);
  // How many alive weights lie on an input→output path: counted, at most the alive ones.
  assert.match(summary.connected, /^\d+$/, summary.text);
  assert.ok(+summary.connected <= +summary.nnz, `${summary.connected} of ${summary.nnz} connected`);
  assert.match(summary.text, /on an input→output path|none on a path from the input/);
  timings[`${key}_connected_nnz`] = +summary.connected;
  const kernels = await run.$$eval('.density-bar', (rows) => rows.map((r) => r.dataset.kernel));
  assert.ok(kernels.length > 10 && kernels.every((k) => k === 'sparse'), kernels.join(','));
  const s = await waitFor(run, `12 ${model} steps`, (s) => +s.steps >= 12);
  timings[`${key}_images_per_second`] = +s.imagesPerSecond;
  // Pause answers at once, and takes effect after the step in progress.
  await run.click('#pause');
  assert.match((await status(run)).text, /^pausing… \(after this step\)/);
  await waitFor(run, `${model} paused`, (s) => s.running === 'false');
  assert.match((await status(run)).text, /^paused/);
  timings[`${key}_backend`] = first.backend;
  await shot(run, `9-${id}`);
  await run.close();
}

test('one click sets ResNet-34 at 99.9%, and its link trains it on the sparse kernels', { timeout: LONG }, async () => {
  const browser = await launch(false);
  try {
    await trainPreset(browser, 'east-resnet34-999', 'resnet34', 'cpu_resnet34_999');
    await trainPreset(browser, 'east-resnet18-999', 'resnet18', 'cpu_resnet18_999');
  } finally {
    await browser.close();
  }
});

// The collapse lesson as a lecture shows it: one click runs RigL on ResNet-34 at 99.99%,
// keeps it, then runs EAST on the same budget; both stay for comparison. Checked on the
// runs the page makes (on 320 synthetic images, so CI can afford two ResNet-34 runs):
// RigL keeps almost no weight on a path from the input to the output and its loss stays
// at chance, ln 10; EAST keeps more weights on a path.
test('one click runs RigL then EAST at 99.99% on ResNet-34 and keeps both', { timeout: LONG }, async () => {
  const browser = await launch(false);
  try {
    const page = await open(browser, 'synthetic_size=320');
    await waitFor(page, 'ready', async (_, p) => (await p.$$('.heatmap canvas')).length > 0);
    await page.click('#lesson-rigl-vs-east-resnet34-9999');
    assert.match(await page.textContent('#sequence'), /next starts: method east/);
    const connected = async (p) => +(await p.$eval('#sparsity-summary', (e) => e.dataset.connected));
    const rigl = await waitFor(page, 'RigL built', async (s, p) =>
      s.method === 'rigl' && +(await p.$eval('#sparsity-summary', (e) => e.dataset.numel)) > 10e6);
    const riglConnected = await connected(page);
    await page.click('#play');
    const stepsPerRun = 2 * Math.floor(256 / 32);
    const riglEnd = await waitFor(page, 'RigL finished', (s) => s.method === 'rigl' && +s.steps >= stepsPerRun);
    const chance = Math.log(10);
    assert.ok(Math.abs(+riglEnd.lossRecent - chance) < 0.02, `RigL's loss ${riglEnd.lossRecent}, chance ${chance}`);
    await waitFor(page, 'EAST started by itself', (s) => s.method === 'east' && +s.steps >= 1);
    const eastConnected = await connected(page);
    assert.ok(eastConnected > riglConnected, `connected: EAST ${eastConnected}, RigL ${riglConnected}`);
    assert.equal(await page.textContent('#sequence'), '');
    const eastEnd = await waitFor(page, 'EAST finished and kept', async (_, p) => (await p.$$('#kept li')).length === 2);
    const kept = await page.$$eval('#kept li', (l) => l.map((e) => e.textContent));
    assert.match(kept[0], /^rigl 0\.01% dense/);
    assert.match(kept[1], /^east 0\.01% dense/);
    timings.lesson_collapse = { rigl_connected: riglConnected, east_connected: eastConnected,
      rigl_loss_recent: +riglEnd.lossRecent, east_images_per_second: +eastEnd.imagesPerSecond, kept };
    await shot(page, '12-rigl-vs-east-9999');
    await page.close();
  } finally {
    await browser.close();
  }
});

test('a network with no path from its input to its output says so before training', { timeout: LONG }, async () => {
  const browser = await launch(false);
  try {
    // RigL's random ERK start on ResNet-18 at 99.99%: 1,116 weights, none on a path.
    const page = await open(browser, 'method=rigl&model=resnet18&width=1&sparsity=0.9999');
    await waitFor(page, 'ResNet-18 built', async (_, p) =>
      +(await p.$eval('#sparsity-summary', (e) => e.dataset.numel)) > 10e6);
    const summary = await page.$eval('#sparsity-summary', (e) => ({ ...e.dataset, text: e.textContent, warn: e.classList.contains('warn') }));
    assert.equal(summary.connected, '0', summary.text);
    assert.ok(+summary.nnz > 1000, summary.text);
    assert.ok(summary.warn, 'the line is marked as a warning');
    assert.match(summary.text, /none on a path from the input to the output/);
    await shot(page, '11-disconnected');
    await page.close();
  } finally {
    await browser.close();
  }
});

test('settings that cannot make a run disable Play and clear the previous run', { timeout: LONG }, async () => {
  const browser = await launch(false);
  try {
    // A link with an impossible value: the message, no run, nothing to play.
    const bad = await open(browser, 'sparsity=2');
    await bad.waitForSelector('#error', { timeout: 120000 });
    assert.match(await bad.textContent('#error'), /sparsity/);
    assert.match(await bad.textContent('#sparsity-value'), /not a sparsity/);
    assert.ok(await bad.$eval('#play', (b) => b.disabled), 'Play enabled without a run');
    assert.ok(await bad.$eval('#step', (b) => b.disabled), 'Step enabled without a run');
    await bad.close();

    // A run on screen, then a setting it cannot have: its views go, Play with them.
    const page = await open(browser, `${RUN}`);
    await waitFor(page, 'ready', async (_, p) => (await p.$$('.heatmap canvas')).length > 0);
    await page.click('#step');
    await waitFor(page, 'one step', (s) => +s.steps === 1);
    await page.fill('#lr', '-1');
    await page.press('#lr', 'Enter');
    await page.waitForSelector('#error', { timeout: 60000 });
    assert.match(await page.textContent('#error'), /optim\.lr/);
    assert.ok(await page.$eval('#play', (b) => b.disabled), 'Play enabled after refused settings');
    // What the paused run still sends (its evaluation, histogram, masks) must not come back.
    await page.waitForTimeout(3000);
    assert.equal((await page.$$('.heatmap canvas')).length, 0, 'the previous run\'s masks stay on screen');
    assert.equal(await page.$('[data-testid=weight-histogram]'), null, 'a stale weight histogram');
    assert.equal(await page.$('[data-testid=confusion]'), null, 'a stale confusion matrix');
    assert.equal((await status(page)).steps, '0');
    assert.equal(await page.textContent('#sparsity-summary'), '');
    // The run that trained is kept for comparison.
    assert.equal((await page.$$('#kept li')).length, 1);
    await shot(page, '10-refused-settings');
    await page.close();
  } finally {
    await browser.close();
  }
});
