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
}
