-- pgbench: the SQL behind one warm discovery page, for a random sampled person (:i).
-- 1) me + preferences + queue state + "anyone liked me since?"; 2) only if so, fresh likers
-- since preparation (driven by my recent likes); 3) page read (the next 60 queue entries in rank
-- order, each re-checked on its profile row — which mirrors the candidate's preferences, status
-- and settings — stopping at the 20th survivor; the same row gives the card). The API runs the same
-- statements (two round trips, three when someone liked the person since the preparation).
-- Pages 1-3 like the API's request mix (wrk replays each person's first three pages): page
-- 1 + depth starts after rank base + 20 x depth (ranks of a generation are consecutive from its
-- base, generation x 10,000,000; the API's cursor is the rank of the last card it showed).
\set i random(1, :nusers)
\set depth random(0, 2)
SELECT p.user_id, p.latitude, p.longitude, p.gender, p.birthdate, p.intentions, pr.age_min, pr.age_max,
       pr.max_distance_km, pr.genders, d.generation, d.prepared_at, d.last_rank, d.exhausted,
       COALESCE(EXISTS (SELECT 1 FROM swipes l WHERE l.target_id = p.user_id AND l.action = 'like'
                        AND l.created_at > d.prepared_at), false)::int AS fresh_likes
  FROM bench_users b JOIN profiles p ON p.user_id = b.id JOIN preferences pr ON pr.user_id = b.id
  LEFT JOIN discovery_state d ON d.user_id = b.id WHERE b.i = :i
\gset
\if :fresh_likes = 1
WITH m AS (SELECT p.user_id AS id, p.location, p.gender, p.birthdate, pr.max_distance_km * 1000.0 AS maxd, pr.genders,
                  ((current_date - make_interval(years => pr.age_max + 1))::date + 1) AS born_after,
                  (current_date - make_interval(years => pr.age_min))::date AS born_before, d.prepared_at
             FROM bench_users b JOIN profiles p ON p.user_id = b.id JOIN preferences pr ON pr.user_id = b.id
             JOIN discovery_state d ON d.user_id = b.id WHERE b.i = :i)
SELECT v.user_id FROM m, (SELECT l.swiper_id FROM m, swipes l WHERE l.target_id = m.id AND l.action = 'like'
                             AND l.created_at > m.prepared_at ORDER BY l.created_at DESC LIMIT 200) fresh
CROSS JOIN LATERAL (
  SELECT c.user_id FROM (SELECT * FROM profiles WHERE user_id = fresh.swiper_id OFFSET 0) c
    JOIN users u ON u.id = c.user_id
   WHERE ST_DWithin(c.location, m.location, m.maxd) AND c.gender = ANY(m.genders)
     AND c.birthdate BETWEEN m.born_after AND m.born_before
     AND NOT EXISTS (SELECT 1 FROM discovery_queue q WHERE q.user_id = m.id AND q.candidate_id = c.user_id)
   LIMIT 1) v LIMIT 50;
\endif
WITH m AS (SELECT p.user_id AS id, p.location, p.gender, p.birthdate, p.intentions, pr.max_distance_km * 1000.0 AS maxd, pr.genders,
                  ((current_date - make_interval(years => pr.age_max + 1))::date + 1) AS born_after,
                  (current_date - make_interval(years => pr.age_min))::date AS born_before
             FROM bench_users b JOIN profiles p ON p.user_id = b.id JOIN preferences pr ON pr.user_id = b.id WHERE b.i = :i)
SELECT q.rank, p.user_id, p.display_name, p.birthdate, p.gender, p.bio_ciphertext, p.intentions,
       ARRAY(SELECT unnest(p.intentions) INTERSECT SELECT unnest(m.intentions) ORDER BY 1) AS shared,
       CASE WHEN p.location IS NULL OR m.location IS NULL THEN NULL
            ELSE GREATEST(1, round(ST_Distance(p.location, m.location) / 1000.0))::int END AS distance_km,
       ARRAY(SELECT ph.id FROM photos ph WHERE ph.user_id = p.user_id AND ph.status = 'approved' ORDER BY ph.position) AS photo_ids
  FROM m, (SELECT rank, candidate_id FROM discovery_queue
            WHERE user_id = (SELECT id FROM m) AND rank > :generation * 10000000.0 + 20 * :depth ORDER BY rank LIMIT 60) q CROSS JOIN LATERAL (
  SELECT c.user_id, c.display_name, c.birthdate, c.gender, c.bio_ciphertext, c.intentions, c.location
    FROM (SELECT * FROM profiles WHERE user_id = q.candidate_id OFFSET 0) c
   WHERE c.location IS NOT NULL AND c.display_name IS NOT NULL AND c.birthdate IS NOT NULL
     AND c.gender IS NOT NULL AND cardinality(c.intentions) > 0 AND c.incognito IS NOT NULL
     AND ST_DWithin(c.location, m.location, m.maxd)
     AND c.gender = ANY(m.genders) AND c.birthdate BETWEEN m.born_after AND m.born_before
     AND c.user_id <> m.id AND m.gender = ANY(c.pref_genders)
     AND m.birthdate BETWEEN ((current_date - make_interval(years => c.pref_age_max + 1))::date + 1)
                         AND (current_date - make_interval(years => c.pref_age_min))::date
     AND ST_DWithin(c.location, m.location, c.pref_max_distance_km * 1000.0)
     AND (c.account_status = 'active' OR (c.account_status = 'suspended' AND c.suspended_until <= now()))
     AND (c.snoozed_until IS NULL OR c.snoozed_until <= now())
     AND (NOT c.incognito OR EXISTS (SELECT 1 FROM swipes l WHERE l.swiper_id = c.user_id AND l.target_id = m.id AND l.action = 'like'))
     AND NOT EXISTS (SELECT 1 FROM swipes sw WHERE sw.swiper_id = m.id AND sw.target_id = c.user_id
                     AND (sw.action = 'like' OR sw.created_at > now() - make_interval(days => 30)))
     AND NOT EXISTS (SELECT 1 FROM blocks b WHERE b.blocker_id = m.id AND b.blocked_id = c.user_id)
     AND NOT EXISTS (SELECT 1 FROM blocks b WHERE b.blocker_id = c.user_id AND b.blocked_id = m.id)
   LIMIT 1) p
 ORDER BY q.rank LIMIT 20;
