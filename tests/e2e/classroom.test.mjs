// The page as a teacher and a student meet it, on the CPU path a laptop without a GPU
// takes: the default run learns within a minute without stalling the page, each lesson's
// claim holds on the runs it makes, the layout holds at 1400, 800 and 390 px, and axe-core
// finds no serious accessibility problem. Run by scripts/test-e2e.sh.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { LONG, open, root, setup, shot, status, timings, waitFor, withCpuBrowser } from './harness.mjs';

setup();

// Main-thread tasks over 50 ms, as the browser reports them (PerformanceObserver
// 'longtask'), from before the page's own scripts run.
async function watchLongTasks(page) {
  await page.addInitScript(() => {
    window.longTasks = [];
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) window.longTasks.push({ start: e.startTime, ms: e.duration });
    }).observe({ type: 'longtask', buffered: true });
  });
}

async function longestTaskSince(page, since) {
  return page.evaluate((t) => Math.max(0, ...window.longTasks.filter((e) => e.start >= t).map((e) => e.ms)), since);
}

// `step:accuracy` pairs of every validation, and `step:dropped:grown:density` of every mask
// update, from the status line.
const evals = (s) => (s.evals ? s.evals.split('|').map((e) => e.split(':').map(Number)) : [])
  .map(([step, accuracy]) => ({ step, accuracy }));
const maskUpdates = (s) => (s.maskUpdates ? s.maskUpdates.split('|').map((e) => e.split(':').map(Number)) : [])
  .map(([step, dropped, grown, density]) => ({ step, dropped, grown, density }));
const keptRuns = (page) => page.$$eval('#kept li', (l) => l.map((e) => e.textContent));
const keptAccuracy = (label) => +label.match(/val ([\d.]+)%$/)[1];

async function ready(page) {
  await waitFor(page, 'ready', async (_, p) => (await p.$$('.heatmap canvas')).length > 0);
}

// Clicks a lesson, checks it says what to look at, plays it and waits until its `runs`
// runs are kept. While it runs, `during(status, page)` is called at every poll.
async function runLesson(page, id, runs, during = async () => {}) {
  await ready(page);
  await page.click(`#lesson-${id}`);
  assert.match(await page.textContent('#lesson-look'), /^Look at: .{40,}/);
  await waitFor(page, 'the lesson built', async (s) => s.steps === '0' && s.method !== '');
  await page.click('#play');
  await waitFor(page, `${runs} runs kept`, async (s, p) => {
    await during(s, p);
    return (await keptRuns(p)).length === runs;
  });
  // The lesson's text stays through its sequence.
  assert.match(await page.textContent('#lesson-look'), /^Look at: /);
  return keptRuns(page);
}

test('the default run learns within a minute on the CPU and never stalls the page', { timeout: LONG }, async () => {
  await withCpuBrowser(async (browser) => {
    const page = await open(browser, '', watchLongTasks);
    await ready(page);
    // The views of step 0 (the first evaluation) are drawn before training starts.
    await page.waitForSelector('[data-testid=confusion]', { timeout: 120000 });
    assert.match(await page.textContent('#play-hint'), /Press ▶ Play/);
    const since = await page.evaluate(() => performance.now());
    const t0 = Date.now();
    await page.click('#play');
    const clickMs = Date.now() - t0;
    const s = await waitFor(page, 'a minute of training, or the end', (s) =>
      Date.now() - t0 >= 60000 || (s.running === 'false' && +s.steps > 0));
    const seconds = (Date.now() - t0) / 1000;
    const best = Math.max(0, ...evals(s).map((e) => e.accuracy));
    timings.default_run = {
      seconds: +seconds.toFixed(1), steps: +s.steps, best_val_accuracy: best,
      longest_task_ms: await longestTaskSince(page, since), play_click_ms: clickMs,
    };
    // Ten classes: chance is 10%. Twice that is learning anyone can see on the chart.
    // Main-thread tasks: none may reach 100 ms. The observer reports tasks of 50 ms and
    // more; on the 2-core development machine it reported none in a whole default run.
    assert.ok(timings.default_run.longest_task_ms < 100, `a ${timings.default_run.longest_task_ms} ms main-thread task while training`);
    assert.ok(best >= 0.2, `best validation accuracy ${best} after ${seconds} s, ${s.steps} steps`);
    assert.ok(+s.lossRecent < +s.lossStart - 0.2, `loss ${s.lossStart} -> ${s.lossRecent}`);
    await shot(page, '13-default-run-1400');
    // The same page at a tablet's and a phone's width: the controls stack above the views
    // and nothing is wider than the window.
    for (const width of [800, 390]) {
      await page.setViewportSize({ width, height: 900 });
      await page.waitForTimeout(300);
      const layout = await page.evaluate(() => ({
        scroll: document.documentElement.scrollWidth,
        window: window.innerWidth,
        stacked: document.querySelector('.controls').getBoundingClientRect().bottom
          <= document.querySelector('.views').getBoundingClientRect().top + 1,
        wide: [...document.querySelectorAll('.card, .heatmap canvas, svg')]
          .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1)
          .map((e) => e.id || e.className.baseVal || e.className),
      }));
      assert.ok(layout.scroll <= layout.window, `${width} px: the page is ${layout.scroll} px wide; too wide: ${layout.wide}`);
      assert.deepEqual(layout.wide, [], `${width} px`);
      assert.ok(layout.stacked, `${width} px: the controls do not stack above the views`);
      await shot(page, `13-default-run-${width}`);
    }
    await page.close();
  });
});

// Lesson: dense, 90% and 99% on one network and one budget.
test('lesson "what sparsity is": dense and 90% learn, 99% stays near chance', { timeout: LONG }, async () => {
  await withCpuBrowser(async (browser) => {
    const page = await open(browser, '');
    const kept = await runLesson(page, 'what-sparsity-is', 3);
    const [dense, s90, s99] = kept.map(keptAccuracy);
    timings.lesson_what_sparsity_is = { kept };
    assert.match(kept[0], /^dense/);
    assert.match(kept[1], /^static (9\.9\d|10\.0\d)% dense/);
    assert.match(kept[2], /^static (0\.9\d|1\.0\d)% dense/);
    assert.ok(dense > s99 + 10 && s90 > s99 + 10, kept.join(' | '));
    await shot(page, '14-lesson-what-sparsity-is');
    await page.close();
  });
});

test('lesson "ERK vs uniform": ERK keeps the thin layers and learns where uniform does not', { timeout: LONG }, async () => {
  await withCpuBrowser(async (browser) => {
    const page = await open(browser, '');
    const seen = {};
    // Each run's masks as it starts: uniform's runs first, ERK's once uniform's is kept.
    const kept = await runLesson(page, 'erk-vs-uniform', 2, async (s, p) => {
      if (+s.steps < 1 || +s.steps > 20) return;
      const which = (await keptRuns(p)).length === 0 ? 'uniform' : 'erk';
      if (seen[which]) return;
      const summary = await p.$eval('#sparsity-summary', (e) => e.dataset);
      const bars = await p.$$eval('.density-bar', (rows) => rows.map((r) => +r.dataset.nnz / +r.dataset.numel));
      seen[which] = { connected: +summary.connected, stem: bars[0], min: Math.min(...bars), max: Math.max(...bars) };
    });
    const [uniform, erk] = kept.map(keptAccuracy);
    timings.lesson_erk_vs_uniform = { kept, ...seen };
    assert.ok(seen.uniform && seen.erk, JSON.stringify(seen));
    // Uniform: the stem at 3% like every layer (a layer keeps at least a weight or so);
    // ERK: the thin stem more than twice that.
    assert.ok(Math.abs(seen.uniform.stem - 0.03) < 0.005, JSON.stringify(seen.uniform));
    assert.ok(seen.erk.stem > 2 * seen.uniform.stem, JSON.stringify(seen));
    assert.ok(seen.erk.connected > seen.uniform.connected, JSON.stringify(seen));
    assert.ok(erk > uniform, kept.join(' | '));
    await shot(page, '15-lesson-erk-vs-uniform');
    await page.close();
  });
});

test('lesson "RigL: prune and regrow": the masks move, each layer keeps its count, the moves shrink and stop', { timeout: LONG }, async () => {
  await withCpuBrowser(async (browser) => {
    const page = await open(browser, '');
    let marked = 0;
    await runLesson(page, 'rigl-prune-regrow', 1, async (_, p) => {
      marked = Math.max(marked, await p.$$eval('.heatmap', (h) => h.reduce((a, f) => a + +f.dataset.grown, 0)));
    });
    const s = await status(page);
    const total = +s.steps;
    const moves = maskUpdates(s).filter((u) => u.grown > 0);
    timings.lesson_rigl_prune_regrow = { marked_in_heatmaps: marked, updates: maskUpdates(s), total_steps: total };
    assert.ok(marked > 0, 'no regrown weight ever shown in the heatmaps');
    assert.ok(moves.length >= 3, JSON.stringify(moves));
    for (const u of moves) assert.equal(u.dropped, u.grown, `step ${u.step}: as many regrown as pruned`);
    assert.ok(new Set(maskUpdates(s).map((u) => u.density.toFixed(6))).size === 1, 'the density moved');
    assert.ok(moves[0].grown > moves[moves.length - 1].grown, JSON.stringify(moves));
    assert.ok(moves.every((u) => u.step <= 0.75 * total), `moves after three quarters of ${total} steps`);
    await page.close();
  });
});

test('lesson "SCULPT-ing": one prune from 30% to 3%, and the accuracy falls at it', { timeout: LONG }, async () => {
  await withCpuBrowser(async (browser) => {
    const page = await open(browser, '');
    let startDensity;
    await runLesson(page, 'sculpt-cycles', 1, async (s, p) => {
      if (startDensity === undefined && s.method === 'sculpt') {
        const d = await p.$eval('#sparsity-summary', (e) => e.dataset);
        startDensity = +d.nnz / +d.numel;
      }
    });
    const s = await status(page);
    const prunes = maskUpdates(s).filter((u) => u.dropped > 0);
    const e = evals(s);
    timings.lesson_sculpt = { start_density: startDensity, prunes, evals: e };
    assert.ok(Math.abs(startDensity - 0.3) < 0.01, `start density ${startDensity}`);
    assert.equal(prunes.length, 1, JSON.stringify(prunes));
    assert.ok(Math.abs(prunes[0].density - 0.03) < 0.001, JSON.stringify(prunes));
    const before = e.filter((x) => x.step <= prunes[0].step).pop();
    const after = e.find((x) => x.step > prunes[0].step);
    assert.ok(before && after && before.accuracy > after.accuracy, `accuracy ${JSON.stringify(before)} then ${JSON.stringify(after)}`);
    await shot(page, '16-lesson-sculpt');
    await page.close();
  });
});

// axe-core on the page as first opened and after a run, with every fold open.
test('axe-core finds no serious or critical accessibility violation, and the controls work from the keyboard', { timeout: LONG }, async () => {
  await withCpuBrowser(async (browser) => {
    const page = await open(browser, 'epochs=1&synthetic_size=200');
    await ready(page);
    const audit = async (when) => {
      await page.$$eval('details', (d) => d.forEach((e) => { e.open = true; }));
      await page.addScriptTag({ path: path.join(root, 'tests/e2e/node_modules/axe-core/axe.min.js') });
      const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
      const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
      timings[`axe_${when}`] = result.violations.map((v) => `${v.impact} ${v.id} (${v.nodes.length})`);
      assert.deepEqual(bad.map((v) => `${v.id}: ${v.help} at ${v.nodes.map((n) => n.target).join(', ')}`), [], when);
    };
    await audit('opened');
    // Play from the keyboard: a focused button presses with Enter.
    await page.focus('#play');
    await page.keyboard.press('Enter');
    await waitFor(page, 'the run trained', (s) => s.running === 'false' && +s.steps > 0);
    await audit('trained');
    await page.close();
  });
});
