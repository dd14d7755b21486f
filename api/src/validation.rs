//! Input validation: `validator` on request objects, mapped to 422 problems that name each field,
//! plus the small value types with rules of their own.
use chrono::{Datelike, NaiveDate, Utc};
use validator::{Validate, ValidationError, ValidationErrors, ValidationErrorsKind};

use crate::error::{AppError, FieldProblem};

/// Runs `validator` on a request object; every failure becomes a [`FieldProblem`].
pub fn check<T: Validate>(value: &T) -> Result<(), AppError> {
    value.validate().map_err(|errors| {
        let mut problems = Vec::new();
        flatten("", &errors, &mut problems);
        problems.sort_by(|a, b| a.field.cmp(&b.field));
        AppError::Validation(problems)
    })
}

fn flatten(prefix: &str, errors: &ValidationErrors, out: &mut Vec<FieldProblem>) {
    for (field, kind) in errors.errors() {
        let path = if prefix.is_empty() {
            field.to_string()
        } else {
            format!("{prefix}.{field}")
        };
        match kind {
            ValidationErrorsKind::Field(list) => {
                for e in list {
                    // Struct-level rules (`__all__`) say which field they are about.
                    let named = e
                        .params
                        .get("field")
                        .and_then(|v| v.as_str())
                        .filter(|_| field == "__all__");
                    out.push(FieldProblem {
                        field: match named {
                            Some(name) if prefix.is_empty() => name.to_owned(),
                            Some(name) => format!("{prefix}.{name}"),
                            None => path.clone(),
                        },
                        code: e.code.to_string(),
                        message: e
                            .message
                            .as_ref()
                            .map(|m| m.to_string())
                            .unwrap_or_else(|| describe(e)),
                    });
                }
            }
            ValidationErrorsKind::Struct(inner) => flatten(&path, inner, out),
            ValidationErrorsKind::List(items) => {
                for (index, inner) in items {
                    flatten(&format!("{path}[{index}]"), inner, out);
                }
            }
        }
    }
}

fn describe(e: &ValidationError) -> String {
    let param = |name: &str| e.params.get(name).map(|v| v.to_string());
    match e.code.as_ref() {
        "length" => match (param("min"), param("max")) {
            (Some(min), Some(max)) => format!("must be {min} to {max} characters long"),
            (None, Some(max)) => format!("must be at most {max} characters long"),
            (Some(min), None) => format!("must be at least {min} characters long"),
            _ => "has an invalid length".into(),
        },
        "range" => match (param("min"), param("max")) {
            (Some(min), Some(max)) => format!("must be between {min} and {max}"),
            _ => "is out of range".into(),
        },
        "email" => "must be a valid email address".into(),
        other => format!("is invalid ({other})"),
    }
}

/// The canonical form of an email address: trimmed and lower-cased. Lookups and the blind index
/// use this form, so `Ana@Example.com` and `ana@example.com` are one account.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// Full years between `birthdate` and `today`.
pub fn age_on(birthdate: NaiveDate, today: NaiveDate) -> i32 {
    let mut age = today.year() - birthdate.year();
    if (today.month(), today.day()) < (birthdate.month(), birthdate.day()) {
        age -= 1;
    }
    age
}

/// `validator` custom rule: 18 or older today, and born after 1900.
pub fn adult(birthdate: &Date) -> Result<(), ValidationError> {
    let birthdate = &birthdate.0;
    let today = Utc::now().date_naive();
    if *birthdate > today || birthdate.year() < 1900 {
        return Err(
            ValidationError::new("birthdate").with_message("is not a plausible birth date".into())
        );
    }
    if age_on(*birthdate, today) < 18 {
        return Err(ValidationError::new("underage")
            .with_message("you must be at least 18 years old".into()));
    }
    Ok(())
}

/// `validator` custom rule: no control characters (names, short texts).
pub fn printable(value: &str) -> Result<(), ValidationError> {
    if value.chars().any(|c| c.is_control() && c != '\n') || value.trim().is_empty() {
        return Err(ValidationError::new("printable")
            .with_message("must be non-blank text without control characters".into()));
    }
    Ok(())
}

/// A calendar date, `YYYY-MM-DD`, documented with the standard `format: date` so generated SDKs
/// map it to their date type (poem-openapi's own `NaiveDate` says `naive-date`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date(pub NaiveDate);

impl poem_openapi::types::Type for Date {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> std::borrow::Cow<'static, str> {
        "string_date".into()
    }

    fn schema_ref() -> poem_openapi::registry::MetaSchemaRef {
        poem_openapi::registry::MetaSchemaRef::Inline(Box::new(
            poem_openapi::registry::MetaSchema::new_with_format("string", "date"),
        ))
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(self)
    }

    fn raw_element_iter<'a>(
        &'a self,
    ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
}

impl poem_openapi::types::ParseFromJSON for Date {
    fn parse_from_json(value: Option<serde_json::Value>) -> poem_openapi::types::ParseResult<Self> {
        match value.unwrap_or_default() {
            serde_json::Value::String(text) => NaiveDate::parse_from_str(&text, "%Y-%m-%d")
                .map(Date)
                .map_err(|_| {
                    poem_openapi::types::ParseError::custom("expected a date as YYYY-MM-DD")
                }),
            other => Err(poem_openapi::types::ParseError::expected_type(other)),
        }
    }
}

impl poem_openapi::types::ToJSON for Date {
    fn to_json(&self) -> Option<serde_json::Value> {
        Some(serde_json::Value::String(
            self.0.format("%Y-%m-%d").to_string(),
        ))
    }
}

impl serde::Serialize for Date {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0.format("%Y-%m-%d"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Validate)]
    struct Sample {
        #[validate(email)]
        email: String,
        #[validate(nested)]
        inner: Inner,
    }

    #[derive(Validate)]
    struct Inner {
        #[validate(range(min = -90.0, max = 90.0))]
        latitude: f64,
    }

    #[test]
    fn nested_fields_are_named_with_their_path() {
        let err = check(&Sample {
            email: "nope".into(),
            inner: Inner { latitude: 91.0 },
        })
        .expect_err("invalid");
        let AppError::Validation(problems) = err else {
            panic!("not a validation error")
        };
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["email", "inner.latitude"]);
        assert_eq!(problems[1].message, "must be between -90.0 and 90.0");
    }

    #[test]
    fn ages_count_full_years() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).expect("date");
        assert_eq!(age_on(d(2000, 6, 15), d(2018, 6, 14)), 17);
        assert_eq!(age_on(d(2000, 6, 15), d(2018, 6, 15)), 18);
        assert_eq!(age_on(d(2000, 2, 29), d(2018, 2, 28)), 17);
    }

    #[test]
    fn minors_and_future_dates_are_refused() {
        let today = Utc::now().date_naive();
        assert!(adult(&Date(today)).is_err());
        assert!(adult(&Date(today + chrono::Days::new(1))).is_err());
        assert!(adult(&Date(NaiveDate::from_ymd_opt(1990, 1, 1).expect("date"))).is_ok());
    }

    #[test]
    fn emails_are_normalised() {
        assert_eq!(normalize_email("  Ana@Example.COM "), "ana@example.com");
    }
}
