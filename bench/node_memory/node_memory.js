// Memory of a Node.js process holding WebSocket connections, as the kernel charges it: a pod-router stand-in.
// `node node_memory.js server PORT` serves WebSocket upgrades and echoes every frame back (raw, unmasked copy);
// `node node_memory.js client PORT CONNECTIONS SECONDS BYTES` opens the connections, sends BYTES per connection
// every 100 ms for SECONDS, then asks the server for its memory and prints it as JSON.
"use strict";
const http = require("http");
const net = require("net");
const crypto = require("crypto");
const fs = require("fs");
const v8 = require("v8");

function status() {
  const text = fs.readFileSync("/proc/self/status", "utf8");
  const kib = (k) => Number((text.match(new RegExp(`^${k}:\\s+(\\d+)`, "m")) || [0, 0])[1]) / 1024;
  const m = process.memoryUsage();
  const h = v8.getHeapStatistics();
  return {
    node: process.version,
    rss_mib: +kib("VmRSS").toFixed(1),
    rss_anon_mib: +kib("RssAnon").toFixed(1),
    rss_file_mib: +kib("RssFile").toFixed(1),
    heap_total_mib: +(m.heapTotal / 1048576).toFixed(1),
    heap_used_mib: +(m.heapUsed / 1048576).toFixed(1),
    external_mib: +(m.external / 1048576).toFixed(1),
    heap_size_limit_mib: h.heap_size_limit / 1048576,
    native_anon_mib: +(kib("RssAnon") - m.heapTotal / 1048576).toFixed(1),
  };
}

const [mode, port] = process.argv.slice(2, 4);
if (mode === "server") {
  const sockets = new Set();
  // Long-lived state held in the old space, to bring the heap near its cap as a busy router's session maps would.
  const retained = (globalThis.retained = []);
  const retainMib = Number(process.env.RETAIN_MIB || 0);
  while (process.memoryUsage().heapUsed < retainMib * 1048576) {
    retained.push(Array.from({ length: 1000 }, (_, i) => ({ id: i, route: `backend-${i % 7}` })));
  }
  // Peaks, sampled every 50 ms: what the OOM killer would have seen.
  const peak = {};
  setInterval(() => {
    for (const [k, v] of Object.entries(status())) if (typeof v === "number") peak[k] = Math.max(peak[k] || 0, v);
  }, 50);
  const server = http.createServer((req, res) => {
    if (req.url === "/memory") {
      res.end(JSON.stringify({ ...status(), connections: sockets.size, peak }));
    } else res.end("ok");
  });
  server.on("upgrade", (req, socket) => {
    const accept = crypto
      .createHash("sha1")
      .update(req.headers["sec-websocket-key"] + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")
      .digest("base64");
    socket.write(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        `Sec-WebSocket-Accept: ${accept}\r\n\r\n`,
    );
    sockets.add(socket);
    socket.on("data", (chunk) => socket.write(Buffer.from(chunk)));
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
  });
  server.listen(Number(port), "127.0.0.1");
} else {
  const [connections, seconds, bytes] = process.argv.slice(4).map(Number);
  const payload = Buffer.alloc(bytes, 120);
  const open = [];
  let pending = connections;
  for (let i = 0; i < connections; i++) {
    const s = net.connect(Number(port), "127.0.0.1", () => {
      s.write(
        `GET /socket.io/ HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${crypto.randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
    s.once("data", () => {
      open.push(s);
      if (--pending === 0) run();
    });
    s.on("data", () => {});
    s.on("error", () => {});
  }
  function run() {
    const timer = setInterval(() => open.forEach((s) => s.write(payload)), 100);
    setTimeout(() => {
      clearInterval(timer);
      http.get(`http://127.0.0.1:${port}/memory`, (res) => {
        let body = "";
        res.on("data", (d) => (body += d));
        res.on("end", () => {
          console.log(body);
          open.forEach((s) => s.destroy());
          process.exit(0);
        });
      });
    }, seconds * 1000);
  }
}
