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
import { readFileSync } from "node:fs";
import Stripe from "stripe";
import { createSHA256HMAC, HashFormat } from "@shopify/shopify-api/runtime";
import { sign } from "@octokit/webhooks-methods";
import slackEvents from "@slack/events-api";

const stripe = new Stripe("sk_test_unused");

const senders = {
  stripe: async (j) => ({
    header: stripe.webhooks.generateTestHeaderString({ payload: j.payload, secret: j.secret, timestamp: j.timestamp }),
  }),
  shopify: async (j) => ({ header: await createSHA256HMAC(j.secret, j.payload, HashFormat.Base64) }),
  github: async (j) => ({ header: await sign(j.secret, j.payload) }),
  slack: async (j) => {
    try {
      return {
        valid: slackEvents.verifyRequestSignature({
          signingSecret: j.secret,
          requestSignature: j.signature,
          requestTimestamp: j.timestamp,
          body: j.payload,
        }),
      };
    } catch (e) {
      return { valid: false, reason: String(e.message) };
    }
  },
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
