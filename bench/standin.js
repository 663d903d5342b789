// A light Trackdrive stand-in for the throughput benchmarks: one Node process that answers
// every lead like Trackdrive's create-lead (201, a small JSON body), after DELAY_MS, and counts
// them. The relay's own sandbox is a threaded Python server that validates and records every
// call; at a few thousand calls/s it would take as much CPU as the relays being compared.
//   node bench/standin.js PORT
//   GET  /_stats            -> {"count": N}   leads answered so far
//   POST /_delay?ms=200     -> sets the answer delay
const http = require("http");

const port = Number(process.argv[2] || 8089);
let delayMs = 0;
let count = 0;

const server = http.createServer((req, res) => {
  if (req.url === "/_stats") {
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ count }));
    return;
  }
  if (req.url.startsWith("/_delay")) {
    delayMs = Number(new URL(req.url, "http://x").searchParams.get("ms") || 0);
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ delay_ms: delayMs }));
    return;
  }
  const chunks = [];
  req.on("data", (chunk) => chunks.push(chunk));
  req.on("end", () => {
    const answer = () => {
      count += 1;
      const body = JSON.stringify({ success: true, lead: { id: count, caller_id: "masked" } });
      res.writeHead(201, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) });
      res.end(body);
    };
    if (delayMs > 0) setTimeout(answer, delayMs); else answer();
  });
});
server.keepAliveTimeout = 60000;
server.headersTimeout = 65000;
server.listen(port, "127.0.0.1");
