// The TypeScript SDK's own client, with its default 60 s request timeout, gets an answer
// that takes longer than that: ask_lingma with background=true, then check_lingma_job until
// the job is done. Every call stays well under 60 s; the answer does not.
//
// Usage: node background_job.mjs   with, in the environment,
//   MCP_SDK_DIR   a folder where `npm install @modelcontextprotocol/sdk` was run
//   PYTHON        the Python that has lingma-mcp installed
//   WORK_DIR, WORKSPACE   folders for the server (--work-dir, --workspace)
//   LINGMA_SIM_*  the simulator's switches (how slowly it answers)
// Prints one JSON line with what happened; exits non-zero on a failed call.

import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(path.join(process.env.MCP_SDK_DIR, "package.json"));
const { Client } = require("@modelcontextprotocol/sdk/client/index.js");
const { StdioClientTransport } = require("@modelcontextprotocol/sdk/client/stdio.js");

const transport = new StdioClientTransport({
  command: process.env.PYTHON,
  args: [
    "-m", "lingma_mcp", "--simulate",
    "--work-dir", process.env.WORK_DIR,
    "--workspace", process.env.WORKSPACE,
  ],
  env: process.env,
  stderr: "inherit",
});
const client = new Client({ name: "lingma-mcp-ts-sdk-test", version: "1.0.0" });
await client.connect(transport);

// Listing the tools makes the client validate each result against its outputSchema.
const { tools } = await client.listTools();
const started = await client.callTool({
  name: "ask_lingma",
  arguments: { prompt: "a long agent task", mode: "agent", background: true },
});
if (started.isError) throw new Error(`ask_lingma failed: ${started.content[0].text}`);
const jobId = started.structuredContent.job_id;

const states = [];
let followed = "";
let last;
for (;;) {
  // No timeout option: the SDK's default (60 s) applies to every call.
  last = await client.callTool({ name: "check_lingma_job", arguments: { job_id: jobId, wait_s: 20 } });
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
