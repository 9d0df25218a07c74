//! Writing the commands' output. `println!` panics when stdout is a closed pipe (the reader of
//! `scenarios show FILE | head -1` went away); these return an error instead, and `main` ends
//! the command quietly on it, as `cat` does.

use std::fmt;
use std::io::{self, Write};

/// The exit code of a command whose stdout was closed: 128 + SIGPIPE, what a shell reports for
/// `cat` in the same place.
pub(crate) const CLOSED_EXIT_CODE: u8 = 141;

/// A write to stdout found it closed; the command stops writing and exits quietly.
#[derive(Debug)]
pub(crate) struct StdoutClosed;

impl fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("stdout is closed")
    }
}

impl std::error::Error for StdoutClosed {}

/// Writes to stdout.
///
/// # Errors
///
/// [`StdoutClosed`] when the reader went away, or the I/O error.
pub(crate) fn stdout(args: fmt::Arguments<'_>) -> anyhow::Result<()> {
    checked(io::stdout().lock().write_fmt(args))
}

/// The result of a write to stdout, with a closed pipe as [`StdoutClosed`].
///
/// # Errors
///
/// As [`stdout`].
pub(crate) fn checked(result: io::Result<()>) -> anyhow::Result<()> {
    result.map_err(|err| {
        if err.kind() == io::ErrorKind::BrokenPipe {
            anyhow::Error::new(StdoutClosed)
        } else {
            anyhow::Error::new(err).context("cannot write to stdout")
        }
    })
}

/// Writes a note to stderr; a closed stderr loses it and is no error.
pub(crate) fn stderr(args: fmt::Arguments<'_>) {
    let _ = io::stderr().lock().write_fmt(args);
}

/// Whether `err` is a write to a closed pipe (stdout, or a file such as `--json /dev/stdout`).
pub(crate) fn is_closed_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause.is::<StdoutClosed>()
            || cause
                .downcast_ref::<io::Error>()
                .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// `print!` that returns an error for `?` instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => { $crate::runner::out::stdout(format_args!($($arg)*)) };
}

/// `println!` that returns an error for `?` instead of panicking.
macro_rules! outln {
    () => { $crate::runner::out::stdout(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::runner::out::stdout(format_args!("{}\n", format_args!($($arg)*))) };
}

pub(crate) use {out, outln};
