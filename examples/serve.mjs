// A classifier behind HTTP: load once, predict per request. Concurrent requests are queued and
// batched by Classifier.predict itself (up to maxBatch images per forward).
//   node examples/serve.mjs model.safetensors [port]
//   curl --data-binary @image.raw http://localhost:8080/predict   (uint8 CHW pixels, one image)
// Env: BTM_MAX_BATCH (images per forward; 1 = one request at a time), PORT (0 = any free port).
import { createServer } from 'node:http';
import { loadModel } from '../dist/index.js'; // in your project: from 'btm-node'

const [file, port = process.env.PORT ?? 8080] = process.argv.slice(2);
const maxBatch = process.env.BTM_MAX_BATCH ? Number(process.env.BTM_MAX_BATCH) : undefined;
const classifier = await loadModel(file, { maxBatch });
const { inChannels: c, imageSize: s, classNames } = classifier.meta;

const server = createServer(async (req, res) => {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  try {
    if (req.method !== 'POST' || req.url !== '/predict') throw Object.assign(new Error('POST /predict'), { status: 404 });
    const body = new Uint8Array(Buffer.concat(chunks));
    const { preds } = await classifier.predict(body, { shape: [body.length / (c * s * s), c, s, s].map(Math.floor) });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ preds: [...preds], labels: classNames && [...preds].map((p) => classNames[p]) }));
  } catch (e) {
    res.writeHead(e.status ?? 400, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: e.message }));
  }
});
server.listen(Number(port), '127.0.0.1', () => console.log(`listening on http://127.0.0.1:${server.address().port}`));
process.on('SIGTERM', () => server.close(() => classifier.dispose()));
