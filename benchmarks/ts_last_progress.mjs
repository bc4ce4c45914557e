// The TypeScript SDK's own client makes fast ask_lingma calls one after another and counts
// the calls whose streamed text (the progress notifications) is not the whole answer (the
// result): the SDK drops a notification handled after the result (typescript-sdk#2580).
//
// Usage: node ts_last_progress.mjs   with, in the environment,
//   MCP_SDK_DIR    a folder where `npm install @modelcontextprotocol/sdk` was run
//   SERVER         JSON array: the server's command and arguments
//   CALLS          how many calls (default 40)
// Prints one JSON line: {calls, short, empty, notifications, ms}.

import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(path.join(process.env.MCP_SDK_DIR, "package.json"));
const { Client } = require("@modelcontextprotocol/sdk/client/index.js");
const { StdioClientTransport } = require("@modelcontextprotocol/sdk/client/stdio.js");

const [command, ...args] = JSON.parse(process.env.SERVER);
const transport = new StdioClientTransport({ command, args, env: process.env, stderr: "ignore" });
const client = new Client({ name: "lingma-mcp-last-progress", version: "1.0.0" });
// The SDK reports a notification it had no handler for here (the lost ones).
client.onerror = () => {};
await client.connect(transport);

// A first call so Lingma is up before the clock starts.
await client.callTool({ name: "auth_status", arguments: {} });
const calls = Number(process.env.CALLS || 40);
const started = performance.now();
let short = 0;
let empty = 0;
let notifications = 0;
for (let i = 0; i < calls; i++) {
  let streamed = "";
  const result = await client.callTool(
    { name: "ask_lingma", arguments: { prompt: `question ${i}` } },
    undefined,
    {
      onprogress: (progress) => {
        notifications++;
        const message = progress.message ?? "";
        if (!message.startsWith("[lingma] ")) streamed += message;
      },
    },
  );
  if (result.isError) throw new Error(`ask_lingma failed: ${result.content[0].text}`);
  if (streamed !== result.structuredContent.answer) short++;
  if (streamed === "") empty++;
}
const ms = performance.now() - started;
await client.close();
console.log(JSON.stringify({ calls, short, empty, notifications, ms }));
