// Signs (or judges) webhook deliveries with each provider's own published library, for the
// Go tests of webhookserver (senders_test.go), which run it as `node sign.mjs` with a JSON
// array of jobs on stdin and read a JSON array of results, one per job, on stdout:
//
//   {"sender": "stripe",  "payload", "secret", "timestamp"} -> {"header": Stripe-Signature}
//       stripe's webhooks.generateTestHeaderString, Stripe's helper for signing test events.
//   {"sender": "shopify", "payload", "secret"}              -> {"header": X-Shopify-Hmac-Sha256}
//       @shopify/shopify-api's createSHA256HMAC, which its own webhook validation computes.
//   {"sender": "github",  "payload", "secret"}              -> {"header": X-Hub-Signature-256}
//       @octokit/webhooks-methods' sign, the control: GitHub's scheme, verified since long.
//   {"sender": "slack",   "payload", "secret", "timestamp", "signature"} -> {"valid": bool}
//       Slack publishes no signer, only verification: @slack/events-api's
//       verifyRequestSignature judges the delivery the Go test signed, so the test can check
//       that the endpoint answers as Slack's own code decides.
//   {"sender": "linear",  "payload", "secret", "signature"} -> {"valid": bool}
//       Likewise Linear: @linear/sdk's LinearWebhookClient.verify (the signature, and the
//       body's webhookTimestamp within a minute).
import { readFileSync } from "node:fs";
import Stripe from "stripe";
import { createSHA256HMAC, HashFormat } from "@shopify/shopify-api/runtime";
import { sign } from "@octokit/webhooks-methods";
import slackEvents from "@slack/events-api";
import { LinearWebhookClient } from "@linear/sdk/webhooks";

const stripe = new Stripe("sk_test_unused");

// judged returns {valid: true} when check returns true, {valid: false, reason} when it throws.
function judged(check) {
  try {
    return { valid: check() === true };
  } catch (e) {
    return { valid: false, reason: String(e.message) };
  }
}

const senders = {
  stripe: async (j) => ({
    header: stripe.webhooks.generateTestHeaderString({ payload: j.payload, secret: j.secret, timestamp: j.timestamp }),
  }),
  shopify: async (j) => ({ header: await createSHA256HMAC(j.secret, j.payload, HashFormat.Base64) }),
  github: async (j) => ({ header: await sign(j.secret, j.payload) }),
  slack: async (j) =>
    judged(() =>
      slackEvents.verifyRequestSignature({
        signingSecret: j.secret,
        requestSignature: j.signature,
        requestTimestamp: j.timestamp,
        body: j.payload,
      }),
    ),
  linear: async (j) => judged(() => new LinearWebhookClient(j.secret).verify(Buffer.from(j.payload), j.signature)),
};

const jobs = JSON.parse(readFileSync(0, "utf8"));
const results = [];
for (const job of jobs) {
  const sender = senders[job.sender];
  if (!sender) {
    throw new Error(`unknown sender ${job.sender}`);
  }
  results.push(await sender(job));
}
process.stdout.write(JSON.stringify(results));
