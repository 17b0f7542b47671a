// Loads btm-node (dist/) in two worker_threads at once and runs predict in both concurrently.
// Usage: node worker-predict.mjs DIST_INDEX CHECKPOINT -> prints {"workers": [{preds, logitsSum}, ...]}
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';

if (isMainThread) {
  const [dist, ckpt] = process.argv.slice(2);
  const start = new SharedArrayBuffer(4);
  const run = (id) => new Promise((resolve, reject) => {
    const w = new Worker(new URL(import.meta.url), { workerData: { dist, ckpt, id, start } });
    w.once('message', resolve);
    w.once('error', reject);
    w.once('exit', (code) => code !== 0 && reject(new Error(`worker ${id} exited with code ${code}`)));
  });
  const results = await Promise.all([run(0), run(1)]);
  console.log(JSON.stringify({ workers: results }));
} else {
  const { dist, ckpt, id, start } = workerData;
  const lib = await import(pathToFileURL(dist).href);
  const c = await lib.loadModel(ckpt);
  // Wait until both workers have loaded the model, then predict at the same time.
  const flag = new Int32Array(start);
  Atomics.add(flag, 0, 1);
  while (Atomics.load(flag, 0) < 2) Atomics.wait(flag, 0, Atomics.load(flag, 0), 10);
  const images = lib.gridTask({ n: 16, size: 16, channels: 1, numClasses: 4, seed: 7 }).images;
  const runs = await Promise.all(Array.from({ length: 4 }, () => c.predict(images, { logits: true })));
  c.dispose();
  parentPort.postMessage({ id, preds: runs.map((r) => Array.from(r.preds)), logitsSum: runs.map((r) => r.logits.reduce((a, b) => a + b, 0)) });
}
