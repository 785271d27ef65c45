// The interop receiver on Node's http module. Run: node receiver.js PORT RECORD_FILE
// Short keep-alive limits on purpose: an idle connection closes after 1 s, and after 3 requests.
"use strict";
const http = require("http");
const fs = require("fs");

const [port, recordFile] = process.argv.slice(2);
const answers = {
  "/200": [200, {}, "ok"], "/204": [204, {}, ""], "/500": [500, {}, "error"],
  "/429": [429, { "Retry-After": "120" }, "slow down"], "/410": [410, {}, "gone"],
  "/chunked": [200, {}, "chunked"], "/close": [200, {}, "closed"], "/1xx": [200, {}, "hinted"],
  "/ka": [200, {}, "ok"],
};

const server = http.createServer((req, res) => {
  const pieces = [];
  req.on("data", (chunk) => pieces.push(chunk));
  req.on("end", () => {
    const body = Buffer.concat(pieces);
    const line = JSON.stringify({ path: req.url, headers: req.headers, body: body.toString("base64") }) + "\n";
    fs.appendFileSync(recordFile, line);
    const [status, extra, content] = answers[req.url] || [404, {}, "unknown path"];
    if (req.url === "/chunked") {
      res.writeHead(status, extra); // no length: Node frames it chunked
      res.write("chu"); res.write("nk"); res.end("ed");
      return;
    }
    if (req.url === "/close") {
      res.useChunkedEncodingByDefault = false; // no length, no chunks: Node ends the body by closing
      res.shouldKeepAlive = false;
      res.writeHead(status, extra);
      res.end(content);
      return;
    }
    if (req.url === "/1xx") {
      res.writeContinue(); // 100 Continue, then 103 Early Hints, then the answer
      res.writeEarlyHints({ link: "</style.css>; rel=preload; as=style" });
    }
    res.writeHead(status, { ...extra, "Content-Length": Buffer.byteLength(content) });
    res.end(content);
  });
});
server.keepAliveTimeout = 1000;
server.maxRequestsPerSocket = 3;
server.listen(Number(port), "127.0.0.1", () => process.stdout.write("listening\n"));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
