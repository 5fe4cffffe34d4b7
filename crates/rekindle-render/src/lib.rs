//! The render loop: for each module in `requires` order and each functionality in order,
//! implement it with a model, run the unit tests (fixing with the model), generate and run
//! conformance tests (fixing code or tests), re-run earlier conformance tests, and commit. A
//! functionality whose render key is unchanged is reused at zero cost; state lives in git
//! commit trailers, so an interrupted render resumes where it stopped.
//!
//! By concern: [`options`] (what to do, with which models), [`run`](mod@run) (the loop over
//! modules and functionalities), `steps` (one functionality: implement, test, fix, restart),
//! `blame` (reading a failed run: the lines it points at, and whether a failing check blames
//! the test or the code), `imports` (the import a failed Python run shows missing), `completion` (a
//! completed file read from a fenced block), `checked`
//! (which acceptance tests written tests leave out), `history` (state read back from git,
//! replay, recovery), [`status`](mod@status) (what a render would
//! do), [`burn`] (the deletion test's comparison), [`error`], [`events`], [`prompts`].

mod blame;
pub mod burn;
mod checked;
mod completion;
pub mod converse;
pub mod draft;
pub mod error;
pub mod events;
mod history;
mod imports;
pub mod options;
pub mod prompts;
pub mod run;
pub mod status;
mod steps;
mod stripped;

pub use error::RenderError;
pub use events::{Event, Observer, Summary};
pub use history::{built, keep_trees, Built};
pub use options::{Locked, LockedPin, ModelSet, Options, Role, RoleModel};
pub use run::render;
pub use status::{status, Drift, ModuleState, Status};
