//! Progress bars on stderr (indicatif): drawn only when stderr is a
//! terminal, so scripts and logs get the result lines alone.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tusk_client::ClientError;

/// The bars of one command.
#[derive(Clone)]
pub struct Bars {
    multi: MultiProgress,
}

const TOTAL: &str = "{prefix:>9.bold} [{bar:32.cyan/blue}] {bytes:>10}/{total_bytes:<10} {bytes_per_sec:>12} eta {eta:<4} {msg}";
const FILE: &str = "          {wide_msg} {bytes:>10}/{total_bytes:<10} {bytes_per_sec:>12}";

impl Bars {
    pub fn new() -> Bars {
        let target = if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr_with_hz(10)
        } else {
            ProgressDrawTarget::hidden()
        };
        Bars {
            multi: MultiProgress::with_draw_target(target),
        }
    }

    /// A bar of bytes, for a whole stage (`hashing`, `upload`, `download`).
    pub fn total(&self, prefix: &'static str, bytes: u64) -> ProgressBar {
        let bar = self.multi.add(ProgressBar::new(bytes));
        bar.set_style(
            ProgressStyle::with_template(TOTAL)
                .expect("a valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(prefix);
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    }

    /// A bar of one file's bytes, under the totals.
    pub fn file(&self, name: &str, bytes: u64) -> ProgressBar {
        let bar = self.multi.add(ProgressBar::new(bytes));
        bar.set_style(ProgressStyle::with_template(FILE).expect("a valid template"));
        bar.set_message(name.to_owned());
        bar
    }

    /// Prints a result line on stdout without tearing the bars.
    pub fn println(&self, line: &str) {
        self.multi.suspend(|| println!("{line}"));
    }

    /// Prints a note on stderr without tearing the bars.
    pub fn note(&self, line: &str) {
        self.multi.suspend(|| eprintln!("{line}"));
    }

    /// Tells of a request that will be tried again.
    pub fn retrying(&self, what: &str, error: &ClientError, wait: Duration) {
        self.note(&format!(
            "tusk: {what}: {}; trying again in {:.1} s",
            crate::remote::brief(error),
            wait.as_secs_f64()
        ));
    }
}

/// Sizes for people: `1.5 GiB`.
pub fn size(bytes: u64) -> String {
    indicatif::BinaryBytes(bytes).to_string()
}
