//! Log lines in the layout of Go's `log` package with date, time and microseconds, as
//! the upstream `kar` writes them (spec §5.3): `YYYY/MM/DD HH:MM:SS.uuuuuu [LEVEL] msg`,
//! on stdout. Scripts and tests grep these lines, so the layout is part of the contract.
//! Times are UTC: computing the local offset needs the tz database, which we do not ship.

use kar_protocol::time::Civil;
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// The `-v` levels, from least to most verbose.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Fatal,
    Error,
    Warning,
    Info,
    Debug,
}

impl LogLevel {
    /// Parses a `-v` value: a level name (any case) or its number 0–4. `None` for
    /// anything else, which upstream ignores (the default level stays in force).
    pub fn parse(text: &str) -> Option<LogLevel> {
        match text.to_ascii_lowercase().as_str() {
            "fatal" | "0" => Some(LogLevel::Fatal),
            "error" | "1" => Some(LogLevel::Error),
            "warning" | "2" => Some(LogLevel::Warning),
            "info" | "3" => Some(LogLevel::Info),
            "debug" | "4" => Some(LogLevel::Debug),
            _ => None,
        }
    }

    fn filter(self) -> LevelFilter {
        match self {
            // FATAL lines bypass tracing (see `fatal`), so nothing else is shown.
            LogLevel::Fatal => LevelFilter::OFF,
            LogLevel::Error => LevelFilter::ERROR,
            LogLevel::Warning => LevelFilter::WARN,
            LogLevel::Info => LevelFilter::INFO,
            LogLevel::Debug => LevelFilter::DEBUG,
        }
    }
}

/// Installs the stdout logger. Events of our own crates are shown from `level` on;
/// those of libraries (hyper, h2, ...) at most from WARNING on, since their debug
/// output would drown ours.
pub fn init(level: LogLevel) {
    let ours = level.filter();
    let others = ours.min(LevelFilter::WARN);
    let filter = Targets::new().with_target("kar", ours).with_default(others);
    let layer = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(std::io::stdout)
        .event_format(GoLogFormat);
    // A second initialisation (tests) keeps the first logger.
    let _ = tracing_subscriber::registry()
        .with(layer)
        .with(filter)
        .try_init();
}

/// Writes a `[FATAL]` line. Fatal errors are always shown, whatever `-v` says.
pub fn fatal(message: &str) {
    write_line("FATAL", message.as_bytes());
}

/// Writes one complete line `<timestamp> [<tag>] <text>` to stdout and flushes it, so
/// that lines of concurrent writers (child relays, the logger) never interleave.
pub fn write_line(tag: &str, text: &[u8]) {
    let mut line = format!("{} [{tag}] ", timestamp(SystemTime::now())).into_bytes();
    line.extend_from_slice(text);
    line.push(b'\n');
    let mut out = std::io::stdout().lock();
    // Nowhere to report a failure to write to stdout: the line is lost either way.
    let _ = out.write_all(&line);
    let _ = out.flush();
}

/// `YYYY/MM/DD HH:MM:SS.uuuuuu` in UTC.
pub fn timestamp(at: SystemTime) -> String {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let t = Civil::from_unix_secs(i64::try_from(since.as_secs()).unwrap_or(i64::MAX));
    format!(
        "{:04}/{:02}/{:02} {:02}:{:02}:{:02}.{:06}",
        t.year,
        t.month,
        t.day,
        t.hour,
        t.minute,
        t.second,
        since.subsec_micros()
    )
}

fn level_tag(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "ERROR",
        Level::WARN => "WARNING",
        Level::INFO => "INFO",
        Level::DEBUG | Level::TRACE => "DEBUG",
    }
}

/// Formats tracing events as Go log lines: the message, then `key=value` fields.
struct GoLogFormat;

impl<S, N> FormatEvent<S, N> for GoLogFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        write!(
            writer,
            "{} [{}] ",
            timestamp(SystemTime::now()),
            level_tag(event.metadata().level())
        )?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn levels_parse_like_upstream() {
        assert_eq!(LogLevel::parse("INFO"), Some(LogLevel::Info));
        assert_eq!(LogLevel::parse("Warning"), Some(LogLevel::Warning));
        assert_eq!(LogLevel::parse("debug"), Some(LogLevel::Debug));
        assert_eq!(LogLevel::parse("0"), Some(LogLevel::Fatal));
        assert_eq!(LogLevel::parse("4"), Some(LogLevel::Debug));
        assert_eq!(LogLevel::parse("5"), None);
        assert_eq!(LogLevel::parse("warn"), None);
        assert_eq!(LogLevel::parse(""), None);
    }

    #[test]
    fn timestamps_have_go_layout() {
        let at = UNIX_EPOCH + Duration::from_micros(1_586_873_871_073_042);
        assert_eq!(timestamp(at), "2020/04/14 14:17:51.073042");
        assert_eq!(timestamp(UNIX_EPOCH), "1970/01/01 00:00:00.000000");
    }
}
