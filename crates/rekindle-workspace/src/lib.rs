//! The side-effecting edge of rendering: build folders, git repositories, test scripts, and the
//! sandbox that keeps untrusted model replies inside the build folder.

pub mod files;
pub mod git;
pub mod layout;
pub mod scripts;
pub mod trailers;
