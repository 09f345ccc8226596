// One exchange with medchat's OpenAI-compatible endpoint through OpenAI's JavaScript client:
// list the models, ask once without streaming and once streaming, and print what came back as JSON.
// Usage: node check.mjs BASE_URL API_KEY QUESTION
import OpenAI from "openai";

const [baseURL, apiKey, question] = process.argv.slice(2);
const client = new OpenAI({ baseURL: `${baseURL}/v1`, apiKey, maxRetries: 0 });

const models = [];
for await (const model of client.models.list()) models.push(model.id);

const { data: completion, response } = await client.chat.completions
  .create({ model: "medchat", messages: [{ role: "user", content: question }] })
  .withResponse();

const stream = await client.chat.completions.create({
  model: "medchat",
  messages: [{ role: "user", content: question }],
  stream: true,
});
let streamed = "";
let finishReason = null;
let chunks = 0;
for await (const chunk of stream) {
  chunks += 1;
  const choice = chunk.choices[0];
  if (choice?.delta?.content) streamed += choice.delta.content;
  if (choice?.finish_reason) finishReason = choice.finish_reason;
}

let refused = null;
try {
  await new OpenAI({ baseURL: `${baseURL}/v1`, apiKey: "mck_notakey_" + "x".repeat(43), maxRetries: 0 }).models.list();
} catch (error) {
  refused = { status: error.status, name: error.constructor.name };
}

console.log(
  JSON.stringify({
    models,
    conversationId: response.headers.get("x-medchat-conversation-id"),
    answer: completion.choices[0].message.content,
    finishReason: completion.choices[0].finish_reason,
    streamed,
    streamedFinishReason: finishReason,
    chunks,
    refused,
  }),
);
