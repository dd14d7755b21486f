//! Browser sessions: HttpOnly cookies with a double-submit CSRF token.
//!
//! A request that carries an `Origin` header comes from a browser. Browsers get their tokens as
//! cookies and never see the refresh token: `despacio_refresh` (HttpOnly, `SameSite=Strict`, path
//! `/v1/auth`), `despacio_access` (HttpOnly, `SameSite=Lax`) and `despacio_csrf` (readable by the
//! page's script). Every unsafe request authenticated by cookie, and every refresh by cookie, must
//! echo `despacio_csrf` in the `X-CSRF-Token` header: another site can make the browser send the
//! cookies, but cannot read the CSRF cookie to copy it. `Secure` is set whenever
//! `PUBLIC_BASE_URL` is https.
use std::time::Duration;

use poem::{
    http::{header, HeaderValue, Method},
    web::cookie::{Cookie, CookieJar, SameSite},
    Endpoint, IntoResponse, Middleware, Request, Response, Result,
};

use crate::{config::Settings, error::AppError};

pub const REFRESH_COOKIE: &str = "despacio_refresh";
pub const ACCESS_COOKIE: &str = "despacio_access";
pub const CSRF_COOKIE: &str = "despacio_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Whether the request comes from a browser (browsers send `Origin` on every POST).
pub fn is_browser(req: &Request) -> bool {
    req.headers().contains_key(header::ORIGIN)
}

/// The double-submit check: the `X-CSRF-Token` header equals the `despacio_csrf` cookie.
pub fn csrf_ok(req: &Request) -> bool {
    let header = req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok());
    let cookie = req
        .cookie()
        .get(CSRF_COOKIE)
        .map(|c| c.value_str().to_owned());
    match (header, cookie) {
        (Some(h), Some(c)) if !c.is_empty() => {
            crate::crypto::constant_time_eq(h.as_bytes(), c.as_bytes())
        }
        _ => false,
    }
}

pub fn csrf_failed() -> AppError {
    AppError::Forbidden {
        kind: "csrf-failed",
        detail: "cookie-authenticated requests must echo the despacio_csrf cookie in X-CSRF-Token"
            .into(),
        until: None,
    }
}

fn cookie(
    settings: &Settings,
    name: &str,
    value: &str,
    path: &str,
    max_age: Duration,
    http_only: bool,
    same_site: SameSite,
) -> Cookie {
    let mut c = Cookie::new_with_str(name, value);
    c.set_path(path);
    c.set_http_only(http_only);
    c.set_secure(settings.secure_cookies());
    c.set_same_site(same_site);
    c.set_max_age(max_age);
    c
}

/// Sets the three session cookies after a login, registration, magic link or refresh.
pub fn set_session_cookies(jar: &CookieJar, settings: &Settings, access: &str, refresh: &str) {
    jar.add(cookie(
        settings,
        REFRESH_COOKIE,
        refresh,
        "/v1/auth",
        settings.refresh_token_ttl,
        true,
        SameSite::Strict,
    ));
    jar.add(cookie(
        settings,
        ACCESS_COOKIE,
        access,
        "/",
        settings.access_token_ttl,
        true,
        SameSite::Lax,
    ));
    jar.add(cookie(
        settings,
        CSRF_COOKIE,
        &crate::crypto::new_token(),
        "/",
        settings.refresh_token_ttl,
        false,
        SameSite::Strict,
    ));
}

/// Expires the session cookies (logout).
pub fn clear_session_cookies(jar: &CookieJar, settings: &Settings) {
    for (name, path, http_only) in [
        (REFRESH_COOKIE, "/v1/auth", true),
        (ACCESS_COOKIE, "/", true),
        (CSRF_COOKIE, "/", false),
    ] {
        jar.add(cookie(
            settings,
            name,
            "",
            path,
            Duration::ZERO,
            http_only,
            SameSite::Strict,
        ));
    }
}

/// Lets the `despacio_access` cookie stand in for a bearer header (after the CSRF check on
/// unsafe methods).
pub struct CookieAuth;

impl<E: Endpoint> Middleware<E> for CookieAuth {
    type Output = CookieAuthEndpoint<E>;
    fn transform(&self, ep: E) -> Self::Output {
        CookieAuthEndpoint(ep)
    }
}

pub struct CookieAuthEndpoint<E>(E);

impl<E: Endpoint> Endpoint for CookieAuthEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> Result<Self::Output> {
        if !req.headers().contains_key(header::AUTHORIZATION) {
            if let Some(token) = req
                .cookie()
                .get(ACCESS_COOKIE)
                .map(|c| c.value_str().to_owned())
            {
                let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
                if !token.is_empty() {
                    if !safe && !csrf_ok(&req) {
                        return Ok(csrf_failed().into_response());
                    }
                    if let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}")) {
                        req.headers_mut().insert(header::AUTHORIZATION, value);
                    }
                }
            }
        }
        self.0.call(req).await.map(IntoResponse::into_response)
    }
}
