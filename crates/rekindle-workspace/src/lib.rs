//! The side-effecting edge of rendering: build folders, git repositories, test scripts, the
//! check that keeps untrusted model replies inside the build folder (`files`), and the sandbox
//! every script runs in (`sandbox`), and the store of locked trees (`store`).

pub mod files;
pub mod git;
pub mod layout;
pub mod patch;
pub mod sandbox;
pub mod scripts;
pub mod store;
pub mod trailers;
