//! Settings from a TOML file (`tusk serve --config FILE`), layered under
//! the environment and the flags: a flag beats its environment variable,
//! which beats the file, which beats the built-in default.
//!
//! Nothing here knows any one setting. The command line is parsed once to
//! find the file; each key of the file is matched to the argument with that
//! long name (`max-file-size`, or `max_file_size`), its value is checked by
//! that argument's own value parser — the very one a flag goes through —
//! and then becomes the argument's default. The command line is parsed a
//! second time with those defaults, so clap's own order (flag, then
//! environment, then default) puts the file where it belongs. A setting
//! added to `tusk serve` later can be put in the file with no code here.
//!
//! A key that names no setting, or a value its setting refuses, stops the
//! start with a message naming the key and the file.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fmt;
use std::path::Path;

use clap::error::ErrorKind;
use clap::{Arg, ArgAction, Command, Parser};

/// The id of the argument naming the config file, on any subcommand that
/// takes one.
const CONFIG_ARG: &str = "config";

/// Why the command line could not be turned into a command.
#[derive(Debug)]
pub enum Failure {
    /// The command line is wrong, or asks for help or the version: clap
    /// words it (and `exit` prints it with the right status).
    Usage(clap::Error),
    /// The config file cannot be read or holds something the command does
    /// not take.
    File(FileError),
}

/// A problem with a config file; its text names the file, and the key
/// when one is at fault.
#[derive(Debug)]
pub struct FileError(String);

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses `args` (program name first) into `C`. When the chosen subcommand
/// has a `config` argument and it names a file (by flag or environment),
/// the file's settings fill in whatever neither a flag nor the environment
/// gave.
pub fn parse<C: Parser>(args: impl IntoIterator<Item = OsString>) -> Result<C, Failure> {
    let args: Vec<OsString> = args.into_iter().collect();
    let first = C::command()
        .try_get_matches_from(&args)
        .map_err(Failure::Usage)?;
    let with_file = first.subcommand().and_then(|(name, sub)| {
        let path = sub.try_get_one::<std::path::PathBuf>(CONFIG_ARG).ok()??;
        Some((name.to_owned(), path.clone()))
    });
    let Some((name, path)) = with_file else {
        return from_matches::<C>(&first);
    };
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Failure::File(FileError(format!(
            "cannot read the config file {}: {e}",
            path.display()
        )))
    })?;
    let command = C::command();
    let Some(sub) = command.find_subcommand(&name) else {
        return from_matches::<C>(&first);
    };
    let defaults = file_defaults(sub, &path, &text).map_err(Failure::File)?;
    let command = C::command().mut_subcommand(&name, |sub| {
        defaults.into_iter().fold(sub, |sub, (id, values)| {
            sub.mut_arg(id, |arg| arg.default_values(values))
        })
    });
    let second = command
        .try_get_matches_from(&args)
        .map_err(Failure::Usage)?;
    from_matches::<C>(&second)
}

fn from_matches<C: Parser>(matches: &clap::ArgMatches) -> Result<C, Failure> {
    C::from_arg_matches(matches).map_err(|e| Failure::Usage(e.format(&mut C::command())))
}

/// The file's settings as new defaults: for each key, the id of its
/// argument and the values, each already accepted by the argument's value
/// parser.
fn file_defaults(
    sub: &Command,
    path: &Path,
    text: &str,
) -> Result<Vec<(String, Vec<String>)>, FileError> {
    let at = path.display();
    let table: toml::Table = text
        .parse()
        .map_err(|e| FileError(format!("the config file {at} is not valid TOML: {e}")))?;
    let mut seen = HashSet::new();
    let mut defaults = Vec::new();
    for (key, value) in &table {
        let arg = setting(sub, key).ok_or_else(|| {
            FileError(format!(
                "unknown setting `{key}` in the config file {at}; the settings are: {}",
                settings(sub).join(", ")
            ))
        })?;
        let id = arg.get_id().to_string();
        if !seen.insert(id.clone()) {
            return Err(FileError(format!(
                "`{key}` is set twice in the config file {at} (as kebab-case and snake_case)"
            )));
        }
        let bad =
            |why: String| FileError(format!("`{key} = {value}` in the config file {at}: {why}"));
        let values = raw_values(arg, value).map_err(bad)?;
        check(sub, arg, &values).map_err(bad)?;
        defaults.push((id, values));
    }
    Ok(defaults)
}

/// The argument a key names: the one with that long name, `_` read as `-`.
/// The config file itself cannot be named from inside one.
fn setting<'a>(sub: &'a Command, key: &str) -> Option<&'a Arg> {
    let long = key.replace('_', "-");
    sub.get_arguments()
        .filter(|a| a.get_id() != CONFIG_ARG)
        .find(|a| a.get_long() == Some(long.as_str()))
}

/// Every key a file may hold, for the message about an unknown one.
fn settings(sub: &Command) -> Vec<&str> {
    sub.get_arguments()
        .filter(|a| a.get_id() != CONFIG_ARG && !a.is_hide_set())
        .filter_map(Arg::get_long)
        .collect()
}

/// A TOML value as the strings a command line would carry: a list only
/// where the flag may be repeated, a boolean for an on/off flag, and a
/// string split where the flag splits its values (`a,b`).
fn raw_values(arg: &Arg, value: &toml::Value) -> Result<Vec<String>, String> {
    let repeatable = matches!(arg.get_action(), ArgAction::Append);
    let switch = matches!(arg.get_action(), ArgAction::SetTrue | ArgAction::SetFalse);
    if !arg.get_action().takes_values() && !switch {
        return Err("this flag cannot be set in a file".into());
    }
    if switch && !value.is_bool() {
        return Err("expected true or false".into());
    }
    let items = match value {
        toml::Value::Array(items) if repeatable => items.iter().collect(),
        toml::Value::Array(_) => return Err("expected one value, not a list".into()),
        one => vec![one],
    };
    let mut values = Vec::new();
    for item in items {
        let text = match item {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(n) => n.to_string(),
            toml::Value::Float(x) => x.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Datetime(d) => d.to_string(),
            toml::Value::Array(_) | toml::Value::Table(_) => {
                return Err("expected a plain value (a string, number or boolean)".into());
            }
        };
        match arg.get_value_delimiter() {
            Some(d) => values.extend(text.split(d).map(str::to_owned)),
            None => values.push(text),
        }
    }
    Ok(values)
}

/// Runs `values` through the argument's value parser (clap keeps that
/// parser to itself): a copy of the command, with `values` as the
/// argument's default and its environment variable ignored, parses an empty
/// command line. Only complaints about values count; anything else (a
/// required argument missing) is for the real parse to report.
fn check(sub: &Command, arg: &Arg, values: &[String]) -> Result<(), String> {
    let probe = sub
        .clone()
        .no_binary_name(true)
        .mut_arg(arg.get_id().clone(), |a| {
            a.env(None::<&str>).default_values(values.to_vec())
        });
    match probe.try_get_matches_from(Vec::<OsString>::new()) {
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::ValueValidation
                    | ErrorKind::InvalidValue
                    | ErrorKind::WrongNumberOfValues
                    | ErrorKind::TooManyValues
                    | ErrorKind::TooFewValues
            ) =>
        {
            Err(reason(&e))
        }
        _ => Ok(()),
    }
}

/// What a value parser said, without clap's framing: the parser's own
/// words when it gave some, else the first line of clap's message.
fn reason(e: &clap::Error) -> String {
    if let Some(source) = std::error::Error::source(e) {
        return source.to_string();
    }
    let text = e.to_string();
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("For more information"))
        .collect();
    lines.join(" ").trim_start_matches("error: ").to_owned()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::serve::{LogFormat, ServeArgs};
    use crate::{Cli, Command as Sub};

    const MIB: u64 = 1 << 20;

    /// `tusk serve ARGS`, with `file` as its config file (when given).
    fn serve(file: Option<&str>, args: &[&str]) -> Result<ServeArgs, String> {
        let dir = tempfile::tempdir().unwrap();
        let mut argv: Vec<OsString> = vec!["tusk".into(), "serve".into()];
        if let Some(text) = file {
            let path = dir.path().join("tusk.toml");
            std::fs::write(&path, text).unwrap();
            argv.extend(["--config".into(), path.into_os_string()]);
        }
        argv.extend(args.iter().map(OsString::from));
        match parse::<Cli>(argv) {
            Ok(Cli {
                command: Sub::Serve(args),
            }) => Ok(args),
            Ok(_) => Err("not serve".into()),
            Err(Failure::File(e)) => Err(e.to_string()),
            Err(Failure::Usage(e)) => Err(format!("usage: {e}")),
        }
    }

    #[test]
    fn the_file_fills_what_flags_leave_and_defaults_fill_the_rest() {
        let file = r#"
            max_file_size = "1MiB"
            upload-ttl = "2h"
            cors-origin = ["https://a.example", "https://b.example"]
            no-fsync = true
            s3-path-style = false
            buffer-memory = 1048576
            log-format = "json"
        "#;
        let args = serve(Some(file), &["--upload-ttl", "3h"]).unwrap();
        let s = &args.settings;
        assert_eq!(s.max_file_size, MIB, "from the file (snake_case key)");
        assert_eq!(s.upload_ttl, Duration::from_secs(3 * 3600), "the flag wins");
        assert_eq!(s.cors_origins, ["https://a.example", "https://b.example"]);
        assert!(s.no_fsync);
        assert_eq!(s.s3_path_style, Some(false));
        assert_eq!(s.buffer_memory, MIB, "an integer is a number of bytes");
        assert_eq!(args.log_format, LogFormat::Json);
        assert_eq!(s.s3_part_memory, 1 << 30, "not in the file: the default");

        let plain = serve(None, &[]).unwrap();
        assert_eq!(plain.settings.max_file_size, 1 << 40);
        assert!(!plain.settings.no_fsync);
        assert_eq!(plain.log_format, LogFormat::Text);
        assert!(plain.config.is_none());
    }

    #[test]
    fn a_comma_list_in_the_file_splits_like_the_flag() {
        let args = serve(
            Some(r#"cors-origin = "https://a.example,https://b.example""#),
            &[],
        )
        .unwrap();
        assert_eq!(
            args.settings.cors_origins,
            ["https://a.example", "https://b.example"]
        );
    }

    #[test]
    fn the_environment_beats_the_file_and_a_flag_beats_both() {
        const VAR: &str = "TUSK_S3_REGION";
        // SAFETY: std serialises its own reads and writes of the
        // environment, and nothing in this test binary reads it outside
        // std. No other test here looks at the S3 region.
        unsafe { std::env::set_var(VAR, "from-env") };
        let file = r#"s3-region = "from-file""#;
        let by_env = serve(Some(file), &[]);
        let by_flag = serve(Some(file), &["--s3-region", "from-flag"]);
        // SAFETY: as above.
        unsafe { std::env::remove_var(VAR) };
        let by_file = serve(Some(file), &[]);
        assert_eq!(by_env.unwrap().settings.s3_region, "from-env");
        assert_eq!(by_flag.unwrap().settings.s3_region, "from-flag");
        assert_eq!(by_file.unwrap().settings.s3_region, "from-file");
    }

    #[test]
    fn unknown_keys_are_refused_naming_the_key_and_the_file() {
        for (file, key) in [
            ("max-size = \"1GiB\"", "max-size"),
            ("config = \"other.toml\"", "config"),
            ("help = true", "help"),
            ("[listen]\nport = 8080", "listen"),
        ] {
            let err = serve(Some(file), &[]).unwrap_err();
            assert!(err.contains(&format!("`{key}")), "{file}: {err}");
            assert!(err.contains("tusk.toml"), "{file}: {err}");
        }
        let err = serve(Some("max-size = 1"), &[]).unwrap_err();
        assert!(err.contains("max-file-size"), "lists the settings: {err}");
    }

    #[test]
    fn bad_values_are_refused_naming_the_key_and_the_file() {
        for (file, key, why) in [
            ("max-file-size = \"lots\"", "max-file-size", "not a size"),
            ("listen = \"nowhere\"", "listen", "address"),
            ("log-format = \"xml\"", "log-format", "xml"),
            ("no-fsync = \"yes\"", "no-fsync", "true or false"),
            ("s3-path-style = \"maybe\"", "s3-path-style", "maybe"),
            ("upload-ttl = 5", "upload-ttl", ""),
            ("data = [\"a\", \"b\"]", "data", "not a list"),
            (
                "cors-origin = [\"https://ok.example\", \"nope\"]",
                "cors-origin",
                "not an origin",
            ),
            (
                "max-file-size = \"1MiB\"\nmax_file_size = \"2MiB\"",
                "max",
                "twice",
            ),
        ] {
            let err = serve(Some(file), &[]).unwrap_err();
            assert!(err.contains(&format!("`{key}")), "{file}: {err}");
            assert!(err.contains("tusk.toml"), "{file}: {err}");
            assert!(err.contains(why), "{file}: {err}");
        }
        // Bad even where a flag overrides it: the file is wrong all the same.
        let err = serve(
            Some("max-file-size = \"lots\""),
            &["--max-file-size", "1MiB"],
        );
        assert!(err.is_err());
    }

    #[test]
    fn a_file_that_cannot_be_read_or_parsed_is_named() {
        let err = serve(Some("listen = "), &[]).unwrap_err();
        assert!(
            err.contains("not valid TOML") && err.contains("tusk.toml"),
            "{err}"
        );
        let argv = ["tusk", "serve", "--config", "/nonexistent/tusk.toml"];
        match parse::<Cli>(argv.map(OsString::from)) {
            Err(Failure::File(e)) => {
                assert!(e.to_string().contains("/nonexistent/tusk.toml"), "{e}")
            }
            _ => panic!("a missing file must fail"),
        }
    }

    #[test]
    fn commands_without_a_config_argument_parse_as_before() {
        let argv = ["tusk", "hash", "some-file"].map(OsString::from);
        assert!(matches!(
            parse::<Cli>(argv),
            Ok(Cli {
                command: Sub::Hash(_)
            })
        ));
        let argv = ["tusk", "serve", "--no-such-flag"].map(OsString::from);
        assert!(matches!(parse::<Cli>(argv), Err(Failure::Usage(_))));
    }
}
