//! The chat store in Redis, shared by the gateway (which writes it) and the API (which reads the
//! history and creates or closes conversations). Everything is keyed by résonance id.
//!
//! Per conversation (`keys::RedisKeys::chat_*`):
//! - `chat:{id}:messages` — a stream: one entry per message (`s` sender, `c` client id, `b` body,
//!   `t` sent at). Entry ids are the message ids, ordered. Entries older than [`MESSAGE_TTL_MS`]
//!   are never read, and trimmed by a write at most a minute later, or by `despacio-worker`
//!   (scheduled in `chat:trim-due` at the oldest entry's expiry) when nobody writes; the key
//!   expires 24 h (plus a margin of at most 4 minutes) after the last message. At most
//!   [`MAX_MESSAGES`] are kept.
//! - `chat:{id}:clients` — `sender:client_id` → `message_id sent_at`, so a retried `send` is
//!   acknowledged with the first id instead of being stored twice. A record goes when its
//!   message is trimmed (by age or count), and the hash expires with the stream.
//! - `chat:{id}:reads` — read marks (expire with the stream).
//! - `chat:{id}:meta` — the members (`a`, `b`) and how complete the history is: `floor` (no
//!   message after it was ever lost; `0-0` when the API created the conversation, the restore
//!   time when a gateway had to rebuild the hash from PostgreSQL because Redis lost it),
//!   `trimmed` (the newest id removed by age or count), `last` (the newest id written) and
//!   `trim_at` (when the next age trim is due: checked at most once a minute). It lives
//!   as long as the résonance and holds no content.
//! - `chat:{id}:closed` — a tombstone written when the conversation ends, so a gateway that read
//!   PostgreSQL just before the unmatch can never restore the members afterwards.
//!
//! A resume from position `p` is *recovered* when `p ≥ floor`, `p ≥ trimmed`, no entry after `p`
//! has aged out unread, and the stream still exists when `last > p`. Anything else answers
//! `recovered: false`: the client must reload rather than believe it has everything.
use std::{fmt, str::FromStr};

/// Messages live 24 hours.
pub const MESSAGE_TTL_MS: u64 = 24 * 3600 * 1000;
/// At most this many messages are kept per conversation (the oldest go first).
pub const MAX_MESSAGES: u64 = 10_000;
/// Longest message body, in characters.
pub const MAX_BODY_CHARS: usize = 4000;
/// How long "last seen" is remembered after someone goes offline.
pub const LAST_SEEN_TTL_S: u64 = 30 * 86_400;

/// A message id: a Redis stream id `ms-seq`, ordered within a conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    /// The position before every message.
    pub const ZERO: StreamId = StreamId { ms: 0, seq: 0 };
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

impl FromStr for StreamId {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        let (ms, seq) = s.split_once('-').ok_or(())?;
        let digits =
            |p: &str| !p.is_empty() && p.len() <= 20 && p.bytes().all(|b| b.is_ascii_digit());
        if !digits(ms) || !digits(seq) {
            return Err(());
        }
        Ok(StreamId {
            ms: ms.parse().map_err(|_| ())?,
            seq: seq.parse().map_err(|_| ())?,
        })
    }
}

/// Shared Lua: compares two stream ids.
const CMP: &str = r#"
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local function cmp(x, y)
  local a1, a2 = parse(x)
  local b1, b2 = parse(y)
  if a1 ~= b1 then if a1 < b1 then return -1 else return 1 end end
  if a2 ~= b2 then if a2 < b2 then return -1 else return 1 end end
  return 0
end
"#;

/// Stores a batch of messages and fans each out, in order; every message is handled as if it were
/// alone (a batch only shares one script call: one round trip and one script set-up for all).
///
/// ARGV: now (ms), ttl (ms), max messages, rate count, rate period (ms), key prefix, this
/// gateway instance, then [`SEND_ARGS`] per message: sender, client id, body, sent at, frame head
/// (the JSON frame up to the message id's opening quote), origin, "1" when the sender has other
/// local connections, résonance id. KEYS, [`SEND_KEYS`] per message: meta, stream, clients, rate
/// counter, sender's presence. Returns three values per message: `nometa`, `notmember`,
/// `dup id sent_at`, `rate ms`, `err message` (that message failed; the others are unaffected)
/// or `ok id receivers` (`receivers` counts the gateways holding the recipient), padded with
/// empty strings.
const SEND_BODY: &str = r#"
local now = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local maxlen = tonumber(ARGV[3])
local limit = tonumber(ARGV[4])
local period = ARGV[5]
local prefix = ARGV[6]
local instance = ARGV[7]
local function send(k, a)
  local meta = redis.call('HMGET', KEYS[k], 'a', 'b', 'trim_at', 'last')
  local ma, mb = meta[1], meta[2]
  if not ma then return 'nometa', '', '' end
  local sender = ARGV[a]
  local other
  if sender == ma then other = mb elseif sender == mb then other = ma else return 'notmember', '', '' end
  local ckey = sender .. ':' .. ARGV[a + 1]
  local seen = redis.call('HGET', KEYS[k + 2], ckey)
  if seen then
    local sp = string.find(seen, ' ', 1, true)
    return 'dup', string.sub(seen, 1, sp - 1), string.sub(seen, sp + 1)
  end
  local count = redis.call('INCR', KEYS[k + 3])
  if count == 1 then redis.call('PEXPIRE', KEYS[k + 3], period) end
  if count > limit then
    local left = redis.call('PTTL', KEYS[k + 3])
    if left < 0 then redis.call('PEXPIRE', KEYS[k + 3], period); left = tonumber(period) end
    return 'rate', tostring(left), ''
  end
  -- Age trimming is checked at most once a minute per conversation (entries past 24 h are never
  -- read anyway: readers start at now - 24 h).
  local due = not meta[3] or tonumber(meta[3]) <= now
  if due and trim_age(KEYS[k], KEYS[k + 1], KEYS[k + 2], now, ttl) then
    redis.call('HSET', KEYS[k], 'trim_at', string.format('%d', now + 60000))
  end
  local len = redis.call('XLEN', KEYS[k + 1])
  -- The stream expired (or was lost) while holding messages: they are gone for good, and a
  -- resume from before them must say so even once the stream exists again.
  if len == 0 and meta[4] then redis.call('HSET', KEYS[k], 'trimmed', meta[4]) end
  if len >= maxlen then
    local cut = redis.call('XRANGE', KEYS[k + 1], '-', '+', 'COUNT', len - maxlen + 1)
    redis.call('HSET', KEYS[k], 'trimmed', cut[#cut][1])
    forget(KEYS[k + 2], cut)
    redis.call('XTRIM', KEYS[k + 1], 'MAXLEN', maxlen - 1)
  end
  local id = redis.call('XADD', KEYS[k + 1], '*', 's', sender, 'c', ARGV[a + 1], 'b', ARGV[a + 2], 't', ARGV[a + 3])
  redis.call('HSET', KEYS[k + 2], ckey, id .. ' ' .. ARGV[a + 3])
  redis.call('HSET', KEYS[k], 'last', id)
  -- Key lifetimes are refreshed when the stream starts and with the minute's trim check, with a
  -- margin, so the keys always outlive the last message by 24 h.
  if due or len == 0 then
    redis.call('PEXPIRE', KEYS[k + 1], ttl + 180000)
    redis.call('PEXPIRE', KEYS[k + 2], ttl + 180000)
    -- When the oldest stored message expires, even if nobody writes again (the worker trims).
    local first = redis.call('XRANGE', KEYS[k + 1], '-', '+', 'COUNT', 1)
    local oldest = tonumber(string.match(first[1][1], '^(%d+)-'))
    redis.call('ZADD', prefix .. 'chat:trim-due', oldest + ttl, ARGV[a + 7])
  end
  local payload = ARGV[a + 5] .. '\t' .. ARGV[a + 7] .. '\t' .. id .. '\t' .. ARGV[a + 4] .. id .. '"}'
  local receivers = redis.call('PUBLISH', prefix .. 'chat:user:' .. other, payload)
  -- The sender's other devices: local ones get it from this gateway's own channel; on other
  -- gateways, when the presence set names another live instance (the usual single entry is
  -- this gateway's, checked cheaply before reading the set).
  local mine = ARGV[a + 6] == '1'
  local held = 0
  if not mine then held = redis.call('ZCARD', KEYS[k + 4]) end
  if held > 1 or (held == 1 and not redis.call('ZSCORE', KEYS[k + 4], instance)) then
    for _, inst in ipairs(redis.call('ZRANGEBYSCORE', KEYS[k + 4], now, '+inf')) do
      if inst ~= instance then mine = true; break end
    end
  end
  if mine then redis.call('PUBLISH', prefix .. 'chat:user:' .. sender, payload) end
  return 'ok', id, tostring(receivers)
end
local out = {}
local n = #KEYS / 5
for i = 0, n - 1 do
  -- One message's error (a key of the wrong type, say) is that message's answer alone.
  local ok, s, x, y = pcall(send, i * 5 + 1, 8 + i * 8)
  if not ok then
    s, x, y = 'err', type(s) == 'table' and tostring(s.err) or tostring(s), ''
  end
  out[#out + 1] = s
  out[#out + 1] = x
  out[#out + 1] = y
end
return out
"#;

/// Shared Lua: trimming by age. `forget` drops the de-duplication records of entries about to be
/// trimmed (nothing about a message outlives it); `trim_age` trims at most 200 entries older
/// than 24 h and says whether none is left, and how many it trimmed (a long backlog is cleared
/// over several calls, never in one long script). `meta` may be `nil` (members lost): the `trimmed` mark is then skipped.
const TRIM_FNS: &str = r#"
local function forget(clients, entries)
  local fields = {}
  for _, e in ipairs(entries) do
    local f, s, c = e[2], nil, nil
    for j = 1, #f, 2 do
      if f[j] == 's' then s = f[j + 1] elseif f[j] == 'c' then c = f[j + 1] end
    end
    if s and c then fields[#fields + 1] = s .. ':' .. c end
    if #fields >= 500 then redis.call('HDEL', clients, unpack(fields)); fields = {} end
  end
  if #fields > 0 then redis.call('HDEL', clients, unpack(fields)) end
end
local function trim_age(meta, stream, clients, now, ttl)
  local minid = string.format('%d', now - ttl) .. '-0'
  local old = redis.call('XRANGE', stream, '-', '(' .. minid, 'COUNT', 200)
  if #old > 0 then
    local newest = old[#old][1]
    if meta then redis.call('HSET', meta, 'trimmed', newest) end
    forget(clients, old)
    local ms, seq = string.match(newest, '^(%d+)-(%d+)$')
    redis.call('XTRIM', stream, 'MINID', ms .. '-' .. string.format('%d', tonumber(seq) + 1))
  end
  return #old < 200, #old
end
"#;

/// The send script: stores a batch of messages (keys, arguments and answers: `SEND_BODY`).
pub fn send_script() -> String {
    format!("{TRIM_FNS}{SEND_BODY}")
}

/// Trims conversations whose oldest message has expired, written to or not (`despacio-worker`,
/// every minute). KEYS: the due set ([`crate::keys::RedisKeys::chat_trim_due`]). ARGV: ttl
/// (ms), key prefix, how many conversations at most, how many entries at most (the call stops
/// taking conversations once that many were trimmed: never one long script). The time is Redis's
/// own (stream ids come from its clock). Each due conversation loses up to 200 expired messages
/// (with their de-duplication records) and is rescheduled at its new oldest message's expiry, or
/// leaves the set when nothing is left; one that fails (a key of the wrong type, say) is retried
/// in 10 minutes instead of blocking the others. Returns `{handled, still due, failed}`.
pub fn trim_due_script() -> String {
    format!(
        "{TRIM_FNS}{}",
        r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl, prefix, budget = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[4])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. now, 'LIMIT', 0, tonumber(ARGV[3]))
local handled, failed, trimmed = 0, 0, 0
local function one(id)
  local base = prefix .. 'chat:' .. id
  local meta = base .. ':meta'
  if redis.call('EXISTS', meta) == 0 then meta = nil end
  local _, n = trim_age(meta, base .. ':messages', base .. ':clients', now, ttl)
  local first = redis.call('XRANGE', base .. ':messages', '-', '+', 'COUNT', 1)
  if #first == 0 then
    redis.call('ZREM', KEYS[1], id)
  else
    redis.call('ZADD', KEYS[1], tonumber(string.match(first[1][1], '^(%d+)-')) + ttl, id)
  end
  return n
end
for _, id in ipairs(due) do
  if trimmed >= budget then break end
  local ok, n = pcall(one, id)
  handled = handled + 1
  if ok then
    trimmed = trimmed + n
  else
    failed = failed + 1
    redis.call('ZADD', KEYS[1], now + 600000, id)
  end
end
return {handled, redis.call('ZCOUNT', KEYS[1], '-inf', '(' .. now), failed}
"#
    )
}

/// Keys per message in [`send_script`].
pub const SEND_KEYS: usize = 5;
/// Arguments per message in [`send_script`] (after the shared ones).
pub const SEND_ARGS: usize = 8;

/// Reads what follows a position. KEYS: meta, stream. ARGV: user, position (`0-0` for none),
/// count, now (ms), ttl (ms), first ("1" on the first page: compute `recovered`). Returns
/// `{nometa}`, `{notmember}` or `{ok, partner, recovered, last, more, id, sender, client, body,
/// sent_at, id, ...}`.
pub fn resume_script() -> String {
    format!(
        "{CMP}{}",
        r#"
local meta = redis.call('HMGET', KEYS[1], 'a', 'b', 'last', 'floor', 'trimmed')
local a, b = meta[1], meta[2]
if not a then return {'nometa'} end
local user = ARGV[1]
local partner
if user == a then partner = b elseif user == b then partner = a else return {'notmember'} end
local pos = ARGV[2]
local count = tonumber(ARGV[3])
local minid = string.format('%d', tonumber(ARGV[4]) - tonumber(ARGV[5])) .. '-0'
local last = meta[3] or '0-0'
local recovered = '1'
if ARGV[6] == '1' then
  local floor = meta[4] or '0-0'
  local trimmed = meta[5] or '0-0'
  if cmp(pos, floor) < 0 or cmp(pos, trimmed) < 0 then recovered = '0' end
  if cmp(last, pos) > 0 and redis.call('EXISTS', KEYS[2]) == 0 then recovered = '0' end
end
local entries
if cmp(minid, pos) > 0 then
  if ARGV[6] == '1' and #redis.call('XRANGE', KEYS[2], '(' .. pos, '(' .. minid, 'COUNT', 1) > 0 then
    recovered = '0'
  end
  entries = redis.call('XRANGE', KEYS[2], minid, '+', 'COUNT', count + 1)
else
  entries = redis.call('XRANGE', KEYS[2], '(' .. pos, '+', 'COUNT', count + 1)
end
local more = '0'
if #entries > count then more = '1' end
local out = {'ok', partner, recovered, last, more}
for i = 1, math.min(#entries, count) do
  local e = entries[i]
  local f = {}
  for j = 1, #e[2], 2 do f[e[2][j]] = e[2][j + 1] end
  table.insert(out, e[1])
  table.insert(out, f['s'] or '')
  table.insert(out, f['c'] or '')
  table.insert(out, f['b'] or '')
  table.insert(out, f['t'] or '')
end
return out
"#
    )
}

/// Relays a `typing` or `read` frame to the other member (and a `read` to the reader's other
/// connections, after recording it). KEYS: meta, reads. ARGV: user, kind, frame, key prefix,
/// message id, ttl (ms), origin, résonance id. Returns `nometa`, `notmember` or `ok`.
pub const RELAY: &str = r#"
local meta = redis.call('HMGET', KEYS[1], 'a', 'b')
local a, b = meta[1], meta[2]
if not a then return 'nometa' end
local user = ARGV[1]
local other
if user == a then other = b elseif user == b then other = a else return 'notmember' end
local payload = ARGV[7] .. '\t' .. ARGV[8] .. '\t-\t' .. ARGV[3]
if ARGV[2] == 'read' then
  redis.call('HSET', KEYS[2], user, ARGV[5])
  redis.call('PEXPIRE', KEYS[2], ARGV[6])
  redis.call('PUBLISH', ARGV[4] .. 'chat:user:' .. user, payload)
end
redis.call('PUBLISH', ARGV[4] .. 'chat:user:' .. other, payload)
return 'ok'
"#;

/// Creates a conversation's metadata unless it exists or the conversation was closed.
/// KEYS: meta, closed tombstone. ARGV: member a, member b, floor. Returns `closed` or `ok`.
pub const META_RESTORE: &str = r#"
if redis.call('EXISTS', KEYS[2]) == 1 then return 'closed' end
if redis.call('HSETNX', KEYS[1], 'a', ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], 'b', ARGV[2], 'floor', ARGV[3])
end
return 'ok'
"#;

/// A gateway starts holding someone. KEYS: presence set, and (optionally) the connecting
/// session's revocation key, then (optionally) the connecting token's "verified" mark, then
/// (optionally) the person's erasure mark. ARGV:
/// instance, expiry (ms), now (ms), presence channel, "online" frame, key ttl (ms), and with a
/// mark: `check` or `remember`, the token's expiry (ms since the epoch). Returns -2 and changes
/// nothing when asked to `check` a mark that does not exist (the token's signature must be
/// checked first: only then may its holder learn whether the session is revoked), -1 and
/// changes nothing when the session is revoked or the account is being erased (neither ever
/// shows as online);
/// otherwise (after setting the mark when asked to `remember` it) how many
/// gateways held them before, and publishes the frame when that was none.
pub const PRESENCE_UP: &str = r#"
if KEYS[3] and ARGV[7] == 'check' and redis.call('EXISTS', KEYS[3]) == 0 then return -2 end
if KEYS[2] and redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
if KEYS[4] and redis.call('EXISTS', KEYS[4]) == 1 then return -1 end
if KEYS[3] and ARGV[7] == 'remember' then redis.call('SET', KEYS[3], '1', 'PXAT', ARGV[8]) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3])
local before = redis.call('ZCARD', KEYS[1])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
if before == 0 then redis.call('PUBLISH', ARGV[4], ARGV[5]) end
return before
"#;

/// A gateway stops holding someone. KEYS: presence set, last seen, erasure mark. ARGV:
/// instance, now (ms), presence channel, last seen (RFC 3339), "offline" frame, last-seen ttl
/// (s). Publishes the frame when nobody holds them any more. Once the person's account is
/// being erased (the mark is set before the API sweeps their keys), it deletes both keys and
/// says nothing: a connection closing late leaves no trace behind the sweep.
pub const PRESENCE_DOWN: &str = r#"
if redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('DEL', KEYS[1], KEYS[2])
  return 0
end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[2])
if redis.call('ZCARD', KEYS[1]) == 0 then
  redis.call('SET', KEYS[2], ARGV[4], 'EX', ARGV[6])
  redis.call('PUBLISH', ARGV[3], ARGV[5])
  return 1
end
return 0
"#;

/// The heartbeat: KEYS: presence sets. ARGV: instance, expiry (ms), key ttl (ms).
pub const PRESENCE_REFRESH: &str = r#"
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, ARGV[2], ARGV[1])
  redis.call('PEXPIRE', key, ARGV[3])
end
return #KEYS
"#;

/// The presence of one or more people. KEYS: presence set, last seen, for each person. ARGV: now
/// (ms). Returns `{online, last}` for each person, in order (`online` counts live gateways).
pub const PRESENCE_GET: &str = r#"
local out = {}
for i = 1, #KEYS, 2 do
  out[#out + 1] = tostring(redis.call('ZCOUNT', KEYS[i], ARGV[1], '+inf'))
  out[#out + 1] = redis.call('GET', KEYS[i + 1]) or ''
end
return out
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_parse_order_and_print() {
        let a: StreamId = "1795564412000-0".parse().expect("id");
        let b: StreamId = "1795564412000-7".parse().expect("id");
        assert!(a < b && StreamId::ZERO < a);
        assert_eq!(b.to_string(), "1795564412000-7");
        for bad in [
            "",
            "12",
            "-1",
            "1-",
            "a-1",
            "1-1-1",
            "1 -1",
            "99999999999999999999999-0",
        ] {
            assert!(bad.parse::<StreamId>().is_err(), "{bad}");
        }
    }
}
