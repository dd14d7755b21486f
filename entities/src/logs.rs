//! The live log tap: a `tracing` layer that hands each log event of this process, as one JSON
//! object, to whoever listens (admins on `GET /v1/admin/logs/stream` or on the gateway's
//! `subscribe_logs`). It costs one atomic load per event and span while nobody listens (a
//! count of listeners kept beside the channel, whose own count takes a lock). Events are the
//! ones the process's filter (`RUST_LOG`) lets through; handlers never log personal data, so
//! neither does the tap. A listener that falls behind skips events and is told how many.
use std::{
    cell::Cell,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, OnceLock,
    },
};

use serde_json::{Map, Value};
use tokio::sync::broadcast;
use tracing::{
    field::{Field, Visit},
    span, Event, Level, Subscriber,
};
use tracing_subscriber::{layer::Context, registry::LookupSpan, Layer};

/// Events buffered for each listener before it starts skipping.
const BUFFER: usize = 1024;

/// One log event: `{"at", "level", "target", "message", "fields": {...}, "spans": {...}}`,
/// where `spans` holds the fields of the spans around the event (e.g. `request_id`).
#[derive(Clone, Debug)]
pub struct LogLine {
    pub level: Level,
    pub json: Value,
}

fn tap() -> &'static broadcast::Sender<Arc<LogLine>> {
    static TAP: OnceLock<broadcast::Sender<Arc<LogLine>>> = OnceLock::new();
    TAP.get_or_init(|| broadcast::channel(BUFFER).0)
}

/// How many [`Listener`]s exist: the layer's fast path.
static LISTENERS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Set while this thread hands an event to the tap: an event logged from inside that (by
    /// the channel itself, say) is dropped instead of re-entering it.
    static SENDING: Cell<bool> = const { Cell::new(false) };
}

/// A subscription to this process's log events (counted while it lives).
pub struct Listener(broadcast::Receiver<Arc<LogLine>>);

impl Listener {
    /// The next event, or how many were skipped because this listener fell behind.
    pub async fn recv(&mut self) -> Result<Arc<LogLine>, broadcast::error::RecvError> {
        self.0.recv().await
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        LISTENERS.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Listens to this process's log events.
pub fn subscribe() -> Listener {
    LISTENERS.fetch_add(1, Ordering::Relaxed);
    Listener(tap().subscribe())
}

fn nobody_listens() -> bool {
    LISTENERS.load(Ordering::Relaxed) == 0
}

/// The levels a listener may ask for, least verbose first (`subscribe_logs` stores an index).
pub const LEVELS: [(&str, Level); 4] = [
    ("error", Level::ERROR),
    ("warn", Level::WARN),
    ("info", Level::INFO),
    ("debug", Level::DEBUG),
];

/// Parses a level name (`error`, `warn`, `info`, `debug`, `trace`), case-insensitively.
pub fn parse_level(name: &str) -> Option<Level> {
    match name.to_ascii_lowercase().as_str() {
        "error" => Some(Level::ERROR),
        "warn" | "warning" => Some(Level::WARN),
        "info" => Some(Level::INFO),
        "debug" => Some(Level::DEBUG),
        "trace" => Some(Level::TRACE),
        _ => None,
    }
}

/// Whether `line` is at `min` or more severe.
pub fn at_least(line: &LogLine, min: Level) -> bool {
    // In `tracing`, more severe levels compare smaller.
    line.level <= min
}

/// The layer to add to the process's subscriber.
pub struct TapLayer;

/// A span's recorded fields.
struct SpanFields(Map<String, Value>);

#[derive(Default)]
struct Fields(Map<String, Value>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), Value::from(format!("{value:?}")));
    }
}

impl<S> Layer<S> for TapLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        // Spans opened while nobody listens cost nothing here (their fields are then missing
        // from the events a listener who arrives later receives).
        if nobody_listens() {
            return;
        }
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(fields.0));
        }
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        if nobody_listens() {
            return;
        }
        if let Some(span) = ctx.span(id) {
            let mut fields = Fields::default();
            values.record(&mut fields);
            if let Some(known) = span.extensions_mut().get_mut::<SpanFields>() {
                known.0.extend(fields.0);
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if nobody_listens() || SENDING.with(Cell::get) {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let message = fields.0.remove("message").unwrap_or(Value::from(""));
        let mut spans = Map::new();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(known) = span.extensions().get::<SpanFields>() {
                    spans.extend(known.0.clone());
                }
            }
        }
        let meta = event.metadata();
        let json = serde_json::json!({
            "at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "level": meta.level().as_str().to_ascii_lowercase(),
            "target": meta.target(),
            "message": message,
            "fields": fields.0,
            "spans": spans,
        });
        SENDING.with(|s| s.set(true));
        let _ = tap().send(Arc::new(LogLine {
            level: *meta.level(),
            json,
        }));
        SENDING.with(|s| s.set(false));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listeners_are_counted_while_they_live() {
        let before = LISTENERS.load(Ordering::Relaxed);
        let listener = subscribe();
        assert_eq!(LISTENERS.load(Ordering::Relaxed), before + 1);
        drop(listener);
        assert_eq!(LISTENERS.load(Ordering::Relaxed), before);
    }

    #[test]
    fn levels_parse_and_order_by_severity() {
        let line = |level| LogLine {
            level,
            json: Value::Null,
        };
        assert_eq!(parse_level("WARN"), Some(Level::WARN));
        assert_eq!(parse_level("loud"), None);
        assert!(at_least(&line(Level::ERROR), Level::WARN));
        assert!(at_least(&line(Level::WARN), Level::WARN));
        assert!(!at_least(&line(Level::INFO), Level::WARN));
    }
}
