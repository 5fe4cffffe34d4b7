//! The built-in template library: modules every project can import, under the reference's names
//! and defining the same concepts (`:App:`, `:MainExecutableFile:`, …). Written for rekindle.

/// `(module name, text)` for every built-in module.
pub const MODULES: &[(&str, &str)] = &[
    (
        "python-console-app-template",
        include_str!("../library/python-console-app-template.plain"),
    ),
    (
        "golang-console-app-template",
        include_str!("../library/golang-console-app-template.plain"),
    ),
    (
        "typescript-react-app-template",
        include_str!("../library/typescript-react-app-template.plain"),
    ),
    (
        "typescript-react-app-boilerplate",
        include_str!("../library/typescript-react-app-boilerplate.plain"),
    ),
];

/// The display path of built-in files, so diagnostics can name them.
pub const PREFIX: &str = "<built-in>";

pub fn get(name: &str) -> Option<&'static str> {
    let name = name.strip_suffix(".plain").unwrap_or(name);
    MODULES.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}
