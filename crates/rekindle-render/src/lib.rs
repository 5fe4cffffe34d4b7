//! The render loop: for each module in `requires` order and each functionality in order,
//! implement it with a model, run the unit tests (fixing with the model), generate and run
//! conformance tests (fixing code or tests), re-run earlier conformance tests, and commit. A
//! functionality whose render key is unchanged is reused at zero cost; state lives in git
//! commit trailers, so an interrupted render resumes where it stopped.

pub mod engine;
pub mod events;
pub mod keys;
pub mod prompts;

pub use engine::{
    built, fingerprint, render, status, Built, Drift, FunctionalityState, ModelSet, ModuleState,
    Options, RenderError, Role, RoleModel,
};
pub use events::{Event, Observer, Summary};
