//! Privacy (GDPR): `GET /v1/me/export` (portability) and `DELETE /v1/me` (erasure).
//!
//! **Export** is one JSON document with what is stored about the person: account (email
//! decrypted), profile (bio decrypted), preferences, settings, last activity, photos (their
//! URLs), sessions still kept (revoked and expired ones are deleted seven days after they end),
//! the swipes they made (never who swiped on them: that is the other person's data, except
//! through résonances and likes received, which the app shows anyway), résonances (the reason
//! one ended only when they ended it), blocks, reports they filed, moderation decisions about
//! them (without the moderator's id), and the messages of their active conversations still
//! stored (the 24 h window), both sides, as the app shows them. Discovery's internal queues and
//! read receipts are not in it.
//!
//! **Erasure** is real deletion, not a flag, in this order (each step makes the next safe):
//! 1. a recent authentication is required (`REAUTH_WINDOW_S`), as for a password change;
//! 2. an erasure mark is set in Redis (an hour): from then on the API and the gateways refuse
//!    every token of the person (the check shares the revoked-session lookup's round trip),
//!    and a gateway closing one of their connections late removes their presence instead of
//!    writing a "last seen";
//! 3. one transaction locks the account row first — a concurrent request adding a session, a
//!    photo, a swipe or a résonance for them waits, then fails — reads what the clean-up needs
//!    (live sessions, active résonances, the people they liked), deletes the photo rows and
//!    schedules their objects' deletion (`object_deletions`), deletes the magic links sent to
//!    the address, removes their free text from the reports they filed, their id and the reason
//!    from moderation decisions about them (the decisions stay, naming nobody), and deletes the
//!    account row, which cascades to profile, preferences, settings, sessions and refresh
//!    tokens, swipes both ways, résonances, blocks both ways and discovery queues (reports keep
//!    their rows with the person's id set to null). If anything fails here, the mark is removed
//!    and nothing was erased: the answer is the error, and a retry works;
//! 4. the clean-up, on a task of its own so that it finishes even if the client goes away,
//!    each step logged on failure and never answered (the erasure happened): revocation marks
//!    and announcements for the sessions (gateways close with 4003), the photos' objects (the
//!    worker retries what fails), each active conversation deleted and closed on the gateways
//!    with `resonance.removed` to the partner, `likes.changed` to the people they liked,
//!    `account.erased` to their open event streams (which end), their event buffer, and their
//!    own keys: presence, last seen, rate-limit counters (by id or by the email's blind index)
//!    and stored idempotent answers (one `SCAN` of the keys naming the id, keeping only these
//!    shapes: another person's key may hold the id in an idempotency key they chose).
//!
//! What remains: the erasure mark (their id, one hour), the revoked-session marks (session ids,
//! until the access tokens would have expired), anonymous counters, the answers stored for
//! their unauthenticated POSTs with an `Idempotency-Key` (register, login: keyed by IP, 24 h,
//! holding tokens now refused), and for up to an hour the partners' own event buffers, which
//! may name them in `resonance.created` / `message.new` events. Logs carry user ids
//! (operators' retention applies). In the local mail outbox (development), mails already
//! written stay as files.
pub mod routes;
pub mod service;
