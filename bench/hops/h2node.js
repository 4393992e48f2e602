// Usage: node bench/hops/h2node.js PORT [PATH] [CALLS] (a GET when PATH ends in /health).
// Sequential h2c calls from Node's http2 session (what kar-sdk uses): p50/p90 in us.
const http2 = require('http2');
const [port, path, n] = [process.argv[2], process.argv[3] || '/echo', +(process.argv[4] || 2000)];
const s = http2.connect(`http://127.0.0.1:${port}`);
const get = path.endsWith('/health');
function one() {
  return new Promise((res, rej) => {
    const req = s.request({ ':method': get ? 'GET' : 'POST', ':path': path, 'content-type': 'application/kar+json' });
    req.on('response', () => {});
    req.on('data', () => {});
    req.on('end', res); req.on('error', rej);
    if (get) req.end(); else req.end('["hello"]');
  });
}
(async () => {
  const t = [];
  for (let i = 0; i < n + 200; i++) { const a = process.hrtime.bigint(); await one(); if (i >= 200) t.push(Number(process.hrtime.bigint() - a) / 1000); }
  t.sort((a, b) => a - b);
  console.log(`node: n=${t.length} p50=${t[t.length >> 1].toFixed(1)}us p90=${t[Math.floor(t.length * 0.9)].toFixed(1)}us`);
  process.exit(0);
})();
