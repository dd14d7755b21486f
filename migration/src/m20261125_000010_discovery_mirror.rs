//! Discovery's read-time checks on one row: the candidate's preferences (sought genders, age
//! range, maximum distance), account status and settings (snooze, incognito) are mirrored onto
//! their `profiles` row, kept exact by triggers in the same transaction as the write.
//!
//! Why: a discovery page re-checks every queued candidate both ways at read time. Reading the
//! profile, the preferences, the user and the settings was four primary-key lookups per
//! candidate — at a million profiles the largest part of PostgreSQL's time per page; with the
//! mirror it is one (`bench/RESULTS.md`, "Discovery, third pass").
//!
//! - `preferences` → `pref_genders`, `pref_age_min`, `pref_age_max`, `pref_max_distance_km`
//! - `users` → `account_status`, `suspended_until`
//! - `settings` → `incognito`, `snoozed_until`
//!
//! A profile inserted after those rows pulls them (`BEFORE INSERT`); a change to any of them
//! pushes the new values (`AFTER INSERT OR UPDATE OR DELETE`, only when a mirrored value
//! differs). The migration locks the four tables against writes while it copies (about half a
//! minute for a million profiles; reads go on). The source tables stay the truth for everything else; `last_active_at` is not
//! mirrored (it changes on every request and only the background preparation scores it).
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(
            manager,
            r#"
-- Writers of the four tables wait until the mirror and its triggers are in place (no write can
-- fall between the copy below and the triggers), and taking every lock first, in one statement,
-- means no deadlock with a registration (users, then profiles).
LOCK TABLE users, preferences, settings, profiles IN SHARE ROW EXCLUSIVE MODE;

ALTER TABLE profiles
    ADD COLUMN pref_genders text[],
    ADD COLUMN pref_age_min smallint,
    ADD COLUMN pref_age_max smallint,
    ADD COLUMN pref_max_distance_km integer,
    ADD COLUMN account_status text,
    ADD COLUMN suspended_until timestamptz,
    ADD COLUMN incognito boolean,
    ADD COLUMN snoozed_until timestamptz;

UPDATE profiles p SET
    pref_genders = pr.genders, pref_age_min = pr.age_min, pref_age_max = pr.age_max,
    pref_max_distance_km = pr.max_distance_km, account_status = u.status,
    suspended_until = u.suspended_until, incognito = s.incognito, snoozed_until = s.snoozed_until
  FROM users u LEFT JOIN preferences pr ON pr.user_id = u.id LEFT JOIN settings s ON s.user_id = u.id
 WHERE u.id = p.user_id;

CREATE FUNCTION profiles_pull_discovery_mirror() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    SELECT pr.genders, pr.age_min, pr.age_max, pr.max_distance_km
      INTO NEW.pref_genders, NEW.pref_age_min, NEW.pref_age_max, NEW.pref_max_distance_km
      FROM preferences pr WHERE pr.user_id = NEW.user_id;
    SELECT u.status, u.suspended_until INTO NEW.account_status, NEW.suspended_until
      FROM users u WHERE u.id = NEW.user_id;
    SELECT s.incognito, s.snoozed_until INTO NEW.incognito, NEW.snoozed_until
      FROM settings s WHERE s.user_id = NEW.user_id;
    RETURN NEW;
END $$;
CREATE TRIGGER profiles_discovery_mirror BEFORE INSERT ON profiles
    FOR EACH ROW EXECUTE FUNCTION profiles_pull_discovery_mirror();

CREATE FUNCTION preferences_push_discovery_mirror() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        UPDATE profiles SET pref_genders = NULL, pref_age_min = NULL, pref_age_max = NULL,
               pref_max_distance_km = NULL
         WHERE user_id = OLD.user_id;
    ELSE
        UPDATE profiles SET pref_genders = NEW.genders, pref_age_min = NEW.age_min,
               pref_age_max = NEW.age_max, pref_max_distance_km = NEW.max_distance_km
         WHERE user_id = NEW.user_id
           AND (pref_genders, pref_age_min, pref_age_max, pref_max_distance_km)
               IS DISTINCT FROM (NEW.genders, NEW.age_min, NEW.age_max, NEW.max_distance_km);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER preferences_discovery_mirror AFTER INSERT OR UPDATE OR DELETE ON preferences
    FOR EACH ROW EXECUTE FUNCTION preferences_push_discovery_mirror();

CREATE FUNCTION users_push_discovery_mirror() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE profiles SET account_status = NEW.status, suspended_until = NEW.suspended_until
     WHERE user_id = NEW.id
       AND (account_status, suspended_until) IS DISTINCT FROM (NEW.status, NEW.suspended_until);
    RETURN NULL;
END $$;
CREATE TRIGGER users_discovery_mirror AFTER UPDATE OF status, suspended_until ON users
    FOR EACH ROW EXECUTE FUNCTION users_push_discovery_mirror();

CREATE FUNCTION settings_push_discovery_mirror() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        UPDATE profiles SET incognito = NULL, snoozed_until = NULL WHERE user_id = OLD.user_id;
    ELSE
        UPDATE profiles SET incognito = NEW.incognito, snoozed_until = NEW.snoozed_until
         WHERE user_id = NEW.user_id
           AND (incognito, snoozed_until) IS DISTINCT FROM (NEW.incognito, NEW.snoozed_until);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER settings_discovery_mirror AFTER INSERT OR UPDATE OR DELETE ON settings
    FOR EACH ROW EXECUTE FUNCTION settings_push_discovery_mirror();
"#,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(
            manager,
            "DROP TRIGGER settings_discovery_mirror ON settings;
             DROP TRIGGER users_discovery_mirror ON users;
             DROP TRIGGER preferences_discovery_mirror ON preferences;
             DROP TRIGGER profiles_discovery_mirror ON profiles;
             DROP FUNCTION settings_push_discovery_mirror(); DROP FUNCTION users_push_discovery_mirror();
             DROP FUNCTION preferences_push_discovery_mirror(); DROP FUNCTION profiles_pull_discovery_mirror();
             ALTER TABLE profiles DROP COLUMN pref_genders, DROP COLUMN pref_age_min, DROP COLUMN pref_age_max,
                 DROP COLUMN pref_max_distance_km, DROP COLUMN account_status, DROP COLUMN suspended_until,
                 DROP COLUMN incognito, DROP COLUMN snoozed_until;",
        )
        .await
    }
}
