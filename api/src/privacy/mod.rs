//! Privacy (GDPR): `GET /v1/me/export` (portability) and `DELETE /v1/me` (erasure).
//!
//! **Export** is one JSON document with everything stored about the person: account (email
//! decrypted), profile (bio decrypted), preferences, settings, photos (their URLs), sessions
//! still kept (revoked and expired ones are deleted seven days after they end), the swipes they
//! made (never who swiped on them: that is the other person's data, except through résonances
//! and likes received, which the app shows anyway), résonances, blocks, reports they filed,
//! moderation decisions about them (without the moderator's id), and the messages of their
//! active conversations still stored (the 24 h window), both sides, as the app shows them.
//!
//! **Erasure** is real deletion, not a flag, in this order (each step makes the next safe):
//! 1. a recent authentication is required (`REAUTH_WINDOW_S`), as for a password change;
//! 2. an erasure mark is set in Redis (an hour): a chat gateway closing one of the person's
//!    connections late removes their presence keys instead of writing them;
//! 3. every session is revoked: access tokens stop working at once, the gateways close the
//!    person's chat connections (4003);
//! 4. their photos' objects are deleted from the object store — if the store fails, the
//!    request answers 503 and nothing else is deleted yet (sign in again and retry);
//! 5. each active résonance's conversation is deleted and closed on the gateways, and the
//!    partner gets `resonance.removed` (as for an unmatch);
//! 6. in one transaction: magic links sent to the address, reports they filed or that name
//!    them, their name on moderation decisions (the decision stays, naming nobody) and the
//!    account row, whose deletion cascades to profile, preferences, settings, photos rows,
//!    sessions and refresh tokens, swipes both ways, résonances, blocks both ways and discovery
//!    queues;
//! 7. their open event streams get `account.erased` and end; their event buffer, rate-limit
//!    counters, stored idempotent answers, presence and last-seen keys are deleted (one `SCAN`
//!    of the deployment's keys naming them).
//!
//! What remains: the erasure mark (their id, one hour), the revoked-session marks (session ids,
//! until the access tokens would have expired), anonymous counters, and for up to an hour the
//! partners' own event buffers, which may name them in `resonance.created` / `message.new`
//! events. Logs carry user ids (operators' retention applies). In the local mail outbox
//! (development), mails already written stay as files.
pub mod routes;
pub mod service;
