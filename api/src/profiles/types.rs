//! The wire types of `/v1/me...` and `/v1/profiles/...`.
use chrono::{DateTime, NaiveDate, Utc};
use poem_openapi::{
    types::{Example, MaybeUndefined},
    Enum, Object,
};
use uuid::Uuid;
use validator::{Validate, ValidationError};

use crate::validation::{adult, printable, Date};

/// A person's gender, as they state it.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[oai(rename_all = "snake_case")]
pub enum Gender {
    Woman,
    Man,
    NonBinary,
}

/// What a person is looking for. Several may be chosen; discovery ranks shared intentions higher.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[oai(rename_all = "snake_case")]
pub enum Intention {
    /// A long-term relationship.
    LongTerm,
    /// Something short-term.
    ShortTerm,
    /// Friendship first.
    Friendship,
    /// Something casual.
    Casual,
    /// Marriage and family.
    Marriage,
    /// Not sure yet.
    NotSure,
}

macro_rules! str_enum {
    ($ty:ty { $($variant:ident = $name:literal),* $(,)? }) => {
        impl $ty {
            /// The stored name.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $name),* }
            }
            /// Parses a stored name.
            pub fn parse(value: &str) -> Option<Self> {
                match value { $($name => Some(Self::$variant),)* _ => None }
            }
        }
    };
}

str_enum!(Gender { Woman = "woman", Man = "man", NonBinary = "non_binary" });
str_enum!(Intention {
    LongTerm = "long_term",
    ShortTerm = "short_term",
    Friendship = "friendship",
    Casual = "casual",
    Marriage = "marriage",
    NotSure = "not_sure",
});

/// A point on Earth (WGS 84). Only ever shown to its owner; others see a rounded distance.
#[derive(Object, Validate, Clone, Copy, Debug, PartialEq)]
#[oai(deny_unknown_fields)]
pub struct Location {
    /// Degrees north, -90 to 90.
    #[validate(range(min = -90.0, max = 90.0))]
    pub latitude: f64,
    /// Degrees east, -180 to 180.
    #[validate(range(min = -180.0, max = 180.0))]
    pub longitude: f64,
}

/// My own profile, as I see it.
#[derive(Object, Clone, Debug)]
#[oai(example)]
pub struct Profile {
    #[oai(nullable)]
    pub display_name: Option<String>,
    /// `YYYY-MM-DD`.
    #[oai(nullable)]
    pub birthdate: Option<Date>,
    /// Computed from `birthdate`.
    #[oai(nullable)]
    pub age: Option<i32>,
    #[oai(nullable)]
    pub gender: Option<Gender>,
    #[oai(nullable)]
    pub bio: Option<String>,
    pub intentions: Vec<Intention>,
    /// My exact position (never shown to others).
    #[oai(nullable)]
    pub location: Option<Location>,
    /// Whether the profile has what discovery needs: name, birthdate, gender, location and at
    /// least one intention.
    pub complete: bool,
    pub updated_at: DateTime<Utc>,
}

impl Example for Profile {
    fn example() -> Self {
        Self {
            display_name: Some("Ana".into()),
            birthdate: NaiveDate::from_ymd_opt(1994, 5, 17).map(Date),
            age: Some(32),
            gender: Some(Gender::Woman),
            bio: Some("Slow mornings, long walks, good coffee.".into()),
            intentions: vec![Intention::LongTerm, Intention::Friendship],
            location: Some(Location {
                latitude: 48.8566,
                longitude: 2.3522,
            }),
            complete: true,
            updated_at: DateTime::from_timestamp(1_795_000_000, 0).unwrap_or_default(),
        }
    }
}

/// Changes to my profile: only the fields present are changed; `bio` and `location` accept
/// `null` to clear them.
#[derive(Object, Validate, Default)]
#[oai(example, deny_unknown_fields)]
pub struct ProfilePatch {
    /// 1 to 50 characters.
    #[validate(length(min = 1, max = 50), custom(function = "printable"))]
    #[oai(nullable)]
    pub display_name: Option<String>,
    /// `YYYY-MM-DD`; you must be 18 or older.
    #[validate(custom(function = "adult"))]
    #[oai(nullable)]
    pub birthdate: Option<Date>,
    #[oai(nullable)]
    pub gender: Option<Gender>,
    /// Up to 500 characters; `null` clears it.
    #[oai(nullable)]
    pub bio: MaybeUndefined<String>,
    /// 1 to 6 distinct intentions.
    #[validate(length(min = 1, max = 6), custom(function = "distinct_intentions"))]
    #[oai(nullable)]
    pub intentions: Option<Vec<Intention>>,
    /// `null` clears it (and hides me from discovery).
    #[oai(nullable)]
    pub location: MaybeUndefined<Location>,
}

impl ProfilePatch {
    /// Every rule at once, so one answer names every invalid field (`bio` and `location` are
    /// outside `validator`'s reach because they may be `null`).
    pub fn check(&self) -> Result<(), crate::error::AppError> {
        use crate::error::{AppError, FieldProblem};
        let mut problems = match crate::validation::check(self) {
            Err(AppError::Validation(p)) => p,
            Err(other) => return Err(other),
            Ok(()) => vec![],
        };
        if let MaybeUndefined::Value(bio) = &self.bio {
            if bio.chars().count() > 500 {
                problems.push(FieldProblem {
                    field: "bio".into(),
                    code: "length".into(),
                    message: "must be at most 500 characters long".into(),
                });
            }
        }
        if let MaybeUndefined::Value(location) = &self.location {
            if let Err(AppError::Validation(p)) = crate::validation::check(location) {
                problems.extend(p.into_iter().map(|mut p| {
                    p.field = format!("location.{}", p.field);
                    p
                }));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            problems.sort_by(|a, b| a.field.cmp(&b.field));
            Err(AppError::Validation(problems))
        }
    }
}

fn distinct_intentions(list: &[Intention]) -> Result<(), ValidationError> {
    let mut seen = std::collections::HashSet::new();
    if list.iter().all(|i| seen.insert(*i)) {
        Ok(())
    } else {
        Err(ValidationError::new("distinct").with_message("lists an intention twice".into()))
    }
}

impl Example for ProfilePatch {
    fn example() -> Self {
        Self {
            display_name: Some("Ana".into()),
            birthdate: NaiveDate::from_ymd_opt(1994, 5, 17).map(Date),
            gender: Some(Gender::Woman),
            bio: MaybeUndefined::Value("Slow mornings, long walks, good coffee.".into()),
            intentions: Some(vec![Intention::LongTerm, Intention::Friendship]),
            location: MaybeUndefined::Value(Location {
                latitude: 48.8566,
                longitude: 2.3522,
            }),
        }
    }
}

/// Whom I want to meet. Discovery applies these both ways: each person must fit the other's.
#[derive(Object, Validate, Clone, Debug)]
#[oai(example, deny_unknown_fields)]
#[validate(schema(function = "ages_ordered", skip_on_field_errors = false))]
pub struct Preferences {
    /// 18 to 120.
    #[validate(range(min = 18, max = 120))]
    pub age_min: i16,
    /// 18 to 120, at least `age_min`.
    #[validate(range(min = 18, max = 120))]
    pub age_max: i16,
    /// 1 to 500 km.
    #[validate(range(min = 1, max = 500))]
    pub max_distance_km: i32,
    /// The genders sought (at least one).
    #[validate(length(min = 1, max = 3))]
    pub genders: Vec<Gender>,
}

fn ages_ordered(p: &Preferences) -> Result<(), ValidationError> {
    if p.age_min <= p.age_max {
        Ok(())
    } else {
        let mut error =
            ValidationError::new("age_order").with_message("must not exceed age_max".into());
        error.add_param("field".into(), &"age_min");
        Err(error)
    }
}

impl Example for Preferences {
    fn example() -> Self {
        Self {
            age_min: 28,
            age_max: 40,
            max_distance_km: 25,
            genders: vec![Gender::Man, Gender::NonBinary],
        }
    }
}

/// Privacy and notification settings.
#[derive(Object, Clone, Debug)]
#[oai(example)]
pub struct Settings {
    /// Hidden from discovery and profile views, except to people I liked.
    pub incognito: bool,
    /// Hidden from discovery until this time (a break); null when not snoozed.
    #[oai(nullable)]
    pub snoozed_until: Option<DateTime<Utc>>,
    pub notify_resonances: bool,
    pub notify_messages: bool,
    pub notify_likes: bool,
}

impl Example for Settings {
    fn example() -> Self {
        Self {
            incognito: false,
            snoozed_until: None,
            notify_resonances: true,
            notify_messages: true,
            notify_likes: false,
        }
    }
}

/// Changes to my settings: only the fields present are changed.
#[derive(Object, Default)]
#[oai(example, deny_unknown_fields)]
pub struct SettingsPatch {
    #[oai(nullable)]
    pub incognito: Option<bool>,
    /// A future time, or `null` to end the snooze.
    #[oai(nullable)]
    pub snoozed_until: MaybeUndefined<DateTime<Utc>>,
    #[oai(nullable)]
    pub notify_resonances: Option<bool>,
    #[oai(nullable)]
    pub notify_messages: Option<bool>,
    #[oai(nullable)]
    pub notify_likes: Option<bool>,
}

impl Example for SettingsPatch {
    fn example() -> Self {
        Self {
            incognito: Some(true),
            ..Default::default()
        }
    }
}

/// Me: my account, profile, preferences and settings.
#[derive(Object)]
#[oai(example)]
pub struct Me {
    /// My user id.
    pub id: Uuid,
    pub email: String,
    pub email_verified: bool,
    /// `user`, `moderator` or `admin`.
    pub role: String,
    /// `active`, `suspended` or `banned`.
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub profile: Profile,
    pub preferences: Preferences,
    pub settings: Settings,
}

impl Example for Me {
    fn example() -> Self {
        Self {
            id: Uuid::nil(),
            email: "ana@example.com".into(),
            email_verified: true,
            role: "user".into(),
            status: "active".into(),
            created_at: DateTime::from_timestamp(1_795_000_000, 0).unwrap_or_default(),
            profile: Profile::example(),
            preferences: Preferences::example(),
            settings: Settings::example(),
        }
    }
}

/// Someone else's profile, as I may see it: no email, no coordinates.
#[derive(Object)]
#[oai(example)]
pub struct PublicProfile {
    pub user_id: Uuid,
    #[oai(nullable)]
    pub display_name: Option<String>,
    #[oai(nullable)]
    pub age: Option<i32>,
    #[oai(nullable)]
    pub gender: Option<Gender>,
    #[oai(nullable)]
    pub bio: Option<String>,
    pub intentions: Vec<Intention>,
    /// The intentions we share.
    pub shared_intentions: Vec<Intention>,
    /// Distance between us, rounded to the kilometre (at least 1); null when either of us has
    /// no location.
    #[oai(nullable)]
    pub distance_km: Option<i32>,
    /// Approved photos (1280 px WebP), in the person's order: signed links that need no
    /// credentials and expire within two hours (fetch the card again for fresh ones).
    pub photos: Vec<String>,
}

impl Example for PublicProfile {
    fn example() -> Self {
        Self {
            user_id: Uuid::nil(),
            display_name: Some("Ana".into()),
            age: Some(32),
            gender: Some(Gender::Woman),
            bio: Some("Slow mornings, long walks, good coffee.".into()),
            intentions: vec![Intention::LongTerm, Intention::Friendship],
            shared_intentions: vec![Intention::LongTerm],
            distance_km: Some(3),
            photos: vec![],
        }
    }
}
