// The TypeScript SDK's own client with its experimental Tasks (protocol 2025-11-25):
// ask_lingma as a task (callToolStream), an agent-mode task whose question the client
// answers within the task, a task cancelled while Lingma writes, tasks/list, and the
// status notifications the server sends.
//
// Usage: node tasks.mjs   with, in the environment,
//   MCP_SDK_DIR   a folder where `npm install @modelcontextprotocol/sdk` was run
//   PYTHON        the Python that has lingma-mcp installed
//   WORK_DIR, WORKSPACE   folders for the server (--work-dir, --workspace)
//   LINGMA_SIM_*  the simulator's switches
// Prints one JSON line with what happened; exits non-zero on a failed call.

import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(path.join(process.env.MCP_SDK_DIR, "package.json"));
const { Client } = require("@modelcontextprotocol/sdk/client/index.js");
const { StdioClientTransport } = require("@modelcontextprotocol/sdk/client/stdio.js");
const {
  CallToolResultSchema,
  CreateTaskResultSchema,
  ElicitRequestSchema,
  TaskStatusNotificationSchema,
} = require("@modelcontextprotocol/sdk/types.js");

const transport = new StdioClientTransport({
  command: process.env.PYTHON,
  args: [
    "-m", "lingma_mcp", "--simulate", "--mode", "agent",
    "--work-dir", process.env.WORK_DIR,
    "--workspace", process.env.WORKSPACE,
  ],
  env: process.env,
  stderr: "inherit",
});
const client = new Client(
  { name: "lingma-mcp-ts-tasks-test", version: "1.0.0" },
  { capabilities: { elicitation: { form: {} } } },
);
const asked = [];
client.setRequestHandler(ElicitRequestSchema, async (request) => {
  asked.push({ message: request.params.message, meta: request.params._meta ?? null });
  return { action: "accept", content: { decision: "approve" } };
});
const notified = [];
client.setNotificationHandler(TaskStatusNotificationSchema, async (notification) => {
  notified.push([notification.params.taskId, notification.params.status]);
});
const errors = [];
client.onerror = (error) => errors.push(String(error));
await client.connect(transport);

const { tools } = await client.listTools();
const support = Object.fromEntries(tools.map((t) => [t.name, t.execution?.taskSupport ?? null]));

// Runs one task to its end as the SDK does: created, polled, then the result.
async function runTask(args) {
  const seen = [];
  let result = null;
  let error = null;
  let taskId = null;
  const stream = client.experimental.tasks.callToolStream(
    { name: "ask_lingma", arguments: args }, CallToolResultSchema, { task: { ttl: 60000 } },
  );
  for await (const message of stream) {
    if (message.type === "taskCreated") taskId = message.task.taskId;
    if (message.type === "taskStatus") seen.push([message.task.status, message.task.statusMessage]);
    if (message.type === "result") result = message.result;
    if (message.type === "error") error = String(message.error);
  }
  return { taskId, seen, result, error };
}

const chat = await runTask({ prompt: "hello", mode: "chat" });
const agent = await runTask({ prompt: "tidy up\n@create a.txt one\\n" });

// A task cancelled once Lingma is writing (polled: the protocol's way to see progress).
const created = await client.request(
  { method: "tools/call", params: { name: "ask_lingma", arguments: { prompt: "a long answer", mode: "chat" }, task: {} } },
  CreateTaskResultSchema,
);
const longId = created.task.taskId;
for (;;) {
  const task = await client.experimental.tasks.getTask(longId);
  if (!/: 0 characters/.test(task.statusMessage ?? "")) break;
  await new Promise((resolve) => setTimeout(resolve, 50));
}
const cancelled = await client.experimental.tasks.cancelTask(longId);
const afterCancel = await client.experimental.tasks.getTask(longId);
const listed = await client.experimental.tasks.listTasks();
// The last status notification may trail the reply that caused it.
for (let i = 0; i < 100 && !notified.some(([id, s]) => id === longId && s === "cancelled"); i++) {
  await new Promise((resolve) => setTimeout(resolve, 20));
}
await client.close();

console.log(JSON.stringify({
  capabilities: client.getServerCapabilities(),
  support,
  chat,
  agent,
  asked,
  cancelled: { status: cancelled.status, after: afterCancel.status, taskId: longId },
  listed: listed.tasks.map((t) => [t.taskId, t.status]),
  notified,
  errors,
}));
