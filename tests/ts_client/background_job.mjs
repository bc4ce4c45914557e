// The TypeScript SDK's own client, with a request timeout shorter than the answer, gets
// that answer: ask_lingma returns at the server's --detach-after with the text so far and a
// job, then check_lingma_job follows the job until it is done. Every call ends within the
// client's timeout; the answer does not.
//
// Usage: node background_job.mjs   with, in the environment,
//   MCP_SDK_DIR   a folder where `npm install @modelcontextprotocol/sdk` was run
//   PYTHON        the Python that has lingma-mcp installed
//   WORK_DIR, WORKSPACE   folders for the server (--work-dir, --workspace)
//   DETACH_AFTER  the server's --detach-after, in seconds
//   CLIENT_TIMEOUT_MS  the client's timeout for the ask and each check
//   CHECK_WAIT_S  how long each check_lingma_job may wait for the job
//   LINGMA_SIM_*  the simulator's switches (how slowly it answers)
// Prints one JSON line with what happened; exits non-zero on a failed call (a request that
// outlasts CLIENT_TIMEOUT_MS fails with the SDK's RequestTimeout error).

import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(path.join(process.env.MCP_SDK_DIR, "package.json"));
const { Client } = require("@modelcontextprotocol/sdk/client/index.js");
const { StdioClientTransport } = require("@modelcontextprotocol/sdk/client/stdio.js");

const timeout = Number(process.env.CLIENT_TIMEOUT_MS);
const transport = new StdioClientTransport({
  command: process.env.PYTHON,
  args: [
    "-m", "lingma_mcp", "--simulate",
    "--work-dir", process.env.WORK_DIR,
    "--workspace", process.env.WORKSPACE,
    "--detach-after", process.env.DETACH_AFTER,
  ],
  env: process.env,
  stderr: "inherit",
});
const client = new Client({ name: "lingma-mcp-ts-sdk-test", version: "1.0.0" });
await client.connect(transport);

// Listing the tools makes the client validate each result against its outputSchema.
const { tools } = await client.listTools();
// Lingma up first (with the default timeout): the detach then cuts the answer, not the
// start-up, and every call from here on has the short timeout.
await client.callTool({ name: "auth_status", arguments: {} });
const started = await client.callTool(
  { name: "ask_lingma", arguments: { prompt: "a long agent task", mode: "agent" } },
  undefined,
  { timeout },
);
if (started.isError) throw new Error(`ask_lingma failed: ${started.content[0].text}`);
const jobId = started.structuredContent.job_id;

const states = [];
let followed = started.structuredContent.answer;
let last;
for (;;) {
  last = await client.callTool(
    { name: "check_lingma_job", arguments: { job_id: jobId, wait_s: Number(process.env.CHECK_WAIT_S) } },
    undefined,
    { timeout },
  );
  if (last.isError) throw new Error(`check_lingma_job failed: ${last.content[0].text}`);
  states.push(last.structuredContent.status);
  followed += last.structuredContent.text;
  if (last.structuredContent.status !== "running" && !last.structuredContent.unread_chars) break;
}
await client.close();

const result = last.structuredContent.result;
console.log(JSON.stringify({
  tools: tools.map((t) => t.name),
  started: started.structuredContent,
  states,
  followed,
  error: last.structuredContent.error,
  result,
  content: last.content[0].text,
}));
