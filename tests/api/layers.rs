//! The crates' layers, read from their sources as text: no two source files reach each other
//! through paths into the crate, and no file is over [`MAX_LINES`] lines. A file reaches
//! another when it names, in a `use` or in a path in code, an item or module that the other
//! file holds: `crate::a::b` (and `super::`/`self::` paths, which are the same paths written
//! relatively) goes to the longest prefix that is a file (`src/a/b.rs`, `src/a/b/mod.rs`, then
//! `src/a.rs`, …), and a path that names no module to the crate's root. Comments and string
//! literals do not count.
//!
//! [`CHECKED`] lists the source folders held to this; [`problems`] is the check of one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The source folders that must pass, from the workspace's root: the service's and the
/// sandbox crate's.
const CHECKED: &[&str] = &["src", "crates/stripe-sandbox/src"];

/// The longest a source file may be.
pub const MAX_LINES: usize = 800;

/// Where a file first reaches another: its line and the path as written.
#[derive(Debug, Clone)]
struct Reach {
    line: usize,
    path: String,
}

/// What is wrong with the Rust sources under `src`: each pair of files that reach each other,
/// and each file over [`MAX_LINES`] lines, one sentence each (empty when nothing is).
pub fn problems(src: &Path) -> Vec<String> {
    let files = rust_files(src);
    let modules: BTreeMap<Vec<String>, PathBuf> = files
        .iter()
        .map(|file| (module_of(file), file.clone()))
        .collect();
    let mut reaches: BTreeMap<(PathBuf, PathBuf), Reach> = BTreeMap::new();
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(src.join(file))
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", src.join(file).display()));
        let lines = text.lines().count();
        if lines > MAX_LINES {
            found.push(format!(
                "{} has {lines} lines (at most {MAX_LINES})",
                file.display()
            ));
        }
        for (line, path, absolute) in crate_paths(&module_of(file), &code_only(&text)) {
            let target = file_of(&modules, &absolute);
            if target != *file {
                reaches
                    .entry((file.clone(), target))
                    .or_insert(Reach { line, path });
            }
        }
    }
    for ((from, to), there) in &reaches {
        if from < to {
            if let Some(back) = reaches.get(&(to.clone(), from.clone())) {
                found.push(format!(
                    "{} and {} reach each other: {}:{} names `{}`, {}:{} names `{}`",
                    from.display(),
                    to.display(),
                    from.display(),
                    there.line,
                    there.path,
                    to.display(),
                    back.line,
                    back.path
                ));
            }
        }
    }
    found
}

/// Every `.rs` file below `src`, relative to it, in order.
fn rust_files(src: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut folders = vec![PathBuf::new()];
    while let Some(folder) = folders.pop() {
        let entries = std::fs::read_dir(src.join(&folder))
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", src.join(&folder).display()));
        for entry in entries {
            let entry = entry.unwrap();
            let relative = folder.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                folders.push(relative);
            } else if relative.extension().is_some_and(|e| e == "rs") {
                found.push(relative);
            }
        }
    }
    found.sort();
    found
}

/// The module a file is: `a/b.rs` and `a/b/mod.rs` are `a::b`; `lib.rs` and `main.rs` at the
/// top are the crate's root.
fn module_of(file: &Path) -> Vec<String> {
    let mut parts: Vec<String> = file
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap_or_default();
    let stem = last.trim_end_matches(".rs");
    let root = parts.is_empty() && matches!(stem, "lib" | "main");
    if stem != "mod" && !root {
        parts.push(stem.to_string());
    }
    parts
}

/// The file that holds what `path` (from the crate's root) names: the longest prefix of it that
/// is a module of its own file, else the crate's root (`lib.rs`, or `main.rs` without one).
fn file_of(modules: &BTreeMap<Vec<String>, PathBuf>, path: &[String]) -> PathBuf {
    (0..=path.len())
        .rev()
        .find_map(|n| modules.get(&path[..n]).cloned())
        .unwrap_or_else(|| PathBuf::from("lib.rs"))
}

/// The code of a Rust file with its comments, string literals and character literals blanked
/// out; line breaks are kept, so that line numbers stay.
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    let ident = |c: Option<&char>| c.is_some_and(|c| c.is_alphanumeric() || *c == '_');
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let (c, next) = (chars[i], chars.get(i + 1).copied());
        // The end (exclusive) of a comment or literal starting here, if one does.
        let end = match (c, next) {
            ('/', Some('/')) => Some(
                (i..chars.len())
                    .find(|&j| chars[j] == '\n')
                    .unwrap_or(chars.len()),
            ),
            ('/', Some('*')) => {
                let mut depth = 0;
                let mut j = i;
                while j < chars.len() {
                    match (chars[j], chars.get(j + 1)) {
                        ('/', Some('*')) => {
                            depth += 1;
                            j += 2;
                        }
                        ('*', Some('/')) => {
                            depth -= 1;
                            j += 2;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => j += 1,
                    }
                }
                Some(j.min(chars.len()))
            }
            ('r', Some('"' | '#'))
                if !ident(i.checked_sub(1).and_then(|p| chars.get(p)))
                    || (chars[i - 1] == 'b'
                        && !ident(i.checked_sub(2).and_then(|p| chars.get(p)))) =>
            {
                let hashes = chars[i + 1..].iter().take_while(|c| **c == '#').count();
                if chars.get(i + 1 + hashes) == Some(&'"') {
                    let close: String = std::iter::once('"')
                        .chain(std::iter::repeat_n('#', hashes))
                        .collect();
                    let body: String = chars[i + 2 + hashes..].iter().collect();
                    let found = body.find(&close).map(|b| body[..b].chars().count());
                    Some(found.map_or(chars.len(), |n| i + 2 + hashes + n + close.len()))
                } else {
                    None
                }
            }
            ('"', _) => {
                let mut j = i + 1;
                while j < chars.len() && chars[j] != '"' {
                    j += if chars[j] == '\\' { 2 } else { 1 };
                }
                Some((j + 1).min(chars.len()))
            }
            ('\'', Some('\\')) => Some(
                (i + 3..chars.len())
                    .find(|&j| chars[j] == '\'')
                    .map_or(chars.len(), |j| j + 1),
            ),
            // `'x'`, but not the lifetime `'a`.
            ('\'', Some(_)) if chars.get(i + 2) == Some(&'\'') => Some(i + 3),
            _ => None,
        };
        match end {
            Some(end) => {
                out.extend(chars[i..end].iter().map(|c| blank(*c)));
                i = end;
            }
            None => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// A word, `::`, or one other character of code, with its line.
fn tokens(code: &str) -> Vec<(usize, String)> {
    let chars: Vec<char> = code.chars().collect();
    let mut found = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c.is_alphanumeric() || c == '_' || c == '$' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$')
            {
                i += 1;
            }
            found.push((line, chars[start..i].iter().collect()));
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            found.push((line, "::".to_string()));
            i += 2;
        } else {
            found.push((line, c.to_string()));
            i += 1;
        }
    }
    found
}

/// Each path into the crate that `code` (of the module `module`) names: its line, as written,
/// and from the crate's root.
fn crate_paths(module: &[String], code: &str) -> Vec<(usize, String, Vec<String>)> {
    let tokens = tokens(code);
    let word = |n: usize| tokens.get(n).map_or("", |(_, t)| t.as_str());
    let mut found = Vec::new();
    // Modules written inline (`mod tests { … }`), with the depth of braces inside them.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0;
    let mut n = 0;
    while n < tokens.len() {
        let here: Vec<String> = module
            .iter()
            .cloned()
            .chain(inline.iter().map(|(name, _)| name.clone()))
            .collect();
        match word(n) {
            "{" => depth += 1,
            "}" => {
                depth -= 1;
                if inline.last().is_some_and(|(_, d)| *d > depth) {
                    inline.pop();
                }
            }
            "mod" if word(n + 2) == "{" => {
                inline.push((word(n + 1).to_string(), depth + 1));
                depth += 1;
                n += 3;
                continue;
            }
            "use" => {
                let line = tokens[n].0;
                let mut paths = Vec::new();
                n = use_tree(&tokens, n + 1, Vec::new(), &mut paths);
                for path in paths {
                    if let Some(absolute) = from_root(&here, &path) {
                        found.push((line, path.join("::"), absolute));
                    }
                }
                continue;
            }
            first @ ("crate" | "$crate" | "super" | "self") if word(n + 1) == "::" => {
                let line = tokens[n].0;
                let mut path = vec![first.to_string()];
                let mut m = n + 1;
                while word(m) == "::" && tokens.get(m + 1).is_some_and(|(_, t)| is_name(t)) {
                    path.push(word(m + 1).to_string());
                    m += 2;
                }
                if let Some(absolute) = from_root(&here, &path) {
                    found.push((line, path.join("::"), absolute));
                }
                n = m;
                continue;
            }
            _ => {}
        }
        n += 1;
    }
    found
}

fn is_name(token: &str) -> bool {
    token
        .chars()
        .next()
        .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$')
}

/// Reads the use tree starting at token `n` (after `use`) under `prefix`, adding each path it
/// names to `paths`; returns where it ends.
fn use_tree(
    tokens: &[(usize, String)],
    mut n: usize,
    prefix: Vec<String>,
    paths: &mut Vec<Vec<String>>,
) -> usize {
    let word = |n: usize| tokens.get(n).map_or("", |(_, t)| t.as_str());
    let mut path = prefix;
    loop {
        match word(n) {
            "{" => {
                n += 1;
                while !matches!(word(n), "}" | "") {
                    n = use_tree(tokens, n, path.clone(), paths);
                    if word(n) == "," {
                        n += 1;
                    }
                }
                return n + 1;
            }
            "*" => {
                paths.push(path);
                return n + 1;
            }
            "::" => n += 1,
            name if is_name(name) => {
                path.push(name.to_string());
                n += 1;
                if word(n) == "as" {
                    n += 2;
                }
                if word(n) != "::" {
                    paths.push(path);
                    return n;
                }
            }
            _ => {
                if !path.is_empty() {
                    paths.push(path);
                }
                return n;
            }
        }
    }
}

/// `path` as seen from the crate's root, when it goes into the crate (`crate::`, `super::`,
/// `self::`); `None` for another crate's.
fn from_root(here: &[String], path: &[String]) -> Option<Vec<String>> {
    let (base, rest): (Vec<String>, &[String]) = match path.first().map(String::as_str) {
        Some("crate" | "$crate") => (Vec::new(), &path[1..]),
        Some("self") => (here.to_vec(), &path[1..]),
        Some("super") => {
            let ups = path.iter().take_while(|p| *p == "super").count();
            (here[..here.len().checked_sub(ups)?].to_vec(), &path[ups..])
        }
        _ => return None,
    };
    Some(
        base.into_iter()
            .chain(rest.iter().filter(|p| *p != "self").cloned())
            .collect(),
    )
}

#[test]
fn no_two_source_files_reach_each_other_and_none_is_too_long() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"));
    let found: Vec<String> = CHECKED
        .iter()
        .flat_map(|src| {
            problems(&workspace.join(src))
                .into_iter()
                .map(move |p| format!("{src}: {p}"))
        })
        .collect();
    assert!(found.is_empty(), "{}", found.join("\n"));
}

/// A source folder made of `files` (path, text), in a temporary directory.
fn fixture(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

#[test]
fn the_check_names_two_files_that_reach_each_other() {
    let dir = fixture(&[
        ("lib.rs", "mod a;\nmod b;\n"),
        (
            "a.rs",
            "use crate::b::helper;\n\npub fn thing() -> u8 {\n    helper()\n}\n",
        ),
        (
            "b.rs",
            "pub fn helper() -> u8 {\n    1\n}\n\nfn again() -> u8 {\n    crate::a::thing()\n}\n",
        ),
    ]);
    let found = problems(dir.path());
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        found[0],
        "a.rs and b.rs reach each other: a.rs:1 names `crate::b::helper`, b.rs:6 names \
         `crate::a::thing`"
    );
}

#[test]
fn the_check_reads_use_trees_relative_paths_and_folders_but_not_comments_or_strings() {
    let one_way = fixture(&[
        ("lib.rs", "mod a;\nmod b;\nmod deep;\n"),
        // Comments, strings and a char literal that would reach `b` if they counted.
        (
            "a.rs",
            "// crate::b::x\n/* crate::b::y /* nested */ crate::b::z */\n\
             const S: &str = \"crate::b::x\";\nconst R: &str = r#\"crate::b::\"x\"#;\n\
             const C: char = '\"'; fn f<'a>(x: &'a str) -> &'a str { x }\n",
        ),
        (
            "b.rs",
            "use crate::{a, deep::{inner::{self, Thing as Other}}};\n",
        ),
        ("deep/mod.rs", "pub mod inner;\n"),
        (
            "deep/inner.rs",
            "pub struct Thing;\n#[cfg(test)]\nmod tests {\n    use super::*;\n}\n",
        ),
    ]);
    assert_eq!(problems(one_way.path()), Vec::<String>::new());
    let two_way = fixture(&[
        ("lib.rs", "mod deep;\n"),
        (
            "deep/mod.rs",
            "mod inner;\npub struct Top;\nfn f() { self::inner::g() }\n",
        ),
        ("deep/inner.rs", "use super::{Top};\npub fn g() {}\n"),
    ]);
    let found = problems(two_way.path());
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("deep/inner.rs and deep/mod.rs reach each other"),
        "{found:?}"
    );
}

#[test]
fn the_check_names_a_file_over_the_limit() {
    let long = "fn f() {}\n".repeat(MAX_LINES + 1);
    let dir = fixture(&[("lib.rs", "mod long;\n"), ("long.rs", &long)]);
    assert_eq!(
        problems(dir.path()),
        vec![format!(
            "long.rs has {} lines (at most {MAX_LINES})",
            MAX_LINES + 1
        )]
    );
}
