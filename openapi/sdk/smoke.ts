// Smoke test of the generated TypeScript types (openapi-typescript) with openapi-fetch against a
// running API: `tsc --noEmit` checks that the calls below match the spec, then tsx runs them.
// Usage: tsx smoke.ts <base-url>
import createClient from "openapi-fetch";
import type { paths } from "./out/typescript/schema";

const base = process.argv[2];

function fail(what: string, detail: unknown): never {
  console.error(`${what}: ${JSON.stringify(detail)}`);
  process.exit(1);
}

async function person(name: string) {
  const anonymous = createClient<paths>({ baseUrl: base });
  const email = `sdk-${crypto.randomUUID()}@example.com`;
  const registered = await anonymous.POST("/v1/auth/register", {
    body: { email, password: "slow-and-steady-2026" },
  });
  if (!registered.data) fail("register", registered.error);
  const client = createClient<paths>({
    baseUrl: base,
    headers: { Authorization: `Bearer ${registered.data.access_token}` },
  });
  const profile = await client.PATCH("/v1/me/profile", {
    body: {
      display_name: name,
      birthdate: "1993-04-05",
      gender: "woman",
      intentions: ["long_term"],
      location: { latitude: 48.85, longitude: 2.35 },
    },
  });
  if (!profile.data) fail("update profile", profile.error);
  const me = await client.GET("/v1/me");
  if (!me.data || me.data.email !== email) fail("me", me.error ?? me.data);
  return { client, id: me.data.id };
}

const ana = await person("Ana");
const max = await person("Max");
await ana.client.POST("/v1/swipes", { body: { target_id: max.id, action: "like" } });
const back = await max.client.POST("/v1/swipes", { body: { target_id: ana.id, action: "like" } });
if (!back.data?.resonance_created) fail("like back", back.error ?? back.data);
const page = await ana.client.GET("/v1/resonances", { params: { query: { limit: 10 } } });
if (page.data?.items[0]?.user_id !== max.id) fail("résonances", page.error ?? page.data);
const refused = await ana.client.POST("/v1/swipes", { body: { target_id: ana.id, action: "like" } });
if (refused.response.status !== 422 || !refused.error?.type) fail("swiping oneself", refused.error);
const reported = await ana.client.POST("/v1/reports", {
  body: { user_id: max.id, reason: "spam", details: "sdk smoke" },
});
if (reported.data?.status !== "open") fail("report", reported.error);
const exported = await ana.client.GET("/v1/me/export");
if (exported.data?.account.id !== ana.id) fail("export", exported.error);
// `null` clears a field.
const cleared = await ana.client.PATCH("/v1/me/profile", { body: { bio: null } });
if (!cleared.data || cleared.data.bio !== null) fail("clearing the bio", cleared.error ?? cleared.data);
const erased = await max.client.DELETE("/v1/me");
if (erased.response.status !== 204) fail("erase", erased.error);
const after = await max.client.GET("/v1/me");
if (after.response.status !== 401 || !after.error?.type) fail("after erasure", after.error);
console.log("typescript sdk: ok");
