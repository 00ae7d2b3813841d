//! `tusk hash` against an independent computation: a few lines of Python's
//! hashlib define `sha256-4m`, MD5 and SHA-256 the plain way.

use std::process::Command;

const PYTHON: &str = r#"
import hashlib, sys
for path in sys.argv[1:]:
    outer, md5, sha = hashlib.sha256(), hashlib.md5(), hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(4 * 1024 * 1024), b""):
            outer.update(hashlib.sha256(block).digest())
            md5.update(block)
            sha.update(block)
    print("sha256-4m:" + outer.hexdigest(), "md5:" + md5.hexdigest(), "sha256:" + sha.hexdigest(), path, sep="  ")
"#;

fn tusk(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tusk"))
        .args(args)
        .output()
        .expect("run tusk")
}

#[test]
fn hashes_equal_an_independent_computation() {
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    // Empty, one byte, exactly one block, and several blocks with a tail.
    for (name, len) in [
        ("empty", 0usize),
        ("one", 1),
        ("block", 4 << 20),
        ("blocks", (9 << 20) + 4321),
    ] {
        let data: Vec<u8> = (0..len)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let path = dir.path().join(name);
        std::fs::write(&path, data).unwrap();
        paths.push(path.to_str().unwrap().to_owned());
    }
    let args: Vec<&str> = paths.iter().map(String::as_str).collect();
    let expected = Command::new("python3")
        .arg("-c")
        .arg(PYTHON)
        .args(&args)
        .output()
        .expect("python3 is needed by this test");
    assert!(expected.status.success(), "{expected:?}");
    let expected = String::from_utf8(expected.stdout).unwrap();

    let mut all = vec!["hash", "--md5", "--sha256"];
    all.extend(&args);
    let got = tusk(&all);
    assert!(got.status.success(), "{got:?}");
    assert_eq!(String::from_utf8(got.stdout).unwrap(), expected);

    // Without the flags, only the content hash (on one thread, the same).
    let mut plain = vec!["hash", "--threads", "1"];
    plain.extend(&args);
    let got = String::from_utf8(tusk(&plain).stdout).unwrap();
    let first_and_path: String = expected
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split("  ").collect();
            format!("{}  {}\n", f[0], f[3])
        })
        .collect();
    assert_eq!(got, first_and_path);
}

#[test]
fn a_missing_file_is_named_and_the_others_still_hashed() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good");
    std::fs::write(&good, b"content").unwrap();
    let missing = dir.path().join("missing");
    let out = tusk(&[
        "hash",
        missing.to_str().unwrap(),
        good.to_str().unwrap(),
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1);
    assert!(
        stdout.ends_with(&format!("  {}\n", good.display())),
        "{stdout}"
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains(&format!("{}: cannot read it", missing.display())),
        "{stderr}"
    );
    assert!(stderr.contains("is a directory"), "{stderr}");
    assert!(stderr.contains("2 of 3 files"), "{stderr}");
}

#[test]
fn bad_arguments_exit_2_with_usage() {
    for args in [
        &["hash"][..],
        &["hash", "--bogus", "x"],
        &["hash", "--threads", "many", "x"],
    ] {
        let out = tusk(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
        assert!(stderr.contains("try '--help'"), "{args:?}: {stderr}");
    }
}
