#!/usr/bin/env node
// A small FortiGate / FortiManager agent in Node.js, built-in modules only, that classifies what goes
// wrong the way the vendor's agent error families do:
//   202000 connection failure, 202001 authentication failed, 202002 authorization failed,
//   202003 TLS/SSL certificate error, 202004 timed out; "ok" when every call worked.
//
//   node agent.js SETTINGS.json        (mockfgt check -- node examples/node/agent.js {settings})
//
// The settings file names the device, the trust (ca / insecure / client certificate) and the
// credential (token, password login, or a kept session); see the README next to this file.
// It prints what it did on stderr and its verdict as the last line of stdout.
"use strict";

const fs = require("fs");
const https = require("https");
const http = require("http");

const CONNECTION = "202000", AUTHENTICATION = "202001", AUTHORIZATION = "202002", TLS = "202003", TIMEOUT = "202004";
const PROBE = "agent-probe-" + Math.random().toString(16).slice(2, 10);

class Verdict extends Error {
  constructor(code, why) { super(why); this.code = code; }
}

// -- transport ---------------------------------------------------------------------------------
function request(cfg, method, path, { headers = {}, body = null, cookies = null } = {}) {
  const url = new URL(path, cfg.url);
  const lib = url.protocol === "https:" ? https : http;
  const options = {
    method, headers: { ...headers }, timeout: 0,
    rejectUnauthorized: !cfg.insecure,
    ca: cfg.ca ? fs.readFileSync(cfg.ca) : undefined,
    cert: cfg.cert ? fs.readFileSync(cfg.cert) : undefined,
    key: cfg.key ? fs.readFileSync(cfg.key) : undefined,
    agent: false,
  };
  if (cookies && cookies.size) options.headers.Cookie = [...cookies].map(([k, v]) => `${k}=${v}`).join("; ");
  if (body !== null) options.headers["Content-Length"] = Buffer.byteLength(body);
  return new Promise((resolve, reject) => {
    const req = lib.request(url, options, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => {
        if (cookies) for (const line of res.headers["set-cookie"] || []) {
          const [pair] = line.split(";");
          const eq = pair.indexOf("=");
          if (eq > 0) cookies.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
        }
        resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString("utf8") });
      });
      res.on("error", reject);
    });
    // One deadline for the whole call: connect, handshake, answer. A silent device never ends it.
    const timer = setTimeout(() => req.destroy(new Verdict(TIMEOUT, `no answer within ${cfg.timeout} s`)),
      cfg.timeout * 1000);
    req.on("close", () => clearTimeout(timer));
    req.on("error", reject);
    if (body !== null) req.write(body);
    req.end();
  });
}

// What an exception means. Node names certificate failures by OpenSSL's verify codes, and wraps
// other TLS failures (no shared protocol version or cipher, an alert) as EPROTO / ERR_SSL_*.
function classifyError(err) {
  if (err instanceof Verdict) return err;
  const code = err.code || "";
  const text = `${code} ${err.message}`;
  if (/CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|ERR_TLS_CERT_ALTNAME/.test(code)) return new Verdict(TLS, text);
  // Verification failures Node has no named code for ("UNSPECIFIED"): a SHA-1 signature, a weak key.
  if (/certificate|signature|digest algorithm|key too small/i.test(err.message)) return new Verdict(TLS, text);
  // A reset is a connection failure even mid-handshake ("Client network socket disconnected before
  // secure TLS connection was established", code ECONNRESET).
  if (["ECONNREFUSED", "ECONNRESET", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH", "EPIPE"].includes(code)) {
    return new Verdict(CONNECTION, text);
  }
  if (code === "ETIMEDOUT") return new Verdict(TIMEOUT, text);
  if (code === "EPROTO" || code.startsWith("ERR_SSL") || /SSL|TLS|alert/i.test(err.message)) return new Verdict(TLS, text);
  if (err.message === "socket hang up") return new Verdict(CONNECTION, text);
  return new Verdict(CONNECTION, text);
}

async function call(cfg, method, path, opts) {
  try {
    const answer = await request(cfg, method, path, opts);
    console.error(`${method} ${path.split("?")[0]} -> ${answer.status}`);
    return answer;
  } catch (err) {
    throw classifyError(err);
  }
}

function byStatus(status, what) {
  if (status === 401 || status === 429) throw new Verdict(AUTHENTICATION, `${what}: HTTP ${status}`);
  if (status === 403) throw new Verdict(AUTHORIZATION, `${what}: HTTP ${status}`);
}

// -- FortiGate (FortiOS REST API v2) -----------------------------------------------------------
async function fortigate(cfg) {
  const cookies = new Map();
  const auth = { headers: {}, query: new URLSearchParams(), csrf: null, via: "" };
  if (cfg.auth === "token" && cfg.token) {
    if (cfg.token_in === "query") auth.query.set("access_token", cfg.token);
    else auth.headers.Authorization = `Bearer ${cfg.token}`;
  } else if (cfg.auth === "session" && cfg.session) {
    auth.headers.Authorization = `Bearer ${cfg.session}`;
  } else if (cfg.auth === "password") {
    await fortigateLogin(cfg, auth, cookies);
  }
  if (cfg.vdom) auth.query.set("vdom", cfg.vdom);
  const q = auth.query.toString() ? `?${auth.query}` : "";
  const send = (method, path, json) => {
    const headers = { ...auth.headers };
    if (json !== undefined) headers["Content-Type"] = "application/json";
    if (auth.csrf && cfg.csrf && method !== "GET") headers["X-CSRFTOKEN"] = auth.csrf;
    return call(cfg, method, path + q, { headers, body: json === undefined ? null : JSON.stringify(json), cookies });
  };
  try {
    byStatus((await send("GET", "/api/v2/monitor/system/status")).status, "status");
    const address = "/api/v2/cmdb/firewall/address";
    byStatus((await send("GET", address)).status, "read");
    if (cfg.write) {
      byStatus((await send("POST", address, { name: PROBE, subnet: "192.0.2.1/32" })).status, "write");
      byStatus((await send("DELETE", `${address}/${PROBE}`)).status, "cleanup");
    }
  } finally {
    if (auth.via === "key") await send("DELETE", "/api/v2/authentication").catch(() => {});
    if (auth.via === "cookie") await call(cfg, "POST", "/logout", { cookies }).catch(() => {});
  }
}

async function fortigateLogin(cfg, auth, cookies) {
  if (cfg.login === "authentication") {
    const body = JSON.stringify({ username: cfg.user, secretkey: cfg.password, password: cfg.password,
      request_key: true, ack_pre_disclaimer: true, ack_post_disclaimer: cfg.accept_banner });
    const answer = await call(cfg, "POST", "/api/v2/authentication",
      { headers: { "Content-Type": "application/json" }, body });
    if (answer.status !== 401 && answer.status !== 404) { // 401/404: no such API before 6.4.2
      byStatus(answer.status, "login");
      let key = null;
      try { const j = JSON.parse(answer.body); if (j.status_message === "LOGIN_SUCCESS") key = j.session_key; } catch (e) { /* not JSON */ }
      if (!key) throw new Verdict(AUTHENTICATION, `login refused: ${answer.body.slice(0, 80)}`);
      auth.headers.Authorization = `Bearer ${key}`;
      auth.via = "key";
      return;
    }
  }
  const form = new URLSearchParams({ username: cfg.user || "", secretkey: cfg.password || "", ajax: "1" }).toString();
  const answer = await call(cfg, "POST", "/logincheck",
    { headers: { "Content-Type": "application/x-www-form-urlencoded" }, body: form, cookies });
  byStatus(answer.status, "login");
  if (answer.status >= 300 || !answer.body.startsWith("1")) throw new Verdict(AUTHENTICATION, `login refused: ${answer.body.trim().slice(0, 40)}`);
  auth.via = "cookie";
  for (const [name, value] of cookies) {  // ccsrftoken before 7.0, ccsrftoken_<port>[_<suffix>] after
    const token = value.replace(/"/g, "");
    if ((name === "ccsrftoken" || name.startsWith("ccsrftoken_") || name.startsWith("ccsrf_token_")) && token && token !== "0%260") auth.csrf = token;
  }
  if (cfg.accept_banner) await call(cfg, "POST", "/logindisclaimer",
    { headers: { "Content-Type": "application/x-www-form-urlencoded" }, body: "confirm=1", cookies });
}

// -- FortiManager (JSON-RPC) -------------------------------------------------------------------
// A FortiManager answers HTTP 200 and says what happened in result[0].status.code; the same -11
// means a refused credential on /sys/status (open to every admin) and a missing permission later.
async function fortimanager(cfg) {
  const headers = { "Content-Type": "application/json" };
  let query = "";
  if (cfg.auth === "token" && cfg.token) {
    if (cfg.token_in === "query") query = `?access_token=${encodeURIComponent(cfg.token)}`;
    else headers.Authorization = `Bearer ${cfg.token}`;
  }
  let session = cfg.auth === "session" ? cfg.session : null;
  let verified = false, loggedIn = false, locked = false;
  const adom = cfg.adom || "root";
  const rpc = async (role, method, url, params = {}) => {
    const body = { id: 1, method, params: [{ url, ...params }], ...(session ? { session } : {}) };
    const answer = await call(cfg, "POST", "/jsonrpc" + query, { headers, body: JSON.stringify(body) });
    byStatus(answer.status, role);
    let result = {};
    try { const j = JSON.parse(answer.body); result = Array.isArray(j.result) ? j.result[0] || {} : j.result || {}; if (role === "login") session = j.session; } catch (e) { /* judged below */ }
    const code = (result.status || {}).code || 0;
    if (code === -22) throw new Verdict(AUTHENTICATION, `${role}: -22 login failed`);
    if (code === -10147 || code === -20055) throw new Verdict(AUTHORIZATION, `${role}: ${code}`);
    if (code === -11) {
      if (role === "login" || verified) {
        // A -11 after the status call took the credential: a permission, unless the session died since.
        if (role !== "login" && await statusRefused()) throw new Verdict(AUTHENTICATION, `${role}: -11, session gone`);
        throw new Verdict(AUTHORIZATION, `${role}: -11 no permission`);
      }
      throw new Verdict(method === "get" || url === "/sys/status" ? AUTHENTICATION : AUTHORIZATION, `${role}: -11`);
    }
    return result.data;
  };
  const statusRefused = async () => {
    try {
      const body = { id: 1, method: "get", params: [{ url: "/sys/status" }], ...(session ? { session } : {}) };
      const answer = await request(cfg, "POST", "/jsonrpc" + query, { headers, body: JSON.stringify(body) });
      const j = JSON.parse(answer.body);
      const r = Array.isArray(j.result) ? j.result[0] : j.result;
      return answer.status === 200 && ((r || {}).status || {}).code === -11;
    } catch (e) { return false; }
  };
  try {
    if (cfg.auth === "password") {
      await rpc("login", "exec", "/sys/login/user", { data: { user: cfg.user, passwd: cfg.password || "" } });
      loggedIn = true;
    }
    await rpc("status", "get", "/sys/status");
    verified = true;
    const mode = await rpc("mode", "get", "/cli/global/system/global", { fields: ["workspace-mode", "adom-status"] });
    const workspace = mode && !["disabled", 0, undefined, null].includes(mode["workspace-mode"]);
    const address = `/pm/config/adom/${adom}/obj/firewall/address`;
    const ws = `/dvmdb/adom/${adom}/workspace`;
    await rpc("read", "get", address);
    if (cfg.write) {
      if (workspace && cfg.workspace_lock) { await rpc("lock", "exec", `${ws}/lock`); locked = true; }
      await rpc("write", "add", address, { data: { name: PROBE, subnet: ["192.0.2.1", "255.255.255.255"] } });
      await rpc("cleanup", "delete", `${address}/${PROBE}`);
      if (workspace && cfg.workspace_lock) await rpc("commit", "exec", `${ws}/commit`);
    }
    if (cfg.trusthost_user) {
      const admin = `/cli/global/system/admin/user/${cfg.trusthost_user}`;
      const data = await rpc("trusthosts-read", "get", admin) || {};
      const hosts = Object.fromEntries(Object.entries(data).filter(([k]) => k.includes("trusthost")));
      await rpc("trusthosts", "update", admin, { data: hosts });
    }
  } finally {
    if (locked) await rpc("unlock", "exec", `/dvmdb/adom/${adom}/workspace/unlock`).catch(() => {});
    if (loggedIn) await rpc("logout", "exec", "/sys/logout").catch(() => {});
  }
}

// -- main --------------------------------------------------------------------------------------
async function main() {
  const cfg = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
  cfg.timeout = Number(cfg.timeout) || 10;
  try {
    await (cfg.kind === "fortimanager" ? fortimanager(cfg) : fortigate(cfg));
    console.log("ok");
  } catch (err) {
    const verdict = classifyError(err);
    console.error(`failed: ${verdict.message}`);
    console.log(verdict.code);
  }
}

main();
