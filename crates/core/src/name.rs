//! Display names of files.
//!
//! A name is what a person sees, never a filesystem path: it decides nothing
//! about where bytes land. It may carry a relative folder path with `/` so
//! that folder uploads keep their structure.

/// The longest name accepted, in bytes, as sent.
pub const MAX_NAME_BYTES: usize = 1024;

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("the name is empty")]
    Empty,
    #[error("the name is longer than {MAX_NAME_BYTES} bytes")]
    TooLong,
}

/// Normalises a client-supplied name: `\` becomes `/`; leading `/`, empty,
/// `.` and `..` segments and control characters are removed; surrounding
/// whitespace of each segment is kept (it is part of a real file name).
pub fn normalize(raw: &str) -> Result<String, NameError> {
    if raw.len() > MAX_NAME_BYTES {
        return Err(NameError::TooLong);
    }
    let cleaned: String = raw
        .chars()
        .map(|c| if c == '\\' { '/' } else { c })
        .filter(|c| !c.is_control())
        .collect();
    let segments: Vec<&str> = cleaned
        .split('/')
        .filter(|s| !s.is_empty() && *s != "." && *s != "..")
        .collect();
    if segments.is_empty() {
        return Err(NameError::Empty);
    }
    Ok(segments.join("/"))
}

/// The last segment of a normalised name (what a download is saved as).
pub fn base_name(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises() {
        let cases = [
            ("report.pdf", "report.pdf"),
            ("photos/2024/a.jpg", "photos/2024/a.jpg"),
            ("/etc/passwd", "etc/passwd"),
            ("../../x", "x"),
            ("a/./b//c/", "a/b/c"),
            ("C:\\Users\\me\\f.txt", "C:/Users/me/f.txt"),
            ("we\u{0}ird\n\tname", "weirdname"),
            ("..\\..\\windows", "windows"),
            ("  spaced  ", "  spaced  "),
            ("中文/文件.txt", "中文/文件.txt"),
        ];
        for (raw, want) in cases {
            assert_eq!(normalize(raw).as_deref(), Ok(want), "{raw:?}");
        }
    }

    #[test]
    fn refuses() {
        for raw in ["", "/", "..", "./..", "\u{7}\u{8}", "//"] {
            assert_eq!(normalize(raw), Err(NameError::Empty), "{raw:?}");
        }
        assert_eq!(normalize(&"x".repeat(1025)), Err(NameError::TooLong));
        assert!(normalize(&"x".repeat(1024)).is_ok());
    }

    #[test]
    fn base() {
        assert_eq!(base_name("a/b/c.txt"), "c.txt");
        assert_eq!(base_name("c.txt"), "c.txt");
    }

    mod props {
        use proptest::prelude::*;

        use super::super::*;

        /// Strings made of the pieces that matter to names: separators,
        /// dot segments, control characters, and anything else.
        fn raw_name() -> impl Strategy<Value = String> {
            let piece = prop_oneof![
                Just("/".to_owned()),
                Just("\\".to_owned()),
                Just(".".to_owned()),
                Just("..".to_owned()),
                Just(" ".to_owned()),
                prop::char::range('\0', '\u{9f}').prop_map(String::from),
                any::<char>().prop_map(String::from),
                "[a-zA-Z0-9 ._-]{1,8}",
            ];
            prop::collection::vec(piece, 0..40).prop_map(|p| p.concat())
        }

        proptest! {
            #![proptest_config(ProptestConfig {
                cases: 512,
                failure_persistence: None,
                ..ProptestConfig::default()
            })]

            /// Whatever comes in: no panic, and a name that is accepted is
            /// a fixed point with no way out of its folder.
            #[test]
            fn normalised_names_are_safe_fixed_points(
                raw in prop_oneof![raw_name(), any::<String>()],
            ) {
                match normalize(&raw) {
                    Ok(name) => {
                        prop_assert_eq!(normalize(&name), Ok(name.clone()));
                        prop_assert!(name.len() <= raw.len());
                        prop_assert!(!name.contains('\\'));
                        prop_assert!(!name.chars().any(char::is_control));
                        for segment in name.split('/') {
                            prop_assert!(!matches!(segment, "" | "." | ".."), "{:?}", name);
                        }
                        let base = base_name(&name);
                        prop_assert!(!base.is_empty() && !base.contains('/'));
                    }
                    Err(NameError::TooLong) => prop_assert!(raw.len() > MAX_NAME_BYTES),
                    Err(NameError::Empty) => prop_assert!(raw.len() <= MAX_NAME_BYTES),
                }
            }

            /// Segments that are already clean are kept exactly.
            #[test]
            fn clean_names_are_kept(
                segments in prop::collection::vec("[^/\\\\\\p{Cc}]{1,12}", 1..6)
                    .prop_filter("no dot segments", |s| {
                        s.iter().all(|s| s != "." && s != "..")
                    }),
            ) {
                let name = segments.join("/");
                prop_assume!(name.len() <= MAX_NAME_BYTES);
                prop_assert_eq!(normalize(&name), Ok(name.clone()));
            }
        }
    }
}
