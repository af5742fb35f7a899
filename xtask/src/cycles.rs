//! `cargo xtask cycles` (also run by `cargo xtask ci`): no import cycle between the files of a
//! library crate.
//!
//! "File A imports file B" means that A's non-test code uses a name that B defines: every
//! `use crate::..`, `use super::..`, `use self::..` and `use child_module::..` item, and every
//! such path in types, expressions, patterns and macro arguments, is resolved through the crate's
//! module tree (following `use` re-exports, so `crate::Payment` counts as the file that defines
//! `Payment`) to the file of the module that defines the name. `mod` declarations, naming a
//! module alone, and items under `#[cfg(test)]` do not count. Cycles are the strongly connected
//! components of that graph with more than one file.
//!
//! Known cycles the lead has not decided on yet are listed, one component per line, in
//! `xtask/cycles-allowed.txt`; the check fails on any other cycle and on a listed one that no
//! longer exists (so the list stays exact).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use syn::visit::Visit;

/// The allow-list, relative to the workspace root.
const ALLOW_LIST: &str = "xtask/cycles-allowed.txt";

/// One module of a crate: the file holding it, its child modules, its imports.
#[derive(Default)]
struct Module {
    /// Index into `Crate::files`.
    file: usize,
    /// Child module names.
    children: BTreeSet<String>,
    /// Names brought in by `use` (alias -> absolute path, starting at the crate root).
    imports: BTreeMap<String, Vec<String>>,
    /// Glob imports (absolute paths of modules).
    globs: Vec<Vec<String>>,
}

/// A use site to resolve: the module it is written in, and its path as written.
struct Use {
    module: Vec<String>,
    path: Vec<String>,
}

/// One parsed crate.
#[derive(Default)]
struct Crate {
    /// File paths relative to `src/`.
    files: Vec<String>,
    modules: BTreeMap<Vec<String>, Module>,
    /// Per file: the use sites in it.
    uses: Vec<Vec<Use>>,
}

/// Whether an item's attributes put it under `cfg(test)` (or any `cfg` naming `test` without `not`).
fn is_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        if !a.path().is_ident("cfg") {
            return false;
        }
        let text = match &a.meta {
            syn::Meta::List(list) => list.tokens.to_string(),
            _ => return false,
        };
        let words: Vec<&str> = text
            .split(|c: char| !c.is_alphanumeric() && c != '_')
            .collect();
        words.contains(&"test") && !words.contains(&"not")
    })
}

fn item_attrs(item: &syn::Item) -> &[syn::Attribute] {
    match item {
        syn::Item::Const(i) => &i.attrs,
        syn::Item::Enum(i) => &i.attrs,
        syn::Item::ExternCrate(i) => &i.attrs,
        syn::Item::Fn(i) => &i.attrs,
        syn::Item::ForeignMod(i) => &i.attrs,
        syn::Item::Impl(i) => &i.attrs,
        syn::Item::Macro(i) => &i.attrs,
        syn::Item::Mod(i) => &i.attrs,
        syn::Item::Static(i) => &i.attrs,
        syn::Item::Struct(i) => &i.attrs,
        syn::Item::Trait(i) => &i.attrs,
        syn::Item::TraitAlias(i) => &i.attrs,
        syn::Item::Type(i) => &i.attrs,
        syn::Item::Union(i) => &i.attrs,
        syn::Item::Use(i) => &i.attrs,
        _ => &[],
    }
}

/// Makes a path written in `module` absolute (from the crate root), or `None` for a path into
/// another crate, the prelude or a local name.
fn absolute(krate: &Crate, module: &[String], path: &[String]) -> Option<Vec<String>> {
    let first = path.first()?;
    let mut base: Vec<String> = module.to_vec();
    let mut rest = path;
    match first.as_str() {
        "crate" => {
            base.clear();
            rest = &path[1..];
        }
        "self" => rest = &path[1..],
        "super" => {
            while rest.first().map(String::as_str) == Some("super") {
                base.pop()?;
                rest = &rest[1..];
            }
        }
        name => {
            let m = krate.modules.get(module)?;
            if m.children.contains(name) {
                // A child module: relative to this module.
            } else if let Some(target) = m.imports.get(name) {
                let mut full = target.clone();
                full.extend(path[1..].iter().cloned());
                return Some(full);
            } else {
                return None;
            }
        }
    }
    base.extend(rest.iter().cloned());
    Some(base)
}

/// The module that defines the item an absolute path names, or `None` if the path stops at a
/// module (naming a module is not using a name its file defines) or leaves the crate.
fn definer(krate: &Crate, path: &[String], depth: usize) -> Option<Vec<String>> {
    if depth > 16 {
        return None;
    }
    let mut module: Vec<String> = Vec::new();
    for (i, seg) in path.iter().enumerate() {
        let m = krate.modules.get(&module)?;
        if m.children.contains(seg) {
            module.push(seg.clone());
            continue;
        }
        if let Some(target) = m.imports.get(seg) {
            let mut full = target.clone();
            full.extend(path[i + 1..].iter().cloned());
            return definer(krate, &full, depth + 1);
        }
        for glob in &m.globs {
            if let Some(g) = krate.modules.get(glob) {
                if g.children.contains(seg) || g.imports.contains_key(seg) {
                    let mut full = glob.clone();
                    full.extend(path[i..].iter().cloned());
                    return definer(krate, &full, depth + 1);
                }
            }
        }
        return Some(module);
    }
    None
}

/// Flattens a use tree into (alias, path as written) pairs; `*` is kept as the last segment.
fn flatten(tree: &syn::UseTree, prefix: &mut Vec<String>, out: &mut Vec<(String, Vec<String>)>) {
    match tree {
        syn::UseTree::Path(p) => {
            prefix.push(p.ident.to_string());
            flatten(&p.tree, prefix, out);
            prefix.pop();
        }
        syn::UseTree::Name(n) => {
            let name = n.ident.to_string();
            if name == "self" {
                if let Some(last) = prefix.last() {
                    out.push((last.clone(), prefix.clone()));
                }
            } else {
                let mut p = prefix.clone();
                p.push(name.clone());
                out.push((name, p));
            }
        }
        syn::UseTree::Rename(r) => {
            let mut p = prefix.clone();
            let name = r.ident.to_string();
            if name != "self" {
                p.push(name);
            }
            out.push((r.rename.to_string(), p));
        }
        syn::UseTree::Glob(_) => {
            let mut p = prefix.clone();
            p.push("*".into());
            out.push(("*".into(), p));
        }
        syn::UseTree::Group(g) => {
            for t in &g.items {
                flatten(t, prefix, out);
            }
        }
    }
}

/// Collects every path of non-test code (including paths inside macro arguments).
struct Paths {
    found: Vec<Vec<String>>,
}

impl<'ast> Visit<'ast> for Paths {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        if is_test(item_attrs(item)) {
            return;
        }
        // Items nested in functions and inline modules are visited here; `use` items and
        // `mod` items are handled by the module walker.
        match item {
            syn::Item::Use(_) | syn::Item::Mod(_) => {}
            _ => syn::visit::visit_item(self, item),
        }
    }
    fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
        if !is_test(&f.attrs) {
            syn::visit::visit_impl_item_fn(self, f);
        }
    }
    fn visit_path(&mut self, path: &'ast syn::Path) {
        if path.leading_colon.is_none() && path.segments.len() > 1 {
            self.found
                .push(path.segments.iter().map(|s| s.ident.to_string()).collect());
        }
        syn::visit::visit_path(self, path);
    }
    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        scan_tokens(mac.tokens.clone(), &mut self.found);
        syn::visit::visit_macro(self, mac);
    }
}

/// Finds `a::b::c` sequences in raw macro tokens.
fn scan_tokens(tokens: proc_macro2::TokenStream, found: &mut Vec<Vec<String>>) {
    use proc_macro2::TokenTree;
    let tts: Vec<TokenTree> = tokens.into_iter().collect();
    let mut i = 0;
    while i < tts.len() {
        match &tts[i] {
            TokenTree::Group(g) => {
                scan_tokens(g.stream(), found);
                i += 1;
            }
            TokenTree::Ident(id) => {
                let mut path = vec![id.to_string()];
                let mut j = i + 1;
                loop {
                    let colons = matches!((tts.get(j), tts.get(j + 1)),
                        (Some(TokenTree::Punct(a)), Some(TokenTree::Punct(b)))
                            if a.as_char() == ':' && b.as_char() == ':');
                    match (colons, tts.get(j + 2)) {
                        (true, Some(TokenTree::Ident(next))) => {
                            path.push(next.to_string());
                            j += 3;
                        }
                        _ => break,
                    }
                }
                if path.len() > 1 {
                    found.push(path);
                }
                i = j.max(i + 1);
            }
            _ => i += 1,
        }
    }
}

/// Parses `file` as module `module` (and its inline modules), recursing into `mod x;` files.
fn load_file(krate: &mut Crate, src: &Path, rel: &str, module: Vec<String>) -> Result<(), String> {
    let text = std::fs::read_to_string(src.join(rel))
        .map_err(|e| format!("cannot read {}: {e}", src.join(rel).display()))?;
    let ast = syn::parse_file(&text).map_err(|e| format!("cannot parse {rel}: {e}"))?;
    let file = krate.files.len();
    krate.files.push(rel.to_owned());
    krate.uses.push(Vec::new());
    // Directory for `mod x;` children: lib.rs / mod.rs own their directory, foo.rs owns foo/.
    let rel_path = PathBuf::from(rel);
    let stem = rel_path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    let parent = rel_path.parent().map(Path::to_path_buf).unwrap_or_default();
    let child_dir = if stem == "lib" || stem == "mod" || stem == "main" {
        parent
    } else {
        parent.join(stem)
    };
    load_items(krate, src, &child_dir, file, module, &ast.items)
}

fn load_items(
    krate: &mut Crate,
    src: &Path,
    child_dir: &Path,
    file: usize,
    module: Vec<String>,
    items: &[syn::Item],
) -> Result<(), String> {
    krate.modules.entry(module.clone()).or_default().file = file;
    let mut paths = Paths { found: Vec::new() };
    for item in items {
        if is_test(item_attrs(item)) {
            continue;
        }
        match item {
            syn::Item::Mod(m) => {
                let name = m.ident.to_string();
                krate
                    .modules
                    .entry(module.clone())
                    .or_default()
                    .children
                    .insert(name.clone());
                let mut child = module.clone();
                child.push(name.clone());
                match &m.content {
                    Some((_, inner)) => {
                        load_items(krate, src, &child_dir.join(&name), file, child, inner)?
                    }
                    None => {
                        let flat = child_dir.join(format!("{name}.rs"));
                        let nested = child_dir.join(&name).join("mod.rs");
                        let rel = if src.join(&flat).exists() {
                            flat
                        } else {
                            nested
                        };
                        let rel = rel.to_string_lossy().replace('\\', "/");
                        load_file(krate, src, &rel, child)?;
                    }
                }
            }
            syn::Item::Use(u) => {
                let mut flat = Vec::new();
                flatten(&u.tree, &mut Vec::new(), &mut flat);
                for (alias, path) in flat {
                    krate.uses[file].push(Use {
                        module: module.clone(),
                        path: path.iter().filter(|s| s.as_str() != "*").cloned().collect(),
                    });
                    let entry = (alias, path);
                    pending_imports(krate, &module, entry);
                }
            }
            other => paths.visit_item(other),
        }
    }
    for path in paths.found {
        krate.uses[file].push(Use {
            module: module.clone(),
            path,
        });
    }
    Ok(())
}

/// Records an import as written; made absolute once the whole module tree is known.
fn pending_imports(krate: &mut Crate, module: &[String], (alias, path): (String, Vec<String>)) {
    let m = krate.modules.entry(module.to_vec()).or_default();
    if alias == "*" {
        let mut p = path;
        p.pop();
        m.globs.push(p);
    } else {
        m.imports.insert(alias, path);
    }
}

/// Makes every recorded import absolute (dropping those into other crates).
fn absolutize_imports(krate: &mut Crate) {
    let keys: Vec<Vec<String>> = krate.modules.keys().cloned().collect();
    for key in keys {
        let m = &krate.modules[&key];
        let imports: Vec<(String, Vec<String>)> = m
            .imports
            .iter()
            .map(|(a, p)| (a.clone(), p.clone()))
            .collect();
        let globs = m.globs.clone();
        let mut abs_imports = BTreeMap::new();
        for (alias, path) in imports {
            // Resolve against the module tree only (not other imports) to avoid loops.
            if let Some(abs) = absolute_tree_only(krate, &key, &path) {
                abs_imports.insert(alias, abs);
            }
        }
        let abs_globs = globs
            .iter()
            .filter_map(|p| absolute_tree_only(krate, &key, p))
            .collect();
        let m = krate.modules.entry(key.clone()).or_default();
        m.imports = abs_imports;
        m.globs = abs_globs;
    }
}

fn absolute_tree_only(krate: &Crate, module: &[String], path: &[String]) -> Option<Vec<String>> {
    let first = path.first()?;
    match first.as_str() {
        "crate" | "self" | "super" => absolute(krate, module, path),
        name if krate
            .modules
            .get(module)
            .is_some_and(|m| m.children.contains(name)) =>
        {
            let mut p = module.to_vec();
            p.extend(path.iter().cloned());
            Some(p)
        }
        _ => None,
    }
}

/// File-level import edges: (from, to) -> an example path that makes it.
type Edges = BTreeMap<(usize, usize), String>;

/// The file-level import graph of one crate: its files and edges.
fn graph(src: &Path) -> Result<(Vec<String>, Edges), String> {
    let mut krate = Crate::default();
    load_file(&mut krate, src, "lib.rs", Vec::new())?;
    absolutize_imports(&mut krate);
    let mut edges = BTreeMap::new();
    for (file, uses) in krate.uses.iter().enumerate() {
        for u in uses {
            let Some(abs) = absolute(&krate, &u.module, &u.path) else {
                continue;
            };
            let Some(def) = definer(&krate, &abs, 0) else {
                continue;
            };
            let Some(target) = krate.modules.get(&def) else {
                continue;
            };
            if target.file != file {
                edges
                    .entry((file, target.file))
                    .or_insert_with(|| u.path.join("::"));
            }
        }
    }
    Ok((krate.files, edges))
}

/// Strongly connected components with more than one node (Tarjan).
fn cycles(n: usize, edges: &Edges) -> Vec<Vec<usize>> {
    let mut adj = vec![Vec::new(); n];
    for &(a, b) in edges.keys() {
        adj[a].push(b);
    }
    struct T<'a> {
        adj: &'a [Vec<usize>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        out: Vec<Vec<usize>>,
    }
    fn strong(t: &mut T<'_>, v: usize) {
        t.index[v] = Some(t.next);
        t.low[v] = t.next;
        t.next += 1;
        t.stack.push(v);
        t.on[v] = true;
        for &w in &t.adj[v] {
            match t.index[w] {
                None => {
                    strong(t, w);
                    t.low[v] = t.low[v].min(t.low[w]);
                }
                Some(i) if t.on[w] => t.low[v] = t.low[v].min(i),
                Some(_) => {}
            }
        }
        if Some(t.low[v]) == t.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on[w] = false;
                comp.push(w);
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort_unstable();
                t.out.push(comp);
            }
        }
    }
    let mut t = T {
        adj: &adj,
        index: vec![None; n],
        low: vec![0; n],
        on: vec![false; n],
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in 0..n {
        if t.index[v].is_none() {
            strong(&mut t, v);
        }
    }
    t.out
}

/// One line of the allow-list / report: `crate: file file ...` (files sorted).
fn key(krate: &str, files: &[String], comp: &[usize]) -> String {
    let mut names: Vec<&str> = comp.iter().map(|&i| files[i].as_str()).collect();
    names.sort_unstable();
    format!("{krate}: {}", names.join(" "))
}

/// Checks every library crate under `crates/`.
pub(crate) fn run() -> Result<(), String> {
    eprintln!("\n==> import cycles between files (allowed: {ALLOW_LIST})");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("xtask has no parent directory")?
        .to_path_buf();
    let allowed: BTreeSet<String> = std::fs::read_to_string(root.join(ALLOW_LIST))
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    let mut crates: Vec<PathBuf> = std::fs::read_dir(root.join("crates"))
        .map_err(|e| format!("cannot list crates/: {e}"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("src/lib.rs").exists())
        .collect();
    crates.sort();
    let mut found = BTreeSet::new();
    let mut report = String::new();
    for dir in crates {
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("?")
            .to_owned();
        let (files, edges) = graph(&dir.join("src"))?;
        for comp in cycles(files.len(), &edges) {
            let line = key(&name, &files, &comp);
            if !allowed.contains(&line) {
                report.push_str(&format!("cycle not allowed: {line}\n"));
                for (&(a, b), via) in &edges {
                    if comp.contains(&a) && comp.contains(&b) {
                        report.push_str(&format!("    {} -> {} ({via})\n", files[a], files[b]));
                    }
                }
            }
            found.insert(line);
        }
    }
    for line in allowed.difference(&found) {
        report.push_str(&format!(
            "allowed cycle no longer exists (remove it from {ALLOW_LIST}): {line}\n"
        ));
    }
    if report.is_empty() {
        eprintln!("no import cycle outside {ALLOW_LIST}");
        Ok(())
    } else {
        Err(format!("import cycles:\n{report}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crate_from(test: &str, files: &[(&str, &str)]) -> (Vec<String>, Vec<Vec<String>>) {
        let dir = std::env::temp_dir().join(format!("xtask-cycles-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (path, text) in files {
            let p = dir.join(path);
            std::fs::create_dir_all(p.parent().expect("has parent")).expect("mkdir");
            std::fs::write(&p, text).expect("write");
        }
        let (names, edges) = graph(&dir).expect("parses");
        let comps = cycles(names.len(), &edges)
            .into_iter()
            .map(|c| c.into_iter().map(|i| names[i].clone()).collect())
            .collect();
        let _ = std::fs::remove_dir_all(&dir);
        (names, comps)
    }

    #[test]
    fn a_mutual_use_is_a_cycle_through_reexports_too() {
        let (_, comps) = crate_from(
            "a_mutual_use_is_a_cycle_through_reexports_too",
            &[
                ("lib.rs", "mod a; mod b; pub use a::A;"),
                (
                    "a.rs",
                    "pub struct A; fn f() -> crate::b::B { crate::b::B }",
                ),
                ("b.rs", "pub struct B; fn g(_: crate::A) {}"),
            ],
        );
        assert_eq!(comps, vec![vec!["a.rs".to_owned(), "b.rs".to_owned()]]);
    }

    #[test]
    fn mod_declarations_module_names_and_tests_do_not_count() {
        let (_, comps) = crate_from("mod_declarations_module_names_and_tests_do_not_count", &[
            ("lib.rs", "mod a; mod b; pub use a::A;"),
            (
                "a/mod.rs",
                "mod inner; pub struct A; fn f() { inner::go() }",
            ),
            (
                "a/inner.rs",
                "use super::super::b; pub fn go() {}\n#[cfg(test)] mod tests { use super::super::A; }",
            ),
            ("b.rs", "pub struct B; fn g() { crate::a::A; }"),
        ]);
        assert!(comps.is_empty(), "{comps:?}");
    }

    #[test]
    fn a_child_using_its_parents_item_is_a_cycle() {
        let (_, comps) = crate_from(
            "a_child_using_its_parents_item_is_a_cycle",
            &[
                ("lib.rs", "mod w;"),
                (
                    "w/mod.rs",
                    "mod orders; pub struct Shared; fn f() { orders::go() }",
                ),
                (
                    "w/orders.rs",
                    "use super::Shared; pub fn go() { format!(\"{}\", crate::w::Shared); }",
                ),
            ],
        );
        assert_eq!(comps.len(), 1);
    }
}
