// The Node.js peer: amqplib + undici, in hookd's shape (issue 22's yardstick).
//
// One AMQP connection, prefetch = hookd's, one undici Agent keeping at most hookd's
// delivery.per_hook_concurrency connections per origin (each bench hook is a host of its own). Each
// message is POSTed to every matching hook at once, with the same body and the same headers hookd
// sends (both signatures: hex HMAC-SHA256 in X-Hook-Signature, and the Standard Webhooks three over
// "id.timestamp.body"), then acked. No retries, no history, no log lines. Runs until SIGTERM.
//
//     node bench/peers/node.mjs SPEC.json   # {"amqp", "queue", "prefetch", "connections_per_host", "hooks", ...}
import { createHash, createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import amqp from "amqplib";
import { Agent, request } from "undici";

const spec = JSON.parse(readFileSync(process.argv[2], "utf8"));
const agent = new Agent({
  connections: spec.connections_per_host,
  pipelining: 1,
  headersTimeout: spec.timeout_s * 1000,
  bodyTimeout: spec.timeout_s * 1000,
});

// A stable delivery id per (event, hook), as hookd's: a name-based (version 5) UUID.
const NAMESPACE = Buffer.from(spec.delivery_namespace.replaceAll("-", ""), "hex");
function deliveryId(eventId, hookId) {
  const hash = createHash("sha1").update(NAMESPACE).update(`${eventId}\u0000${hookId}`).digest();
  hash[6] = (hash[6] & 0x0f) | 0x50;
  hash[8] = (hash[8] & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function headers(hook, event, eventId, body) {
  const id = deliveryId(eventId, hook.id);
  const stamp = Math.floor(Date.now() / 1000).toString();
  const key = Buffer.from(hook.secret, "utf8");
  const standard = createHmac("sha256", key).update(`${id}.${stamp}.`).update(body).digest("base64");
  return {
    "content-type": "application/json",
    "user-agent": spec.user_agent,
    "x-hook-event": event,
    "x-hook-id": hook.id,
    "x-hook-delivery": id,
    "x-hook-attempt": "1",
    "x-hook-signature": createHmac("sha256", key).update(body).digest("hex"),
    "webhook-id": id,
    "webhook-timestamp": stamp,
    "webhook-signature": `v1,${standard}`,
  };
}

async function post(hook, event, eventId, body) {
  try {
    const response = await request(hook.url, {
      method: "POST",
      body,
      headers: headers(hook, event, eventId, body),
      dispatcher: agent,
    });
    await response.body.dump();
  } catch {
    // the peer does not retry
  }
}

const connection = await amqp.connect(spec.amqp);
const channel = await connection.createChannel();
await channel.prefetch(spec.prefetch);
await channel.consume(spec.queue, async (message) => {
  if (message === null) return;
  const account = String((message.properties.headers || {}).account_id);
  const event = message.fields.routingKey;
  if (account === spec.account && event.startsWith("job.")) {
    const eventId = message.properties.messageId || "";
    await Promise.all(spec.hooks.map((hook) => post(hook, event, eventId, message.content)));
  }
  channel.ack(message);
});

process.on("SIGTERM", async () => {
  try {
    await connection.close();
  } finally {
    process.exit(0);
  }
});
